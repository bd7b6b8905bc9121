// Parsing `WWW-Authenticate` (RFC 7235 section 4.1): the challenges an upstream registry
// answers a 401 with, e.g.
//   Bearer realm="https://auth.example.com/token",service="registry.example.com",scope="repository:a/b:pull,push"
//   Basic realm="registry"
// One header value may hold several challenges, and a response several headers. Values are
// tokens or quoted strings; a quoted string may hold commas, '=' and backslash escapes.
//
// Thread-safety: pure functions on values.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace registryd::oci::client {

struct auth_challenge {
  // The auth scheme in lower case: "bearer", "basic", ...
  std::string scheme;
  // Parameters by lower-case name, values unquoted and unescaped. A repeated name keeps its
  // first value.
  std::map<std::string, std::string> params;
  // A token68 given instead of parameters (rare), else empty.
  std::string token68;

  // The parameter `name` (lower case), if present.
  std::optional<std::string> param(std::string_view name) const;
};

// Every challenge in one header value, in order. Malformed pieces are skipped, not fatal: a
// value that holds no readable challenge yields an empty list.
std::vector<auth_challenge> parse_www_authenticate(std::string_view value);

// The challenges of several header values (a response's every WWW-Authenticate), in order.
std::vector<auth_challenge> parse_www_authenticate(const std::vector<std::string_view>& values);

// The first challenge of `scheme` (case-insensitive), if any.
const auth_challenge* find_challenge(const std::vector<auth_challenge>& challenges,
                                     std::string_view scheme);

}  // namespace registryd::oci::client
