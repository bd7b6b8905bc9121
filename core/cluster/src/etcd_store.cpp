#include <registryd/cluster/etcd_store.hpp>

#include <registryd/oci/base64.hpp>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include <mutex>
#include <set>
#include <thread>

namespace registryd::cluster {
namespace {

using json = nlohmann::json;

std::string b64(const std::string& bytes) { return oci::base64_encode(bytes); }

// etcd leaves out empty fields: an absent value is "".
std::optional<std::string> unb64(const json& object, const char* name) {
  const std::string text = object.value(name, std::string{});
  if (text.empty()) return std::string{};
  return oci::base64_decode(text);
}

// The end of the range of every key that starts with `prefix` (etcd's range_end): the prefix
// with its last byte below 0xff incremented and what follows dropped; "\0" means "to the end".
std::string prefix_end(std::string prefix) {
  while (!prefix.empty()) {
    auto& last = reinterpret_cast<unsigned char&>(prefix.back());
    if (last < 0xff) {
      ++last;
      return prefix;
    }
    prefix.pop_back();
  }
  return std::string(1, '\0');
}

// etcd's gateway writes 64-bit numbers as strings and leaves out zeros and false.
std::int64_t number(const json& object, const char* name) {
  const auto it = object.find(name);
  if (it == object.end()) return 0;
  if (it->is_string()) return std::stoll(it->get<std::string>());
  if (it->is_number_integer()) return it->get<std::int64_t>();
  return 0;
}

util::result<entry> parse_entry(const json& kv) {
  entry e;
  auto key = unb64(kv, "key");
  auto value = unb64(kv, "value");
  if (!key || !value) return util::error{"etcd sent a key or value that is not base64"};
  e.key = std::move(*key);
  e.value = std::move(*value);
  e.create_revision = number(kv, "create_revision");
  e.mod_revision = number(kv, "mod_revision");
  e.lease = number(kv, "lease");
  return e;
}

class etcd_store final : public store {
 public:
  explicit etcd_store(etcd_options options) : opts_(std::move(options)) {}

  util::result<std::pair<std::vector<entry>, std::int64_t>> list(const std::string& prefix) override {
    auto answer = call("/v3/kv/range", {{"key", b64(prefix)}, {"range_end", b64(prefix_end(prefix))}});
    if (!answer) return util::error{answer.error_message()};
    std::vector<entry> out;
    for (const auto& kv : answer->value("kvs", json::array())) {
      auto e = parse_entry(kv);
      if (!e) return util::error{e.error_message()};
      out.push_back(std::move(*e));
    }
    return std::make_pair(std::move(out), number(answer->value("header", json::object()), "revision"));
  }

  util::result<swap_result> compare_and_swap(const std::string& key, std::int64_t expected,
                                             const std::string& value, lease_id lease) override {
    json put_request = {{"key", b64(key)}, {"value", b64(value)}};
    if (lease != 0) put_request["lease"] = std::to_string(lease);
    return txn(key, compare_of(key, expected), json::array({{{"request_put", put_request}}}));
  }

  util::result<swap_result> create_all(const std::string& guard, const std::vector<put>& puts) override {
    json success = json::array();
    for (const auto& p : puts) {
      success.push_back({{"request_put", {{"key", b64(p.key)}, {"value", b64(p.value)}}}});
    }
    return txn(guard, compare_of(guard, 0), std::move(success));
  }

  util::result<bool> compare_and_delete(const std::string& key, std::int64_t expected) override {
    auto done = txn(key, compare_of(key, expected),
                    json::array({{{"request_delete_range", {{"key", b64(key)}}}}}));
    if (!done) return util::error{done.error_message()};
    return done->swapped;
  }

