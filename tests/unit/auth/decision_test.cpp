#include <registryd/auth/decision.hpp>

#include <catch2/catch.hpp>

namespace auth = registryd::auth;
using verdict = auth::decision::verdict;

TEST_CASE("a read-only user may pull but not push, and is told which account it has", "[auth]") {
  const auth::caller reader{"reader", auth::access_read_only, std::nullopt};
  const auto pull = auth::decide(reader, "GET", auth::scope_of_request("GET", "/v2/a/manifests/x"));
  CHECK(pull.kind == verdict::allow);
  CHECK(pull.access == auth::access_pull);
  const auto push = auth::decide(reader, "PUT", auth::scope_of_request("PUT", "/v2/a/manifests/x"));
  CHECK(push.kind == verdict::refuse);
  CHECK(push.status == 403);
  CHECK(push.message == "user reader may not push: the account has read-only access");
}

TEST_CASE("asking where an upload stands needs push, for basic users and tokens alike", "[auth]") {
  const auto scope = auth::scope_of_request("GET", "/v2/a/blobs/uploads/3f2e");
  const auth::caller reader{"reader", auth::access_read_only, std::nullopt};
  CHECK(auth::decide(reader, "GET", scope).kind == verdict::refuse);
  const auth::caller writer{"writer", auth::access_read_write, std::nullopt};
  CHECK(auth::decide(writer, "GET", scope).kind == verdict::allow);
  // A token for pull and push, as a client asks for after the challenge: allowed.
  const auth::caller token{"writer", 0, std::vector<auth::resource_actions>{{"repository", "a", {"pull", "push"}}}};
  const auto d = auth::decide(token, "GET", scope);
  CHECK(d.kind == verdict::allow);
  CHECK(d.access == (auth::access_pull | auth::access_push));
  // A pull-only token is challenged for the push it lacks.
  const auth::caller pull_token{"reader", 0, std::vector<auth::resource_actions>{{"repository", "a", {"pull"}}}};
  const auto c = auth::decide(pull_token, "GET", scope);
  CHECK(c.kind == verdict::challenge);
  CHECK(c.error == "insufficient_scope");
  // The same token of a writer account: challenged, a new token would carry push.
  const auth::caller writer_pull_token{"writer", auth::access_read_write,
                                       std::vector<auth::resource_actions>{{"repository", "a", {"pull"}}}};
  CHECK(auth::decide(writer_pull_token, "GET", scope).kind == verdict::challenge);
  // Of a read-only account: no token would ever carry push, so 403 and why.
  const auth::caller reader_pull_token{"reader", auth::access_read_only,
                                       std::vector<auth::resource_actions>{{"repository", "a", {"pull"}}}};
  const auto r = auth::decide(reader_pull_token, "GET", scope);
  CHECK(r.kind == verdict::refuse);
  CHECK(r.status == 403);
  CHECK(r.message.find("user reader may not") == 0);
}

TEST_CASE("the catalog needs catalog access, and a token off every route is a 404", "[auth]") {
  const auth::caller reader{"reader", auth::access_read_only, std::nullopt};
  CHECK(auth::decide(reader, "GET", auth::scope_of_request("GET", "/v2/_catalog")).status == 403);
  const auth::caller puller{"p", auth::access_mirror_puller, std::nullopt};
  CHECK(auth::decide(puller, "GET", auth::scope_of_request("GET", "/v2/_catalog")).kind == verdict::allow);
  const auth::caller token{"x", 0, std::vector<auth::resource_actions>{}};
  const auto d = auth::decide(token, "GET", auth::scope_of_request("GET", "/v2/nothing"));
  CHECK(d.kind == verdict::refuse);
  CHECK(d.status == 404);
}

TEST_CASE("a method the registry API does not have is a 501 for every caller, before any access check",
          "[auth]") {
  // Before, a basic user (or the anonymous caller with authentication off) got 403 "may not
  // pull", and a token 405 without the Allow a 405 must carry.
  const auth::caller writer{"writer", auth::access_read_write, std::nullopt};
  const auth::caller token{"writer", auth::access_read_write,
                           std::vector<auth::resource_actions>{{"repository", "a", {"*"}}}};
  for (const char* method : {"BREW", "OPTIONS", "TRACE", "get", "CONNECT"}) {
    INFO(method);
    for (const auto& who : {writer, token}) {
      for (const char* path : {"/v2/a/manifests/x", "/v2/a/blobs/uploads/", "/v2/_catalog", "/v2/nothing"}) {
        const auto d = auth::decide(who, method, auth::scope_of_request(method, path));
        CHECK(d.kind == verdict::refuse);
        CHECK(d.status == 501);
        CHECK(d.code == "UNSUPPORTED");
        CHECK(d.message == std::string(method) + " is not a method of the registry API");
      }
    }
  }
  // The methods the API has are still decided on access.
  CHECK(auth::decide(writer, "PATCH", auth::scope_of_request("PATCH", "/v2/a/blobs/uploads/3f2e")).kind ==
        verdict::allow);
}
