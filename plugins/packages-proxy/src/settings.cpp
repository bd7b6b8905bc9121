#include "settings.hpp"

#include <registryd/sdk/settings_reader.hpp>

#include <stdexcept>

namespace registryd::packages {

settings parse_settings(const nlohmann::json& doc) {
  const sdk::settings_reader in("PackagesProxy", doc, sdk::settings_reader::any_mode);
  settings s;
  s.mode = in.required_string("mode");
  in.object("host", "is required (host.dataDir holds the cache)");
  const std::filesystem::path data_dir = in.required_string("host.dataDir");
  if (auto v = in.string("host.fixedRepository")) {
    if (v->empty()) in.fail("host.fixedRepository", "must not be empty");
    s.fixed_repository = *v;
  }
  if (s.mode == "Local") {
    s.local_store = data_dir;
  } else if (const auto* section = in.optional_object("section")) {
    try {
      s.upstream = oci::client::upstream_from_section(*section);
    } catch (const std::invalid_argument& e) {
      in.fail("section", e.what());
    }
  }

  s.cache_root = data_dir / "packages";
  in.optional_object("packages");
  if (auto v = in.string("packages.cacheDir")) {
    if (v->empty()) in.fail("packages.cacheDir", "must not be empty");
    s.cache_root = *v;
  }
  if (const auto v = in.positive("packages.maxCacheBytes")) s.max_cache_bytes = *v;
  if (const auto v = in.count("packages.evictPercent")) {
    if (*v < 1 || *v > 100) in.fail("packages.evictPercent", "must be between 1 and 100");
    s.evict_percent = static_cast<unsigned>(*v);
  }
  if (auto v = in.string("packages.moduleSourcesDir"); v && !v->empty()) s.module_sources_dir = *v;
  if (const auto v = in.positive("packages.moduleSourcesPollSeconds")) s.sources_poll = std::chrono::seconds(*v);
  if (const auto v = in.positive("packages.verifyIntervalSeconds")) s.verify_interval = std::chrono::seconds(*v);
  return s;
}

}  // namespace registryd::packages
