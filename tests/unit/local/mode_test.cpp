#include "local_test_support.hpp"

#include <catch2/catch.hpp>

#include <dlfcn.h>
#include <fstream>

using nlohmann::json;
using registryd::test::local_fixture;
using registryd::test::local_settings;
using registryd::test::scratch_dir;

TEST_CASE("Local settings need the Local mode and a data directory", "[local][settings]") {
  scratch_dir dir;
  CHECK_NOTHROW(registryd::local::parse_settings(local_settings(dir.path())));
  json doc = local_settings(dir.path());
  doc["mode"] = "Proxy";
  CHECK_THROWS_WITH(registryd::local::parse_settings(doc), Catch::Contains("\"Proxy\" given to the Local plugin"));
  doc = local_settings(dir.path());
  doc["host"].erase("dataDir");
  CHECK_THROWS_WITH(registryd::local::parse_settings(doc), Catch::Contains("host.dataDir: is required"));
  doc = local_settings(dir.path());
  doc["section"] = {{"imagesRepo", "x"}};
  CHECK_THROWS_WITH(registryd::local::parse_settings(doc), Catch::Contains("Local mode has no settings section"));
  const auto s = registryd::local::parse_settings(local_settings(dir.path()));
  CHECK(s.data_dir == dir.path());
  CHECK(s.fixed_host == "registry.d8-system.svc:5001");
}

TEST_CASE("containerd mirrors the fixed address to the node balancer over HTTPS with the registry CA", "[local][containerd]") {
  local_fixture f;
  const std::string pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
  std::ofstream(f.dir.path() / "ca.crt") << pem;
  const auto desc = f.mode.containerd_config();
  REQUIRE(desc);
  CHECK((*desc)["hosts"].size() == 1);
  const auto& host = (*desc)["hosts"][0];
  CHECK(host["host"] == "registry.d8-system.svc:5001");
  REQUIRE(host["mirrors"].size() == 1);
  CHECK(host["mirrors"][0]["url"] == "https://127.0.0.1:5001");
  CHECK(host["mirrors"][0]["capabilities"] == json{"pull", "resolve"});
  CHECK(host["mirrors"][0]["ca"] == pem);
  // No CA file yet (the host writes it when it first serves TLS): described without one.
  std::filesystem::remove(f.dir.path() / "ca.crt");
  CHECK_FALSE(f.mode.containerd_config().value()["hosts"][0]["mirrors"][0].contains("ca"));
}

TEST_CASE("the Local storage is laid out under host.dataDir and reported in metrics", "[local][metrics]") {
  local_fixture f;
  f.push_blob("r", "metric me");
  const std::string loc = f("POST", "/v2/r/blobs/uploads/").header("Location");
  f.mode.refresh_stats();
  std::string text;
  f.mode.metrics(text);
  CHECK(text.find("registryd_local_blobs 1\n") != std::string::npos);
  CHECK(text.find("registryd_local_blob_bytes 9\n") != std::string::npos);
  CHECK(text.find("registryd_local_repositories 1\n") != std::string::npos);
  CHECK(text.find("registryd_local_uploads_in_progress 1\n") != std::string::npos);
  CHECK(text.find("registryd_local_blobs_pushed_total 1\n") != std::string::npos);
  CHECK(std::filesystem::is_directory(f.dir.path() / "blobs" / "sha256"));
  CHECK(std::filesystem::is_directory(f.dir.path() / "repositories" / "r" / "_layers"));
  CHECK(f.mode.health().empty());
}

TEST_CASE("local.so loads through the C boundary and answers a request", "[local][abi]") {
  void* handle = ::dlopen(REGISTRYD_LOCAL_SO, RTLD_NOW | RTLD_LOCAL);
  INFO((handle == nullptr ? ::dlerror() : ""));
  REQUIRE(handle != nullptr);
  auto entry = reinterpret_cast<registryd_plugin_entry_fn>(::dlsym(handle, REGISTRYD_PLUGIN_ENTRY_SYMBOL));
  REQUIRE(entry != nullptr);
  const registryd_plugin_api& api = *entry();
  CHECK(std::string(api.name.data, api.name.size) == "Local");
  scratch_dir dir;
  const std::string settings = local_settings(dir.path()).dump();
  std::string error;
  registryd_sink err{&error, [](void* c, registryd_str t) { static_cast<std::string*>(c)->append(t.data, t.size); }};
  CHECK(api.validate_settings({settings.data(), settings.size()}, err) == REGISTRYD_OK);
  const std::string wrong = R"({"mode":"Local","host":{}})";
  CHECK(api.validate_settings({wrong.data(), wrong.size()}, err) == REGISTRYD_ERR_INVALID_ARGUMENT);
  CHECK(error.find("host.dataDir") != std::string::npos);

  std::string logs;
  registryd_host_api host{REGISTRYD_PLUGIN_ABI_MAJOR, REGISTRYD_PLUGIN_ABI_MINOR, sizeof(registryd_host_api), &logs,
                          [](void* c, registryd_log_level, registryd_str m) {
                            static_cast<std::string*>(c)->append(m.data, m.size);
                          }};
  registryd_plugin* plugin = nullptr;
  REQUIRE(api.create(&host, {settings.data(), settings.size()}, &plugin, err) == REGISTRYD_OK);
  REQUIRE(api.start(plugin, err) == REGISTRYD_OK);
  api.stop(plugin);
  api.destroy(plugin);
  CHECK(std::filesystem::is_directory(dir.path() / "blobs"));
  ::dlclose(handle);
}
