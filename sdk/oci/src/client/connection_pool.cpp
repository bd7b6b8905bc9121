#include "connection_pool.hpp"

#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <poll.h>

#include <stdexcept>

namespace registryd::oci::client::detail {
namespace {

namespace asio = boost::asio;

// "[::1]" -> "::1": names as the resolver and the certificate check want them.
std::string bare_host(const std::string& host) {
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') return host.substr(1, host.size() - 2);
  return host;
}

bool is_ip_address(const std::string& host) {
  boost::system::error_code ec;
  asio::ip::make_address(host, ec);
  return !ec;
}

}  // namespace

tls_context::tls_context(std::string_view pem) : ctx_(asio::ssl::context::tls_client) {
  SSL_CTX* ctx = ctx_.native_handle();
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  ctx_.set_verify_mode(asio::ssl::verify_peer);
  ctx_.set_default_verify_paths();
  if (pem.empty()) return;
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  if (bio == nullptr) throw std::invalid_argument("ca: out of memory");
  X509_STORE* store = SSL_CTX_get_cert_store(ctx);
  while (X509* cert = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr)) {
    X509_STORE_add_cert(store, cert);  // takes its own reference
    X509_free(cert);
    own_cas_ = true;
  }
  BIO_free(bio);
  ERR_clear_error();  // the read loop ends on a "no start line" error
  if (!own_cas_) throw std::invalid_argument("ca: no PEM certificate could be read");
}

connection::connection(const url& origin, std::shared_ptr<tls_context> tls) : origin_(origin), tls_(std::move(tls)) {
  buffer_.max_size(1 << 20);  // read-ahead; answers' heads are bounded by the parser
  // Beast sizes each socket read by the buffer's free capacity (at least 512 bytes, at most
  // 64 KiB): a buffer left to grow on demand stays small and reads 512 bytes per system call.
  buffer_.reserve(64 * 1024);
}

connection::~connection() = default;

std::optional<connection::connect_failure> connection::connect(std::chrono::milliseconds timeout) {
  const auto host = bare_host(origin_.host);
  asio::ip::tcp::resolver::results_type endpoints;
  resolve_deadline_.expires_after(timeout);
  resolve_deadline_.async_wait([this](boost::system::error_code e) {
    if (e) return;  // cancelled: the lookup ended first
    lookup_timed_out_ = true;
    resolver_.cancel();
  });
  auto ec = run(timeout, [&](auto handler) {
    resolver_.async_resolve(host, std::to_string(origin_.port),
                            [&endpoints, handler](boost::system::error_code e, auto results) mutable {
                              endpoints = std::move(results);
                              handler(e);
                            });
  });
  resolve_deadline_.cancel();
  if (lookup_timed_out_) ec = boost::beast::error::timeout;
  if (ec) return connect_failure{step::resolve, ec};
  ec = run(timeout, [&](auto handler) { tcp_.async_connect(endpoints, handler); });
  if (ec) return connect_failure{step::connect, ec};
  tcp_.socket().set_option(asio::ip::tcp::no_delay(true), ec);
  if (origin_.scheme != "https") return std::nullopt;

  tls_stream_.emplace(tcp_, tls_->get());
  SSL* ssl = tls_stream_->native_handle();
  X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
  // The certificate must name the host: a name OpenSSL cannot take (a scoped IPv6 address,
  // say) fails the connection rather than leave the check out.
  bool named = false;
  if (is_ip_address(host)) {
    named = X509_VERIFY_PARAM_set1_ip_asc(param, host.c_str()) == 1;
  } else {
    X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    named = SSL_set_tlsext_host_name(ssl, host.c_str()) == 1 &&
            X509_VERIFY_PARAM_set1_host(param, host.c_str(), host.size()) == 1;
  }
  if (!named) return connect_failure{step::handshake, asio::error::invalid_argument};
  ec = run(timeout,
           [&](auto handler) { tls_stream_->async_handshake(asio::ssl::stream_base::client, handler); });
  if (ec) return connect_failure{step::handshake, ec, SSL_get_verify_result(ssl)};
  return std::nullopt;
}

bool connection::idle_and_open() const {
  const int fd = const_cast<boost::beast::tcp_stream&>(tcp_).socket().native_handle();
  if (fd < 0 || buffer_.size() != 0) return false;
  pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, 0) == 0;
}

void connection::shut() {
  shut_ = true;
  asio::post(ioc_, [this] {
    boost::system::error_code ignored;
    tcp_.socket().shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
    tcp_.cancel();
    resolver_.cancel();
  });
}

connection_pool::connection_pool(pool_settings settings) : settings_(std::move(settings)) {}

connection_pool::lease connection_pool::acquire(const url& u) {
  const auto key = u.origin();
  const auto now = std::chrono::steady_clock::now();
  std::vector<idle_connection> dropped;
  lease out;
  {
    std::lock_guard lock(mutex_);
    auto it = idle_.find(key);
    while (it != idle_.end() && !it->second.empty()) {
      auto candidate = std::move(it->second.back());
      it->second.pop_back();
      if (now - candidate.since >= settings_.idle_timeout) {
        // The newest is too old, so all are: close them outside the lock.
        dropped.push_back(std::move(candidate));
        for (auto& c : it->second) dropped.push_back(std::move(c));
        it->second.clear();
        break;
      }
      if (candidate.conn->idle_and_open()) {
        out = lease{std::move(candidate.conn), true};
        break;
      }
      dropped.push_back(std::move(candidate));  // closed by the server while it sat idle
    }
  }
  dropped.clear();
  return out;
}

void connection_pool::release(const url& u, std::unique_ptr<connection> conn) {
  if (!conn || settings_.max_idle == 0) return;
  const auto key = u.origin();
  std::unique_ptr<connection> oldest;
  std::lock_guard lock(mutex_);
  auto& list = idle_[key];
  if (list.size() >= settings_.max_idle) {
    // Drop the oldest; the newest is likeliest still open at the server.
    oldest = std::move(list.front().conn);
    list.erase(list.begin());
  }
  list.push_back(idle_connection{std::move(conn), std::chrono::steady_clock::now()});
}

std::size_t connection_pool::idle() const {
  std::lock_guard lock(mutex_);
  std::size_t n = 0;
  for (const auto& [k, v] : idle_) n += v.size();
  return n;
}

}  // namespace registryd::oci::client::detail
