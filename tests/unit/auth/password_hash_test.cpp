#include <registryd/auth/password_hash.hpp>
#include <registryd/auth/users_file.hpp>

#include "auth_test_support.hpp"

namespace auth = registryd::auth;

TEST_CASE("a hash made by htpasswd verifies the right password only", "[auth]") {
  const auto hash = auth_test::htpasswd_hash("reader", "correct horse");
  CHECK(hash.rfind("$2y$04$", 0) == 0);
  CHECK(auth::is_bcrypt_hash(hash));
  CHECK(auth::verify_password("correct horse", hash));
  CHECK_FALSE(auth::verify_password("correct horsE", hash));
  CHECK_FALSE(auth::verify_password("", hash));
}

TEST_CASE("a hash made with crypt_r verifies, also under the $2a$ and $2y$ prefixes", "[auth]") {
  auto hash = auth::make_bcrypt_hash("p@ss:word", 4);
  REQUIRE(hash);
  CHECK(hash->rfind("$2b$04$", 0) == 0);
  CHECK(auth::is_bcrypt_hash(*hash));
  CHECK(auth::verify_password("p@ss:word", *hash));
  CHECK_FALSE(auth::verify_password("p@ss:wor", *hash));
  // For passwords shorter than 255 bytes the three variants compute the same hash.
  for (const char* prefix : {"$2a$", "$2y$"}) {
    std::string other = *hash;
    other.replace(0, 4, prefix);
    CHECK(auth::verify_password("p@ss:word", other));
  }
}

TEST_CASE("two hashes of one password differ by their salt", "[auth]") {
  auto a = auth::make_bcrypt_hash("same", 4);
  auto b = auth::make_bcrypt_hash("same", 4);
  REQUIRE(a);
  REQUIRE(b);
  CHECK(*a != *b);
}

TEST_CASE("a password with a NUL byte never matches the hash of its prefix", "[auth]") {
  auto hash = auth::make_bcrypt_hash("pass", 4);
  REQUIRE(hash);
  CHECK_FALSE(auth::verify_password(std::string("pass\0tail", 9), *hash));
  CHECK_FALSE(auth::make_bcrypt_hash(std::string("a\0b", 3), 4));
}

TEST_CASE("garbage instead of a hash never verifies", "[auth]") {
  CHECK_FALSE(auth::verify_password("x", ""));
  CHECK_FALSE(auth::verify_password("x", "x"));
  CHECK_FALSE(auth::verify_password("x", "$2y$04$short"));
  CHECK_FALSE(auth::make_bcrypt_hash("x", 3));
}
