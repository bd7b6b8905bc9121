#include "local_test_support.hpp"

#include <catch2/catch.hpp>

#include <dlfcn.h>
#include <fstream>
#include <thread>

using nlohmann::json;
using registryd::test::local_fixture;
using registryd::test::local_settings;
using registryd::test::scratch_dir;
using registryd::test::call;

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

TEST_CASE("the Local mode collects garbage on its own schedule and keeps what a tag reaches", "[local][gc]") {
  scratch_dir dir;
  registryd::test::log_capture log;
  const std::string& logs = log.logs;
  json doc = local_settings(dir.path());
  doc["host"]["gcIntervalSeconds"] = 1;
  doc["host"]["gcGraceSeconds"] = 0;
  registryd::local::local_mode mode(log.host(), doc);
  mode.start();
  registryd::test::call_options body;
  auto push = [&](const std::string& content) {
    body.body = content;
    const auto d = registryd::oci::digest_of(content);
    REQUIRE(call(mode, "POST", "/v2/app/blobs/uploads/?digest=" + d.str(), body).status == 201);
    return d;
  };
  const std::string config = "{\"architecture\":\"amd64\",\"os\":\"linux\"}";
  const auto c = push(config);
  const auto l = push("kept layer");
  const auto orphan = push("nobody references me");
  body.body = registryd::test::image_manifest(c, config.size(), {{l, 10}});
  body.headers = {{"Content-Type", "application/vnd.oci.image.manifest.v1+json"}};
  REQUIRE(call(mode, "PUT", "/v2/app/manifests/v1", body).status == 201);

  std::string text;
  for (int i = 0; i < 100 && text.find("registryd_local_gc_blobs_deleted_total 1\n") == std::string::npos; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    text.clear();
    mode.metrics(text);
  }
  mode.stop();
  INFO(logs);
  CHECK_THAT(text, Catch::Contains("registryd_local_gc_blobs_deleted_total 1\n"));
  CHECK_THAT(logs, Catch::Contains("garbage collection every 1 s, grace 0 s"));
  CHECK_THAT(logs, Catch::Contains("garbage collection done: deleted 1 blob"));
  mode.start();
  CHECK(call(mode, "HEAD", "/v2/app/blobs/" + orphan.str()).status == 404);
  CHECK(call(mode, "HEAD", "/v2/app/blobs/" + l.str()).status == 200);
  CHECK(call(mode, "HEAD", "/v2/app/blobs/" + c.str()).status == 200);
  CHECK(call(mode, "GET", "/v2/app/manifests/v1").status == 200);
  mode.stop();
}

TEST_CASE("Local garbage collection settings are whole seconds, 0 or more", "[local][gc][settings]") {
  scratch_dir dir;
  json doc = local_settings(dir.path());
  auto s = registryd::local::parse_settings(doc);
  CHECK(s.gc_interval == std::chrono::hours(1));
  CHECK(s.gc_grace == std::chrono::hours(1));
  doc["host"]["gcIntervalSeconds"] = 0;
  CHECK(registryd::local::parse_settings(doc).gc_interval.count() == 0);
  doc["host"]["gcIntervalSeconds"] = -5;
  CHECK_THROWS_WITH(registryd::local::parse_settings(doc), Catch::Contains("host.gcIntervalSeconds"));
  doc["host"]["gcIntervalSeconds"] = 60;
  doc["host"]["gcGraceSeconds"] = "1h";
  CHECK_THROWS_WITH(registryd::local::parse_settings(doc), Catch::Contains("host.gcGraceSeconds"));
}
