#include <registryd/config/host_settings.hpp>
#include <registryd/util/atomic_file.hpp>

#include "test_data.hpp"

#include <catch2/catch.hpp>
#include <test_support.hpp>

using namespace registryd::config;
using namespace registryd::config::test;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

host_settings parse_ok(const std::string& yaml, const fs::path& base = {}) {
  auto parsed = parse_host_settings(yaml, base);
  INFO(parsed.error_message());
  REQUIRE(parsed.ok());
  return parsed.value();
}

field_errors parse_errors(const std::string& yaml, const fs::path& base = {}) {
  auto parsed = parse_host_settings(yaml, base);
  REQUIRE_FALSE(parsed.ok());
  REQUIRE_FALSE(parsed.errors().empty());
  return parsed.errors();
}

}  // namespace

TEST_CASE("with no host settings file every default applies", "[config][host]") {
  auto loaded = load_host_settings(std::nullopt);
  REQUIRE(loaded.ok());
  const host_settings& s = *loaded;
  CHECK(s.listen_address == "127.0.0.1:5001");
  CHECK(s.data_dir == "/opt/deckhouse/registry");
  CHECK(s.state_dir == "/var/lib/registryd");
  CHECK(s.plugin_dir.empty());
  CHECK(s.node_ip == "127.0.0.1");
  CHECK(s.masters == std::vector<std::string>{"127.0.0.1"});
  CHECK(s.extra_server_names.empty());
  CHECK_FALSE(s.users_file);
  CHECK_FALSE(s.module_config_path);
  CHECK(s.install_images_repo == "registry.deckhouse.io/deckhouse/ce");
  CHECK(s.log == log_format::text);
  CHECK(s.containerd_dir == "/etc/containerd");
  CHECK_FALSE(s.containerd_patched);
  CHECK(s.reload_interval == 5s);
  CHECK(s == default_host_settings());
}

TEST_CASE("an empty or comment-only host settings document gives the defaults", "[config][host]") {
  CHECK(parse_ok("") == default_host_settings());
  CHECK(parse_ok("# nothing here\n") == default_host_settings());
  CHECK(parse_ok("---\n") == default_host_settings());
}

TEST_CASE("every host setting can be set", "[config][host]") {
  const auto s = parse_ok(
      "listen_address: 192.0.2.10:5001\n"
      "data_dir: /srv/registry\n"
      "state_dir: /srv/state\n"
      "plugin_dir: /usr/lib/registryd/plugins\n"
      "node_ip: 192.0.2.10\n"
      "masters: [192.0.2.10, 192.0.2.11, 2001:db8::1]\n"
      "extra_server_names: [registry.example.com, '*.example.org', 198.51.100.7]\n"
      "users_file: /etc/registryd/users.yaml\n"
      "module_config: /etc/registryd/deckhouse.yaml\n"
      "install_images_repo: registry.example.com/deckhouse/ee\n"
      "log_format: json\n"
      "containerd_dir: /tmp/containerd\n"
      "containerd_build: patched\n"
      "config_reload_interval_seconds: 30\n");
  CHECK(s.listen_address == "192.0.2.10:5001");
  CHECK(s.data_dir == "/srv/registry");
  CHECK(s.state_dir == "/srv/state");
  CHECK(s.plugin_dir == "/usr/lib/registryd/plugins");
  CHECK(s.node_ip == "192.0.2.10");
  CHECK(s.masters == std::vector<std::string>{"192.0.2.10", "192.0.2.11", "2001:db8::1"});
  CHECK(s.extra_server_names ==
        std::vector<std::string>{"registry.example.com", "*.example.org", "198.51.100.7"});
  CHECK(s.users_file == fs::path("/etc/registryd/users.yaml"));
  CHECK(s.module_config_path == fs::path("/etc/registryd/deckhouse.yaml"));
  CHECK(s.install_images_repo == "registry.example.com/deckhouse/ee");
  CHECK(s.log == log_format::json);
  CHECK(s.containerd_dir == "/tmp/containerd");
  CHECK(s.containerd_patched);
  CHECK(s.reload_interval == 30s);
}

