#include "settings.hpp"
#include "unmanaged_mode.hpp"

#include <registryd/containerd/render.hpp>

#include <catch2/catch.hpp>
#include <toml++/toml.h>

using namespace registryd::unmanaged;
using nlohmann::json;

namespace {

json document(const json& section) {
  return {{"mode", "Unmanaged"},
          {"legacy", false},
          {"section", section},
          {"host", {{"fixedHost", "registry.d8-system.svc:5001"}, {"fixedRepository", "system/deckhouse"}}}};
}

const char* const test_pem =
    "-----BEGIN CERTIFICATE-----\n"
    "MIIBkjCCATmgAwIBAgIUCEn45pCwMAcX2B3v7dxXZLSVxMAwCgYIKoZIzj0EAwIw\n"
    "-----END CERTIFICATE-----\n";

std::string error_of(const json& doc) {
  try {
    (void)parse_settings(doc);
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  FAIL("settings were accepted: " << doc.dump());
  return {};
}

}  // namespace

TEST_CASE("a full Unmanaged settings document is parsed", "[unmanaged]") {
  const auto s = parse_settings(document({{"imagesRepo", "registry.example.com:5000/deckhouse/ee"},
                                          {"scheme", "HTTP"},
                                          {"username", "u"},
                                          {"password", "p"},
                                          {"checkMode", "Relax"}}));
  CHECK(s.images_repo == "registry.example.com:5000/deckhouse/ee");
  CHECK(s.registry_host() == "registry.example.com:5000");
  CHECK(s.url_scheme() == "http");
  CHECK(s.username == "u");
  CHECK(s.check_mode == "Relax");
  CHECK(s.fixed_host == "registry.d8-system.svc:5001");
  CHECK_FALSE(s.legacy);
}

TEST_CASE("Unmanaged settings default to HTTPS without credentials", "[unmanaged]") {
  const auto s = parse_settings(document({{"imagesRepo", "registry.deckhouse.io/deckhouse/ce"}}));
  CHECK(s.scheme == "HTTPS");
  CHECK(s.url_scheme() == "https");
  CHECK_FALSE(s.username);
  CHECK_FALSE(s.ca);
}

TEST_CASE("malformed Unmanaged settings are refused naming the field", "[unmanaged]") {
  struct bad_case {
    json doc;
    const char* expected;
  };
  const json repo = {{"imagesRepo", "r.example.com/x"}};
  json with_ttl = repo;
  with_ttl["ttl"] = "72h";
  json wrong_scheme = repo;
  wrong_scheme["scheme"] = "FTP";
  json half_creds = repo;
  half_creds["username"] = "u";
  json bad_ca = repo;
  bad_ca["ca"] = "not a certificate";
  json extra = repo;
  extra["imagesrepo"] = "typo";
  const std::vector<bad_case> cases = {
      {json::array(), "$: must be a JSON object"},
      {{{"section", repo}}, "mode: is required"},
      {{{"mode", "Proxy"}, {"section", repo}}, "mode: \"Proxy\" given to the Unmanaged plugin"},
      {{{"mode", "Unmanaged"}}, "section: is required"},
      {{{"mode", "Unmanaged"}, {"section", "x"}}, "section: must be an object"},
      {document(json::object()), "section.imagesRepo: is required"},
      {document({{"imagesRepo", 5}}), "section.imagesRepo: must be a string"},
      {document({{"imagesRepo", "https://r.example.com/x"}}), "section.imagesRepo: \"https://r.example.com/x\" is not a repository"},
      {document({{"imagesRepo", "r.example.com/a b"}}), "section.imagesRepo"},
      {document({{"imagesRepo", "r.example.com:123456/x"}}), "section.imagesRepo"},
      {document({{"imagesRepo", "r.example.com:99999/x"}}), "port 99999 is out of range"},
      {document({{"imagesRepo", "r.example.com//x"}}), "section.imagesRepo"},
      {document({{"imagesRepo", "../x"}}), "section.imagesRepo"},
      {document(with_ttl), "section.ttl: is a Proxy mode setting"},
      {document(wrong_scheme), "section.scheme: \"FTP\" is not one of HTTP, HTTPS"},
      {document(half_creds), "section.password: username and password must be given together"},
      {document(bad_ca), "section.ca: is not a PEM certificate"},
      {document(extra), "section.imagesrepo: unknown field"},
  };
  for (const auto& c : cases) {
    INFO(c.doc.dump());
    const std::string err = error_of(c.doc);
    CHECK_THAT(err, Catch::Contains(c.expected));
    CHECK_THAT(err, Catch::StartsWith("invalid Unmanaged settings: "));
  }
}

TEST_CASE("repositories the ModuleConfig pattern allows are accepted", "[unmanaged]") {
  for (const char* r : {"registry.deckhouse.io/deckhouse/ce", "127.0.0.1:5000/deckhouse/ce", "localhost",
                        "r-1.example.com:443/a_b/c.d/e-f"}) {
    INFO(r);
    CHECK(parse_settings(document({{"imagesRepo", r}})).images_repo == r);
  }
}

TEST_CASE("the HTTPS description names the upstream host with its CA and credentials",
          "[unmanaged]") {
  const auto s = parse_settings(document({{"imagesRepo", "registry.example.com:5000/deckhouse/ee"},
                                          {"username", "license-token"},
                                          {"password", "s3cr\"et"},
                                          {"ca", test_pem}}));
  const auto d = describe_containerd(s);
  REQUIRE(d);
  REQUIRE((*d)["hosts"].size() == 1);  // the upstream only: no entry for the fixed address
  const auto& h = (*d)["hosts"][0];
  CHECK(h["host"] == "registry.example.com:5000");
  CHECK(h["server"] == "https://registry.example.com:5000");
  REQUIRE(h["mirrors"].size() == 1);
  const auto& m = h["mirrors"][0];
  CHECK(m["url"] == "https://registry.example.com:5000");
  CHECK(m["capabilities"] == json({"pull", "resolve"}));
  CHECK(m["ca"] == test_pem);
  CHECK_FALSE(m.contains("skipVerify"));
  CHECK(m["auth"] == json({{"username", "license-token"}, {"password", "s3cr\"et"}}));
}

TEST_CASE("the HTTP description skips TLS verification and carries no CA", "[unmanaged]") {
  const auto s = parse_settings(
      document({{"imagesRepo", "127.0.0.1:5000/deckhouse/ce"}, {"scheme", "HTTP"}, {"ca", test_pem}}));
  const auto d = describe_containerd(s);
  REQUIRE(d);
  const auto& m = (*d)["hosts"][0]["mirrors"][0];
  CHECK(m["url"] == "http://127.0.0.1:5000");
  CHECK(m["skipVerify"] == true);
  CHECK_FALSE(m.contains("ca"));
  CHECK_FALSE(m.contains("auth"));
}

TEST_CASE("the legacy Unmanaged mode describes no containerd configuration", "[unmanaged]") {
  json doc = document({{"imagesRepo", "registry.deckhouse.io/deckhouse/ce"}});
  doc["legacy"] = true;
  CHECK_FALSE(describe_containerd(parse_settings(doc)).has_value());
}

TEST_CASE("the host renders the Unmanaged description into a hosts.toml for the upstream",
          "[unmanaged]") {
  const auto s = parse_settings(document({{"imagesRepo", "127.0.0.1:5000/deckhouse/ce"}, {"scheme", "HTTP"},
                                          {"username", "u"}, {"password", "p"}}));
  const auto tree = registryd::containerd::render_files(*describe_containerd(s), "/etc/containerd");
  INFO(((tree).ok() ? std::string() : (tree).error_message()));
  REQUIRE(tree.ok());
  CHECK(tree->hosts == std::vector<std::string>{"127.0.0.1:5000"});
  const auto& f = tree->files.at(0);
  CHECK(f.path == "registry.d/127.0.0.1:5000/hosts.toml");
  const toml::table t = toml::parse(f.content);
  CHECK(t["server"].value<std::string>() == "http://127.0.0.1:5000");
  CHECK(t["host"]["http://127.0.0.1:5000"]["skip_verify"].value<bool>() == true);
  CHECK(t["host"]["http://127.0.0.1:5000"]["auth"]["username"].value<std::string>() == "u");
}
