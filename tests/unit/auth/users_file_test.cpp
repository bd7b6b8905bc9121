#include <registryd/auth/users_file.hpp>

#include "auth_test_support.hpp"

namespace auth = registryd::auth;

namespace {
// Well-formed bcrypt hashes (cost 4); their passwords do not matter here.
const std::string hash_a = "$2y$04$wSIPRvj8K8nIEadkTD0ZaOJbm5VgmJ6Q8Yd8mYC4B1pYqEcwQvKgu";
const std::string hash_b = "$2b$04$7gC2e4mVr8i0iOaJmSOmIuBiF9B1bMQYC8mVg6g0x5Ih1G6m5yH2W";

std::string parse_error(const std::string& yaml) {
  auto r = auth::parse_users(yaml);
  REQUIRE_FALSE(r);
  return r.error_message();
}
}  // namespace

TEST_CASE("a users file with a reader and a writer parses with their access", "[auth]") {
  auto table = auth::parse_users("users:\n"
                                 "  - name: reader\n"
                                 "    password: \"" + hash_a + "\"\n"
                                 "    access: read-only\n"
                                 "  - name: writer\n"
                                 "    password: '" + hash_b + "'\n"
                                 "    access: read-write\n");
  REQUIRE(table);
  CHECK(table->size() == 2);
  const auto* reader = table->find("reader");
  REQUIRE(reader != nullptr);
  CHECK(reader->password_hash == hash_a);
  CHECK(reader->access == auth::access_read_only);
  REQUIRE(table->find("writer") != nullptr);
  CHECK(table->find("writer")->access == auth::access_read_write);
  CHECK(table->find("nobody") == nullptr);
}

TEST_CASE("an unquoted hash and an empty users list are accepted", "[auth]") {
  auto table = auth::parse_users("users:\n- name: r\n  password: " + hash_a + "\n  access: read-only\n");
  REQUIRE(table);
  CHECK(table->find("r")->password_hash == hash_a);
  auto empty = auth::parse_users("users: []\n");
  REQUIRE(empty);
  CHECK(empty->size() == 0);
}

TEST_CASE("a bad access value is reported with its field path", "[auth]") {
  CHECK(parse_error("users:\n"
                    "  - {name: a, password: '" + hash_a + "', access: read-only}\n"
                    "  - {name: b, password: '" + hash_a + "', access: admin}\n") ==
        "users[1].access: must be read-only, read-write, mirror-puller or mirror-pusher");
}

TEST_CASE("a plain-text password is refused without echoing it", "[auth]") {
  const auto msg = parse_error("users:\n  - {name: a, password: hunter2, access: read-only}\n");
  CHECK_THAT(msg, Catch::StartsWith("users[0].password: must be a bcrypt hash") &&
                      Catch::Contains("htpasswd -nbB") && Catch::Contains("plain-text"));
  CHECK_THAT(msg, !Catch::Contains("hunter2"));
}

TEST_CASE("other password hash formats are refused", "[auth]") {
  for (const char* h : {"$apr1$abc$0123456789012345678901",               // htpasswd MD5
                        "{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=",               // htpasswd SHA1
                        "$6$salt$abcdefghijklmnopqrstuvwxyz",              // sha512crypt
                        "$2x$04$wSIPRvj8K8nIEadkTD0ZaOJbm5VgmJ6Q8Yd8mYC4B1pYqEcwQvKgu",  // buggy 2x
                        "$2y$03$wSIPRvj8K8nIEadkTD0ZaOJbm5VgmJ6Q8Yd8mYC4B1pYqEcwQvKgu",  // cost 3
                        "$2y$04$wSIPRvj8K8nIEadkTD0ZaOJbm5VgmJ6Q8Yd8mYC4B1pYqEcwQvKg",   // short
                        "$2y$04$wSIPRvj8K8nIEadkTD0ZaOJbm5VgmJ6Q8Yd8mYC4B1pYqEcwQvKg!"}) {
    INFO(h);
    CHECK_FALSE(auth::is_bcrypt_hash(h));
    CHECK_THAT(parse_error(std::string("users:\n  - {name: a, password: '") + h +
                           "', access: read-only}\n"),
               Catch::StartsWith("users[0].password: "));
  }
  CHECK(auth::is_bcrypt_hash(hash_a));
  CHECK(auth::is_bcrypt_hash(hash_b));
  CHECK(auth::is_bcrypt_hash("$2a$31$wSIPRvj8K8nIEadkTD0ZaOJbm5VgmJ6Q8Yd8mYC4B1pYqEcwQvKgu"));
}

