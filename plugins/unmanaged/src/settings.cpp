#include "settings.hpp"

#include <algorithm>
#include <initializer_list>
#include <stdexcept>
#include <string_view>

namespace registryd::unmanaged {
namespace {

using nlohmann::json;

[[noreturn]] void fail(const std::string& path, const std::string& why) {
  throw std::invalid_argument("invalid Unmanaged settings: " + path + ": " + why);
}

const json* optional_field(const json& obj, const char* key) {
  const auto it = obj.find(key);
  return it == obj.end() || it->is_null() ? nullptr : &*it;
}

std::string string_field(const json& v, const std::string& path) {
  if (!v.is_string()) fail(path, std::string("must be a string, not ") + v.type_name());
  return v.get<std::string>();
}

std::string one_of(const json& v, const std::string& path,
                   std::initializer_list<std::string_view> allowed) {
  const std::string s = string_field(v, path);
  if (std::find(allowed.begin(), allowed.end(), s) == allowed.end()) {
    std::string list;
    for (const auto a : allowed) list += (list.empty() ? "" : ", ") + std::string(a);
    fail(path, "\"" + s + "\" is not one of " + list);
  }
  return s;
}

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

settings parse_settings(const json& doc) {
  if (!doc.is_object()) fail("$", std::string("must be a JSON object, not ") + doc.type_name());
  settings s;

  const json* mode = optional_field(doc, "mode");
  if (mode == nullptr) fail("mode", "is required");
  if (string_field(*mode, "mode") != "Unmanaged") {
    fail("mode", "\"" + mode->get<std::string>() + "\" given to the Unmanaged plugin");
  }
  if (const json* legacy = optional_field(doc, "legacy")) {
    if (!legacy->is_boolean()) fail("legacy", std::string("must be a boolean, not ") + legacy->type_name());
    s.legacy = legacy->get<bool>();
  }

  const json* section = optional_field(doc, "section");
  if (section == nullptr) fail("section", "is required (the unmanaged section, or the install-time imagesRepo)");
  if (!section->is_object()) fail("section", std::string("must be an object, not ") + section->type_name());
  for (const auto& [key, value] : section->items()) {
    static constexpr std::string_view known[] = {"imagesRepo", "scheme",    "username",
                                                 "password",   "ca",        "checkMode"};
    if (key == "ttl" || key == "ttlSeconds") fail("section." + key, "is a Proxy mode setting");
    if (key == "license") fail("section.license", "must be resolved by the host into username and password");
    if (std::find(std::begin(known), std::end(known), key) == std::end(known)) {
      fail("section." + key, "unknown field");
    }
  }

  const json* repo = optional_field(*section, "imagesRepo");
  if (repo == nullptr) fail("section.imagesRepo", "is required");
  s.images_repo = string_field(*repo, "section.imagesRepo");
  if (!matches_images_repo_pattern(s.images_repo)) {
    fail("section.imagesRepo", "\"" + s.images_repo +
                                   "\" is not a repository like registry.example.com[:port]/path");
  }
  const std::string host = s.registry_host();
  if (host.front() == '.' || host.find("..") != std::string::npos) {
    fail("section.imagesRepo", "\"" + host + "\" is not a registry host");
  }
  if (const auto colon = host.find(':'); colon != std::string::npos) {
    const long port = std::stol(host.substr(colon + 1));
    if (port < 1 || port > 65535) fail("section.imagesRepo", "port " + std::to_string(port) + " is out of range");
  }

  if (const json* v = optional_field(*section, "scheme")) s.scheme = one_of(*v, "section.scheme", {"HTTP", "HTTPS"});
  if (const json* v = optional_field(*section, "checkMode")) {
    s.check_mode = one_of(*v, "section.checkMode", {"Default", "Relax"});
  }
  if (const json* v = optional_field(*section, "username")) s.username = string_field(*v, "section.username");
  if (const json* v = optional_field(*section, "password")) s.password = string_field(*v, "section.password");
  if (s.username.has_value() != s.password.has_value()) {
    fail(s.username ? "section.password" : "section.username",
         "username and password must be given together");
  }
  if (s.username && s.username->empty()) fail("section.username", "must not be empty");
  if (const json* v = optional_field(*section, "ca")) {
    s.ca = string_field(*v, "section.ca");
    if (s.ca->find("-----BEGIN CERTIFICATE-----") == std::string::npos) {
      fail("section.ca", "is not a PEM certificate (-----BEGIN CERTIFICATE-----)");
    }
  }

  if (const json* h = optional_field(doc, "host")) {
    if (!h->is_object()) fail("host", std::string("must be an object, not ") + h->type_name());
    if (const json* f = optional_field(*h, "fixedHost")) s.fixed_host = string_field(*f, "host.fixedHost");
  }
  return s;
}

}  // namespace registryd::unmanaged
