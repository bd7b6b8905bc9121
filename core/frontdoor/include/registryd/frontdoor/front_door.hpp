// The HTTP(S) front door: the one listener every client talks to. It owns what is the same in
// every mode (TLS, authentication, /healthz, /readyz, /metrics, the /v2/ version check) and
// hands every other /v2/ request to the active mode's plugin.
#pragma once

#include <registryd/auth/authenticator.hpp>
#include <registryd/pki/tls_identity.hpp>
#include <registryd/plugin_host/plugin_instance.hpp>
#include <registryd/util/result.hpp>

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <spdlog/logger.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>

namespace httplib {
class Server;
struct Request;
struct Response;
class ContentReader;
}  // namespace httplib

namespace registryd::frontdoor {

struct options {
  std::string address = "127.0.0.1";
  int port = 5001;
  bool tls = true;            // false only for benchmarks and local experiments
  std::size_t threads = 64;   // worker threads = concurrent keep-alive connections served
  std::size_t keep_alive_max_requests = 1000;
  int keep_alive_timeout_seconds = 30;  // idle keep-alive connections are closed after this
  int read_timeout_seconds = 60;
  int write_timeout_seconds = 60;
};

// Checks an Authorization header value (possibly empty). nullopt: not authenticated.
using authenticate_fn =
    std::function<std::optional<auth::principal>(std::string_view authorization)>;

class front_door {
 public:
  front_door(options opts, std::shared_ptr<spdlog::logger> logger,
             std::shared_ptr<prometheus::Registry> metrics);
  ~front_door();
  front_door(const front_door&) = delete;
  front_door& operator=(const front_door&) = delete;

  // New TLS handshakes use this identity from now on; open connections keep theirs.
  void set_identity(std::shared_ptr<const pki::tls_identity> identity);
  std::shared_ptr<const pki::tls_identity> identity() const;
  // The plugin that answers /v2/ requests; nullptr with a reason when none can.
  void set_mode(std::shared_ptr<const plugin_host::plugin_instance> mode, std::string reason = {});
  std::shared_ptr<const plugin_host::plugin_instance> mode() const;
  // With no authenticator every request is anonymous with full access (authentication off).
  void set_authenticator(authenticate_fn fn, std::string challenge);

  // Binds and starts serving on a background thread. Fails with the reason (address in use).
  util::status start();
  // Stops accepting, finishes nothing more, joins. Safe to call twice.
  void stop();

 private:
  struct auth_state {
    authenticate_fn authenticate;
    std::string challenge;
  };

  void install_routes();
  void handle_v2(const httplib::Request& req, httplib::Response& res,
                 const httplib::ContentReader* body);
  void handle_readyz(httplib::Response& res) const;
  void handle_metrics(httplib::Response& res) const;
  std::optional<auth::principal> authenticate(const httplib::Request& req, httplib::Response& res) const;
  void record(const httplib::Request& req, const httplib::Response& res);

  options opts_;
  std::shared_ptr<spdlog::logger> logger_;
  std::shared_ptr<prometheus::Registry> metrics_;
  prometheus::Family<prometheus::Counter>& requests_total_;
  prometheus::Family<prometheus::Histogram>& request_seconds_;

  // Installs the current identity into each new connection (SSL_CTX_set_cert_cb): changing an
  // SSL_CTX that other threads use is not thread-safe, per-connection installation is.
  static int on_handshake(SSL* ssl, void* self);

  mutable std::mutex mutex_;
  std::shared_ptr<const pki::tls_identity> identity_;
  std::shared_ptr<const plugin_host::plugin_instance> mode_;
  std::string no_mode_reason_ = "no registry mode is active yet";
  std::shared_ptr<const auth_state> auth_;

  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
};

}  // namespace registryd::frontdoor
