// The packages cache (plugins/packages-proxy/src/package_cache.hpp): the cap and its
// threshold, entries being read are never evicted, a changed file is re-hashed and dropped
// when corrupted, background re-verification, and a restart that keeps everything.
#include "package_cache.hpp"
#include "settings.hpp"

#include <registryd/oci/digest.hpp>

#include <test_support.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

using namespace registryd;
using namespace registryd::packages;
using namespace std::chrono_literals;
using registryd::test::scratch_dir;

namespace {

const time_point t0 = time_point(std::chrono::seconds(1'700'000'000));

std::string content(char c, std::size_t n) { return std::string(n, c); }

// Writes one byte into a cached file in place, as a disk fault or a stray tool would.
void overwrite(const std::filesystem::path& path, off_t offset, char byte) {
  const int fd = ::open(path.c_str(), O_WRONLY);
  REQUIRE(fd >= 0);
  REQUIRE(::pwrite(fd, &byte, 1, offset) == 1);
  ::close(fd);
}

struct fixture {
  scratch_dir dir;
  cache_counters counters;
  std::vector<std::string> warnings;
  std::unique_ptr<package_cache> cache;

  explicit fixture(std::uint64_t max = 1000, std::uint64_t evict_at = 800) { open(max, evict_at); }
  void open(std::uint64_t max = 1000, std::uint64_t evict_at = 800) {
    cache = std::make_unique<package_cache>(dir.path(), max, evict_at, counters,
                                            [this](std::string_view m) { warnings.emplace_back(m); });
    cache->load(t0);
  }
  oci::digest put(const std::string& bytes, time_point when) {
    const auto d = oci::digest_of(bytes);
    REQUIRE_FALSE(cache->put(bytes, d, when).has_value());
    return d;
  }
};

}  // namespace

TEST_CASE("usage past the threshold evicts the least recently used down to it", "[packages][cache]") {
  fixture f;
  const auto a = f.put(content('a', 300), t0);
  const auto b = f.put(content('b', 300), t0 + 1s);
  CHECK(f.cache->bytes() == 600);
  // a is read again: b becomes the least recently used.
  REQUIRE(f.cache->open(a, t0 + 2s).has_value());
  const auto c = f.put(content('c', 300), t0 + 3s);
  CHECK(f.cache->bytes() == 600);
  CHECK(f.cache->open(b, t0 + 4s) == std::nullopt);
  CHECK(f.cache->open(a, t0 + 4s).has_value());
  CHECK(f.cache->open(c, t0 + 4s).has_value());
  CHECK(f.counters.evictions == 1);
  CHECK(f.counters.evicted_bytes == 300);
}

TEST_CASE("an entry being read is never evicted", "[packages][cache]") {
  fixture f;
  const auto a = f.put(content('a', 300), t0);
  const auto b = f.put(content('b', 300), t0 + 1s);
  // A reader holds a (the least recently used): its descriptor pins it.
  auto reading = f.cache->open(a, t0 + 1s);
  REQUIRE(reading.has_value());
  const auto c = f.put(content('c', 300), t0 + 3s);
  // b went instead, though a is older by access: a stays while it is read.
  CHECK(f.cache->store().exists(a));
  CHECK_FALSE(f.cache->store().exists(b));
  CHECK(f.cache->store().exists(c));
  // Once the reader is done, a is evicted by the next pass over the threshold.
  reading.reset();
  f.put(content('d', 300), t0 + 4s);
  CHECK_FALSE(f.cache->store().exists(a));
}

TEST_CASE("a file published while a reader hashes it is counted once", "[packages][cache]") {
  // What 16 concurrent cold requests do: the fill renames the file into the store, a request
  // finds it there before the fill has told the cache and hashes it (the index does not know
  // it), and the fill's publication lands during that hash. Counted twice, the phantom bytes
  // stayed in the usage forever and held the cache over its threshold.
  fixture f(1ull << 30, 1ull << 29);
  const std::string big = content('z', 32u << 20);  // long enough to hash that the two overlap
  const auto d = oci::digest_of(big);
  REQUIRE(f.cache->store().put(big, d).ok());
  std::thread reader([&] { CHECK(f.cache->open(d, t0 + 1s).has_value()); });
  std::this_thread::sleep_for(5ms);
  f.cache->published(d, t0 + 1s);
  reader.join();
  CHECK(f.cache->entries() == 1);
  CHECK(f.cache->bytes() == big.size());
}

TEST_CASE("a file changed on disk is re-hashed before it is served and dropped when corrupted", "[packages][cache]") {
  fixture f;
  const auto a = f.put(content('a', 300), t0);
  overwrite(f.cache->store().blob_path(a), 10, 'X');
  CHECK(f.cache->open(a, t0 + 1s) == std::nullopt);
  CHECK_FALSE(f.cache->store().exists(a));
  CHECK(f.counters.corrupted == 1);
  CHECK(f.cache->bytes() == 0);
  REQUIRE(f.warnings.size() == 1);
  CHECK(f.warnings[0].find(a.str()) != std::string::npos);
}

TEST_CASE("a file whose stamp changed but whose content did not is kept", "[packages][cache]") {
  fixture f;
  const auto a = f.put(content('a', 300), t0);
  // Rewriting the same bytes changes the ctime: the entry is re-hashed, found intact, served.
  overwrite(f.cache->store().blob_path(a), 10, 'a');
  CHECK(f.cache->open(a, t0 + 1s).has_value());
  CHECK(f.counters.verified == 1);
  CHECK(f.counters.corrupted == 0);
}

TEST_CASE("background re-verification finds what the stamp cannot see", "[packages][cache]") {
  fixture f;
  const auto a = f.put(content('a', 300), t0);
  const auto b = f.put(content('b', 300), t0);
  // Flip a byte nobody reads: only the background re-verification, once due, can find it.
  overwrite(f.cache->store().blob_path(a), 0, 'Z');
  // Not due yet: nothing is checked.
  CHECK(f.cache->verify_some(3600s, UINT64_MAX, t0 + 10s) == 0);
  CHECK(f.cache->verify_some(3600s, UINT64_MAX, t0 + 3601s) == 2);
  CHECK_FALSE(f.cache->store().exists(a));
  CHECK(f.cache->store().exists(b));
  CHECK(f.counters.corrupted == 1);
  // The budget bounds one round.
  f.put(content('c', 100), t0 + 3601s);
  CHECK(f.cache->verify_some(1s, 1, t0 + 7300s) == 1);
}

TEST_CASE("a restart keeps the entries, their recency and their verification", "[packages][cache]") {
  fixture f;
  const auto a = f.put(content('a', 300), t0);
  const auto b = f.put(content('b', 300), t0 + 5s);
  REQUIRE(f.cache->open(a, t0 + 10s).has_value());  // a is now the most recent
  REQUIRE(f.cache->save());
  f.cache.reset();
  f.open();
  CHECK(f.cache->entries() == 2);
  CHECK(f.cache->bytes() == 600);
  // Served without a re-hash: the saved stamps match.
  CHECK(f.cache->open(b, t0 + 11s).has_value());
  CHECK(f.counters.verified == 0);
  // Recency survived: after b's read, a is the least recently used one and goes first.
  f.put(content('c', 300), t0 + 12s);
  CHECK_FALSE(f.cache->store().exists(a));
  CHECK(f.cache->store().exists(b));
}

TEST_CASE("a smaller cap at start evicts down to the threshold at once", "[packages][cache]") {
  fixture f;
  f.put(content('a', 300), t0);
  f.put(content('b', 300), t0 + 1s);
  REQUIRE(f.cache->save());
  f.cache.reset();
  f.open(500, 400);
  CHECK(f.cache->bytes() == 300);
  CHECK(f.cache->entries() == 1);
}

TEST_CASE("the eviction threshold is the given percentage of the cap", "[packages][settings]") {
  settings s;
  s.max_cache_bytes = 1ULL << 30;
  s.evict_percent = 80;
  CHECK(s.evict_at() == (1ULL << 30) / 100 * 80 + (1ULL << 30) % 100 * 80 / 100);
  s.max_cache_bytes = 1000;
  CHECK(s.evict_at() == 800);
  s.evict_percent = 100;
  CHECK(s.evict_at() == 1000);
}
