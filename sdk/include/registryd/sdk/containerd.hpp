// The containerd description: what a mode plugin returns from containerd_config() (the ABI's
// describe_containerd) to say how containerd on every node must reach registries while the
// mode is in force. Part of the plugin contract; schema and rules in docs/plugin-authors.md,
// "The containerd description". The host parses the same JSON back into these structs
// (core/containerd, every field checked) and renders hosts.toml files from them.
//
// Build one with the structs and send description::to_json(); or, for the modes that serve
// from the masters through the node balancer (Proxy, Local, FACTS.md section 3), call
// node_balancer_description().
//
// Header-only. Thread-safety: plain values and pure functions.
#pragma once

#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace registryd::sdk::containerd {

struct mirror_auth {
  std::string username;
  std::string password;
};

// A repository path rewrite; understood by the platform's patched containerd only.
struct path_rewrite {
  std::string regex;
  std::string replace;
};

struct mirror {
  std::string url;  // http(s)://host[:port][/path], no query or fragment
  // Subset of pull, resolve, push; never empty (the host defaults it to pull, resolve).
  std::vector<std::string> capabilities{"pull", "resolve"};
  // PEM of the CA the mirror's certificate chains to (https:// only). The host re-encodes it.
  std::optional<std::string> ca_pem;
  bool skip_verify = false;  // http:// only: TLS verification is never switched off for https
  bool override_path = false;
  // Header name -> values, sent with every request to the mirror.
  std::vector<std::pair<std::string, std::vector<std::string>>> headers;
  std::optional<mirror_auth> auth;     // patched containerd only
  std::vector<path_rewrite> rewrites;  // patched containerd only

  bool is_https() const noexcept { return url.rfind("https://", 0) == 0; }

  // Only what is set: url and capabilities always, the rest when not default.
  nlohmann::json to_json() const {
    nlohmann::json j = {{"url", url}, {"capabilities", capabilities}};
    if (ca_pem) j["ca"] = *ca_pem;
    if (skip_verify) j["skipVerify"] = true;
    if (override_path) j["overridePath"] = true;
    if (!headers.empty()) {
      nlohmann::json h = nlohmann::json::object();
      for (const auto& [name, values] : headers) h[name] = values;
      j["headers"] = std::move(h);
    }
    if (auth) j["auth"] = {{"username", auth->username}, {"password", auth->password}};
    if (!rewrites.empty()) {
      nlohmann::json r = nlohmann::json::array();
      for (const auto& rw : rewrites) r.push_back({{"regex", rw.regex}, {"replace", rw.replace}});
      j["rewrites"] = std::move(r);
    }
    return j;
  }
};

struct registry_host {
  std::string host;                   // host[:port] as images name it; the directory name
  std::optional<std::string> server;  // http(s)://host[:port][/path]
  std::vector<mirror> mirrors;        // tried in order, then server; at least one

  nlohmann::json to_json() const {
    nlohmann::json j = {{"host", host}};
    if (server) j["server"] = *server;
    nlohmann::json m = nlohmann::json::array();
    for (const auto& each : mirrors) m.push_back(each.to_json());
    j["mirrors"] = std::move(m);
    return j;
  }
};

struct description {
  std::vector<registry_host> hosts;  // host names are unique

  nlohmann::json to_json() const {
    nlohmann::json h = nlohmann::json::array();
    for (const auto& each : hosts) h.push_back(each.to_json());
    return {{"hosts", std::move(h)}};
  }
};

// A registry itself as a mirror: over HTTP with skip_verify, over HTTPS trusting `ca_pem` when
// given; `auth` is read by the platform's patched containerd only (stock containerd gets
// credentials through the CRI's auth settings, docs/containerd.md).
inline mirror registry_mirror(std::string url, const std::optional<std::string>& ca_pem,
                              std::optional<mirror_auth> auth) {
  mirror m;
  m.url = std::move(url);
  if (!m.is_https()) {
    m.skip_verify = true;
  } else if (ca_pem) {
    m.ca_pem = *ca_pem;
  }
  m.auth = std::move(auth);
  return m;
}

// Where every node reaches the registry: the node balancer (FACTS.md section 4).
inline constexpr std::string_view node_balancer_url = "https://127.0.0.1:5001";
// Whether a mirror URL leads to a node balancer: https on 127.0.0.1, at any port.
inline bool is_node_balancer_url(std::string_view url) { return url.starts_with("https://127.0.0.1:"); }

// The fixed host mirrored by `mirror_url` (the node balancer) for pull and resolve, trusting
// `ca_pem` when given. Proxy and Local both describe exactly this, so a switch between them
// renders identical files for the fixed host.
inline description node_balancer_description(std::string_view fixed_host, const std::optional<std::string>& ca_pem,
                                             std::string_view mirror_url = node_balancer_url) {
  mirror m;
  m.url = std::string(mirror_url);
  m.ca_pem = ca_pem;
  return description{{registry_host{std::string(fixed_host), std::nullopt, {std::move(m)}}}};
}

// The same, reading the CA from `ca_file` now (it exists once the host serves TLS). A file
// that cannot be read is passed to `warn` with the reason, and the description names no CA
// (containerd then trusts the system CAs).
template <typename Warn>
description node_balancer_description(std::string_view fixed_host, const std::optional<std::filesystem::path>& ca_file,
                                      std::string_view mirror_url, Warn&& warn) {
  std::optional<std::string> ca;
  if (ca_file) {
    std::ifstream in(*ca_file, std::ios::binary);
    std::ostringstream text;
    if (in && (text << in.rdbuf())) ca = text.str();
    if (!ca) warn("the registry CA " + ca_file->string() + " cannot be read: the containerd description names no CA");
  }
  return node_balancer_description(fixed_host, ca, mirror_url);
}

}  // namespace registryd::sdk::containerd
