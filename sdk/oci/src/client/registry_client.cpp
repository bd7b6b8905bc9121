#include <registryd/oci/client/registry_client.hpp>

#include "token_exchange.hpp"
#include "transport.hpp"
#include "url.hpp"

#include <registryd/oci/client/link_header.hpp>
#include <registryd/oci/client/scope.hpp>
#include <registryd/oci/client/www_authenticate.hpp>
#include <registryd/oci/reference.hpp>

#include <nlohmann/json.hpp>

#include <charconv>
#include <cstring>
#include <stdexcept>

namespace registryd::oci::client {

using detail::url;

namespace {

using detail::http_error;
using detail::piece_size;
constexpr std::size_t max_error_body = 64 * 1024;
constexpr std::size_t max_list_page = 16 * 1024 * 1024;
constexpr int max_list_pages = 100000;

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

bool is_digest_reference(std::string_view reference) { return reference.find(':') != std::string_view::npos; }

}  // namespace

// ---------------------------------------------------------------------------------------------

// The client's three layers: the wire (detail::transport: one exchange on a pooled connection),
// the authentication its 401s teach (detail::token_exchange), and here, a whole request with
// its challenges answered and its redirects followed.
struct registry_client::impl {
  explicit impl(client_options o) : options(std::move(o)), wire(options), tokens(options, wire) {
    auto parsed = detail::parse_url(options.base_url() + "/");
    if (!parsed) throw std::invalid_argument("registry '" + options.registry + "' is not host[:port]");
    base = *parsed;
  }

  client_options options;
  detail::transport wire;
  detail::token_exchange tokens;
  url base;

  using route = detail::transport::route;

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
        auto auth = tokens.authorization(scopes, false);
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

