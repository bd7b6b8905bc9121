// The Proxy mode in-process against a small upstream on loopback: settings, path mapping,
// caching by digest, tag revalidation with HEAD, stale answers when the upstream is gone,
// coalesced blob fetches, push refused, eviction with an injected clock.
#include "proxy_mode.hpp"
#include "proxy_test_support.hpp"
#include "settings.hpp"

#include <registryd/oci/digest.hpp>
#include <registryd/oci/media_types.hpp>

#include <atomic>
#include <chrono>
#include <thread>

using namespace registryd;
using namespace registryd::test;
using namespace std::chrono_literals;
using nlohmann::json;

namespace {

const std::string oci_manifest_type(oci::media_type::oci_manifest);

json settings_doc(const std::string& upstream, const std::filesystem::path& data_dir, json extra = json::object()) {
  json section = {{"imagesRepo", upstream + "/deckhouse/ee"}, {"scheme", "HTTP"}, {"checkMode", "Default"},
                  {"ttl", "1h"}, {"ttlSeconds", 3600}};
  for (auto& [k, v] : extra.items()) section[k] = v;
  return {{"mode", "Proxy"},
          {"legacy", false},
          {"section", section},
          {"host",
           {{"dataDir", data_dir.string()},
            {"stateDir", (data_dir / "state").string()},
            {"caFile", (data_dir / "ca.crt").string()},
            {"fixedHost", "registry.d8-system.svc:5001"},
            {"fixedRepository", "system/deckhouse"}}}};
}

std::string image_manifest(const std::string& config_digest, std::size_t config_size, const std::string& layer_digest,
                           std::size_t layer_size) {
  return json{{"schemaVersion", 2},
              {"mediaType", oci_manifest_type},
              {"config", {{"mediaType", "application/vnd.oci.image.config.v1+json"}, {"digest", config_digest},
                          {"size", config_size}}},
              {"layers", {{{"mediaType", "application/vnd.oci.image.layer.v1.tar+gzip"}, {"digest", layer_digest},
                           {"size", layer_size}}}}}
      .dump();
}

// A test clock that only moves when told.
struct manual_clock {
  std::shared_ptr<std::atomic<std::int64_t>> seconds =
      std::make_shared<std::atomic<std::int64_t>>(std::chrono::duration_cast<std::chrono::seconds>(
                                                      std::chrono::system_clock::now().time_since_epoch())
                                                      .count());
  proxy::clock_fn fn() const {
    auto s = seconds;
    return [s] { return std::chrono::system_clock::time_point(std::chrono::seconds(s->load())); };
  }
  void advance(std::chrono::seconds d) { *seconds += d.count(); }
};

struct fixture {
  scratch_dir dir;
  fake_upstream upstream;
  manual_clock clock;
  std::string logs;
  std::mutex logs_mutex;
  registryd_host_api host_api{REGISTRYD_PLUGIN_ABI_MAJOR, REGISTRYD_PLUGIN_ABI_MINOR, sizeof(registryd_host_api), this,
                              [](void* ctx, registryd_log_level, registryd_str m) {
                                auto* self = static_cast<fixture*>(ctx);
                                std::lock_guard lock(self->logs_mutex);
                                self->logs.append(m.data, m.size).append("\n");
                              }};
  std::unique_ptr<proxy::proxy_mode> mode;

  std::string config, layer, manifest;
  std::string config_digest, layer_digest, manifest_digest;

