// The pass-through rules of the Direct mode, one by one: which requests go upstream and as
// what, which headers cross in each direction, and how upstream errors and names come back.
#include "forwarding.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

using namespace registryd;
using namespace registryd::direct;
using nlohmann::json;

namespace {

const oci::path_mapping mapping("system/deckhouse", "deckhouse/ee");
const std::string d1 = "sha256:" + std::string(64, 'a');

forward_plan plan_of(std::string_view method, std::string_view path, std::string_view query = {}) {
  auto r = plan_request(mapping, method, path, query);
  if (const auto* a = std::get_if<local_answer>(&r)) FAIL("answered locally: " << a->status << " " << a->code << " " << a->message);
  return std::get<forward_plan>(r);
}

local_answer answer_of(std::string_view method, std::string_view path, std::string_view query = {}) {
  auto r = plan_request(mapping, method, path, query);
  if (std::holds_alternative<forward_plan>(r)) FAIL("forwarded: " << std::get<forward_plan>(r).target);
  return std::get<local_answer>(r);
}

std::string value_of(const header_fields& h, std::string_view name) {
  for (const auto& [n, v] : h) {
    if (oci::client::iequals(n, name)) return v;
  }
  return "<absent>";
}

}  // namespace

TEST_CASE("a pull of system/deckhouse goes to the imagesRepo path with a pull scope", "[direct]") {
  auto p = plan_of("GET", "/v2/system/deckhouse/manifests/v1.2.3");
  CHECK(p.target == "/v2/deckhouse/ee/manifests/v1.2.3");
  CHECK(p.upstream_name == "deckhouse/ee");
  CHECK(p.client_name == "system/deckhouse");
  CHECK(p.scope == "repository:deckhouse/ee:pull");
  CHECK(p.method == "GET");
  CHECK_FALSE(p.verify);  // a tag has no digest to check against
  CHECK(p.client_reference() == "system/deckhouse:v1.2.3");

  p = plan_of("HEAD", "/v2/system/deckhouse/install/manifests/" + d1);
  CHECK(p.target == "/v2/deckhouse/ee/install/manifests/" + d1);
  CHECK(p.scope == "repository:deckhouse/ee/install:pull");
  CHECK_FALSE(p.verify);  // HEAD has no body
  CHECK(p.client_reference() == "system/deckhouse/install@" + d1);

  p = plan_of("GET", "/v2/system/deckhouse/manifests/" + d1);
  REQUIRE(p.verify);
  CHECK(p.verify->str() == d1);

  p = plan_of("GET", "/v2/system/deckhouse/blobs/" + d1);
  CHECK(p.target == "/v2/deckhouse/ee/blobs/" + d1);
  CHECK_FALSE(p.verify);  // clients verify blobs themselves

  p = plan_of("GET", "/v2/system/deckhouse/modules/x/tags/list", "n=10&last=v1");
  CHECK(p.target == "/v2/deckhouse/ee/modules/x/tags/list?n=10&last=v1");

  // '+' unencoded is a space, as Go's url.Query reads it upstream; a client encodes it as %2B.
  p = plan_of("GET", "/v2/system/deckhouse/referrers/" + d1, "artifactType=application/vnd.example%2Bjson");
  CHECK(p.target == "/v2/deckhouse/ee/referrers/" + d1 + "?artifactType=application%2Fvnd.example%2Bjson");
  CHECK_FALSE(p.verify);
}

TEST_CASE("repositories outside system/deckhouse answer NAME_UNKNOWN without asking the upstream", "[direct]") {
  for (const std::string& path : std::vector<std::string>{"/v2/other/repo/manifests/v1", "/v2/system/deckhousex/manifests/v1",
                                 "/v2/system/manifests/v1", "/v2/deckhouse/ee/manifests/v1",
                                 "/v2/system/deckhouse2/blobs/" + d1}) {
    INFO(path);
    const auto a = answer_of("GET", path);
    CHECK(a.status == 404);
    CHECK(a.code == "NAME_UNKNOWN");
    CHECK_THAT(a.message, Catch::Contains("system/deckhouse and the repositories below it"));
  }
  // The spec's 400s come first (the shared oci::check_route): a bad digest is one wherever.
  const auto bad_digest = answer_of("GET", "/v2/system/deckhouse2/blobs/sha256:aaaa");
  CHECK(bad_digest.status == 400);
  CHECK(bad_digest.code == "DIGEST_INVALID");
  const auto bad = answer_of("GET", "/v2/system/Deckhouse/manifests/v1");
  CHECK(bad.status == 400);
  CHECK(bad.code == "NAME_INVALID");
  const auto not_api = answer_of("GET", "/v2/system/deckhouse/whatever");
  CHECK(not_api.status == 404);
}

