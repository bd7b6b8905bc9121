// The eviction policy (registryd/oci/cache/eviction.hpp) and the Proxy mode's eviction pass,
// with an injected clock.
#include <registryd/oci/cache/eviction.hpp>

#include "evictor.hpp"

#include <registryd/oci/cache/blob_fill.hpp>
#include <registryd/oci/storage/blob_store.hpp>
#include <registryd/oci/storage/repository_store.hpp>

#include <test_support.hpp>

#include <chrono>

using namespace registryd;
using namespace registryd::oci;
using namespace std::chrono_literals;
using registryd::test::scratch_dir;

namespace {

const cache::time_point t0 = cache::time_point(std::chrono::seconds(1'700'000'000));

cache::cache_entry entry(const std::string& content, std::uint64_t size, std::chrono::seconds age) {
  return {digest_of(content), size, t0 - age};
}

std::vector<std::uint64_t> sizes_of(const std::vector<cache::cache_entry>& v) {
  std::vector<std::uint64_t> out;
  for (const auto& e : v) out.push_back(e.size);
  return out;
}

}  // namespace

TEST_CASE("the ttl evicts exactly what has not been pulled for that long", "[cache][eviction]") {
  cache::eviction_policy p;
  p.ttl = 3600s;
  const auto plan = cache::plan_eviction(
      {entry("a", 1, 10s), entry("b", 2, 3599s), entry("c", 4, 3600s), entry("d", 8, 3601s), entry("e", 16, 90000s)},
      p, t0);
  // Pulled exactly ttl ago stays; older goes, oldest first.
  CHECK(sizes_of(plan.expired) == std::vector<std::uint64_t>{16, 8});
  CHECK(plan.over_size.empty());
  CHECK(plan.bytes_before == 31);
  CHECK(plan.bytes_after == 7);
}

TEST_CASE("a size cap evicts the least recently pulled until the cache fits", "[cache][eviction]") {
  cache::eviction_policy p;
  p.max_bytes = 100;
  SECTION("under the cap nothing goes") {
    const auto plan = cache::plan_eviction({entry("a", 50, 10s), entry("b", 50, 20s)}, p, t0);
    CHECK(plan.over_size.empty());
    CHECK(plan.bytes_after == 100);
  }
  SECTION("over it, oldest first, and no more than needed") {
    const auto plan = cache::plan_eviction(
        {entry("new", 40, 1s), entry("old", 30, 500s), entry("mid", 30, 100s), entry("older", 20, 900s)}, p, t0);
    CHECK(sizes_of(plan.over_size) == std::vector<std::uint64_t>{20});
    CHECK(plan.bytes_after == 100);
  }
  SECTION("a target below the cap leaves room") {
    p.target_bytes = 50;
    const auto plan = cache::plan_eviction(
        {entry("new", 40, 1s), entry("old", 30, 500s), entry("mid", 30, 100s), entry("older", 20, 900s)}, p, t0);
    CHECK(sizes_of(plan.over_size) == std::vector<std::uint64_t>{20, 30, 30});
    CHECK(plan.bytes_after == 40);
  }
  SECTION("ties are broken by digest, so the plan is the same every time") {
    std::vector<cache::cache_entry> v{entry("x", 60, 5s), entry("y", 60, 5s), entry("z", 60, 5s)};
    const auto first = cache::plan_eviction(v, p, t0);
    std::reverse(v.begin(), v.end());
    const auto second = cache::plan_eviction(v, p, t0);
    REQUIRE(first.over_size.size() == 2);
    REQUIRE(second.over_size.size() == 2);
    CHECK(first.over_size[0].blob == second.over_size[0].blob);
    CHECK(first.over_size[1].blob == second.over_size[1].blob);
    CHECK(first.over_size[0].blob < first.over_size[1].blob);
  }
}

TEST_CASE("the ttl goes first and the cap only evicts what is still over", "[cache][eviction]") {
  cache::eviction_policy p;
  p.ttl = 100s;
  p.max_bytes = 50;
  const auto plan = cache::plan_eviction(
      {entry("expired", 30, 200s), entry("a", 30, 50s), entry("b", 30, 10s), entry("c", 10, 1s)}, p, t0);
  CHECK(sizes_of(plan.expired) == std::vector<std::uint64_t>{30});
  CHECK(sizes_of(plan.over_size) == std::vector<std::uint64_t>{30});
  CHECK(plan.bytes_after == 40);
}

TEST_CASE("access times survive a save and a load, later pulls winning", "[cache][eviction]") {
  scratch_dir dir;
  const auto file = dir / "access-times";
  const auto a = digest_of("a"), b = digest_of("b");
  {
    cache::access_times t(file);
    t.touch(a, t0);
    t.touch(a, t0 - 10s);  // an older pull does not move it back
    t.touch(b, t0 + 5s);
    REQUIRE(t.save());
  }
  // A stray line and a bad number are skipped.
  {
    std::string text = registryd::test::slurp(file);
    text += "garbage\nsha256:zz 12\n" + digest_of("c").str() + " -5\n";
    registryd::test::spill(file, text);
  }
  cache::access_times t(file);
  t.touch(b, t0 + 60s);
  t.load();
  CHECK(t.last(a) == t0);
  CHECK(t.last(b) == t0 + 60s);  // memory was later than the file
  CHECK_FALSE(t.last(digest_of("c")));
  CHECK(t.size() == 2);
  t.forget(a);
  CHECK_FALSE(t.last(a));
  // A missing file is no error.
  cache::access_times none(dir / "absent");
  none.load();
  CHECK(none.size() == 0);
}

TEST_CASE("an eviction pass removes expired blobs and the manifests and tags left without bytes",
          "[cache][eviction][proxy]") {
  scratch_dir dir;
  storage::blob_store blobs(dir.path());
  storage::repository_store repos(blobs, dir.path());
  cache::access_times access(dir / "access-times");
  cache::blob_fills fills(blobs);
  proxy::counters counters;
  cache::time_point now = cache::time_point(std::chrono::system_clock::now().time_since_epoch());
  auto clock = [&] { return now; };

  const std::string layer = "layer bytes", fresh_layer = "fresh layer bytes";
  const std::string manifest = R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",)"
                               R"("config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":")" +
                               digest_of(layer).str() + R"(","size":11},"layers":[]})";
  REQUIRE(blobs.put(layer, digest_of(layer)));
  REQUIRE(blobs.put(fresh_layer, digest_of(fresh_layer)));
  storage::manifest_put put{.bytes = manifest,
                            .digest = digest_of(manifest),
                            .media_type = "application/vnd.oci.image.manifest.v1+json",
                            .subject = std::nullopt,
                            .referrer_descriptor = nullptr,
                            .tag = std::string("v1")};
  REQUIRE(repos.put_manifest("system/deckhouse", put));

  cache::eviction_policy policy;
  policy.ttl = 3600s;
  proxy::evictor ev(blobs, repos, access, fills, policy, counters, sdk::host(nullptr), clock);

  // Everything was just published: nothing goes.
  auto r = ev.run_pass();
  CHECK(r.expired == 0);
  CHECK(r.blobs_after == 3);

  // Two hours on, only the fresh layer was pulled in the last hour.
  now += 2h;
  access.touch(digest_of(fresh_layer), now - 30min);
  r = ev.run_pass();
  CHECK(r.expired == 2);  // the old layer and the manifest
  CHECK(r.manifests_dropped == 1);
  CHECK(r.blobs_after == 1);
  CHECK(blobs.exists(digest_of(fresh_layer)));
  CHECK_FALSE(blobs.exists(digest_of(layer)));
  CHECK_FALSE(repos.resolve_tag("system/deckhouse", "v1"));
  CHECK(counters.evictions_ttl.load() == 2);
  CHECK(counters.evicted_bytes.load() == layer.size() + manifest.size());
  CHECK(counters.cache_bytes.load() == fresh_layer.size());
  CHECK(counters.cache_blobs.load() == 1);
  // The pass saved the access times for the next process.
  cache::access_times reloaded(dir / "access-times");
  reloaded.load();
  CHECK(reloaded.last(digest_of(fresh_layer)));
  CHECK_FALSE(reloaded.last(digest_of(layer)));
}

