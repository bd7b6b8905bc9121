#include "replica/peer.hpp"

#include <stdexcept>

namespace registryd::local::replica {
namespace {

bool same(const std::optional<client::credentials>& a, const std::optional<client::credentials>& b) {
  if (a.has_value() != b.has_value()) return false;
  return !a || (a->username == b->username && a->password == b->password);
}

}  // namespace

http_peer::http_peer(http_peer_options options) : options_(std::move(options)) {
  if (options_.address.empty()) throw std::invalid_argument("a replica peer needs an address (host:port)");
  // Built once here so that a bad CA is a start-up error, not a failure every round.
  (void)client_for_round();
}

std::shared_ptr<client::registry_client> http_peer::client_for_round() {
  std::optional<client::credentials> creds;
  if (options_.credentials) creds = options_.credentials();
  std::lock_guard lock(mutex_);
  if (!client_ || !same(creds, credentials_)) {
    client::client_options o;
    o.registry = options_.address;
    o.url_scheme = client::scheme::https;
    o.auth = creds;
    o.ca_pem = options_.ca_pem;
    o.connect_timeout = options_.connect_timeout;
    o.read_timeout = options_.read_timeout;
    o.max_idle_connections = 2;
    o.user_agent = "registryd-replica-sync";
    client_ = std::make_shared<client::registry_client>(std::move(o));
    credentials_ = std::move(creds);
  }
  return client_;
}

std::shared_ptr<client::registry_client> http_peer::current_client() {
  std::lock_guard lock(mutex_);
  return client_;
}

client::result<replica_state> http_peer::fetch_state() {
  const auto c = client_for_round();
  client::request req;
  req.method = "GET";
  req.target = std::string(state_target);
  req.headers.add("Accept", std::string(state_media_type) + ", application/json");
  {
    std::lock_guard lock(mutex_);
    if (cached_ && !etag_.empty()) req.headers.add("If-None-Match", etag_);
  }
  req.scopes = {"registry:catalog:*"};
  std::string body;
  bool too_large = false;
  client::response_handler handler;
  handler.on_body = [&](std::string_view piece) {
    if (body.size() + piece.size() > max_state_size) {
      too_large = true;
      return false;
    }
    body.append(piece);
    return true;
  };
  auto head = c->send(req, handler);
  if (too_large) {
    return client::make_error(client::error_kind::protocol,
                              options_.address + " sent a replica state larger than " +
                                  std::to_string(max_state_size / (1024 * 1024)) + " MiB");
  }
  if (!head) return std::move(head).error();
  std::lock_guard lock(mutex_);
  if (head->status == 304 && cached_) return *cached_;
  if (head->status != 200) {
    return client::make_error(client::error_kind::protocol,
                              options_.address + " answered the replica state request with status " +
                                  std::to_string(head->status),
                              head->status);
  }
  nlohmann::json doc;
  try {
    doc = nlohmann::json::parse(body);
  } catch (const nlohmann::json::exception& e) {
    return client::make_error(client::error_kind::protocol,
                              options_.address + " sent a replica state that is not JSON: " + e.what(), 200);
  }
  if (doc.is_object() && doc.contains("repositories") && doc["repositories"].is_array()) {
    return client::make_error(client::error_kind::protocol,
                              options_.address + " answered with a plain catalog: it is not a registryd replica "
                                                 "in Local mode (or too old to serve the replica state)",
                              200);
  }
  auto state = state_from_json(doc);
  if (!state) {
    return client::make_error(client::error_kind::protocol,
                              options_.address + " sent a replica state registryd cannot read: " +
                                  state.error_message(),
                              200);
  }
  etag_ = std::string(head->headers.get("ETag").value_or(""));
  cached_ = *state;
  return std::move(state).value();
}

client::result<client::fetched_manifest> http_peer::fetch_manifest(std::string_view repository,
                                                                   const oci::digest& d) {
  return current_client()->get_manifest(repository, d.str());
}

client::result<std::uint64_t> http_peer::fetch_blob(std::string_view repository, const oci::digest& d,
                                                    const std::function<bool(std::string_view)>& sink) {
  std::uint64_t bytes = 0;
  client::response_handler handler;
  handler.on_body = [&](std::string_view piece) {
    bytes += piece.size();
    return sink(piece);
  };
  client::blob_read_options opts;
  opts.verify = false;  // the blob store hashes what it publishes
  auto head = current_client()->get_blob(repository, d, handler, opts);
  if (!head) return std::move(head).error();
  return bytes;
}

}  // namespace registryd::local::replica