  explicit fixture(json extra = json::object()) {
    upstream.start();
    config = R"({"architecture":"amd64","os":"linux"})";
    layer = std::string(300 * 1024, 'L') + "end";
    config_digest = upstream.add_blob(config);
    layer_digest = upstream.add_blob(layer);
    manifest = image_manifest(config_digest, config.size(), layer_digest, layer.size());
    manifest_digest = upstream.add_manifest(manifest, oci_manifest_type, "v1");
    // A revalidation is waited for until it ends (the healthy upstream answers in
    // milliseconds), so that checks of what it did do not race it; the stalled-upstream test
    // sets its own wait.
    if (!extra.contains("tagRevalidateWaitMilliseconds")) extra["tagRevalidateWaitMilliseconds"] = 20000;
    mode = std::make_unique<proxy::proxy_mode>(sdk::host(&host_api), settings_doc(upstream.authority(), dir.path(), extra),
                                               clock.fn(), false);
    mode->start();
  }
  ~fixture() {
    if (mode) mode->stop();
  }
  std::string log_text() {
    std::lock_guard lock(logs_mutex);
    return logs;
  }
  std::string metrics() const {
    std::string out;
    mode->metrics(out);
    return out;
  }
};

const std::string base = "/v2/system/deckhouse";

}  // namespace

// ---- settings ------------------------------------------------------------------------------------

TEST_CASE("Proxy settings come from the section and the host block, with defaults", "[proxy][settings]") {
  const auto s = proxy::parse_settings(settings_doc("registry.example.com", "/opt/deckhouse/registry"));
  CHECK(s.upstream.images_repo.registry == "registry.example.com");
  CHECK(s.upstream.images_repo.path == "deckhouse/ee");
  CHECK(s.upstream.options.url_scheme == oci::client::scheme::http);
  CHECK(s.ttl == 3600s);
  CHECK(s.ttl_text == "1h");
  CHECK(s.tag_revalidate == proxy::default_tag_revalidate);
  CHECK(s.tag_revalidate_wait == 500ms);
  CHECK(s.upstream_answer_timeout == 2000ms);
  CHECK_FALSE(s.max_cache_bytes);
  CHECK(s.cache_root() == "/opt/deckhouse/registry/proxy");
  CHECK(s.fixed_repository == "system/deckhouse");

  const auto t = proxy::parse_settings(settings_doc("r.example.com", "/d", {{"tagRevalidateSeconds", 5},
                                                                              {"maxCacheBytes", 1000},
                                                                              {"tagRevalidateWaitMilliseconds", 0},
                                                                              {"upstreamAnswerTimeoutMilliseconds", 700},
                                                                              {"username", "u"},
                                                                              {"password", "p"}}));
  CHECK(t.tag_revalidate == 5s);
  CHECK(t.tag_revalidate_wait == 0ms);
  CHECK(t.upstream_answer_timeout == 700ms);
  CHECK(t.max_cache_bytes == 1000u);
  REQUIRE(t.upstream.options.auth);
  CHECK(t.upstream.options.auth->username == "u");
}

TEST_CASE("bad Proxy settings are refused naming the field", "[proxy][settings]") {
  auto doc = settings_doc("r.example.com", "/d");
  auto refused = [](const json& d, const std::string& needle) {
    try {
      (void)proxy::parse_settings(d);
      FAIL("accepted: " << d.dump());
    } catch (const std::invalid_argument& e) {
      CHECK_THAT(e.what(), Catch::Contains(needle));
    }
  };
  auto d1 = doc;
  d1["mode"] = "Local";
  refused(d1, "mode");
  auto d2 = doc;
  d2["section"].erase("imagesRepo");
  refused(d2, "section.imagesRepo");
  auto d3 = doc;
  d3["host"].erase("dataDir");
  refused(d3, "host.dataDir");
  auto d4 = doc;
  d4["section"]["maxCacheBytes"] = -1;
  refused(d4, "section.maxCacheBytes");
  auto d5 = doc;
  d5["section"]["ttlSeconds"] = "long";
  refused(d5, "section.ttlSeconds");
  auto d6 = doc;
  d6["section"] = nullptr;
  refused(d6, "section");
}

