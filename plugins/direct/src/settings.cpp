#include "settings.hpp"

#include <registryd/oci/reference.hpp>
#include <registryd/sdk/settings_reader.hpp>

#include <stdexcept>

namespace registryd::direct {

settings parse_settings(const nlohmann::json& doc) {
  const sdk::settings_reader in("Direct", doc);
  const auto& section = in.object("section", "is required (the `direct` section of spec.settings.registry)");
  settings s;
  try {
    s.upstream = oci::client::upstream_from_section(section);
  } catch (const std::invalid_argument& e) {
    throw std::invalid_argument(std::string("invalid Direct settings: ") + e.what());
  }
  s.upstream.options.connect_timeout = upstream_connect_timeout;

  in.optional_object("host");
  if (auto v = in.string("host.fixedRepository")) s.fixed_repository = *v;
  if (!oci::is_valid_repository_name(s.fixed_repository)) {
    in.fail("host.fixedRepository", "'" + s.fixed_repository + "' is not a repository name");
  }
  if (auto v = in.string("host.fixedHost")) s.fixed_host = *v;
  if (s.fixed_host.empty()) in.fail("host.fixedHost", "must not be empty");
  if (auto v = in.string("host.caFile")) s.ca_file = *v;

  if (const auto* m = in.find("host.masters")) {
    if (!m->is_array()) in.fail("host.masters", "must be an array of addresses");
    for (const auto& ip : *m) {
      if (!ip.is_string() || ip.get<std::string>().empty()) in.fail("host.masters", "must hold non-empty strings");
      s.masters.push_back(ip.get<std::string>());
    }
  }
  if (auto build = in.string("host.containerdBuild")) {
    if (*build != "stock" && *build != "patched") {
      in.fail("host.containerdBuild", "must be stock or patched, not '" + *build + "'");
    }
    s.patched_containerd = *build == "patched";
  }
  if (auto n = in.positive("host.directMaxRelays")) s.max_relays = static_cast<std::size_t>(*n);
  if (auto n = in.positive("host.directMaxRelaysPerClient")) s.max_relays_per_client = static_cast<std::size_t>(*n);
  if (auto n = in.positive("host.directMaxRelaysWaiting")) s.max_relays_waiting = static_cast<std::size_t>(*n);
  if (s.masters.empty()) {
    if (auto node_ip = in.string("host.nodeIP"); node_ip && !node_ip->empty()) s.masters.push_back(*node_ip);
  }
  return s;
}

}  // namespace registryd::direct
