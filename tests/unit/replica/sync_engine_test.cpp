// The sync engine between two (or three) real stores in one process: what is copied, in
// which order, only once, and how deletions, conflicts and failing peers are handled.
#include "replica/sync_engine.hpp"

#include "replica_test_support.hpp"

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>

using namespace registryd::test;
using registryd::local::replica::engine_options;
using registryd::local::replica::log_level;
using registryd::local::replica::peer_source;
using registryd::local::replica::round_report;
using registryd::local::replica::sync_engine;

namespace {

struct pair_of_replicas {
  replica_fixture a, b;
  store_peer* a_seen_by_b = nullptr;  // owned by b_engine
  store_peer* b_seen_by_a = nullptr;  // owned by a_engine
  std::vector<std::string> b_log;
  std::unique_ptr<sync_engine> a_engine, b_engine;

  pair_of_replicas() {
    auto pa = std::make_unique<store_peer>(a, "a:5001");
    a_seen_by_b = pa.get();
    std::vector<std::unique_ptr<peer_source>> b_peers;
    b_peers.push_back(std::move(pa));
    engine_options bo;
    bo.log = [this](log_level, const std::string& m) { b_log.push_back(m); };
    b_engine = std::make_unique<sync_engine>(b.local, std::move(b_peers), bo);

    auto pb = std::make_unique<store_peer>(b, "b:5001");
    b_seen_by_a = pb.get();
    std::vector<std::unique_ptr<peer_source>> a_peers;
    a_peers.push_back(std::move(pb));
    a_engine = std::make_unique<sync_engine>(a.local, std::move(a_peers));
  }
  round_report b_from_a() { return b_engine->sync_with(0); }
  round_report a_from_b() { return a_engine->sync_with(0); }
};

}  // namespace

TEST_CASE("an image pushed to one replica appears on the other with the same tag, manifest and blobs",
          "[replica][engine]") {
  pair_of_replicas p;
  const digest m = p.a.image("team/app", "v1", {"layer one", "layer two"});
  const auto r = p.b_from_a();
  CHECK(r.ok());
  CHECK(r.manifests_copied == 1);
  CHECK(r.blobs_copied == 3);
  CHECK(r.blob_bytes_copied == std::string("layer one").size() + std::string("layer two").size() +
                                   std::string("{\"architecture\":\"amd64\",\"os\":\"linux\"}").size());
  CHECK(r.tags_set == 1);
  CHECK(p.b.tag_of("team/app", "v1") == m);
  CHECK(p.b.complete());
  // The same bytes, and nothing more to do: a second round copies nothing.
  auto theirs = p.a.repos.open_manifest("team/app", m);
  auto mine = p.b.repos.open_manifest("team/app", m);
  CHECK(*theirs->file.read_all() == *mine->file.read_all());
  CHECK(mine->record.media_type == oci_manifest);
  const auto again = p.b_from_a();
  CHECK(again.ok());
  CHECK_FALSE(again.changed_anything());
  CHECK(p.a_seen_by_b->total_blob_fetches() == 3);
  // The other way, nothing is missing either.
  const auto back = p.a_from_b();
  CHECK(back.ok());
  CHECK_FALSE(back.changed_anything());
}

TEST_CASE("an index's children and blobs are stored before it, and its tag is set last", "[replica][engine]") {
  pair_of_replicas p;
  std::string amd, arm;
  const digest c1 = p.a.image("multi", std::nullopt, {"amd64 layer"}, "{\"architecture\":\"amd64\"}", &amd);
  const digest c2 = p.a.image("multi", std::nullopt, {"arm64 layer"}, "{\"architecture\":\"arm64\"}", &arm);
  const digest idx = p.a.index("multi", "latest", {{c1, amd}, {c2, arm}});
  int fetches = 0;
  p.a_seen_by_b->before_fetch = [&](const char*, const digest&) {
    ++fetches;
    CHECK_FALSE(p.b.tag_of("multi", "latest"));  // the tag comes last
    CHECK(p.b.complete());                       // nothing stored refers to what is not there
    CHECK_FALSE(p.b.repos.has_manifest("multi", idx));
  };
  const auto r = p.b_from_a();
  CHECK(r.ok());
  CHECK(fetches == 3 + 4);  // three manifests, two configs and two layers
  CHECK(r.manifests_copied == 3);
  CHECK(p.b.tag_of("multi", "latest") == idx);
  CHECK(p.b.repos.has_manifest("multi", c1));
  CHECK(p.b.repos.has_manifest("multi", c2));
  CHECK(p.b.complete());
}

