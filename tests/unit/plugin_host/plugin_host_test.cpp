#include <registryd/plugin_host/plugin_instance.hpp>
#include <registryd/plugin_host/plugin_library.hpp>

#include <catch2/catch.hpp>

#include <cstddef>
#include <nlohmann/json.hpp>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <dlfcn.h>
#include <cstring>
#include <sstream>
#include <string>

using registryd::plugin_host::plugin_instance;
using registryd::plugin_host::plugin_library;

namespace {

std::string fixture(const std::string& name) {
  return std::string(REGISTRYD_FIXTURE_PLUGIN_DIR) + "/" + name;
}

std::string refusal_for(const std::string& name) {
  auto lib = plugin_library::load(fixture(name));
  REQUIRE_FALSE(lib.ok());
  return lib.error_message();
}

std::shared_ptr<spdlog::logger> test_logger(std::ostringstream& out) {
  auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(out);
  return std::make_shared<spdlog::logger>("test", sink);
}

bool library_is_loaded(const std::string& path) {
  void* h = ::dlopen(path.c_str(), RTLD_NOW | RTLD_NOLOAD);
  if (h == nullptr) return false;
  ::dlclose(h);
  return true;
}

// A response writer that records what a plugin answers.
struct recorded_response {
  int status = 200;
  std::string headers;
  std::string body;
  registryd_response_writer writer() {
    registryd_response_writer w{};
    w.struct_size = sizeof w;
    w.ctx = this;
    w.set_status = [](void* c, int s) {
      static_cast<recorded_response*>(c)->status = s;
      return 0;
    };
    w.add_header = [](void* c, registryd_str n, registryd_str v) {
      static_cast<recorded_response*>(c)->headers +=
          std::string(n.data, n.size) + ": " + std::string(v.data, v.size) + "\n";
      return 0;
    };
    w.send_bytes = [](void* c, registryd_str, registryd_str b) {
      static_cast<recorded_response*>(c)->body.assign(b.data, b.size);
      return 0;
    };
    return w;
  }
};

registryd_request make_request(const char* method, const char* path) {
  registryd_request r{};
  r.struct_size = sizeof r;
  r.method = {method, std::strlen(method)};
  r.path = {path, std::strlen(path)};
  return r;
}

}  // namespace

TEST_CASE("the frozen ABI structs keep their layout", "[plugin_host][abi]") {
  // registryd_sink, registryd_stream and registryd_body_reader are frozen for ABI major 1
  // (plugin_abi.h): a field added to one would break every plugin built before it.
  STATIC_REQUIRE(sizeof(registryd_sink) == 2 * sizeof(void*));
  STATIC_REQUIRE(offsetof(registryd_sink, write) == sizeof(void*));
  STATIC_REQUIRE(sizeof(registryd_stream) == 3 * sizeof(void*));
  STATIC_REQUIRE(offsetof(registryd_stream, read) == sizeof(void*));
  STATIC_REQUIRE(offsetof(registryd_stream, close) == 2 * sizeof(void*));
  STATIC_REQUIRE(sizeof(registryd_body_reader) == 3 * sizeof(void*));
  STATIC_REQUIRE(offsetof(registryd_body_reader, content_length) == sizeof(void*));
  STATIC_REQUIRE(offsetof(registryd_body_reader, read) == 2 * sizeof(void*));
  STATIC_REQUIRE(REGISTRYD_PLUGIN_ABI_MAJOR == 1);
}

TEST_CASE("a file that is not a shared object is refused with its name and the reason",
          "[plugin_host]") {
  const auto why = refusal_for("not_a_library.so");
  CHECK_THAT(why, Catch::Contains("not_a_library.so"));
  CHECK_THAT(why, Catch::Contains("not a loadable shared object"));
}

TEST_CASE("a missing file is refused", "[plugin_host]") {
  CHECK_THAT(refusal_for("does_not_exist.so"), Catch::Contains("no such file"));
}

TEST_CASE("a shared object without the entry point is refused as not a plugin",
          "[plugin_host]") {
  const auto why = refusal_for("no_entry.so");
  CHECK_THAT(why, Catch::Contains("no_entry.so"));
  CHECK_THAT(why, Catch::Contains("not a registryd plugin"));
  CHECK_THAT(why, Catch::Contains("registryd_plugin_entry"));
}

TEST_CASE("a plugin with another ABI major version is refused", "[plugin_host]") {
  const auto why = refusal_for("abi_major_mismatch.so");
  CHECK_THAT(why, Catch::Contains("abi_major_mismatch.so"));
  CHECK_THAT(why, Catch::Contains("plugin ABI 2.0 is incompatible"));
  CHECK_THAT(why, Catch::Contains("major versions differ"));
}

