#include "settings.hpp"

#include <registryd/sdk/settings_reader.hpp>

#include <algorithm>
#include <string_view>

namespace registryd::unmanaged {
namespace {

// The ModuleConfig's pattern ^[0-9a-zA-Z\.\-]+(\:[0-9]{1,5})?(\/[0-9a-zA-Z\.\-\_]+)*$, spelled
// out: a plugin stays free of <regex>, whose template instances would be exported from the .so.
bool matches_images_repo_pattern(std::string_view repo) {
  auto is_name = [](char c, bool underscore) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           c == '.' || c == '-' || (underscore && c == '_');
  };
  const std::string_view host = repo.substr(0, repo.find('/'));
  const auto colon = host.find(':');
  const std::string_view name = host.substr(0, colon);
  if (name.empty() || !std::all_of(name.begin(), name.end(), [&](char c) { return is_name(c, false); })) {
    return false;
  }
  if (colon != std::string_view::npos) {
    const std::string_view port = host.substr(colon + 1);
    if (port.empty() || port.size() > 5 ||
        !std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; })) {
      return false;
    }
  }
  std::string_view rest = repo.substr(host.size());
  while (!rest.empty()) {  // each "/component"
    rest.remove_prefix(1);
    const std::string_view component = rest.substr(0, rest.find('/'));
    if (component.empty() ||
        !std::all_of(component.begin(), component.end(), [&](char c) { return is_name(c, true); })) {
      return false;
    }
    rest.remove_prefix(component.size());
  }
  return true;
}

}  // namespace

std::string settings::registry_host() const { return images_repo.substr(0, images_repo.find('/')); }

std::string settings::url_scheme() const { return scheme == "HTTP" ? "http" : "https"; }

settings parse_settings(const nlohmann::json& doc) {
  const sdk::settings_reader in("Unmanaged", doc);
  settings s;
  if (const auto v = in.boolean("legacy")) s.legacy = *v;

  const auto& section = in.object("section", "is required (the unmanaged section, or the install-time imagesRepo)");
  for (const auto& [key, value] : section.items()) {
    static constexpr std::string_view known[] = {"imagesRepo", "scheme",    "username",
                                                 "password",   "ca",        "checkMode"};
    if (key == "ttl" || key == "ttlSeconds") in.fail("section." + key, "is a Proxy mode setting");
    if (key == "license") in.fail("section.license", "must be resolved by the host into username and password");
    if (std::find(std::begin(known), std::end(known), key) == std::end(known)) {
      in.fail("section." + key, "unknown field");
    }
  }

  const auto repo = in.string("section.imagesRepo");
  if (!repo) in.fail("section.imagesRepo", "is required");
  s.images_repo = *repo;
  if (!matches_images_repo_pattern(s.images_repo)) {
    in.fail("section.imagesRepo", "\"" + s.images_repo +
                                      "\" is not a repository like registry.example.com[:port]/path");
  }
  const std::string host = s.registry_host();
  if (host.front() == '.' || host.find("..") != std::string::npos) {
    in.fail("section.imagesRepo", "\"" + host + "\" is not a registry host");
  }
  if (const auto colon = host.find(':'); colon != std::string::npos) {
    const long port = std::stol(host.substr(colon + 1));
    if (port < 1 || port > 65535) in.fail("section.imagesRepo", "port " + std::to_string(port) + " is out of range");
  }

  if (auto v = in.one_of("section.scheme", {"HTTP", "HTTPS"})) s.scheme = *v;
  if (auto v = in.one_of("section.checkMode", {"Default", "Relax"})) s.check_mode = *v;
  s.username = in.string("section.username");
  s.password = in.string("section.password");
  if (s.username.has_value() != s.password.has_value()) {
    in.fail(s.username ? "section.password" : "section.username", "username and password must be given together");
  }
  if (s.username && s.username->empty()) in.fail("section.username", "must not be empty");
  if ((s.ca = in.string("section.ca")) && s.ca->find("-----BEGIN CERTIFICATE-----") == std::string::npos) {
    in.fail("section.ca", "is not a PEM certificate (-----BEGIN CERTIFICATE-----)");
  }

  in.optional_object("host");
  if (auto v = in.string("host.fixedHost")) s.fixed_host = *v;
  return s;
}

}  // namespace registryd::unmanaged
