#include "transport.hpp"

#include <registryd/oci/route.hpp>

#include <boost/asio/write.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/chunk_encode.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/serializer.hpp>
#include <boost/beast/http/write.hpp>
#include <nlohmann/json.hpp>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <limits>
#include <vector>

namespace registryd::oci::client::detail {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;

// The code a status stands for when the upstream's body names none.
std::string default_code(int status, std::string_view target) {
  switch (status) {
    case 401: return "UNAUTHORIZED";
    case 403: return "DENIED";
    case 405: return "UNSUPPORTED";
    case 416: return "BLOB_UPLOAD_INVALID";
    case 429: return "TOOMANYREQUESTS";
    case 404: {
      const auto path = target.substr(0, target.find('?'));
      const auto r = parse_route(path);
      if (r && r->kind == route_kind::manifest) return "MANIFEST_UNKNOWN";
      if (r && r->kind == route_kind::blob) return "BLOB_UNKNOWN";
      if (r && r->kind == route_kind::upload_session) return "BLOB_UPLOAD_UNKNOWN";
      return "NAME_UNKNOWN";
    }
    default: return status >= 500 ? "UNAVAILABLE" : "UNKNOWN";
  }
}

std::string seconds(std::chrono::milliseconds ms) {
  char buf[48];
  if (ms.count() % 1000 == 0) {
    std::snprintf(buf, sizeof buf, "%lld s", static_cast<long long>(ms.count() / 1000));
  } else {
    std::snprintf(buf, sizeof buf, "%lld.%03lld s", static_cast<long long>(ms.count() / 1000),
                  static_cast<long long>(ms.count() % 1000));
  }
  return std::string(buf);
}

bool is_timeout(const boost::system::error_code& ec) { return ec == beast::error::timeout; }

// How one exchange on one connection ended.
struct outcome {
  enum class kind { ok, stopped, body_failed, write_failed, read_failed, bad_answer } what = kind::ok;
  boost::system::error_code ec;
  bool any_byte = false;   // the answer had begun
  bool head_read = false;  // its head was read whole
  bool reusable = false;   // the connection may carry another exchange
};

struct exchange_args {
  const url& where;
  const std::string& method;
  const header_list& headers;
  const request_body* body;
  const std::function<transport::route(const response_head&)>& route_of;
  const response_handler& handler;
  std::size_t capture_limit;
  std::chrono::milliseconds read_timeout;
  std::chrono::milliseconds answer_timeout;
  const std::string& user_agent;
};

bool method_has_body(const std::string& m) { return m == "POST" || m == "PUT" || m == "PATCH"; }

// Sends the request and reads its answer on `stream`, one of `c`'s streams.
template <class Stream>
outcome exchange(connection& c, Stream& stream, const exchange_args& a, transport::attempt& out) {
  outcome o;
  const auto fail = [&o](outcome::kind k, boost::system::error_code ec = {}) {
    o.what = k;
    o.ec = ec;
    return o;
  };
  std::vector<char> buf(piece_size);

  http::request<http::empty_body> req;
  req.version(11);
  req.method_string(a.method);
  req.target(a.where.target);
  for (const auto& f : a.headers) req.insert(f.name, f.value);
  req.set(http::field::host, a.where.authority());
  if (!a.user_agent.empty() && !a.headers.has("User-Agent")) req.set(http::field::user_agent, a.user_agent);
  if (!a.headers.has("Accept")) req.set(http::field::accept, "*/*");
  if (a.body != nullptr && !a.body->length) {
    req.chunked(true);
  } else if (a.body != nullptr || method_has_body(a.method)) {
    req.content_length(a.body != nullptr ? *a.body->length : 0);
  }
  http::request_serializer<http::empty_body> head_writer(req);
  auto ec = c.run(a.read_timeout, [&](auto h) { http::async_write_header(stream, head_writer, h); });
  if (ec) return fail(outcome::kind::write_failed, ec);

  if (a.body != nullptr) {
    const bool chunked = !a.body->length;
    std::uint64_t sent = 0;
    for (;;) {
      std::size_t want = buf.size();
      if (!chunked) want = static_cast<std::size_t>(std::min<std::uint64_t>(want, *a.body->length - sent));
      if (want == 0) break;
      const auto n = a.body->read(buf.data(), want);
      if (n < 0) return fail(outcome::kind::body_failed);
      if (n == 0) {
        if (!chunked) return fail(outcome::kind::body_failed);  // shorter than announced
        break;
      }
      const auto piece = asio::buffer(buf.data(), static_cast<std::size_t>(n));
      ec = chunked ? c.run(a.read_timeout, [&](auto h) { asio::async_write(stream, http::make_chunk(piece), h); })
                   : c.run(a.read_timeout, [&](auto h) { asio::async_write(stream, piece, h); });
      if (ec) return fail(outcome::kind::write_failed, ec);
      sent += static_cast<std::uint64_t>(n);
    }
    if (chunked) {
      ec = c.run(a.read_timeout, [&](auto h) { asio::async_write(stream, http::make_chunk_last(), h); });
      if (ec) return fail(outcome::kind::write_failed, ec);
    }
  }

  // Interim answers (100 Continue, 103 Early Hints) are read and passed over: the final one
  // follows on the same connection (RFC 9110, section 15.2).
  std::optional<http::response_parser<http::buffer_body>> reading;
  for (;;) {
    reading.emplace();
    // Blobs are as large as they are; the caller bounds captures. (Not boost::none: Boost 1.74
    // compares the length against the optional, and any length is "greater" than none.)
    reading->body_limit(std::numeric_limits<std::uint64_t>::max());
    reading->header_limit(64 * 1024);
    if (a.method == "HEAD") reading->skip(true);
    ec = c.run(a.answer_timeout, [&](auto h) { http::async_read_header(stream, c.buffer(), *reading, h); });
    o.any_byte = o.any_byte || reading->got_some();
    if (ec) {
      const bool bad = ec.category() == http::make_error_code(http::error::bad_version).category() &&
                       ec != http::error::end_of_stream && ec != http::error::partial_message;
      return fail(bad ? outcome::kind::bad_answer : outcome::kind::read_failed, ec);
    }
    const auto status = reading->get().result_int();
    if (status < 100 || status >= 200 || status == 101) break;
  }
  auto& parser = *reading;

  o.head_read = true;
  response_head head;
  head.status = static_cast<int>(parser.get().result_int());
  for (const auto& f : parser.get()) head.headers.add(std::string(f.name_string()), std::string(f.value()));
  head.url = a.where.str();
  out.head = std::move(head);
  const auto r = a.route_of(out.head);
  if (r != transport::route::capture && a.handler.on_head && !a.handler.on_head(out.head)) {
    return fail(outcome::kind::stopped);
  }

  if (r == transport::route::handler && a.handler.body_room && a.handler.body_filled && !parser.is_done() &&
      !parser.chunked() && parser.content_length()) {
    // Straight into the handler's storage: what the head's read took past the head first,
    // then socket reads as large as the room (no parser, no copy in between).
    std::uint64_t left = *parser.content_length();
    auto& ahead = c.buffer();
    while (left > 0) {
      const auto room = a.handler.body_room();
      if (room.empty()) return fail(outcome::kind::stopped);
      const std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(room.size(), left));
      std::size_t got = 0;
      if (ahead.size() > 0) {
        got = std::min(want, ahead.size());
        std::memcpy(room.data(), ahead.data().data(), got);
        ahead.consume(got);
      } else {
        ec = c.run(a.read_timeout, [&](auto h) {
          stream.async_read_some(asio::buffer(room.data(), want), [h, &got](boost::system::error_code e, std::size_t n) {
            got = n;
            h(e);
          });
        });
      }
      left -= got;
      if (got > 0 && !a.handler.body_filled(got)) return fail(outcome::kind::stopped);
      if (ec) return fail(outcome::kind::read_failed, ec);  // the answer ended short, or stalled
    }
    o.reusable = parser.keep_alive();
    return o;
  }
  while (!parser.is_done()) {
    parser.get().body().data = buf.data();
    parser.get().body().size = buf.size();
    ec = c.run(a.read_timeout, [&](auto h) { http::async_read_some(stream, c.buffer(), parser, h); });
    if (ec == http::error::need_buffer) ec = {};
    const std::string_view piece(buf.data(), buf.size() - parser.get().body().size);
    if (!piece.empty()) {
      if (r != transport::route::capture && a.handler.on_body && !a.handler.on_body(piece)) {
        return fail(outcome::kind::stopped);
      }
      if (r != transport::route::handler) {
        const auto room = a.capture_limit - std::min(a.capture_limit, out.captured.size());
        if (piece.size() > room) out.capture_truncated = true;
        out.captured.append(piece.substr(0, std::min(room, piece.size())));
      }
    }
    if (ec) {
      const bool bad = ec.category() == http::make_error_code(http::error::bad_version).category() &&
                       ec != http::error::end_of_stream && ec != http::error::partial_message;
      return fail(bad ? outcome::kind::bad_answer : outcome::kind::read_failed, ec);
    }
  }
  o.reusable = parser.keep_alive();
  return o;
}

}  // namespace

