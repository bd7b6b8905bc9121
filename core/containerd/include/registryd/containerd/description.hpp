// The containerd description a mode plugin returns from describe_containerd (schema:
// docs/plugin-authors.md, "The containerd description"), parsed and validated.
//
// A plugin is third-party code, so everything it says is checked before anything is written to
// a node: every error names the JSON path of the offending value, e.g.
// `hosts[0].mirrors[1].url: must start with http:// or https://`.
#pragma once

#include <registryd/util/result.hpp>

#include <nlohmann/json_fwd.hpp>

#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace registryd::containerd {

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
  std::string url;                        // http(s)://host[:port][/path], no query or fragment
  std::vector<std::string> capabilities;  // subset of pull, resolve, push; never empty
  // Canonical PEM (each certificate re-encoded, '\n' line ends) or nullopt. https:// only.
  std::optional<std::string> ca_pem;
  bool skip_verify = false;   // http:// only: TLS verification is never switched off for https
  bool override_path = false;
  // Header name -> values, in the order the description gave them (names sorted by JSON).
  std::vector<std::pair<std::string, std::vector<std::string>>> headers;
  std::optional<mirror_auth> auth;  // patched containerd only
  std::vector<path_rewrite> rewrites;  // patched containerd only

  bool is_https() const noexcept { return url.rfind("https://", 0) == 0; }
};

struct registry_host {
  std::string host;                   // host[:port] as images name it; the directory name
  std::optional<std::string> server;  // http(s)://host[:port][/path]
  std::vector<mirror> mirrors;        // tried in order, then server; at least one
};

struct description {
  std::vector<registry_host> hosts;  // host names are unique
};

// Validates and parses a description. Unknown keys are refused too: a misspelt key
// ("skipVerfy") would otherwise be silently ignored on every node.
util::result<description> parse_description(const nlohmann::json& doc);

}  // namespace registryd::containerd
