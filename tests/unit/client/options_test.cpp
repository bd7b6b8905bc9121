#include <registryd/oci/client/options.hpp>

#include <catch2/catch.hpp>

using namespace registryd::oci::client;

TEST_CASE("a settings section gives the registry, scheme, credentials and CA", "[client][options]") {
  const auto u = upstream_from_section(nlohmann::json::parse(R"({
    "imagesRepo": "registry.example.com:5000/deckhouse/ee", "scheme": "HTTP",
    "username": "u", "password": "p", "ca": "PEM", "checkMode": "Relax"})"));
  CHECK(u.images_repo.registry == "registry.example.com:5000");
  CHECK(u.images_repo.path == "deckhouse/ee");
  CHECK(u.options.registry == "registry.example.com:5000");
  CHECK(u.options.url_scheme == scheme::http);
  CHECK(u.options.base_url() == "http://registry.example.com:5000");
  REQUIRE(u.options.auth);
  CHECK(u.options.auth->username == "u");
  CHECK(u.options.auth->password == "p");
  CHECK(u.options.ca_pem == "PEM");
  CHECK(u.check_mode == "Relax");
}

TEST_CASE("defaults: HTTPS, anonymous, system CAs, Default check", "[client][options]") {
  const auto u = upstream_from_section(nlohmann::json::parse(R"({"imagesRepo": "r.example/x"})"));
  CHECK(u.options.url_scheme == scheme::https);
  CHECK_FALSE(u.options.auth);
  CHECK(u.options.ca_pem.empty());
  CHECK(u.check_mode == "Default");
  CHECK(u.options.base_url() == "https://r.example");
}

TEST_CASE("a license means the user license-token", "[client][options]") {
  const auto u = upstream_from_section(nlohmann::json::parse(R"({"imagesRepo": "r.example/x", "license": "KEY"})"));
  REQUIRE(u.options.auth);
  CHECK(u.options.auth->username == "license-token");
  CHECK(u.options.auth->password == "KEY");
}

TEST_CASE("unusable sections are refused naming the field", "[client][options]") {
  auto refused = [](const char* json, const char* field) {
    INFO(json);
    try {
      (void)upstream_from_section(nlohmann::json::parse(json));
      FAIL("accepted");
    } catch (const std::invalid_argument& e) {
      CHECK_THAT(e.what(), Catch::Contains(field));
    }
  };
  refused(R"({})", "imagesRepo");
  refused(R"({"imagesRepo": ""})", "imagesRepo");
  refused(R"({"imagesRepo": "/x"})", "imagesRepo");
  refused(R"({"imagesRepo": "r/x", "scheme": "FTP"})", "scheme");
  refused(R"({"imagesRepo": "r/x", "password": "p"})", "username");
  refused(R"({"imagesRepo": "r/x", "ca": 5})", "ca");
  refused(R"({"imagesRepo": "r/x", "checkMode": "Lax"})", "checkMode");
  refused(R"([])", "object");
}
