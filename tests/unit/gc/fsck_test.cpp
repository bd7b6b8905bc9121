#include <registryd/oci/storage/fsck.hpp>

#include "gc_test_support.hpp"

#include <algorithm>
#include <fstream>

using registryd::oci::digest;
using registryd::oci::digest_of;
using registryd::oci::storage::fsck_options;
using registryd::oci::storage::fsck_problem;
using registryd::oci::storage::fsck_problem_kind;
using registryd::oci::storage::fsck_report;
using registryd::oci::storage::run_fsck;
using registryd::test::files_below;
using registryd::test::slurp;
using registryd::test::spill;
using registryd::test::test_store;
namespace fs = std::filesystem;

namespace {

fsck_report check(test_store& s, bool repair = false) {
  fsck_options o;
  o.repair = repair;
  auto r = run_fsck(s.repos, o);
  for (const auto& p : r.problems) {
    UNSCOPED_INFO(registryd::oci::storage::to_string(p.kind) << " " << p.path.string() << ": " << p.reason
                                                            << (p.repair.empty() ? "" : " -> " + p.repair));
  }
  return r;
}

std::vector<fsck_problem_kind> kinds(const fsck_report& r) {
  std::vector<fsck_problem_kind> out;
  for (const auto& p : r.problems) out.push_back(p.kind);
  std::sort(out.begin(), out.end());
  return out;
}

const fsck_problem* find(const fsck_report& r, fsck_problem_kind k) {
  for (const auto& p : r.problems) {
    if (p.kind == k) return &p;
  }
  return nullptr;
}

void flip_byte(const fs::path& p, std::size_t at) {
  std::string bytes = slurp(p);
  REQUIRE(at < bytes.size());
  bytes[at] = static_cast<char>(bytes[at] ^ 0x01);
  spill(p, bytes);
}

}  // namespace

TEST_CASE("fsck finds nothing wrong in a healthy store and counts what it checked", "[fsck]") {
  test_store s;
  const digest amd = s.image("library/a", "config amd64", {"amd64 layer"});
  const digest idx = s.index("library/a", {amd}, "v1");
  s.image("library/a", "sig config", {"signature"}, std::nullopt, idx);
  s.image("library/b", "config b", {"layer b", "layer b2"}, "latest");
  const auto r = check(s);
  CHECK(r.clean());
  CHECK(r.blobs == 11);  // 4 manifests, 3 configs (an index has none), 4 layers
  CHECK(r.repositories == 2);
  CHECK(r.manifests == 4);
  CHECK(r.tags == 2);
  CHECK(r.links == 7);
  CHECK(r.referrers == 1);
  CHECK(r.summary().find("no problems") != std::string::npos);
}

TEST_CASE("fsck finds a flipped byte, and repair quarantines the blob and removes the links to it", "[fsck]") {
  test_store s;
  s.image("library/a", "config", {"a layer of some length"}, "v1");
  const digest layer = digest_of("a layer of some length");
  const fs::path path = s.blobs.blob_path(layer);
  flip_byte(path, 5);

  const auto found = check(s);
  REQUIRE(kinds(found) == std::vector<fsck_problem_kind>{fsck_problem_kind::corrupt_blob});
  const auto& p = found.problems[0];
  CHECK(p.path == path);
  CHECK(p.reason.find("hashes to sha256:") != std::string::npos);
  CHECK_FALSE(p.repaired);
  CHECK(fs::exists(path));

  const auto repaired = check(s, true);
  CHECK(kinds(repaired) == std::vector<fsck_problem_kind>{fsck_problem_kind::corrupt_blob,
                                                          fsck_problem_kind::missing_blob,
                                                          fsck_problem_kind::dangling_link});
  const auto* corrupt = find(repaired, fsck_problem_kind::corrupt_blob);
  CHECK(corrupt->repaired);
  CHECK_FALSE(fs::exists(path));
  const fs::path quarantined = s.root() / "quarantine" / ("sha256-" + std::string(layer.hex()));
  CHECK(fs::exists(quarantined));
  CHECK(corrupt->repair == "moved to " + quarantined.string());
  CHECK(find(repaired, fsck_problem_kind::dangling_link)->repaired);
  CHECK_FALSE(find(repaired, fsck_problem_kind::missing_blob)->repaired);
  CHECK_FALSE(s.linked("library/a", layer));

  // What is left needs the image pushed again; pushing the layer again makes it clean.
  const auto after = check(s);
  CHECK(kinds(after) == std::vector<fsck_problem_kind>{fsck_problem_kind::missing_blob});
  s.layer("library/a", "a layer of some length");
  CHECK(check(s).clean());
}

TEST_CASE("fsck reports a link whose blob is gone, and repair removes the link", "[fsck]") {
  test_store s;
  const digest d = s.layer("library/a", "linked, then lost");
  fs::remove(s.blobs.blob_path(d));
  const auto found = check(s);
  REQUIRE(kinds(found) == std::vector<fsck_problem_kind>{fsck_problem_kind::dangling_link});
  CHECK(found.problems[0].repository == "library/a");
  CHECK(found.problems[0].path == s.repos.repository_path("library/a") / "_layers" / "sha256" / std::string(d.hex()));
  CHECK(s.linked("library/a", d) == false);  // stat_blob needs the blob too
  CHECK(fs::exists(found.problems[0].path));
  const auto repaired = check(s, true);
  CHECK(repaired.repaired == 1);
  CHECK_FALSE(fs::exists(found.problems[0].path));
  CHECK(check(s).clean());
}