  util::status watch(const std::string& prefix, std::int64_t after_revision,
                     const std::function<bool(const std::vector<watch_event>&)>& on_events,
                     const std::atomic<bool>& stop) override {
    std::int64_t seen = after_revision;
    while (!stop) {
      bool keep_going = true;
      std::string failure;
      auto client = make_client(current_endpoint(), opts_.watch_idle_timeout);
      {
        std::lock_guard lock(watchers_mutex_);
        watchers_.insert(client.get());
      }
      std::string pending;
      httplib::Request req;
      req.method = "POST";
      req.path = "/v3/watch";
      req.set_header("Content-Type", "application/json");
      req.body = json{{"create_request",
                       {{"key", b64(prefix)},
                        {"range_end", b64(prefix_end(prefix))},
                        {"start_revision", std::to_string(seen + 1)}}}}
                     .dump();
      req.content_receiver = [&](const char* data, std::size_t size, std::uint64_t, std::uint64_t) {
        pending.append(data, size);
        for (auto newline = pending.find('\n'); newline != std::string::npos; newline = pending.find('\n')) {
          const std::string line = pending.substr(0, newline);
          pending.erase(0, newline + 1);
          if (line.find_first_not_of(" \r\t") == std::string::npos) continue;
          const json message = json::parse(line, nullptr, false);
          if (message.is_discarded()) {
            failure = "etcd sent a watch message that is not JSON";
            keep_going = false;
            return false;
          }
          const json result = message.value("result", json::object());
          if (number(result, "compact_revision") > 0) {
            failure = "the history after revision " + std::to_string(seen) +
                      " is compacted; list again";
            keep_going = false;
            return false;
          }
          if (message.contains("error")) {
            failure = "etcd refused the watch: " + message["error"].value("message", message["error"].dump());
            return false;
          }
          std::vector<watch_event> events;
          for (const auto& ev : result.value("events", json::array())) {
            auto e = parse_entry(ev.value("kv", json::object()));
            if (!e) {
              failure = e.error_message();
              keep_going = false;
              return false;
            }
            events.push_back({ev.value("type", std::string{}) == "DELETE", std::move(*e)});
          }
          if (events.empty()) continue;
          seen = events.back().item.mod_revision;
          if (!on_events(events)) {
            keep_going = false;
            return false;
          }
        }
        return !stop.load();
      };
      httplib::Response res;
      httplib::Error error = httplib::Error::Success;
      client->send(req, res, error);
      {
        std::lock_guard lock(watchers_mutex_);
        watchers_.erase(client.get());
      }
      if (!keep_going) return failure.empty() ? util::ok() : util::status(util::error{failure});
      if (stop) break;
      if (failure.empty()) {
        failure = error == httplib::Error::Success ? "the watch ended" : httplib::to_string(error);
        if (error != httplib::Error::Success && error != httplib::Error::Read) rotate_endpoint();
      }
      // A read timeout is a quiet prefix, not a failure: re-open at once. Anything else waits
      // a little so a dead store is not hammered.
      if (error != httplib::Error::Read) {
        for (int i = 0; i < 10 && !stop; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
    }
    return util::ok();
  }

  void interrupt_watches() override {
    std::lock_guard lock(watchers_mutex_);
    for (auto* client : watchers_) client->stop();
  }

  util::result<lease_id> grant_lease(std::chrono::seconds ttl) override {
    auto answer = call("/v3/lease/grant", {{"TTL", std::to_string(ttl.count())}});
    if (!answer) return util::error{answer.error_message()};
    const auto id = number(*answer, "ID");
    if (id == 0) return util::error{"etcd granted no lease: " + answer->value("error", std::string{})};
    return id;
  }

  util::status keep_alive(lease_id lease) override {
    auto answer = call("/v3/lease/keepalive", {{"ID", std::to_string(lease)}});
    if (!answer) return util::error{answer.error_message()};
    if (number(answer->value("result", json::object()), "TTL") <= 0) {
      return util::error{"lease " + std::to_string(lease) + " has expired"};
    }
    return util::ok();
  }

  util::status revoke(lease_id lease) override {
    auto answer = call("/v3/lease/revoke", {{"ID", std::to_string(lease)}});
    if (!answer) return util::error{answer.error_message()};
    return util::ok();
  }

  std::string describe() const override {
    std::string out = "etcd at ";
    for (std::size_t i = 0; i < opts_.endpoints.size(); ++i) {
      out += (i ? ", " : "") + opts_.endpoints[i];
    }
    return out;
  }

 private:
  static json compare_of(const std::string& key, std::int64_t expected) {
    if (expected == 0) {
      return json::array({{{"key", b64(key)}, {"target", "CREATE"}, {"create_revision", "0"}}});
    }
    return json::array(
        {{{"key", b64(key)}, {"target", "MOD"}, {"mod_revision", std::to_string(expected)}}});
  }

  // A transaction: `compare`, then `success`; on failure the key is read back.
  util::result<swap_result> txn(const std::string& key, json compare, json success) {
    auto answer = call("/v3/kv/txn", {{"compare", std::move(compare)},
                                      {"success", std::move(success)},
                                      {"failure", json::array({{{"request_range", {{"key", b64(key)}}}}})}});
    if (!answer) return util::error{answer.error_message()};
    swap_result out;
    out.swapped = answer->value("succeeded", false);
    out.revision = number(answer->value("header", json::object()), "revision");
    if (!out.swapped) {
      for (const auto& r : answer->value("responses", json::array())) {
        for (const auto& kv : r.value("response_range", json::object()).value("kvs", json::array())) {
          auto e = parse_entry(kv);
          if (!e) return util::error{e.error_message()};
          out.current = std::move(*e);
        }
      }
    }
    return out;
  }

  std::unique_ptr<httplib::Client> make_client(const std::string& endpoint,
                                               std::chrono::milliseconds read_timeout) const {
    auto client = opts_.cert_file && opts_.key_file
                      ? std::make_unique<httplib::Client>(endpoint, opts_.cert_file->string(),
                                                          opts_.key_file->string())
                      : std::make_unique<httplib::Client>(endpoint);
    if (opts_.ca_file) client->set_ca_cert_path(opts_.ca_file->string());
    client->enable_server_certificate_verification(true);
    client->set_connection_timeout(opts_.connect_timeout);
    client->set_read_timeout(read_timeout);
    client->set_write_timeout(opts_.request_timeout);
    client->set_keep_alive(false);
    return client;
  }

  std::string current_endpoint() {
    std::lock_guard lock(endpoint_mutex_);
    return opts_.endpoints[next_ % opts_.endpoints.size()];
  }
  void rotate_endpoint() {
    std::lock_guard lock(endpoint_mutex_);
    ++next_;
  }

  // One unary call, tried on each endpoint in turn until one answers. What surely did not
  // reach etcd's state (no connection; 503, as while a new leader is elected) is retried,
  // endpoint after endpoint, until request_timeout has passed; an answer lost after the
  // request went out is not, since it may have been applied.
  util::result<json> call(const std::string& path, const json& body) {
    std::string failures;
    const auto deadline = std::chrono::steady_clock::now() + opts_.request_timeout;
    for (std::size_t attempt = 0;; ++attempt) {
      if (attempt > 0 && attempt % opts_.endpoints.size() == 0) {
        if (std::chrono::steady_clock::now() >= deadline) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
      }
      const std::string endpoint = current_endpoint();
      auto client = make_client(endpoint, opts_.request_timeout);
      auto res = client->Post(path, body.dump(), "application/json");
      if (!res) {
        const auto error = res.error();
        failures = endpoint + ": " + httplib::to_string(error);
        rotate_endpoint();
        if (error == httplib::Error::Connection || error == httplib::Error::SSLConnection) continue;
        return util::error{"etcd at " + failures};
      }
      json answer = json::parse(res->body, nullptr, false);
      const std::string why =
          answer.is_object() ? answer.value("message", answer.value("error", res->body)) : res->body;
      if (res->status == 503) {
        failures = endpoint + " answered 503: " + why;
        rotate_endpoint();
        continue;
      }
      if (res->status != 200) {
        return util::error{"etcd at " + endpoint + " answered " + std::to_string(res->status) + " to " +
                           path + ": " + why};
      }
      if (!answer.is_object()) return util::error{"etcd at " + endpoint + " sent an answer that is not JSON"};
      return answer;
    }
    return util::error{"no etcd endpoint answered within " + std::to_string(opts_.request_timeout.count()) +
                       " ms (last: " + failures + ")"};
  }

  etcd_options opts_;
  std::mutex endpoint_mutex_;
  std::size_t next_ = 0;
  std::mutex watchers_mutex_;
  std::set<httplib::Client*> watchers_;
};

}  // namespace

util::result<std::optional<entry>> store::get(const std::string& key) {
  auto found = list(key);
  if (!found) return util::error{found.error_message()};
  for (auto& e : found->first) {
    if (e.key == key) return std::optional<entry>(std::move(e));
  }
  return std::optional<entry>();
}

util::result<std::unique_ptr<store>> open_etcd(etcd_options options) {
  if (options.endpoints.empty()) return util::error{"cluster_store: at least one etcd URL is needed"};
  for (auto& url : options.endpoints) {
    while (url.ends_with('/')) url.pop_back();
    if (!url.starts_with("http://") && !url.starts_with("https://")) {
      return util::error{"cluster_store: " + url + " is not an http:// or https:// URL"};
    }
  }
  if (options.cert_file.has_value() != options.key_file.has_value()) {
    return util::error{"cluster_store: a client certificate needs its key, and a key its certificate"};
  }
  for (const auto* file : {&options.ca_file, &options.cert_file, &options.key_file}) {
    std::error_code ec;
    if (*file && !std::filesystem::is_regular_file(**file, ec)) {
      return util::error{"cluster_store: cannot read " + (*file)->string()};
    }
  }
  return std::unique_ptr<store>(std::make_unique<etcd_store>(std::move(options)));
}

}  // namespace registryd::cluster