TEST_CASE("a plugin built for a newer ABI minor version is refused", "[plugin_host]") {
  const auto why = refusal_for("newer_minor.so");
  CHECK_THAT(why, Catch::Contains("plugin ABI 1.1 is newer than this registryd's ABI 1.0"));
}

TEST_CASE("a plugin missing a required function is refused with the function's name",
          "[plugin_host]") {
  CHECK_THAT(refusal_for("missing_required.so"),
             Catch::Contains("the required function 'handle' is missing"));
}

TEST_CASE("a plugin whose create fails is refused with its own message", "[plugin_host]") {
  std::ostringstream log;
  auto lib = plugin_library::load(fixture("failing_create.so"));
  REQUIRE(lib.ok());
  auto inst = plugin_instance::create(*lib, "{}", test_logger(log));
  REQUIRE_FALSE(inst.ok());
  CHECK_THAT(inst.error_message(), Catch::Contains("failing_create.so (Fixture 0.0.1)"));
  CHECK_THAT(inst.error_message(), Catch::Contains("create failed (invalid argument)"));
  CHECK_THAT(inst.error_message(), Catch::Contains("settings.port must be set"));
}

TEST_CASE("an older plugin's shorter table reads as optional functions not offered",
          "[plugin_host]") {
  std::ostringstream log;
  auto lib = plugin_library::load(fixture("older_shorter_table.so"));
  REQUIRE(lib.ok());
  CHECK((*lib)->api().health == nullptr);
  CHECK((*lib)->api().metrics == nullptr);
  auto inst = plugin_instance::create(*lib, "{}", test_logger(log));
  REQUIRE(inst.ok());
  CHECK((*inst)->health().ok());
  CHECK((*inst)->metrics().empty());
  CHECK((*inst)->describe_containerd().value() == R"({"hosts":[]})");
}

TEST_CASE("a good plugin is created, started and answers through the C++ wrapper",
          "[plugin_host]") {
  std::ostringstream log;
  auto lib = plugin_library::load(fixture("echo.so"));
  REQUIRE(lib.ok());
  CHECK((*lib)->name() == "Echo");
  CHECK((*lib)->version() == "1.2.3");
  auto inst = plugin_instance::create(*lib, R"({"greeting":"hi"})", test_logger(log));
  REQUIRE(inst.ok());
  REQUIRE((*inst)->start().ok());
  CHECK_THAT(log.str(), Catch::Contains("[Echo] echo plugin created"));

  recorded_response rec;
  const auto writer = rec.writer();
  const auto req = make_request("GET", "/v2/some/repo/manifests/latest");
  (*inst)->handle(req, writer);
  CHECK(rec.status == 200);
  const auto body = nlohmann::json::parse(rec.body);
  CHECK(body["greeting"] == "hi");
  CHECK(body["path"] == "/v2/some/repo/manifests/latest");
  CHECK_THAT((*inst)->metrics(), Catch::Contains("registryd_echo_requests_total 1"));
  CHECK((*inst)->health().ok());
}

TEST_CASE("an exception in a plugin's handler becomes a 500 with an OCI error body",
          "[plugin_host]") {
  std::ostringstream log;
  auto inst = plugin_instance::create(*plugin_library::load(fixture("echo.so")), "{}",
                                      test_logger(log));
  REQUIRE(inst.ok());
  recorded_response rec;
  const auto writer = rec.writer();
  (*inst)->handle(make_request("GET", "/v2/x/throw"), writer);
  CHECK(rec.status == 500);
  const auto body = nlohmann::json::parse(rec.body);
  CHECK(body["errors"][0]["code"] == "UNKNOWN");
  CHECK(body["errors"][0]["message"] == "echo plugin was asked to throw");
}

