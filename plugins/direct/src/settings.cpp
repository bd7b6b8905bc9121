#include "settings.hpp"

#include <registryd/oci/reference.hpp>

#include <stdexcept>

namespace registryd::direct {
namespace {

using nlohmann::json;

[[noreturn]] void fail(const std::string& why) {
  throw std::invalid_argument("invalid Direct settings: " + why);
}

std::string string_or(const json& obj, const char* key, const std::string& path, std::string fallback) {
  const auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return fallback;
  if (!it->is_string()) fail(path + " must be a string, not " + it->type_name());
  return it->get<std::string>();
}

}  // namespace

settings parse_settings(const json& doc) {
  if (!doc.is_object()) fail("the settings document must be an object");
  const auto section = doc.find("section");
  if (section == doc.end() || !section->is_object()) {
    fail("section must be an object (the `direct` section of spec.settings.registry)");
  }
  settings s;
  try {
    s.upstream = oci::client::upstream_from_section(*section);
  } catch (const std::invalid_argument& e) {
    fail(e.what());
  }
  s.upstream.options.connect_timeout = upstream_connect_timeout;

  static const json empty = json::object();
  const auto host_it = doc.find("host");
  if (host_it != doc.end() && !host_it->is_null() && !host_it->is_object()) fail("host must be an object");
  const json& host = host_it != doc.end() && host_it->is_object() ? *host_it : empty;

  s.fixed_repository = string_or(host, "fixedRepository", "host.fixedRepository", s.fixed_repository);
  if (!oci::is_valid_repository_name(s.fixed_repository)) {
    fail("host.fixedRepository: '" + s.fixed_repository + "' is not a repository name");
  }
  s.fixed_host = string_or(host, "fixedHost", "host.fixedHost", s.fixed_host);
  if (s.fixed_host.empty()) fail("host.fixedHost must not be empty");
  s.ca_file = string_or(host, "caFile", "host.caFile", "");

  if (const auto m = host.find("masters"); m != host.end() && !m->is_null()) {
    if (!m->is_array()) fail("host.masters must be an array of addresses");
    for (const auto& ip : *m) {
      if (!ip.is_string() || ip.get<std::string>().empty()) fail("host.masters must hold non-empty strings");
      s.masters.push_back(ip.get<std::string>());
    }
  }
  if (s.masters.empty()) {
    const auto node_ip = string_or(host, "nodeIP", "host.nodeIP", "");
    if (!node_ip.empty()) s.masters.push_back(node_ip);
  }
  return s;
}

}  // namespace registryd::direct