TEST_CASE("fsck reports dangling and damaged tags, and repair removes them", "[fsck]") {
  test_store s;
  s.image("library/a", "config", {"layer"}, "v1");
  const fs::path tags = s.repos.repository_path("library/a") / "_manifests" / "tags";
  spill(tags / "gone", digest_of("a manifest never pushed").str());
  spill(tags / "junk", "not a digest");
  const auto found = check(s);
  CHECK(kinds(found) == std::vector<fsck_problem_kind>{fsck_problem_kind::damaged_tag, fsck_problem_kind::dangling_tag});
  CHECK(find(found, fsck_problem_kind::dangling_tag)->path == tags / "gone");
  const auto repaired = check(s, true);
  CHECK(repaired.repaired == 2);
  CHECK_FALSE(fs::exists(tags / "gone"));
  CHECK_FALSE(fs::exists(tags / "junk"));
  CHECK(fs::exists(tags / "v1"));
  CHECK(check(s).clean());
}

TEST_CASE("fsck reports a manifest whose content is gone, and repair removes the revision and its tags", "[fsck]") {
  test_store s;
  const digest m = s.image("library/a", "config", {"layer"}, "v1");
  fs::remove(s.blobs.blob_path(m));
  const auto found = check(s);
  REQUIRE(kinds(found) == std::vector<fsck_problem_kind>{fsck_problem_kind::missing_manifest_content});
  const auto repaired = check(s, true);
  CHECK(repaired.problems[0].repair == "revision removed, with its tags v1");
  CHECK_FALSE(s.repos.resolve_tag("library/a", "v1"));
  CHECK(check(s).clean());
}

TEST_CASE("fsck rewrites a damaged revision from the manifest's content", "[fsck]") {
  test_store s;
  const digest m = s.image("library/a", "config", {"layer"}, "v1");
  const fs::path rev = s.repos.repository_path("library/a") / "_manifests" / "revisions" / "sha256" / std::string(m.hex());
  spill(rev, "{torn");
  CHECK_FALSE(s.repos.has_manifest("library/a", m));
  const auto found = check(s);
  CHECK(kinds(found) == std::vector<fsck_problem_kind>{fsck_problem_kind::damaged_revision});
  const auto repaired = check(s, true);
  CHECK(repaired.problems[0].repaired);
  REQUIRE(s.repos.has_manifest("library/a", m));
  CHECK(s.repos.stat_manifest("library/a", m)->media_type == registryd::test::oci_manifest);
  CHECK(check(s).clean());
}

TEST_CASE("fsck re-links a referenced blob a repository lost the link to", "[fsck]") {
  test_store s;
  s.image("library/a", "config", {"layer"}, "v1");
  REQUIRE(s.repos.unlink_blob("library/a", digest_of("layer")));
  const auto found = check(s);
  CHECK(kinds(found) == std::vector<fsck_problem_kind>{fsck_problem_kind::unlinked_blob});
  CHECK(check(s, true).repaired == 1);
  CHECK(s.linked("library/a", digest_of("layer")));
  CHECK(check(s).clean());
}

TEST_CASE("fsck repairs referrer entries: a stale one goes, a missing one is written back", "[fsck]") {
  test_store s;
  const digest m = s.image("library/a", "config", {"layer"}, "v1");
  const digest sig = s.image("library/a", "sig config", {"signature"}, std::nullopt, m);
  const fs::path dir = s.repos.repository_path("library/a") / "_referrers" / "sha256" / std::string(m.hex());
  const fs::path entry = dir / ("sha256-" + std::string(sig.hex()));
  const std::string original = slurp(entry);
  REQUIRE_FALSE(original.empty());
  fs::remove(entry);
  const digest stranger = digest_of("a referrer never pushed");
  spill(dir / ("sha256-" + std::string(stranger.hex())), R"({"mediaType":"x","digest":")" + stranger.str() + "\"}");
  const auto found = check(s);
  CHECK(kinds(found) == std::vector<fsck_problem_kind>{fsck_problem_kind::missing_referrer,
                                                       fsck_problem_kind::stale_referrer});
  CHECK(check(s, true).repaired == 2);
  CHECK(nlohmann::json::parse(slurp(entry)) == nlohmann::json::parse(original));
  CHECK(s.repos.referrers("library/a", m).size() == 1);
  CHECK(check(s).clean());
}

TEST_CASE("fsck moves stray files in the blob tree to quarantine", "[fsck]") {
  test_store s;
  s.layer("library/a", "layer");
  const fs::path stray = s.root() / "blobs" / "sha256" / "ab" / "not-a-digest";
  fs::create_directories(stray.parent_path());
  spill(stray, "?");
  const auto found = check(s);
  CHECK(kinds(found) == std::vector<fsck_problem_kind>{fsck_problem_kind::stray_file});
  CHECK(check(s, true).repaired == 1);
  CHECK_FALSE(fs::exists(stray));
  CHECK(fs::exists(s.root() / "quarantine" / "stray-blobs_sha256_ab_not-a-digest"));
  CHECK(check(s).clean());
}

TEST_CASE("fsck without blob verification checks structure only", "[fsck]") {
  test_store s;
  s.layer("library/a", "a layer of some length");
  flip_byte(s.blobs.blob_path(digest_of("a layer of some length")), 1);
  fsck_options o;
  o.verify_blobs = false;
  const auto r = run_fsck(s.repos, o);
  CHECK(r.clean());
  CHECK(r.blobs == 1);
}
