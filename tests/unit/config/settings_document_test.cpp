#include <registryd/config/settings_document.hpp>

#include "test_data.hpp"

#include <catch2/catch.hpp>

#include <fstream>
#include <set>
#include <sstream>

using namespace registryd::config;
using namespace registryd::config::test;
using nlohmann::json;

namespace {

module_config parse_ok(const std::string& registry) {
  auto parsed = parse_module_config(with_registry(registry));
  INFO(parsed.error_message());
  REQUIRE(parsed.ok());
  return parsed.value();
}

host_settings two_masters() {
  host_settings host;
  host.data_dir = "/opt/deckhouse/registry";
  host.state_dir = "/var/lib/registryd";
  host.node_ip = "192.0.2.10";
  host.masters = {"192.0.2.10", "192.0.2.11"};
  return host;
}

const json expected_host = {
    {"dataDir", "/opt/deckhouse/registry"},
    {"stateDir", "/var/lib/registryd"},
    {"caFile", "/var/lib/registryd/pki/ca.crt"},
    {"nodeIP", "192.0.2.10"},
    {"masters", {"192.0.2.10", "192.0.2.11"}},
    {"containerdBuild", "stock"},
    {"fixedHost", "registry.d8-system.svc:5001"},
    {"fixedRepository", "system/deckhouse"},
    {"replicaPeers", {"192.0.2.11:5001"}},
    {"replicaCaFile", "/var/lib/registryd/pki/ca.crt"},
    {"replicaSyncIntervalSeconds", 2},
    {"gcIntervalSeconds", 3600},
    {"gcGraceSeconds", 3600},
    {"directMaxRelays", 1024},
    {"directMaxRelaysPerClient", 128},
    {"directMaxRelaysWaiting", 32},  // half of http_worker_threads (64)
};

std::set<std::string> keys(const json& object) {
  std::set<std::string> out;
  for (const auto& [k, v] : object.items()) out.insert(k);
  return out;
}

}  // namespace

TEST_CASE("the settings document of a full Proxy config is the documented one", "[config][doc]") {
  const auto config = parse_ok(
      "mode: Proxy\nproxy:\n  imagesRepo: registry.example.com/deckhouse/ee\n  username: user\n"
      "  password: secret\n  ca: |\n" +
      indent(cert_a, 4) + "  ttl: 72h\n");
  const json expected = {
      {"mode", "Proxy"},
      {"legacy", false},
      {"section",
       {{"imagesRepo", "registry.example.com/deckhouse/ee"},
        {"scheme", "HTTPS"},
        {"username", "user"},
        {"password", "secret"},
        {"ca", std::string(cert_a)},
        {"checkMode", "Default"},
        {"ttl", "72h"},
        {"ttlSeconds", 259200}}},
      {"host", expected_host},
  };
  CHECK(settings_document(config, two_masters()) == expected);
}

TEST_CASE("the settings document resolves a license", "[config][doc]") {
  const auto doc =
      settings_document(parse_ok("mode: Direct\ndirect:\n  license: key-1\n"), two_masters());
  CHECK(doc["section"]["username"] == "license-token");
  CHECK(doc["section"]["password"] == "key-1");
  CHECK_FALSE(doc["section"].contains("license"));
}

TEST_CASE("the settings document leaves unset optional fields out and ttl to Proxy",
          "[config][doc]") {
  const auto doc = settings_document(parse_ok("mode: Direct\ndirect: {}\n"), two_masters());
  const json expected_section = {
      {"imagesRepo", "registry.deckhouse.io/deckhouse/ce"},
      {"scheme", "HTTPS"},
      {"checkMode", "Default"},
  };
  CHECK(doc["mode"] == "Direct");
  CHECK(doc["legacy"] == false);
  CHECK(doc["section"] == expected_section);

  const auto proxy = settings_document(parse_ok("mode: Proxy\nproxy: {}\n"), two_masters());
  CHECK(proxy["section"]["ttl"] == "168h");
  CHECK(proxy["section"]["ttlSeconds"] == 604800);
}

