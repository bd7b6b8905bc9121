// Drives the built unmanaged.so through the C boundary, as the host does.
#include <registryd/plugin_abi.h>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <dlfcn.h>

#include <map>
#include <string>

using nlohmann::json;

namespace {

registryd_str str(const std::string& s) { return {s.data(), s.size()}; }

registryd_sink sink_to(std::string& out) {
  return {&out, [](void* ctx, registryd_str t) { static_cast<std::string*>(ctx)->append(t.data, t.size); }};
}

const registryd_plugin_api& load_plugin() {
  static void* handle = ::dlopen(REGISTRYD_UNMANAGED_SO, RTLD_NOW | RTLD_LOCAL);
  INFO((handle == nullptr ? ::dlerror() : ""));
  REQUIRE(handle != nullptr);
  auto entry = reinterpret_cast<registryd_plugin_entry_fn>(::dlsym(handle, REGISTRYD_PLUGIN_ENTRY_SYMBOL));
  REQUIRE(entry != nullptr);
  return *entry();
}

// A response writer that records what the plugin sent.
struct recorded_response {
  int status = 200;
  std::multimap<std::string, std::string> headers;
  std::string content_type;
  std::string body;
  bool sent = false;

  registryd_response_writer writer() {
    registryd_response_writer w{};
    w.struct_size = sizeof w;
    w.ctx = this;
    w.set_status = [](void* c, int s) { static_cast<recorded_response*>(c)->status = s; return 0; };
    w.add_header = [](void* c, registryd_str n, registryd_str v) {
      static_cast<recorded_response*>(c)->headers.emplace(std::string(n.data, n.size), std::string(v.data, v.size));
      return 0;
    };
    w.send_bytes = [](void* c, registryd_str ct, registryd_str b) {
      auto* self = static_cast<recorded_response*>(c);
      self->content_type.assign(ct.data, ct.size);
      self->body.assign(b.data, b.size);
      self->sent = true;
      return 0;
    };
    w.send_stream = [](void*, registryd_str, int64_t, registryd_stream s) { s.close(s.ctx); return -1; };
    w.send_file = [](void*, registryd_str, int, uint64_t, uint64_t) { return -1; };
    return w;
  }
};

const std::string settings_doc = json{
    {"mode", "Unmanaged"},
    {"legacy", false},
    {"section", {{"imagesRepo", "registry.example.com/deckhouse/ee"}, {"scheme", "HTTPS"}, {"checkMode", "Default"}}},
    {"host", {{"fixedHost", "registry.d8-system.svc:5001"}, {"fixedRepository", "system/deckhouse"}}}}.dump();

struct instance {
  const registryd_plugin_api& api = load_plugin();
  registryd_host_api host{REGISTRYD_PLUGIN_ABI_MAJOR, REGISTRYD_PLUGIN_ABI_MINOR, sizeof(registryd_host_api),
                          &logs, [](void* ctx, registryd_log_level, registryd_str m) {
                            static_cast<std::string*>(ctx)->append(m.data, m.size).append("\n");
                          }};
  std::string logs;
  registryd_plugin* plugin = nullptr;

  explicit instance(const std::string& settings = settings_doc) {
    std::string error;
    REQUIRE(api.create(&host, str(settings), &plugin, sink_to(error)) == REGISTRYD_OK);
    REQUIRE(plugin != nullptr);
  }
  ~instance() { api.destroy(plugin); }
  instance(const instance&) = delete;
  instance& operator=(const instance&) = delete;
};

}  // namespace

TEST_CASE("unmanaged.so names itself Unmanaged and offers what the mode needs", "[unmanaged]") {
  const auto& api = load_plugin();
  CHECK(api.abi_major == REGISTRYD_PLUGIN_ABI_MAJOR);
  CHECK(std::string(api.name.data, api.name.size) == "Unmanaged");
  CHECK(api.validate_settings != nullptr);
  CHECK(api.describe_containerd != nullptr);
}

TEST_CASE("unmanaged.so refuses bad settings at validate and create with the field path",
          "[unmanaged]") {
  const auto& api = load_plugin();
  const std::string bad = R"({"mode":"Unmanaged","section":{"scheme":"HTTPS"}})";
  std::string error;
  CHECK(api.validate_settings(str(bad), sink_to(error)) == REGISTRYD_ERR_INVALID_ARGUMENT);
  CHECK(error == "invalid Unmanaged settings: section.imagesRepo: is required");

  registryd_host_api host{REGISTRYD_PLUGIN_ABI_MAJOR, REGISTRYD_PLUGIN_ABI_MINOR, sizeof(registryd_host_api),
                          nullptr, nullptr};
  registryd_plugin* p = nullptr;
  error.clear();
  CHECK(api.create(&host, str("{not json"), &p, sink_to(error)) == REGISTRYD_ERR_INVALID_ARGUMENT);
  CHECK(p == nullptr);
  CHECK_THAT(error, Catch::StartsWith("settings are not valid JSON"));
  error.clear();
  CHECK(api.validate_settings(str(settings_doc), sink_to(error)) == REGISTRYD_OK);
  CHECK(error.empty());
}

TEST_CASE("every registry request to the fixed address in Unmanaged mode is NAME_UNKNOWN",
          "[unmanaged]") {
  instance inst;
  for (const char* method : {"GET", "HEAD", "PUT"}) {
    INFO(method);
    const std::string m = method;
    const std::string path = "/v2/system/deckhouse/manifests/latest";
    registryd_request req{};
    req.struct_size = sizeof req;
    req.method = str(m);
    req.path = str(path);
    recorded_response res;
    const auto w = res.writer();
    inst.api.handle(inst.plugin, &req, &w);
    CHECK(res.status == 404);
    CHECK(res.content_type == "application/json");
    const auto body = json::parse(res.body);
    const auto& e = body["errors"][0];
    CHECK(e["code"] == "NAME_UNKNOWN");
    CHECK(e["message"] ==
          "registryd runs in Unmanaged mode: registry.d8-system.svc:5001 serves no images; nodes pull "
          "from registry.example.com/deckhouse/ee directly");
    CHECK(e["detail"] == json({{"mode", "Unmanaged"}, {"imagesRepo", "registry.example.com/deckhouse/ee"}}));
  }
}

TEST_CASE("unmanaged.so describes the upstream host, is healthy and exports its info metric",
          "[unmanaged]") {
  instance inst;
  std::string out, error;
  REQUIRE(inst.api.describe_containerd(inst.plugin, sink_to(out), sink_to(error)) == REGISTRYD_OK);
  const auto d = json::parse(out);
  CHECK(d["hosts"][0]["host"] == "registry.example.com");
  CHECK(d["hosts"][0]["server"] == "https://registry.example.com");

  std::string why;
  CHECK(inst.api.health(inst.plugin, sink_to(why)) == REGISTRYD_OK);
  CHECK(why.empty());

  std::string metrics;
  inst.api.metrics(inst.plugin, sink_to(metrics));
  CHECK(metrics ==
        "# HELP registryd_unmanaged_info The external registry nodes pull from in Unmanaged mode.\n"
        "# TYPE registryd_unmanaged_info gauge\n"
        "registryd_unmanaged_info{images_repo=\"registry.example.com/deckhouse/ee\",scheme=\"HTTPS\","
        "legacy=\"false\"} 1\n");
  CHECK_THAT(inst.logs, Catch::Contains("nodes pull from registry.example.com/deckhouse/ee"));
}