TEST_CASE("a whole htpasswd line in the password field gets a specific hint", "[auth]") {
  CHECK_THAT(parse_error("users:\n  - {name: a, password: 'a:" + hash_a + "', access: read-only}\n"),
             Catch::Contains("whole htpasswd line"));
}

TEST_CASE("duplicate user names are refused naming both entries", "[auth]") {
  CHECK(parse_error("users:\n"
                    "  - {name: a, password: '" + hash_a + "', access: read-only}\n"
                    "  - {name: b, password: '" + hash_a + "', access: read-only}\n"
                    "  - {name: a, password: '" + hash_b + "', access: read-write}\n") ==
        "users[2].name: duplicate user \"a\" (first defined at users[0])");
}

TEST_CASE("missing fields, unknown fields and bad shapes are reported with their paths",
          "[auth]") {
  CHECK(parse_error("users:\n  - {name: a, password: '" + hash_a + "'}\n") ==
        "users[0].access: required (read-only, read-write, mirror-puller or mirror-pusher)");
  CHECK(parse_error("users:\n  - {name: a, access: read-only}\n") == "users[0].password: required");
  CHECK(parse_error("users:\n  - {password: '" + hash_a + "', access: read-only}\n") ==
        "users[0].name: required");
  CHECK(parse_error("users:\n  - {name: a, passwd: x, access: read-only}\n") ==
        "users[0].passwd: unknown field (expected name, password, access)");
  CHECK(parse_error("users:\n  - {name: 'a:b', password: '" + hash_a + "', access: read-only}\n") ==
        "users[0].name: must not contain ':' (basic auth separates user and password with it)");
  CHECK(parse_error("users:\n  - {name: [a], password: '" + hash_a + "', access: read-only}\n") ==
        "users[0].name: must be a string");
  CHECK(parse_error("users:\n  - just-a-name\n") ==
        "users[0]: must be a mapping with name, password and access");
  CHECK(parse_error("users: {name: a}\n") == "users: must be a list");
  CHECK(parse_error("accounts: []\n") == "accounts: unknown field (expected users)");
  CHECK(parse_error("{}\n") == "users: required");
  CHECK(parse_error("- a\n") == "the file must be a mapping with a users list");
}

TEST_CASE("a YAML syntax error is reported with line and column", "[auth]") {
  CHECK_THAT(parse_error("users:\n  - {name: a, access: [read-only\n"),
             Catch::StartsWith("line "));
}

TEST_CASE("loading a users file prefixes errors with its path", "[auth]") {
  auth_test::scratch_dir tmp;
  const auto file = tmp / "users.yaml";
  auto missing = auth::load_users_file(file);
  REQUIRE_FALSE(missing);
  CHECK_THAT(missing.error_message(), Catch::StartsWith(file.string() + ": "));
  auth_test::spill(file, "users:\n  - {name: a, password: x, access: read-only}\n");
  auto bad = auth::load_users_file(file);
  REQUIRE_FALSE(bad);
  CHECK_THAT(bad.error_message(), Catch::StartsWith(file.string() + ": users[0].password: "));
}

TEST_CASE("mirror puller and pusher accounts parse with their access", "[auth]") {
  auto table = auth::parse_users("users:\n"
                                 "  - {name: puller, password: '" + hash_a + "', access: mirror-puller}\n"
                                 "  - {name: pusher, password: '" + hash_b + "', access: mirror-pusher}\n");
  REQUIRE(table.ok());
  CHECK(table->find("puller")->access == auth::access_mirror_puller);
  CHECK(table->find("pusher")->access == auth::access_mirror_pusher);
}
