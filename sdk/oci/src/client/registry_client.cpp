#include <registryd/oci/client/registry_client.hpp>

#include "connection_pool.hpp"
#include "url.hpp"

#include <registryd/oci/client/link_header.hpp>
#include <registryd/oci/client/scope.hpp>
#include <registryd/oci/client/token_cache.hpp>
#include <registryd/oci/client/www_authenticate.hpp>
#include <registryd/oci/reference.hpp>
#include <registryd/oci/route.hpp>

#include <nlohmann/json.hpp>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <future>
#include <map>
#include <mutex>
#include <stdexcept>

namespace registryd::oci::client {

using detail::url;

namespace {

constexpr std::size_t piece_size = 64 * 1024;
constexpr std::size_t max_error_body = 64 * 1024;
constexpr std::size_t max_token_body = 1024 * 1024;
constexpr std::size_t max_list_page = 16 * 1024 * 1024;
constexpr int max_list_pages = 100000;

std::string base64(std::string_view in) {
  std::string out(4 * ((in.size() + 2) / 3) + 1, '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(in.data()),
                                static_cast<int>(in.size()));
  out.resize(static_cast<std::size_t>(n));
  return out;
}

std::string basic_authorization(const credentials& c) {
  return "Basic " + base64(c.username + ":" + c.password);
}

bool is_hop_by_hop_or_owned(std::string_view name) {
  for (const char* banned : {"host", "authorization", "content-length", "transfer-encoding",
                             "connection", "keep-alive", "te", "trailer", "upgrade",
                             "proxy-authorization", "proxy-authenticate", "proxy-connection"}) {
    if (iequals(name, banned)) return true;
  }
  return false;
}

bool is_redirect(int status) {
  return status == 301 || status == 302 || status == 303 || status == 307 || status == 308;
}

std::optional<std::uint64_t> parse_u64(std::string_view text) {
  std::uint64_t v = 0;
  const auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || p != text.data() + text.size()) return std::nullopt;
  return v;
}

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

// The error of an answer with a status >= 400 (or an unfollowed redirect a typed operation did
// not expect): code and message from the upstream's OCI error body when it has one.
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

response_head to_head(const httplib::Response& r, const url& where) {
  response_head h;
  h.status = r.status;
  for (const auto& [name, value] : r.headers) h.headers.add(name, value);
  h.url = where.str();
  return h;
}

bool is_digest_reference(std::string_view reference) { return reference.find(':') != std::string_view::npos; }

}  // namespace

// ---------------------------------------------------------------------------------------------

struct registry_client::impl {
  explicit impl(client_options o)
      : options(std::move(o)),
        cas(std::make_shared<detail::ca_bundle>(options.ca_pem)),
        pool(detail::pool_settings{options.connect_timeout, options.read_timeout,
                                   options.max_idle_connections, options.idle_timeout,
                                   options.user_agent},
             cas) {
    auto parsed = detail::parse_url(options.base_url() + "/");
    if (!parsed) throw std::invalid_argument("registry '" + options.registry + "' is not host[:port]");
    base = *parsed;
  }

  client_options options;
  std::shared_ptr<const detail::ca_bundle> cas;
  detail::connection_pool pool;
  url base;
  token_cache tokens;

  // What the registry's 401s have taught: how it wants to be authenticated.
  enum class auth_scheme { unknown, basic, bearer };
  mutable std::mutex auth_mutex;
  auth_scheme learned = auth_scheme::unknown;
  std::string realm, service;

  // Token fetches in flight, so concurrent requests for one scope wait for one fetch.
  std::mutex flights_mutex;
  std::map<std::string, std::shared_future<result<std::string>>> flights;

  // One exchange on one connection -----------------------------------------------------------

  // Where an answer's body goes, decided from its head.
  enum class route { handler, capture, both };

  struct attempt {
    std::optional<upstream_error> failure;
    response_head head;
    std::string captured;  // the body when routed to capture (bounded)
    bool capture_truncated = false;
  };

