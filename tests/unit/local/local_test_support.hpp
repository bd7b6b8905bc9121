// Drives the Local mode in-process through tests/support/plugin_call.hpp.
#pragma once

#include "local_mode.hpp"

#include <registryd/oci/digest.hpp>
#include <registryd/plugin_abi.h>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <plugin_call.hpp>
#include <test_support.hpp>

#include <cctype>
#include <map>
#include <optional>
#include <string>
#include <unistd.h>
#include <utility>
#include <vector>

namespace registryd::test {

// Runs one request (`target` may hold a query) through `mode`.
inline reply call(sdk::mode_plugin& mode, const std::string& method, const std::string& target,
                  const call_options& o = {}) {
  return call_handler([&](const sdk::request& req, sdk::response& res) { mode.handle(req, res); }, method, target, o);
}

inline nlohmann::json local_settings(const std::filesystem::path& data_dir) {
  return {{"mode", "Local"},
          {"legacy", false},
          {"section", nullptr},
          {"host",
           {{"dataDir", data_dir.string()},
            {"stateDir", (data_dir / "state").string()},
            {"caFile", (data_dir / "ca.crt").string()},
            {"fixedHost", "registry.d8-system.svc:5001"},
            {"fixedRepository", "system/deckhouse"}}}};
}

// A host whose log lines (one per line, any level) collect in `logs`. Not copyable: the host
// API points at `logs`.
struct log_capture {
  std::string logs;
  registryd_host_api api{REGISTRYD_PLUGIN_ABI_MAJOR, REGISTRYD_PLUGIN_ABI_MINOR, sizeof(registryd_host_api), &logs,
                         [](void* ctx, registryd_log_level, registryd_str m) {
                           static_cast<std::string*>(ctx)->append(m.data, m.size).append("\n");
                         }};

  log_capture() = default;
  log_capture(const log_capture&) = delete;
  log_capture& operator=(const log_capture&) = delete;
  sdk::host host() { return sdk::host(&api); }
};

// A started Local mode over a scratch directory.
struct local_fixture {
  scratch_dir dir;
  log_capture log;
  local::local_mode mode{log.host(), local_settings(dir.path())};

  local_fixture() { mode.start(); }
  ~local_fixture() { mode.stop(); }

  reply operator()(const std::string& method, const std::string& target, const call_options& o = {}) {
    return call(mode, method, target, o);
  }

  // Pushes a blob monolithically into `repo`; its digest.
  oci::digest push_blob(const std::string& repo, const std::string& content) {
    const auto d = oci::digest_of(content);
    call_options o;
    o.body = content;
    const auto r = (*this)("POST", "/v2/" + repo + "/blobs/uploads/?digest=" + d.str(), o);
    INFO(r.body);
    REQUIRE(r.status == 201);
    return d;
  }
  // Pushes a manifest; the reply.
  reply push_manifest(const std::string& repo, const std::string& reference, const std::string& bytes,
                      const std::string& media_type = "application/vnd.oci.image.manifest.v1+json") {
    call_options o;
    o.body = bytes;
    o.headers = {{"Content-Type", media_type}};
    return (*this)("PUT", "/v2/" + repo + "/manifests/" + reference, o);
  }
};

// An OCI image manifest over a config and layers (blob digests and sizes).
inline std::string image_manifest(const oci::digest& config, std::size_t config_size,
                                  const std::vector<std::pair<oci::digest, std::size_t>>& layers,
                                  const nlohmann::json& extra = nlohmann::json::object()) {
  nlohmann::json m = {{"schemaVersion", 2},
                      {"mediaType", "application/vnd.oci.image.manifest.v1+json"},
                      {"config",
                       {{"mediaType", "application/vnd.oci.image.config.v1+json"},
                        {"digest", config.str()},
                        {"size", config_size}}},
                      {"layers", nlohmann::json::array()}};
  for (const auto& [d, s] : layers) {
    m["layers"].push_back(
        {{"mediaType", "application/vnd.oci.image.layer.v1.tar+gzip"}, {"digest", d.str()}, {"size", s}});
  }
  for (const auto& [k, v] : extra.items()) m[k] = v;
  return m.dump();
}

}  // namespace registryd::test