TEST_CASE("the environment overrides the revalidation interval and the size cap", "[proxy][settings]") {
  auto s = proxy::parse_settings(settings_doc("r.example.com", "/d", {{"maxCacheBytes", 10}}));
  std::map<std::string, std::string> env{{"REGISTRYD_PROXY_TAG_REVALIDATE_SECONDS", "0"},
                                         {"REGISTRYD_PROXY_MAX_CACHE_BYTES", "4096"}};
  auto get = [&](const char* n) -> const char* {
    const auto it = env.find(n);
    return it == env.end() ? nullptr : it->second.c_str();
  };
  proxy::apply_environment(s, get);
  CHECK(s.tag_revalidate == 0s);
  CHECK(s.max_cache_bytes == 4096u);
  env["REGISTRYD_PROXY_MAX_CACHE_BYTES"] = "0";
  proxy::apply_environment(s, get);
  CHECK_FALSE(s.max_cache_bytes);
  env["REGISTRYD_PROXY_TAG_REVALIDATE_WAIT_MS"] = "250";
  env["REGISTRYD_PROXY_UPSTREAM_ANSWER_TIMEOUT_MS"] = "1500";
  proxy::apply_environment(s, get);
  CHECK(s.tag_revalidate_wait == 250ms);
  CHECK(s.upstream_answer_timeout == 1500ms);
  env["REGISTRYD_PROXY_UPSTREAM_ANSWER_TIMEOUT_MS"] = "0";
  CHECK_THROWS_WITH(proxy::apply_environment(s, get), Catch::Contains("must be more than 0"));
  env.erase("REGISTRYD_PROXY_UPSTREAM_ANSWER_TIMEOUT_MS");
  env["REGISTRYD_PROXY_TAG_REVALIDATE_SECONDS"] = "30s";
  CHECK_THROWS_WITH(proxy::apply_environment(s, get), Catch::Contains("REGISTRYD_PROXY_TAG_REVALIDATE_SECONDS"));
}

TEST_CASE("the containerd description mirrors the fixed host through the node balancer with the registry CA",
          "[proxy][containerd]") {
  fixture f;
  spill(f.dir / "ca.crt", "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n");
  const auto d = f.mode->containerd_config();
  REQUIRE(d);
  const auto& host = (*d)["hosts"][0];
  CHECK(host["host"] == "registry.d8-system.svc:5001");
  CHECK(host["mirrors"][0]["url"] == "https://127.0.0.1:5001");
  CHECK(host["mirrors"][0]["capabilities"] == json({"pull", "resolve"}));
  CHECK_THAT(host["mirrors"][0]["ca"].get<std::string>(), Catch::Contains("BEGIN CERTIFICATE"));
  CHECK((*d)["hosts"].size() == 1);
}

// ---- routing -------------------------------------------------------------------------------------

TEST_CASE("only the fixed repository and below are served, others are NAME_UNKNOWN", "[proxy]") {
  fixture f;
  auto res = get(*f.mode, "/v2/library/alpine/manifests/latest");
  CHECK(res.status == 404);
  CHECK(res.error_code() == "NAME_UNKNOWN");
  CHECK_THAT(res.error_message(), Catch::Contains("system/deckhouse"));
  res = get(*f.mode, "/v2/system/other/blobs/" + f.layer_digest);
  CHECK(res.status == 404);
  CHECK(res.error_code() == "NAME_UNKNOWN");
  CHECK(f.upstream.count_method("GET") == 0);
}

TEST_CASE("push, delete and uploads are refused with UNSUPPORTED", "[proxy]") {
  fixture f;
  for (const char* method : {"PUT", "POST", "PATCH", "DELETE"}) {
    for (const std::string& path : {base + "/manifests/v1", base + "/blobs/uploads/", base + "/blobs/" + f.layer_digest,
                                   base + "/blobs/uploads/abc"}) {
      test_request req;
      req.method = method;
      req.path = path;
      auto res = call(*f.mode, req);
      INFO(method << " " << path);
      CHECK(res.status == 405);
      CHECK(res.error_code() == "UNSUPPORTED");
    }
  }
  auto res = get(*f.mode, base + "/blobs/uploads/abc");
  CHECK(res.status == 405);
  CHECK(f.upstream.count_method("PUT") + f.upstream.count_method("POST") == 0);
}