TEST_CASE("the masters default to the node IP", "[config][host]") {
  const auto s = parse_ok("node_ip: 192.0.2.20\n");
  CHECK(s.masters == std::vector<std::string>{"192.0.2.20"});
  const auto explicit_masters = parse_ok("node_ip: 192.0.2.20\nmasters: [192.0.2.1]\n");
  CHECK(explicit_masters.masters == std::vector<std::string>{"192.0.2.1"});
}

TEST_CASE("unknown host settings keys are errors with their path", "[config][host]") {
  const auto errors = parse_errors("listen_adress: 127.0.0.1:1\ndataDir: /x\n");
  INFO(to_string(errors));
  CHECK(errors.size() == 2);
  CHECK(has_error(errors, "listen_adress", "unknown field; did you mean listen_address?"));
  CHECK(has_error(errors, "dataDir", "unknown field; did you mean data_dir?"));
}

TEST_CASE("listen_address must be host:port", "[config][host]") {
  CHECK(parse_ok("listen_address: 127.0.0.1:0\n").listen_address == "127.0.0.1:0");
  CHECK(parse_ok("listen_address: '[::1]:5001'\n").listen_address == "[::1]:5001");
  CHECK(parse_ok("listen_address: 0.0.0.0:5001\n").listen_address == "0.0.0.0:5001");
  CHECK(parse_ok("listen_address: localhost:5001\n").listen_address == "localhost:5001");
  CHECK(has_error(parse_errors("listen_address: 127.0.0.1\n"), "listen_address",
                  "must be host:port (e.g. 127.0.0.1:5001 or [::1]:5001), got \"127.0.0.1\""));
  CHECK(has_error(parse_errors("listen_address: 127.0.0.1:99999\n"), "listen_address",
                  "port must be a number from 0 to 65535, got \"99999\""));
  CHECK(has_error(parse_errors("listen_address: 5001\n"), "listen_address",
                  "must be a string, got an integer (quote the value to use it as text)"));
  CHECK(has_error(parse_errors("listen_address: ''\n"), "listen_address", "must not be empty"));
}

TEST_CASE("node_ip must be one IP address", "[config][host]") {
  CHECK(has_error(parse_errors("node_ip: node-1\n"), "node_ip",
                  "must be an IP address, got \"node-1\""));
  CHECK(has_error(parse_errors("node_ip: 0.0.0.0\n"), "node_ip",
                  "must be the address of one host, got \"0.0.0.0\""));
  CHECK(has_error(parse_errors("node_ip: '::'\n"), "node_ip",
                  "must be the address of one host, got \"::\""));
  CHECK(parse_ok("node_ip: 2001:db8::5\n").node_ip == "2001:db8::5");
}

TEST_CASE("masters must be a non-empty list of distinct IP addresses", "[config][host]") {
  CHECK(has_error(parse_errors("masters: []\n"), "masters",
                  "must list at least one master IP address"));
  CHECK(has_error(parse_errors("masters: 192.0.2.1\n"), "masters", "must be a list, got a string"));
  const auto errors = parse_errors("masters: [192.0.2.1, master-2, 192.0.2.1, ~, {a: b}]\n");
  INFO(to_string(errors));
  CHECK(errors.size() == 4);
  CHECK(has_error(errors, "masters[1]", "must be an IP address, got \"master-2\""));
  CHECK(has_error(errors, "masters[2]", "duplicates masters[0]"));
  CHECK(has_error(errors, "masters[3]", "must be an IP address, got null"));
  CHECK(has_error(errors, "masters[4]", "must be a string, got a map"));
}

TEST_CASE("extra_server_names must be DNS names or IP addresses", "[config][host]") {
  const auto errors = parse_errors("extra_server_names: [ok.example.com, 'bad name', '*.', '']\n");
  INFO(to_string(errors));
  CHECK(errors.size() == 3);
  CHECK(has_error(errors, "extra_server_names[1]",
                  "must be a DNS name, a wildcard DNS name (*.example.com) or an IP address, got "
                  "\"bad name\""));
  CHECK(has_error_containing(errors, "extra_server_names[2]", "got \"*.\""));
  CHECK(has_error(errors, "extra_server_names[3]", "must not be empty"));
}

