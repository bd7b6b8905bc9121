#include <registryd/auth/verification_cache.hpp>

#include <catch2/catch.hpp>

using registryd::auth::verification_cache;
using namespace std::chrono_literals;

TEST_CASE("a cached verification expires after the TTL", "[auth]") {
  verification_cache cache(8, 300s);
  const auto t0 = std::chrono::steady_clock::time_point{} + 1000h;
  const auto k = cache.make_key("reader", "pw", "$2y$hash");
  CHECK_FALSE(cache.contains(k, t0));
  cache.insert(k, t0);
  CHECK(cache.contains(k, t0 + 299s));
  CHECK_FALSE(cache.contains(k, t0 + 300s));
  CHECK(cache.size() == 0);
}

TEST_CASE("the cache key depends on user, password and stored hash without ambiguity",
          "[auth]") {
  verification_cache cache(8, 300s);
  const auto k = cache.make_key("ab", "c", "h");
  CHECK(k == cache.make_key("ab", "c", "h"));
  CHECK(k != cache.make_key("a", "bc", "h"));
  CHECK(k != cache.make_key("ab", "c", "h2"));
  CHECK(k != cache.make_key("ab", "d", "h"));
  // Keys are per process secret: another cache does not share them.
  verification_cache other(8, 300s);
  CHECK(k != other.make_key("ab", "c", "h"));
}

TEST_CASE("the cache is bounded and drops the least recently used entry first", "[auth]") {
  verification_cache cache(2, 300s);
  const auto t = std::chrono::steady_clock::time_point{} + 1000h;
  const auto a = cache.make_key("a", "p", "h");
  const auto b = cache.make_key("b", "p", "h");
  const auto c = cache.make_key("c", "p", "h");
  cache.insert(a, t);
  cache.insert(b, t);
  CHECK(cache.contains(a, t));  // a is now the most recently used
  cache.insert(c, t);
  CHECK(cache.size() == 2);
  CHECK(cache.contains(a, t));
  CHECK_FALSE(cache.contains(b, t));
  CHECK(cache.contains(c, t));
}

TEST_CASE("a cache of capacity zero remembers nothing", "[auth]") {
  verification_cache cache(0, 300s);
  const auto t = std::chrono::steady_clock::now();
  const auto k = cache.make_key("a", "p", "h");
  cache.insert(k, t);
  CHECK_FALSE(cache.contains(k, t));
}
