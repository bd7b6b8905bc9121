#include "local_test_support.hpp"

#include <catch2/catch.hpp>

using nlohmann::json;
using registryd::oci::digest;
using registryd::oci::digest_algorithm;
using registryd::oci::digest_of;
using registryd::test::call_options;
using registryd::test::image_manifest;
using registryd::test::local_fixture;
using registryd::test::reply;

namespace {

constexpr const char* oci_manifest = "application/vnd.oci.image.manifest.v1+json";
constexpr const char* oci_index = "application/vnd.oci.image.index.v1+json";
constexpr const char* docker_manifest = "application/vnd.docker.distribution.manifest.v2+json";

call_options accept(const std::string& types) {
  call_options o;
  o.headers = {{"Accept", types}};
  return o;
}

// An image with a config and one layer pushed into `repo`; its manifest bytes.
std::string pushed_image(local_fixture& f, const std::string& repo, const std::string& seed) {
  const std::string config = R"({"architecture":"amd64","os":"linux","seed":")" + seed + "\"}";
  const std::string layer = "layer of " + seed;
  const digest c = f.push_blob(repo, config);
  const digest l = f.push_blob(repo, layer);
  return image_manifest(c, config.size(), {{l, layer.size()}});
}

}  // namespace

TEST_CASE("a manifest pushed by tag is served by tag and by digest with its media type", "[local][manifests]") {
  local_fixture f;
  const std::string m = pushed_image(f, "deckhouse/ce", "1");
  const digest d = digest_of(m);
  const reply put = f.push_manifest("deckhouse/ce", "v1.60.0", m);
  REQUIRE(put.status == 201);
  CHECK(put.header("Location") == "/v2/deckhouse/ce/manifests/" + d.str());
  CHECK(put.header("Docker-Content-Digest") == d.str());
  CHECK_FALSE(put.has_header("OCI-Subject"));

  for (const std::string& ref : {std::string("v1.60.0"), d.str()}) {
    const reply get = f("GET", "/v2/deckhouse/ce/manifests/" + ref, accept(oci_manifest));
    CHECK(get.status == 200);
    CHECK(get.body == m);
    CHECK(get.content_type == oci_manifest);
    CHECK(get.header("Docker-Content-Digest") == d.str());
    const reply head = f("HEAD", "/v2/deckhouse/ce/manifests/" + ref, accept(oci_manifest));
    CHECK(head.status == 200);
    CHECK(head.body.empty());
    CHECK(head.header("Content-Length") == std::to_string(m.size()));
    CHECK(head.header("Content-Type") == oci_manifest);
  }
  CHECK(f("GET", "/v2/deckhouse/ce/manifests/v0").error_code() == "MANIFEST_UNKNOWN");
  CHECK(f("GET", "/v2/deckhouse/ce/manifests/" + digest_of("x").str()).status == 404);
  CHECK(f("GET", "/v2/deckhouse/other/manifests/v1.60.0").status == 404);
}

TEST_CASE("a manifest is refused until every blob it references is in the repository", "[local][manifests]") {
  local_fixture f;
  const std::string config = "{}";
  const digest c = digest_of(config);
  const std::string layer = "a layer";
  const digest l = digest_of(layer);
  const std::string m = image_manifest(c, config.size(), {{l, layer.size()}});
  reply r = f.push_manifest("r", "latest", m);
  CHECK(r.status == 400);
  CHECK(r.error_code() == "MANIFEST_BLOB_UNKNOWN");
  f.push_blob("r", config);
  // Present in another repository only: still unknown here.
  f.push_blob("elsewhere", layer);
  CHECK(f.push_manifest("r", "latest", m).error_code() == "MANIFEST_BLOB_UNKNOWN");
  f.push_blob("r", layer);
  CHECK(f.push_manifest("r", "latest", m).status == 201);
}