TEST_CASE("relative paths resolve against the base directory", "[config][host]") {
  const auto s = parse_ok(
      "data_dir: data\nstate_dir: ./state\nusers_file: ../users.yaml\nmodule_config: mc.yaml\n"
      "plugin_dir: plugins\ncontainerd_dir: ctd\n",
      "/etc/registryd");
  CHECK(s.data_dir == "/etc/registryd/data");
  CHECK(s.state_dir == "/etc/registryd/state");
  CHECK(s.users_file == fs::path("/etc/users.yaml"));
  CHECK(s.module_config_path == fs::path("/etc/registryd/mc.yaml"));
  CHECK(s.plugin_dir == "/etc/registryd/plugins");
  CHECK(s.containerd_dir == "/etc/registryd/ctd");
}

TEST_CASE("relative paths without a base directory are errors", "[config][host]") {
  const auto errors = parse_errors("data_dir: data\nusers_file: users.yaml\n");
  INFO(to_string(errors));
  CHECK(errors.size() == 2);
  CHECK(has_error(errors, "data_dir", "must be an absolute path, got \"data\""));
  CHECK(has_error(errors, "users_file", "must be an absolute path, got \"users.yaml\""));
}

TEST_CASE("an empty plugin_dir means next to the binary, other paths must not be empty",
          "[config][host]") {
  CHECK(parse_ok("plugin_dir: ''\n").plugin_dir.empty());
  CHECK(has_error(parse_errors("state_dir: ''\n"), "state_dir", "must not be empty"));
  CHECK(has_error(parse_errors("data_dir: [a]\n"), "data_dir", "must be a string, got a list"));
}

TEST_CASE("log_format, install_images_repo and the reload interval are checked", "[config][host]") {
  CHECK(has_error(parse_errors("log_format: JSON\n"), "log_format",
                  "must be one of text, json, got \"JSON\" (values are case-sensitive: write "
                  "json)"));
  CHECK(has_error_containing(parse_errors("install_images_repo: https://r.example.com\n"),
                             "install_images_repo", "must not include a scheme"));
  CHECK(has_error(parse_errors("config_reload_interval_seconds: 0\n"),
                  "config_reload_interval_seconds", "must be from 1 to 86400 seconds, got 0"));
  CHECK(has_error(parse_errors("config_reload_interval_seconds: 86401\n"),
                  "config_reload_interval_seconds", "must be from 1 to 86400 seconds, got 86401"));
  CHECK(has_error(parse_errors("config_reload_interval_seconds: 5 sec\n"), "config_reload_interval_seconds",
                  "must be a number of seconds or a duration like 90s, 10m or 1h30m, got \"5 sec\""));
  CHECK(has_error(parse_errors("config_reload_interval_seconds: 2d\n"), "config_reload_interval_seconds",
                  "must be a number of seconds or a duration like 90s, 10m or 1h30m, got \"2d\""));
  CHECK(has_error(parse_errors("config_reload_interval_seconds: 25h\n"), "config_reload_interval_seconds",
                  "must be from 1 to 86400 seconds, got 90000"));
  CHECK(has_error(parse_errors("config_reload_interval_seconds: 99999999999999999999\n"),
                  "config_reload_interval_seconds", "is out of range, got 99999999999999999999"));
  CHECK(parse_ok("config_reload_interval_seconds: 1\n").reload_interval == 1s);
}

TEST_CASE("every host settings error is reported at once", "[config][host]") {
  const auto errors = parse_errors(
      "listen_address: nowhere\nnode_ip: x\nmasters: []\nlog_format: xml\ncolour: red\n");
  const std::vector<std::string> expected = {
      "listen_address: must be host:port (e.g. 127.0.0.1:5001 or [::1]:5001), got \"nowhere\"",
      "node_ip: must be an IP address, got \"x\"",
      "masters: must list at least one master IP address",
      "log_format: must be one of text, json, got \"xml\"",
      "colour: unknown field",
  };
  CHECK(messages(errors) == expected);
}

TEST_CASE("host settings that are not a map are refused", "[config][host]") {
  CHECK(has_error(parse_errors("- a\n"), "", "host settings must be a map, got a list"));
  CHECK(has_error(parse_errors("a: b: c\n"), "line 1, column 5",
                  "YAML syntax error: illegal map value"));
}

