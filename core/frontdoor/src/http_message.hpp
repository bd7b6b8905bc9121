// One HTTP exchange as the front door's handlers see it: the request head (already checked
// against RFC 9112 by the transport), the request body as a blocking stream, and the response
// the handler fills in. The transport (http_server.hpp) turns these into bytes on the wire.
#pragma once

#include <registryd/frontdoor/wake_signal.hpp>
#include <registryd/sdk/text.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace registryd::frontdoor {

using sdk::iequals;

struct http_request {
  std::string method;
  std::string target;  // as sent: origin-form, "/path?query"
  std::string path;    // the target's path, percent-decoded
  std::string query;   // raw, without '?'
  std::vector<std::pair<std::string, std::string>> headers;  // in order, names as sent
  std::string remote_addr;
  // The subject of a client certificate that verified against the listener's trust store
  // (only listeners that ask for one: the packages proxy's); "" when none was sent or it did
  // not verify.
  std::string peer_subject;
  std::string peer_serial;   // its serial number in hex, when it verified
  unsigned version = 11;  // 10 or 11
  // A framed body: Content-Length (its value) or chunked (-1). 0: none.
  std::int64_t content_length = 0;
  // The handler runs again for a request it parked (http_response::park_on): it answers now.
  bool resumed = false;

  bool has_body() const noexcept { return content_length != 0; }
  // The first value of a header (names compare case-insensitively), "" when absent.
  std::string header(std::string_view name) const;
  bool has_header(std::string_view name) const;
  // The decoded query parameters ('+' is a space), in order.
  std::multimap<std::string, std::string> params() const;
  std::string param(std::string_view name) const;
};

// The request body, read by the handler on its worker thread, in pieces. Never held whole.
class request_body {
 public:
  virtual ~request_body() = default;
  // Delivers the body to `on_chunk` until its end, an error, or on_chunk returns false.
  // Returns true when the whole body was delivered. May be called once; a body nobody read
  // is drained (or the connection closed) by the transport after the handler returns.
  virtual bool read(const std::function<bool(const char*, std::size_t)>& on_chunk) = 0;
};

// A streamed response body (a plugin's stream). Called on a worker thread.
class body_source {
 public:
  virtual ~body_source() = default;
  // Fills up to `capacity` bytes; returns the count, 0 at the end, -1 on error.
  virtual std::int64_t read(char* buffer, std::size_t capacity) = 0;
};

// A file descriptor the response owns; closed when the last reference goes.
struct owned_fd {
  explicit owned_fd(int f) noexcept : fd(f) {}
  owned_fd(const owned_fd&) = delete;
  owned_fd& operator=(const owned_fd&) = delete;
  ~owned_fd();
  int fd;
};

struct http_response {
  enum class body_kind { none, bytes, stream, file };

  unsigned status = 200;
  std::vector<std::pair<std::string, std::string>> headers;  // no framing headers
  std::string content_type;  // "" sends none
  body_kind kind = body_kind::none;
  std::string bytes;
  std::unique_ptr<body_source> stream;
  std::int64_t stream_length = -1;  // -1: chunked
  std::shared_ptr<owned_fd> file;
  std::uint64_t file_offset = 0;
  std::uint64_t file_length = 0;
  // With body_kind::none: the Content-Length to state without a body (a HEAD answer).
  std::optional<std::uint64_t> declared_length;
  bool close = false;  // close the connection after this answer
  // Who the front door authenticated for this request ("" when nobody), for the access log.
  std::string user;
  // A long poll (docs/frontdoor.md): instead of this answer, park the request, holding no
  // worker, until `park_on` is notified after generation `park_seen` or `park_for` passes; then
  // the handler runs again with http_request::resumed set, and its answer is sent.
  std::shared_ptr<wake_signal> park_on;
  std::uint64_t park_seen = 0;
  std::chrono::milliseconds park_for{0};

  void set_header(std::string name, std::string value) {
    headers.emplace_back(std::move(name), std::move(value));
  }
  void set_content(std::string body, std::string type) {
    kind = body_kind::bytes;
    bytes = std::move(body);
    content_type = std::move(type);
  }
};

// Handles one request on a worker thread. May block (disk, upstream).
using http_handler = std::function<void(const http_request&, request_body&, http_response&)>;

}  // namespace registryd::frontdoor