TEST_CASE("a user without pull access is denied", "[proxy]") {
  fixture f;
  test_request req;
  req.path = base + "/manifests/v1";
  req.access = 0;
  auto res = call(*f.mode, req);
  CHECK(res.status == 403);
  CHECK(res.error_code() == "DENIED");
}

// ---- manifests -----------------------------------------------------------------------------------

TEST_CASE("a manifest by digest is fetched once, verified, and served from the cache after", "[proxy][manifest]") {
  fixture f;
  auto res = get(*f.mode, base + "/manifests/" + f.manifest_digest);
  REQUIRE(res.status == 200);
  CHECK(res.body == f.manifest);
  CHECK(res.header("Docker-Content-Digest") == f.manifest_digest);
  CHECK(res.content_type == oci_manifest_type);
  CHECK(f.upstream.count("GET /v2/deckhouse/ee/manifests/" + f.manifest_digest) == 1);

  res = get(*f.mode, base + "/manifests/" + f.manifest_digest);
  REQUIRE(res.status == 200);
  CHECK(res.body == f.manifest);
  CHECK(res.body_kind == test_response::kind::file);
  CHECK(f.upstream.count("GET /v2/deckhouse/ee/manifests/" + f.manifest_digest) == 1);
  CHECK(f.mode->stats().manifest_hits.load() == 1);
  CHECK(f.mode->stats().manifest_misses.load() == 1);

  auto h = head(*f.mode, base + "/manifests/" + f.manifest_digest);
  CHECK(h.status == 200);
  CHECK(h.body.empty());
  CHECK(h.header("Content-Length") == std::to_string(f.manifest.size()));
}

TEST_CASE("a tag is revalidated with HEAD at most once per interval", "[proxy][manifest]") {
  fixture f(json{{"tagRevalidateSeconds", 30}});
  const std::string tag_path = "/v2/deckhouse/ee/manifests/v1";
  auto res = get(*f.mode, base + "/manifests/v1");
  REQUIRE(res.status == 200);
  CHECK(res.body == f.manifest);
  CHECK(f.upstream.count("GET " + tag_path) == 1);
  CHECK(f.upstream.count("HEAD " + tag_path) == 0);

  // Within the interval: no upstream request at all.
  for (int i = 0; i < 3; ++i) CHECK(get(*f.mode, base + "/manifests/v1").status == 200);
  CHECK(f.upstream.count("HEAD " + tag_path) == 0);
  CHECK(f.upstream.count("GET " + tag_path) == 1);

  // After it: one HEAD, the same digest, the cached manifest.
  f.clock.advance(31s);
  res = get(*f.mode, base + "/manifests/v1");
  REQUIRE(res.status == 200);
  CHECK(res.body == f.manifest);
  CHECK(res.body_kind == test_response::kind::file);
  CHECK(f.upstream.count("HEAD " + tag_path) == 1);
  CHECK(f.upstream.count("GET " + tag_path) == 1);
  CHECK(get(*f.mode, base + "/manifests/v1").status == 200);
  CHECK(f.upstream.count("HEAD " + tag_path) == 1);
  CHECK(f.mode->stats().tag_revalidations_unchanged.load() == 1);

  // The tag moves upstream: the next revalidation sees it and fetches the new manifest by digest.
  const std::string moved = image_manifest(f.config_digest, f.config.size(), f.layer_digest, f.layer.size() + 0) + " ";
  const std::string moved_digest = f.upstream.add_manifest(moved, oci_manifest_type, "v1");
  f.clock.advance(31s);
  res = get(*f.mode, base + "/manifests/v1");
  REQUIRE(res.status == 200);
  CHECK(res.body == moved);
  CHECK(res.header("Docker-Content-Digest") == moved_digest);
  CHECK(f.upstream.count("HEAD " + tag_path) == 2);
  CHECK(f.upstream.count("GET " + tag_path) == 1);
  CHECK(f.upstream.count("GET /v2/deckhouse/ee/manifests/" + moved_digest) == 1);
  CHECK(f.mode->stats().tag_revalidations_changed.load() == 1);
  // And it is cached under the tag now.
  res = get(*f.mode, base + "/manifests/v1");
  CHECK(res.body == moved);
  CHECK(res.body_kind == test_response::kind::file);
}

