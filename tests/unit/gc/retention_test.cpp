#include <registryd/oci/storage/gc.hpp>
#include <registryd/oci/storage/retention.hpp>

#include "gc_test_support.hpp"

using registryd::oci::digest;
using registryd::oci::digest_of;
using registryd::oci::storage::gc_options;
using registryd::oci::storage::rotate_releases;
using registryd::oci::storage::rotation_options;
using registryd::oci::storage::rotation_report;
using registryd::oci::storage::run_gc;
using registryd::test::test_store;
using strings = std::vector<std::string>;

namespace {

constexpr const char* platform = "system/deckhouse";

rotation_report rotate(test_store& s, std::size_t keep, bool dry_run = false, strings repositories = {platform}) {
  rotation_options o;
  o.keep = keep;
  o.dry_run = dry_run;
  o.repositories = std::move(repositories);
  auto r = rotate_releases(s.repos, o);
  for (const auto& e : r.errors) UNSCOPED_INFO(e);
  return r;
}

strings tags_of(test_store& s, const std::string& repo) {
  auto t = s.repos.tags(repo);
  REQUIRE(t);
  return *t;
}

}  // namespace

TEST_CASE("rotation keeps the N newest release tags by semver, v1.10.0 above v1.9.0, and every other tag", "[rotation]") {
  test_store s;
  for (const char* v : {"v1.8.0", "v1.9.0", "v1.9.1", "v1.10.0"}) {
    s.image(platform, std::string("config ") + v, {std::string("layer ") + v}, std::string(v));
  }
  s.image(platform, "config rc", {"layer rc"}, "v1.11.0-rc.1");
  const digest latest = s.image(platform, "config latest", {"layer latest"}, "latest");
  REQUIRE(s.repos.set_tag(platform, "stable", latest));

  const auto r = rotate(s, 2);
  CHECK(r.errors.empty());
  REQUIRE(r.repositories.size() == 1);
  const auto& repo = r.repositories[0];
  CHECK(repo.name == platform);
  CHECK(repo.kept_releases == strings{"v1.10.0", "v1.9.1"});
  CHECK(repo.deleted_releases == strings{"v1.9.0", "v1.8.0"});
  CHECK(repo.other_tags == strings{"latest", "stable", "v1.11.0-rc.1"});
  CHECK(repo.deleted_manifests.size() == 2);
  CHECK(r.tags_deleted == 2);
  CHECK(r.manifests_deleted == 2);
  CHECK(tags_of(s, platform) == strings{"latest", "stable", "v1.10.0", "v1.11.0-rc.1", "v1.9.1"});
  CHECK(r.summary() == "deleted 2 release tags and 2 manifests in 1 repository");
}

TEST_CASE("rotation deletes what only old releases reach, then GC frees their blobs and nothing else", "[rotation]") {
  test_store s;
  const digest v1 = s.image(platform, "config v1", {"shared base", "only in v1"}, "v1.0.0");
  const digest v2 = s.image(platform, "config v2", {"shared base", "only in v2"}, "v1.1.0");
  const digest v3 = s.image(platform, "config v3", {"shared base", "only in v3"}, "v1.2.0");
  // A channel tag still points at the oldest release: that image stays.
  REQUIRE(s.repos.set_tag(platform, "rock-solid", v1));
  // A component image pulled by digest, never tagged: rotation leaves it alone.
  const digest component = s.image(platform, "component config", {"component layer"});

  const auto r = rotate(s, 1);
  CHECK(r.errors.empty());
  CHECK(r.repositories.at(0).deleted_releases == strings{"v1.1.0", "v1.0.0"});
  CHECK(r.repositories.at(0).deleted_manifests == strings{v2.str()});
  CHECK(s.repos.has_manifest(platform, v1));
  CHECK_FALSE(s.repos.has_manifest(platform, v2));
  CHECK(s.repos.has_manifest(platform, v3));
  CHECK(s.repos.has_manifest(platform, component));

  s.age_everything();
  const auto gc = run_gc(s.repos, s.uploads, gc_options{});
  CHECK(gc.errors.empty());
  CHECK(gc.blobs.count == 3);  // v2's manifest, config and own layer
  CHECK_FALSE(s.blobs.exists(digest_of("only in v2")));
  CHECK_FALSE(s.blobs.exists(digest_of("config v2")));
  CHECK_FALSE(s.blobs.exists(v2));
  for (const char* kept : {"shared base", "only in v1", "only in v3", "component layer"}) {
    CHECK(s.blobs.exists(digest_of(kept)));
  }
}