TEST_CASE("a manifest whose descriptor sizes differ from the stored content is refused", "[local][manifests]") {
  local_fixture f;
  const std::string config = "{}";
  const std::string layer = "a layer of eleven";
  const digest c = f.push_blob("r", config);
  const digest l = f.push_blob("r", layer);
  for (const auto& [config_size, layer_size] : {std::pair<std::size_t, std::size_t>{config.size() + 1, layer.size()},
                                                {config.size(), layer.size() - 1},
                                                {config.size(), 0}}) {
    const reply r = f.push_manifest("r", "latest", image_manifest(c, config_size, {{l, layer_size}}));
    CHECK(r.status == 400);
    CHECK(r.error_code() == "MANIFEST_INVALID");
    CHECK_THAT(r.body, Catch::Contains("but the manifest says"));
  }
  CHECK(f("GET", "/v2/r/manifests/latest").status == 404);  // nothing was stored
  const std::string good = image_manifest(c, config.size(), {{l, layer.size()}});
  REQUIRE(f.push_manifest("r", "latest", good).status == 201);
  // An index entry's size must be its manifest's.
  const json index = {{"schemaVersion", 2},
                      {"mediaType", oci_index},
                      {"manifests", {{{"mediaType", oci_manifest}, {"digest", digest_of(good).str()}, {"size", good.size() + 7}}}}};
  const reply r = f.push_manifest("r", "multi", index.dump(), oci_index);
  CHECK(r.status == 400);
  CHECK(r.error_code() == "MANIFEST_INVALID");
  CHECK(r.json()["errors"][0]["detail"]["stored"] == good.size());
}

TEST_CASE("a manifest put by digest must hash to that digest, sha256 or sha512", "[local][manifests]") {
  local_fixture f;
  const std::string m = pushed_image(f, "r", "2");
  reply r = f.push_manifest("r", digest_of(m + " ").str(), m);
  CHECK(r.status == 400);
  CHECK(r.error_code() == "DIGEST_INVALID");
  CHECK(f.push_manifest("r", "sha256:baddigeststring", m).error_code() == "DIGEST_INVALID");
  CHECK(f.push_manifest("r", digest_of(m).str(), m).status == 201);
  const digest d512 = digest_of(m, digest_algorithm::sha512);
  r = f.push_manifest("r", d512.str(), m);
  REQUIRE(r.status == 201);
  CHECK(r.header("Docker-Content-Digest") == d512.str());
  CHECK(f("GET", "/v2/r/manifests/" + d512.str()).body == m);
  CHECK(f.push_manifest("r", "bad/tag", m).status == 404);  // not a route: '/' ends the name
  CHECK(f.push_manifest("r", "-bad", m).status == 400);
}

TEST_CASE("invalid manifests are refused with MANIFEST_INVALID, oversized ones with 413", "[local][manifests]") {
  local_fixture f;
  CHECK(f.push_manifest("r", "t", "not json").error_code() == "MANIFEST_INVALID");
  CHECK(f.push_manifest("r", "t", R"({"schemaVersion":1})").error_code() == "MANIFEST_INVALID");
  // The document's mediaType must be the Content-Type it was sent with.
  const std::string m = pushed_image(f, "r", "3");
  CHECK(f.push_manifest("r", "t", m, docker_manifest).error_code() == "MANIFEST_INVALID");

  std::string huge = R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","annotations":{"x":")";
  huge += std::string(4 * 1024 * 1024, 'a') + "\"}}";
  const reply big = f.push_manifest("r", "big", huge);
  CHECK(big.status == 413);
  call_options chunked;
  chunked.body = huge;
  chunked.announce_length = false;
  chunked.piece = 65536;
  chunked.headers = {{"Content-Type", oci_manifest}};
  CHECK(f("PUT", "/v2/r/manifests/big", chunked).status == 413);
  CHECK(f("GET", "/v2/r/manifests/big").status == 404);
}

