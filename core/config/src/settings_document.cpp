#include <registryd/config/settings_document.hpp>

namespace registryd::config {
namespace {

nlohmann::json section_document(const registry_section& s) {
  nlohmann::json j = {
      {"imagesRepo", s.images_repo},
      {"scheme", to_string(s.scheme)},
      {"checkMode", to_string(s.check)},
  };
  if (s.credentials) {
    j["username"] = s.credentials->username;
    j["password"] = s.credentials->password;
  }
  if (s.ca) j["ca"] = *s.ca;
  if (s.ttl) {
    j["ttl"] = s.ttl->text;
    j["ttlSeconds"] = s.ttl->duration.count();
  }
  return j;
}

}  // namespace

nlohmann::json settings_document(const module_config& config, const host_settings& host) {
  nlohmann::json section = nullptr;
  if (config.section) {
    section = section_document(*config.section);
  } else if (config.legacy()) {
    registry_section install_time;
    install_time.images_repo = host.install_images_repo;
    section = section_document(install_time);
  }
  const std::string ca_file = (host.state_dir / "pki" / "ca.crt").string();
  nlohmann::json host_doc = {
      {"dataDir", host.data_dir.string()},
      {"stateDir", host.state_dir.string()},
      // The registry CA that clients trust (the host's PKI keeps it there); Proxy and
      // Local put it into the containerd description for the node balancer mirror.
      {"caFile", ca_file},
      {"nodeIP", host.node_ip},
      {"masters", host.masters},
      // "patched": the nodes' containerd reads `rewrite` and `auth` (Direct mode, docs/direct-mode.md).
      {"containerdBuild", host.containerd_patched ? "patched" : "stock"},
      {"fixedHost", fixed_host},
      {"fixedRepository", fixed_repository},
      // Local mode replica sync (docs/replica-sync.md).
      {"replicaPeers", effective_replica_peers(host)},
      {"replicaCaFile", host.replica_ca_file ? host.replica_ca_file->string() : ca_file},
      {"replicaSyncIntervalSeconds", host.replica_sync_interval.count()},
      // Local mode online garbage collection (docs/gc.md).
      {"gcIntervalSeconds", host.gc_interval.count()},
      {"gcGraceSeconds", host.gc_grace.count()},
      // Direct mode's relays in flight (docs/direct-mode.md).
      {"directMaxRelays", host.direct_max_relays},
      {"directMaxRelaysPerClient", host.direct_max_relays_per_client},
      {"directMaxRelaysWaiting", host.direct_max_relays_waiting != 0
                                     ? host.direct_max_relays_waiting
                                     : std::max<std::size_t>(1, host.http.worker_threads / 2)},
  };
  if (host.replica_credentials_file) {
    host_doc["replicaCredentialsFile"] = host.replica_credentials_file->string();
  }
  return {
      {"mode", to_string(config.mode)},
      {"legacy", config.legacy()},
      {"section", std::move(section)},
      {"host", std::move(host_doc)},
  };
}

nlohmann::json packages_document(const module_config& config, const host_settings& host) {
  nlohmann::json doc = settings_document(config, host);
  const auto& p = host.packages;
  doc["packages"] = {
      {"cacheDir", (host.data_dir / "packages").string()},
      {"maxCacheBytes", p.max_cache_bytes},
      {"evictPercent", p.evict_percent},
      {"verifyIntervalSeconds", p.verify_interval.count()},
  };
  if (p.module_sources_dir) doc["packages"]["moduleSourcesDir"] = p.module_sources_dir->string();
  return doc;
}

}  // namespace registryd::config
