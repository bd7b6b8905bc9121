#include <registryd/frontdoor/front_door.hpp>

#include "failure_limiter.hpp"
#include "http_server.hpp"
#include "response_writer.hpp"

#include <registryd/auth/access.hpp>
#include <registryd/auth/basic_credentials.hpp>
#include <registryd/auth/scope.hpp>
#include <registryd/oci/digest.hpp>
#include <registryd/sdk/oci_error.hpp>
#include <registryd/util/logging.hpp>
#include <registryd/util/process_metrics.hpp>

#include <nlohmann/json.hpp>
#include <prometheus/text_serializer.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <chrono>
#include <cstring>
#include <iterator>
#include <optional>
#include <utility>
#include <vector>

namespace registryd::frontdoor {
namespace {

registryd_str view(const std::string& s) noexcept { return {s.data(), s.size()}; }

// The token of an "Authorization: Bearer <token>" value (scheme case-insensitive), or nullopt
// for any other scheme.
std::optional<std::string_view> bearer_token(std::string_view header) {
  constexpr std::string_view scheme = "bearer ";
  if (header.size() <= scheme.size()) return std::nullopt;
  for (std::size_t i = 0; i < scheme.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(header[i])) != scheme[i]) return std::nullopt;
  }
  std::string_view token = header.substr(scheme.size());
  while (!token.empty() && (token.front() == ' ' || token.front() == '\t')) token.remove_prefix(1);
  while (!token.empty() && (token.back() == ' ' || token.back() == '\t')) token.remove_suffix(1);
  if (token.empty()) return std::nullopt;
  return token;
}

// Another method on one of the host's own endpoints: a 405 that names what the path answers
// (RFC 9110, 15.5.6), not a 404 for a path that exists.
void method_not_allowed(http_response& res, std::string_view path, std::string_view allowed) {
  res.status = 405;
  res.set_header("Allow", std::string(allowed));
  res.set_content("405 Method Not Allowed: " + std::string(path) + " answers " + std::string(allowed) + "\n",
                  "text/plain");
}

void oci_error(http_response& res, unsigned status, std::string_view code, std::string_view message) {
  res.status = status;
  res.set_content(sdk::oci_error_body(code, message), "application/json");
}

// A GET or HEAD body larger than this is refused before it is read:
// the registry API sends none, and no body is ever held whole.
constexpr std::uint64_t max_get_body = 64 * 1024;

// The longest client certificate chain verified (a node certificate and the CA that signed
// it, with room for one intermediate), and the largest certificate message read.
constexpr int client_chain_depth = 2;
constexpr long client_chain_bytes = 16 * 1024;
// TLS 1.3 suites and TLS 1.2 ciphers, in the server's order of preference (docs/security.md).
constexpr const char* tls13_suites = "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256";
constexpr const char* tls12_ciphers =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
    "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";

// Text from a request (a path, say) made safe for one log line: control characters, spaces
// and bytes outside ASCII are percent-encoded, and it is cut at 512 characters. A request
// cannot forge a log line or break a JSON log.
std::string loggable(std::string_view text) {
  static constexpr char hex[] = "0123456789ABCDEF";
  std::string out;
  for (const char c : text.substr(0, 512)) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u >= 0x7f) {
      out += '%';
      out += hex[u >> 4];
      out += hex[u & 0xf];
    } else {
      out += c;
    }
  }
  if (text.size() > 512) out += "...";
  return out;
}

// A /v2/ path a plugin may trust: no "." or ".." segment, no empty segment, no encoded '/'
// or control character. Repository names never hold them (distribution spec), and a plugin
// that maps paths to storage must never see them.
bool is_clean_v2_path(const http_request& req) {
  const std::string_view path = req.path;
  std::size_t start = 1;  // after the leading '/'
  while (start <= path.size()) {
    const std::size_t end = std::min(path.find('/', start), path.size());
    const std::string_view segment = path.substr(start, end - start);
    const bool last = end == path.size();
    if ((segment.empty() && !last) || segment == "." || segment == "..") return false;
    start = end + 1;
  }
  for (const char c : path) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) return false;
  }
  const std::string_view target = std::string_view(req.target).substr(0, req.target.find('?'));
  return target.find("%2f") == std::string_view::npos && target.find("%2F") == std::string_view::npos;
}