TEST_CASE("content negotiation serves OCI content only to clients that accept it", "[local][manifests][accept]") {
  local_fixture f;
  const std::string m = pushed_image(f, "r", "4");
  REQUIRE(f.push_manifest("r", "oci", m).status == 201);
  CHECK(f("GET", "/v2/r/manifests/oci").status == 200);  // no Accept: everything
  CHECK(f("GET", "/v2/r/manifests/oci", accept("*/*")).status == 200);
  const reply refused = f("GET", "/v2/r/manifests/oci", accept(docker_manifest));
  CHECK(refused.status == 404);
  CHECK(refused.error_code() == "MANIFEST_UNKNOWN");
  // Repeated Accept headers count together.
  call_options two;
  two.headers = {{"Accept", docker_manifest}, {"Accept", oci_manifest}};
  CHECK(f("GET", "/v2/r/manifests/oci", two).status == 200);

  // A Docker schema 2 manifest keeps its own media type.
  const std::string config = R"({"architecture":"amd64"})";
  const digest c = f.push_blob("r", config);
  const json docker = {{"schemaVersion", 2},
                       {"mediaType", docker_manifest},
                       {"config",
                        {{"mediaType", "application/vnd.docker.container.image.v1+json"},
                         {"digest", c.str()},
                         {"size", config.size()}}},
                       {"layers", json::array()}};
  REQUIRE(f.push_manifest("r", "docker", docker.dump(), docker_manifest).status == 201);
  const reply got = f("GET", "/v2/r/manifests/docker", accept(oci_manifest + std::string(", ") + docker_manifest));
  CHECK(got.status == 200);
  CHECK(got.content_type == docker_manifest);
  CHECK(got.body == docker.dump());
}

TEST_CASE("an index is accepted once its manifests are in the repository", "[local][manifests][index]") {
  local_fixture f;
  const std::string amd = pushed_image(f, "multi", "amd64");
  const std::string arm = pushed_image(f, "multi", "arm64");
  const json index = {{"schemaVersion", 2},
                      {"mediaType", oci_index},
                      {"manifests",
                       {{{"mediaType", oci_manifest},
                         {"digest", digest_of(amd).str()},
                         {"size", amd.size()},
                         {"platform", {{"architecture", "amd64"}, {"os", "linux"}}}},
                        {{"mediaType", oci_manifest},
                         {"digest", digest_of(arm).str()},
                         {"size", arm.size()},
                         {"platform", {{"architecture", "arm64"}, {"os", "linux"}}}}}}};
  CHECK(f.push_manifest("multi", "latest", index.dump(), oci_index).error_code() == "MANIFEST_BLOB_UNKNOWN");
  REQUIRE(f.push_manifest("multi", digest_of(amd).str(), amd).status == 201);
  REQUIRE(f.push_manifest("multi", digest_of(arm).str(), arm).status == 201);
  REQUIRE(f.push_manifest("multi", "latest", index.dump(), oci_index).status == 201);
  const reply got = f("GET", "/v2/multi/manifests/latest", accept(oci_index));
  CHECK(got.status == 200);
  CHECK(got.content_type == oci_index);
  CHECK(f("GET", "/v2/multi/manifests/latest", accept(oci_manifest)).status == 404);
}

