// The plan of a sync round from two states alone: which tags, manifests and tombstones move,
// and in which order.
#include "replica/plan.hpp"

#include <catch2/catch.hpp>

using registryd::oci::digest;
using registryd::oci::digest_of;
using namespace registryd::local::replica;

namespace {

digest d(const char* seed) { return digest_of(seed); }

repository_state& repo(replica_state& s, const std::string& name = "app") { return s.repositories[name]; }

void tag(replica_state& s, const std::string& t, const digest& dg, unix_ns when, const std::string& name = "app") {
  repo(s, name).tags.insert_or_assign(t, tag_entry{dg, when});
  repo(s, name).manifests.insert_or_assign(dg, when);
}

repository_plan only(const sync_plan& p) {
  REQUIRE(p.repositories.size() == 1);
  return p.repositories.front();
}

}  // namespace

TEST_CASE("identical states plan nothing", "[replica][plan]") {
  replica_state a;
  tag(a, "v1", d("m1"), 100);
  repo(a).manifests.insert_or_assign(d("untagged"), 50);
  repo(a).deleted_tags.insert_or_assign("old", tag_tombstone{d("m0"), 10});
  CHECK(plan_sync(a, a).empty());
}

TEST_CASE("a tag the peer has and this replica lacks is set after its manifest is copied", "[replica][plan]") {
  replica_state local, peer;
  tag(peer, "v1", d("m1"), 100, "team/app");
  const auto rp = only(plan_sync(local, peer));
  CHECK(rp.repository == "team/app");
  REQUIRE(rp.copy_manifests.size() == 1);
  CHECK(rp.copy_manifests[0] == manifest_change{d("m1"), 100});
  REQUIRE(rp.set_tags.size() == 1);
  CHECK(rp.set_tags[0] == tag_change{"v1", d("m1"), 100});
  CHECK(rp.delete_tags.empty());
}

TEST_CASE("a tag whose manifest is here already is set without copying it", "[replica][plan]") {
  replica_state local, peer;
  repo(local).manifests.insert_or_assign(d("m1"), 10);
  tag(peer, "v1", d("m1"), 100);
  const auto rp = only(plan_sync(local, peer));
  CHECK(rp.copy_manifests.empty());
  CHECK(rp.set_tags.size() == 1);
}

TEST_CASE("the same tag with the same digest is left alone whatever its times", "[replica][plan]") {
  replica_state local, peer;
  tag(local, "v1", d("m1"), 5);
  tag(peer, "v1", d("m1"), 500);
  CHECK(plan_sync(local, peer).empty());
  CHECK(plan_sync(peer, local).empty());
}

TEST_CASE("a tag pushed differently on two replicas converges on the newer push, seen from both", "[replica][plan]") {
  replica_state a, b;
  tag(a, "latest", d("old"), 100);
  tag(b, "latest", d("new"), 200);
  const auto rp = only(plan_sync(a, b));
  REQUIRE(rp.set_tags.size() == 1);
  CHECK(rp.set_tags[0] == tag_change{"latest", d("new"), 200});
  CHECK(rp.copy_manifests == std::vector<manifest_change>{{d("new"), 200}});
  // b pulls only the old manifest (untagged there afterwards), never the tag.
  const auto back = plan_sync(b, a);
  REQUIRE(back.repositories.size() == 1);
  CHECK(back.repositories[0].set_tags.empty());
}

TEST_CASE("equal push times are broken by the greater digest, the same way on both replicas", "[replica][plan]") {
  replica_state a, b;
  const digest x = d("x"), y = d("y");
  const digest& high = x > y ? x : y;
  const digest& low = x > y ? y : x;
  tag(a, "t", low, 100);
  tag(b, "t", high, 100);
  CHECK(only(plan_sync(a, b)).set_tags.size() == 1);
  const auto back = plan_sync(b, a);
  CHECK((back.empty() || back.repositories[0].set_tags.empty()));
}

TEST_CASE("a local tombstone at least as new as the peer's tag keeps the tag deleted", "[replica][plan]") {
  replica_state local, peer;
  tag(peer, "v1", d("m1"), 100);
  repo(local).deleted_tags.insert_or_assign("v1", tag_tombstone{d("m1"), 100});
  repo(local).deleted_manifests.insert_or_assign(d("m1"), 150);
  CHECK(plan_sync(local, peer).empty());
}