TEST_CASE("load_host_settings resolves relative paths against the file's directory",
          "[config][host]") {
  const registryd::test::scratch_dir scratch;
  const auto& dir = scratch.path();
  const auto file = dir / "etc" / "registryd.yaml";
  REQUIRE_FALSE(registryd::util::write_file_atomic(file, "state_dir: state\nlog_format: json\n"));
  auto loaded = load_host_settings(file);
  INFO(loaded.error_message());
  REQUIRE(loaded.ok());
  CHECK(loaded->state_dir == dir / "etc" / "state");
  CHECK(loaded->log == log_format::json);

  REQUIRE_FALSE(registryd::util::write_file_atomic(file, "log_format: [json\n"));
  auto broken = load_host_settings(file);
  REQUIRE_FALSE(broken.ok());
  CHECK(broken.errors().at(0).path.rfind(file.string() + ":", 0) == 0);

  auto missing = load_host_settings(dir / "nope.yaml");
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.errors().at(0).path == (dir / "nope.yaml").string());
  CHECK(missing.errors().at(0).reason.rfind("cannot read: ", 0) == 0);
}

TEST_CASE("replica sync settings are read and checked", "[config][host]") {
  const auto s = parse_ok(
      "replica_peers: [127.0.0.1:5002, 'registry-2.example.com:5001', '[::1]:5003']\n"
      "replica_credentials_file: replica.yaml\n"
      "replica_ca_file: /etc/registryd/peer-ca.crt\n"
      "replica_sync_interval_seconds: 1\n",
      "/etc/registryd");
  CHECK(s.replica_peers ==
        std::vector<std::string>{"127.0.0.1:5002", "registry-2.example.com:5001", "[::1]:5003"});
  CHECK(s.replica_credentials_file == fs::path("/etc/registryd/replica.yaml"));
  CHECK(s.replica_ca_file == fs::path("/etc/registryd/peer-ca.crt"));
  CHECK(s.replica_sync_interval == 1s);
  CHECK(parse_ok("replica_peers: []\n").replica_peers == std::vector<std::string>{});

  const auto errors = parse_errors(
      "replica_peers: [127.0.0.1, '127.0.0.1:0', 127.0.0.1:5002, 127.0.0.1:5002]\n"
      "replica_sync_interval_seconds: 0\n");
  CHECK(has_error(errors, "replica_peers[1]", "must name the peer's port, got \"127.0.0.1:0\""));
  CHECK(has_error(errors, "replica_peers[3]", "lists \"127.0.0.1:5002\" twice"));
  CHECK(has_error(errors, "replica_sync_interval_seconds", "must be from 1 to 3600 seconds, got 0"));
  bool port_missing = false;
  for (const auto& e : errors) port_missing |= e.path == "replica_peers[0]";
  CHECK(port_missing);
}

TEST_CASE("online garbage collection settings are read and checked", "[config][host]") {
  const auto defaults = parse_ok("");
  CHECK(defaults.gc_interval == 3600s);
  CHECK(defaults.gc_grace == 3600s);
  const auto s = parse_ok("gc_interval_seconds: 0\ngc_grace_seconds: 0\n");
  CHECK(s.gc_interval == 0s);
  CHECK(s.gc_grace == 0s);
  CHECK(parse_ok("gc_interval_seconds: 600\n").gc_interval == 600s);
  const auto errors = parse_errors("gc_interval_seconds: -1\ngc_grace_seconds: 99999999\n");
  CHECK(has_error(errors, "gc_interval_seconds", "must be 0 (off) or from 1 to 604800 seconds, got -1"));
  CHECK(has_error(errors, "gc_grace_seconds", "must be from 0 to 2592000 seconds, got 99999999"));
}

TEST_CASE("Direct mode's relay bounds are read and checked", "[config][host]") {
  const auto defaults = parse_ok("");
  CHECK(defaults.direct_max_relays == 1024);
  CHECK(defaults.direct_max_relays_per_client == 128);
  CHECK(defaults.direct_max_relays_waiting == 0);  // half of http_worker_threads
  CHECK(parse_ok("direct_max_relays_waiting: 12\n").direct_max_relays_waiting == 12);
  const auto s = parse_ok("direct_max_relays: 64\ndirect_max_relays_per_client: 8\n");
  CHECK(s.direct_max_relays == 64);
  CHECK(s.direct_max_relays_per_client == 8);
  const auto errors = parse_errors("direct_max_relays: 0\ndirect_max_relays_per_client: many\n");
  CHECK(has_error(errors, "direct_max_relays", "must be from 1 to 1000000, got 0"));
  bool per_client = false;
  for (const auto& e : errors) per_client |= e.path == "direct_max_relays_per_client";
  CHECK(per_client);
}

