// The packages proxy's view of its settings document (docs/packages-proxy.md).
//
// The host builds the document from the mode in force and the host settings: the same
// {"mode", "section", "host"} object a mode plugin gets (docs/plugin-authors.md), plus a
// `packages` object with the cache's settings. The default repository follows the mode: the
// upstream imagesRepo in Direct, Proxy and Unmanaged mode, the cluster's own store in Local
// mode (an air-gapped cluster has no other).
#pragma once

#include <registryd/oci/client/options.hpp>

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

namespace registryd::packages {

inline constexpr std::uint64_t default_max_cache_bytes = 1ULL << 30;  // 1 GiB
inline constexpr unsigned default_evict_percent = 80;
inline constexpr std::chrono::seconds default_verify_interval{24 * 3600};
inline constexpr std::chrono::seconds default_sources_poll{5};

struct settings {
  std::string mode;  // the mode in force ("Direct", "Proxy", "Local", "Unmanaged")
  // The default repository's registry and how to reach it (the mode's section), when the
  // mode has an upstream.
  std::optional<oci::client::upstream_settings> upstream;
  // Local mode: the store root (host.dataDir) whose `fixed_repository` is the default one.
  std::optional<std::filesystem::path> local_store;
  std::string fixed_repository = "system/deckhouse";

  std::filesystem::path cache_root;                      // packages.cacheDir, default <dataDir>/packages
  std::uint64_t max_cache_bytes = default_max_cache_bytes;  // packages.maxCacheBytes
  unsigned evict_percent = default_evict_percent;        // packages.evictPercent (1..100)
  // A directory of ModuleSource documents (YAML or JSON, *.yaml *.yml *.json), re-read when it
  // changes; none: no per-repository credentials.
  std::optional<std::filesystem::path> module_sources_dir;  // packages.moduleSourcesDir
  std::chrono::seconds sources_poll = default_sources_poll;  // packages.moduleSourcesPollSeconds
  // Each cached entry is re-hashed in the background at most this long after its last check.
  std::chrono::seconds verify_interval = default_verify_interval;  // packages.verifyIntervalSeconds

  // Usage past which least recently used entries are evicted.
  std::uint64_t evict_at() const { return max_cache_bytes / 100 * evict_percent + max_cache_bytes % 100 * evict_percent / 100; }
};

// Parses and checks the document. Throws std::invalid_argument naming the field, e.g.
// `invalid PackagesProxy settings: packages.evictPercent: must be between 1 and 100`.
settings parse_settings(const nlohmann::json& doc);

}  // namespace registryd::packages