TEST_CASE("push, delete, uploads and the catalog are refused with 405 UNSUPPORTED", "[direct]") {
  for (const auto& [method, path] : std::vector<std::pair<std::string, std::string>>{
           {"PUT", "/v2/system/deckhouse/manifests/v1"},
           {"DELETE", "/v2/system/deckhouse/manifests/" + d1},
           {"DELETE", "/v2/system/deckhouse/blobs/" + d1},
           {"POST", "/v2/system/deckhouse/blobs/uploads/"},
           {"PATCH", "/v2/system/deckhouse/blobs/uploads/abc"},
           {"GET", "/v2/system/deckhouse/blobs/uploads/abc"},
           {"PUT", "/v2/other/blobs/uploads/abc"},
           {"GET", "/v2/_catalog"}}) {
    INFO(method << " " << path);
    const auto a = answer_of(method, path);
    CHECK(a.status == 405);
    CHECK(a.code == "UNSUPPORTED");
  }
  CHECK_THAT(answer_of("PUT", "/v2/system/deckhouse/manifests/v1").message, Catch::Contains("pulls only"));
}

TEST_CASE("a reference that is neither a tag nor a digest is refused before the upstream is asked", "[direct]") {
  auto a = answer_of("GET", "/v2/system/deckhouse/manifests/sha256:nothex");
  CHECK(a.status == 400);
  CHECK(a.code == "DIGEST_INVALID");
  a = answer_of("GET", "/v2/system/deckhouse/blobs/latest");
  CHECK(a.code == "DIGEST_INVALID");
  a = answer_of("GET", "/v2/system/deckhouse/manifests/.hidden");
  CHECK(a.code == "TAG_INVALID");
}

TEST_CASE("only query parameters that mean something upstream are forwarded, re-encoded", "[direct]") {
  using oci::route_kind;
  CHECK(upstream_query(route_kind::manifest, "ns=registry.d8-system.svc%3A5001") == "");
  CHECK(upstream_query(route_kind::blob, "ns=x&n=5") == "");
  CHECK(upstream_query(route_kind::tags_list, "ns=x&n=5&last=v1.2&evil=%0d%0a") == "?n=5&last=v1.2");
  CHECK(upstream_query(route_kind::tags_list, "last=a%20b+c") == "?last=a%20b%20c");
  CHECK(upstream_query(route_kind::referrers, "artifactType=a/b%2Bc&n=1") == "?artifactType=a%2Fb%2Bc");
  CHECK(upstream_query(route_kind::tags_list, "") == "");
}

TEST_CASE("the client's Accept and Range reach the upstream, its credentials never do", "[direct]") {
  const auto h = upstream_request_headers({{"Accept", "application/vnd.oci.image.index.v1+json"},
                                           {"Authorization", "Basic cmVhZGVyOnJwYXNz"},
                                           {"accept", "application/vnd.docker.distribution.manifest.v2+json"},
                                           {"Range", "bytes=100-"},
                                           {"If-None-Match", "\"sha256:x\""},
                                           {"Cookie", "a=b"},
                                           {"Connection", "close"},
                                           {"Host", "registry.d8-system.svc:5001"},
                                           {"User-Agent", "containerd/1.6"}});
  CHECK(h.get("Accept").value_or("") ==
        "application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.v2+json");
  CHECK(h.get("Range").value_or("") == "bytes=100-");
  CHECK(h.get("If-None-Match").value_or("") == "\"sha256:x\"");
  CHECK_FALSE(h.has("Authorization"));
  CHECK_FALSE(h.has("Cookie"));
  CHECK_FALSE(h.has("Connection"));
  CHECK_FALSE(h.has("Host"));
  CHECK(h.size() == 3);
}