upstream_error http_error(const response_head& head, std::string_view body, const url& where) {
  upstream_error e;
  e.kind = error_kind::http;
  e.status = head.status;
  e.headers = head.headers;
  const auto doc = nlohmann::json::parse(body, nullptr, false);
  if (doc.is_object() && doc.contains("errors") && doc["errors"].is_array() &&
      !doc["errors"].empty() && doc["errors"][0].is_object()) {
    const auto& first = doc["errors"][0];
    if (first.contains("code") && first["code"].is_string()) e.code = first["code"].get<std::string>();
    if (first.contains("message") && first["message"].is_string()) {
      e.message = first["message"].get<std::string>();
    }
    if (first.contains("detail") && !first["detail"].is_null()) e.detail = first["detail"].dump();
  } else if (doc.is_object() && doc.contains("details") && doc["details"].is_string()) {
    e.message = doc["details"].get<std::string>();  // some token servers answer {"details": ...}
  }
  if (e.code.empty()) e.code = default_code(head.status, where.target);
  if (e.message.empty() && head.status == 404 && e.code == "MANIFEST_UNKNOWN") {
    e.message = "manifest unknown to " + where.authority();  // a HEAD's 404 has no body to say it
  } else if (e.message.empty() && head.status == 404 && e.code == "BLOB_UNKNOWN") {
    e.message = "blob unknown to " + where.authority();
  } else if (e.message.empty()) {
    e.message = where.authority() + " answered " + std::to_string(head.status);
    // A short plain-text body is often the only explanation there is.
    if (!body.empty() && body.size() <= 200 && !doc.is_object()) {
      std::string text(body);
      while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
      if (!text.empty()) e.message += ": " + text;
    }
  }
  return e;
}