TEST_CASE("an eviction pass with a size cap drops the least recently pulled blobs", "[cache][eviction][proxy]") {
  scratch_dir dir;
  storage::blob_store blobs(dir.path());
  storage::repository_store repos(blobs, dir.path());
  cache::access_times access(dir / "access-times");
  cache::blob_fills fills(blobs);
  proxy::counters counters;
  const cache::time_point now = cache::time_point(std::chrono::system_clock::now().time_since_epoch());
  std::vector<std::string> contents;
  for (int i = 0; i < 5; ++i) {
    contents.push_back(std::string(1000, static_cast<char>('a' + i)));
    REQUIRE(blobs.put(contents.back(), digest_of(contents.back())));
    // Pulled in the order 0..4: blob 0 least recently.
    access.touch(digest_of(contents.back()), now + std::chrono::seconds(i));
  }
  cache::eviction_policy policy;
  policy.ttl = 3600s;
  policy.max_bytes = 3000;
  proxy::evictor ev(blobs, repos, access, fills, policy, counters, sdk::host(nullptr), [&] { return now + 10s; });
  const auto r = ev.run_pass();
  CHECK(r.expired == 0);
  CHECK(r.over_size == 2);
  CHECK(r.bytes_after == 3000);
  CHECK_FALSE(blobs.exists(digest_of(contents[0])));
  CHECK_FALSE(blobs.exists(digest_of(contents[1])));
  for (int i = 2; i < 5; ++i) CHECK(blobs.exists(digest_of(contents[static_cast<std::size_t>(i)])));
  CHECK(counters.evictions_size.load() == 2);
}
