// The pieces of an HTTP exchange with an upstream registry as the client's callers see them:
// headers, a request whose body is pulled from a callback, the status and headers of an answer,
// the callbacks an answer's body is pushed to, and a handle that aborts an exchange in flight.
//
// Nothing here holds a blob: request bodies are pulled piece by piece, answer bodies pushed
// piece by piece, each piece at most 64 KiB.
#pragma once

#include <registryd/sdk/text.hpp>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace registryd::oci::client {

// Header fields in order, names compared case-insensitively. A name may repeat.
// Thread-safety: a plain value.
class header_list {
 public:
  struct field {
    std::string name;
    std::string value;
  };

  void add(std::string name, std::string value);
  // Replaces every field named `name` with one.
  void set(std::string name, std::string value);
  void remove(std::string_view name);
  // The first value of `name`, if any.
  std::optional<std::string_view> get(std::string_view name) const;
  // Every value of `name`, in order.
  std::vector<std::string_view> get_all(std::string_view name) const;
  bool has(std::string_view name) const { return get(name).has_value(); }

  bool empty() const noexcept { return fields_.empty(); }
  std::size_t size() const noexcept { return fields_.size(); }
  auto begin() const noexcept { return fields_.begin(); }
  auto end() const noexcept { return fields_.end(); }

 private:
  std::vector<field> fields_;
};

// ASCII case-insensitive equality, as header names and auth schemes compare.
using sdk::iequals;

// A request body the client pulls from, so a blob goes out in bounded pieces.
struct request_body {
  // The exact byte count (sent as Content-Length), or nullopt to send it chunked. Registries
  // want the length for blob uploads; give it whenever it is known.
  std::optional<std::uint64_t> length;
  // Fills up to `capacity` bytes of `buffer`; returns the count, 0 at the end, -1 on failure
  // (the exchange then ends with error_kind::canceled). Called on the thread that called the
  // client, never concurrently. Required.
  std::function<std::ptrdiff_t(char* buffer, std::size_t capacity)> read;
  // Optional: starts the body over from its first byte and returns true, or returns false when
  // it cannot. The client uses it to send the request again after a 401 that a fresh token can
  // cure, or after a 307/308 redirect; without it such an answer is final.
  std::function<bool()> rewind;
};

// Aborts an exchange in flight from another thread: the connection is shut down, the exchange
// ends with error_kind::canceled. Share one between the caller and request::abort.
// Thread-safety: abort() may be called from any thread, any number of times.
class abort_handle {
 public:
  abort_handle() = default;
  abort_handle(const abort_handle&) = delete;
  abort_handle& operator=(const abort_handle&) = delete;

  void abort();
  bool aborted() const;

  // For the client: `shut` stops the connection an exchange runs on. It is called at most
  // once, with the handle's lock held, by abort() or at once by attach() when already aborted.
  void attach(std::function<void()> shut);
  void detach();

 private:
  mutable std::mutex mutex_;
  bool aborted_ = false;
  std::function<void()> shut_;
};

// One request to the upstream registry, relative to its base (`scheme://registry`).
struct request {
  std::string method = "GET";
  // The path and query as they go on the wire, percent-encoded by the caller, e.g.
  // "/v2/deckhouse/ee/manifests/v1.2?ns=x". Must start with "/".
  std::string target;
  // Extra header fields (Accept, Range, Content-Type, ...). The client sets Host,
  // Authorization, Content-Length and Transfer-Encoding itself and drops the caller's, along
  // with the hop-by-hop fields (Connection, Keep-Alive, TE, Upgrade, Proxy-*).
  header_list headers;
  // The token scopes the request needs, e.g. "repository:deckhouse/ee:pull" (see scope.hpp).
  // Used only when the upstream asks for a bearer token; the challenge's own scope is added.
  std::vector<std::string> scopes;
  std::optional<request_body> body;
  // Follow 301/302/303/307/308 to their Location (blob storage). The registry's
  // Authorization goes only to the registry's own scheme://host:port, never to another host.
  bool follow_redirects = true;
  // Whether an answer with status >= 400 is also handed to the response_handler (head and
  // body) and not only returned as the error. A pass-through proxy wants both.
  bool deliver_errors = false;
  // Optional: lets another thread abort the exchange.
  std::shared_ptr<abort_handle> abort;
};

// The status line and headers of the final answer (after redirects and auth retries).
struct response_head {
  int status = 0;
  header_list headers;
  // The URL that answered, differs from the request's when a redirect was followed.
  std::string url;
};

// The answer's Content-Length; nullopt when absent or not a whole number.
std::optional<std::uint64_t> content_length(const response_head& head);

// Where the final answer goes, on the calling thread: on_head once, before any body byte,
// then on_body for each piece (at most 64 KiB) in order. Either may return false to stop the
// transfer (the exchange then ends with error_kind::canceled and the connection is closed).
// Both are optional; a missing on_body discards the body. Answers that are not final (a 401
// retried with a token, a redirect followed) never reach the handler.
//
// A handler that stores the body may also offer body_room and body_filled (both or neither):
// then a body of known length (not chunked) skips on_body and is read from the socket straight
// into the space body_room() returns (at least 1 byte; empty stops the transfer), and
// body_filled(n) says that its first n bytes were filled (false stops the transfer). A chunked
// body, or one without a length, still goes to on_body.
struct response_handler {
  std::function<bool(const response_head& head)> on_head;
  std::function<bool(std::string_view piece)> on_body;
  std::function<std::span<char>()> body_room = nullptr;
  std::function<bool(std::size_t filled)> body_filled = nullptr;
};

}  // namespace registryd::oci::client