  attempt perform(const url& where, const std::string& method, const header_list& headers,
                  const request_body* body,
                  const std::function<route(const response_head&)>& route_of,
                  const response_handler& handler, abort_handle* abort,
                  std::size_t capture_limit) {
    attempt out;
    for (int try_no = 0;; ++try_no) {
      auto lease = pool.acquire(where);
      httplib::Request req;
      req.method = method;
      req.path = where.target;
      for (const auto& f : headers) req.headers.emplace(f.name, f.value);
      req.headers.emplace("Host", where.authority());
      if (!options.user_agent.empty() && !headers.has("User-Agent")) {
        req.headers.emplace("User-Agent", options.user_agent);
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
        pool.release(where, std::move(lease.client));
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

  upstream_error transport_error(httplib::Error err, const url& where, httplib::Client* c,
                                 int saved_errno,
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
                                                   secs(options.connect_timeout));
      case httplib::Error::Read: {
        const auto idle = std::chrono::steady_clock::now() - last_activity;
        if (idle + std::chrono::milliseconds(100) >= options.read_timeout) {
          return make_error(error_kind::timeout, host + " sent nothing for " + secs(options.read_timeout));
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
                                               (cas->empty() ? " (system CAs only; is `ca` set?)" : ""));
      }
      case httplib::Error::Canceled: return make_error(error_kind::canceled, "stopped by the caller");
      default:
        return make_error(error_kind::io, "exchange with " + host + " failed: " + httplib::to_string(err));
    }
  }

  // Auth ----------------------------------------------------------------------------------------

  // The Authorization the registry should get up front, from what earlier 401s taught.
  result<std::optional<std::string>> authorization(const std::vector<std::string>& scopes, bool refresh) {
    auth_scheme scheme;
    std::string r, s;
    {
      std::lock_guard lock(auth_mutex);
      scheme = learned;
      r = realm;
      s = service;
    }
    if (scheme == auth_scheme::basic && options.auth) {
      return std::optional<std::string>(basic_authorization(*options.auth));
    }
    if (scheme == auth_scheme::bearer) {
      auto token = bearer_token(r, s, scopes, refresh);
      if (!token) return std::move(token).error();
      return std::optional<std::string>("Bearer " + *token);
    }
    return std::optional<std::string>();
  }

  result<std::string> bearer_token(const std::string& token_realm, const std::string& token_service,
                                   const std::vector<std::string>& scopes, bool refresh) {
    const auto key = token_cache::key(token_realm, token_service, scope_key(scopes));
    if (!refresh) {
      if (auto cached = tokens.get(key)) return *cached;
    }
    std::shared_future<result<std::string>> flight;
    std::promise<result<std::string>> mine;
    bool leader = false;
    {
      std::lock_guard lock(flights_mutex);
      const auto it = flights.find(key);
      if (it != flights.end()) {
        flight = it->second;
      } else {
        flight = mine.get_future().share();
        flights.emplace(key, flight);
        leader = true;
      }
    }
    if (!leader) return flight.get();
    auto fetched = fetch_token(token_realm, token_service, normalize_scopes(scopes));
    if (fetched) tokens.put(key, fetched->token, fetched->expires_in);
    result<std::string> answer = fetched ? result<std::string>(fetched->token)
                                         : result<std::string>(fetched.error());
    mine.set_value(answer);
    {
      std::lock_guard lock(flights_mutex);
      flights.erase(key);
    }
    return answer;
  }

  result<token_answer> fetch_token(const std::string& token_realm, const std::string& token_service,
                                   const std::vector<std::string>& scopes) {
    auto where = detail::parse_url(token_realm);
    if (!where) {
      return make_error(error_kind::protocol, "the token realm '" + token_realm + "' is not an http(s) URL");
    }
    std::string query;
    if (!token_service.empty()) query += "service=" + detail::encode_query_value(token_service);
    for (const auto& s : scopes) query += (query.empty() ? "" : "&") + ("scope=" + detail::encode_query_value(s));
    if (!query.empty()) where->target += (where->target.find('?') == std::string::npos ? "?" : "&") + query;

    header_list headers;
    headers.add("Accept", "application/json");
    if (options.auth) headers.add("Authorization", basic_authorization(*options.auth));
    auto a = perform(*where, "GET", headers, nullptr, [](const response_head&) { return route::capture; },
                     {}, nullptr, max_token_body);
    const std::string who = options.auth ? "user " + options.auth->username : "anonymous access";
    if (a.failure) {
      a.failure->message = "token realm: " + a.failure->message;
      return *std::move(a.failure);
    }
    if (a.head.status != 200) {
      auto e = http_error(a.head, a.captured, *where);
      e.message = "the token realm " + where->authority() + where->target.substr(0, where->target.find('?')) +
                  " refused " + who + " (" + std::to_string(a.head.status) + "): " + e.message;
      if (a.head.status == 401 || a.head.status == 403) e.code = "UNAUTHORIZED", e.status = 401;
      return e;
    }
    if (a.capture_truncated) {
      return make_error(error_kind::protocol, "the token realm's answer is larger than 1 MiB", 200);
    }
    auto parsed = parse_token_answer(a.captured);
    if (!parsed) {
      return make_error(error_kind::protocol,
                        "the token realm's answer holds no `token` or `access_token`", 200);
    }
    return *std::move(parsed);
  }

  // The whole request: auth, redirects ------------------------------------------------------------

  result<response_head> exchange(url start, const request& req, const response_handler& handler) {
    if (req.target.empty() || req.target.front() != '/') {
      return make_error(error_kind::invalid_argument, "request target must start with '/'");
    }
    std::string method = req.method;
    const request_body* body = req.body ? &*req.body : nullptr;
    url current = std::move(start);
    bool auth_retried = false, sent_basic = false;
    int redirects = 0;
    // The request's scopes, plus those a bearer challenge names.
    std::vector<std::string> scopes = req.scopes;

    for (;;) {
      const bool same_origin = current.origin() == base.origin();
      header_list headers;
      for (const auto& f : req.headers) {
        if (!is_hop_by_hop_or_owned(f.name)) headers.add(f.name, f.value);
      }
      if (same_origin) {
        auto auth = authorization(scopes, false);
        if (!auth) return std::move(auth).error();
        if (*auth) {
          sent_basic = sent_basic || auth->value().rfind("Basic ", 0) == 0;
          headers.add("Authorization", **auth);
        }
      }

      const bool can_resend = body == nullptr || static_cast<bool>(body->rewind);
      // An answer is not final when the client will act on it: a 401 it can answer with
      // credentials, a redirect it follows.
      auto is_final = [&](const response_head& h) {
        if (h.status == 401 && same_origin && !auth_retried && can_resend) {
          const auto challenges = parse_www_authenticate(h.headers.get_all("WWW-Authenticate"));
          const auto* bearer = find_challenge(challenges, "bearer");
          if (bearer != nullptr && bearer->param("realm")) return false;
          if (find_challenge(challenges, "basic") != nullptr && options.auth && !sent_basic) return false;
        }
        if (is_redirect(h.status) && req.follow_redirects && redirects < options.max_redirects &&
            h.headers.has("Location")) {
          const bool keeps_body = h.status == 307 || h.status == 308;
          if (!keeps_body || can_resend) return false;
        }
        return true;
      };
      auto route_of = [&](const response_head& h) {
        if (!is_final(h)) return route::capture;
        if (h.status < 400) return route::handler;
        return req.deliver_errors ? route::both : route::capture;
      };

      auto a = perform(current, method, headers, body, route_of, handler, req.abort.get(), max_error_body);
      if (a.failure) return *std::move(a.failure);
      a.head.url = current.str();

      if (is_final(a.head)) {
        if (a.head.status < 400) return std::move(a.head);
        auto e = http_error(a.head, a.captured, current);
        if (a.head.status == 401) {
          const auto challenges = parse_www_authenticate(a.head.headers.get_all("WWW-Authenticate"));
          if (challenges.empty()) {
            e.code = "UNAUTHORIZED";
            e.message = current.authority() + " answered 401 without a WWW-Authenticate challenge: " + e.message;
          } else if (!options.auth) {
            e.message += " (no credentials are configured)";
          }
        }
        return e;
      }

      // Not final: act on it, then go round again.
      if (body != nullptr && body->rewind && !body->rewind()) {
        return make_error(error_kind::protocol, "the request body cannot be sent again after a " +
                                                    std::to_string(a.head.status));
      }
      if (a.head.status == 401) {
        auth_retried = true;
        const auto challenges = parse_www_authenticate(a.head.headers.get_all("WWW-Authenticate"));
        if (const auto* bearer = find_challenge(challenges, "bearer"); bearer != nullptr && bearer->param("realm")) {
          {
            std::lock_guard lock(auth_mutex);
            learned = auth_scheme::bearer;
            realm = *bearer->param("realm");
            service = bearer->param("service").value_or("");
          }
          if (auto s = bearer->param("scope")) {
            for (auto& one : split_scope_param(*s)) scopes.push_back(std::move(one));
          }
          // A fresh token, cached for the retry that follows. When none can be had, that is
          // the answer: the realm's refusal (UNAUTHORIZED) or why it could not be reached.
          auto token = bearer_token(*bearer->param("realm"), bearer->param("service").value_or(""), scopes, true);
          if (!token) return std::move(token).error();
        } else {
          std::lock_guard lock(auth_mutex);
          learned = auth_scheme::basic;
        }
        continue;
      }
      // A redirect.
      auto next = detail::resolve_url(current, *a.head.headers.get("Location"));
      if (!next) {
        return make_error(error_kind::protocol, current.authority() + " redirected to an unusable Location '" +
                                                    std::string(*a.head.headers.get("Location")) + "'",
                          a.head.status);
      }
      ++redirects;
      if (a.head.status == 303 ||
          ((a.head.status == 301 || a.head.status == 302) && method != "GET" && method != "HEAD")) {
        method = method == "HEAD" ? "HEAD" : "GET";
        body = nullptr;
      }
      current = std::move(*next);
    }
  }

};

// ---------------------------------------------------------------------------------------------

namespace {

result<done> check_name(std::string_view repository) {
  if (!is_valid_repository_name(repository)) {
    return make_error(error_kind::invalid_argument, "'" + std::string(repository) + "' is not a repository name");
  }
  return done{};
}

result<done> check_reference(std::string_view reference) {
  if (is_digest_reference(reference) ? !digest::parse(reference) : !is_valid_tag(reference)) {
    auto e = make_error(error_kind::invalid_argument, "'" + std::string(reference) + "' is neither a tag nor a digest");
    e.code = is_digest_reference(reference) ? "DIGEST_INVALID" : "TAG_INVALID";
    return e;
  }
  return done{};
}

// Collects an answer body in memory, refusing more than `limit` bytes.
struct collector {
  std::string body;
  std::size_t limit;
  bool too_large = false;
  response_handler handler() {
    return {nullptr, [this](std::string_view piece) {
              if (body.size() + piece.size() > limit) {
                too_large = true;
                return false;
              }
              body.append(piece);
              return true;
            }};
  }
};

request_body body_of(std::string_view bytes) {
  auto offset = std::make_shared<std::size_t>(0);
  request_body b;
  b.length = bytes.size();
  b.read = [bytes, offset](char* buf, std::size_t cap) -> std::ptrdiff_t {
    const auto n = std::min(cap, bytes.size() - *offset);
    std::memcpy(buf, bytes.data() + *offset, n);
    *offset += n;
    return static_cast<std::ptrdiff_t>(n);
  };
  b.rewind = [offset] {
    *offset = 0;
    return true;
  };
  return b;
}

std::optional<std::uint64_t> content_length(const response_head& h) {
  const auto v = h.headers.get("Content-Length");
  return v ? parse_u64(*v) : std::nullopt;
}

std::string media_type_of(const response_head& h) {
  std::string t(h.headers.get("Content-Type").value_or(""));
  const auto semi = t.find(';');
  if (semi != std::string::npos) t.resize(semi);
  while (!t.empty() && t.back() == ' ') t.pop_back();
  return t;
}

}  // namespace

registry_client::registry_client(client_options options)
    : impl_(std::make_shared<impl>(std::move(options))) {
  if (impl_->options.registry.empty()) throw std::invalid_argument("registry must not be empty");
}

registry_client::~registry_client() = default;

const client_options& registry_client::options() const noexcept { return impl_->options; }

std::size_t registry_client::idle_connections() const { return impl_->pool.idle(); }

result<response_head> registry_client::send(const request& req, const response_handler& handler) const {
  url start = impl_->base;
  start.target = req.target;
  return impl_->exchange(std::move(start), req, handler);
}

outcome registry_client::ping() const {
  request req;
  req.target = "/v2/";
  auto r = send(req);
  if (!r) return std::move(r).error();
  return done{};
}

result<manifest_descriptor> registry_client::head_manifest(std::string_view repository,
                                                           std::string_view reference,
                                                           std::string_view accept) const {
  if (auto c = check_name(repository); !c) return std::move(c).error();
  if (auto c = check_reference(reference); !c) return std::move(c).error();
  request req;
  req.method = "HEAD";
  req.target = "/v2/" + std::string(repository) + "/manifests/" + std::string(reference);
  req.headers.add("Accept", std::string(accept));
  req.scopes = {pull_scope(repository)};
  auto r = send(req);
  if (!r) return std::move(r).error();
  manifest_descriptor d{media_type_of(*r), digest_of(""), content_length(*r).value_or(0)};
  if (const auto h = r->headers.get("Docker-Content-Digest")) {
    if (auto parsed = digest::parse(*h)) {
      if (is_digest_reference(reference) && parsed->str() != reference) {
        return make_error(error_kind::protocol, "asked for manifest " + std::string(reference) +
                                                    ", the upstream answered for " + parsed->str(), r->status);
      }
      d.digest = *parsed;
      return d;
    }
  }
  if (is_digest_reference(reference)) {
    d.digest = *digest::parse(reference);
    return d;
  }
  // No digest for a tag: fetch the manifest and compute it.
  auto m = get_manifest(repository, reference, accept);
  if (!m) return std::move(m).error();
  return m->descriptor;
}

result<fetched_manifest> registry_client::get_manifest(std::string_view repository,
                                                       std::string_view reference,
                                                       std::string_view accept) const {
  if (auto c = check_name(repository); !c) return std::move(c).error();
  if (auto c = check_reference(reference); !c) return std::move(c).error();
  request req;
  req.target = "/v2/" + std::string(repository) + "/manifests/" + std::string(reference);
  req.headers.add("Accept", std::string(accept));
  req.scopes = {pull_scope(repository)};
  collector body{{}, max_manifest_size};
  auto r = send(req, body.handler());
  if (!r) {
    if (body.too_large) {
      return make_error(error_kind::protocol, "manifest " + std::string(reference) + " is larger than 4 MiB");
    }
    return std::move(r).error();
  }
  fetched_manifest m;
  m.descriptor.media_type = media_type_of(*r);
  m.descriptor.size = body.body.size();
  std::optional<digest> stated;
  if (const auto h = r->headers.get("Docker-Content-Digest")) stated = digest::parse(*h);
  const auto wanted = is_digest_reference(reference) ? digest::parse(reference) : std::nullopt;
  const auto algorithm = wanted ? wanted->algorithm() : stated ? stated->algorithm() : digest_algorithm::sha256;
  m.descriptor.digest = digest_of(body.body, algorithm);
  if (wanted && *wanted != m.descriptor.digest) {
    return make_error(error_kind::protocol, "manifest " + wanted->str() + " from " + options().registry +
                                                " has digest " + m.descriptor.digest.str(), r->status);
  }
  if (stated && *stated != m.descriptor.digest) {
    return make_error(error_kind::protocol, "the Docker-Content-Digest of " + std::string(reference) + " (" +
                                                stated->str() + ") does not match its bytes (" +
                                                m.descriptor.digest.str() + ")", r->status);
  }
  m.body = std::move(body.body);
  return m;
}

result<blob_descriptor> registry_client::head_blob(std::string_view repository, const digest& d) const {
  if (auto c = check_name(repository); !c) return std::move(c).error();
  request req;
  req.method = "HEAD";
  req.target = "/v2/" + std::string(repository) + "/blobs/" + d.str();
  req.scopes = {pull_scope(repository)};
  auto r = send(req);
  if (!r) return std::move(r).error();
  blob_descriptor b;
  b.size = content_length(*r).value_or(0);
  if (const auto h = r->headers.get("Docker-Content-Digest")) b.digest = digest::parse(*h);
  return b;
}

result<bool> registry_client::blob_exists(std::string_view repository, const digest& d) const {
  auto r = head_blob(repository, d);
  if (r) return true;
  if (r.error().kind == error_kind::http && r.error().status == 404) return false;
  return std::move(r).error();
}

result<response_head> registry_client::get_blob(std::string_view repository, const digest& d,
                                                const response_handler& handler,
                                                const blob_read_options& opts) const {
  if (auto c = check_name(repository); !c) return std::move(c).error();
  request req;
  req.target = "/v2/" + std::string(repository) + "/blobs/" + d.str();
  req.scopes = {pull_scope(repository)};
  req.abort = opts.abort;
  if (opts.range) {
    req.headers.add("Range", "bytes=" + std::to_string(opts.range->first) + "-" +
                                 (opts.range->last ? std::to_string(*opts.range->last) : std::string()));
  }
  if (!opts.verify || opts.range) return send(req, handler);

  hasher h(d.algorithm());
  bool partial = false;
  response_handler verifying{
      [&](const response_head& head) {
        partial = head.status == 206;
        return handler.on_head ? handler.on_head(head) : true;
      },
      [&](std::string_view piece) {
        h.update(piece);
        return handler.on_body ? handler.on_body(piece) : true;
      }};
  auto r = send(req, verifying);
  if (!r || partial) return r;
  if (const auto got = h.current(); got != d) {
    return make_error(error_kind::protocol, "blob " + d.str() + " from " + options().registry +
                                                " arrived with digest " + got.str(), r->status);
  }
  return r;
}

result<bool> registry_client::mount_blob(std::string_view repository, const digest& d,
                                         std::string_view from_repository) const {
  if (auto c = check_name(repository); !c) return std::move(c).error();
  if (auto c = check_name(from_repository); !c) return std::move(c).error();
  request req;
  req.method = "POST";
  req.target = "/v2/" + std::string(repository) + "/blobs/uploads/?mount=" +
               detail::encode_query_value(d.str()) + "&from=" + detail::encode_query_value(from_repository);
  req.scopes = {push_scope(repository), pull_scope(from_repository)};
  req.follow_redirects = false;
  auto r = send(req);
  if (!r) return std::move(r).error();
  if (r->status == 201) return true;
  if (r->status == 202) return false;
  return make_error(error_kind::protocol, "mount answered " + std::to_string(r->status), r->status);
}

outcome registry_client::push_blob(std::string_view repository, const digest& d, request_body body) const {
  if (auto c = check_name(repository); !c) return std::move(c).error();
  if (!body.read) return make_error(error_kind::invalid_argument, "push_blob needs a body to read");
  request start;
  start.method = "POST";
  start.target = "/v2/" + std::string(repository) + "/blobs/uploads/";
  start.scopes = {push_scope(repository)};
  start.follow_redirects = false;
  auto opened = send(start);
  if (!opened) return std::move(opened).error();
  if (opened->status != 202 && opened->status != 201) {
    return make_error(error_kind::protocol, "opening an upload answered " + std::to_string(opened->status),
                      opened->status);
  }
  const auto location = opened->headers.get("Location");
  auto upload = location ? detail::resolve_url(impl_->base, *location) : std::nullopt;
  if (!upload) return make_error(error_kind::protocol, "the upload was opened without a usable Location", opened->status);
  upload->target += (upload->target.find('?') == std::string::npos ? "?" : "&") +
                    ("digest=" + detail::encode_query_value(d.str()));

  request put;
  put.method = "PUT";
  put.target = upload->target;
  put.headers.add("Content-Type", "application/octet-stream");
  put.scopes = start.scopes;
  put.body = std::move(body);
  put.follow_redirects = false;
  auto done_put = impl_->exchange(*upload, put, {});
  if (!done_put) return std::move(done_put).error();
  if (done_put->status != 201) {
    return make_error(error_kind::protocol, "finishing the upload answered " + std::to_string(done_put->status),
                      done_put->status);
  }
  return done{};
}

result<digest> registry_client::push_manifest(std::string_view repository, std::string_view reference,
                                              std::string_view media_type, std::string_view body) const {
  if (auto c = check_name(repository); !c) return std::move(c).error();
  if (auto c = check_reference(reference); !c) return std::move(c).error();
  request req;
  req.method = "PUT";
  req.target = "/v2/" + std::string(repository) + "/manifests/" + std::string(reference);
  req.headers.add("Content-Type", std::string(media_type));
  req.scopes = {push_scope(repository)};
  req.body = body_of(body);
  auto r = send(req);
  if (!r) return std::move(r).error();
  if (r->status != 201 && r->status != 200) {
    return make_error(error_kind::protocol, "pushing manifest answered " + std::to_string(r->status), r->status);
  }
  const auto computed = digest_of(body, is_digest_reference(reference) ? digest::parse(reference)->algorithm()
                                                                       : digest_algorithm::sha256);
  if (const auto h = r->headers.get("Docker-Content-Digest")) {
    if (auto stated = digest::parse(*h)) return *stated;
  }
  return computed;
}

namespace {

// Follows the Link header from page to page, collecting the strings of `field`.
result<std::vector<std::string>> list_pages(const registry_client& client, std::string target,
                                            std::vector<std::string> scopes, const char* field,
                                            std::size_t max_entries) {
  std::vector<std::string> out;
  std::string previous;
  for (int page = 0; page < max_list_pages; ++page) {
    request req;
    req.target = target;
    req.headers.add("Accept", "application/json");
    req.scopes = scopes;
    collector body{{}, max_list_page};
    auto r = client.send(req, body.handler());
    if (!r) {
      if (body.too_large) return make_error(error_kind::protocol, "a list page is larger than 16 MiB");
      return std::move(r).error();
    }
    const auto doc = nlohmann::json::parse(body.body, nullptr, false);
    if (!doc.is_object()) return make_error(error_kind::protocol, std::string("the ") + field + " list is not JSON", r->status);
    const auto it = doc.find(field);
    if (it != doc.end() && it->is_array()) {
      for (const auto& v : *it) {
        if (!v.is_string()) continue;
        if (out.size() >= max_entries) return out;
        out.push_back(v.get<std::string>());
      }
    }
    const auto next = next_link(r->headers.get_all("Link"));
    if (!next) return out;
    auto here = detail::parse_url(client.options().base_url() + target);
    auto resolved = here ? detail::resolve_url(*here, *next) : std::nullopt;
    auto base = detail::parse_url(client.options().base_url() + "/");
    if (!resolved || !base || resolved->origin() != base->origin()) {
      return make_error(error_kind::protocol, "the next page link '" + *next + "' is not on " + client.options().registry);
    }
    if (resolved->target == target || resolved->target == previous) return out;  // no progress
    previous = target;
    target = resolved->target;
  }
  return out;
}

}  // namespace

result<std::vector<std::string>> registry_client::list_tags(std::string_view repository, std::size_t page_size,
                                                            std::size_t max_entries) const {
  if (auto c = check_name(repository); !c) return std::move(c).error();
  std::string target = "/v2/" + std::string(repository) + "/tags/list";
  if (page_size > 0) target += "?n=" + std::to_string(page_size);
  return list_pages(*this, target, {pull_scope(repository)}, "tags", max_entries);
}

result<std::vector<std::string>> registry_client::catalog(std::size_t page_size, std::size_t max_entries) const {
  std::string target = "/v2/_catalog";
  if (page_size > 0) target += "?n=" + std::to_string(page_size);
  return list_pages(*this, target, {catalog_scope()}, "repositories", max_entries);
}

result<fetched_manifest> registry_client::referrers(std::string_view repository, const digest& d,
                                                    std::string_view artifact_type) const {
  if (auto c = check_name(repository); !c) return std::move(c).error();
  request req;
  req.target = "/v2/" + std::string(repository) + "/referrers/" + d.str();
  if (!artifact_type.empty()) req.target += "?artifactType=" + detail::encode_query_value(artifact_type);
  req.headers.add("Accept", "application/vnd.oci.image.index.v1+json");
  req.scopes = {pull_scope(repository)};
  collector body{{}, max_manifest_size};
  auto r = send(req, body.handler());
  if (!r) {
    if (body.too_large) return make_error(error_kind::protocol, "the referrers index is larger than 4 MiB");
    return std::move(r).error();
  }
  fetched_manifest m;
  m.descriptor.media_type = media_type_of(*r);
  m.descriptor.size = body.body.size();
  m.descriptor.digest = digest_of(body.body);
  m.body = std::move(body.body);
  return m;
}

}  // namespace registryd::oci::client