// The host side of registryd_body_reader.
struct body_context {
  request_body* body = nullptr;

  static int read(void* ctx, registryd_body_chunk_fn on_chunk, void* chunk_ctx) {
    auto* self = static_cast<body_context*>(ctx);
    return self->body->read([&](const char* data, std::size_t size) {
             return on_chunk(chunk_ctx, registryd_str{data, size}) == 0;
           })
               ? 0
               : -1;
  }
};

}  // namespace

front_door::front_door(options opts, std::shared_ptr<spdlog::logger> logger,
                       std::shared_ptr<prometheus::Registry> metrics)
    : opts_(std::move(opts)),
      logger_(std::move(logger)),
      metrics_(std::move(metrics)),
      requests_total_(prometheus::BuildCounter()
                          .Name("registryd_http_requests_total")
                          .Help("HTTP requests served by the front door, by method and status.")
                          .Register(*metrics_)),
      request_seconds_(prometheus::BuildHistogram()
                           .Name("registryd_http_request_duration_seconds")
                           .Help("Time from request to the last byte of the response, by method.")
                           .Register(*metrics_)) {}

front_door::~front_door() { stop(); }

void front_door::set_mode(std::shared_ptr<const plugin_host::plugin_instance> mode,
                          std::string reason) {
  std::shared_ptr<const plugin_host::plugin_instance> old;
  {
    std::lock_guard lock(mutex_);
    old = std::exchange(mode_, std::move(mode));
    no_mode_reason_ = reason.empty() ? "no registry mode is active" : std::move(reason);
  }
  // The old mode goes here, outside the lock, when this held its last reference: its
  // destructor stops the plugin, which may wait on the network (Local's replica sync finishing
  // a request to a peer master). Under the lock, every handshake (on_handshake) and request
  // would wait with it, and two masters changing settings at once waited on each other.
  old.reset();
}

void front_door::set_identity(std::shared_ptr<const pki::tls_identity> identity) {
  std::shared_ptr<X509_STORE> trust;
  if (opts_.client_certificates && identity && !identity->chain.empty()) {
    // The CA is the last certificate the server sends after its leaf.
    trust.reset(X509_STORE_new(), &X509_STORE_free);
    if (!trust || X509_STORE_add_cert(trust.get(), identity->chain.back().get()) != 1) trust.reset();
  }
  std::lock_guard lock(mutex_);
  identity_ = std::move(identity);
  client_trust_ = std::move(trust);
}

void front_door::set_cluster_api(host_api_fn fn) {
  auto shared = fn ? std::make_shared<const host_api_fn>(std::move(fn)) : nullptr;
  std::lock_guard lock(mutex_);
  cluster_api_ = std::move(shared);
}

bool front_door::read_bounded(const http_request& req, request_body& reader, std::size_t limit, std::string& out) {
  if (req.content_length > static_cast<std::int64_t>(limit)) return false;
  bool too_large = false;
  reader.read([&](const char* data, std::size_t size) {
    if (out.size() + size > limit) too_large = true;
    if (!too_large) out.append(data, size);
    return !too_large;
  });
  return !too_large;
}

void front_door::handle_cluster_api(const http_request& req, request_body& reader, http_response& res) const {
  std::shared_ptr<const host_api_fn> api;
  {
    std::lock_guard lock(mutex_);
    api = cluster_api_;
  }
  if (!api) {
    res.status = 404;
    res.set_content("404 page not found\n", "text/plain");
    return;
  }
  host_api_request r{req.method, req.path, req.peer_subject, req.peer_serial, req.remote_addr, {}, req.params(),
                     req.resumed};
  // A resumed long poll's body was read the first time (a GET has none).
  if (!req.resumed && !read_bounded(req, reader, cluster_body_limit, r.body)) {
    res.status = 413;
    res.set_content(R"({"error":"the body is larger than 64 KiB"})", "application/json");
    return;
  }
  const auto answer = (*api)(r);
  if (answer.park_on && answer.park_for.count() > 0 && !req.resumed && req.method == "GET") {
    res.park_on = answer.park_on;
    res.park_seen = answer.park_seen;
    res.park_for = answer.park_for;
    return;
  }
  res.status = answer.status;
  res.set_header("Cache-Control", "no-store");
  res.set_content(answer.body, "application/json");
}