TEST_CASE("the settings document of Local mode has a null section", "[config][doc]") {
  const auto doc = settings_document(parse_ok("mode: Local\n"), two_masters());
  CHECK(doc["mode"] == "Local");
  CHECK(doc["legacy"] == false);
  CHECK(doc["section"].is_null());
  CHECK(doc["host"] == expected_host);
}

TEST_CASE("the legacy Unmanaged document carries the install-time imagesRepo", "[config][doc]") {
  host_settings host = two_masters();
  host.install_images_repo = "install.example.com/deckhouse/ee";
  const auto doc = settings_document(default_module_config(), host);
  const json expected_section = {
      {"imagesRepo", "install.example.com/deckhouse/ee"},
      {"scheme", "HTTPS"},
      {"checkMode", "Default"},
  };
  CHECK(doc["mode"] == "Unmanaged");
  CHECK(doc["legacy"] == true);
  CHECK(doc["section"] == expected_section);
}

TEST_CASE("the configurable Unmanaged document is not legacy and has its section",
          "[config][doc]") {
  const auto doc = settings_document(
      parse_ok("mode: Unmanaged\nunmanaged:\n  imagesRepo: m.example.com/x\n  scheme: HTTP\n"),
      two_masters());
  CHECK(doc["legacy"] == false);
  CHECK(doc["section"]["imagesRepo"] == "m.example.com/x");
  CHECK(doc["section"]["scheme"] == "HTTP");
  CHECK_FALSE(doc["section"].contains("ttl"));
}

TEST_CASE("the settings document has the keys docs/plugin-authors.md documents", "[config][doc]") {
  // The contract is the first ```json block of docs/plugin-authors.md.
  std::ifstream in(std::string(REGISTRYD_TEST_FIXTURE_DIR) + "/../../../docs/plugin-authors.md");
  REQUIRE(in);
  std::stringstream text;
  text << in.rdbuf();
  const std::string md = text.str();
  const auto start = md.find("```json\n");
  REQUIRE(start != std::string::npos);
  const auto end = md.find("```", start + 8);
  std::string block = md.substr(start + 8, end - start - 8);
  // The documented example abbreviates the CA; the keys are what matters.
  const json documented = json::parse(block);

  const auto doc = settings_document(
      parse_ok("mode: Proxy\nproxy:\n  username: u\n  password: p\n  ca: |\n" + indent(cert_a, 4)),
      two_masters());
  CHECK(keys(doc) == keys(documented));
  CHECK(keys(doc["section"]) == keys(documented["section"]));
  CHECK(keys(doc["host"]) == keys(documented["host"]));
  CHECK(doc["host"]["fixedHost"] == documented["host"]["fixedHost"]);
  CHECK(doc["host"]["fixedRepository"] == documented["host"]["fixedRepository"]);
}

TEST_CASE("the settings document names the replica peers, their CA, credentials and interval",
          "[config][doc]") {
  host_settings host = two_masters();
  host.replica_peers = std::vector<std::string>{"127.0.0.1:5002", "[::1]:5003"};
  host.replica_ca_file = "/etc/registryd/peer-ca.crt";
  host.replica_credentials_file = "/etc/registryd/replica.yaml";
  host.replica_sync_interval = std::chrono::seconds(1);
  const auto doc = settings_document(parse_ok("mode: Local\n"), host);
  CHECK(doc["host"]["replicaPeers"] == json{"127.0.0.1:5002", "[::1]:5003"});
  CHECK(doc["host"]["replicaCaFile"] == "/etc/registryd/peer-ca.crt");
  CHECK(doc["host"]["replicaCredentialsFile"] == "/etc/registryd/replica.yaml");
  CHECK(doc["host"]["replicaSyncIntervalSeconds"] == 1);
  CHECK_FALSE(settings_document(parse_ok("mode: Local\n"), two_masters())["host"].contains(
      "replicaCredentialsFile"));
}
