#include <registryd/oci/route.hpp>

#include <catch2/catch.hpp>

using namespace registryd::oci;

TEST_CASE("API paths map to routes, names with slashes included", "[oci][route]") {
  auto r = parse_route("/v2/");
  REQUIRE(r);
  CHECK(r->kind == route_kind::base);
  CHECK(parse_route("/v2/_catalog")->kind == route_kind::catalog);

  r = parse_route("/v2/system/deckhouse/manifests/v1.2");
  REQUIRE(r);
  CHECK(r->kind == route_kind::manifest);
  CHECK(r->name == "system/deckhouse");
  CHECK(r->reference == "v1.2");

  r = parse_route("/v2/a/b/c/tags/list");
  REQUIRE(r);
  CHECK(r->kind == route_kind::tags_list);
  CHECK(r->name == "a/b/c");

  r = parse_route("/v2/a/blobs/uploads/");
  REQUIRE(r);
  CHECK(r->kind == route_kind::upload_start);
  CHECK(r->name == "a");

  r = parse_route("/v2/a/blobs/uploads/0f3c-11");
  REQUIRE(r);
  CHECK(r->kind == route_kind::upload_session);
  CHECK(r->reference == "0f3c-11");

  r = parse_route("/v2/a/blobs/sha256:00");
  REQUIRE(r);
  CHECK(r->kind == route_kind::blob);

  r = parse_route("/v2/a/referrers/sha256:00");
  REQUIRE(r);
  CHECK(r->kind == route_kind::referrers);
  CHECK(r->name == "a");

  // A repository may itself be called "manifests": the last marker wins.
  r = parse_route("/v2/manifests/x/manifests/latest");
  REQUIRE(r);
  CHECK(r->name == "manifests/x");
}

TEST_CASE("paths outside the API are not routes", "[oci][route]") {
  CHECK_FALSE(parse_route("/v3/"));
  CHECK_FALSE(parse_route("/v2/a"));
  CHECK_FALSE(parse_route("/v2/manifests/latest"));
  CHECK_FALSE(parse_route("/v2/a/manifests/"));
  CHECK_FALSE(parse_route("/v2/a/blobs/x/y"));
}

TEST_CASE("route_path is the inverse of parse_route", "[oci][route]") {
  for (const char* p : {"/v2/", "/v2/_catalog", "/v2/a/b/tags/list", "/v2/a/manifests/t",
                        "/v2/a/blobs/sha256:1", "/v2/a/blobs/uploads/", "/v2/a/blobs/uploads/u",
                        "/v2/a/referrers/sha256:1"}) {
    INFO(p);
    CHECK(route_path(*parse_route(p)) == p);
  }
}
