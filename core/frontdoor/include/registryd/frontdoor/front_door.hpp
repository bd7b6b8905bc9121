// The HTTP(S) front door: the one listener every client talks to. It owns what is the same in
// every mode (TLS, authentication: basic and the token realm /auth/token with Bearer tokens,
// /healthz, /readyz, /metrics, the /v2/ version check) and hands every other /v2/ request to
// the active mode's plugin.
#pragma once

#include <registryd/auth/authenticator.hpp>
#include <registryd/auth/decision.hpp>
#include <registryd/auth/request_scope.hpp>
#include <registryd/auth/token_authority.hpp>
#include <registryd/frontdoor/transport_options.hpp>
#include <registryd/frontdoor/wake_signal.hpp>
#include <registryd/pki/tls_identity.hpp>
#include <registryd/plugin_host/plugin_instance.hpp>
#include <registryd/util/result.hpp>

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <spdlog/logger.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace registryd::frontdoor {

class http_server;
struct exchange;
struct http_request;
struct http_response;
class request_body;
class failure_limiter;

// What a listener serves.
enum class listener_role {
  // The fixed address: /v2/ for the mode, /auth/token, /healthz, /readyz, /metrics.
  registry,
  // The packages proxy's authorizing front (docs/packages-proxy.md): /healthz open; /package
  // (to the packages proxy plugin) and /metrics for a client certificate signed by the host CA,
  // a host token granting registry:packages:pull, or a static token; nothing else.
  packages,
};

struct options {
  std::string address = "127.0.0.1";
  int port = 5001;
  bool tls = true;  // false only for benchmarks and local experiments
  transport_options transport;  // threads, timeouts, limits (docs/frontdoor.md)
  listener_role role = listener_role::registry;
  // packages: the realm a 401 sends clients to for a token (the registry listener's
  // /auth/token).
  std::string token_realm;
  // Ask TLS clients for a certificate (never require one) and verify it against the host CA:
  // the packages listener always does; the registry listener does in a cluster, where node
  // agents authenticate with their node certificates (docs/cluster.md).
  bool client_certificates = false;
};

// The cluster's node endpoints (/cluster/v1/...), answered by the host (docs/cluster.md). The
// front door hands over the request with its body (at most 64 KiB) and the subject of a
// verified client certificate, and sends back what the handler returns.
struct host_api_request {
  std::string method;
  std::string path;
  std::string peer_subject;  // "" without a verified client certificate
  std::string peer_serial;   // that certificate's serial number, hex
  std::string remote_addr;
  std::string body;
  std::multimap<std::string, std::string> params;  // the query's parameters, decoded
  // Asked again after a park (below) ended: answer now.
  bool resumed = false;
};
struct host_api_response {
  unsigned status = 200;
  std::string body;  // JSON
  // A long poll: park the request (no worker held) until `park_on` moves past generation
  // `park_seen` (read before the answer was computed) or `park_for` passes, then ask again
  // with `resumed` set. `status` and `body` are not sent then.
  std::shared_ptr<wake_signal> park_on;
  std::uint64_t park_seen = 0;
  std::chrono::milliseconds park_for{0};
};
using host_api_fn = std::function<host_api_response(const host_api_request&)>;

// Checks an Authorization header value (possibly empty). nullopt: not authenticated.
using authenticate_fn =
    std::function<std::optional<auth::principal>(std::string_view authorization)>;
// The access a user name holds now (nullopt: no such user): lets a token whose subject could
// never be granted a scope be refused with 403 instead of challenged.
using access_of_fn = std::function<std::optional<auth::access_bits>(std::string_view name)>;

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
  // `challenge` is the WWW-Authenticate value of a 401 while token auth is off.
  void set_authenticator(authenticate_fn fn, std::string challenge, access_of_fn access_of = {});
  // Token auth (docs/security.md): /auth/token issues tokens to the authenticator's users, and
  // /v2/ accepts `Authorization: Bearer` tokens the authority verifies. While an authority is
  // set, a 401 on /v2/ challenges with Bearer (realm https://<Host>/auth/token, the service,
  // the scope the request needs); basic credentials keep working. nullptr turns it off.
  void set_token_authority(std::shared_ptr<const auth::token_authority> authority);
  std::shared_ptr<const auth::token_authority> token_authority() const { return token_snapshot(); }
  // The handler of /cluster/v1/ on the registry listener; nullptr: 404 there.
  void set_cluster_api(host_api_fn fn);
  // packages: bearer tokens accepted as they are (a configured list); only their SHA-256 is kept.
  void set_static_tokens(const std::vector<std::string>& tokens);

  // Binds and starts serving on background threads. Fails with the reason (address in use:
  // the address is never shared with another process).
  util::status start();
  // Stops accepting, finishes nothing more, joins. Safe to call twice.
  void stop();
  // The port bound once started (the one asked for, or the one the kernel picked for port 0).
  int port() const;

 private:
  // The largest bodies the host's own endpoints read (each reads all of it, whatever it answers;
  // a larger declared one is refused unread).
  static constexpr std::size_t token_form_limit = 16 * 1024;
  static constexpr std::size_t cluster_body_limit = 64 * 1024;
  // Reads a body of at most `limit` bytes into `out`; false when it is larger, declared so
  // (then nothing is read) or found so (reading stops; the transport drops the rest or closes).
  static bool read_bounded(const http_request& req, request_body& reader, std::size_t limit, std::string& out);
  struct auth_state {
    authenticate_fn authenticate;
    std::string challenge;
    access_of_fn access_of;
  };
  // Who a /v2/ request comes from, before the access check.
  using caller = auth::caller;

  // Routes one request (on a worker thread).
  void handle(const http_request& req, request_body& body, http_response& res);
  void handle_v2(const http_request& req, request_body& body, http_response& res);
  void handle_packages(const http_request& req, request_body& body, http_response& res);
  // packages: true when the client may fetch packages; otherwise answers 401 or 403.
  bool authorize_packages(const http_request& req, http_response& res) const;
  // Hands the request to the plugin (the mode, or the packages proxy) as `user` with `access`.
  void call_plugin(const http_request& req, request_body& body, http_response& res, const std::string& user,
                   auth::access_bits access);
  void handle_readyz(http_response& res) const;
  void handle_metrics(http_response& res) const;
  // The caller, or nullopt after answering 401 (or 429 when the client failed too often).
  std::optional<caller> authenticate(const http_request& req, http_response& res,
                                     const auth::request_scope& scope) const;
  // The access bits the plugin gets, or nullopt after answering 401, 403 or 404.
  std::optional<auth::access_bits> authorize(const caller& who, const http_request& req,
                                             http_response& res,
                                             const auth::request_scope& scope) const;
  void challenge(const http_request& req, http_response& res,
                 const std::vector<auth::resource_actions>& needed, std::string_view error,
                 std::string_view message) const;
  // Answers 429 when `req`'s client has used up its failed authentications.
  bool refuse_when_failing(const http_request& req, http_response& res) const;
  void note_failure(const http_request& req) const;
  // https://<Host of the request>/auth/token (http:// without TLS).
  std::string realm_for(const http_request& req) const;
  // /auth/token (token_endpoint.cpp).
  void handle_token_get(const http_request& req, http_response& res) const;
  void handle_token_post(const http_request& req, request_body& body, http_response& res) const;
  void answer_token(http_response& res, const auth::principal& who,
                    const std::vector<std::string>& scopes, std::string_view service,
                    bool oauth_form) const;
  std::shared_ptr<const auth_state> auth_snapshot() const;
  std::shared_ptr<const auth::token_authority> token_snapshot() const;
  void handle_cluster_api(const http_request& req, request_body& body, http_response& res) const;
  void record(const exchange& x);

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
  std::shared_ptr<const auth::token_authority> tokens_;
  std::shared_ptr<const std::vector<std::string>> static_token_hashes_;  // sorted SHA-256 hex
  // The host CA as a trust store for client certificates (from the identity's chain), when
  // the listener asks for them.
  std::shared_ptr<X509_STORE> client_trust_;
  std::shared_ptr<const host_api_fn> cluster_api_;

  std::unique_ptr<failure_limiter> failures_;
  std::unique_ptr<http_server> server_;
};

}  // namespace registryd::frontdoor