      auto a = wire.perform(current, method, headers, body, route_of, handler, req.abort.get(), max_error_body);
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
          if (auto s = bearer->param("scope")) {
            for (auto& one : split_scope_param(*s)) scopes.push_back(std::move(one));
          }
          // A fresh token, cached for the retry that follows. When none can be had, that is
          // the answer: the realm's refusal (UNAUTHORIZED) or why it could not be reached.
          auto token = tokens.learn_bearer(*bearer->param("realm"), bearer->param("service").value_or(""), scopes);
          if (!token) return std::move(token).error();
        } else {
          tokens.learn_basic();
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

std::size_t registry_client::idle_connections() const { return impl_->wire.idle_connections(); }

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
  if (r->status == 202) {
    // Not mounted: the registry opened an upload instead, which nobody will use.
    if (const auto location = r->headers.get("Location")) {
      if (auto opened = detail::resolve_url(impl_->base, *location)) {
        (void)cancel_upload(upload_session{std::string(repository), opened->str(), 0});
      }
    }
    return false;
  }
  return make_error(error_kind::protocol, "mount answered " + std::to_string(r->status), r->status);
}

outcome registry_client::push_blob(std::string_view repository, const digest& d, request_body body) const {
  if (!body.read) return make_error(error_kind::invalid_argument, "push_blob needs a body to read");
  auto session = open_upload(repository);
  if (!session) return std::move(session).error();
  return finish_upload(*session, d, std::move(body));
}

namespace {

// The upload's URL after an answer that may name the next one (Location), resolved against
// where the request went.
std::optional<detail::url> next_upload_url(const detail::url& current, const response_head& head) {
  const auto location = head.headers.get("Location");
  return location ? detail::resolve_url(current, *location) : std::optional<detail::url>(current);
}

// "0-1234" or "bytes=0-1234" (an upload's Range header): the count held, 1235. "0-0" is 0:
// registries (distribution, Local mode) send it for an upload that holds nothing yet, and
// for one that holds one byte; resuming from 0 is right for the first and refused (then
// restarted) for the second.
std::optional<std::uint64_t> upload_range_end(std::string_view v) {
  if (v.rfind("bytes=", 0) == 0) v.remove_prefix(6);
  if (v == "0-0") return 0;
  const auto dash = v.find('-');
  if (dash == std::string_view::npos) return std::nullopt;
  const auto last = v.substr(dash + 1);
  std::uint64_t n = 0;
  if (last.empty()) return std::nullopt;
  for (const char c : last) {
    if (c < '0' || c > '9' || n > (UINT64_MAX - 9) / 10) return std::nullopt;
    n = n * 10 + static_cast<std::uint64_t>(c - '0');
  }
  return n + 1;
}

}  // namespace

result<upload_session> registry_client::open_upload(std::string_view repository) const {
  if (auto c = check_name(repository); !c) return std::move(c).error();
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
  return upload_session{std::string(repository), upload->str(), 0};
}

outcome registry_client::upload_chunk(upload_session& session, std::string_view bytes) const {
  auto at = detail::parse_url(session.location);
  if (!at) return make_error(error_kind::invalid_argument, "not an upload URL: " + session.location);
  if (bytes.empty()) return done{};
  request patch;
  patch.method = "PATCH";
  patch.target = at->target;
  patch.headers.add("Content-Type", "application/octet-stream");
  patch.headers.add("Content-Range",
                    std::to_string(session.offset) + "-" + std::to_string(session.offset + bytes.size() - 1));
  patch.scopes = {push_scope(session.repository)};
  patch.body = body_of(bytes);
  patch.follow_redirects = false;
  auto r = impl_->exchange(*at, patch, {});
  if (!r) return std::move(r).error();
  if (r->status != 202) {
    return make_error(error_kind::protocol, "a chunk of the upload answered " + std::to_string(r->status), r->status);
  }
  const auto next = next_upload_url(*at, *r);
  if (!next) return make_error(error_kind::protocol, "the upload's next Location is not a URL", r->status);
  session.location = next->str();
  session.offset += bytes.size();
  return done{};
}

outcome registry_client::refresh_upload(upload_session& session) const {
  auto at = detail::parse_url(session.location);
  if (!at) return make_error(error_kind::invalid_argument, "not an upload URL: " + session.location);
  request get;
  get.target = at->target;
  get.scopes = {push_scope(session.repository)};
  get.follow_redirects = false;
  auto r = impl_->exchange(*at, get, {});
  if (!r) return std::move(r).error();
  if (r->status != 204 && r->status != 200) {
    return make_error(error_kind::protocol, "the upload's status answered " + std::to_string(r->status), r->status);
  }
  const auto range = r->headers.get("Range");
  const auto held = range ? upload_range_end(*range) : std::optional<std::uint64_t>(0);
  if (!held) return make_error(error_kind::protocol, "the upload's status has an unreadable Range", r->status);
  const auto next = next_upload_url(*at, *r);
  if (next) session.location = next->str();
  session.offset = *held;
  return done{};
}

outcome registry_client::finish_upload(const upload_session& session, const digest& d,
                                       std::optional<request_body> rest) const {
  auto upload = detail::parse_url(session.location);
  if (!upload) return make_error(error_kind::invalid_argument, "not an upload URL: " + session.location);
  upload->target += (upload->target.find('?') == std::string::npos ? "?" : "&") +
                    ("digest=" + detail::encode_query_value(d.str()));
  request put;
  put.method = "PUT";
  put.target = upload->target;
  put.headers.add("Content-Type", "application/octet-stream");
  put.scopes = {push_scope(session.repository)};
  if (rest) {
    put.body = std::move(*rest);
  } else {
    put.body = body_of("");
  }
  put.follow_redirects = false;
  auto done_put = impl_->exchange(*upload, put, {});
  if (!done_put) return std::move(done_put).error();
  if (done_put->status != 201) {
    return make_error(error_kind::protocol, "finishing the upload answered " + std::to_string(done_put->status),
                      done_put->status);
  }
  return done{};
}

outcome registry_client::cancel_upload(const upload_session& session) const {
  auto at = detail::parse_url(session.location);
  if (!at) return make_error(error_kind::invalid_argument, "not an upload URL: " + session.location);
  request del;
  del.method = "DELETE";
  del.target = at->target;
  del.scopes = {push_scope(session.repository)};
  del.follow_redirects = false;
  auto r = impl_->exchange(*at, del, {});
  if (!r) return std::move(r).error();
  if (r->status != 204 && r->status != 202 && r->status != 200) {
    return make_error(error_kind::protocol, "cancelling the upload answered " + std::to_string(r->status), r->status);
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