TEST_CASE("upstream errors are passed on with the client-side repository name", "[proxy][manifest]") {
  fixture f;
  auto res = get(*f.mode, base + "/install/manifests/nope");
  CHECK(res.status == 404);
  CHECK(res.error_code() == "MANIFEST_UNKNOWN");
  CHECK_THAT(res.error_message(), Catch::Contains("system/deckhouse/install:nope"));
  CHECK_THAT(res.error_message(), !Catch::Contains("deckhouse/ee"));
  CHECK(f.upstream.count("GET /v2/deckhouse/ee/install/manifests/nope") == 1);
}

TEST_CASE("a tag deleted upstream is deleted from the cache at its next revalidation", "[proxy][manifest]") {
  fixture f(json{{"tagRevalidateSeconds", 0}});
  REQUIRE(get(*f.mode, base + "/manifests/v1").status == 200);
  f.upstream.remove_tag("v1");
  auto res = get(*f.mode, base + "/manifests/v1");
  CHECK(res.status == 404);
  CHECK(res.error_code() == "MANIFEST_UNKNOWN");
  CHECK(f.upstream.count("HEAD /v2/deckhouse/ee/manifests/v1") == 1);
  // Gone from the cache too: with the upstream unreachable it is not served stale.
  f.upstream.stop();
  res = get(*f.mode, base + "/manifests/v1");
  CHECK(res.status == 503);
  // The manifest itself is still cached by digest.
  CHECK(get(*f.mode, base + "/manifests/" + f.manifest_digest).status == 200);
}

TEST_CASE("when the upstream is gone, cached tags are served stale and anything else fails at once",
          "[proxy][stale]") {
  fixture f(json{{"tagRevalidateSeconds", 0}});
  REQUIRE(get(*f.mode, base + "/manifests/v1").status == 200);
  REQUIRE(get(*f.mode, base + "/blobs/" + f.layer_digest).status == 200);
  CHECK_THAT(f.metrics(), Catch::Contains("registryd_proxy_upstream_up 1\n"));

  f.upstream.stop();  // connection refused from now on
  const auto t0 = std::chrono::steady_clock::now();
  auto res = get(*f.mode, base + "/manifests/v1");
  REQUIRE(res.status == 200);
  CHECK(res.body == f.manifest);
  CHECK(f.mode->stats().stale_serves.load() == 1);
  CHECK_THAT(f.metrics(), Catch::Contains("registryd_proxy_upstream_up 0\n"));
  CHECK_THAT(f.metrics(), Catch::Contains("registryd_proxy_stale_serves_total 1\n"));
  CHECK_THAT(f.log_text(), Catch::Contains("is unavailable"));
  CHECK_THAT(f.log_text(), Catch::Contains("without revalidation"));

  // Cached by digest: served as ever.
  res = get(*f.mode, base + "/manifests/" + f.manifest_digest);
  CHECK(res.status == 200);
  res = get(*f.mode, base + "/blobs/" + f.layer_digest);
  CHECK(res.status == 200);
  CHECK(res.body == f.layer);

  // Not cached: 503 UNAVAILABLE naming the upstream and the cause, fast.
  res = get(*f.mode, base + "/blobs/" + f.config_digest);
  CHECK(res.status == 503);
  CHECK(res.error_code() == "UNAVAILABLE");
  CHECK_THAT(res.error_message(), Catch::Contains(f.upstream.authority()));
  CHECK_THAT(res.error_message(), Catch::Contains("not in the cache"));
  res = get(*f.mode, base + "/manifests/other");
  CHECK(res.status == 503);
  CHECK(res.error_code() == "UNAVAILABLE");
  auto h = head(*f.mode, base + "/blobs/" + f.config_digest);
  CHECK(h.status == 503);
  CHECK(std::chrono::steady_clock::now() - t0 < 2s);
}

