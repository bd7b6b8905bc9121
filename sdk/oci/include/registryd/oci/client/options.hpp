// How to reach one upstream registry: its address, scheme, credentials, CAs, timeouts and
// connection pool size; and building that from a mode plugin's settings document.
//
// Thread-safety: plain values.
#pragma once

#include <registryd/oci/reference.hpp>

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>

namespace registryd::oci::client {

enum class scheme { http, https };

struct credentials {
  std::string username;
  std::string password;
};

struct client_options {
  // host[:port] of the registry, e.g. "registry.example.com" or "127.0.0.1:5000".
  std::string registry;
  scheme url_scheme = scheme::https;
  // Sent as Basic auth when the registry asks for it, and to the token realm when it asks for
  // a bearer token. nullopt: anonymous.
  std::optional<credentials> auth;
  // PEM text of one or more CA certificates the registry's (and its token realm's and blob
  // storage's) certificates are verified against, in addition to the system's CAs. Empty: the
  // system's CAs only. Server names are always verified.
  std::string ca_pem;
  // Time to set up a TCP connection (and TLS handshake).
  std::chrono::milliseconds connect_timeout{5000};
  // Longest wait for the next bytes of an answer (and for the socket to take more bytes of a
  // request); not a bound on a whole transfer, so a large blob may take longer.
  std::chrono::milliseconds read_timeout{30000};
  // Longest wait for an answer's head once the request is sent: the time to first byte, which
  // a server that accepts connections and then says nothing never ends. nullopt: read_timeout.
  // A mode that must fail fast behind a stalled upstream (Proxy) sets it short, while a body
  // under way may still pause for read_timeout between pieces.
  std::optional<std::chrono::milliseconds> answer_timeout;
  // Idle keep-alive connections kept per scheme://host:port. Concurrent requests each get a
  // connection of their own; this bounds only how many wait for reuse.
  std::size_t max_idle_connections = 8;
  // A kept connection unused for this long is closed instead of reused, before a server
  // would close it under us.
  std::chrono::milliseconds idle_timeout{30000};
  // Redirects followed per request (blob storage needs one).
  int max_redirects = 5;
  std::string user_agent = "registryd";

  // "https://registry.example.com"
  std::string base_url() const;
};

// A mode's upstream as its settings section names it: where the images live, and how to
// reach their registry.
struct upstream_settings {
  // imagesRepo split: registry host[:port] and the path in it ("deckhouse/ee").
  repository_location images_repo;
  client_options options;
  // "Default" or "Relax" (checkMode).
  std::string check_mode = "Default";
};

// Reads the `section` object of the settings document a mode plugin receives
// (docs/plugin-authors.md): `imagesRepo` (required), `scheme` ("HTTP" | "HTTPS", default
// HTTPS), `username`/`password` (a `license` is resolved already by the host; a raw
// `license` is accepted too and means user "license-token"), `ca` (PEM), `checkMode`.
// Throws std::invalid_argument naming the field when the section is not usable: the plugin
// constructor's contract for bad settings.
upstream_settings upstream_from_section(const nlohmann::json& section);

}  // namespace registryd::oci::client
