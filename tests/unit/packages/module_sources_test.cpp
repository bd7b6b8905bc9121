// ModuleSource documents (plugins/packages-proxy/src/module_sources.hpp), the packages proxy's
// settings document, and the SDK pieces they use: base64 and docker config credentials.
#include "module_sources.hpp"
#include "settings.hpp"

#include <registryd/oci/base64.hpp>
#include <registryd/oci/client/docker_config.hpp>

#include <test_support.hpp>

#include <fstream>
#include <thread>

using namespace registryd;
using namespace registryd::packages;
using registryd::test::scratch_dir;

namespace {

std::string docker_cfg(const std::string& host, const std::string& user, const std::string& password) {
  const std::string json = R"({"auths":{")" + host + R"(":{"auth":")" + oci::base64_encode(user + ":" + password) + R"("}}})";
  return oci::base64_encode(json);
}

std::string source_yaml(const std::string& name, const std::string& repo, const std::string& extra = "") {
  return "apiVersion: deckhouse.io/v1alpha1\nkind: ModuleSource\nmetadata:\n  name: " + name +
         "\nspec:\n  registry:\n    repo: " + repo + "\n" + extra;
}

void write(const std::filesystem::path& p, const std::string& text) { std::ofstream(p) << text; }

}  // namespace

TEST_CASE("base64 round-trips and refuses malformed text", "[packages][base64]") {
  CHECK(oci::base64_encode("user:pass") == "dXNlcjpwYXNz");
  CHECK(oci::base64_decode("dXNlcjpwYXNz") == "user:pass");
  CHECK(oci::base64_decode("YQ") == "a");  // unpadded
  CHECK(oci::base64_decode("YQ==") == "a");
  CHECK(oci::base64_decode("Y=Q=") == std::nullopt);
  CHECK(oci::base64_decode("YQ=") == std::nullopt);
  CHECK(oci::base64_decode("Y") == std::nullopt);
  CHECK(oci::base64_decode("YQ== ") == std::nullopt);
  CHECK(oci::base64_decode("") == std::nullopt);
}

TEST_CASE("docker config credentials for a registry", "[packages][docker-config]") {
  const auto config = nlohmann::json::parse(R"({"auths": {
      "https://reg.example.com/v1/": {"auth": ")" + oci::base64_encode("u1:p:1") + R"("},
      "other.example.com:5000": {"username": "u2", "password": "p2"},
      "broken.example.com": {"auth": "bm9jb2xvbg=="},
      "store.example.com": {},
      "half.example.com": {"password": "p"}}})");
  const auto a = oci::client::docker_config_credentials(config, "reg.example.com");
  REQUIRE(a);
  CHECK(a->username == "u1");
  CHECK(a->password == "p:1");  // only the first ':' splits
  const auto b = oci::client::docker_config_credentials(config, "other.example.com:5000");
  REQUIRE(b);
  CHECK(b->username == "u2");
  CHECK(oci::client::docker_config_credentials(config, "none.example.com") == std::nullopt);
  // docker login with a credsStore leaves an empty entry: no credentials here, not an error.
  CHECK(oci::client::docker_config_credentials(config, "store.example.com") == std::nullopt);
  CHECK_THROWS_WITH(oci::client::docker_config_credentials(config, "half.example.com"),
                    Catch::Contains("has a password but no username"));
  CHECK_THROWS_WITH(oci::client::docker_config_credentials(config, "broken.example.com"),
                    Catch::Contains("auth must be base64 of \"user:password\""));
  CHECK_THROWS_WITH(oci::client::docker_config_credentials(nlohmann::json::parse(R"({"auths": []})"), "x"),
                    Catch::Contains("auths must be an object"));
}

