#include "settings.hpp"

#include <registryd/sdk/settings_reader.hpp>

namespace registryd::local {

settings parse_settings(const nlohmann::json& doc) {
  const sdk::settings_reader in("Local", doc);
  if (const auto* section = in.find("section"); section != nullptr && (!section->is_object() || !section->empty())) {
    in.fail("section", "Local mode has no settings section");
  }
  in.object("host", "is required (host.dataDir is the storage root)");
  settings s;
  s.data_dir = in.required_string("host.dataDir");
  if (auto v = in.string("host.caFile")) s.ca_file = *v;
  if (auto v = in.string("host.fixedHost")) s.fixed_host = *v;
  if (auto v = in.seconds("host.gcIntervalSeconds")) s.gc_interval = *v;
  if (auto v = in.seconds("host.gcGraceSeconds")) s.gc_grace = *v;
  return s;
}

}  // namespace registryd::local
