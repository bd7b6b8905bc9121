#include <registryd/oci/storage/gc.hpp>

#include "gc_test_support.hpp"

#include <algorithm>
#include <atomic>
#include <random>
#include <thread>

using namespace std::chrono_literals;
using registryd::oci::digest;
using registryd::oci::storage::gc_item;
using registryd::oci::storage::gc_item_kind;
using registryd::oci::storage::gc_options;
using registryd::oci::storage::gc_report;
using registryd::oci::storage::run_gc;
using registryd::test::files_below;
using registryd::test::make_old;
using registryd::test::test_store;

namespace {

struct gc_run {
  gc_report report;
  std::vector<gc_item> items;
};

gc_run collect(test_store& s, gc_options options = {}) {
  gc_run out;
  options.on_item = [&out, also = options.on_item](const gc_item& i) {
    out.items.push_back(i);
    if (also) also(i);
  };
  out.report = run_gc(s.repos, s.uploads, options);
  INFO(out.report.summary());
  for (const auto& e : out.report.errors) INFO(e);
  return out;
}

std::vector<std::string> names_of(const gc_run& r, gc_item_kind kind) {
  std::vector<std::string> out;
  for (const auto& i : r.items) {
    if (i.kind == kind) out.push_back(i.name);
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

TEST_CASE("GC deletes only blobs nothing references that are older than the grace period", "[gc]") {
  test_store s;
  const digest m = s.image("library/a", "config a", {"layer one", "layer two"}, "v1");
  const digest old_orphan = s.blob("an old orphan");
  s.age_everything();
  const digest young_orphan = s.blob("a young orphan");

  const auto r = collect(s);
  CHECK(r.report.errors.empty());
  CHECK(names_of(r, gc_item_kind::blob) == std::vector<std::string>{old_orphan.str()});
  CHECK(r.report.blobs.count == 1);
  CHECK(r.report.blobs.bytes == std::string("an old orphan").size());
  CHECK_FALSE(s.blobs.exists(old_orphan));
  CHECK(s.blobs.exists(young_orphan));
  CHECK(s.blobs.exists(m));
  for (const char* c : {"config a", "layer one", "layer two"}) CHECK(s.linked("library/a", registryd::oci::digest_of(c)));
  CHECK(r.report.links.count == 0);
  CHECK(r.report.manifests.count == 0);
  CHECK(r.report.blobs_kept.count == 5);  // config, two layers, manifest, young orphan
  CHECK(r.report.repositories == 1);
}

TEST_CASE("a deleted manifest's links and blobs are reclaimed, but not a blob another repository uses", "[gc]") {
  test_store s;
  const digest ma = s.image("library/a", "config a", {"shared layer", "only in a"}, "v1");
  const digest mb = s.image("library/b", "config b", {"shared layer"}, "v1");
  REQUIRE(s.repos.delete_manifest("library/a", ma));
  s.age_everything();

  const auto r = collect(s);
  CHECK(r.report.errors.empty());
  // Every link of library/a goes: no manifest there references them any more.
  CHECK(r.report.links.count == 3);
  CHECK_FALSE(s.linked("library/a", registryd::oci::digest_of("shared layer")));
  CHECK_FALSE(s.linked("library/a", registryd::oci::digest_of("only in a")));
  // The manifest, its config and its own layer are freed; the shared layer stays for b.
  std::vector<std::string> expected{ma.str(), registryd::oci::digest_of("config a").str(),
                                    registryd::oci::digest_of("only in a").str()};
  std::sort(expected.begin(), expected.end());
  CHECK(names_of(r, gc_item_kind::blob) == expected);
  CHECK(s.blobs.exists(registryd::oci::digest_of("shared layer")));
  CHECK(s.linked("library/b", registryd::oci::digest_of("shared layer")));
  CHECK(s.repos.has_manifest("library/b", mb));
}

TEST_CASE("a link no manifest references stays while it or its blob is younger than the grace period", "[gc]") {
  test_store s;
  // A push in progress: the layers are uploaded and linked, the manifest is not there yet.
  s.age_everything();
  const digest fresh = s.layer("library/a", "just uploaded");
  const digest old_blob = s.blob("uploaded long ago");
  make_old(s.blobs.blob_path(old_blob));
  REQUIRE(s.repos.link_blob("library/a", old_blob));  // linking touches the blob

  const auto r = collect(s);
  CHECK(r.report.links.count == 0);
  CHECK(r.report.blobs.count == 0);
  CHECK(s.linked("library/a", fresh));
  CHECK(s.linked("library/a", old_blob));
}

TEST_CASE("a dry run reports exactly what a run deletes and deletes nothing", "[gc]") {
  test_store s;
  const digest ma = s.image("library/a", "config a", {"layer a"}, "v1");
  s.image("library/a", "config b", {"layer b"}, "v2");
  REQUIRE(s.repos.delete_manifest("library/a", ma));
  s.blob("orphan");
  auto id = s.uploads.create("library/a");
  REQUIRE(id);
  s.age_everything(48h);
  const auto before = files_below(s.root() / "blobs");
  const auto before_repos = files_below(s.root() / "repositories");

  gc_options dry;
  dry.dry_run = true;
  const auto would = collect(s, dry);
  CHECK(would.report.dry_run);
  CHECK(files_below(s.root() / "blobs") == before);
  CHECK(files_below(s.root() / "repositories") == before_repos);
  CHECK(std::filesystem::exists(s.root() / "uploads" / *id));

  const auto did = collect(s);
  CHECK(did.report.errors.empty());
  CHECK(would.report.blobs.count == 4);  // manifest, config, layer of a; the orphan
  CHECK(did.report.blobs.count == would.report.blobs.count);
  CHECK(did.report.blobs.bytes == would.report.blobs.bytes);
  CHECK(did.report.links.count == would.report.links.count);
  CHECK(did.report.uploads.count == 1);
  CHECK(would.report.uploads.count == 1);
  CHECK(names_of(did, gc_item_kind::blob) == names_of(would, gc_item_kind::blob));
  CHECK(names_of(did, gc_item_kind::link) == names_of(would, gc_item_kind::link));
  CHECK(would.report.summary().rfind("would delete 4 blobs", 0) == 0);
  CHECK(did.report.summary().rfind("deleted 4 blobs", 0) == 0);
}

TEST_CASE("untagged manifests stay by default, and delete_untagged keeps what a tag reaches, index children and referrers included", "[gc]") {
  test_store s;
  const digest amd = s.image("library/a", "config amd64", {"amd64 layer"});
  const digest arm = s.image("library/a", "config arm64", {"arm64 layer"});
  const digest idx = s.index("library/a", {amd, arm}, "v1");
  const digest sig = s.image("library/a", "signature config", {"signature of v1"}, std::nullopt, idx);
  const digest lone = s.image("library/a", "config lone", {"lone layer"});
  const digest lone_sig = s.image("library/a", "signature config 2", {"signature of lone"}, std::nullopt, lone);
  s.age_everything();

  SECTION("by default nothing is deleted") {
    const auto r = collect(s);
    CHECK(r.report.manifests.count == 0);
    CHECK(r.report.blobs.count == 0);
    CHECK(r.report.links.count == 0);
    CHECK(r.report.manifests_kept == 6);
  }
  SECTION("with delete_untagged the lone manifest and its referrer go, with their blobs") {
    gc_options o;
    o.delete_untagged = true;
    const auto r = collect(s, o);
    CHECK(r.report.errors.empty());
    std::vector<std::string> expected{lone.str(), lone_sig.str()};
    std::sort(expected.begin(), expected.end());
    CHECK(names_of(r, gc_item_kind::manifest) == expected);
    for (const digest& d : {amd, arm, idx, sig}) CHECK(s.repos.has_manifest("library/a", d));
    CHECK_FALSE(s.repos.has_manifest("library/a", lone));
    CHECK_FALSE(s.repos.has_manifest("library/a", lone_sig));
    CHECK(s.repos.referrers("library/a", idx).size() == 1);
    CHECK(r.report.links.count == 4);
    CHECK(r.report.blobs.count == 6);  // two manifests, two configs, two layers
    CHECK_FALSE(s.blobs.exists(registryd::oci::digest_of("lone layer")));
    CHECK(s.blobs.exists(registryd::oci::digest_of("arm64 layer")));
  }
  SECTION("with delete_untagged, a young untagged manifest stays (a push under way)") {
    const digest fresh = s.image("library/a", "config fresh", {"fresh layer"});
    gc_options o;
    o.delete_untagged = true;
    const auto r = collect(s, o);
    CHECK(s.repos.has_manifest("library/a", fresh));
    CHECK(s.linked("library/a", registryd::oci::digest_of("fresh layer")));
    CHECK(r.report.manifests.count == 2);
  }
}

TEST_CASE("a blob published or linked between mark and sweep survives, even with a grace of 0", "[gc]") {
  test_store s;
  const digest relinked = s.blob("old, linked again during the run");
  const digest orphan = s.blob("old and forgotten");
  s.age_everything();
  std::optional<digest> published;

  gc_options o;
  o.grace = 0s;
  o.after_mark = [&] {
    // The mark has seen neither: a push publishes one blob and mounts the other.
    published = s.blob("pushed while GC runs");
    REQUIRE(s.repos.link_blob("library/new", relinked));
  };
  const auto r = collect(s, o);
  REQUIRE(published);
  CHECK(s.blobs.exists(*published));
  CHECK(s.blobs.exists(relinked));
  CHECK(s.linked("library/new", relinked));
  CHECK_FALSE(s.blobs.exists(orphan));
  CHECK(names_of(r, gc_item_kind::blob) == std::vector<std::string>{orphan.str()});
}

TEST_CASE("a blob mounted at the last moment before its delete is put back", "[gc]") {
  test_store s;
  const digest late = s.blob("mounted just before the delete");
  s.age_everything();
  gc_options o;
  o.grace = 0s;
  o.before_delete = [&](const gc_item& i) {
    REQUIRE(i.kind == gc_item_kind::blob);
    REQUIRE(s.repos.link_blob("library/late", late));
  };
  const auto r = collect(s, o);
  CHECK(r.report.blobs.count == 0);
  CHECK(r.report.rescued == 1);
  CHECK(s.blobs.exists(late));
  CHECK(s.linked("library/late", late));
  CHECK(files_below(s.root() / "tmp").empty());
}

TEST_CASE("a link re-made at the last moment before its removal stays, and so does its blob", "[gc]") {
  test_store s;
  const digest m = s.image("library/a", "config", {"layer"}, "v1");
  REQUIRE(s.repos.delete_manifest("library/a", m));
  s.age_everything();
  const digest layer = registryd::oci::digest_of("layer");
  gc_options o;
  o.grace = 0s;
  o.before_delete = [&](const gc_item& i) {
    // A client pushes an image with the same layer again: the blob exists, it is linked.
    if (i.kind == gc_item_kind::link && i.name == layer.str()) REQUIRE(s.repos.link_blob("library/a", layer));
  };
  const auto r = collect(s, o);
  CHECK(r.report.links.count == 1);  // the config's
  CHECK(r.report.rescued == 1);
  CHECK(s.linked("library/a", layer));
  CHECK(names_of(r, gc_item_kind::blob) == std::vector<std::string>{
                                               std::min(m.str(), registryd::oci::digest_of("config").str()),
                                               std::max(m.str(), registryd::oci::digest_of("config").str())});
}

TEST_CASE("an untagged manifest tagged at the last moment before its delete stays, with its blobs", "[gc]") {
  test_store s;
  const digest m = s.image("library/a", "config", {"layer"});
  s.age_everything();
  gc_options o;
  o.delete_untagged = true;
  o.before_delete = [&](const gc_item& i) {
    if (i.kind == gc_item_kind::manifest) REQUIRE(s.repos.set_tag("library/a", "now-tagged", m));
  };
  const auto r = collect(s, o);
  CHECK(r.report.manifests.count == 0);
  CHECK(r.report.links.count == 0);
  CHECK(r.report.blobs.count == 0);
  CHECK(r.report.rescued == 1);
  CHECK(s.repos.has_manifest("library/a", m));
  CHECK(s.linked("library/a", registryd::oci::digest_of("layer")));
}

TEST_CASE("a manifest pushed again while GC has its revision aside stays, with its tag and referrer entry",
          "[gc]") {
  test_store s;
  const digest subject = s.image("library/a", "subject config", {"subject layer"});
  const digest m = s.image("library/a", "config", {"layer"}, std::nullopt, subject);
  const std::string bytes = registryd::test::slurp(s.blobs.blob_path(m));
  s.age_everything();
  gc_options o;
  o.grace = 0s;
  o.delete_untagged = true;

  SECTION("the push comes before GC looks: the manifest is in use and kept") {
    o.after_aside = [&](const gc_item& i) {
      if (i.name == m.str()) s.put("library/a", bytes, registryd::test::oci_manifest, "again", subject);
    };
    const auto r = collect(s, o);
    CHECK(r.report.rescued == 1);
    CHECK(names_of(r, gc_item_kind::manifest) == std::vector<std::string>{subject.str()});
    const auto tagged = s.repos.resolve_tag("library/a", "again");
    REQUIRE(tagged);
    CHECK(*tagged == m);
  }
  SECTION("the push comes after GC looked: only what GC moved aside goes") {
    // The push writes its revision and referrer entry now, but the look sees none of it (its
    // content is stamped old, its tag is gone again); the push's touches of the content and
    // the layers land after the look, as GC reports the delete. What GC deletes must not be
    // what the push wrote.
    o.after_aside = [&](const gc_item& i) {
      if (i.name != m.str()) return;
      s.put("library/a", bytes, registryd::test::oci_manifest, "again", subject);
      REQUIRE(s.repos.delete_tag("library/a", "again"));
      registryd::test::make_old(s.blobs.blob_path(m));
    };
    o.on_item = [&](const gc_item& i) {
      if (i.kind != gc_item_kind::manifest || i.name != m.str()) return;
      REQUIRE(s.blobs.touch(m));
      for (const char* b : {"config", "layer"}) REQUIRE(s.repos.link_blob("library/a", registryd::oci::digest_of(b)));
    };
    const auto r = collect(s, o);
    CHECK(r.report.rescued >= 1);  // the push's links, found fresh by the link sweep
    auto deleted = std::vector<std::string>{m.str(), subject.str()};
    std::sort(deleted.begin(), deleted.end());
    CHECK(names_of(r, gc_item_kind::manifest) == deleted);
  }
  CHECK(s.repos.has_manifest("library/a", m));
  const auto listed = s.repos.referrers("library/a", subject);
  REQUIRE(listed.size() == 1);
  CHECK(listed[0].at("digest") == m.str());
  for (const auto& f : files_below(s.repos.repository_path("library/a"))) {
    CHECK(f.filename().string().rfind(".gc-", 0) == std::string::npos);
  }
}

TEST_CASE("pushes racing the sweep never lose a blob they linked", "[gc]") {
  test_store s;
  std::vector<digest> blobs;
  for (int i = 0; i < 300; ++i) blobs.push_back(s.blob("candidate " + std::to_string(i)));
  s.age_everything();
  std::shuffle(blobs.begin(), blobs.end(), std::mt19937(7));

  std::vector<digest> linked;
  std::thread pusher;
  gc_options o;
  o.grace = 0s;
  o.after_mark = [&] {
    pusher = std::thread([&] {
      // Mounts, as a cross-repository mount or a re-push of an existing blob does: touch, link.
      for (const digest& d : blobs) {
        if (s.repos.link_blob("library/racer", d)) linked.push_back(d);
      }
    });
  };
  const auto r = collect(s, o);
  pusher.join();
  INFO("linked " << linked.size() << ", deleted " << r.report.blobs.count << ", rescued " << r.report.rescued);
  CHECK(r.report.errors.empty());
  for (const digest& d : linked) {
    CHECK(s.blobs.exists(d));
  }
  CHECK(linked.size() + r.report.blobs.count == blobs.size());
}

TEST_CASE("abandoned uploads and stale temporaries go after the upload grace, fresh ones stay", "[gc]") {
  test_store s;
  auto old_id = s.uploads.create("library/a");
  auto new_id = s.uploads.create("library/a");
  REQUIRE(old_id);
  REQUIRE(new_id);
  for (const auto* id : {&*old_id, &*new_id}) {
    auto lease = s.uploads.acquire(*id, "library/a");
    REQUIRE(lease);
    REQUIRE(lease->append("some bytes"));
    REQUIRE(lease->sync());
  }
  for (const auto& p : files_below(s.root() / "uploads" / *old_id)) make_old(p, 25h);
  make_old(s.root() / "uploads" / *old_id, 25h);
  auto stale = s.blobs.create_writer();
  REQUIRE(stale);
  REQUIRE(stale->append("half a blob"));
  REQUIRE(stale->flush());
  const auto stale_path = stale->path();
  stale->detach();
  make_old(stale_path, 25h);
  auto live = s.blobs.create_writer();
  REQUIRE(live);
  // A crash left an atomic write's temporary in a repository.
  s.image("library/a", "c", {"l"}, "v1");
  const auto hidden = s.repos.repository_path("library/a") / "_manifests" / "tags" / ".v1.0123456789abcdef.tmp";
  registryd::test::spill(hidden, "sha256:0");
  make_old(hidden, 25h);

  const auto r = collect(s);
  CHECK(r.report.errors.empty());
  CHECK(names_of(r, gc_item_kind::upload) == std::vector<std::string>{*old_id});
  CHECK(r.report.uploads.bytes == 10);
  CHECK_FALSE(std::filesystem::exists(s.root() / "uploads" / *old_id));
  CHECK(std::filesystem::exists(s.root() / "uploads" / *new_id));
  CHECK(r.report.temporaries.count == 2);
  CHECK_FALSE(std::filesystem::exists(stale_path));
  CHECK_FALSE(std::filesystem::exists(hidden));
  CHECK(std::filesystem::exists(live->path()));
}

TEST_CASE("a second GC run is skipped while one holds the lock, a dry run is not", "[gc]") {
  test_store s;
  s.blob("orphan");
  s.age_everything();
  std::optional<gc_report> second, dry;
  gc_options o;
  o.after_mark = [&] {
    second = run_gc(s.repos, s.uploads, gc_options{});
    gc_options d;
    d.dry_run = true;
    dry = run_gc(s.repos, s.uploads, d);
  };
  const auto first = collect(s, o);
  REQUIRE(second);
  CHECK(second->skipped);
  CHECK(second->errors.size() == 1);
  CHECK(second->summary().find("skipped") == 0);
  REQUIRE(dry);
  CHECK_FALSE(dry->skipped);
  CHECK(dry->blobs.count == 1);
  CHECK(first.report.blobs.count == 1);
}

TEST_CASE("a repository whose manifest cannot be parsed keeps all its links", "[gc]") {
  test_store s;
  const digest m = s.image("library/a", "config", {"layer"}, "v1");
  REQUIRE(s.repos.delete_tag("library/a", "v1"));
  // The revision survives but names content that is not a manifest.
  const std::string junk = "not a manifest";
  const auto junk_digest = registryd::oci::digest_of(junk);
  REQUIRE(s.blobs.put(junk, junk_digest));
  registryd::test::spill(s.repos.repository_path("library/a") / "_manifests" / "revisions" / "sha256" /
                             std::string(junk_digest.hex()),
                         R"({"mediaType":"application/vnd.oci.image.manifest.v1+json","size":14})");
  REQUIRE(s.repos.delete_manifest("library/a", m));
  const digest untagged = s.image("library/a", "untagged config", {"untagged layer"});
  s.age_everything();
  gc_options o;
  SECTION("by default") {}
  SECTION("and no untagged manifest goes with delete_untagged") { o.delete_untagged = true; }
  const auto r = collect(s, o);
  REQUIRE(r.report.errors.size() == 1);
  CHECK(r.report.errors[0].find("library/a") != std::string::npos);
  CHECK(r.report.links.count == 0);
  CHECK(r.report.manifests.count == 0);
  CHECK(s.linked("library/a", registryd::oci::digest_of("layer")));
  CHECK(s.blobs.exists(junk_digest));
  CHECK(s.repos.has_manifest("library/a", untagged));
}

TEST_CASE("should_stop ends a run early and says so", "[gc]") {
  test_store s;
  for (int i = 0; i < 10; ++i) s.blob("orphan " + std::to_string(i));
  s.age_everything();
  int polls = 0;
  gc_options o;
  o.should_stop = [&] { return ++polls > 3; };
  const auto r = collect(s, o);
  CHECK(r.report.stopped);
  CHECK(r.report.blobs.count < 10);
  CHECK(r.report.summary().find("stopped early") != std::string::npos);
}

TEST_CASE("online GC during a stream of pushes reports nothing damaged and keeps every pushed image", "[gc]") {
  // Issue 13: revisions pushed while GC walked a repository were counted as damaged ones.
  test_store s;
  s.image("live/app", "config-0", {"layer-0"}, "v0");
  std::atomic<bool> stop{false};
  std::atomic<int> pushed{0}, failed{0};
  std::thread pusher([&] {
    // No Catch2 assertions on this thread: failures are counted and checked after the join.
    for (int i = 1; !stop.load(); ++i) {
      const std::string config = "config-" + std::to_string(i), layer = "layer-" + std::to_string(i);
      const auto c = registryd::oci::digest_of(config), l = registryd::oci::digest_of(layer);
      if (!s.blobs.put(config, c) || !s.repos.link_blob("live/app", c) || !s.blobs.put(layer, l) ||
          !s.repos.link_blob("live/app", l)) {
        ++failed;
        continue;
      }
      const nlohmann::json m = {{"schemaVersion", 2},
                                {"mediaType", registryd::test::oci_manifest},
                                {"config", test_store::desc("application/vnd.oci.image.config.v1+json", c, config.size())},
                                {"layers", {test_store::desc("application/vnd.oci.image.layer.v1.tar+gzip", l, layer.size())}}};
      const std::string bytes = m.dump();
      registryd::oci::storage::manifest_put p{.bytes = bytes,
                                              .digest = registryd::oci::digest_of(bytes),
                                              .media_type = registryd::test::oci_manifest,
                                              .subject = std::nullopt,
                                              .referrer_descriptor = nullptr,
                                              .tag = "v" + std::to_string(i)};
      if (!s.repos.put_manifest("live/app", p)) ++failed;
      ++pushed;
    }
  });
  // GC runs back to back (with the default grace: an in-flight push's fresh links are what it
  // protects) until 60 images went in beside them.
  std::vector<std::string> errors;
  int runs = 0;
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  while (pushed.load() < 60 && std::chrono::steady_clock::now() < deadline) {
    const auto report = run_gc(s.repos, s.uploads, gc_options{});
    errors.insert(errors.end(), report.errors.begin(), report.errors.end());
    ++runs;
  }
  stop = true;
  pusher.join();
  std::string all_errors;
  for (const auto& e : errors) all_errors += e + "\n";
  INFO(pushed.load() << " images pushed during " << runs << " runs; errors:\n" << all_errors);
  CHECK(failed.load() == 0);
  CHECK(errors.empty());
  CHECK(pushed.load() >= 60);
  // Every tag still names a whole image: its manifest, config and layer.
  std::size_t tags = 0;
  s.repos.for_each_tag("live/app", [&](const registryd::oci::storage::tag_record& t) {
    ++tags;
    const auto m = s.repos.open_manifest("live/app", t.digest);
    INFO("tag " << t.tag << ": " << (m ? std::string("ok") : m.error_message()));
    REQUIRE(m);
    const auto bytes = m->file.read_all();
    REQUIRE(bytes);
    const auto doc = nlohmann::json::parse(*bytes);
    CHECK(s.blobs.exists(*registryd::oci::digest::parse(doc["config"]["digest"].get<std::string>())));
    CHECK(s.blobs.exists(*registryd::oci::digest::parse(doc["layers"][0]["digest"].get<std::string>())));
  });
  CHECK(tags == static_cast<std::size_t>(pushed.load()) + 1);
}
