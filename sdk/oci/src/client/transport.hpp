// Internal: one HTTP exchange with an upstream on one pooled keep-alive connection (Boost.Beast's
// parser and serializer over connection_pool.hpp's streams), and what the wire said turned into
// registryd's errors. The registry client's lowest layer: it knows
// nothing of auth or redirects (registry_client.cpp) nor of tokens (token_exchange.hpp).
//
// Thread-safety: perform() may run on many threads at once (the pool is locked).
#pragma once

#include "connection_pool.hpp"
#include "url.hpp"

#include <registryd/oci/client/error.hpp>
#include <registryd/oci/client/message.hpp>
#include <registryd/oci/client/options.hpp>

#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace registryd::oci::client::detail {

// Bodies are handed on in pieces of at most this many bytes.
inline constexpr std::size_t piece_size = 64 * 1024;

// The error of an answer with a status >= 400 (or an unfollowed redirect a typed operation did
// not expect): code and message from the upstream's OCI error body when it has one.
upstream_error http_error(const response_head& head, std::string_view body, const url& where);

class transport {
 public:
  // `options` must outlive the transport. Throws std::invalid_argument for a CA that holds no
  // certificate.
  explicit transport(const client_options& options);

  // Where an answer's body goes, decided from its head.
  enum class route { handler, capture, both };

  struct attempt {
    std::optional<upstream_error> failure;
    response_head head;
    std::string captured;  // the body when routed to capture (bounded)
    bool capture_truncated = false;
  };

  // Sends one request to `where` and reads its answer: the head to route_of, then the body to
  // `handler` and/or captured (at most capture_limit bytes). A kept connection the server
  // closed while idle is retried once on a new one.
  attempt perform(const url& where, const std::string& method, const header_list& headers, const request_body* body,
                  const std::function<route(const response_head&)>& route_of, const response_handler& handler,
                  abort_handle* abort, std::size_t capture_limit);

  std::size_t idle_connections() const { return pool_.idle(); }

 private:
  upstream_error connect_error(const connection::connect_failure& f, const url& where) const;
  std::chrono::milliseconds answer_timeout() const { return options_.answer_timeout.value_or(options_.read_timeout); }

  const client_options& options_;
  std::shared_ptr<tls_context> tls_;
  connection_pool pool_;
};

}  // namespace registryd::oci::client::detail