void front_door::set_static_tokens(const std::vector<std::string>& tokens) {
  auto hashes = std::make_shared<std::vector<std::string>>();
  for (const auto& t : tokens) hashes->push_back(oci::digest_of(t).str());
  std::sort(hashes->begin(), hashes->end());
  std::lock_guard lock(mutex_);
  static_token_hashes_ = std::move(hashes);
}

std::shared_ptr<const pki::tls_identity> front_door::identity() const {
  std::lock_guard lock(mutex_);
  return identity_;
}

int front_door::on_handshake(SSL* ssl, void* self) {
  const auto* door = static_cast<const front_door*>(self);
  std::shared_ptr<const pki::tls_identity> identity;
  std::shared_ptr<X509_STORE> trust;
  {
    std::lock_guard lock(door->mutex_);
    identity = door->identity_;
    trust = door->client_trust_;
  }
  // Client certificates (packages listener) verify against the CA of the identity in use.
  if (trust && SSL_set1_verify_cert_store(ssl, trust.get()) != 1) return 0;
  // No identity yet fails the handshake; SSL_use_* keep their own references, so the
  // connection keeps what it got even when the identity is swapped in the middle of it.
  return identity && pki::install_identity(ssl, *identity).ok() ? 1 : 0;
}

std::shared_ptr<const plugin_host::plugin_instance> front_door::mode() const {
  std::lock_guard lock(mutex_);
  return mode_;
}

void front_door::set_token_authority(std::shared_ptr<const auth::token_authority> authority) {
  std::lock_guard lock(mutex_);
  tokens_ = std::move(authority);
}

void front_door::set_authenticator(authenticate_fn fn, std::string challenge, access_of_fn access_of) {
  auto state = fn ? std::make_shared<const auth_state>(
                        auth_state{std::move(fn), std::move(challenge), std::move(access_of)})
                  : nullptr;
  std::lock_guard lock(mutex_);
  auth_ = std::move(state);
}

util::status front_door::start() {
  server_options so;
  so.address = opts_.address;
  so.port = opts_.port;
  so.transport = opts_.transport;
  // The host's own endpoints that take a body read all of it (up to their limits, refusing a
  // larger declared one unread): the transport reads such a body before a worker is taken,
  // even for a client waiting for 100 Continue.
  so.whole_body_limit = [](const http_request& req) -> std::size_t {
    if (req.path == "/auth/token") return token_form_limit;
    if (req.path.starts_with("/cluster/v1/")) return cluster_body_limit;
    return 0;
  };
  if (opts_.tls) {
    so.configure_tls = [this](SSL_CTX* ctx) {
      SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
      SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
                                   SSL_OP_CIPHER_SERVER_PREFERENCE);
      // AEAD suites only, AES-128-GCM first (Mozilla's "intermediate" order, and what Go's
      // crypto/tls picks with AES hardware): as safe as AES-256 here and about a quarter
      // cheaper per byte, which is most of the CPU a TLS blob pull costs.
      if (SSL_CTX_set_ciphersuites(ctx, tls13_suites) != 1 || SSL_CTX_set_cipher_list(ctx, tls12_ciphers) != 1) {
        return false;
      }
      SSL_CTX_set_cert_cb(ctx, &front_door::on_handshake, this);
      if (opts_.client_certificates) {
        // Ask for a client certificate without requiring one: a client may authenticate with a
        // token instead. The result of the check is read after the handshake
        // (http_request::peer_subject); an untrusted certificate is simply no credential.
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, [](int, X509_STORE_CTX*) { return 1; });
        // A node certificate is signed by the host CA itself. A longer chain is refused at its
        // length, and a larger certificate message before it is parsed: verifying a client's
        // 151-certificate chain cost 30 to 44 ms of the I/O thread a handshake, without
        // credentials (a probe on 2026-12-07).
        SSL_CTX_set_verify_depth(ctx, client_chain_depth);
        SSL_CTX_set_max_cert_list(ctx, client_chain_bytes);
      }
      return true;
    };
  }
  failures_ = std::make_unique<failure_limiter>(opts_.transport.auth_failures_per_minute);
  server_ = std::make_unique<http_server>(
      std::move(so),
      [this](const http_request& req, request_body& body, http_response& res) { handle(req, body, res); },
      [this](const exchange& x) { record(x); },
      logger_, *metrics_);
  if (auto st = server_->start(); !st) {
    server_.reset();
    return st;
  }
  return util::ok();
}

