// The front door's transport: an event-driven HTTP/1.1 server on Boost.Asio, with Boost.Beast's
// parser and Asio's OpenSSL stream for TLS (docs/frontdoor.md).
//
// A few I/O threads hold every connection; a connection costs memory, not a thread. Request
// handlers run on a bounded worker pool, and only a request in flight occupies a worker: its
// body is read for it by the I/O threads piece by piece (backpressure: nothing is read before
// the handler asks), and a file answer is sent by the I/O threads (sendfile on plain
// connections) after the worker is free again. Every wait on a client has a deadline.
#pragma once

#include "http_message.hpp"

#include <registryd/frontdoor/transport_options.hpp>
#include <registryd/util/result.hpp>

#include <openssl/ssl.h>
#include <prometheus/registry.h>
#include <spdlog/logger.h>

#include <functional>
#include <memory>
#include <optional>
#include <string>

namespace registryd::frontdoor {

struct server_options {
  std::string address = "127.0.0.1";
  int port = 5001;
  // Sets up the TLS context (suites, certificate callback); nullptr: plain HTTP.
  std::function<bool(SSL_CTX*)> configure_tls;
  transport_options transport;
  // The largest body the handler of this request reads whole whatever it answers (the token
  // endpoint, say), refusing a larger declared one unread; 0 when it may answer first. Such a
  // request's small body is read before the request takes a worker even when the client waits
  // for 100 Continue; elsewhere the 100 waits for the handler's first read.
  std::function<std::size_t(const http_request&)> whole_body_limit;
};

// What the server reports for every answer it sends (the access log and the request metrics).
struct exchange {
  const http_request* request = nullptr;    // nullptr: refused before its head could be read
  const http_response* response = nullptr;  // nullptr for refusals
  unsigned status = 0;
  std::optional<double> seconds;  // from head to last byte; none for refusals
  std::uint64_t bytes_sent = 0;   // of the answer, head and body, as far as it was written
  std::string_view reason;        // why the server itself refused; "" for handled requests
};
using exchange_observer = std::function<void(const exchange&)>;

class http_server {
 public:
  http_server(server_options options, http_handler handler, exchange_observer observer,
              std::shared_ptr<spdlog::logger> logger, prometheus::Registry& metrics);
  ~http_server();
  http_server(const http_server&) = delete;
  http_server& operator=(const http_server&) = delete;

  // Binds (never sharing the address with another process: no SO_REUSEPORT) and starts the
  // threads. Fails with the reason (address in use, TLS set-up).
  util::status start();
  // Stops accepting, closes every connection, joins. Safe to call twice.
  void stop();
  // The port bound (useful with port 0).
  int port() const;

  struct impl;  // the state connections share (http_server.cpp)

 private:
  std::shared_ptr<impl> impl_;
};

}  // namespace registryd::frontdoor
