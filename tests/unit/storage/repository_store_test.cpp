#include <registryd/oci/storage/repository_store.hpp>

#include "storage_test_support.hpp"

#include <catch2/catch.hpp>

#include <thread>
#include <vector>

namespace fs = std::filesystem;
using registryd::oci::digest;
using registryd::oci::digest_of;
using registryd::oci::storage::blob_store;
using registryd::oci::storage::errc;
using registryd::oci::storage::manifest_put;
using registryd::oci::storage::repository_store;
using registryd::test::scratch_dir;
using registryd::test::slurp;

namespace {

struct fixture {
  scratch_dir dir;
  blob_store blobs{dir.path()};
  repository_store repos{blobs, dir.path()};

  digest blob(const std::string& content) {
    const digest d = digest_of(content);
    REQUIRE(blobs.put(content, d));
    return d;
  }
  digest manifest(const std::string& repo, const std::string& bytes, std::optional<std::string> tag = std::nullopt,
                  std::optional<digest> subject = std::nullopt) {
    manifest_put put{.bytes = bytes,
                     .digest = digest_of(bytes),
                     .media_type = "application/vnd.oci.image.manifest.v1+json",
                     .subject = subject,
                     .referrer_descriptor = nullptr,
                     .tag = std::move(tag)};
    if (subject) {
      put.referrer_descriptor = {{"mediaType", put.media_type},
                                 {"digest", put.digest.str()},
                                 {"size", bytes.size()},
                                 {"artifactType", "application/vnd.example"}};
    }
    auto r = repos.put_manifest(repo, put);
    REQUIRE(r);
    return put.digest;
  }
};

}  // namespace

TEST_CASE("a repository serves only the blobs linked to it", "[storage][repository]") {
  fixture f;
  const digest d = f.blob("layer bytes");
  CHECK_FALSE(f.repos.stat_blob("library/a", d));
  CHECK(f.repos.open_blob("library/a", d).code() == errc::not_found);
  REQUIRE(f.repos.link_blob("library/a", d));
  CHECK(f.repos.stat_blob("library/a", d) == 11u);
  CHECK(f.repos.open_blob("library/a", d));
  CHECK_FALSE(f.repos.stat_blob("library/b", d));
  CHECK(f.repos.exists("library/a"));
  CHECK_FALSE(f.repos.exists("library/b"));

  REQUIRE(f.repos.unlink_blob("library/a", d));
  CHECK_FALSE(f.repos.stat_blob("library/a", d));
  CHECK(f.repos.unlink_blob("library/a", d).code() == errc::not_found);
  // The blob itself stays for others (GC's business).
  CHECK(f.blobs.exists(d));
  // A blob the store does not have cannot be linked.
  CHECK(f.repos.link_blob("library/a", digest_of("absent")).code() == errc::not_found);
}

TEST_CASE("a manifest put by tag is stored, resolved and opened with its media type", "[storage][repository]") {
  fixture f;
  const std::string bytes = R"({"schemaVersion":2})";
  const digest d = f.manifest("deckhouse/ce", bytes, "v1.0.0");
  CHECK(f.repos.resolve_tag("deckhouse/ce", "v1.0.0").value() == d);
  auto opened = f.repos.open_manifest("deckhouse/ce", d);
  REQUIRE(opened);
  CHECK(opened->file.read_all().value() == bytes);
  const auto& rec = opened->record;
  CHECK(rec.media_type == "application/vnd.oci.image.manifest.v1+json");
  CHECK(rec.size == bytes.size());
  CHECK(f.repos.stat_manifest("deckhouse/ce", d));
  CHECK(f.repos.stat_manifest("deckhouse/other", d).code() == errc::not_found);
  CHECK(f.repos.resolve_tag("deckhouse/ce", "v2").code() == errc::not_found);
  CHECK(slurp(f.dir.path() / "repositories/deckhouse/ce/_manifests/tags/v1.0.0") == d.str());
}

TEST_CASE("a manifest whose bytes do not match the digest is refused and nothing is recorded", "[storage][repository]") {
  fixture f;
  manifest_put put{.bytes = "{}",
                   .digest = digest_of("{ }"),
                   .media_type = "application/vnd.oci.image.manifest.v1+json",
                   .subject = std::nullopt,
                   .referrer_descriptor = nullptr,
                   .tag = "latest"};
  auto r = f.repos.put_manifest("a", put);
  REQUIRE_FALSE(r);
  CHECK(r.code() == errc::digest_mismatch);
  CHECK_FALSE(f.repos.exists("a"));
  CHECK(f.repos.resolve_tag("a", "latest").code() == errc::not_found);
}

TEST_CASE("tags are listed sorted, moved atomically and deleted", "[storage][repository]") {
  fixture f;
  const digest m1 = f.manifest("r", "{\"a\":1}", "b");
  const digest m2 = f.manifest("r", "{\"a\":2}", "a");
  REQUIRE(f.repos.set_tag("r", "c", m1));
  CHECK(f.repos.tags("r").value() == std::vector<std::string>{"a", "b", "c"});
  REQUIRE(f.repos.set_tag("r", "b", m2));
  CHECK(f.repos.resolve_tag("r", "b").value() == m2);
  REQUIRE(f.repos.delete_tag("r", "b"));
  CHECK(f.repos.delete_tag("r", "b").code() == errc::not_found);
  CHECK(f.repos.tags("r").value() == std::vector<std::string>{"a", "c"});
  // A tag may only name a manifest the repository holds.
  CHECK(f.repos.set_tag("r", "x", digest_of("nope")).code() == errc::not_found);
  CHECK(f.repos.tags("unknown").code() == errc::not_found);
  // No temporaries are left behind by the atomic writes.
  for (const auto& e : fs::recursive_directory_iterator(f.dir.path() / "repositories")) {
    CHECK(e.path().filename().string().front() != '.');
  }
}

