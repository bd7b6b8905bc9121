// An upstream answer to be read, pulled piece by piece, by code that wants to pull rather than
// be called: a mode plugin's response body (sdk::body_source::read) in Direct mode, say.
// open() runs the exchange on a worker thread and returns once the final answer's status and
// headers are there; read() then takes its body through a bounded buffer, so a slow reader
// holds the upstream back instead of piling bytes up in memory.
//
// Thread-safety: one reader thread at a time per stream. The registry_client must outlive
// every stream opened on it.
#pragma once

#include <registryd/oci/client/error.hpp>
#include <registryd/oci/client/message.hpp>
#include <registryd/oci/client/registry_client.hpp>

#include <cstddef>
#include <memory>
#include <optional>

namespace registryd::oci::client {

class response_stream {
 public:
  // Sends `req` through `client` (auth, redirects, retries as registry_client::send) and waits
  // for the final answer's head. Any HTTP answer, errors included, is a stream: the caller
  // passes its status, headers and body on as they are. A failure before any answer arrived
  // (transport, or a token that could not be had) is returned as the error.
  // `buffer_bytes` bounds the bytes read ahead of the reader.
  static result<std::unique_ptr<response_stream>> open(const registry_client& client, request req,
                                                       std::size_t buffer_bytes = 1024 * 1024);

  // Stops a transfer still running (the connection is shut) and waits for the worker.
  ~response_stream();
  response_stream(const response_stream&) = delete;
  response_stream& operator=(const response_stream&) = delete;

  const response_head& head() const noexcept;
  // Waits for body bytes: fills up to `capacity`, returns the count, 0 at the end of the body,
  // -1 when the transfer failed midway (error() says why).
  std::ptrdiff_t read(char* buffer, std::size_t capacity);
  // Why read() returned -1.
  std::optional<upstream_error> error() const;

  struct state;

 private:
  explicit response_stream(std::shared_ptr<state> s);
  std::shared_ptr<state> state_;
};

}  // namespace registryd::oci::client