int front_door::port() const { return server_ ? server_->port() : opts_.port; }

void front_door::stop() {
  if (server_) server_->stop();
  server_.reset();
}

void front_door::handle(const http_request& req, request_body& body, http_response& res) {
  const std::string& path = req.path;
  const bool get = req.method == "GET" || req.method == "HEAD";
  if (get && req.has_body() &&
      (req.content_length < 0 || static_cast<std::uint64_t>(req.content_length) > max_get_body)) {
    oci_error(res, 413, "SIZE_INVALID", "a GET or HEAD request carries no body");
    return;
  }
  if (opts_.role == listener_role::packages) {
    handle_packages(req, body, res);
  } else if (path == "/v2" || path.starts_with("/v2/")) {
    handle_v2(req, body, res);
  } else if (path == "/healthz" || path == "/readyz" || path == "/metrics") {
    if (!get) {
      method_not_allowed(res, path, "GET, HEAD");
    } else if (path == "/healthz") {
      res.set_content("ok\n", "text/plain");
    } else if (path == "/readyz") {
      handle_readyz(res);
    } else {
      handle_metrics(res);
    }
  } else if (path == "/auth/token") {
    if (get) {
      handle_token_get(req, res);
    } else if (req.method == "POST") {
      handle_token_post(req, body, res);
    } else {
      method_not_allowed(res, path, "GET, HEAD, POST");
    }
  } else if (path.starts_with("/cluster/v1/")) {
    handle_cluster_api(req, body, res);
  } else {
    // A body sent here is drained (or the connection closed) by the transport.
    res.status = 404;
    res.set_content("404 page not found\n", "text/plain");
  }
}

std::shared_ptr<const front_door::auth_state> front_door::auth_snapshot() const {
  std::lock_guard lock(mutex_);
  return auth_;
}

std::shared_ptr<const auth::token_authority> front_door::token_snapshot() const {
  std::lock_guard lock(mutex_);
  return tokens_;
}

std::string front_door::realm_for(const http_request& req) const {
  // The Host header names the address the client used (the node balancer's, say), so the
  // realm stays reachable the same way. The transport lets only a host[:port] through (or an
  // empty Host; an absolute-form target's authority takes its place): nothing that could break
  // out of the quoted realm.
  std::string host = req.header("Host");
  if (host.empty() || host.size() > 255) host = opts_.address + ":" + std::to_string(opts_.port);
  return std::string(opts_.tls ? "https://" : "http://") + host + "/auth/token";
}

void front_door::challenge(const http_request& req, http_response& res,
                           const std::vector<auth::resource_actions>& needed,
                           std::string_view error, std::string_view message) const {
  const auto tokens = token_snapshot();
  if (tokens) {
    res.set_header("WWW-Authenticate",
                   auth::bearer_challenge(realm_for(req), tokens->settings().service, needed, error));
  } else if (const auto auth = auth_snapshot()) {
    res.set_header("WWW-Authenticate", auth->challenge);
  }
  nlohmann::json detail = nullptr;
  if (!needed.empty()) {
    detail = nlohmann::json::array();
    for (const auto& r : needed) {
      for (const auto& a : r.actions) {
        detail.push_back({{"Type", r.type}, {"Name", r.name}, {"Action", a}});
      }
    }
  }
  res.status = 401;
  res.set_content(sdk::oci_error_body("UNAUTHORIZED", message, detail), "application/json");
}