TEST_CASE("answer headers: the upstream's challenge is dropped, Location and Link are mapped back", "[direct]") {
  oci::client::header_list up;
  up.add("Content-Type", "application/vnd.oci.image.manifest.v1+json");
  up.add("Content-Length", "1234");
  up.add("Docker-Content-Digest", d1);
  up.add("ETag", "\"" + d1 + "\"");
  up.add("Content-Range", "bytes 100-1233/1234");
  up.add("WWW-Authenticate", "Bearer realm=\"https://auth.example.com/token\",scope=\"repository:deckhouse/ee:pull\"");
  up.add("Set-Cookie", "session=1");
  up.add("Docker-Distribution-API-Version", "registry/2.0");
  up.add("Location", "https://registry.example.com/v2/deckhouse/ee/blobs/" + d1);
  up.add("Link", "</v2/deckhouse/ee/tags/list?last=v1&n=1>; rel=\"next\"");
  up.add("Server", "nginx");
  const auto out = client_response_headers(up, mapping, "registry.example.com");
  CHECK(value_of(out, "Content-Type") == "application/vnd.oci.image.manifest.v1+json");
  CHECK(value_of(out, "Content-Length") == "1234");
  CHECK(value_of(out, "Docker-Content-Digest") == d1);
  CHECK(value_of(out, "ETag") == "\"" + d1 + "\"");
  CHECK(value_of(out, "Content-Range") == "bytes 100-1233/1234");
  CHECK(value_of(out, "WWW-Authenticate") == "<absent>");
  CHECK(value_of(out, "Set-Cookie") == "<absent>");
  CHECK(value_of(out, "Server") == "<absent>");
  CHECK(value_of(out, "Docker-Distribution-API-Version") == "<absent>");  // the host sets its own
  CHECK(value_of(out, "Location") == "/v2/system/deckhouse/blobs/" + d1);
  CHECK(value_of(out, "Link") == "</v2/system/deckhouse/tags/list?last=v1&n=1>; rel=\"next\"");

  // An absolute Link on the upstream host becomes relative, so the client asks registryd.
  oci::client::header_list abs;
  abs.add("Link", "<https://registry.example.com/v2/deckhouse/ee/install/tags/list?n=1>; rel=\"next\"");
  abs.add("Location", "https://storage.example.net/blob?sig=1");
  const auto out2 = client_response_headers(abs, mapping, "registry.example.com");
  CHECK(value_of(out2, "Link") == "</v2/system/deckhouse/install/tags/list?n=1>; rel=\"next\"");
  CHECK(value_of(out2, "Location") == "https://storage.example.net/blob?sig=1");
}

TEST_CASE("an upstream OCI error keeps its codes and details, with names mapped and the reference named", "[direct]") {
  const auto plan = plan_of("GET", "/v2/system/deckhouse/manifests/nope");
  oci::client::upstream_error e;
  e.status = 404;
  e.code = "MANIFEST_UNKNOWN";
  e.message = "manifest unknown";
  const std::string body =
      R"({"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{"Tag":"nope","Name":"deckhouse/ee"}},)"
      R"({"code":"NAME_UNKNOWN","message":"repository name not known to registry: deckhouse/ee","detail":{"name":"deckhouse/ee"}}]})";
  const auto out = json::parse(error_body_to_client(body, e, mapping, plan));
  REQUIRE(out["errors"].size() == 2);
  CHECK(out["errors"][0]["code"] == "MANIFEST_UNKNOWN");
  CHECK(out["errors"][0]["message"] == "manifest unknown: system/deckhouse:nope");
  CHECK(out["errors"][0]["detail"] == json{{"Tag", "nope"}, {"Name", "system/deckhouse"}});
  CHECK(out["errors"][1]["code"] == "NAME_UNKNOWN");
  CHECK(out["errors"][1]["message"] == "repository name not known to registry: system/deckhouse");
  CHECK(out["errors"][1]["detail"] == json{{"name", "system/deckhouse"}});
  CHECK(out.dump().find("deckhouse/ee") == std::string::npos);
}

TEST_CASE("an error answer that is not OCI JSON becomes one OCI error from the client's reading of it", "[direct]") {
  const auto plan = plan_of("GET", "/v2/system/deckhouse/blobs/" + d1);
  oci::client::upstream_error e;
  e.status = 502;
  e.code = "UNAVAILABLE";
  e.message = "registry.example.com answered 502: Bad Gateway";
  const auto out = json::parse(error_body_to_client("<html>Bad Gateway</html>", e, mapping, plan));
  REQUIRE(out["errors"].size() == 1);
  CHECK(out["errors"][0]["code"] == "UNAVAILABLE");
  CHECK(out["errors"][0]["message"] == "registry.example.com answered 502: Bad Gateway: system/deckhouse@" + d1);
  CHECK_FALSE(out["errors"][0].contains("detail"));

  e.detail = R"({"repo":"deckhouse/ee/install"})";
  const auto with_detail = json::parse(error_body_to_client("", e, mapping, plan));
  CHECK(with_detail["errors"][0]["detail"] == json{{"repo", "system/deckhouse/install"}});
}