TEST_CASE("behind a stalled upstream a due tag is answered from the cache at once, one revalidation shared, "
          "and an uncached request fails within the answer timeout",
          "[proxy][stale]") {
  fixture f(json{{"tagRevalidateSeconds", 0},
                 {"tagRevalidateWaitMilliseconds", 100},
                 {"upstreamAnswerTimeoutMilliseconds", 1000}});
  REQUIRE(get(*f.mode, base + "/manifests/v1").status == 200);
  f.upstream.set_stall(2500ms);  // takes connections, answers nothing for 2.5 s

  const auto t0 = std::chrono::steady_clock::now();
  std::vector<std::thread> clients;
  std::atomic<int> served{0};
  for (int i = 0; i < 8; ++i) {
    clients.emplace_back([&] {
      const auto res = get(*f.mode, base + "/manifests/v1");
      if (res.status == 200 && res.body == f.manifest) ++served;
    });
  }
  for (auto& c : clients) c.join();
  const auto took = std::chrono::steady_clock::now() - t0;
  CHECK(served == 8);
  CHECK(took < 800ms);  // each waits the 100 ms for the shared revalidation, not the upstream
  CHECK(f.upstream.count("HEAD /v2/deckhouse/ee/manifests/v1") == 1);
  CHECK(f.mode->stats().stale_serves.load() == 8);
  CHECK_THAT(f.metrics(), Catch::Contains("registryd_proxy_tag_revalidations_in_progress 1\n"));
  CHECK_THAT(f.log_text(), Catch::Contains("has not answered within 100 ms"));

  // Nothing cached to fall back on: 503 once the upstream has said nothing for the answer timeout.
  const auto t1 = std::chrono::steady_clock::now();
  auto res = get(*f.mode, base + "/manifests/other");
  const auto manifest_took = std::chrono::steady_clock::now() - t1;
  CHECK(res.status == 503);
  CHECK(res.error_code() == "UNAVAILABLE");
  CHECK_THAT(res.error_message(), Catch::Contains("sent nothing for 1"));
  CHECK(manifest_took >= 900ms);
  CHECK(manifest_took < 2s);
  const auto t2 = std::chrono::steady_clock::now();
  res = get(*f.mode, base + "/blobs/" + f.config_digest);
  CHECK(res.status == 503);
  CHECK(std::chrono::steady_clock::now() - t2 < 2s);

  // The revalidation ended with the answer timeout: none in flight, the upstream counted down.
  CHECK_THAT(f.metrics(), Catch::Contains("registryd_proxy_tag_revalidations_in_progress 0\n"));
  CHECK_THAT(f.metrics(), Catch::Contains("registryd_proxy_upstream_up 0\n"));
  f.upstream.set_stall(0ms);
}

TEST_CASE("an upstream answering 5xx or 429 counts as unavailable for cached tags", "[proxy][stale]") {
  fixture f(json{{"tagRevalidateSeconds", 0}});
  REQUIRE(get(*f.mode, base + "/manifests/v1").status == 200);
  for (int status : {500, 503, 429}) {
    f.upstream.fail_with(status);
    f.clock.advance(10s);  // past the window in which a known-down upstream is not asked again
    auto res = get(*f.mode, base + "/manifests/v1");
    INFO("upstream status " << status);
    CHECK(res.status == 200);
    CHECK(res.body == f.manifest);
  }
  CHECK(f.mode->stats().stale_serves.load() == 3);
  f.upstream.fail_with(0);
  f.clock.advance(10s);
  CHECK(get(*f.mode, base + "/manifests/v1").status == 200);
  CHECK_THAT(f.metrics(), Catch::Contains("registryd_proxy_upstream_up 1\n"));
  CHECK_THAT(f.log_text(), Catch::Contains("answers again"));
}

// ---- blobs ---------------------------------------------------------------------------------------

