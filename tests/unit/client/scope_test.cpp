#include <registryd/oci/client/scope.hpp>

#include <catch2/catch.hpp>

using namespace registryd::oci::client;
using v = std::vector<std::string>;

TEST_CASE("scopes are spelled as the token protocol spells them", "[client][scope]") {
  CHECK(pull_scope("deckhouse/ee") == "repository:deckhouse/ee:pull");
  CHECK(push_scope("a") == "repository:a:pull,push");
  CHECK(catalog_scope() == "registry:catalog:*");
}

TEST_CASE("scopes on one resource are merged, sorted and deduplicated", "[client][scope]") {
  CHECK(normalize_scopes(v{"repository:a:push", "repository:b:pull", "repository:a:pull"}) ==
        v{"repository:a:pull,push", "repository:b:pull"});
  CHECK(normalize_scopes(v{"repository:a:pull", "repository:a:pull"}) == v{"repository:a:pull"});
  CHECK(normalize_scopes(v{"registry:catalog:*"}) == v{"registry:catalog:*"});
}

TEST_CASE("a repository on a host with a port keeps its colon in the resource", "[client][scope]") {
  CHECK(normalize_scopes(v{"repository:host:5000/a:pull", "repository:host:5000/a:push"}) ==
        v{"repository:host:5000/a:pull,push"});
}

TEST_CASE("malformed scopes are dropped", "[client][scope]") {
  CHECK(normalize_scopes(v{"", "nocolon", "repository:a:", ":a:pull", "repository:a:,"}).empty());
}

TEST_CASE("the cache key of equivalent scope lists is the same", "[client][scope]") {
  CHECK(scope_key(v{"repository:b:pull", "repository:a:push,pull"}) ==
        scope_key(v{"repository:a:pull", "repository:a:push", "repository:b:pull"}));
  CHECK(scope_key(v{"repository:b:pull", "repository:a:pull"}) == "repository:a:pull repository:b:pull");
  CHECK(scope_key({}).empty());
}

TEST_CASE("a challenge's scope parameter may list several scopes", "[client][scope]") {
  CHECK(split_scope_param("repository:a:pull repository:b:pull,push") ==
        v{"repository:a:pull", "repository:b:pull,push"});
  CHECK(split_scope_param("  repository:a:pull  ") == v{"repository:a:pull"});
  CHECK(split_scope_param("").empty());
}