std::optional<front_door::caller> front_door::authenticate(const http_request& req,
                                                           http_response& res,
                                                           const auth::request_scope& scope) const {
  const auto auth = auth_snapshot();
  if (!auth) return caller{"", auth::access_read_write, std::nullopt};
  const std::string header = req.header("Authorization");
  if (const auto bearer = bearer_token(header)) {
    const auto tokens = token_snapshot();
    if (!tokens) {
      challenge(req, res, scope.needed, {}, "token authentication is off: use basic credentials");
      return std::nullopt;
    }
    auto claims = tokens->verify(*bearer, std::chrono::system_clock::now());
    if (!claims) {
      logger_->info("{} refused a token: {}", req.remote_addr, claims.error_message());
      challenge(req, res, scope.needed, "invalid_token", "invalid token");
      return std::nullopt;
    }
    const auth::access_bits account =
        auth->access_of ? auth->access_of(claims->subject).value_or(0) : auth::access_bits{0};
    return caller{claims->subject, account, std::move(claims->access)};
  }
  if (header.empty()) {
    challenge(req, res, scope.needed, {}, "authentication required");
    return std::nullopt;
  }
  if (refuse_when_failing(req, res)) return std::nullopt;
  if (auto who = auth->authenticate(header)) return caller{who->name, who->access, std::nullopt};
  note_failure(req);
  challenge(req, res, scope.needed, {}, "invalid credentials");
  return std::nullopt;
}

bool front_door::refuse_when_failing(const http_request& req, http_response& res) const {
  const long wait = failures_->blocked_for(req.remote_addr);
  if (wait == 0) return false;
  res.set_header("Retry-After", std::to_string(wait));
  oci_error(res, 429, "TOOMANYREQUESTS",
            "too many failed authentications from " + req.remote_addr + ": try again in " +
                std::to_string(wait) + " s");
  return true;
}

void front_door::note_failure(const http_request& req) const {
  failures_->failed(req.remote_addr);
  // The name tried (never the password) is what an auditor looks for in a guessing attempt.
  const auto tried = auth::parse_basic_authorization(req.header("Authorization"));
  const std::string name = tried ? loggable(tried->username) : std::string();
  util::log_structured(*logger_, spdlog::level::info, "failed to authenticate",
                       {{"remote", std::string_view(req.remote_addr)},
                        {"user", tried ? util::log_value(std::string_view(name)) : util::log_value(std::monostate{})}});
}

std::optional<auth::access_bits> front_door::authorize(const caller& who,
                                                       const http_request& req,
                                                       http_response& res,
                                                       const auth::request_scope& scope) const {
  const auto d = auth::decide(who, req.method, scope);
  switch (d.kind) {
    case auth::decision::verdict::allow:
      return d.access;
    case auth::decision::verdict::challenge:
      challenge(req, res, scope.needed, d.error, d.message);
      return std::nullopt;
    case auth::decision::verdict::refuse:
      oci_error(res, d.status, d.code, d.message);
      return std::nullopt;
  }
  return std::nullopt;
}

void front_door::handle_v2(const http_request& req, request_body& body, http_response& res) {
  res.set_header("Docker-Distribution-API-Version", "registry/2.0");
  const auth::request_scope scope =
      auth::scope_of_request(req.method, req.path, req.param("from"));
  // A method the API does not have is a 501 for every caller, before any credential is looked
  // at: auth::decide answers it first, whoever asks.
  if (auth::required_access(req.method) == 0) {
    (void)authorize(caller{}, req, res, scope);
    return;
  }
  const auto who = authenticate(req, res, scope);
  if (!who) return;
  res.user = who->name;

  if (req.path == "/v2" || req.path == "/v2/") {
    if (req.method == "GET" || req.method == "HEAD") {
      res.set_content("{}", "application/json");
    } else {
      res.set_header("Allow", "GET, HEAD");  // RFC 9110 (15.5.6): a 405 names what is allowed
      oci_error(res, 405, "UNSUPPORTED", "the version check answers GET and HEAD only");
    }
    return;
  }

  if (!is_clean_v2_path(req)) {
    oci_error(res, 400, "NAME_INVALID",
              "the path holds an empty, '.' or '..' segment, an encoded '/' or a control character");
    return;
  }

  const auto access = authorize(*who, req, res, scope);
  if (!access) return;

  call_plugin(req, body, res, who->name, *access);
}