TEST_CASE("a blob already here, in any repository, is linked and not copied", "[replica][engine]") {
  pair_of_replicas p;
  p.b.blob("elsewhere", "shared base layer");
  p.a.image("app", "v1", {"shared base layer", "app layer"});
  const auto r = p.b_from_a();
  CHECK(r.ok());
  CHECK(r.blobs_copied == 2);  // the config and the app layer
  CHECK(r.blobs_linked == 1);
  CHECK(p.a_seen_by_b->blob_count(digest_of("shared base layer")) == 0);
  CHECK(p.b.complete());
}

TEST_CASE("a blob copy that fails leaves the tag unset, and the next round finishes the image", "[replica][engine]") {
  pair_of_replicas p;
  const digest m = p.a.image("app", "v1", {"first", "second"});
  p.a_seen_by_b->fail_blob = digest_of("second");
  const auto r = p.b_from_a();
  CHECK_FALSE(r.ok());
  CHECK(r.reached);
  CHECK(r.failures >= 1);
  CHECK_THAT(r.first_failure, Catch::Contains("connection reset"));
  CHECK_FALSE(p.b.tag_of("app", "v1"));
  CHECK_FALSE(p.b.repos.has_manifest("app", m));
  CHECK(p.b.complete());
  const auto again = p.b_from_a();
  CHECK(again.ok());
  CHECK(again.blobs_copied == 1);  // only the one that failed: the others are here
  CHECK(p.b.tag_of("app", "v1") == m);
  CHECK(p.a_seen_by_b->blob_count(digest_of("first")) == 1);
}

TEST_CASE("two peers offering the same blob at once copy it once", "[replica][engine]") {
  replica_fixture a, c, b;
  a.image("app", "v1", {"a big layer"});
  c.image("app", "v1", {"a big layer"});
  auto pa = std::make_unique<store_peer>(a, "a");
  auto pc = std::make_unique<store_peer>(c, "c");
  pa->blob_delay = std::chrono::milliseconds(300);
  pc->blob_delay = std::chrono::milliseconds(300);
  store_peer* ra = pa.get();
  store_peer* rc = pc.get();
  // Both rounds reach the blobs together: each waits at its manifest for the other.
  std::mutex m;
  std::condition_variable cv;
  int at_manifest = 0;
  auto meet = [&](const char* what, const digest&) {
    if (std::string_view(what) != "manifest") return;
    std::unique_lock lock(m);
    ++at_manifest;
    cv.notify_all();
    cv.wait_for(lock, std::chrono::seconds(10), [&] { return at_manifest >= 2; });
  };
  pa->before_fetch = meet;
  pc->before_fetch = meet;
  std::vector<std::unique_ptr<peer_source>> peers;
  peers.push_back(std::move(pa));
  peers.push_back(std::move(pc));
  sync_engine e(b.local, std::move(peers));
  round_report r1, r2;
  std::thread t1([&] { r1 = e.sync_with(0); });
  std::thread t2([&] { r2 = e.sync_with(1); });
  t1.join();
  t2.join();
  CHECK(r1.ok());
  CHECK(r2.ok());
  const digest layer = digest_of("a big layer");
  CHECK(ra->blob_count(layer) + rc->blob_count(layer) == 1);
  CHECK(r1.blobs_copied + r2.blobs_copied == 2);  // the layer and the config, once each
  CHECK(r1.blobs_linked + r2.blobs_linked == 2);  // and linked by the round that waited
  std::string text;
  e.metrics(text);
  CHECK_THAT(text, Catch::Contains("registryd_replica_blob_copies_coalesced_total 2"));
  CHECK(b.complete());
}

TEST_CASE("a tag deleted on one replica is deleted on the other and not brought back", "[replica][engine]") {
  pair_of_replicas p;
  const digest m = p.a.image("app", "old", {"x"});
  p.a.image("app", "keep", {"y"});
  CHECK(p.b_from_a().ok());
  CHECK(p.a_from_b().ok());
  REQUIRE(p.b.tag_of("app", "old") == m);

  REQUIRE(p.a.repos.delete_tag("app", "old"));
  // a pulls from b first: its journal notices the delete, so b's tag does not come back.
  auto r = p.a_from_b();
  CHECK(r.ok());
  CHECK(r.tags_set == 0);
  CHECK_FALSE(p.a.tag_of("app", "old"));
  r = p.b_from_a();
  CHECK(r.tags_deleted == 1);
  CHECK_FALSE(p.b.tag_of("app", "old"));
  CHECK(p.b.tag_of("app", "keep"));
  CHECK(p.b.repos.has_manifest("app", m));  // untagged, as on a
  CHECK_FALSE(p.a_from_b().changed_anything());
  CHECK_FALSE(p.b_from_a().changed_anything());
  CHECK_FALSE(p.a.tag_of("app", "old"));
}