TEST_CASE("ModuleSource documents: fields, credentials, errors with their place", "[packages][module-sources]") {
  const auto list = parse_module_sources(
      source_yaml("a", "reg.example.com:5000/modules",
                  "    scheme: HTTP\n    dockerCfg: " + docker_cfg("reg.example.com:5000", "bob", "secret") + "\n") +
          "---\nkind: ConfigMap\nmetadata: {name: other}\n---\n" + source_yaml("b", "reg2.example.com/x"),
      "f.yaml");
  REQUIRE(list.size() == 2);
  CHECK(list[0].name == "a");
  CHECK(list[0].repo.registry == "reg.example.com:5000");
  CHECK(list[0].repo.path == "modules");
  CHECK(list[0].client.url_scheme == oci::client::scheme::http);
  REQUIRE(list[0].client.auth);
  CHECK(list[0].client.auth->username == "bob");
  CHECK(list[0].client.auth->password == "secret");
  CHECK(list[1].client.url_scheme == oci::client::scheme::https);
  CHECK_FALSE(list[1].client.auth);

  CHECK_THROWS_WITH(parse_module_sources(source_yaml("c", "no-path"), "g.yaml"),
                    Catch::Contains("g.yaml (c): spec.registry.repo") && Catch::Contains("host[:port]/path"));
  CHECK_THROWS_WITH(parse_module_sources(source_yaml("d", "r.example.com/x", "    scheme: FTP\n"), "h.yaml"),
                    Catch::Contains("h.yaml (d): spec.registry.scheme must be HTTP or HTTPS"));
  CHECK_THROWS_WITH(parse_module_sources(source_yaml("e", "r.example.com/x", "    dockerCfg: '%%%'\n"), "i.yaml"),
                    Catch::Contains("dockerCfg is not base64"));
  CHECK_THROWS_WITH(parse_module_sources("kind: ModuleSource\nspec: {}\n", "j.yaml"),
                    Catch::Contains("j.yaml: spec.registry is required"));
}

TEST_CASE("the sources directory: longest prefix wins, changes apply, a broken file keeps the last good",
          "[packages][module-sources]") {
  scratch_dir dir;
  write(dir / "a.yaml", source_yaml("a", "reg.example.com/modules"));
  write(dir / "b.yaml", source_yaml("b", "reg.example.com/modules/special"));
  module_sources sources(dir.path());
  REQUIRE(sources.refresh());
  CHECK(sources.size() == 2);
  CHECK(sources.match(*oci::repository_location::parse("reg.example.com/modules/m1"))->name == "a");
  CHECK(sources.match(*oci::repository_location::parse("reg.example.com/modules/special/m"))->name == "b");
  CHECK(sources.match(*oci::repository_location::parse("reg.example.com/modulesx")) == std::nullopt);
  CHECK(sources.match(*oci::repository_location::parse("other.example.com/modules")) == std::nullopt);
  CHECK_FALSE(sources.refresh());  // nothing changed

  // A broken edit is reported; the source keeps working as it was.
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  write(dir / "a.yaml", "kind: ModuleSource\nspec: [\n");
  REQUIRE(sources.refresh());
  REQUIRE(sources.errors().size() == 1);
  CHECK(sources.errors()[0].find("a.yaml") != std::string::npos);
  CHECK(sources.match(*oci::repository_location::parse("reg.example.com/modules/m1"))->name == "a");

  // Removing the files removes the sources.
  std::filesystem::remove(dir / "a.yaml");
  std::filesystem::remove(dir / "b.yaml");
  REQUIRE(sources.refresh());
  CHECK(sources.size() == 0);
}

TEST_CASE("the settings document: the default repository follows the mode", "[packages][settings]") {
  const nlohmann::json host = {{"dataDir", "/data"}};
  const auto direct = parse_settings({{"mode", "Direct"},
                                      {"section", {{"imagesRepo", "reg.example.com/deckhouse/ee"}, {"scheme", "HTTP"}}},
                                      {"host", host}});
  REQUIRE(direct.upstream);
  CHECK(direct.upstream->images_repo.str() == "reg.example.com/deckhouse/ee");
  CHECK(direct.cache_root == "/data/packages");
  CHECK(direct.max_cache_bytes == default_max_cache_bytes);
  CHECK(direct.evict_percent == 80);

  const auto local = parse_settings({{"mode", "Local"}, {"section", nullptr}, {"host", host}});
  REQUIRE(local.local_store);
  CHECK(*local.local_store == "/data");
  CHECK_FALSE(local.upstream);

  CHECK_THROWS_WITH(parse_settings({{"mode", "Direct"}, {"host", host}, {"packages", {{"evictPercent", 0}}}}),
                    Catch::Contains("packages.evictPercent: must be between 1 and 100"));
  CHECK_THROWS_WITH(parse_settings({{"mode", "Direct"}, {"host", host}, {"packages", {{"maxCacheBytes", 0}}}}),
                    Catch::Contains("packages.maxCacheBytes"));
  CHECK_THROWS_WITH(parse_settings({{"mode", "Direct"}, {"section", {{"imagesRepo", ""}}}, {"host", host}}),
                    Catch::Contains("section"));
}