void front_door::call_plugin(const http_request& req, request_body& body, http_response& res,
                             const std::string& user, auth::access_bits access) {
  std::shared_ptr<const plugin_host::plugin_instance> mode;
  std::string reason;
  {
    std::lock_guard lock(mutex_);
    mode = mode_;
    reason = no_mode_reason_;
  }
  if (!mode) {
    oci_error(res, 503, "UNAVAILABLE", reason);
    return;
  }
  body_context body_ctx;
  body_ctx.body = &body;

  std::vector<registryd_header> headers;
  headers.reserve(req.headers.size());
  for (const auto& [name, value] : req.headers) headers.push_back({view(name), view(value)});

  registryd_body_reader body_reader{};
  body_reader.ctx = &body_ctx;
  body_reader.read = &body_context::read;
  body_reader.content_length = req.content_length;

  registryd_request r{};
  r.struct_size = sizeof(r);
  r.method = view(req.method);
  r.path = view(req.path);
  r.query = view(req.query);
  r.headers = headers.data();
  r.header_count = headers.size();
  r.remote_addr = view(req.remote_addr);
  r.user = view(user);
  r.access = access;
  r.body = &body_reader;

  response_writer writer;
  mode->handle(r, *writer.abi());
  writer.apply(res, std::move(mode));
}

void front_door::handle_packages(const http_request& req, request_body& body, http_response& res) {
  const bool get = req.method == "GET" || req.method == "HEAD";
  if ((req.path == "/healthz" || req.path == "/metrics") && !get) {
    method_not_allowed(res, req.path, "GET, HEAD");
  } else if (req.path == "/healthz") {
    res.set_content("ok\n", "text/plain");
  } else if (req.path == "/package" || req.path == "/metrics") {
    if (!authorize_packages(req, res)) return;
    if (req.path == "/metrics") return handle_metrics(res);
    res.user = req.peer_subject;
    call_plugin(req, body, res, req.peer_subject, auth::access_pull);
  } else {
    res.status = 404;
    res.set_content("404 page not found\n", "text/plain");
  }
}

bool front_door::authorize_packages(const http_request& req, http_response& res) const {
  if (!req.peer_subject.empty()) return true;  // a client certificate signed by the host CA
  const auto deny = [&](unsigned status, std::string_view error, const std::string& text) {
    if (status == 401) {
      std::string value = "Bearer realm=\"" + opts_.token_realm + "\",scope=\"" +
                          auth::to_string(auth::packages_resource) + "\"";
      if (const auto tokens = token_snapshot()) value += ",service=\"" + tokens->settings().service + "\"";
      if (!error.empty()) value += ",error=\"" + std::string(error) + "\"";
      res.set_header("WWW-Authenticate", value);
    }
    res.status = status;
    res.set_content(text + "\n", "text/plain");
    return false;
  };
  const std::string authorization = req.header("Authorization");
  const auto bearer = bearer_token(authorization);
  if (!bearer) {
    return deny(401, {}, "authorization required: a bearer token granting " +
                             auth::to_string(auth::packages_resource) + " or a client certificate of the registry CA");
  }
  std::shared_ptr<const std::vector<std::string>> statics;
  {
    std::lock_guard lock(mutex_);
    statics = static_token_hashes_;
  }
  if (statics && std::binary_search(statics->begin(), statics->end(), oci::digest_of(*bearer).str())) return true;
  const auto tokens = token_snapshot();
  if (!tokens) return deny(401, "invalid_token", "invalid token");
  auto claims = tokens->verify(*bearer, std::chrono::system_clock::now());
  if (!claims) {
    logger_->info("{} refused a token on the packages listener: {}", req.remote_addr, claims.error_message());
    return deny(401, "invalid_token", "invalid token");
  }
  if (!auth::covers(claims->access, {auth::packages_resource})) {
    return deny(403, {}, "the token does not grant " + auth::to_string(auth::packages_resource));
  }
  return true;
}

