#include <registryd/auth/basic_credentials.hpp>

#include <catch2/catch.hpp>

namespace auth = registryd::auth;

TEST_CASE("a basic authorization header yields user and password", "[auth]") {
  // base64("reader:s3cret")
  auto c = auth::parse_basic_authorization("Basic cmVhZGVyOnMzY3JldA==");
  REQUIRE(c);
  CHECK(c->username == "reader");
  CHECK(c->password == "s3cret");
}

TEST_CASE("the scheme is case-insensitive and surrounding spaces are ignored", "[auth]") {
  for (const char* h : {"basic cmVhZGVyOnMzY3JldA==", "BASIC   cmVhZGVyOnMzY3JldA==",
                        "  Basic\tcmVhZGVyOnMzY3JldA==  "}) {
    INFO(h);
    auto c = auth::parse_basic_authorization(h);
    REQUIRE(c);
    CHECK(c->username == "reader");
  }
}

TEST_CASE("base64 with and without padding decodes to the same credentials", "[auth]") {
  // "a:b" -> YTpi (no padding), "ab:c" -> YWI6Yw== , "abc:de" -> YWJjOmRl, "u:pw" -> dTpwdw==
  struct sample {
    const char* header;
    const char* user;
    const char* password;
  };
  for (auto s : {sample{"Basic YTpi", "a", "b"}, sample{"Basic YWI6Yw==", "ab", "c"},
                 sample{"Basic YWI6Yw", "ab", "c"}, sample{"Basic YWJjOmRlZg==", "abc", "def"},
                 sample{"Basic YWJjOmRlZg", "abc", "def"}, sample{"Basic dTpwdw", "u", "pw"}}) {
    INFO(s.header);
    auto c = auth::parse_basic_authorization(s.header);
    REQUIRE(c);
    CHECK(c->username == s.user);
    CHECK(c->password == s.password);
  }
}

TEST_CASE("a password may contain colons and be empty", "[auth]") {
  auto c = auth::parse_basic_authorization("Basic dTpwOnc6");  // "u:p:w:"
  REQUIRE(c);
  CHECK(c->username == "u");
  CHECK(c->password == "p:w:");
  auto empty = auth::parse_basic_authorization("Basic dTo=");  // "u:"
  REQUIRE(empty);
  CHECK(empty->password.empty());
}

TEST_CASE("malformed authorization headers are refused", "[auth]") {
  for (const char* h : {
           "",                              // nothing
           "Basic",                         // no credentials
           "Basic ",                        // no credentials
           "Bearer cmVhZGVyOnMzY3JldA==",   // another scheme
           "BasiccmVhZGVyOnMzY3JldA==",     // no space after the scheme
           "Basic cmVhZGVy",                // "reader": no colon
           "Basic OnBhc3M=",                // ":pass": empty user
           "Basic cmVh ZGVyOnMzY3JldA==",   // space inside the token
           "Basic cmVhZGVyOnMzY3JldA=",     // wrong padding
           "Basic cmVhZGVyOnMzY3JldA===",   // too much padding
           "Basic cm=VhZGVyOnMzY3JldA==",   // padding in the middle
           "Basic cmVhZGVyOnMzY3JldA==!",   // not base64
           "Basic cmVhZ-VyOnMzY3JldA==",    // URL-safe alphabet is not basic auth's
           "Basic YWJjZ",                   // five characters: a dangling six-bit group
           "Basic dTpwAA==",                // "u:p\0": NUL in the password
           "Basic dQE6cA==",                // "u\x01:p": control character in the user
       }) {
    INFO(h);
    CHECK_FALSE(auth::parse_basic_authorization(h));
  }
}

TEST_CASE("an oversized authorization header is refused without decoding", "[auth]") {
  CHECK_FALSE(auth::parse_basic_authorization("Basic " + std::string(5000, 'A')));
}

TEST_CASE("the challenge names the registryd realm", "[auth]") {
  CHECK(auth::basic_challenge == "Basic realm=\"registryd\"");
}
