#include <registryd/auth/access.hpp>

#include <catch2/catch.hpp>

namespace auth = registryd::auth;

TEST_CASE("access bits are the plugin ABI's REGISTRYD_ACCESS bits", "[auth]") {
  CHECK(auth::access_read_only == REGISTRYD_ACCESS_PULL);
  CHECK(auth::plugin_access(auth::access_read_write) ==
        (REGISTRYD_ACCESS_PULL | REGISTRYD_ACCESS_PUSH | REGISTRYD_ACCESS_DELETE));
}

TEST_CASE("the catalog bit is the host's own and never reaches a plugin", "[auth]") {
  const auth::access_bits abi = REGISTRYD_ACCESS_PULL | REGISTRYD_ACCESS_PUSH | REGISTRYD_ACCESS_DELETE;
  CHECK((auth::access_catalog & abi) == 0);
  CHECK(auth::plugin_access(auth::access_catalog) == 0);
  CHECK(auth::plugin_access(auth::access_mirror_puller) == REGISTRYD_ACCESS_PULL);
}

TEST_CASE("the four account kinds hold what FACTS.md section 4 says", "[auth]") {
  CHECK(auth::parse_account_kind("read-only") == auth::access_pull);
  CHECK(auth::parse_account_kind("read-write") ==
        (auth::access_pull | auth::access_push | auth::access_delete | auth::access_catalog));
  CHECK(auth::parse_account_kind("mirror-puller") == (auth::access_pull | auth::access_catalog));
  CHECK(auth::parse_account_kind("mirror-pusher") ==
        (auth::access_pull | auth::access_push | auth::access_catalog));
  CHECK_FALSE(auth::parse_account_kind("admin"));
  CHECK_FALSE(auth::parse_account_kind("Read-Only"));
}

TEST_CASE("a mirror pusher may upload but never delete", "[auth]") {
  CHECK(auth::is_allowed(auth::access_mirror_pusher, "PUT"));
  CHECK(auth::is_allowed(auth::access_mirror_pusher, "GET"));
  CHECK_FALSE(auth::is_allowed(auth::access_mirror_pusher, "DELETE"));
  CHECK_FALSE(auth::is_allowed(auth::access_mirror_puller, "PATCH"));
}

TEST_CASE("GET and HEAD need pull, POST PUT PATCH need push, DELETE needs delete", "[auth]") {
  CHECK(auth::required_access("GET") == auth::access_pull);
  CHECK(auth::required_access("HEAD") == auth::access_pull);
  CHECK(auth::required_access("POST") == auth::access_push);
  CHECK(auth::required_access("PUT") == auth::access_push);
  CHECK(auth::required_access("PATCH") == auth::access_push);
  CHECK(auth::required_access("DELETE") == auth::access_delete);
  CHECK(auth::required_access("OPTIONS") == 0);
  CHECK(auth::required_access("get") == 0);
}

TEST_CASE("a read-only user may pull but not push or delete", "[auth]") {
  for (const char* m : {"GET", "HEAD"}) CHECK(auth::is_allowed(auth::access_read_only, m));
  for (const char* m : {"POST", "PUT", "PATCH", "DELETE"}) {
    CHECK_FALSE(auth::is_allowed(auth::access_read_only, m));
  }
}

TEST_CASE("a read-write user may do everything the registry API uses and nothing else",
          "[auth]") {
  for (const char* m : {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"}) {
    CHECK(auth::is_allowed(auth::access_read_write, m));
  }
  CHECK_FALSE(auth::is_allowed(auth::access_read_write, "TRACE"));
  CHECK_FALSE(auth::is_allowed(auth::access_read_write, ""));
}

TEST_CASE("push without delete may upload but not delete", "[auth]") {
  const auth::access_bits pusher = auth::access_pull | auth::access_push;
  CHECK(auth::is_allowed(pusher, "PUT"));
  CHECK_FALSE(auth::is_allowed(pusher, "DELETE"));
}
