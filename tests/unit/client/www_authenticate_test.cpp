#include <registryd/oci/client/www_authenticate.hpp>

#include <catch2/catch.hpp>

using namespace registryd::oci::client;

TEST_CASE("a bearer challenge yields its realm, service and scope", "[client][www_authenticate]") {
  const auto c = parse_www_authenticate(
      R"(Bearer realm="https://auth.example.com/token",service="registry.example.com",scope="repository:a/b:pull,push")");
  REQUIRE(c.size() == 1);
  CHECK(c[0].scheme == "bearer");
  CHECK(c[0].param("realm") == "https://auth.example.com/token");
  CHECK(c[0].param("service") == "registry.example.com");
  CHECK(c[0].param("scope") == "repository:a/b:pull,push");
  CHECK_FALSE(c[0].param("error"));
}

TEST_CASE("commas, equals signs and escaped quotes inside quoted strings are kept", "[client][www_authenticate]") {
  const auto c = parse_www_authenticate(
      R"(Bearer realm="https://a.example/t?x=1,y=2", scope="repository:x:pull,push repository:y:pull", error="say \"no\"")");
  REQUIRE(c.size() == 1);
  CHECK(c[0].param("realm") == "https://a.example/t?x=1,y=2");
  CHECK(c[0].param("scope") == "repository:x:pull,push repository:y:pull");
  CHECK(c[0].param("error") == R"(say "no")");
}

TEST_CASE("scheme and parameter names are case-insensitive, spaces around '=' are allowed", "[client][www_authenticate]") {
  const auto c = parse_www_authenticate(R"(BEARER Realm = "r" , SERVICE=svc)");
  REQUIRE(c.size() == 1);
  CHECK(c[0].scheme == "bearer");
  CHECK(c[0].param("realm") == "r");
  CHECK(c[0].param("service") == "svc");
}

TEST_CASE("several challenges in one header are told apart", "[client][www_authenticate]") {
  const auto c = parse_www_authenticate(R"(Basic realm="registry", Bearer realm="https://t/x",service="s")");
  REQUIRE(c.size() == 2);
  CHECK(c[0].scheme == "basic");
  CHECK(c[0].param("realm") == "registry");
  CHECK(c[1].scheme == "bearer");
  CHECK(c[1].param("realm") == "https://t/x");
  CHECK(c[1].param("service") == "s");
  CHECK(find_challenge(c, "Bearer") == &c[1]);
  CHECK(find_challenge(c, "digest") == nullptr);
}

TEST_CASE("challenges from several header values are joined in order", "[client][www_authenticate]") {
  const auto c = parse_www_authenticate(std::vector<std::string_view>{R"(Basic realm="a")", R"(Bearer realm="b")"});
  REQUIRE(c.size() == 2);
  CHECK(c[0].scheme == "basic");
  CHECK(c[1].param("realm") == "b");
}

TEST_CASE("a scheme without parameters and a token68 are read", "[client][www_authenticate]") {
  auto c = parse_www_authenticate("Bearer");
  REQUIRE(c.size() == 1);
  CHECK(c[0].scheme == "bearer");
  CHECK(c[0].params.empty());
  c = parse_www_authenticate("Negotiate abc+/def==, Basic realm=x");
  REQUIRE(c.size() == 2);
  CHECK(c[0].token68 == "abc+/def==");
  CHECK(c[1].param("realm") == "x");
}

TEST_CASE("malformed challenges do not stop the parse or crash it", "[client][www_authenticate]") {
  CHECK(parse_www_authenticate("").empty());
  CHECK(parse_www_authenticate("   ,, ,").empty());
  // An unterminated quoted string runs to the end.
  auto c = parse_www_authenticate(R"(Bearer realm="https://unterminated)");
  REQUIRE(c.size() == 1);
  CHECK(c[0].param("realm") == "https://unterminated");
  // Garbage between parameters is skipped.
  c = parse_www_authenticate(R"(Bearer realm="r", @@@, service="s")");
  REQUIRE(c.size() == 1);
  CHECK(c[0].param("realm") == "r");
  CHECK(c[0].param("service") == "s");
  // A stray parameter without a scheme is not a challenge.
  c = parse_www_authenticate(R"(realm="r")");
  CHECK(c.empty());
  // A trailing backslash inside quotes does not read past the end.
  c = parse_www_authenticate("Bearer realm=\"abc\\");
  REQUIRE(c.size() == 1);
  CHECK(c[0].param("realm") == "abc\\");
}

TEST_CASE("a repeated parameter keeps its first value", "[client][www_authenticate]") {
  const auto c = parse_www_authenticate(R"(Bearer realm="first", realm="second")");
  REQUIRE(c.size() == 1);
  CHECK(c[0].param("realm") == "first");
}