TEST_CASE("a tag pushed on the peer after the local delete comes back", "[replica][plan]") {
  replica_state local, peer;
  repo(local).deleted_tags.insert_or_assign("v1", tag_tombstone{d("m0"), 100});
  tag(peer, "v1", d("m1"), 101);
  const auto rp = only(plan_sync(local, peer));
  CHECK(rp.set_tags == std::vector<tag_change>{{"v1", d("m1"), 101}});
}

TEST_CASE("the peer's newer delete of a tag deletes it here and is adopted", "[replica][plan]") {
  replica_state local, peer;
  tag(local, "v1", d("m1"), 100);
  repo(peer).manifests.insert_or_assign(d("m1"), 100);
  repo(peer).deleted_tags.insert_or_assign("v1", tag_tombstone{d("m1"), 200});
  const auto rp = only(plan_sync(local, peer));
  CHECK(rp.delete_tags == std::vector<tag_change>{{"v1", d("m1"), 200}});
  CHECK(rp.adopt_tag_tombstones == std::vector<tag_change>{{"v1", d("m1"), 200}});
  CHECK(rp.set_tags.empty());
  CHECK(rp.delete_manifests.empty());  // the manifest stays, untagged, as on the peer
}

TEST_CASE("a tag set here after the peer's delete survives the delete", "[replica][plan]") {
  replica_state local, peer;
  tag(local, "v1", d("m2"), 300);
  repo(peer).deleted_tags.insert_or_assign("v1", tag_tombstone{d("m1"), 200});
  const auto p = plan_sync(local, peer);
  CHECK(p.empty());
}

TEST_CASE("a delete and a push at the same time: the delete wins on both sides", "[replica][plan]") {
  replica_state a, b;
  tag(a, "v1", d("m1"), 200);
  repo(b).deleted_tags.insert_or_assign("v1", tag_tombstone{d("m1"), 200});
  repo(b).manifests.insert_or_assign(d("m1"), 200);
  CHECK(only(plan_sync(a, b)).delete_tags.size() == 1);
  CHECK(plan_sync(b, a).empty());
}

TEST_CASE("tombstones travel on through replicas that never held the tag, newest kept", "[replica][plan]") {
  replica_state local, peer;
  repo(peer).deleted_tags.insert_or_assign("v1", tag_tombstone{d("m1"), 200});
  repo(peer).deleted_manifests.insert_or_assign(d("m1"), 200);
  const auto rp = only(plan_sync(local, peer));
  CHECK(rp.adopt_tag_tombstones == std::vector<tag_change>{{"v1", d("m1"), 200}});
  CHECK(rp.adopt_manifest_tombstones == std::vector<manifest_change>{{d("m1"), 200}});
  CHECK(rp.delete_tags.empty());
  CHECK(rp.delete_manifests.empty());

  repo(local).deleted_tags.insert_or_assign("v1", tag_tombstone{d("m1"), 300});
  repo(local).deleted_manifests.insert_or_assign(d("m1"), 300);
  CHECK(plan_sync(local, peer).empty());
}

TEST_CASE("untagged manifests are copied unless a tombstone here is as new", "[replica][plan]") {
  replica_state local, peer;
  repo(peer).manifests.insert_or_assign(d("sig"), 100);
  repo(peer).manifests.insert_or_assign(d("sbom"), 100);
  repo(local).deleted_manifests.insert_or_assign(d("sig"), 150);
  const auto rp = only(plan_sync(local, peer));
  CHECK(rp.copy_manifests == std::vector<manifest_change>{{d("sbom"), 100}});
}

TEST_CASE("a manifest a tag needs is copied whatever the tombstones say", "[replica][plan]") {
  replica_state local, peer;
  repo(local).deleted_manifests.insert_or_assign(d("m1"), 150);
  tag(peer, "v2", d("m1"), 200);
  const auto rp = only(plan_sync(local, peer));
  CHECK(rp.copy_manifests == std::vector<manifest_change>{{d("m1"), 200}});
  CHECK(rp.set_tags.size() == 1);
}