TEST_CASE("the replica peers default to the other masters at the listen port", "[config][host]") {
  auto s = parse_ok(
      "listen_address: 192.0.2.10:5001\nnode_ip: 192.0.2.10\n"
      "masters: [192.0.2.10, 192.0.2.11, 2001:db8::1]\n");
  CHECK_FALSE(s.replica_peers);
  CHECK(effective_replica_peers(s) == std::vector<std::string>{"192.0.2.11:5001", "[2001:db8::1]:5001"});
  s.listen_address = "0.0.0.0:0";
  CHECK(effective_replica_peers(s).front() == "192.0.2.11:5001");
  CHECK(effective_replica_peers(default_host_settings()).empty());  // one master: no peers
  s.replica_peers = std::vector<std::string>{};
  CHECK(effective_replica_peers(s).empty());
}

TEST_CASE("the front door's threads, timeouts and limits are read and checked", "[config][host]") {
  const auto defaults = parse_ok("");
  CHECK(defaults.http == registryd::config::http_settings{});
  CHECK(defaults.http.head_timeout == std::chrono::seconds(10));
  const auto s = parse_ok(
      "http_worker_threads: 8\nhttp_head_timeout_seconds: 3\nhttp_max_header_count: 50\n"
      "http_auth_failures_per_minute: 0\nhttp_drain_limit_bytes: 0\nhttp_io_threads: 2\n"
      "http_stream_buffer_budget_bytes: 0\nhttp_tcp_notsent_lowat_bytes: 0\n"
      "http_body_busy_timeout_seconds: 0\nhttp_body_read_ahead_budget_bytes: 0\n"
      "http_body_busy_min_rate_bytes: 0\nhttp_file_buffer_budget_bytes: 0\n");
  CHECK(s.http.worker_threads == 8);
  CHECK(s.http.head_timeout == std::chrono::seconds(3));
  CHECK(s.http.max_header_count == 50);
  CHECK(s.http.auth_failures_per_minute == 0);
  CHECK(s.http.drain_limit_bytes == 0);
  CHECK(s.http.io_threads == 2);
  CHECK(s.http.stream_buffer_budget == 0);
  CHECK(defaults.http.stream_buffer_budget == 32 * 1024 * 1024);
  CHECK(s.http.tcp_notsent_lowat == 0);
  CHECK(defaults.http.tcp_notsent_lowat == 64 * 1024);
  CHECK(s.http.body_busy_timeout == std::chrono::seconds(0));
  CHECK(defaults.http.body_busy_timeout == std::chrono::seconds(5));
  CHECK(s.http.body_busy_min_rate == 0);
  CHECK(defaults.http.body_busy_min_rate == 16 * 1024);
  CHECK(s.http.read_ahead_budget == 0);
  CHECK(defaults.http.read_ahead_budget == 64 * 1024 * 1024);
  CHECK(s.http.file_buffer_budget == 0);
  CHECK(defaults.http.file_buffer_budget == 64 * 1024 * 1024);
  const auto errors = parse_errors(
      "http_worker_threads: 0\nhttp_idle_timeout_seconds: 0\nhttp_max_header_bytes: 10\n"
      "http_max_connections: many\nhttp_stream_buffer_budget_bytes: -1\n"
      "http_tcp_notsent_lowat_bytes: 100000000\nhttp_body_busy_timeout_seconds: -1\n"
      "http_body_busy_min_rate_bytes: 2000000000\nhttp_file_buffer_budget_bytes: 2000000000\n");
  CHECK(has_error(errors, "http_worker_threads", "must be from 1 to 4096, got 0"));
  CHECK(has_error(errors, "http_idle_timeout_seconds", "must be from 1 to 86400 seconds, got 0"));
  CHECK(has_error(errors, "http_max_header_bytes", "must be from 1024 to 16777216, got 10"));
  CHECK(has_error_containing(errors, "http_max_connections", "integer"));
  CHECK(has_error(errors, "http_stream_buffer_budget_bytes", "must be from 0 to 1073741824, got -1"));
  CHECK(has_error(errors, "http_tcp_notsent_lowat_bytes", "must be from 0 to 67108864, got 100000000"));
  CHECK(has_error(errors, "http_body_busy_timeout_seconds", "must be 0 (off) or from 1 to 86400 seconds, got -1"));
  CHECK(has_error(errors, "http_body_busy_min_rate_bytes", "must be from 0 to 1073741824, got 2000000000"));
  CHECK(has_error(errors, "http_file_buffer_budget_bytes", "must be from 0 to 1073741824, got 2000000000"));
}

