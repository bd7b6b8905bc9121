// Replica sync inside the Local mode: the replica state request next to the plain catalog,
// the host.replica* settings, and a mode whose peer is down.
#include "../local/local_test_support.hpp"

#include "replica/state.hpp"

#include <chrono>
#include <thread>

using namespace registryd;
using namespace registryd::test;

namespace {

std::string put_image(local_fixture& f, const std::string& repo, const std::string& tag, const std::string& layer) {
  const std::string config = "{\"architecture\":\"amd64\",\"os\":\"linux\"}";
  const auto c = f.push_blob(repo, config);
  const auto l = f.push_blob(repo, layer);
  const std::string m = image_manifest(c, config.size(), {{l, layer.size()}});
  const auto r = f.push_manifest(repo, tag, m);
  REQUIRE(r.status == 201);
  return r.header("Docker-Content-Digest");
}

}  // namespace

TEST_CASE("the Local mode serves its replica state with an ETag and answers 304 when nothing changed",
          "[replica][local]") {
  local_fixture f;
  const std::string d = put_image(f, "team/app", "v1", "layer");
  const auto r = f("GET", "/v2/_catalog?replica-state");
  REQUIRE(r.status == 200);
  CHECK(r.content_type == "application/vnd.registryd.replica-state.v1+json");
  auto state = local::replica::state_from_json(r.json());
  REQUIRE(state.ok());
  CHECK(state->repositories.at("team/app").tags.at("v1").digest.str() == d);
  const std::string etag = r.header("ETag");
  REQUIRE_FALSE(etag.empty());

  call_options again;
  again.headers = {{"If-None-Match", etag}};
  CHECK(f("GET", "/v2/_catalog?replica-state", again).status == 304);
  put_image(f, "team/app", "v2", "another layer");
  const auto changed = f("GET", "/v2/_catalog?replica-state", again);
  CHECK(changed.status == 200);
  CHECK(changed.header("ETag") != etag);

  // The plain catalog is what it always was.
  const auto catalog = f("GET", "/v2/_catalog");
  REQUIRE(catalog.status == 200);
  CHECK(catalog.json()["repositories"] == nlohmann::json::array({"team/app"}));
}

TEST_CASE("a tag deleted through the API shows as a tombstone in the replica state", "[replica][local]") {
  local_fixture f;
  const std::string d = put_image(f, "app", "v1", "layer");
  REQUIRE(f("GET", "/v2/_catalog?replica-state").status == 200);
  REQUIRE(f("DELETE", "/v2/app/manifests/v1").status == 202);
  const auto r = f("GET", "/v2/_catalog?replica-state");
  REQUIRE(r.status == 200);
  const auto j = r.json();
  CHECK(j["repositories"]["app"]["deletedTags"]["v1"]["digest"] == d);
  CHECK_FALSE(j["repositories"]["app"]["tags"].contains("v1"));
}

TEST_CASE("the replica state needs pull access and answers GET and HEAD only", "[replica][local]") {
  local_fixture f;
  call_options none;
  none.access = 0;
  const auto denied = f("GET", "/v2/_catalog?replica-state", none);
  CHECK(denied.status == 403);
  CHECK(denied.error_code() == "DENIED");
  CHECK(f("POST", "/v2/_catalog?replica-state").status == 405);
  const auto head = f("HEAD", "/v2/_catalog?replica-state");
  CHECK(head.status == 200);
  CHECK(head.body.empty());
  CHECK_FALSE(head.header("Content-Length").empty());
}

TEST_CASE("the replica settings come from host.replica* with the host CA as the default",
          "[replica][local]") {
  nlohmann::json doc = local_settings("/data");
  auto s = local::parse_replica_settings(doc);
  CHECK(s.peers.empty());
  CHECK(s.ca_file == "/data/ca.crt");
  CHECK_FALSE(s.credentials_file);
  CHECK(s.interval == std::chrono::seconds(2));

  doc["host"]["replicaPeers"] = {"10.0.0.2:5001", "10.0.0.3:5001"};
  doc["host"]["replicaCaFile"] = "/etc/peer-ca.crt";
  doc["host"]["replicaCredentialsFile"] = "/etc/replica.yaml";
  doc["host"]["replicaSyncIntervalSeconds"] = 7;
  s = local::parse_replica_settings(doc);
  CHECK(s.peers == std::vector<std::string>{"10.0.0.2:5001", "10.0.0.3:5001"});
  CHECK(s.ca_file == "/etc/peer-ca.crt");
  CHECK(s.credentials_file == std::filesystem::path("/etc/replica.yaml"));
  CHECK(s.interval == std::chrono::seconds(7));

  doc["host"]["replicaPeers"] = "10.0.0.2:5001";
  CHECK_THROWS_WITH(local::parse_replica_settings(doc), Catch::Contains("host.replicaPeers"));
  doc["host"]["replicaPeers"] = nlohmann::json::array();
  doc["host"]["replicaSyncIntervalSeconds"] = 0;
  CHECK_THROWS_WITH(local::parse_replica_settings(doc), Catch::Contains("host.replicaSyncIntervalSeconds"));
}

TEST_CASE("a Local mode whose peer is down keeps serving, warns once and reports the peer down",
          "[replica][local]") {
  scratch_dir dir;
  log_capture log;
  const std::string& logs = log.logs;
  auto doc = local_settings(dir.path());
  doc["host"]["replicaPeers"] = {"127.0.0.1:1"};
  doc["host"]["replicaCaFile"] = nullptr;
  doc["host"].erase("caFile");
  doc["host"]["replicaSyncIntervalSeconds"] = 1;
  local::local_mode mode(log.host(), doc);
  mode.start();
  std::string text;
  for (int i = 0; i < 100 && text.find("registryd_replica_sync_rounds_total{peer=\"127.0.0.1:1\"} 2") == std::string::npos; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    text.clear();
    mode.metrics(text);
  }
  CHECK(call(mode, "GET", "/v2/_catalog").status == 200);
  mode.stop();
  CHECK_THAT(text, Catch::Contains("registryd_replica_peer_up{peer=\"127.0.0.1:1\"} 0"));
  CHECK_THAT(text, Catch::Contains("registryd_replica_sync_rounds_total{peer=\"127.0.0.1:1\"} 2"));
  std::size_t warnings = 0;
  for (auto at = logs.find("cannot be reached"); at != std::string::npos; at = logs.find("cannot be reached", at + 1)) {
    ++warnings;
  }
  CHECK(warnings == 1);
}
