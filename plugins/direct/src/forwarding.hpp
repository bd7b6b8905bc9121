// The rules of the Direct mode's pass-through, as pure functions on values so that each one is
// tested on its own (tests/unit/direct/forwarding_test.cpp):
//
// - which client requests are forwarded, and what they become upstream (the repository name
//   mapped from system/deckhouse to the imagesRepo path, the query parameters that mean
//   something upstream, the request headers the answer depends on);
// - which answer headers come back, with names mapped back (Location, Link), and which never
//   do (WWW-Authenticate: the client authenticated to registryd, not to the upstream);
// - upstream error bodies and tag lists with every upstream name mapped back.
//
// Thread-safety: pure functions.
#pragma once

#include <registryd/oci/client/error.hpp>
#include <registryd/oci/client/message.hpp>
#include <registryd/oci/digest.hpp>
#include <registryd/oci/path_mapping.hpp>
#include <registryd/oci/route.hpp>

#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace registryd::direct {

using header_fields = std::vector<std::pair<std::string, std::string>>;

// An answer the mode gives itself, without asking the upstream: an OCI error, or (with an
// empty code) a success with the body `{}`.
struct local_answer {
  int status = 404;
  std::string code;       // OCI error code, e.g. NAME_UNKNOWN; empty for a success
  std::string message;
  nlohmann::json detail;  // null: none
};

// A request the mode forwards.
struct forward_plan {
  oci::route route;            // as the client named it
  std::string client_name;     // system/deckhouse[/...]
  std::string upstream_name;   // <imagesRepo path>[/...]
  std::string method;          // GET or HEAD
  std::string target;          // "/v2/<upstream name>/manifests/<reference>[?query]"
  std::string scope;           // "repository:<upstream name>:pull"
  // The digest a whole (200) answer body must hash to: manifests asked for by digest. Blobs
  // are not hashed on the way: every registry client verifies what it pulls, and hashing
  // costs a third of the pass-through's CPU (docs/direct-mode.md, "Integrity").
  std::optional<oci::digest> verify;
  // "system/deckhouse:v1.2" or "system/deckhouse@sha256:...", for messages.
  std::string client_reference() const;
};

// Decides what a client request becomes. `path` is the decoded path the host hands over,
// `raw_query` the query without '?', as sent.
std::variant<forward_plan, local_answer> plan_request(const oci::path_mapping& mapping,
                                                 std::string_view method, std::string_view path,
                                                 std::string_view raw_query);

// The query parameters forwarded for a route, re-encoded: `n` and `last` for tag lists,
// `artifactType` for referrers; nothing else (containerd's `ns=<fixed host>` means nothing
// upstream). Returns "" or "?a=b&c=d".
std::string upstream_query(oci::route_kind kind, std::string_view raw_query);

// The client's request headers the upstream should see: every Accept (joined, in order), and
// Range, If-Range, If-None-Match, If-Match, If-Modified-Since. Never Authorization (the
// client's credentials are registryd's), nor hop-by-hop fields.
oci::client::header_list upstream_request_headers(const header_fields& client_headers);

// The answer headers a client gets, mapped: Content-Type, Content-Length, Content-Range,
// Content-Encoding, Accept-Ranges, Docker-Content-Digest, ETag, Last-Modified, Cache-Control,
// Expires, Retry-After, OCI-Filters-Applied, OCI-Subject as sent; Location and Link with the
// upstream's repository names mapped back to the client's (Location on the upstream host
// becomes a relative client path). Everything else is dropped, WWW-Authenticate first of all.
header_fields client_response_headers(const oci::client::header_list& upstream,
                                      const oci::path_mapping& mapping,
                                      std::string_view upstream_host);

// The OCI error body a client gets for an upstream error answer. `body` is what the upstream
// sent (possibly truncated, possibly not JSON). A body with an `errors` array keeps every
// error, code and detail as sent, with upstream names mapped; a message that does not name
// the repository gets the client's reference appended ("manifest unknown:
// system/deckhouse:v1"). Any other body becomes one error from `error` (the client's reading
// of the answer: code, message, detail), mapped the same way.
std::string error_body_to_client(std::string_view body, const oci::client::upstream_error& error,
                                 const oci::path_mapping& mapping, const forward_plan& plan);

// How the client reads an upstream error answer it passes through: the code and message of
// the body's first OCI error, or, for a body without one, the code the status stands for
// (404: MANIFEST_UNKNOWN, BLOB_UNKNOWN or NAME_UNKNOWN by route; 401 UNAUTHORIZED; 403
// DENIED; 429 TOOMANYREQUESTS; 5xx UNAVAILABLE; else UNKNOWN) and "<host> answered <status>",
// with a short plain-text body appended.
oci::client::upstream_error error_from_answer(int status, const oci::client::header_list& headers,
                                              std::string_view body, const forward_plan& plan,
                                              std::string_view upstream_host);

// The status and code a client gets for an upstream error answer: the upstream's, except a
// 401, which means the upstream refused registryd's own credentials; passed on as a 401 it
// would make the client retry its credentials with registryd, so it becomes 502.
int client_status_for(const oci::client::upstream_error& error);

// A tag list with `name` set to the client's name. nullopt when `body` is not a tag list.
std::optional<std::string> tags_list_to_client(std::string_view body, std::string_view client_name);

// What a client sees when the upstream could not be reached or broke the protocol: 503
// UNAVAILABLE for connect, timeout, io and canceled exchanges (worth a retry), 502 UNAVAILABLE
// for TLS and protocol failures (a configuration or upstream problem a retry will not cure).
local_answer transport_failure(const oci::client::upstream_error& error, std::string_view upstream_host,
                          const oci::path_mapping& mapping);

}  // namespace registryd::direct