TEST_CASE("a manifest with a subject is listed by the referrers API, with an artifactType filter", "[local][referrers]") {
  local_fixture f;
  const std::string image = pushed_image(f, "r", "5");
  const digest subject = digest_of(image);
  const digest empty = f.push_blob("r", "{}");
  const digest sig_layer = f.push_blob("r", "signature");
  auto artifact = [&](const std::string& type, const std::string& note) {
    return json{{"schemaVersion", 2},
                {"mediaType", oci_manifest},
                {"artifactType", type},
                {"config", {{"mediaType", "application/vnd.oci.empty.v1+json"}, {"digest", empty.str()}, {"size", 2}}},
                {"layers", {{{"mediaType", "application/octet-stream"}, {"digest", sig_layer.str()}, {"size", 9}}}},
                {"subject", {{"mediaType", oci_manifest}, {"digest", subject.str()}, {"size", image.size()}}},
                {"annotations", {{"note", note}}}}
        .dump();
  };
  // Referrers may arrive before their subject.
  const std::string sig = artifact("application/vnd.example.signature", "sig");
  const reply put = f.push_manifest("r", digest_of(sig).str(), sig);
  REQUIRE(put.status == 201);
  CHECK(put.header("OCI-Subject") == subject.str());
  REQUIRE(f.push_manifest("r", "v1", image).status == 201);
  const std::string sbom = artifact("application/vnd.example.sbom", "sbom");
  REQUIRE(f.push_manifest("r", digest_of(sbom).str(), sbom).status == 201);

  reply r = f("GET", "/v2/r/referrers/" + subject.str());
  REQUIRE(r.status == 200);
  CHECK(r.content_type == oci_index);
  CHECK_FALSE(r.has_header("OCI-Filters-Applied"));
  json list = r.json();
  CHECK(list["schemaVersion"] == 2);
  CHECK(list["mediaType"] == oci_index);
  REQUIRE(list["manifests"].size() == 2);
  for (const auto& m : list["manifests"]) {
    CHECK(m["mediaType"] == oci_manifest);
    CHECK((m["digest"] == digest_of(sig).str() || m["digest"] == digest_of(sbom).str()));
    CHECK(m["annotations"].contains("note"));
  }

  r = f("GET", "/v2/r/referrers/" + subject.str() + "?artifactType=application%2Fvnd.example.sbom");
  CHECK(r.header("OCI-Filters-Applied") == "artifactType");
  list = r.json();
  REQUIRE(list["manifests"].size() == 1);
  CHECK(list["manifests"][0]["digest"] == digest_of(sbom).str());
  CHECK(list["manifests"][0]["artifactType"] == "application/vnd.example.sbom");
  CHECK(list["manifests"][0]["size"] == sbom.size());

  // Unknown subjects and unknown repositories: an empty index, 200.
  r = f("GET", "/v2/r/referrers/" + digest_of("nothing").str());
  CHECK(r.status == 200);
  CHECK(r.json()["manifests"].empty());
  CHECK(f("GET", "/v2/never/pushed/referrers/" + subject.str()).status == 200);
  CHECK(f("GET", "/v2/r/referrers/sha256:nope").error_code() == "DIGEST_INVALID");

  // Deleting a referrer takes it out of the list.
  REQUIRE(f("DELETE", "/v2/r/manifests/" + digest_of(sig).str()).status == 202);
  CHECK(f("GET", "/v2/r/referrers/" + subject.str()).json()["manifests"].size() == 1);
}

TEST_CASE("deleting a tag or a manifest takes effect at once", "[local][manifests][delete]") {
  local_fixture f;
  const std::string m = pushed_image(f, "r", "6");
  const digest d = digest_of(m);
  REQUIRE(f.push_manifest("r", "a", m).status == 201);
  REQUIRE(f.push_manifest("r", "b", m).status == 201);
  CHECK(f("DELETE", "/v2/r/manifests/a").status == 202);
  CHECK(f("HEAD", "/v2/r/manifests/a").status == 404);
  CHECK(f("DELETE", "/v2/r/manifests/a").error_code() == "MANIFEST_UNKNOWN");
  CHECK(f("HEAD", "/v2/r/manifests/b").status == 200);
  CHECK(f("DELETE", "/v2/r/manifests/" + d.str()).status == 202);
  CHECK(f("HEAD", "/v2/r/manifests/" + d.str()).status == 404);
  CHECK(f("HEAD", "/v2/r/manifests/b").status == 404);
  CHECK(f("GET", "/v2/r/tags/list").json()["tags"].empty());
  CHECK(f("DELETE", "/v2/r/manifests/" + d.str()).status == 404);
  call_options pusher;
  pusher.access = REGISTRYD_ACCESS_PULL | REGISTRYD_ACCESS_PUSH;
  CHECK(f("DELETE", "/v2/r/manifests/b", pusher).status == 403);
}