TEST_CASE("statuses are passed on, except the upstream's 401, which is about registryd's credentials", "[direct]") {
  oci::client::upstream_error e;
  for (const int s : {400, 403, 404, 416, 429, 500, 503}) {
    e.status = s;
    CHECK(client_status_for(e) == s);
  }
  e.status = 401;
  CHECK(client_status_for(e) == 502);
}

TEST_CASE("a tag list carries the client's name", "[direct]") {
  const auto out = tags_list_to_client(R"({"name":"deckhouse/ee/install","tags":["v1","v2"]})", "system/deckhouse/install");
  REQUIRE(out);
  CHECK(json::parse(*out) == json{{"name", "system/deckhouse/install"}, {"tags", {"v1", "v2"}}});
  CHECK(tags_list_to_client(R"({"name":"deckhouse/ee","tags":null})", "system/deckhouse"));
  CHECK_FALSE(tags_list_to_client("not json", "system/deckhouse"));
  CHECK_FALSE(tags_list_to_client(R"({"repositories":[]})", "system/deckhouse"));
}

TEST_CASE("an unreachable upstream is 503, a TLS or protocol failure 502, both UNAVAILABLE", "[direct]") {
  using oci::client::error_kind;
  auto a = transport_failure(oci::client::make_error(error_kind::connect, "cannot connect to registry.example.com: Connection refused"),
                             "registry.example.com", mapping);
  CHECK(a.status == 503);
  CHECK(a.code == "UNAVAILABLE");
  CHECK(a.message == "the upstream registry registry.example.com is unreachable: cannot connect to registry.example.com: Connection refused");
  CHECK(a.detail == json{{"upstream", "registry.example.com"}, {"failure", "connect"}});
  CHECK(transport_failure(oci::client::make_error(error_kind::timeout, "t"), "h", mapping).status == 503);
  CHECK(transport_failure(oci::client::make_error(error_kind::io, "t"), "h", mapping).status == 503);
  a = transport_failure(oci::client::make_error(error_kind::tls, "the certificate of h did not verify"), "h", mapping);
  CHECK(a.status == 502);
  CHECK_THAT(a.message, Catch::StartsWith("the upstream registry h failed: "));
  a = transport_failure(oci::client::make_error(error_kind::protocol, "bad answer for deckhouse/ee"), "h", mapping);
  CHECK(a.status == 502);
  CHECK_THAT(a.message, Catch::EndsWith("bad answer for system/deckhouse"));
}

TEST_CASE("an upstream error answer is read as its first OCI error, or as its status", "[direct]") {
  const auto manifest_plan = plan_of("GET", "/v2/system/deckhouse/manifests/v1");
  const auto blob_plan = plan_of("GET", "/v2/system/deckhouse/blobs/" + d1);
  const auto tags_plan = plan_of("GET", "/v2/system/deckhouse/tags/list");
  oci::client::header_list h;
  h.add("Retry-After", "7");

  auto e = error_from_answer(404, h, R"({"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{"Tag":"v1"}}]})",
                             manifest_plan, "registry.example.com");
  CHECK(e.kind == oci::client::error_kind::http);
  CHECK(e.status == 404);
  CHECK(e.code == "MANIFEST_UNKNOWN");
  CHECK(e.message == "manifest unknown");
  CHECK(e.detail == R"({"Tag":"v1"})");
  CHECK(e.headers.get("Retry-After").value_or("") == "7");

  CHECK(error_from_answer(404, {}, "", manifest_plan, "h").code == "MANIFEST_UNKNOWN");
  CHECK(error_from_answer(404, {}, "", blob_plan, "h").code == "BLOB_UNKNOWN");
  CHECK(error_from_answer(404, {}, "", tags_plan, "h").code == "NAME_UNKNOWN");
  CHECK(error_from_answer(401, {}, "", tags_plan, "h").code == "UNAUTHORIZED");
  CHECK(error_from_answer(403, {}, "", tags_plan, "h").code == "DENIED");
  CHECK(error_from_answer(429, {}, "", tags_plan, "h").code == "TOOMANYREQUESTS");
  CHECK(error_from_answer(418, {}, "", tags_plan, "h").code == "UNKNOWN");
  e = error_from_answer(502, {}, "Bad Gateway\r\n", blob_plan, "registry.example.com");
  CHECK(e.code == "UNAVAILABLE");
  CHECK(e.message == "registry.example.com answered 502: Bad Gateway");
  e = error_from_answer(500, {}, std::string(300, 'x'), blob_plan, "h");
  CHECK(e.message == "h answered 500");
  e = error_from_answer(500, {}, std::string("bin\x01ary"), blob_plan, "h");
  CHECK(e.message == "h answered 500");
}