TEST_CASE("rotation deletes an old release's index with its children and referrers, not a child a kept index shares", "[rotation]") {
  test_store s;
  const digest shared = s.image(platform, "config shared arm", {"arm layer"});
  const digest old_amd = s.image(platform, "config old amd", {"old amd layer"});
  const digest new_amd = s.image(platform, "config new amd", {"new amd layer"});
  const digest old_index = s.index(platform, {old_amd, shared}, "v1.0.0");
  const digest new_index = s.index(platform, {new_amd, shared}, "v1.1.0");
  const digest old_sig = s.image(platform, "sig config", {"signature of old"}, std::nullopt, old_index);

  const auto r = rotate(s, 1);
  CHECK(r.errors.empty());
  strings expected{old_index.str(), old_amd.str(), old_sig.str()};
  strings got = r.repositories.at(0).deleted_manifests;
  std::sort(expected.begin(), expected.end());
  std::sort(got.begin(), got.end());
  CHECK(got == expected);
  CHECK(s.repos.has_manifest(platform, shared));
  CHECK(s.repos.has_manifest(platform, new_index));
  CHECK(s.repos.has_manifest(platform, new_amd));
  CHECK(s.repos.referrers(platform, old_index).empty());
}

TEST_CASE("rotation covers the platform repository and those below it, and only those", "[rotation]") {
  test_store s;
  for (const char* v : {"v1.60.0", "v1.61.0", "v1.62.0"}) {
    s.image(platform, std::string("deckhouse ") + v, {std::string("d ") + v}, std::string(v));
    s.image("system/deckhouse/install", std::string("install ") + v, {std::string("i ") + v}, std::string(v));
    s.image("other/product", std::string("other ") + v, {std::string("o ") + v}, std::string(v));
  }
  s.image("system/deckhouse/release-channel", "channel", {"version.json"}, "stable");

  SECTION("a dry run reports and changes nothing") {
    const auto r = rotate(s, 2, true);
    CHECK(r.dry_run);
    REQUIRE(r.repositories.size() == 2);
    CHECK(r.repositories[0].name == "system/deckhouse");
    CHECK(r.repositories[1].name == "system/deckhouse/install");
    CHECK(r.tags_deleted == 2);
    CHECK(r.manifests_deleted == 2);
    CHECK(tags_of(s, platform).size() == 3);
    CHECK(tags_of(s, "system/deckhouse/install").size() == 3);
    CHECK(r.summary() == "would delete 2 release tags and 2 manifests in 2 repositories");
  }
  SECTION("a run rotates both") {
    const auto r = rotate(s, 2);
    CHECK(tags_of(s, platform) == strings{"v1.61.0", "v1.62.0"});
    CHECK(tags_of(s, "system/deckhouse/install") == strings{"v1.61.0", "v1.62.0"});
    CHECK(tags_of(s, "other/product").size() == 3);
    CHECK(tags_of(s, "system/deckhouse/release-channel") == strings{"stable"});
  }
  SECTION("a named repository alone") {
    rotation_options o;
    o.keep = 1;
    o.repositories = {platform};
    o.recursive = false;
    const auto r = rotate_releases(s.repos, o);
    CHECK(tags_of(s, platform) == strings{"v1.62.0"});
    CHECK(tags_of(s, "system/deckhouse/install").size() == 3);
  }
}

TEST_CASE("rotation refuses to keep nothing and names a repository the store does not have", "[rotation]") {
  test_store s;
  s.image(platform, "c", {"l"}, "v1.0.0");
  const auto none = rotate(s, 0);
  REQUIRE(none.errors.size() == 1);
  CHECK(none.errors[0].find("at least 1") != std::string::npos);
  CHECK(tags_of(s, platform) == strings{"v1.0.0"});
  const auto unknown = rotate(s, 1, false, {"no/such"});
  REQUIRE(unknown.errors.size() == 1);
  CHECK(unknown.errors[0] == "repository no/such is not in the store");
}
