// Internal: keep-alive connections to upstream origins, on Boost.Asio and Boost.Beast.
//
// A connection is used by one exchange at a time, on the calling thread: each owns a small
// io_context of its own and runs it only while one of its operations is pending, so the
// client's blocking interface stays blocking while every wait has a deadline (Beast's
// tcp_stream timer) and can be cut from another thread (abort). Each exchange leases a
// connection and gives it back when the exchange ended cleanly; a few idle ones are kept per
// origin for reuse.
#pragma once

#include "url.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace registryd::oci::client::detail {

// The TLS client context every connection of a transport shares: peers verified against the
// system's CAs plus the configured PEM, TLS 1.2 or later.
class tls_context {
 public:
  // Throws std::invalid_argument when `pem` is not empty and holds no certificate.
  explicit tls_context(std::string_view pem);

  bool has_own_cas() const noexcept { return own_cas_; }
  boost::asio::ssl::context& get() { return ctx_; }

 private:
  boost::asio::ssl::context ctx_;
  bool own_cas_ = false;
};

struct pool_settings {
  std::size_t max_idle = 8;
  std::chrono::milliseconds idle_timeout{30000};
};

// One TCP connection, TLS on it for https. Not thread-safe except for shut().
class connection {
 public:
  connection(const url& origin, std::shared_ptr<tls_context> tls);
  ~connection();
  connection(const connection&) = delete;
  connection& operator=(const connection&) = delete;

  // What went wrong in connect(): the failure kind, and the error the last step met.
  enum class step { resolve, connect, handshake };
  struct connect_failure {
    step where;
    boost::system::error_code ec;
    long verify_result = 0;  // X509 verification result of a failed handshake
  };
  // Resolves, connects and, for https, does the TLS handshake; each step bounded by `timeout`.
  std::optional<connect_failure> connect(std::chrono::milliseconds timeout);

  // Runs the io_context until the operation started by `start` completes; `start` receives
  // the completion handler. The stream's deadline is set to `timeout` first.
  // After shut(), no operation starts: each ends at once with operation_aborted.
  template <class Start>
  boost::system::error_code run(std::chrono::milliseconds timeout, Start&& start) {
    if (shut_.load()) return boost::asio::error::operation_aborted;
    std::optional<boost::system::error_code> done;
    tcp_.expires_after(timeout);
    start([&done](boost::system::error_code ec, auto&&...) { done = ec; });
    ioc_.restart();
    while (!done && ioc_.run_one() > 0) {
    }
    return done.value_or(boost::asio::error::operation_aborted);
  }

  // Calls f with the stream the HTTP exchange runs on: the TLS stream or the TCP stream.
  template <class F>
  decltype(auto) with_stream(F&& f) {
    if (tls_stream_) return f(*tls_stream_);
    return f(tcp_);
  }

  // Bytes read past the end of the last answer (none on a healthy connection).
  boost::beast::flat_buffer& buffer() { return buffer_; }

  // Whether the socket is open with nothing to read: an idle connection the server has not
  // closed. A readable idle connection carries an EOF, a TLS close or stray bytes.
  bool idle_and_open() const;

  // From any thread: closes the socket, ending whatever operation is pending (a name lookup
  // included), and makes every later run() fail at once.
  void shut();

 private:
  url origin_;
  std::shared_ptr<tls_context> tls_;
  boost::asio::io_context ioc_{1};
  boost::beast::tcp_stream tcp_{ioc_};
  boost::asio::ip::tcp::resolver resolver_{ioc_};
  boost::asio::steady_timer resolve_deadline_{ioc_};  // tcp_stream's expiry does not cover lookups
  bool lookup_timed_out_ = false;
  std::atomic<bool> shut_{false};
  std::optional<boost::asio::ssl::stream<boost::beast::tcp_stream&>> tls_stream_;
  boost::beast::flat_buffer buffer_;
};

class connection_pool {
 public:
  explicit connection_pool(pool_settings settings);

  struct lease {
    std::unique_ptr<connection> conn;  // null: make a new one
    // The connection was used before: a failure before the first answer byte may be a
    // connection the server closed just as it was taken.
    bool reused = false;
  };

  // An idle connection to `u.origin()` that is fresh and still open, or an empty lease.
  lease acquire(const url& u);
  // Gives a connection back after a clean exchange; kept when there is room.
  void release(const url& u, std::unique_ptr<connection> conn);
  std::size_t idle() const;

 private:
  struct idle_connection {
    std::unique_ptr<connection> conn;
    std::chrono::steady_clock::time_point since;
  };

  pool_settings settings_;
  mutable std::mutex mutex_;
  std::map<std::string, std::vector<idle_connection>> idle_;
};

}  // namespace registryd::oci::client::detail
