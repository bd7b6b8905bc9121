// Helpers for the Proxy mode tests: a small upstream registry on loopback that counts what it
// is asked, and a driver that hands requests to the mode as the host does and records the
// answer (bytes, streams and files alike).
#pragma once

#include <registryd/oci/digest.hpp>
#include <registryd/plugin_abi.h>
#include <registryd/sdk/plugin.hpp>

#include <test_support.hpp>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <unistd.h>
#include <utility>
#include <vector>

namespace registryd::test {

// An in-memory upstream registry serving manifests and blobs of one repository path, over
// plain HTTP on 127.0.0.1, on an ephemeral port. Counts requests by "METHOD path".
class fake_upstream {
 public:
  explicit fake_upstream(std::string repo = "deckhouse/ee") : repo_(std::move(repo)) {
    // stop() waits for kept-alive connections to time out: keep that short.
    server_.set_keep_alive_timeout(1);
    // Counted before the answer goes out (a logger runs after it, racing the test's checks).
    server_.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response&) {
      std::lock_guard lock(mutex_);
      ++requests_[req.method + " " + req.path];
      return httplib::Server::HandlerResponse::Unhandled;
    });
    // The repository and everything below it share one set of manifests, tags and blobs.
    const std::string base = "/v2/(" + repo_ + "(?:/[a-z0-9]+)*)";
    server_.Get(base + R"(/manifests/([^/]+))", [this](const httplib::Request& req, httplib::Response& res) {
      std::this_thread::sleep_for(stall_.load());
      std::lock_guard lock(mutex_);
      if (fail_status_) return error(res, fail_status_, "UNAVAILABLE", "upstream is failing");
      std::string ref = req.matches[2];
      if (auto t = tags_.find(ref); t != tags_.end()) ref = t->second;
      const auto m = manifests_.find(ref);
      if (m == manifests_.end()) {
        return error(res, 404, "MANIFEST_UNKNOWN",
                     "manifest unknown: " + std::string(req.matches[1]) + ":" + std::string(req.matches[2]));
      }
      res.set_header("Docker-Content-Digest", ref);
      res.set_content(m->second.second, m->second.first);
    });
    server_.Get(base + R"(/blobs/([^/]+))", [this](const httplib::Request& req, httplib::Response& res) {
      std::this_thread::sleep_for(stall_.load());
      std::string content;
      {
        std::lock_guard lock(mutex_);
        if (fail_status_) return error(res, fail_status_, "UNAVAILABLE", "upstream is failing");
        const auto b = blobs_.find(req.matches[2]);
        if (b == blobs_.end()) return error(res, 404, "BLOB_UNKNOWN", "blob unknown to " + std::string(req.matches[1]));
        content = b->second;
      }
      res.set_header("Docker-Content-Digest", std::string(req.matches[2]));
      if (req.method == "HEAD") {
        res.set_content(content, "application/octet-stream");
        return;
      }
      // Streamed slowly enough that concurrent clients overlap.
      const auto delay = blob_piece_delay_;
      auto shared = std::make_shared<std::string>(std::move(content));
      res.set_content_provider(shared->size(), "application/octet-stream",
                               [shared, delay](std::size_t offset, std::size_t length, httplib::DataSink& sink) {
                                 if (delay.count() > 0) std::this_thread::sleep_for(delay);
                                 const std::size_t n = std::min<std::size_t>(length, 64 * 1024);
                                 return sink.write(shared->data() + offset, n);
                               });
    });
    server_.Get(base + "/tags/list", [this](const httplib::Request& req, httplib::Response& res) {
      std::lock_guard lock(mutex_);
      if (fail_status_) return error(res, fail_status_, "UNAVAILABLE", "upstream is failing");
      nlohmann::json tags = nlohmann::json::array();
      for (const auto& [t, d] : tags_) tags.push_back(t);
      res.set_content(nlohmann::json{{"name", std::string(req.matches[1])}, {"tags", tags}}.dump(), "application/json");
    });
  }
  ~fake_upstream() { stop(); }

  void start() {
    port_ = port_ == 0 ? server_.bind_to_any_port("127.0.0.1") : (server_.bind_to_port("127.0.0.1", port_) ? port_ : -1);
    REQUIRE(port_ > 0);
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    while (!server_.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  void stop() {
    server_.stop();
    if (thread_.joinable()) thread_.join();
  }
  int port() const { return port_; }
  std::string authority() const { return "127.0.0.1:" + std::to_string(port_); }
  const std::string& repo() const { return repo_; }

  // Adds a blob; returns its digest.
  std::string add_blob(const std::string& content) {
    const auto d = oci::digest_of(content).str();
    std::lock_guard lock(mutex_);
    blobs_[d] = content;
    return d;
  }
  // Serves `content` as the blob `digest`, whatever it hashes to (a broken upstream).
  void add_blob_as(const std::string& digest, const std::string& content) {
    std::lock_guard lock(mutex_);
    blobs_[digest] = content;
  }
  // Adds a manifest and points `tag` at it (when given); returns its digest.
  std::string add_manifest(const std::string& body, const std::string& media_type, const std::string& tag = {}) {
    const auto d = oci::digest_of(body).str();
    std::lock_guard lock(mutex_);
    manifests_[d] = {media_type, body};
    if (!tag.empty()) tags_[tag] = d;
    return d;
  }
  void remove_tag(const std::string& tag) {
    std::lock_guard lock(mutex_);
    tags_.erase(tag);
  }
  // Answer every request with this status (0: serve normally).
  void fail_with(int status) {
    std::lock_guard lock(mutex_);
    fail_status_ = status;
  }
  void set_blob_piece_delay(std::chrono::microseconds d) { blob_piece_delay_ = d; }
  // Manifest and blob requests are taken, then answered only after `d`: a stalled upstream.
  void set_stall(std::chrono::milliseconds d) { stall_ = d; }

  int count(const std::string& method_and_path) const {
    std::lock_guard lock(mutex_);
    const auto it = requests_.find(method_and_path);
    return it == requests_.end() ? 0 : it->second;
  }
  int count_method(const std::string& method) const {
    std::lock_guard lock(mutex_);
    int n = 0;
    for (const auto& [k, v] : requests_) {
      if (k.rfind(method + " ", 0) == 0) n += v;
    }
    return n;
  }

 private:
  static void error(httplib::Response& res, int status, const std::string& code, const std::string& message) {
    res.status = status;
    res.set_content(nlohmann::json{{"errors", {{{"code", code}, {"message", message}, {"detail", nullptr}}}}}.dump(),
                    "application/json");
  }

  std::string repo_;
  httplib::Server server_;
  std::thread thread_;
  int port_ = 0;
  mutable std::mutex mutex_;
  std::map<std::string, std::pair<std::string, std::string>> manifests_;  // digest -> type, body
  std::map<std::string, std::string> tags_;
  std::map<std::string, std::string> blobs_;
  std::map<std::string, int> requests_;
  int fail_status_ = 0;
  std::chrono::microseconds blob_piece_delay_{0};
  std::atomic<std::chrono::milliseconds> stall_{std::chrono::milliseconds(0)};
};

// A request as the host hands it to a plugin.
struct test_request {
  std::string method = "GET";
  std::string path;
  std::string query;
  std::vector<std::pair<std::string, std::string>> headers;
  std::uint32_t access = REGISTRYD_ACCESS_PULL | REGISTRYD_ACCESS_PUSH | REGISTRYD_ACCESS_DELETE;
  std::string user = "tester";

  // Valid while this object lives and is not changed.
  const registryd_request* raw() {
    raw_headers_.clear();
    for (const auto& [n, v] : headers) raw_headers_.push_back({sdk::to_abi(n), sdk::to_abi(v)});
    raw_ = registryd_request{};
    raw_.struct_size = sizeof raw_;
    raw_.method = sdk::to_abi(method);
    raw_.path = sdk::to_abi(path);
    raw_.query = sdk::to_abi(query);
    raw_.headers = raw_headers_.data();
    raw_.header_count = raw_headers_.size();
    raw_.remote_addr = sdk::to_abi("127.0.0.1");
    raw_.user = sdk::to_abi(user);
    raw_.access = access;
    raw_.body = nullptr;
    return &raw_;
  }

 private:
  std::vector<registryd_header> raw_headers_;
  registryd_request raw_{};
};

// An answer as the host would send it: status, headers and the whole body, read from bytes,
// a stream (to its end, as the host pulls it) or a file range.
struct test_response {
  int status = 200;
  std::multimap<std::string, std::string> headers;
  std::string content_type;
  std::string body;
  enum class kind { none, bytes, stream, file } body_kind = kind::none;
  std::int64_t declared_length = -1;
  bool stream_failed = false;  // the stream ended with an error (the host closes the connection)

  std::string header(const std::string& name) const {
    const auto it = headers.find(name);
    return it == headers.end() ? std::string() : it->second;
  }
  nlohmann::json json() const { return nlohmann::json::parse(body, nullptr, false); }
  std::string error_code() const {
    const auto j = json();
    if (!j.is_object() || !j.contains("errors")) return {};
    return j["errors"][0].value("code", "");
  }
  std::string error_message() const {
    const auto j = json();
    if (!j.is_object() || !j.contains("errors")) return {};
    return j["errors"][0].value("message", "");
  }

  registryd_response_writer writer() {
    registryd_response_writer w{};
    w.struct_size = sizeof w;
    w.ctx = this;
    w.set_status = [](void* c, int s) {
      static_cast<test_response*>(c)->status = s;
      return 0;
    };
    w.add_header = [](void* c, registryd_str n, registryd_str v) {
      static_cast<test_response*>(c)->headers.emplace(std::string(n.data, n.size), std::string(v.data, v.size));
      return 0;
    };
    w.send_bytes = [](void* c, registryd_str ct, registryd_str b) {
      auto* self = static_cast<test_response*>(c);
      self->content_type.assign(ct.data, ct.size);
      self->body.assign(b.data, b.size);
      self->body_kind = kind::bytes;
      return 0;
    };
    w.send_stream = [](void* c, registryd_str ct, int64_t length, registryd_stream s) {
      auto* self = static_cast<test_response*>(c);
      self->content_type.assign(ct.data, ct.size);
      self->body_kind = kind::stream;
      self->declared_length = length;
      self->stream_ = s;
      return 0;
    };
    w.send_file = [](void* c, registryd_str ct, int fd, uint64_t offset, uint64_t length) {
      auto* self = static_cast<test_response*>(c);
      self->content_type.assign(ct.data, ct.size);
      self->body_kind = kind::file;
      self->declared_length = static_cast<std::int64_t>(length);
      std::string buf(length, '\0');
      std::size_t got = 0;
      while (got < length) {
        const auto n = ::pread(fd, buf.data() + got, length - got, static_cast<off_t>(offset + got));
        if (n <= 0) break;
        got += static_cast<std::size_t>(n);
      }
      buf.resize(got);
      self->body = std::move(buf);
      ::close(fd);
      return 0;
    };
    return w;
  }

  // Pulls a stream body to its end (after handle() returned, as the host does).
  void finish() {
    if (body_kind != kind::stream || stream_.read == nullptr) return;
    char buf[64 * 1024];
    for (;;) {
      const auto n = stream_.read(stream_.ctx, buf, sizeof buf);
      if (n < 0) {
        stream_failed = true;
        break;
      }
      if (n == 0) break;
      body.append(buf, static_cast<std::size_t>(n));
      if (declared_length >= 0 && body.size() >= static_cast<std::size_t>(declared_length)) break;
    }
    stream_.close(stream_.ctx);
    stream_ = {};
  }
  ~test_response() {
    if (stream_.close != nullptr) stream_.close(stream_.ctx);
  }

 private:
  registryd_stream stream_{};
};

// Hands `req` to `plugin` and finishes the answer.
template <typename Plugin>
test_response call(Plugin& plugin, test_request req) {
  test_response res;
  const auto w = res.writer();
  sdk::response r(&w);
  plugin.handle(sdk::request(req.raw()), r);
  res.finish();
  return res;
}

inline test_response get(sdk::mode_plugin& plugin, const std::string& path,
                         std::vector<std::pair<std::string, std::string>> headers = {}) {
  test_request req;
  req.path = path;
  req.headers = std::move(headers);
  return call(plugin, std::move(req));
}

inline test_response head(sdk::mode_plugin& plugin, const std::string& path) {
  test_request req;
  req.method = "HEAD";
  req.path = path;
  return call(plugin, std::move(req));
}

}  // namespace registryd::test
