#include <registryd/oci/client/options.hpp>

#include <stdexcept>

namespace registryd::oci::client {
namespace {

std::string optional_string(const nlohmann::json& section, const char* key) {
  const auto it = section.find(key);
  if (it == section.end() || it->is_null()) return {};
  if (!it->is_string()) throw std::invalid_argument(std::string("section.") + key + " must be a string");
  return it->get<std::string>();
}

}  // namespace

std::string client_options::base_url() const {
  return (url_scheme == scheme::http ? "http://" : "https://") + registry;
}

upstream_settings upstream_from_section(const nlohmann::json& section) {
  if (!section.is_object()) throw std::invalid_argument("section must be an object");
  upstream_settings out;
  const auto repo = optional_string(section, "imagesRepo");
  if (repo.empty()) throw std::invalid_argument("section.imagesRepo is required");
  auto location = repository_location::parse(repo);
  if (!location || location->registry.empty()) {
    throw std::invalid_argument("section.imagesRepo: '" + repo + "' is not host[:port]/path");
  }
  out.images_repo = *location;
  out.options.registry = location->registry;

  const auto sch = optional_string(section, "scheme");
  if (sch.empty() || sch == "HTTPS") {
    out.options.url_scheme = scheme::https;
  } else if (sch == "HTTP") {
    out.options.url_scheme = scheme::http;
  } else {
    throw std::invalid_argument("section.scheme must be HTTP or HTTPS, not '" + sch + "'");
  }

  const auto user = optional_string(section, "username");
  const auto password = optional_string(section, "password");
  const auto license = optional_string(section, "license");
  if (!license.empty()) {
    if (!user.empty() && user != "license-token") {
      throw std::invalid_argument("section.license excludes section.username");
    }
    out.options.auth = credentials{"license-token", license};
  } else if (!user.empty() || !password.empty()) {
    if (user.empty()) throw std::invalid_argument("section.password needs section.username");
    out.options.auth = credentials{user, password};
  }

  out.options.ca_pem = optional_string(section, "ca");
  const auto mode = optional_string(section, "checkMode");
  if (!mode.empty()) {
    if (mode != "Default" && mode != "Relax") {
      throw std::invalid_argument("section.checkMode must be Default or Relax, not '" + mode + "'");
    }
    out.check_mode = mode;
  }
  return out;
}

}  // namespace registryd::oci::client