TEST_CASE("a manifest deleted by digest on one replica is deleted on the other", "[replica][engine]") {
  pair_of_replicas p;
  const digest m = p.a.image("app", "v1", {"x"});
  CHECK(p.b_from_a().ok());
  REQUIRE(p.a.repos.delete_manifest("app", m));
  CHECK_FALSE(p.a_from_b().changed_anything());
  CHECK_FALSE(p.a.repos.has_manifest("app", m));
  const auto r = p.b_from_a();
  CHECK(r.manifests_deleted == 1);
  CHECK_FALSE(p.b.repos.has_manifest("app", m));
  CHECK_FALSE(p.b.tag_of("app", "v1"));
}

TEST_CASE("a tag pushed differently on both replicas ends on the newer push on both", "[replica][engine]") {
  pair_of_replicas p;
  p.a.image("app", "latest", {"older push"});
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  const digest newer = p.b.image("app", "latest", {"newer push"});
  for (int i = 0; i < 2; ++i) {
    CHECK(p.a_from_b().ok());
    CHECK(p.b_from_a().ok());
  }
  CHECK(p.a.tag_of("app", "latest") == newer);
  CHECK(p.b.tag_of("app", "latest") == newer);
  // The copy keeps the time of the original push, so a third replica sees the same order.
  const auto sa = p.a.local.observe();
  const auto sb = p.b.local.observe();
  CHECK(sa.repositories.at("app").tags.at("latest") == sb.repositories.at("app").tags.at("latest"));
  CHECK(sa.repositories.at("app").manifests == sb.repositories.at("app").manifests);
}

TEST_CASE("a peer that cannot be reached is logged once, and once again when it is back", "[replica][engine]") {
  pair_of_replicas p;
  p.a.image("app", "v1", {"x"});
  p.a_seen_by_b->down = true;
  for (int i = 0; i < 3; ++i) {
    const auto r = p.b_from_a();
    CHECK_FALSE(r.reached);
  }
  REQUIRE(p.b_log.size() == 1);
  CHECK_THAT(p.b_log[0], Catch::Contains("a:5001 cannot be reached"));
  std::string text;
  p.b_engine->metrics(text);
  CHECK_THAT(text, Catch::Contains("registryd_replica_peer_up{peer=\"a:5001\"} 0"));
  CHECK_THAT(text, Catch::Contains("registryd_replica_sync_failed_rounds_total{peer=\"a:5001\"} 3"));
  p.a_seen_by_b->down = false;
  CHECK(p.b_from_a().ok());
  CHECK(p.b_from_a().ok());
  REQUIRE(p.b_log.size() == 3);  // the copy, and "works again"
  CHECK_THAT(p.b_log[1], Catch::Contains("1 manifests, 2 blobs"));
  CHECK_THAT(p.b_log[2], Catch::Contains("works again"));
  text.clear();
  p.b_engine->metrics(text);
  CHECK_THAT(text, Catch::Contains("registryd_replica_peer_up{peer=\"a:5001\"} 1"));
  CHECK_THAT(text, Catch::Contains("registryd_replica_blobs_copied_total{peer=\"a:5001\"} 2"));
  CHECK_THAT(text, Catch::Contains("registryd_replica_sync_rounds_total{peer=\"a:5001\"} 5"));
}

TEST_CASE("started, the engine converges two replicas on its own and stops promptly", "[replica][engine]") {
  pair_of_replicas p;
  const digest m = p.a.image("app", "v1", {"x"});
  p.b_engine->start();
  p.a_engine->start();
  const digest n = p.b.image("app", "v2", {"y"});
  p.a_engine->wake();
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while ((p.b.tag_of("app", "v1") != m || p.a.tag_of("app", "v2") != n) && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  const auto t0 = std::chrono::steady_clock::now();
  p.a_engine->stop();
  p.b_engine->stop();
  CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(1));
  CHECK(p.b.tag_of("app", "v1") == m);
  CHECK(p.a.tag_of("app", "v2") == n);
}