TEST_CASE("plugin statuses thrown from a handler get their HTTP status, and 5xx ones are logged with the plugin's name",
          "[plugin_host]") {
  std::ostringstream log;
  auto inst = plugin_instance::create(*plugin_library::load(fixture("echo.so")), "{}", test_logger(log));
  REQUIRE(inst.ok());
  auto answer = [&](const char* path) {
    recorded_response rec;
    const auto writer = rec.writer();
    (*inst)->handle(make_request("GET", path), writer);
    return rec;
  };
  const auto unavailable = answer("/v2/x/unavailable");
  CHECK(unavailable.status == 503);
  CHECK(nlohmann::json::parse(unavailable.body)["errors"][0]["code"] == "UNAVAILABLE");
  CHECK(answer("/v2/x/invalid").status == 400);
  CHECK(answer("/v2/x/throw").status == 500);
  CHECK_THAT(log.str(), Catch::Contains("[Echo] GET /v2/x/throw failed: echo plugin was asked to throw"));
  CHECK_THAT(log.str(), Catch::Contains("[Echo] GET /v2/x/unavailable failed: the echo upstream is down"));
  CHECK_THAT(log.str(), !Catch::Contains("/v2/x/invalid failed"));  // the client's error, not ours
}

TEST_CASE("exceptions from stop and metrics are logged through the host, with the plugin's name", "[plugin_host]") {
  std::ostringstream log;
  auto lib = plugin_library::load(fixture("echo.so"));
  REQUIRE(lib.ok());
  {
    auto inst = plugin_instance::create(*lib, R"({"greeting":"throw-on-metrics"})", test_logger(log));
    REQUIRE(inst.ok());
    CHECK((*inst)->metrics().empty());
  }
  CHECK_THAT(log.str(), Catch::Contains("[Echo] metrics failed: echo plugin was asked to throw on metrics"));
  auto inst = plugin_instance::create(*lib, R"({"greeting":"throw-on-stop"})", test_logger(log));
  REQUIRE(inst.ok());
  REQUIRE((*inst)->start().ok());
  (*inst)->stop();
  CHECK_THAT(log.str(), Catch::Contains("[Echo] stop failed: echo plugin was asked to throw on stop"));
}

TEST_CASE("a plugin without a settings check has a NULL validate_settings, and the host still refuses non-JSON",
          "[plugin_host]") {
  auto plain = plugin_library::load(fixture("echo_plain.so"));
  REQUIRE(plain.ok());
  CHECK((*plain)->api().validate_settings == nullptr);
  CHECK(plugin_instance::validate_settings(**plain, R"({"greeting":5})").ok());  // create() decides
  const auto bad = plugin_instance::validate_settings(**plain, "not json");
  REQUIRE_FALSE(bad.ok());
  CHECK_THAT(bad.error_message(), Catch::Contains("settings are not valid JSON"));
  auto lib = plugin_library::load(fixture("echo.so"));
  REQUIRE(lib.ok());
  CHECK((*lib)->api().validate_settings != nullptr);
}

TEST_CASE("settings the plugin rejects are reported by validate_settings and create",
          "[plugin_host]") {
  std::ostringstream log;
  auto lib = plugin_library::load(fixture("echo.so"));
  REQUIRE(lib.ok());
  const auto checked = plugin_instance::validate_settings(**lib, R"({"greeting":5})");
  REQUIRE_FALSE(checked.ok());
  CHECK_THAT(checked.error_message(), Catch::Contains("greeting: must be a string"));
  const auto bad_json = plugin_instance::validate_settings(**lib, "{not json");
  REQUIRE_FALSE(bad_json.ok());
  CHECK_THAT(bad_json.error_message(), Catch::Contains("settings are not valid JSON"));
  CHECK_FALSE(plugin_instance::create(*lib, "[", test_logger(log)).ok());
}

TEST_CASE("an unhealthy plugin reports why", "[plugin_host]") {
  std::ostringstream log;
  auto inst = plugin_instance::create(*plugin_library::load(fixture("echo.so")),
                                      R"({"greeting":"unhealthy"})", test_logger(log));
  REQUIRE(inst.ok());
  const auto h = (*inst)->health();
  REQUIRE_FALSE(h.ok());
  CHECK(h.error_message() == "Echo is not ready: told to be");
}

TEST_CASE("the library stays loaded while an instance lives, and is unloaded after",
          "[plugin_host]") {
  const std::string path = fixture("minimal.so");
  std::ostringstream log;
  REQUIRE_FALSE(library_is_loaded(path));
  std::shared_ptr<plugin_instance> inst;
  {
    auto lib = plugin_library::load(path);
    REQUIRE(lib.ok());
    auto created = plugin_instance::create(*lib, "{}", test_logger(log));
    REQUIRE(created.ok());
    inst = *created;
  }  // the library handle is gone; the instance still holds it
  CHECK(library_is_loaded(path));
  recorded_response rec;
  const auto writer = rec.writer();
  inst->handle(make_request("GET", "/v2/"), writer);
  CHECK(rec.status == 204);
  inst.reset();
  CHECK_FALSE(library_is_loaded(path));
}
