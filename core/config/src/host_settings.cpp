#include <registryd/config/host_settings.hpp>

#include <registryd/config/address.hpp>
#include <registryd/config/module_config.hpp>
#include <registryd/util/atomic_file.hpp>

#include "yaml_reader.hpp"

#include <algorithm>
#include <array>
#include <exception>

namespace registryd::config {
namespace {

using detail::is_absent;
using detail::map_reader;

constexpr std::array<std::string_view, 2> log_format_names = {"text", "json"};
constexpr std::array<std::string_view, 2> containerd_build_names = {"stock", "patched"};
constexpr std::array<std::string_view, 2> file_transfer_names = {"copy", "sendfile"};
constexpr std::array<std::string_view, 2> tls_offload_names = {"user", "kernel"};
constexpr std::array<std::string_view, 2> tls_sealer_names = {"openssl", "registryd"};

// A path value; relative paths resolve against `base_dir`, or are errors without one.
std::optional<std::filesystem::path> read_path(const YAML::Node& node, const std::string& path,
                                               const std::filesystem::path& base_dir,
                                               field_errors& errors, bool allow_empty = false) {
  auto text = allow_empty ? detail::read_string(node, path, errors)
                          : detail::read_non_empty_string(node, path, errors);
  if (!text) return std::nullopt;
  if (text->empty()) return std::filesystem::path();
  std::filesystem::path p(*text);
  if (p.is_absolute()) return p.lexically_normal();
  if (base_dir.empty()) {
    errors.push_back({path, "must be an absolute path, got " + detail::quoted(*text)});
    return std::nullopt;
  }
  return (base_dir / p).lexically_normal();
}

std::optional<std::string> read_ip(const YAML::Node& node, const std::string& path,
                                   field_errors& errors) {
  auto text = detail::read_non_empty_string(node, path, errors);
  if (!text) return std::nullopt;
  if (!is_ip_address(*text)) {
    errors.push_back({path, "must be an IP address, got " + detail::quoted(*text)});
    return std::nullopt;
  }
  if (is_unspecified_ip(*text)) {
    errors.push_back({path, "must be the address of one host, got " + detail::quoted(*text)});
    return std::nullopt;
  }
  return text;
}

std::optional<std::vector<std::string>> read_masters(const YAML::Node& node, field_errors& errors) {
  const std::string path = "masters";
  if (is_absent(node)) return std::nullopt;
  if (!node.IsSequence()) {
    errors.push_back({path, "must be a list, got " + detail::kind_of(node)});
    return std::nullopt;
  }
  if (node.size() == 0) {
    errors.push_back({path, "must list at least one master IP address"});
    return std::nullopt;
  }
  std::vector<std::string> masters;
  bool good = true;
  std::size_t index = 0;
  for (const auto& item : node) {
    const std::string p = detail::item_path(path, index);
    if (is_absent(item)) {
      errors.push_back({p, "must be an IP address, got null"});
      good = false;
    } else if (auto ip = read_ip(item, p, errors)) {
      for (std::size_t j = 0; j < masters.size(); ++j) {
        if (masters[j] == *ip) {
          errors.push_back({p, "duplicates " + detail::item_path(path, j)});
          good = false;
        }
      }
      masters.push_back(std::move(*ip));
    } else {
      good = false;
      masters.emplace_back();  // keep indexes aligned for the duplicate check
    }
    ++index;
  }
  if (!good) return std::nullopt;
  return masters;
}

// host:port of each peer, distinct, none with port 0; an empty list is allowed (no peers).
std::optional<std::vector<std::string>> read_replica_peers(const YAML::Node& node,
                                                           field_errors& errors) {
  const std::string path = "replica_peers";
  if (is_absent(node)) return std::nullopt;
  std::vector<std::string> seen;
  return detail::read_string_list(
      node, path, errors, [&](const std::string& peer) -> std::optional<std::string> {
        auto parsed = parse_host_port(peer);
        if (!parsed) return parsed.error_message();
        if (parsed->port == 0) return "must name the peer's port, got " + detail::quoted(peer);
        if (std::find(seen.begin(), seen.end(), peer) != seen.end()) {
          return "lists " + detail::quoted(peer) + " twice";
        }
        seen.push_back(peer);
        return std::nullopt;
      });
}

// The front door's numeric settings: key, where it goes, and its range.
struct http_count_key {
  const char* key;
  std::size_t http_settings::*field;
  long long min;
  long long max;
};
constexpr std::array<http_count_key, 15> http_count_keys = {{
    {"http_io_threads", &http_settings::io_threads, 0, 64},
    {"http_worker_threads", &http_settings::worker_threads, 1, 4096},
    {"http_max_queued_requests", &http_settings::max_queued_requests, 1, 1000000},
    {"http_max_request_line_bytes", &http_settings::max_request_line, 256, 1024 * 1024},
    {"http_max_header_bytes", &http_settings::max_header_bytes, 1024, 16 * 1024 * 1024},
    {"http_max_header_count", &http_settings::max_header_count, 8, 10000},
    {"http_max_connections", &http_settings::max_connections, 1, 1000000},
    {"http_max_connections_per_client", &http_settings::max_connections_per_client, 1, 1000000},
    {"http_auth_failures_per_minute", &http_settings::auth_failures_per_minute, 0, 1000000},
    {"http_keep_alive_max_requests", &http_settings::keep_alive_max_requests, 1, 1000000},
    {"http_stream_buffer_budget_bytes", &http_settings::stream_buffer_budget, 0, 1LL << 30},
    {"http_file_buffer_budget_bytes", &http_settings::file_buffer_budget, 0, 1LL << 30},
    {"http_body_read_ahead_budget_bytes", &http_settings::read_ahead_budget, 0, 1LL << 34},
    {"http_tcp_notsent_lowat_bytes", &http_settings::tcp_notsent_lowat, 0, 64LL << 20},
    {"http_body_busy_min_rate_bytes", &http_settings::body_busy_min_rate, 0, 1LL << 30},
}};
struct http_timeout_key {
  const char* key;
  std::chrono::milliseconds http_settings::*field;
  long long max_seconds;
};
constexpr std::array<http_timeout_key, 4> http_timeout_keys = {{
    {"http_handshake_timeout_seconds", &http_settings::handshake_timeout, 3600},
    {"http_head_timeout_seconds", &http_settings::head_timeout, 3600},
    {"http_idle_timeout_seconds", &http_settings::idle_timeout, 86400},
    {"http_body_timeout_seconds", &http_settings::body_timeout, 86400},
}};

// An integer from `min` to `max`, or an error naming the range.
std::optional<long long> read_ranged(map_reader& fields, const char* key, long long min, long long max,
                                     std::string_view unit, field_errors& errors) {
  auto n = detail::read_integer(fields.take(key), key, errors);
  if (!n) return std::nullopt;
  if (*n < min || *n > max) {
    errors.push_back({key, "must be from " + std::to_string(min) + " to " + std::to_string(max) +
                               std::string(unit) + ", got " + std::to_string(*n)});
    return std::nullopt;
  }
  return n;
}

// A duration key (`*_seconds`): a whole number of seconds, or a duration with units as the
// ModuleConfig's ttl takes them ("10m", "1h30m", "90s"), from `min` to `max` seconds; with
// `off_allowed` also 0.
std::optional<std::chrono::seconds> read_seconds(map_reader& fields, const char* key, std::int64_t min,
                                                 std::int64_t max, field_errors& errors, bool off_allowed = false) {
  const YAML::Node node = fields.take(key);
  if (detail::is_absent(node)) return std::nullopt;
  std::int64_t seconds = 0;
  if (detail::kind_of(node) == "a string") {
    const auto text = node.as<std::string>();
    auto parsed = parse_duration(text);
    if (!parsed) {
      errors.push_back({key, "must be a number of seconds or a duration like 90s, 10m or 1h30m, got " +
                                 detail::quoted(text)});
      return std::nullopt;
    }
    seconds = parsed->count();
  } else {
    auto n = detail::read_integer(node, key, errors);
    if (!n) return std::nullopt;
    seconds = *n;
  }
  if (off_allowed && seconds == 0) return std::chrono::seconds(0);
  if (seconds < min || seconds > max) {
    errors.push_back({key, std::string("must be ") + (off_allowed ? "0 (off) or " : "") + "from " +
                               std::to_string(min) + " to " + std::to_string(max) + " seconds, got " +
                               std::to_string(seconds)});
    return std::nullopt;
  }
  return std::chrono::seconds(seconds);
}

void read_http_settings(map_reader& fields, http_settings& http, field_errors& errors) {
  for (const auto& k : http_count_keys) {
    if (auto n = read_ranged(fields, k.key, k.min, k.max, "", errors)) http.*k.field = static_cast<std::size_t>(*n);
  }
  for (const auto& k : http_timeout_keys) {
    if (auto d = read_seconds(fields, k.key, 1, k.max_seconds, errors)) http.*k.field = *d;
  }
  if (auto d = read_seconds(fields, "http_body_busy_timeout_seconds", 1, 86400, errors, true)) {
    http.body_busy_timeout = *d;
  }
  if (auto n = read_ranged(fields, "http_drain_limit_bytes", 0, 1LL << 30, " bytes", errors)) {
    http.drain_limit_bytes = static_cast<std::uint64_t>(*n);
  }
  if (auto i = detail::read_enum(fields.take("http_file_transfer"), "http_file_transfer",
                                 file_transfer_names, errors)) {
    http.sendfile = *i == 1;
  }
  if (auto i = detail::read_enum(fields.take("http_tls_offload"), "http_tls_offload", tls_offload_names, errors)) {
    http.tls_kernel_offload = *i == 1;
  }
  if (auto i = detail::read_enum(fields.take("http_tls_sealer"), "http_tls_sealer", tls_sealer_names, errors)) {
    http.tls_registryd_seals = *i == 1;
  }
}

void read_packages_settings(map_reader& fields, const std::filesystem::path& base_dir, packages_settings& p,
                            field_errors& errors) {
  if (auto text = detail::read_string(fields.take("packages_listen_address"), "packages_listen_address", errors)) {
    if (text->empty() || *text == "off") {
      p.listen_address.clear();
    } else if (auto parsed = parse_host_port(*text); !parsed) {
      errors.push_back({"packages_listen_address", parsed.error_message() + " (or \"off\")"});
    } else {
      p.listen_address = std::move(*text);
    }
  }
  if (auto n = read_ranged(fields, "packages_max_cache_bytes", 1 << 20, 1LL << 50, " bytes", errors)) {
    p.max_cache_bytes = static_cast<std::uint64_t>(*n);
  }
  if (auto n = read_ranged(fields, "packages_evict_percent", 1, 100, " percent", errors)) {
    p.evict_percent = static_cast<unsigned>(*n);
  }
  if (auto d = read_path(fields.take("packages_module_sources_dir"), "packages_module_sources_dir", base_dir, errors)) {
    p.module_sources_dir = *d;
  }
  if (auto d = read_seconds(fields, "packages_verify_interval_seconds", 1, 30 * 86400, errors)) {
    p.verify_interval = *d;
  }
  if (auto f = read_path(fields.take("packages_tokens_file"), "packages_tokens_file", base_dir, errors)) {
    p.tokens_file = *f;
  }
}

// `cluster_store` (etcd client URLs) and the files to reach it.
void read_cluster_settings(map_reader& fields, const std::filesystem::path& base_dir, host_settings& s,
                           field_errors& errors) {
  auto& c = s.cluster;
  const YAML::Node urls = fields.take("cluster_store");
  if (!is_absent(urls)) {
    std::vector<std::string> seen;
    if (auto list = detail::read_string_list(
            urls, "cluster_store", errors, [&](const std::string& url) -> std::optional<std::string> {
              if (!url.starts_with("http://") && !url.starts_with("https://")) {
                return "must be an etcd client URL (https://host:2379 or http://...), got " +
                       detail::quoted(url);
              }
              if (std::find(seen.begin(), seen.end(), url) != seen.end()) {
                return "lists " + detail::quoted(url) + " twice";
              }
              seen.push_back(url);
              return std::nullopt;
            })) {
      c.endpoints = std::move(*list);
    }
  }
  if (auto p = read_path(fields.take("cluster_store_ca_file"), "cluster_store_ca_file", base_dir, errors)) {
    c.ca_file = *p;
  }
  if (auto p = read_path(fields.take("cluster_store_cert_file"), "cluster_store_cert_file", base_dir, errors)) {
    c.cert_file = *p;
  }
  if (auto p = read_path(fields.take("cluster_store_key_file"), "cluster_store_key_file", base_dir, errors)) {
    c.key_file = *p;
  }
  if (auto d = read_seconds(fields, "cluster_node_certificate_seconds", minimum_node_certificate_lifetime.count(),
                            maximum_node_certificate_lifetime.count(), errors)) {
    c.node_certificate_lifetime = *d;
  }
  if (c.cert_file.has_value() != c.key_file.has_value()) {
    errors.push_back({c.cert_file ? "cluster_store_key_file" : "cluster_store_cert_file",
                      "a client certificate for the cluster store needs its key, and a key its certificate"});
  }
  if (c.enabled() && s.users_file) {
    errors.push_back({"users_file", "a cluster member takes its users from the cluster store; drop users_file "
                                    "and change users with `registryd cluster set-user`"});
  }
}

// A SAN: a DNS name, a wildcard DNS name (*.example.com) or an IP address.
bool is_server_name(std::string_view name) {
  if (name.starts_with("*.")) return is_dns_name(name.substr(2));
  return is_dns_name(name) || is_ip_address(name);
}

std::optional<host_settings> parse_root(const YAML::Node& root,
                                        const std::filesystem::path& base_dir,
                                        field_errors& errors) {
  host_settings s = default_host_settings();
  if (is_absent(root)) return s;
  if (!root.IsMap()) {
    errors.push_back({"", "host settings must be a map, got " + detail::kind_of(root)});
    return std::nullopt;
  }
  const std::size_t errors_before = errors.size();
  map_reader fields(root, "", errors);

  if (auto text =
          detail::read_non_empty_string(fields.take("listen_address"), "listen_address", errors)) {
    if (auto parsed = parse_host_port(*text); !parsed) {
      errors.push_back({"listen_address", parsed.error_message()});
    } else {
      s.listen_address = std::move(*text);
    }
  }
  if (auto p = read_path(fields.take("data_dir"), "data_dir", base_dir, errors)) s.data_dir = *p;
  if (auto p = read_path(fields.take("state_dir"), "state_dir", base_dir, errors)) s.state_dir = *p;
  if (auto p = read_path(fields.take("plugin_dir"), "plugin_dir", base_dir, errors, true)) {
    s.plugin_dir = *p;
  }
  if (auto ip = read_ip(fields.take("node_ip"), "node_ip", errors)) s.node_ip = std::move(*ip);
  if (auto masters = read_masters(fields.take("masters"), errors)) {
    s.masters = std::move(*masters);
  } else {
    s.masters = {s.node_ip};
  }
  if (auto names = detail::read_string_list(
          fields.take("extra_server_names"), "extra_server_names", errors,
          [](const std::string& name) -> std::optional<std::string> {
            if (is_server_name(name)) return std::nullopt;
            return "must be a DNS name, a wildcard DNS name (*.example.com) or an IP address, "
                   "got " +
                   detail::quoted(name);
          })) {
    s.extra_server_names = std::move(*names);
  }
  if (auto p = read_path(fields.take("users_file"), "users_file", base_dir, errors)) {
    s.users_file = *p;
  }
  if (auto p = read_path(fields.take("module_config"), "module_config", base_dir, errors)) {
    s.module_config_path = *p;
  }
  if (auto repo =
          detail::read_string(fields.take("install_images_repo"), "install_images_repo", errors)) {
    if (auto why = check_images_repo(*repo)) {
      errors.push_back({"install_images_repo", std::move(*why)});
    } else {
      s.install_images_repo = std::move(*repo);
    }
  }
  if (auto i =
          detail::read_enum(fields.take("log_format"), "log_format", log_format_names, errors)) {
    s.log = static_cast<log_format>(*i);
  }
  if (auto p = read_path(fields.take("containerd_dir"), "containerd_dir", base_dir, errors)) {
    s.containerd_dir = *p;
  }
  if (auto i = detail::read_enum(fields.take("containerd_build"), "containerd_build", containerd_build_names,
                                 errors)) {
    s.containerd_patched = *i == 1;
  }
  if (auto d = read_seconds(fields, "config_reload_interval_seconds", minimum_reload_interval.count(),
                            maximum_reload_interval.count(), errors)) {
    s.reload_interval = *d;
  }
  if (auto peers = read_replica_peers(fields.take("replica_peers"), errors)) {
    s.replica_peers = std::move(*peers);
  }
  if (auto p = read_path(fields.take("replica_credentials_file"), "replica_credentials_file", base_dir,
                         errors)) {
    s.replica_credentials_file = *p;
  }
  if (auto p = read_path(fields.take("replica_ca_file"), "replica_ca_file", base_dir, errors)) {
    s.replica_ca_file = *p;
  }
  if (auto d = read_seconds(fields, "replica_sync_interval_seconds", minimum_replica_sync_interval.count(),
                            maximum_replica_sync_interval.count(), errors)) {
    s.replica_sync_interval = *d;
  }
  if (auto d = read_seconds(fields, "gc_interval_seconds", minimum_gc_interval.count(), maximum_gc_interval.count(),
                            errors, true)) {
    s.gc_interval = *d;
  }
  if (auto d = read_seconds(fields, "gc_grace_seconds", 0, maximum_gc_grace.count(), errors)) s.gc_grace = *d;
  if (auto n = read_ranged(fields, "direct_max_relays", 1, 1000000, "", errors)) {
    s.direct_max_relays = static_cast<std::size_t>(*n);
  }
  if (auto n = read_ranged(fields, "direct_max_relays_per_client", 1, 1000000, "", errors)) {
    s.direct_max_relays_per_client = static_cast<std::size_t>(*n);
  }
  if (auto n = read_ranged(fields, "direct_max_relays_waiting", 0, 1000000, "", errors)) {
    s.direct_max_relays_waiting = static_cast<std::size_t>(*n);
  }
  read_http_settings(fields, s.http, errors);
  read_packages_settings(fields, base_dir, s.packages, errors);
  read_cluster_settings(fields, base_dir, s, errors);
  fields.reject_unknown();
  if (errors.size() != errors_before) return std::nullopt;
  return s;
}

}  // namespace

std::string_view to_string(log_format format) {
  return log_format_names.at(static_cast<std::size_t>(format));
}

host_settings default_host_settings() { return host_settings{}; }

nlohmann::json host_settings_document(const host_settings& s) {
  const auto path_or_null = [](const std::optional<std::filesystem::path>& p) {
    return p ? nlohmann::json(p->string()) : nlohmann::json(nullptr);
  };
  nlohmann::json doc = {
      {"listen_address", s.listen_address},
      {"data_dir", s.data_dir.string()},
      {"state_dir", s.state_dir.string()},
      {"plugin_dir", s.plugin_dir.empty() ? nlohmann::json(nullptr) : nlohmann::json(s.plugin_dir.string())},
      {"node_ip", s.node_ip},
      {"masters", s.masters},
      {"extra_server_names", s.extra_server_names},
      {"users_file", path_or_null(s.users_file)},
      {"module_config", path_or_null(s.module_config_path)},
      {"install_images_repo", s.install_images_repo},
      {"log_format", to_string(s.log)},
      {"containerd_dir", s.containerd_dir.string()},
      {"containerd_build", containerd_build_names.at(s.containerd_patched ? 1 : 0)},
      {"config_reload_interval_seconds", s.reload_interval.count()},
      {"replica_peers", s.replica_peers ? nlohmann::json(*s.replica_peers) : nlohmann::json(nullptr)},
      {"replica_credentials_file", path_or_null(s.replica_credentials_file)},
      {"replica_ca_file", path_or_null(s.replica_ca_file)},
      {"replica_sync_interval_seconds", s.replica_sync_interval.count()},
      {"gc_interval_seconds", s.gc_interval.count()},
      {"gc_grace_seconds", s.gc_grace.count()},
      {"direct_max_relays", s.direct_max_relays},
      {"direct_max_relays_per_client", s.direct_max_relays_per_client},
      {"direct_max_relays_waiting", s.direct_max_relays_waiting},
      {"packages_listen_address", s.packages.listen_address.empty() ? std::string("off") : s.packages.listen_address},
      {"packages_max_cache_bytes", s.packages.max_cache_bytes},
      {"packages_evict_percent", s.packages.evict_percent},
      {"packages_module_sources_dir", path_or_null(s.packages.module_sources_dir)},
      {"packages_verify_interval_seconds", s.packages.verify_interval.count()},
      {"packages_tokens_file", path_or_null(s.packages.tokens_file)},
      {"cluster_store", s.cluster.endpoints},
      {"cluster_store_ca_file", path_or_null(s.cluster.ca_file)},
      {"cluster_store_cert_file", path_or_null(s.cluster.cert_file)},
      {"cluster_store_key_file", path_or_null(s.cluster.key_file)},
      {"cluster_node_certificate_seconds", s.cluster.node_certificate_lifetime.count()},
  };
  for (const auto& k : http_count_keys) doc[k.key] = s.http.*k.field;
  for (const auto& k : http_timeout_keys) {
    doc[k.key] = std::chrono::duration_cast<std::chrono::seconds>(s.http.*k.field).count();
  }
  doc["http_body_busy_timeout_seconds"] =
      std::chrono::duration_cast<std::chrono::seconds>(s.http.body_busy_timeout).count();
  doc["http_drain_limit_bytes"] = s.http.drain_limit_bytes;
  doc["http_file_transfer"] = file_transfer_names.at(s.http.sendfile ? 1 : 0);
  doc["http_tls_offload"] = tls_offload_names.at(s.http.tls_kernel_offload ? 1 : 0);
  doc["http_tls_sealer"] = tls_sealer_names.at(s.http.tls_registryd_seals ? 1 : 0);
  return doc;
}

std::vector<std::string> effective_replica_peers(const host_settings& s) {
  if (s.replica_peers) return *s.replica_peers;
  std::uint16_t port = 5001;
  if (auto listen = parse_host_port(s.listen_address); listen && listen->port != 0) port = listen->port;
  std::vector<std::string> out;
  for (const auto& m : s.masters) {
    if (m == s.node_ip) continue;
    const bool v6 = m.find(':') != std::string::npos;
    out.push_back((v6 ? "[" + m + "]" : m) + ":" + std::to_string(port));
  }
  return out;
}

checked<host_settings> parse_host_settings(std::string_view yaml,
                                           const std::filesystem::path& base_dir,
                                           std::string_view source) {
  field_errors errors;
  std::optional<host_settings> settings;
  try {
    if (auto root = detail::load_document(yaml, source, errors)) {
      settings = parse_root(*root, base_dir, errors);
    }
  } catch (const std::exception& e) {
    errors.push_back({std::string(source), std::string("cannot read host settings: ") + e.what()});
  }
  if (!errors.empty() || !settings) {
    if (errors.empty()) errors.push_back({std::string(source), "invalid host settings"});
    return errors;
  }
  return std::move(*settings);
}

checked<host_settings> load_host_settings(const std::optional<std::filesystem::path>& file) {
  if (!file) return default_host_settings();
  std::error_code ec;
  const std::string text = util::read_small_file(*file, ec);
  if (ec) return field_errors{{file->string(), "cannot read: " + ec.message()}};
  std::filesystem::path base = std::filesystem::absolute(*file, ec).parent_path();
  if (ec) base.clear();
  return parse_host_settings(text, base, file->string());
}

}  // namespace registryd::config