TEST_CASE("a blob is fetched once and then served from the cache, ranges included", "[proxy][blob]") {
  fixture f;
  const std::string path = "GET /v2/deckhouse/ee/blobs/" + f.layer_digest;
  auto res = get(*f.mode, base + "/blobs/" + f.layer_digest);
  REQUIRE(res.status == 200);
  CHECK(res.body_kind == test_response::kind::stream);
  CHECK(res.declared_length == static_cast<std::int64_t>(f.layer.size()));
  CHECK(res.body == f.layer);
  CHECK_FALSE(res.stream_failed);
  CHECK(f.upstream.count(path) == 1);

  for (int i = 0; i < 200 && f.mode->fills_in_flight() != 0; ++i) std::this_thread::sleep_for(5ms);
  res = get(*f.mode, base + "/blobs/" + f.layer_digest);
  REQUIRE(res.status == 200);
  CHECK(res.body_kind == test_response::kind::file);
  CHECK(res.body == f.layer);
  res = get(*f.mode, base + "/blobs/" + f.layer_digest, {{"Range", "bytes=10-19"}});
  CHECK(res.status == 206);
  CHECK(res.body == f.layer.substr(10, 10));
  CHECK(res.header("Content-Range") == "bytes 10-19/" + std::to_string(f.layer.size()));
  CHECK(f.upstream.count(path) == 1);
  CHECK(f.mode->stats().upstream_blob_gets.load() == 1);
  CHECK_THAT(f.metrics(), Catch::Contains("registryd_proxy_upstream_blob_fetches_total 1\n"));
  CHECK_THAT(f.metrics(), Catch::Contains("registryd_proxy_cache_hits_total{kind=\"blob\"} 2\n"));
}

TEST_CASE("a HEAD for an uncached blob asks the upstream with HEAD and fetches no body", "[proxy][blob]") {
  fixture f;
  auto res = head(*f.mode, base + "/blobs/" + f.layer_digest);
  CHECK(res.status == 200);
  CHECK(res.header("Content-Length") == std::to_string(f.layer.size()));
  CHECK(res.header("Docker-Content-Digest") == f.layer_digest);
  CHECK(f.upstream.count("HEAD /v2/deckhouse/ee/blobs/" + f.layer_digest) == 1);
  CHECK(f.upstream.count("GET /v2/deckhouse/ee/blobs/" + f.layer_digest) == 0);
  const std::string missing = oci::digest_of("missing").str();
  res = head(*f.mode, base + "/blobs/" + missing);
  CHECK(res.status == 404);
}

TEST_CASE("concurrent pulls of one uncached blob through the mode make exactly one upstream GET",
          "[proxy][blob][coalescing]") {
  fixture f;
  const std::string big(8 * 1024 * 1024, 'x');
  std::string content = big;
  for (std::size_t i = 0; i < content.size(); i += 4096) content[i] = static_cast<char>(i / 4096);
  const std::string d = f.upstream.add_blob(content);
  f.upstream.set_blob_piece_delay(300us);
  constexpr int clients = 16;
  std::vector<std::string> digests(clients);
  std::vector<std::thread> threads;
  for (int i = 0; i < clients; ++i) {
    threads.emplace_back([&, i] {
      auto res = get(*f.mode, base + "/blobs/" + d);
      if (res.status == 200 && !res.stream_failed) digests[i] = oci::digest_of(res.body).str();
    });
  }
  for (auto& t : threads) t.join();
  CHECK(f.upstream.count("GET /v2/deckhouse/ee/blobs/" + d) == 1);
  for (const auto& got : digests) CHECK(got == d);
  CHECK(f.mode->stats().upstream_blob_gets.load() == 1);
}

TEST_CASE("a blob the upstream does not have is BLOB_UNKNOWN, and a bad digest DIGEST_INVALID", "[proxy][blob]") {
  fixture f;
  auto res = get(*f.mode, base + "/blobs/" + oci::digest_of("nope").str());
  CHECK(res.status == 404);
  CHECK(res.error_code() == "BLOB_UNKNOWN");
  res = get(*f.mode, base + "/blobs/sha256:xyz");
  CHECK(res.status == 400);
  CHECK(res.error_code() == "DIGEST_INVALID");
}