void front_door::handle_readyz(http_response& res) const {
  const auto mode_now = mode();
  if (!mode_now) {
    std::lock_guard lock(mutex_);
    res.status = 503;
    res.set_content(no_mode_reason_ + "\n", "text/plain");
    return;
  }
  const auto health = mode_now->health();
  if (!health.ok()) {
    res.status = 503;
    res.set_content(health.error_message() + "\n", "text/plain");
    return;
  }
  res.set_content("ok: " + std::string(mode_now->mode()) + "\n", "text/plain");
}

void front_door::handle_metrics(http_response& res) const {
  auto families = metrics_->Collect();
  auto process = util::process_collector().Collect();
  families.insert(families.end(), std::make_move_iterator(process.begin()), std::make_move_iterator(process.end()));
  std::string text = prometheus::TextSerializer().Serialize(families);
  if (const auto mode_now = mode()) text += mode_now->metrics();
  res.set_content(std::move(text), "text/plain; version=0.0.4");
}

namespace {

// A request's method as a metric label: the methods HTTP defines by name, anything else
// "other". The method is the client's to choose, and each new label value would add series to
// /metrics that are never removed: 20,000 invented methods made it 22 MB.
std::string method_label(const http_request* req) {
  if (req == nullptr) return "-";
  static constexpr std::array<std::string_view, 9> known = {"GET",     "HEAD",    "POST",  "PUT",  "PATCH",
                                                            "DELETE",  "OPTIONS", "TRACE", "CONNECT"};
  for (const auto m : known) {
    if (req->method == m) return std::string(m);
  }
  return "other";
}

}  // namespace

void front_door::record(const exchange& x) {
  const http_request* req = x.request;
  const std::string method = method_label(req);
  requests_total_.Add({{"method", method}, {"code", std::to_string(x.status)}}).Increment();
  // Requests the transport refused before routing are counted, not timed.
  if (x.seconds) {
    request_seconds_
        .Add({{"method", method}},
             prometheus::Histogram::BucketBoundaries{0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30})
        .Observe(*x.seconds);
  }
  if (!x.reason.empty()) {
    // Nothing of a refused request is logged but who and why: its bytes are not a request.
    util::log_structured(*logger_, spdlog::level::info, "refused: " + std::string(x.reason),
                         {{"remote", req != nullptr ? std::string_view(req->remote_addr) : std::string_view("-")},
                          {"status", static_cast<std::int64_t>(x.status)}});
    return;
  }
  if (req == nullptr) return;
  const auto level = (req->path == "/healthz" || req->path == "/readyz" || req->path == "/metrics")
                         ? spdlog::level::debug
                         : spdlog::level::info;
  if (!logger_->should_log(level)) return;
  // The access log (docs/operations.md, "Logs"): one entry per answer, naming the user, so a
  // push, delete or tag change can be traced to who made it.
  const std::string shown_method = loggable(req->method);
  const std::string shown_target = loggable(req->target);
  const std::string shown_path = loggable(req->path);
  const std::string shown_query = loggable(req->query);
  util::log_fields fields = {
      {"remote", std::string_view(req->remote_addr)},
      {"user", x.response != nullptr && !x.response->user.empty() ? util::log_value(std::string_view(x.response->user))
                                                                    : util::log_value(std::monostate{})},
      {"method", std::string_view(shown_method)},
      {"path", std::string_view(shown_path)},
      {"status", static_cast<std::int64_t>(x.status)},
      {"bytes", static_cast<std::int64_t>(x.bytes_sent)},
      {"duration", x.seconds.value_or(0.0)},
  };
  if (!shown_query.empty()) fields.emplace_back("query", std::string_view(shown_query));
  // What a push or tag change stored: the digest the registry answered with.
  std::string digest;
  if (x.response != nullptr && req->method != "GET" && req->method != "HEAD") {
    for (const auto& [name, value] : x.response->headers) {
      if (iequals(name, "Docker-Content-Digest")) digest = loggable(value);
    }
    if (!digest.empty()) fields.emplace_back("digest", std::string_view(digest));
  }
  util::log_structured(*logger_, level, shown_method + " " + shown_target + " " + std::to_string(x.status), fields);
}

}  // namespace registryd::frontdoor