TEST_CASE("the peer's newer delete of a manifest deletes it here unless a newer tag needs it", "[replica][plan]") {
  replica_state local, peer;
  repo(local).manifests.insert_or_assign(d("m1"), 100);
  repo(local).manifests.insert_or_assign(d("m2"), 100);
  tag(local, "keep", d("m2"), 300);
  repo(peer).deleted_manifests.insert_or_assign(d("m1"), 200);
  repo(peer).deleted_manifests.insert_or_assign(d("m2"), 200);
  const auto rp = only(plan_sync(local, peer));
  CHECK(rp.delete_manifests == std::vector<manifest_change>{{d("m1"), 200}});
  CHECK(rp.adopt_manifest_tombstones == std::vector<manifest_change>{{d("m1"), 200}});
}

TEST_CASE("a manifest stored here after the peer deleted it stays", "[replica][plan]") {
  replica_state local, peer;
  repo(local).manifests.insert_or_assign(d("m1"), 300);
  repo(peer).deleted_manifests.insert_or_assign(d("m1"), 200);
  CHECK(plan_sync(local, peer).empty());
}

TEST_CASE("what only this replica holds is left alone: the peer pulls it itself", "[replica][plan]") {
  replica_state local, peer;
  tag(local, "mine", d("m1"), 100, "only/here");
  repo(local, "only/here").deleted_tags.insert_or_assign("gone", tag_tombstone{d("m0"), 50});
  CHECK(plan_sync(local, peer).empty());
}

TEST_CASE("repositories are planned in name order with their manifests sorted and unique", "[replica][plan]") {
  replica_state local, peer;
  tag(peer, "a", d("m1"), 100, "zeta");
  tag(peer, "b", d("m1"), 100, "zeta");
  tag(peer, "c", d("m2"), 100, "zeta");
  tag(peer, "a", d("m3"), 100, "alpha");
  const auto p = plan_sync(local, peer);
  REQUIRE(p.repositories.size() == 2);
  CHECK(p.repositories[0].repository == "alpha");
  const auto& z = p.repositories[1];
  CHECK(z.copy_manifests.size() == 2);
  CHECK(z.copy_manifests[0].digest < z.copy_manifests[1].digest);
  CHECK(z.set_tags.size() == 3);
}

TEST_CASE("the replica state survives its wire form", "[replica][state]") {
  replica_state s;
  tag(s, "v1", d("m1"), 1700000000123456789, "team/app");
  repo(s, "team/app").manifests.insert_or_assign(d("child"), 42);
  repo(s, "team/app").deleted_tags.insert_or_assign("v0", tag_tombstone{d("m0"), 7});
  repo(s, "other").deleted_manifests.insert_or_assign(d("x"), 9);
  const auto j = to_json(s);
  CHECK(j["version"] == 1);
  CHECK(j["repositories"]["team/app"]["tags"]["v1"]["updated"] == 1700000000123456789);
  auto back = state_from_json(nlohmann::json::parse(j.dump()));
  REQUIRE(back.ok());
  CHECK(*back == s);
}

TEST_CASE("a replica state with a wrong field is refused naming the field", "[replica][state]") {
  auto j = to_json(replica_state{});
  j["version"] = 2;
  auto r = state_from_json(j);
  REQUIRE_FALSE(r.ok());
  CHECK_THAT(r.error_message(), Catch::Contains("version"));

  nlohmann::json bad = {{"version", 1},
                        {"repositories", {{"app", {{"tags", {{"v1", {{"digest", "sha256:nothex"}, {"updated", 1}}}}}}}}}};
  r = state_from_json(bad);
  REQUIRE_FALSE(r.ok());
  CHECK_THAT(r.error_message(), Catch::Contains("repositories[\"app\"].tags[\"v1\"].digest"));

  bad = {{"version", 1}, {"repositories", {{"Bad Name", nlohmann::json::object()}}}};
  CHECK_FALSE(state_from_json(bad).ok());
  bad = {{"version", 1}, {"repositories", {{"app", {{"manifests", {{d("m").str(), "soon"}}}}}}}};
  CHECK_FALSE(state_from_json(bad).ok());
}
