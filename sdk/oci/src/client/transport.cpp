#include "transport.hpp"

#include <registryd/oci/route.hpp>

#include <nlohmann/json.hpp>
#include <openssl/x509.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>

namespace registryd::oci::client::detail {
namespace {

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

response_head to_head(const httplib::Response& r, const url& where) {
  response_head h;
  h.status = r.status;
  for (const auto& [name, value] : r.headers) h.headers.add(name, value);
  h.url = where.str();
  return h;
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
      cas_(std::make_shared<ca_bundle>(options.ca_pem)),
      pool_(pool_settings{options.connect_timeout, options.read_timeout, options.max_idle_connections,
                          options.idle_timeout, options.user_agent},
            cas_) {}

transport::attempt transport::perform(const url& where, const std::string& method, const header_list& headers,
                                    const request_body* body,
                                    const std::function<route(const response_head&)>& route_of,
                                    const response_handler& handler, abort_handle* abort,
                                    std::size_t capture_limit) {
  attempt out;
  for (int try_no = 0;; ++try_no) {
    auto lease = pool_.acquire(where);
    httplib::Request req;
    req.method = method;
    req.path = where.target;
    for (const auto& f : headers) req.headers.emplace(f.name, f.value);
    req.headers.emplace("Host", where.authority());
    if (!options_.user_agent.empty() && !headers.has("User-Agent")) {
      req.headers.emplace("User-Agent", options_.user_agent);
    }

    bool head_seen = false, stopped_by_caller = false, body_failed = false, any_byte = false;
    route r = route::capture;
    out.captured.clear();
    out.capture_truncated = false;
    auto last_activity = std::chrono::steady_clock::now();

    auto on_head = [&](const response_head& h) -> bool {
      out.head = h;
      head_seen = true;
      r = route_of(h);
      if (r != route::capture && handler.on_head && !handler.on_head(out.head)) {
        stopped_by_caller = true;
        return false;
      }
      return true;
    };
    req.response_handler = [&](const httplib::Response& res) {
      last_activity = std::chrono::steady_clock::now();
      any_byte = true;
      return on_head(to_head(res, where));
    };
    req.content_receiver = [&](const char* data, std::size_t n, std::uint64_t, std::uint64_t) {
      last_activity = std::chrono::steady_clock::now();
      any_byte = true;
      // cpp-httplib hands over what one read returned; keep pieces at most piece_size.
      for (std::size_t off = 0; off < n; off += piece_size) {
        const std::string_view piece(data + off, std::min(piece_size, n - off));
        if (r != route::capture && handler.on_body && !handler.on_body(piece)) {
          stopped_by_caller = true;
          return false;
        }
        if (r != route::handler) {
          const auto room = capture_limit - std::min(capture_limit, out.captured.size());
          if (piece.size() > room) out.capture_truncated = true;
          out.captured.append(piece.substr(0, std::min(room, piece.size())));
        }
      }
      return true;
    };

    if (body != nullptr) {
      auto pull = [body, &body_failed](httplib::DataSink& sink, std::size_t want) -> std::ptrdiff_t {
        char buf[piece_size];
        const auto n = body->read(buf, std::min(want, sizeof buf));
        if (n < 0) {
          body_failed = true;
          return -1;
        }
        if (n > 0 && !sink.write(buf, static_cast<std::size_t>(n))) return -1;
        return n;
      };
      if (body->length) {
        req.content_length_ = static_cast<std::size_t>(*body->length);
        req.content_provider_ = [pull, &body_failed](std::size_t, std::size_t length, httplib::DataSink& sink) {
          const auto n = pull(sink, length);
          if (n == 0) body_failed = true;  // shorter than announced
          return n > 0;
        };
      } else {
        req.content_length_ = 0;
        req.is_chunked_content_provider_ = true;
        req.headers.emplace("Transfer-Encoding", "chunked");
        req.content_provider_ = [pull](std::size_t, std::size_t, httplib::DataSink& sink) {
          const auto n = pull(sink, piece_size);
          if (n == 0) sink.done();
          return n >= 0;
        };
      }
    }

    httplib::Client* raw_client = lease.client.get();
    if (abort != nullptr) abort->attach([raw_client] { raw_client->stop(); });
    httplib::Response res;
    httplib::Error err = httplib::Error::Success;
    errno = 0;
    const bool ok = lease.client->send(req, res, err);
    const int saved_errno = errno;
    if (abort != nullptr) abort->detach();

    if (ok) {
      if (!head_seen) {
        // HEAD, 204 and 304 answers have no body, so cpp-httplib never called the handler.
        if (!on_head(to_head(res, where))) {
          out.failure = make_error(error_kind::canceled, "stopped by the caller");
          return out;
        }
      }
      pool_.release(where, std::move(lease.client));
      return out;
    }

    if (stopped_by_caller || (abort != nullptr && abort->aborted())) {
      out.failure = make_error(error_kind::canceled, "stopped by the caller");
      return out;
    }
    if (body_failed) {
      out.failure = make_error(error_kind::canceled,
                               "the request body to " + where.authority() + " could not be read to its end");
      return out;
    }
    // A kept connection the server closed while it sat idle fails before any answer byte;
    // that is not the upstream's fault: try once more on a new connection.
    const bool rewindable = body == nullptr || (body->rewind && body->rewind());
    if (try_no == 0 && lease.reused && !any_byte && rewindable &&
        (err == httplib::Error::Read || err == httplib::Error::Write ||
         err == httplib::Error::Connection)) {
      continue;
    }
    out.failure = transport_error(err, where, lease.client.get(), saved_errno, last_activity);
    return out;
  }
}

upstream_error transport::transport_error(httplib::Error err, const url& where, httplib::Client* c, int saved_errno,
                                        std::chrono::steady_clock::time_point last_activity) const {
  const auto host = where.authority();
  const auto secs = [](std::chrono::milliseconds ms) {
    char buf[48];
    if (ms.count() % 1000 == 0) {
      std::snprintf(buf, sizeof buf, "%lld s", static_cast<long long>(ms.count() / 1000));
    } else {
      std::snprintf(buf, sizeof buf, "%lld.%03lld s", static_cast<long long>(ms.count() / 1000),
                    static_cast<long long>(ms.count() % 1000));
    }
    return std::string(buf);
  };
  switch (err) {
    case httplib::Error::Connection: {
      std::string why = saved_errno != 0 ? std::strerror(saved_errno) : "connection failed";
      if (saved_errno == 0 || saved_errno == EINPROGRESS) why = "no connection could be made";
      return make_error(error_kind::connect, "cannot connect to " + host + ": " + why);
    }
    case httplib::Error::ConnectionTimeout:
      return make_error(error_kind::timeout, "connecting to " + host + " timed out after " +
                                                 secs(options_.connect_timeout));
    case httplib::Error::Read: {
      const auto idle = std::chrono::steady_clock::now() - last_activity;
      if (idle + std::chrono::milliseconds(100) >= options_.read_timeout) {
        return make_error(error_kind::timeout, host + " sent nothing for " + secs(options_.read_timeout));
      }
      return make_error(error_kind::io, "the connection to " + host + " broke while reading the answer");
    }
    case httplib::Error::Write:
      return make_error(error_kind::io, "the connection to " + host + " broke while sending the request");
    case httplib::Error::SSLConnection:
      return make_error(error_kind::tls, "TLS handshake with " + host + " failed");
    case httplib::Error::SSLLoadingCerts:
      return make_error(error_kind::tls, "the CA certificates could not be loaded");
    case httplib::Error::SSLServerVerification: {
      const long v = c != nullptr ? c->get_openssl_verify_result() : 0;
      std::string why = v != X509_V_OK ? X509_verify_cert_error_string(v)
                                       : "its certificate does not name " + where.host;
      return make_error(error_kind::tls, "the certificate of " + host + " did not verify: " + why +
                                             (cas_->empty() ? " (system CAs only; is `ca` set?)" : ""));
    }
    case httplib::Error::Canceled: return make_error(error_kind::canceled, "stopped by the caller");
    default:
      return make_error(error_kind::io, "exchange with " + host + " failed: " + httplib::to_string(err));
  }
}

}  // namespace registryd::oci::client::detail
