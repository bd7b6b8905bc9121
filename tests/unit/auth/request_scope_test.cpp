#include <registryd/auth/request_scope.hpp>

#include <catch2/catch.hpp>

namespace auth = registryd::auth;
using auth::resource_actions;
using route = auth::request_scope::route;

TEST_CASE("the repository name comes from the route, as distribution's router reads it",
          "[auth]") {
  CHECK(auth::repository_in_path("/v2/system/deckhouse/manifests/latest") == "system/deckhouse");
  CHECK(auth::repository_in_path("/v2/a/manifests/sha256:abc") == "a");
  CHECK(auth::repository_in_path("/v2/a/b/blobs/sha256:abc") == "a/b");
  CHECK(auth::repository_in_path("/v2/a/blobs/uploads/") == "a");
  CHECK(auth::repository_in_path("/v2/a/blobs/uploads") == "a");
  CHECK(auth::repository_in_path("/v2/a/blobs/uploads/3f2e-11") == "a");
  CHECK(auth::repository_in_path("/v2/a/tags/list") == "a");
  CHECK(auth::repository_in_path("/v2/a/referrers/sha256:abc") == "a");
  // Names may themselves hold route words.
  CHECK(auth::repository_in_path("/v2/blobs/manifests/x") == "blobs");
  CHECK(auth::repository_in_path("/v2/tags/blobs/uploads/1") == "tags");
  for (const char* none : {"/v2/", "/v2/_catalog", "/v2/a", "/v2/a/manifests/", "/v2/a/tags/x",
                           "/v2/A/manifests/x", "/v2/manifests/x", "/healthz"}) {
    INFO(none);
    CHECK(auth::repository_in_path(none).empty());
  }
}

TEST_CASE("GET and HEAD need pull, writes need pull and push, DELETE needs delete", "[auth]") {
  for (const char* m : {"GET", "HEAD"}) {
    const auto s = auth::scope_of_request(m, "/v2/a/manifests/x");
    CHECK(s.kind == route::repository);
    CHECK(s.repository == "a");
    CHECK(s.needed == std::vector<resource_actions>{{"repository", "a", {"pull"}}});
  }
  for (const char* m : {"POST", "PUT", "PATCH"}) {
    CHECK(auth::scope_of_request(m, "/v2/a/blobs/uploads/").needed ==
          std::vector<resource_actions>{{"repository", "a", {"pull", "push"}}});
  }
  CHECK(auth::scope_of_request("DELETE", "/v2/a/manifests/sha256:1").needed ==
        std::vector<resource_actions>{{"repository", "a", {"delete"}}});
  CHECK(auth::scope_of_request("OPTIONS", "/v2/a/manifests/x").needed.empty());
}

TEST_CASE("a cross-repository mount needs pull on its source", "[auth]") {
  CHECK(auth::scope_of_request("POST", "/v2/a/blobs/uploads/", "b/c").needed ==
        std::vector<resource_actions>{{"repository", "a", {"pull", "push"}},
                                      {"repository", "b/c", {"pull"}}});
  const auto bad = auth::scope_of_request("POST", "/v2/a/blobs/uploads/", "x\"y");
  CHECK(bad.kind == route::unknown);
  CHECK(bad.needed.empty());
}

TEST_CASE("the catalog needs registry:catalog:* and the version check needs no scope",
          "[auth]") {
  const auto catalog = auth::scope_of_request("GET", "/v2/_catalog");
  CHECK(catalog.kind == route::catalog);
  CHECK(catalog.needed == std::vector<resource_actions>{{"registry", "catalog", {"*"}}});
  for (const char* p : {"/v2/", "/v2"}) {
    const auto base = auth::scope_of_request("GET", p);
    CHECK(base.kind == route::version_check);
    CHECK(base.needed.empty());
  }
  CHECK(auth::scope_of_request("GET", "/v2/nothing").kind == route::unknown);
}

TEST_CASE("a bearer challenge is written as distribution writes it", "[auth]") {
  CHECK(auth::bearer_challenge("https://127.0.0.1:5001/auth/token", "registryd", {}) ==
        R"(Bearer realm="https://127.0.0.1:5001/auth/token",service="registryd")");
  CHECK(auth::bearer_challenge("https://h/auth/token", "registryd",
                               {{"repository", "system/deckhouse", {"pull", "push"}}}) ==
        R"(Bearer realm="https://h/auth/token",service="registryd",scope="repository:system/deckhouse:pull,push")");
  CHECK(auth::bearer_challenge("https://h/auth/token", "s",
                               {{"repository", "a", {"pull", "push"}}, {"repository", "b", {"pull"}}},
                               "insufficient_scope") ==
        R"(Bearer realm="https://h/auth/token",service="s",scope="repository:a:pull,push repository:b:pull",error="insufficient_scope")");
}

TEST_CASE("an upload session needs push for every method, so a token client can ask where an "
          "upload stands",
          "[auth]") {
  for (const char* m : {"GET", "HEAD", "PATCH", "PUT"}) {
    INFO(m);
    CHECK(auth::scope_of_request(m, "/v2/a/blobs/uploads/3f2e-11").needed ==
          std::vector<resource_actions>{{"repository", "a", {"pull", "push"}}});
  }
  CHECK(auth::scope_of_request("DELETE", "/v2/a/blobs/uploads/3f2e-11").needed ==
        std::vector<resource_actions>{{"repository", "a", {"delete"}}});
}