TEST_CASE("concurrent tag updates leave the tag naming one of the manifests, never a torn file", "[storage][repository][concurrency]") {
  fixture f;
  std::vector<digest> ms;
  for (int i = 0; i < 4; ++i) ms.push_back(f.manifest("r", "{\"n\":" + std::to_string(i) + "}"));
  std::vector<std::thread> threads;
  std::atomic<int> bad{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 50; ++i) {
        if (!f.repos.set_tag("r", "latest", ms[static_cast<std::size_t>((t + i) % 4)])) ++bad;
        auto d = f.repos.resolve_tag("r", "latest");
        if (!d || std::find(ms.begin(), ms.end(), *d) == ms.end()) ++bad;
      }
    });
  }
  for (auto& th : threads) th.join();
  CHECK(bad == 0);
}

TEST_CASE("deleting a manifest removes its tags and its referrer entry", "[storage][repository]") {
  fixture f;
  const digest subject = f.manifest("r", "{\"image\":1}", "v1");
  const digest sig = f.manifest("r", "{\"sig\":1}", "sig", subject);
  REQUIRE(f.repos.set_tag("r", "also-v1", subject));
  CHECK(f.repos.referrers("r", subject).size() == 1);

  auto removed = f.repos.delete_manifest("r", subject);
  REQUIRE(removed);
  CHECK(*removed == std::vector<std::string>{"also-v1", "v1"});
  CHECK_FALSE(f.repos.has_manifest("r", subject));
  CHECK(f.repos.tags("r").value() == std::vector<std::string>{"sig"});
  // The referrer stays listed for its (now absent) subject: the spec lets referrers outlive it.
  CHECK(f.repos.referrers("r", subject).size() == 1);

  REQUIRE(f.repos.delete_manifest("r", sig));
  CHECK(f.repos.referrers("r", subject).empty());
  CHECK(f.repos.delete_manifest("r", sig).code() == errc::not_found);
}

TEST_CASE("referrers are listed per subject and per repository, with their descriptors", "[storage][repository]") {
  fixture f;
  const digest subject = digest_of("a subject pushed later");
  const digest r1 = f.manifest("r", "{\"r\":1}", std::nullopt, subject);
  const digest r2 = f.manifest("r", "{\"r\":2}", std::nullopt, subject);
  f.manifest("other", "{\"r\":3}", std::nullopt, subject);
  const auto list = f.repos.referrers("r", subject);
  REQUIRE(list.size() == 2);
  std::vector<std::string> digests{list[0]["digest"], list[1]["digest"]};
  std::sort(digests.begin(), digests.end());
  std::vector<std::string> want{r1.str(), r2.str()};
  std::sort(want.begin(), want.end());
  CHECK(digests == want);
  CHECK(list[0]["artifactType"] == "application/vnd.example");
  CHECK(f.repos.referrers("r", digest_of("another subject")).empty());

  // An entry whose revision vanished (a crash between the two writes) is not listed.
  REQUIRE(fs::remove(f.dir.path() / "repositories/r/_manifests/revisions/sha256" / std::string(r1.hex())));
  const auto after = f.repos.referrers("r", subject);
  REQUIRE(after.size() == 1);
  CHECK(after[0]["digest"] == r2.str());
}

TEST_CASE("repositories with slashes are enumerated sorted, and names that escape the root are refused", "[storage][repository]") {
  fixture f;
  const digest d = f.blob("x");
  for (const char* name : {"c/d/e", "a", "a/b", "deckhouse/ce/install"}) REQUIRE(f.repos.link_blob(name, d));
  CHECK(f.repos.repositories() == std::vector<std::string>{"a", "a/b", "c/d/e", "deckhouse/ce/install"});
  CHECK(f.repos.link_blob("../escape", d).code() == errc::invalid);
  CHECK(f.repos.link_blob("a/../../b", d).code() == errc::invalid);
  CHECK(f.repos.link_blob("A", d).code() == errc::invalid);
  CHECK(f.repos.resolve_tag("a", "../../x").code() == errc::invalid);
  CHECK(f.repos.resolve_tag("a", ".hidden").code() == errc::invalid);
  CHECK_FALSE(fs::exists(f.dir.path() / "escape"));
}

TEST_CASE("enumeration reports every tag, manifest revision, blob link and referrer of a repository", "[storage][repository]") {
  fixture f;
  const digest layer = f.blob("layer");
  REQUIRE(f.repos.link_blob("r", layer));
  const digest m = f.manifest("r", "{\"m\":1}", "latest");
  const digest ref = f.manifest("r", "{\"sbom\":1}", std::nullopt, m);
  int tags = 0, manifests = 0, links = 0, referrers = 0;
  f.repos.for_each_tag("r", [&](const auto& t) {
    ++tags;
    CHECK(t.tag == "latest");
    CHECK(t.digest == m);
  });
  f.repos.for_each_manifest("r", [&](const auto& rec) {
    ++manifests;
    CHECK((rec.digest == m || rec.digest == ref));
    if (rec.digest == ref) CHECK(rec.subject == m);
  });
  f.repos.for_each_blob_link("r", [&](const auto& l) {
    ++links;
    CHECK(l.digest == layer);
  });
  f.repos.for_each_referrer("r", [&](const digest& s, const nlohmann::json& desc) {
    ++referrers;
    CHECK(s == m);
    CHECK(desc["digest"] == ref.str());
  });
  CHECK(tags == 1);
  CHECK(manifests == 2);
  CHECK(links == 1);
  CHECK(referrers == 1);
}