TEST_CASE("cluster store settings are read and checked", "[config][host]") {
  CHECK_FALSE(parse_ok("").cluster.enabled());
  const auto s = parse_ok(
      "cluster_store: [https://10.0.0.1:2379, https://10.0.0.2:2379]\n"
      "cluster_store_ca_file: etcd/ca.crt\n"
      "cluster_store_cert_file: etcd/client.crt\n"
      "cluster_store_key_file: etcd/client.key\n",
      "/etc/registryd");
  CHECK(s.cluster.enabled());
  CHECK(s.cluster.endpoints == std::vector<std::string>{"https://10.0.0.1:2379", "https://10.0.0.2:2379"});
  CHECK(s.cluster.ca_file == fs::path("/etc/registryd/etcd/ca.crt"));
  CHECK(s.cluster.cert_file == fs::path("/etc/registryd/etcd/client.crt"));
  CHECK(s.cluster.key_file == fs::path("/etc/registryd/etcd/client.key"));

  const auto errors = parse_errors(
      "cluster_store: [10.0.0.1:2379, 'http://a:2379', 'http://a:2379']\n"
      "cluster_store_cert_file: /c.crt\n"
      "users_file: /users.yaml\n");
  CHECK(has_error(errors, "cluster_store[0]",
                  "must be an etcd client URL (https://host:2379 or http://...), got \"10.0.0.1:2379\""));
  CHECK(has_error(errors, "cluster_store[2]", "lists \"http://a:2379\" twice"));
  CHECK(has_error(errors, "cluster_store_key_file",
                  "a client certificate for the cluster store needs its key, and a key its certificate"));
  // A member's users come from the store, never from a file of its own.
  const auto both = parse_errors("cluster_store: ['http://a:2379']\nusers_file: /users.yaml\n");
  CHECK(has_error(both, "users_file",
                  "a cluster member takes its users from the cluster store; drop users_file and change "
                  "users with `registryd cluster set-user`"));
}

TEST_CASE("every host duration takes units as well as seconds", "[config][host]") {
  const auto s = parse_ok(
      "config_reload_interval_seconds: 5s\nreplica_sync_interval_seconds: 1m\ngc_interval_seconds: 10m\n"
      "gc_grace_seconds: 1h30m\nhttp_idle_timeout_seconds: 2m\npackages_verify_interval_seconds: 12h\n");
  CHECK(s.reload_interval == 5s);
  CHECK(s.replica_sync_interval == 60s);
  CHECK(s.gc_interval == 600s);
  CHECK(s.gc_grace == 5400s);
  CHECK(s.http.idle_timeout == std::chrono::milliseconds(120000));
  CHECK(s.packages.verify_interval == 43200s);
  CHECK(parse_ok("gc_interval_seconds: 0\n").gc_interval == 0s);  // still off
}

TEST_CASE("the host settings document parses back to the same settings", "[config][host]") {
  for (const std::string& yaml :
       {std::string(), std::string("listen_address: 10.0.0.1:5001\nmasters: [10.0.0.1, 10.0.0.2]\n"
                                   "gc_interval_seconds: 0\nhttp_file_transfer: sendfile\nhttp_tls_offload: user\n"
                                   "http_tls_sealer: openssl\n"
                                   "packages_listen_address: \"off\"\nreplica_peers: []\n"
                                   "users_file: /etc/registryd/users.yaml\nhttp_idle_timeout_seconds: 2m\n")}) {
    INFO(yaml);
    const auto s = parse_ok(yaml);
    const auto doc = host_settings_document(s);
    CHECK(doc.at("http_idle_timeout_seconds").is_number_integer());
    const auto back = parse_host_settings(doc.dump(), "/");
    INFO(back.error_message());
    REQUIRE(back.ok());
    CHECK(back.value() == s);
  }
}
