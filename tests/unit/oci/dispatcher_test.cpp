#include <registryd/oci/dispatcher.hpp>

#include <catch2/catch.hpp>
#include <plugin_call.hpp>

using registryd::oci::dispatcher;
using registryd::oci::route_kind;
using registryd::oci::target;
using registryd::test::call_handler;
using registryd::test::call_options;
using registryd::test::reply;
namespace sdk = registryd::sdk;

namespace {

const std::string d1 = "sha256:" + std::string(64, 'a');

// A dispatcher whose handlers answer 200 with what they were given.
struct fixture {
  dispatcher api{"the test mode serves pulls and deletes"};
  fixture() {
    auto echo = [](const sdk::request& req, sdk::response& res, const target& t) {
      res.status(200);
      res.send("application/json",
               nlohmann::json{{"method", req.method()},
                              {"kind", static_cast<int>(t.kind)},
                              {"name", t.name},
                              {"reference", t.reference},
                              {"digest", t.digest ? t.digest->str() : ""},
                              {"tag", t.is_tag()}}
                   .dump());
    };
    api.read(route_kind::manifest, echo).read(route_kind::blob, echo).read(route_kind::tags_list, echo);
    api.read(route_kind::referrers, echo);
    api.on(route_kind::manifest, "DELETE", REGISTRYD_ACCESS_DELETE, echo);
    api.on(route_kind::upload_session, "PATCH", REGISTRYD_ACCESS_PUSH, echo);
  }
  reply operator()(const std::string& method, const std::string& path, std::uint32_t access = ~0u) {
    call_options o;
    o.access = access;
    return call_handler([&](const sdk::request& q, sdk::response& r) { api.dispatch(q, r); }, method, path, o);
  }
};

}  // namespace

TEST_CASE("the dispatcher hands a checked target to the handler of the method and route", "[oci][dispatcher]") {
  fixture f;
  auto r = f("GET", "/v2/library/alpine/manifests/v1.2");
  REQUIRE(r.status == 200);
  CHECK(r.json()["name"] == "library/alpine");
  CHECK(r.json()["reference"] == "v1.2");
  CHECK(r.json()["tag"] == true);
  CHECK(r.json()["digest"] == "");
  r = f("HEAD", "/v2/a/manifests/" + d1);
  REQUIRE(r.status == 200);
  CHECK(r.json()["method"] == "HEAD");
  CHECK(r.json()["digest"] == d1);
  CHECK(r.json()["tag"] == false);
  r = f("GET", "/v2/a/b/c/blobs/" + d1);
  REQUIRE(r.status == 200);
  CHECK(r.json()["kind"] == static_cast<int>(route_kind::blob));
  CHECK(r.json()["digest"] == d1);
  CHECK(f("DELETE", "/v2/a/manifests/" + d1).status == 200);
  CHECK(f("PATCH", "/v2/a/blobs/uploads/0b9e-x_y.z").status == 200);
}

TEST_CASE("the dispatcher answers the spec's defaults itself", "[oci][dispatcher]") {
  fixture f;
  // The version check, when no handler claims it.
  auto r = f("GET", "/v2/");
  CHECK(r.status == 200);
  CHECK(r.body == "{}");
  // Not an API endpoint.
  r = f("GET", "/v2/a/whatever");
  CHECK(r.status == 404);
  CHECK(r.error_code() == "NAME_UNKNOWN");
  // A method the mode has no handler for: 405 with Allow, the mode's hint in the message.
  r = f("PUT", "/v2/a/manifests/v1");
  CHECK(r.status == 405);
  CHECK(r.error_code() == "UNSUPPORTED");
  CHECK(r.header("Allow") == "GET, HEAD, DELETE");
  CHECK_THAT(r.json()["errors"][0]["message"].get<std::string>(),
             Catch::Contains("PUT is not supported on this endpoint: the test mode serves pulls and deletes"));
  r = f("POST", "/v2/a/blobs/uploads/");
  CHECK(r.status == 405);
  CHECK_FALSE(r.has_header("Allow"));
  CHECK(f("GET", "/v2/_catalog").status == 405);
  CHECK(f("BREW", "/v2/a/manifests/v1").status == 405);
}

TEST_CASE("the dispatcher refuses invalid names, tags, digests and upload ids with the spec's codes", "[oci][dispatcher]") {
  fixture f;
  auto check = [&](const std::string& method, const std::string& path, int status, const std::string& code) {
    INFO(method << " " << path);
    const reply r = f(method, path);
    CHECK(r.status == status);
    CHECK(r.error_code() == code);
  };
  const std::string ff = "\xff";
  check("GET", "/v2/UPPER/manifests/v1", 400, "NAME_INVALID");
  check("GET", "/v2/a" + ff + "b/tags/list", 400, "NAME_INVALID");
  // A bad name is a 400 whatever the method: the name is checked first.
  check("PUT", "/v2/a" + ff + "/manifests/v1", 400, "NAME_INVALID");
  check("GET", "/v2/a/manifests/-bad", 400, "TAG_INVALID");
  check("GET", "/v2/a/manifests/v" + ff, 400, "TAG_INVALID");
  check("GET", "/v2/a/manifests/" + std::string(129, 't'), 400, "TAG_INVALID");
  check("GET", "/v2/a/manifests/sha256:abc", 400, "DIGEST_INVALID");
  check("GET", "/v2/a/manifests/md5:" + std::string(32, 'a'), 400, "DIGEST_INVALID");
  check("GET", "/v2/a/blobs/latest", 400, "DIGEST_INVALID");
  check("GET", "/v2/a/blobs/sha256:" + std::string(64, 'A'), 400, "DIGEST_INVALID");
  check("GET", "/v2/a/referrers/sha256:" + ff, 400, "DIGEST_INVALID");
  check("PATCH", "/v2/a/blobs/uploads/" + ff, 404, "BLOB_UPLOAD_UNKNOWN");
  check("PATCH", "/v2/a/blobs/uploads/" + std::string(129, 'u'), 404, "BLOB_UPLOAD_UNKNOWN");
  // The body stays valid JSON whatever bytes the client sent.
  CHECK_NOTHROW(f("GET", "/v2/a/manifests/v" + ff).json());
}

TEST_CASE("the dispatcher refuses users without the access a handler was registered with", "[oci][dispatcher]") {
  fixture f;
  auto r = f("GET", "/v2/a/manifests/v1", 0);
  CHECK(r.status == 403);
  CHECK(r.error_code() == "DENIED");
  CHECK_THAT(r.body, Catch::Contains("may not pull"));
  r = f("DELETE", "/v2/a/manifests/" + d1, REGISTRYD_ACCESS_PULL);
  CHECK(r.status == 403);
  CHECK_THAT(r.body, Catch::Contains("may not delete"));
  CHECK(f("PATCH", "/v2/a/blobs/uploads/x", REGISTRYD_ACCESS_PULL).status == 403);
  CHECK(f("DELETE", "/v2/a/manifests/" + d1, REGISTRYD_ACCESS_DELETE).status == 200);
}

TEST_CASE("a handler registered for the version check replaces the default", "[oci][dispatcher]") {
  dispatcher api;
  api.on(route_kind::base, "GET", 0, [](const sdk::request&, sdk::response& res, const target&) {
    res.status(200);
    res.send("text/plain", "mine");
  });
  const reply r =
      call_handler([&](const sdk::request& q, sdk::response& s) { api.dispatch(q, s); }, "GET", "/v2/");
  CHECK(r.body == "mine");
  CHECK_THROWS_AS(api.on(route_kind::blob, "BREW", 0, nullptr), std::invalid_argument);
}
