#include <registryd/oci/client/token_cache.hpp>

#include <catch2/catch.hpp>

using namespace registryd::oci::client;
using namespace std::chrono_literals;

namespace {
struct fake_clock {
  token_cache::clock::time_point now{};
  std::function<token_cache::clock::time_point()> fn() {
    return [this] { return now; };
  }
};
}  // namespace

TEST_CASE("a token is served until shortly before it expires", "[client][token_cache]") {
  fake_clock t;
  token_cache cache(t.fn());
  cache.put("k", "tok", 300s);  // margin: 30 s
  CHECK(cache.get("k") == "tok");
  t.now += 269s;
  CHECK(cache.get("k") == "tok");
  t.now += 1s;
  CHECK_FALSE(cache.get("k"));
}

TEST_CASE("the default 60 s token is refreshed 6 s early", "[client][token_cache]") {
  fake_clock t;
  token_cache cache(t.fn());
  cache.put("k", "tok", default_token_lifetime);
  t.now += 53s;
  CHECK(cache.get("k") == "tok");
  t.now += 1s;
  CHECK_FALSE(cache.get("k"));
}

TEST_CASE("the refresh margin is a tenth of the lifetime, at most 30 s", "[client][token_cache]") {
  CHECK(token_cache::refresh_margin(60s) == 6000ms);
  CHECK(token_cache::refresh_margin(900s) == 30000ms);
  CHECK(token_cache::refresh_margin(1s) == 100ms);
}

TEST_CASE("tokens are kept per key and can be dropped", "[client][token_cache]") {
  fake_clock t;
  token_cache cache(t.fn());
  const auto a = token_cache::key("https://auth/token", "svc", "repository:a:pull");
  const auto b = token_cache::key("https://auth/token", "svc", "repository:b:pull");
  CHECK(a != b);
  cache.put(a, "ta", 100s);
  cache.put(b, "tb", 100s);
  CHECK(cache.get(a) == "ta");
  CHECK(cache.get(b) == "tb");
  cache.erase(a);
  CHECK_FALSE(cache.get(a));
  CHECK(cache.get(b) == "tb");
  cache.put(b, "tb2", 100s);
  CHECK(cache.get(b) == "tb2");
}

TEST_CASE("the cache holds at most its bound, dropping the soonest to expire", "[client][token_cache]") {
  fake_clock t;
  token_cache cache(t.fn(), 2);
  cache.put("short", "1", 100s);
  cache.put("long", "2", 1000s);
  cache.put("new", "3", 500s);
  CHECK(cache.size() == 2);
  CHECK_FALSE(cache.get("short"));
  CHECK(cache.get("long") == "2");
  CHECK(cache.get("new") == "3");
}

TEST_CASE("the realm's answer gives token or access_token, and expires_in defaults to 60 s", "[client][token_cache]") {
  auto a = parse_token_answer(R"({"token":"abc","expires_in":900,"issued_at":"2020-01-01T00:00:00Z"})");
  REQUIRE(a);
  CHECK(a->token == "abc");
  CHECK(a->expires_in == 900s);
  a = parse_token_answer(R"({"access_token":"xyz"})");
  REQUIRE(a);
  CHECK(a->token == "xyz");
  CHECK(a->expires_in == 60s);
  a = parse_token_answer(R"({"token":"","access_token":"xyz","expires_in":0})");
  REQUIRE(a);
  CHECK(a->token == "xyz");
  CHECK(a->expires_in == 60s);
  CHECK_FALSE(parse_token_answer("not json"));
  CHECK_FALSE(parse_token_answer(R"({"expires_in":60})"));
  CHECK_FALSE(parse_token_answer(R"(["token"])"));
  CHECK_FALSE(parse_token_answer(R"({"token":42})"));
}
