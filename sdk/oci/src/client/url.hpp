// Internal: absolute http(s) URLs as the client meets them (the registry's base, token realms,
// Location and Link headers), split into the origin a connection is made to and the target
// that goes on the request line.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace registryd::oci::client::detail {

struct url {
  std::string scheme;  // "http" | "https"
  std::string host;    // a name, an IPv4 address, or "[v6]"
  int port = 0;        // always set: 80/443 when the URL names none
  std::string target;  // path and query, starting with "/"

  // "https://host:port": the key connections and credentials are scoped to.
  std::string origin() const;
  // "host" or "host:port" when the port is not the scheme's default (the Host header).
  std::string authority() const;
  std::string str() const { return scheme + "://" + authority() + target; }
};

// Parses "http(s)://authority[/path][?query]"; the fragment is dropped. nullopt for anything
// else (other schemes, user info, a bad port).
std::optional<url> parse_url(std::string_view text);

// Resolves a Location (or Link) value against the URL it came from: an absolute URL, a
// scheme-relative "//host/path", an absolute path, or a path relative to base's directory.
std::optional<url> resolve_url(const url& base, std::string_view reference);

// Percent-encodes everything but the unreserved characters (RFC 3986), for query values.
std::string encode_query_value(std::string_view value);

}  // namespace registryd::oci::client::detail
