// The local side of replica sync: the state read from the store, and the journal that turns
// what vanished into tombstones.
#include "replica/local_replica.hpp"

#include "replica_test_support.hpp"

#include <fstream>

using namespace registryd::test;
using registryd::local::replica::local_replica;
using registryd::local::replica::now_ns;
using registryd::local::replica::tag_tombstone;

TEST_CASE("the observed state lists tags with their push time and every manifest", "[replica][local]") {
  replica_fixture f;
  const auto before = now_ns();
  const digest m = f.image("team/app", "v1", {"x"});
  const digest untagged = f.image("team/app", std::nullopt, {"y"});
  const auto s = f.local.observe();
  const auto& r = s.repositories.at("team/app");
  REQUIRE(r.tags.size() == 1);
  CHECK(r.tags.at("v1").digest == m);
  CHECK(r.tags.at("v1").updated >= before - 1000000000);
  CHECK(r.manifests.size() == 2);
  CHECK(r.manifests.contains(untagged));
  CHECK(r.deleted_tags.empty());
}

TEST_CASE("a tag or manifest that vanished between observations gets a tombstone", "[replica][local]") {
  replica_fixture f;
  const digest m = f.image("app", "v1", {"x"});
  const digest n = f.image("app", "v2", {"y"});
  (void)f.local.observe();
  REQUIRE(f.repos.delete_tag("app", "v1"));
  REQUIRE(f.repos.delete_manifest("app", n));
  const auto t = now_ns();
  const auto s = f.local.observe();
  const auto& r = s.repositories.at("app");
  REQUIRE(r.deleted_tags.contains("v1"));
  CHECK(r.deleted_tags.at("v1").digest == m);
  CHECK(r.deleted_tags.at("v1").deleted <= t);
  CHECK(r.deleted_tags.contains("v2"));  // went with its manifest
  CHECK(r.deleted_manifests.contains(n));
  CHECK_FALSE(r.deleted_manifests.contains(m));
  CHECK(f.local.tombstones() == 3);
}

TEST_CASE("the journal outlives a restart: a delete made while sync was not running leaves a tombstone",
          "[replica][local]") {
  replica_fixture f;
  f.image("app", "v1", {"x"});
  {
    local_replica first(f.repos);
    (void)first.observe();
  }
  REQUIRE(f.repos.delete_tag("app", "v1"));  // registryd rotate, say, while registryd is down
  local_replica second(f.repos);
  const auto s = second.observe();
  CHECK(s.repositories.at("app").deleted_tags.contains("v1"));
}

TEST_CASE("a tag pushed again after its delete drops the tombstone", "[replica][local]") {
  replica_fixture f;
  f.image("app", "v1", {"x"});
  (void)f.local.observe();
  REQUIRE(f.repos.delete_tag("app", "v1"));
  CHECK(f.local.observe().repositories.at("app").deleted_tags.contains("v1"));
  std::this_thread::sleep_for(std::chrono::milliseconds(5));
  f.image("app", "v1", {"x2"});
  const auto s = f.local.observe();
  CHECK(s.repositories.at("app").deleted_tags.empty());
  CHECK(f.local.tombstones() == 0);
}

TEST_CASE("tombstones expire after their lifetime", "[replica][local]") {
  replica_fixture f;
  local_replica short_lived(f.repos, std::chrono::hours(1));
  f.image("app", "v1", {"x"});
  (void)short_lived.observe();
  REQUIRE(f.repos.delete_tag("app", "v1"));
  CHECK(short_lived.observe().repositories.at("app").deleted_tags.size() == 1);
  const auto later = now_ns() + std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::hours(2)).count();
  CHECK(short_lived.observe(later).repositories.at("app").deleted_tags.empty());
  CHECK(short_lived.tombstones() == 0);
}

TEST_CASE("a wiped store starts with no memory of deletions, and a damaged journal is set aside",
          "[replica][local]") {
  replica_fixture f;
  f.image("app", "v1", {"x"});
  (void)f.local.observe();
  { std::ofstream(f.local.journal_path()) << "{ not json"; }
  local_replica fresh(f.repos);
  REQUIRE(f.repos.delete_tag("app", "v1"));
  const auto s = fresh.observe();  // nothing seen before: nothing deleted
  CHECK(s.repositories.at("app").deleted_tags.empty());
  CHECK(std::filesystem::exists(std::filesystem::path(f.local.journal_path()).concat(".bad")));
}

TEST_CASE("a tag set by sync keeps the original push time, and a newer local push is not overwritten",
          "[replica][local]") {
  replica_fixture f;
  const digest m1 = f.image("app", std::nullopt, {"1"});
  const digest m2 = f.image("app", std::nullopt, {"2"});
  REQUIRE(f.local.set_tag("app", "t", m1, 1000));
  CHECK(f.local.observe().repositories.at("app").tags.at("t").updated == 1000);
  const digest m3 = f.image("app", "t", {"3"});  // pushed now
  REQUIRE(f.local.set_tag("app", "t", m2, 2000));  // planned from an older state
  CHECK(f.tag_of("app", "t") == m3);
}

TEST_CASE("deleting for a peer records the tombstone first and spares a tag that moved", "[replica][local]") {
  replica_fixture f;
  const digest m = f.image("app", "t", {"1"});
  const digest other = f.image("app", std::nullopt, {"2"});
  const auto when = now_ns() - 1000000000;
  REQUIRE(f.local.delete_tag("app", "t", other, tag_tombstone{other, when}));
  CHECK(f.tag_of("app", "t") == m);  // it no longer points where the plan saw it
  REQUIRE(f.local.delete_tag("app", "t", m, tag_tombstone{m, when}));
  CHECK_FALSE(f.tag_of("app", "t"));
  const auto s = f.local.observe();
  CHECK(s.repositories.at("app").deleted_tags.at("t").deleted == when);  // the peer's time, not ours
}
