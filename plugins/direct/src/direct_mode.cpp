#include "direct_mode.hpp"

#include <registryd/sdk/containerd.hpp>

#include "forwarding.hpp"
#include "body_relay.hpp"

#include <registryd/oci/client/response_stream.hpp>
#include <registryd/oci/text_file.hpp>

#include <charconv>
#include <stdexcept>

namespace registryd::direct {
namespace {

namespace client = oci::client;
using nlohmann::json;

// Bytes queued per stream between the upstream and the client: what a client that stops
// reading holds here until the front door's body timeout, besides the front door's piece.
constexpr std::size_t stream_buffer = 256 * 1024;
// Error bodies and tag lists are read whole; anything longer is not what it claims to be.
constexpr std::size_t max_error_body = 64 * 1024;
constexpr std::size_t max_tags_list = 8 * 1024 * 1024;

std::optional<std::uint64_t> parse_length(std::string_view v) {
  std::uint64_t n = 0;
  const auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
  if (ec != std::errc() || p != v.data() + v.size()) return std::nullopt;
  return n;
}

header_fields request_headers(const sdk::request& req) {
  header_fields out;
  const registryd_request* raw = req.raw();
  for (std::size_t i = 0; i < raw->header_count; ++i) {
    out.emplace_back(std::string(sdk::from_abi(raw->headers[i].name)),
                     std::string(sdk::from_abi(raw->headers[i].value)));
  }
  return out;
}

// Reads at most `limit` bytes of an answer body; nullopt when it is longer or breaks off.
std::optional<std::string> read_whole(client::response_stream& stream, std::size_t limit) {
  std::string out;
  char buf[16 * 1024];
  for (;;) {
    const auto n = stream.read(buf, sizeof buf);
    if (n < 0) return std::nullopt;
    if (n == 0) return out;
    if (out.size() + static_cast<std::size_t>(n) > limit) return std::nullopt;
    out.append(buf, static_cast<std::size_t>(n));
  }
}

// The body of an answer streamed to the client, pulled by the host after handle() returned.
// Owns the upstream stream (and with it the worker thread and the connection): closing it
// early aborts the transfer.
class relay_source final : public sdk::body_source {
 public:
  relay_source(std::shared_ptr<const client::registry_client> c, sdk::admission::ticket place,
               std::unique_ptr<client::response_stream> stream, std::optional<oci::digest> verify,
               std::optional<std::uint64_t> length, std::shared_ptr<direct_metrics> metrics, sdk::host host,
               std::string what)
      : client_(std::move(c)),
        place_(std::move(place)),
        stream_(std::move(stream)),
        relay_([s = stream_.get()](char* b, std::size_t n) { return s->read(b, n); },
               [s = stream_.get()] {
                 const auto e = s->error();
                 return e ? e->str() : std::string("the upstream answer broke off");
               },
               std::move(verify)),
        length_(length),
        metrics_(std::move(metrics)),
        host_(host),
        what_(std::move(what)) {
    metrics_->stream_opened();
  }
  ~relay_source() override {
    const bool complete = relay_.complete() || (length_ && relay_.delivered() >= *length_);
    if (complete && !relay_.complete()) {
      // The host stops at the promised length; the worker is only returning from the client.
      // Waiting for that keeps the upstream connection for reuse instead of shutting it.
      try {
        char byte;
        (void)relay_.read(&byte, 1);
      } catch (...) {
      }
    }
    stream_.reset();  // stops and joins the worker before the stream counts as closed
    metrics_->stream_closed(complete);
  }
  relay_source(const relay_source&) = delete;
  relay_source& operator=(const relay_source&) = delete;

  std::size_t read(char* buffer, std::size_t capacity) override {
    try {
      const std::size_t n = relay_.read(buffer, capacity);
      metrics_->bytes(n);
      return n;
    } catch (const std::exception& e) {
      metrics_->body_failure();
      host_.warn("the upstream answer for " + what_ + " broke off after " + std::to_string(relay_.delivered()) +
                 " bytes: " + e.what());
      throw;
    }
  }

