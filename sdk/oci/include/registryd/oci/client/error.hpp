// What an exchange with an upstream registry can end in when it does not succeed, and the
// value-or-error type every operation of the upstream client returns.
//
// An upstream that answered is told apart from one that could not be reached: `kind` is
// `http` when an HTTP answer arrived (its status, and the OCI error code and message taken from
// the upstream's error body, so a pass-through mode can hand them on faithfully), and one of the
// transport kinds otherwise.
//
// Thread-safety: plain values.
#pragma once

#include <registryd/result.hpp>

#include <registryd/oci/client/message.hpp>

#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace registryd::oci::client {

enum class error_kind {
  http,              // the upstream answered with a status >= 400 (or a 3xx the client could not follow)
  connect,           // name resolution failed, connection refused or unreachable
  timeout,           // connecting or waiting for bytes took longer than the configured timeout
  tls,               // handshake failed or the certificate did not verify against the CAs
  io,                // the connection broke in the middle of the exchange
  canceled,          // the caller's callback or abort handle stopped the transfer
  protocol,          // the answer broke the protocol: a bad redirect, an unreadable token
                     // answer, a digest that does not match, a document too large
  invalid_argument,  // the caller's request was not valid (bad name, bad URL); nothing was sent
};

// "http", "connect", "timeout", ...
std::string_view to_string(error_kind kind) noexcept;

struct upstream_error {
  error_kind kind = error_kind::http;
  // The HTTP status when kind is http (and for protocol errors found in an answer), else 0.
  int status = 0;
  // The OCI error code: the upstream's own (`errors[0].code` of its JSON body) when it sent
  // one, otherwise one the client chose from the status or the failure (UNAUTHORIZED, DENIED,
  // NAME_UNKNOWN, MANIFEST_UNKNOWN, BLOB_UNKNOWN, TOOMANYREQUESTS, UNAVAILABLE, ...).
  std::string code;
  // A sentence for people: the upstream's `errors[0].message` when it sent one, otherwise what
  // went wrong and where (the host, the realm), never a credential.
  std::string message;
  // The upstream's `errors[0].detail` serialized as JSON text, empty when it sent none.
  std::string detail;
  // The answer's headers when kind is http (Retry-After, WWW-Authenticate, ...).
  header_list headers;

  // True for failures worth retrying after a pause: transport failures other than TLS, and
  // the statuses 408, 429, 500, 502, 503 and 504.
  bool retryable() const noexcept;
  // One line: "<status> <code>: <message>" for http, "<kind>: <message>" otherwise.
  std::string str() const;
};

// Builds an error of a transport or protocol kind.
upstream_error make_error(error_kind kind, std::string message, int status = 0);

// A value or an upstream_error (registryd/result.hpp). [[nodiscard]]: an ignored upstream
// failure is a bug.
template <typename T>
using result = registryd::result<T, upstream_error>;

// For operations that succeed with nothing to return.
using registryd::done;
using outcome = result<done>;

}  // namespace registryd::oci::client