TEST_CASE("a blob whose upstream bytes do not match its digest is never served whole nor cached",
          "[proxy][blob]") {
  fixture f;
  const std::string wanted(200 * 1024, 'w');
  std::string sent = wanted;
  sent[1000] = 'x';
  const std::string d = oci::digest_of(wanted).str();
  f.upstream.add_blob_as(d, sent);
  auto res = get(*f.mode, base + "/blobs/" + d);
  // Either the client was answered before the mismatch was found and its stream is cut short,
  // or it came late and got the error itself; never the whole wrong blob.
  if (res.status == 200) {
    CHECK(res.stream_failed);
    CHECK(res.body.size() < sent.size());
  } else {
    CHECK(res.status == 502);
    CHECK(res.error_code() == "BLOB_UNKNOWN");
  }
  for (int i = 0; i < 200 && f.mode->fills_in_flight() != 0; ++i) std::this_thread::sleep_for(5ms);
  CHECK(f.mode->stats().fills_failed.load() == 1);
  CHECK_THAT(f.log_text(), Catch::Contains("digest"));
  // Nothing was cached: the next pull goes upstream again.
  res = get(*f.mode, base + "/blobs/" + d);
  CHECK_FALSE((res.status == 200 && !res.stream_failed));
  CHECK(f.upstream.count("GET /v2/deckhouse/ee/blobs/" + d) == 2);
}

// ---- eviction ------------------------------------------------------------------------------------

TEST_CASE("content not pulled for the ttl is evicted and fetched again on the next pull", "[proxy][eviction]") {
  fixture f;  // ttl 1h
  REQUIRE(get(*f.mode, base + "/blobs/" + f.layer_digest).status == 200);
  REQUIRE(get(*f.mode, base + "/blobs/" + f.config_digest).status == 200);
  for (int i = 0; i < 200 && f.mode->fills_in_flight() != 0; ++i) std::this_thread::sleep_for(5ms);

  f.clock.advance(50min);
  REQUIRE(get(*f.mode, base + "/blobs/" + f.config_digest).status == 200);  // keeps the config alive
  f.clock.advance(20min);
  const auto report = f.mode->evict_now();
  CHECK(report.expired == 1);
  CHECK_THAT(f.metrics(), Catch::Contains("registryd_proxy_evictions_total{reason=\"ttl\"} 1\n"));

  REQUIRE(get(*f.mode, base + "/blobs/" + f.config_digest).status == 200);
  CHECK(f.upstream.count("GET /v2/deckhouse/ee/blobs/" + f.config_digest) == 1);
  REQUIRE(get(*f.mode, base + "/blobs/" + f.layer_digest).status == 200);
  CHECK(f.upstream.count("GET /v2/deckhouse/ee/blobs/" + f.layer_digest) == 2);
}

TEST_CASE("the access times outlive the process", "[proxy][eviction]") {
  fixture f;
  REQUIRE(get(*f.mode, base + "/blobs/" + f.layer_digest).status == 200);
  for (int i = 0; i < 200 && f.mode->fills_in_flight() != 0; ++i) std::this_thread::sleep_for(5ms);
  f.clock.advance(50min);
  REQUIRE(get(*f.mode, base + "/blobs/" + f.layer_digest).status == 200);
  f.mode->stop();
  f.mode.reset();

  // A new process 20 minutes later: the pull 20 minutes ago still counts.
  f.clock.advance(20min);
  f.mode = std::make_unique<proxy::proxy_mode>(sdk::host(&f.host_api), settings_doc(f.upstream.authority(), f.dir.path()),
                                               f.clock.fn(), false);
  f.mode->start();
  CHECK(f.mode->evict_now().expired == 0);
  f.clock.advance(50min);
  CHECK(f.mode->evict_now().expired == 1);
}
