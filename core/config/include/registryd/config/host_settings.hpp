// The host's own settings: where it listens, where it keeps data and state, who the masters
// are. Read from an optional YAML file (snake_case keys) over built-in defaults, so the host
// runs with no file at all. docs/configuration.md lists every key.
#pragma once

#include <registryd/config/errors.hpp>
#include <registryd/config/http_settings.hpp>

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace registryd::config {

enum class log_format { text, json };

// The packages proxy (docs/packages-proxy.md): its listener and its cache. It runs beside
// the mode in force; changing these restarts only it.
struct packages_settings {
  // host:port of its HTTPS listener; "" turns the packages proxy off.
  std::string listen_address = "127.0.0.1:4219";
  std::uint64_t max_cache_bytes = 1ULL << 30;  // 1 GiB
  unsigned evict_percent = 80;                 // evict least recently used entries past this
  std::optional<std::filesystem::path> module_sources_dir;  // ModuleSource documents
  std::chrono::seconds verify_interval{86400};  // background re-hash of each entry
  // Static bearer tokens accepted besides the host's own tokens, one per line ('#' comments).
  std::optional<std::filesystem::path> tokens_file;

  friend bool operator==(const packages_settings&, const packages_settings&) = default;
};
// The cluster's shared store (docs/cluster.md), for masters: etcd client URLs and the TLS
// files to reach it. No endpoints: a single host, its state in the state dir alone.
struct cluster_store_settings {
  std::vector<std::string> endpoints;                // http:// or https:// URLs
  std::optional<std::filesystem::path> ca_file;      // verifies etcd's certificates
  std::optional<std::filesystem::path> cert_file;    // our client certificate for etcd
  std::optional<std::filesystem::path> key_file;     // and its key
  // How long the node certificates this master issues are valid; the node agents renew theirs
  // at two thirds of that (`cluster_node_certificate_seconds`).
  std::chrono::seconds node_certificate_lifetime{365 * 86400};

  bool enabled() const noexcept { return !endpoints.empty(); }
  friend bool operator==(const cluster_store_settings&, const cluster_store_settings&) = default;
};
std::string_view to_string(log_format format);  // "text" | "json"

struct host_settings {
  std::string listen_address = "127.0.0.1:5001";  // host:port, port 0 = any free port
  std::filesystem::path data_dir = "/opt/deckhouse/registry";
  std::filesystem::path state_dir = "/var/lib/registryd";
  std::filesystem::path plugin_dir;  // empty: next to the binary (the CLI resolves it)
  std::string node_ip = "127.0.0.1";
  std::vector<std::string> masters = {"127.0.0.1"};  // default: [node_ip]
  std::vector<std::string> extra_server_names;       // more SANs for serving certificates
  std::optional<std::filesystem::path> users_file;
  std::optional<std::filesystem::path> module_config_path;  // none: default_module_config()
  std::string install_images_repo = "registry.deckhouse.io/deckhouse/ce";  // legacy Unmanaged
  log_format log = log_format::text;
  std::filesystem::path containerd_dir = "/etc/containerd";
  // The nodes run the platform's patched containerd (`containerd_build: patched`), which reads
  // `rewrite` and `auth` in hosts.toml: Direct mode then also sends them straight to the upstream.
  bool containerd_patched = false;
  std::chrono::seconds reload_interval{5};
  // Local mode replica sync (docs/replica-sync.md). No list: the other masters, at the listen
  // address's port (5001 when that is 0); an empty list: no peers.
  std::optional<std::vector<std::string>> replica_peers;
  // YAML with `username` and `password` of a mirror-puller account on the peers; none: anonymous.
  std::optional<std::filesystem::path> replica_credentials_file;
  // The CA the peers' serving certificates chain to; none: the host CA (masters share it).
  std::optional<std::filesystem::path> replica_ca_file;
  std::chrono::seconds replica_sync_interval{2};
  // Local mode online garbage collection (docs/gc.md): how often a run starts (0: never; the
  // `registryd gc` command still works) and how old an unreferenced blob must be to go.
  std::chrono::seconds gc_interval{3600};
  std::chrono::seconds gc_grace{3600};
  // Direct mode's relays in flight (each holds a thread, an upstream connection and its
  // buffers until its client has read the answer), in all and per client address; past them a
  // request is answered 503 or 429 (docs/direct-mode.md, "Relays in flight").
  std::size_t direct_max_relays = 1024;
  std::size_t direct_max_relays_per_client = 128;
  // Of those, how many may wait for the upstream's answer head at once, each on a worker: past
  // it 503, so a slow or stuck upstream leaves workers for everything else. 0: half of
  // http_worker_threads (at least 1).
  std::size_t direct_max_relays_waiting = 0;
  // The front door's threads, timeouts and limits (`http_*` keys).
  http_settings http;
  // The packages proxy (`packages_*` keys).
  packages_settings packages;
  // The cluster store (`cluster_store*` keys).
  cluster_store_settings cluster;

  friend bool operator==(const host_settings&, const host_settings&) = default;
};

// The limits of config_reload_interval_seconds.
inline constexpr std::chrono::seconds minimum_reload_interval{1};
inline constexpr std::chrono::seconds maximum_reload_interval{86400};

// The limits of replica_sync_interval_seconds.
inline constexpr std::chrono::seconds minimum_replica_sync_interval{1};
inline constexpr std::chrono::seconds maximum_replica_sync_interval{3600};

// The limits of cluster_node_certificate_seconds.
inline constexpr std::chrono::seconds minimum_node_certificate_lifetime{30};
inline constexpr std::chrono::seconds maximum_node_certificate_lifetime{5 * 365 * 86400};

// The limits of gc_interval_seconds (0, off, is allowed too) and gc_grace_seconds.
inline constexpr std::chrono::seconds minimum_gc_interval{1};
inline constexpr std::chrono::seconds maximum_gc_interval{7 * 86400};
inline constexpr std::chrono::seconds maximum_gc_grace{30 * 86400};

// The replica peers as host:port: replica_peers when set, else every master but node_ip at
// the listen address's port (5001 when that port is 0 or unreadable).
std::vector<std::string> effective_replica_peers(const host_settings& s);

// Every host setting under its YAML key, defaults filled in (`registryd config dump`); a
// parse of this document gives `s` back. No key holds a secret: secrets live in files.
nlohmann::json host_settings_document(const host_settings& s);

// The built-in defaults (equal to a value-initialised host_settings).
host_settings default_host_settings();

// Parses host settings YAML over the defaults. Relative paths are resolved against
// `base_dir`; with an empty `base_dir` they are errors. An empty document gives the defaults.
// `source` names the input in syntax errors, as in parse_module_config.
checked<host_settings> parse_host_settings(std::string_view yaml,
                                           const std::filesystem::path& base_dir = {},
                                           std::string_view source = {});

// Reads `file` (relative paths inside resolve against its directory), or returns the
// defaults when there is no file.
checked<host_settings> load_host_settings(const std::optional<std::filesystem::path>& file);

}  // namespace registryd::config