TEST_CASE("tags and the catalog are listed in order, page by page, with a Link to the next page", "[local][listing]") {
  local_fixture f;
  const std::string m = pushed_image(f, "deckhouse/ce", "7");
  for (const char* t : {"v1.2", "alpha", "v1.10", "beta", "latest"}) REQUIRE(f.push_manifest("deckhouse/ce", t, m).status == 201);
  reply r = f("GET", "/v2/deckhouse/ce/tags/list");
  CHECK(r.status == 200);
  CHECK(r.json() == json{{"name", "deckhouse/ce"}, {"tags", {"alpha", "beta", "latest", "v1.10", "v1.2"}}});
  CHECK_FALSE(r.has_header("Link"));

  r = f("GET", "/v2/deckhouse/ce/tags/list?n=2");
  CHECK(r.json()["tags"] == json{"alpha", "beta"});
  CHECK(r.header("Link") == "</v2/deckhouse/ce/tags/list?n=2&last=beta>; rel=\"next\"");
  r = f("GET", "/v2/deckhouse/ce/tags/list?n=2&last=beta");
  CHECK(r.json()["tags"] == json{"latest", "v1.10"});
  r = f("GET", "/v2/deckhouse/ce/tags/list?n=2&last=v1.10");
  CHECK(r.json()["tags"] == json{"v1.2"});
  CHECK_FALSE(r.has_header("Link"));
  CHECK(f("GET", "/v2/deckhouse/ce/tags/list?n=0").json()["tags"].empty());
  CHECK(f("GET", "/v2/deckhouse/ce/tags/list?n=x").status == 400);
  CHECK(f("GET", "/v2/unknown/tags/list").error_code() == "NAME_UNKNOWN");

  for (const char* repo : {"b/one", "a", "c"}) f.push_blob(repo, "x");
  r = f("GET", "/v2/_catalog?n=2");
  CHECK(r.json()["repositories"] == json{"a", "b/one"});
  CHECK(r.header("Link") == "</v2/_catalog?n=2&last=b/one>; rel=\"next\"");
  r = f("GET", "/v2/_catalog?n=2&last=b%2Fone");
  CHECK(r.json()["repositories"] == json{"c", "deckhouse/ce"});
  CHECK(f("GET", "/v2/_catalog").json()["repositories"].size() == 4);
}

TEST_CASE("a conditional GET of an unchanged manifest is answered 304", "[local][manifests]") {
  local_fixture f;
  const std::string m = pushed_image(f, "r", "8");
  REQUIRE(f.push_manifest("r", "t", m).status == 201);
  call_options o;
  o.headers = {{"If-None-Match", "\"" + digest_of(m).str() + "\""}};
  CHECK(f("GET", "/v2/r/manifests/t", o).status == 304);
}

TEST_CASE("bytes that are not UTF-8 in a name, tag, digest or upload id get the spec's 400s as JSON, never a 500",
          "[local][manifests][utf8]") {
  local_fixture f;
  const std::string ff = "\xff";
  auto check = [&](const std::string& method, const std::string& target, int status, const std::string& code) {
    INFO(method << " " << target);
    const reply r = f(method, target);
    CHECK(r.status == status);
    CHECK(r.error_code() == code);  // the body parses as JSON
  };
  check("GET", "/v2/" + ff + "/tags/list", 400, "NAME_INVALID");
  check("GET", "/v2/a" + ff + "b/manifests/latest", 400, "NAME_INVALID");
  check("GET", "/v2/r/manifests/" + ff, 400, "TAG_INVALID");
  check("PUT", "/v2/r/manifests/" + ff, 400, "TAG_INVALID");
  check("DELETE", "/v2/r/manifests/" + ff, 400, "TAG_INVALID");
  check("GET", "/v2/r/manifests/sha256:" + ff, 400, "DIGEST_INVALID");
  check("GET", "/v2/r/blobs/sha256:" + ff, 400, "DIGEST_INVALID");
  check("GET", "/v2/r/blobs/uploads/" + ff, 404, "BLOB_UPLOAD_UNKNOWN");
}
