// Local mode's registry API served over plain HTTP on loopback, in-process (cpp-httplib in
// front of tests/support/plugin_call.hpp): a registry that is real in every detail of the
// distribution API, for the code that talks to registries. Counts requests and can fail some.
#pragma once

#include "local_test_support.hpp"

#include <registryd/oci/client/registry_client.hpp>

#include <httplib.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace registryd::test {

class registry_server {
 public:
  registry_server() {
    server_.set_keep_alive_timeout(1);
    auto serve = [this](const httplib::Request& req, httplib::Response& res) { answer(req, res); };
    server_.Get(".*", serve);
    server_.Post(".*", serve);
    server_.Put(".*", serve);
    server_.Patch(".*", serve);
    server_.Delete(".*", serve);
    port_ = server_.bind_to_any_port("127.0.0.1");
    REQUIRE(port_ > 0);
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    while (!server_.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ~registry_server() {
    server_.stop();
    thread_.join();
  }
  registry_server(const registry_server&) = delete;
  registry_server& operator=(const registry_server&) = delete;

  // The registry itself, for setting content up and looking at it without HTTP.
  local_fixture& local() { return local_; }

  oci::client::client_options options() const {
    oci::client::client_options o;
    o.registry = "127.0.0.1:" + std::to_string(port_);
    o.url_scheme = oci::client::scheme::http;
    o.connect_timeout = std::chrono::milliseconds(2000);
    o.read_timeout = std::chrono::milliseconds(5000);
    return o;
  }

  // The next `n` requests (of `method` only, when given; after letting `after` of them
  // through) are answered `status` with an OCI error body.
  void fail_next(int n, int status = 503, std::string method = {}, int after = 0) {
    std::lock_guard lock(mutex_);
    fail_method_ = std::move(method);
    fail_left_ = n;
    fail_after_ = after;
    fail_status_ = status;
  }
  // "METHOD path" of every request so far, with its Range header when it had one.
  std::vector<std::string> requests() const {
    std::lock_guard lock(mutex_);
    return requests_;
  }
  std::size_t count(const std::string& method, const std::string& path_part) const {
    std::size_t n = 0;
    for (const auto& r : requests()) n += r.rfind(method + " ", 0) == 0 && r.find(path_part) != std::string::npos;
    return n;
  }

 private:
  void answer(const httplib::Request& req, httplib::Response& res) {
    bool fail = false;
    {
      std::lock_guard lock(mutex_);
      requests_.push_back(req.method + " " + req.path + (req.has_header("Range") ? " Range: " + req.get_header_value("Range") : ""));
      if ((fail_method_.empty() || fail_method_ == req.method) && fail_left_ > 0) {
        if (fail_after_ > 0) {
          --fail_after_;
        } else {
          --fail_left_;
          fail = true;
        }
      }
    }
    if (fail) {
      res.status = fail_status_;
      res.set_content(R"({"errors":[{"code":"UNAVAILABLE","message":"failing on purpose"}]})", "application/json");
      return;
    }
    call_options o;
    for (const auto& [name, value] : req.headers) o.headers.emplace_back(name, value);
    o.body = req.body;
    const auto q = req.target.find('?');
    const std::string target = req.path + (q == std::string::npos ? std::string() : req.target.substr(q));
    const reply r = [&] {
      std::lock_guard lock(mutex_);  // one request at a time: the fixture's helpers are not shared
      return local_(req.method, target, o);
    }();
    res.status = r.status;
    // The registry answers Range itself (206 with the slice); httplib would slice the slice
    // again from the request's parsed ranges, so they are dropped once the answer is made.
    const_cast<httplib::Request&>(req).ranges.clear();
    std::string length;
    for (const auto& [name, value] : r.headers) {
      if (name == "content-length") {
        length = value;
      } else if (name != "content-type") {
        res.set_header(name.c_str(), value);
      }
    }
    // HEAD: httplib sends the length of the body it is given and drops the body itself.
    if (req.method == "HEAD" && !length.empty()) {
      res.set_content(std::string(std::stoull(length), '\0'), r.content_type.c_str());
    } else {
      res.set_content(r.body, r.content_type.empty() ? "application/octet-stream" : r.content_type.c_str());
    }
  }

  local_fixture local_;
  httplib::Server server_;
  std::thread thread_;
  int port_ = 0;
  int fail_left_ = 0;
  int fail_after_ = 0;
  int fail_status_ = 503;
  std::string fail_method_;
  mutable std::mutex mutex_;
  std::vector<std::string> requests_;
};

}  // namespace registryd::test