 private:
  std::shared_ptr<const client::registry_client> client_;  // outlives the stream's worker
  sdk::admission::ticket place_;                           // given back after the stream's worker ended
  std::unique_ptr<client::response_stream> stream_;
  body_relay relay_;
  std::optional<std::uint64_t> length_;
  std::shared_ptr<direct_metrics> metrics_;
  sdk::host host_;
  std::string what_;
};

void send_local(sdk::response& res, const local_answer& a) {
  if (a.code.empty()) {
    res.status(a.status);
    res.send("application/json", "{}");
    return;
  }
  res.send_error(a.status, a.code, a.message, a.detail);
}

// `text` as a RE2 pattern that matches it literally.
std::string re2_quote(std::string_view text) {
  std::string out;
  for (const char c : text) {
    if (std::string_view(".^$*+?()[]{}|\\").find(c) != std::string_view::npos) out += '\\';
    out += c;
  }
  return out;
}

}  // namespace

json describe_containerd(const settings& s, const std::string& ca_pem) {
  if (s.masters.empty()) {
    throw std::invalid_argument("no master is known (host.masters, host.nodeIP): nodes would have no proxy to pull through");
  }
  // The port of the fixed address is the port the masters serve on.
  std::string port = "5001";
  if (const auto colon = s.fixed_host.rfind(':');
      colon != std::string::npos && s.fixed_host.find(']', colon) == std::string::npos) {
    port = s.fixed_host.substr(colon + 1);
  }
  sdk::containerd::registry_host fixed{s.fixed_host, std::nullopt, {}};
  const auto& upstream = s.upstream.options;
  if (s.patched_containerd && !s.upstream.images_repo.path.empty()) {
    // The platform's patched containerd goes straight to the upstream: the path rewritten
    // (the repository without its leading slash, as FACTS.md says) and the upstream
    // credentials in `auth`. Stock containerd ignores both, is refused there and goes on to
    // the masters below, which map the path themselves.
    auto m = sdk::containerd::registry_mirror(
        upstream.base_url(), upstream.ca_pem.empty() ? std::nullopt : std::optional<std::string>(upstream.ca_pem),
        upstream.auth ? std::optional<sdk::containerd::mirror_auth>({upstream.auth->username, upstream.auth->password})
                      : std::nullopt);
    m.rewrites.push_back({"^" + re2_quote(s.fixed_repository), s.upstream.images_repo.path});
    fixed.mirrors.push_back(std::move(m));
  }
  for (const auto& master : s.masters) {
    const bool v6 = master.find(':') != std::string::npos && master.front() != '[';
    sdk::containerd::mirror m;
    m.url = "https://" + (v6 ? "[" + master + "]" : master) + ":" + port;
    m.ca_pem = ca_pem;
    fixed.mirrors.push_back(std::move(m));
  }
  return sdk::containerd::description{{std::move(fixed)}}.to_json();
}

direct_mode::direct_mode(const sdk::host& host, const json& settings_doc)
    : host_(host),
      settings_(parse_settings(settings_doc)),
      mapping_(settings_.fixed_repository, settings_.upstream.images_repo.path),
      client_(std::make_shared<const client::registry_client>(settings_.upstream.options)),
      metrics_(std::make_shared<direct_metrics>()),
      relays_(settings_.max_relays, settings_.max_relays_per_client),
      waiting_(settings_.max_relays_waiting, settings_.max_relays_waiting) {
  const auto& o = settings_.upstream.options;
  if (o.url_scheme == client::scheme::http && !o.ca_pem.empty()) {
    host_.info("section.ca verifies only an HTTPS token realm or blob storage: " +
               settings_.upstream.images_repo.registry + " itself is reached over HTTP");
  }
  if (settings_.upstream.images_repo.path.empty()) {
    host_.warn("imagesRepo " + settings_.upstream.images_repo.str() + " names no path: " +
               settings_.fixed_repository + " itself maps to nothing, only the repositories below it are served");
  }
  host_.info("Direct mode: forwarding pulls of " + settings_.fixed_repository + " to " + o.base_url() + "/" +
             settings_.upstream.images_repo.path +
             (o.auth ? " as " + o.auth->username : std::string(" anonymously")) + ", nothing is stored");
}

std::optional<json> direct_mode::containerd_config() const {
  if (settings_.ca_file.empty()) {
    throw std::invalid_argument("host.caFile is not set: nodes could not verify the in-cluster proxy");
  }
  const std::string ca = oci::read_text_file(settings_.ca_file).value_or("");
  if (ca.find("-----BEGIN CERTIFICATE-----") == std::string::npos) {
    throw std::runtime_error("the registry CA " + settings_.ca_file +
                             " cannot be read (it exists once registryd serves TLS)");
  }
  return describe_containerd(settings_, ca);
}

void direct_mode::answer_upstream_error(sdk::response& res, const forward_plan& plan,
                                        const client::upstream_error& error, const std::string& body,
                                        bool head_request) {
  metrics_->upstream_failure(error);
  const int status = client_status_for(error);
  if (error.status == 401) {
    host_.error("the upstream " + settings_.upstream.options.registry + " refused registryd's credentials for " +
                plan.upstream_name + ": " + error.message);
  } else if (error.status >= 500 || error.status == 429) {
    host_.warn("the upstream " + settings_.upstream.options.registry + " answered " + std::to_string(error.status) +
               " for " + plan.target + ": " + error.message);
  }
  res.status(status);
  // Retry-After tells a client of 429 and 503 when to come back.
  if (const auto retry = error.headers.get("Retry-After")) res.header("Retry-After", *retry);
  if (head_request) {
    res.header("Content-Type", "application/json");
    return;
  }
  client::upstream_error shown = error;
  if (error.status == 401) {
    shown.code = "UNAUTHORIZED";
    shown.message = "the upstream registry " + settings_.upstream.options.registry +
                    " refused registryd's credentials (section.username/password or license): " + error.message;
    shown.detail.clear();
    res.send("application/json", error_body_to_client("", shown, mapping_, plan));
    return;
  }
  res.send("application/json", error_body_to_client(body, shown, mapping_, plan));
}

void direct_mode::handle(const sdk::request& req, sdk::response& res) {
  auto planned = plan_request(mapping_, req.method(), req.path(), req.query());
  if (const auto* local = std::get_if<local_answer>(&planned)) {
    metrics_->answered_locally(local->code);
    send_local(res, *local);
    return;
  }
  const auto& plan = std::get<forward_plan>(planned);
  metrics_->forwarded(plan.route.kind, plan.method);
  const bool head_request = plan.method == "HEAD";
  const std::string& upstream_host = settings_.upstream.options.registry;

  // A place for the exchange before its thread starts: refused past the bounds, with a hint
  // to come back (docs/direct-mode.md, "Relays in flight").
  sdk::admission::refusal why{};
  sdk::admission::ticket place = relays_.enter(req.remote_addr(), &why);
  if (!place) {
    const bool per_client = why == sdk::admission::refusal::per_key;
    metrics_->relay_refused(per_client ? direct_metrics::relay_limit::per_client : direct_metrics::relay_limit::total);
    res.header("Retry-After", "1");
    if (per_client) {
      res.send_error(429, "TOOMANYREQUESTS",
                     "this client address has " + std::to_string(settings_.max_relays_per_client) +
                         " answers relayed from the upstream in flight, the most allowed (direct_max_relays_per_client)");
    } else {
      res.send_error(503, "UNAVAILABLE",
                     "registryd relays " + std::to_string(settings_.max_relays) +
                         " answers from the upstream now, the most allowed (direct_max_relays): try again shortly");
    }
    return;
  }

  client::request up;
  up.method = plan.method;
  up.target = plan.target;
  up.headers = upstream_request_headers(request_headers(req));
  up.scopes = {plan.scope};
  // The handler waits on its worker until the upstream's answer head is there: a slow or stuck
  // upstream must not take every worker (health checks, tokens and other clients need some).
  sdk::admission::ticket waiting = waiting_.enter("");
  if (!waiting) {
    metrics_->relay_refused(direct_metrics::relay_limit::waiting);
    res.header("Retry-After", "1");
    res.send_error(503, "UNAVAILABLE",
                   std::to_string(settings_.max_relays_waiting) + " requests wait for the upstream " + upstream_host +
                       " to answer now, the most allowed (direct_max_relays_waiting): it is slow or stuck");
    return;
  }
  auto opened = client::response_stream::open(*client_, std::move(up), stream_buffer);
  waiting = {};
  if (!opened) {
    const auto& e = opened.error();
    if (e.kind == client::error_kind::http) {
      // The token realm refused before the registry answered.
      answer_upstream_error(res, plan, e, "", head_request);
    } else {
      metrics_->upstream_failure(e);
      host_.warn("upstream " + upstream_host + " for " + plan.target + ": " + e.str());
      send_local(res, transport_failure(e, upstream_host, mapping_));
    }
    return;
  }
  std::unique_ptr<client::response_stream> stream = std::move(opened.value());
  const client::response_head& head = stream->head();
  metrics_->upstream_status(head.status);

  if (head.status >= 400) {
    // An error body that breaks off, or is not the short document it should be, still has
    // its status; error_from_answer reads what there is.
    const std::string body = head_request ? std::string() : read_whole(*stream, max_error_body).value_or("");
    answer_upstream_error(res, plan, error_from_answer(head.status, head.headers, body, plan, upstream_host), body,
                          head_request);
    return;
  }

  std::string content_type;
  std::optional<std::uint64_t> length;
  res.status(head.status);
  for (const auto& [name, value] : client_response_headers(head.headers, mapping_, upstream_host)) {
    if (client::iequals(name, "Content-Type")) {
      content_type = value;
    } else if (client::iequals(name, "Content-Length")) {
      length = parse_length(value);
    } else {
      res.header(name, value);
    }
  }

  const bool no_body = head_request || head.status == 204 || head.status == 304 ||
                       (head.status >= 300 && head.status < 400);
  if (no_body) {
    if (!content_type.empty()) res.header("Content-Type", content_type);
    if (head_request && length) res.header("Content-Length", std::to_string(*length));
    // A redirect's few bytes are read so that its connection can be reused.
    if (!head_request) (void)read_whole(*stream, max_error_body);
    return;
  }

  if (plan.route.kind == oci::route_kind::tags_list) {
    const auto body = read_whole(*stream, max_tags_list);
    if (!body) {
      const auto e = stream->error();
      if (e) {
        metrics_->upstream_failure(*e);
        send_local(res, transport_failure(*e, upstream_host, mapping_));
      } else {
        res.send_error(502, "UNAVAILABLE", "the upstream's tag list of " + plan.client_name + " is longer than " +
                                               std::to_string(max_tags_list) + " bytes");
      }
      return;
    }
    metrics_->bytes(body->size());
    const auto mapped = tags_list_to_client(*body, plan.client_name);
    res.send(content_type.empty() ? "application/json" : content_type, mapped ? *mapped : mapping_.text_to_client(*body));
    return;
  }

  // Only a whole answer is checked against the digest asked for; a 206 is a slice of it.
  const auto verify = head.status == 200 ? plan.verify : std::nullopt;
  res.send_stream(content_type.empty() ? "application/octet-stream" : content_type,
                  length ? static_cast<std::int64_t>(*length) : -1,
                  std::make_unique<relay_source>(client_, std::move(place), std::move(stream), verify, length,
                                                 metrics_, host_, plan.client_reference()));
}

void direct_mode::metrics(std::string& out) const {
  metrics_->write(out, settings_.upstream.images_repo.str(),
                  settings_.upstream.options.url_scheme == client::scheme::http ? "HTTP" : "HTTPS", relays_.held(),
                  waiting_.held());
}

}  // namespace registryd::direct