transport::transport(const client_options& options)
    : options_(options),
      tls_(std::make_shared<tls_context>(options.ca_pem)),
      pool_(pool_settings{options.max_idle_connections, options.idle_timeout}) {}

transport::attempt transport::perform(const url& where, const std::string& method, const header_list& headers,
                                    const request_body* body,
                                    const std::function<route(const response_head&)>& route_of,
                                    const response_handler& handler, abort_handle* abort,
                                    std::size_t capture_limit) {
  attempt out;
  const auto host = where.authority();
  const auto canceled = [&out] {
    out.failure = make_error(error_kind::canceled, "stopped by the caller");
    return out;
  };
  for (int try_no = 0;; ++try_no) {
    // A retry gets a new connection, not another kept one.
    auto lease = try_no == 0 ? pool_.acquire(where) : connection_pool::lease{};
    std::unique_ptr<connection> conn = std::move(lease.conn);
    if (!conn) conn = std::make_unique<connection>(where, tls_);
    if (abort != nullptr) abort->attach([c = conn.get()] { c->shut(); });
    struct detach_on_exit {
      abort_handle* h;
      ~detach_on_exit() {
        if (h != nullptr) h->detach();
      }
    } detach{abort};
    const auto aborted = [abort] { return abort != nullptr && abort->aborted(); };

    if (!lease.reused) {
      if (const auto f = conn->connect(options_.connect_timeout)) {
        if (aborted()) return canceled();
        out.failure = connect_error(*f, where);
        return out;
      }
    }

    out.captured.clear();
    out.capture_truncated = false;
    const exchange_args args{where,   method,        headers,
                             body,    route_of,      handler,
                             capture_limit, options_.read_timeout, answer_timeout(), options_.user_agent};
    const auto o = conn->with_stream([&](auto& stream) { return exchange(*conn, stream, args, out); });
    detach.h = nullptr;
    if (abort != nullptr) abort->detach();
    if (aborted() || o.what == outcome::kind::stopped) return canceled();

    switch (o.what) {
      case outcome::kind::ok:
        if (o.reusable) pool_.release(where, std::move(conn));
        return out;
      case outcome::kind::body_failed:
        out.failure = make_error(error_kind::canceled,
                                 "the request body to " + host + " could not be read to its end");
        return out;
      case outcome::kind::bad_answer:
        out.failure = make_error(error_kind::protocol, host + " sent an answer that is not valid HTTP/1.1: " +
                                                           o.ec.message());
        return out;
      default: break;
    }
    // A kept connection the server closed just as it was taken fails before any answer byte;
    // that is not the upstream's fault: try once more on a new connection.
    const bool rewindable = body == nullptr || (body->rewind && body->rewind());
    if (try_no == 0 && lease.reused && !o.any_byte && !is_timeout(o.ec) && rewindable) continue;
    if (o.what == outcome::kind::write_failed) {
      out.failure = is_timeout(o.ec) ? make_error(error_kind::timeout, host + " took no request bytes for " +
                                                                           seconds(options_.read_timeout))
                                     : make_error(error_kind::io, "the connection to " + host +
                                                                      " broke while sending the request");
    } else {
      const auto waited = o.head_read ? options_.read_timeout : answer_timeout();
      out.failure = is_timeout(o.ec) ? make_error(error_kind::timeout, host + " sent nothing for " + seconds(waited))
                                     : make_error(error_kind::io, "the connection to " + host +
                                                                      " broke while reading the answer");
    }
    return out;
  }
}

upstream_error transport::connect_error(const connection::connect_failure& f, const url& where) const {
  const auto host = where.authority();
  switch (f.where) {
    case connection::step::resolve:
      if (is_timeout(f.ec)) {
        return make_error(error_kind::timeout,
                          "looking up " + where.host + " timed out after " + seconds(options_.connect_timeout));
      }
      return make_error(error_kind::connect, "cannot connect to " + host + ": " + f.ec.message());
    case connection::step::connect:
      if (is_timeout(f.ec)) {
        return make_error(error_kind::timeout,
                          "connecting to " + host + " timed out after " + seconds(options_.connect_timeout));
      }
      return make_error(error_kind::connect, "cannot connect to " + host + ": " + f.ec.message());
    case connection::step::handshake: break;
  }
  if (is_timeout(f.ec)) {
    return make_error(error_kind::timeout,
                      "the TLS handshake with " + host + " timed out after " + seconds(options_.connect_timeout));
  }
  if (f.verify_result != X509_V_OK) {
    const bool wrong_name =
        f.verify_result == X509_V_ERR_HOSTNAME_MISMATCH || f.verify_result == X509_V_ERR_IP_ADDRESS_MISMATCH;
    const std::string why = wrong_name ? "its certificate does not name " + where.host
                                       : X509_verify_cert_error_string(f.verify_result);
    return make_error(error_kind::tls, "the certificate of " + host + " did not verify: " + why +
                                           (tls_->has_own_cas() ? "" : " (system CAs only; is `ca` set?)"));
  }
  return make_error(error_kind::tls, "TLS handshake with " + host + " failed: " + f.ec.message());
}

}  // namespace registryd::oci::client::detail
