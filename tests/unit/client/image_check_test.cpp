#include <registryd/oci/image_check.hpp>

#include <catch2/catch.hpp>
#include <httplib.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>

using namespace registryd::oci;
using namespace std::chrono_literals;

namespace {

const repository_location target{"registry.example.com:5000", "deckhouse/ee"};
const std::string d1 = "sha256:" + std::string(64, 'a');

}  // namespace

TEST_CASE("list lines relative to imagesRepo and full references are read", "[image_check]") {
  const auto list = parse_image_list(
      "# required images\n"
      "\n"
      "@" + d1 + "\n"
      ":v1.60.1\n"
      "install:v1\n"
      "modules/ingress@" + d1 + "\n"
      "  registry.example.com:5000/deckhouse/ee/release-channel:stable  \r\n"
      "REGISTRY.example.com:5000/other/repo:tag@" + d1,
      target);
  CHECK(list.errors.empty());
  REQUIRE(list.items.size() == 6);
  CHECK(list.items[0].repository == "deckhouse/ee");
  CHECK(list.items[0].reference == d1);
  CHECK(list.items[1].repository == "deckhouse/ee");
  CHECK(list.items[1].reference == "v1.60.1");
  CHECK(list.items[2].repository == "deckhouse/ee/install");
  CHECK(list.items[2].reference == "v1");
  CHECK(list.items[3].repository == "deckhouse/ee/modules/ingress");
  CHECK(list.items[3].reference == d1);
  CHECK(list.items[4].repository == "deckhouse/ee/release-channel");
  CHECK(list.items[4].reference == "stable");
  CHECK(list.items[4].text == "registry.example.com:5000/deckhouse/ee/release-channel:stable");
  CHECK(list.items[5].repository == "other/repo");
  CHECK(list.items[5].reference == d1);  // a digest wins over the tag
}

TEST_CASE("list lines that name no tag, another registry or bad names are errors with line numbers",
          "[image_check]") {
  const auto list = parse_image_list(
      "install\n"
      "other.example.com/x:1\n"
      "Bad/Name:1\n"
      "x@sha256:short\n"
      "x:\n"
      "ok:1\n",
      target);
  REQUIRE(list.errors.size() == 5);
  CHECK(list.errors[0].line == 1);
  CHECK_THAT(list.errors[0].message, Catch::Contains("no tag and no digest"));
  CHECK(list.errors[1].line == 2);
  CHECK_THAT(list.errors[1].message, Catch::Contains("names registry other.example.com, not the target"));
  CHECK_THAT(list.errors[2].message, Catch::Contains("not a repository name"));
  CHECK_THAT(list.errors[3].message, Catch::Contains("not a digest"));
  CHECK_THAT(list.errors[4].message, Catch::Contains("not a tag"));
  REQUIRE(list.items.size() == 1);
  CHECK(list.items[0].repository == "deckhouse/ee/ok");
}

TEST_CASE("an imagesRepo without a path takes names as they are", "[image_check]") {
  const auto list = parse_image_list("a/b:1\n", repository_location{"localhost:5000", ""});
  REQUIRE(list.items.size() == 1);
  CHECK(list.items[0].repository == "a/b");
  CHECK(parse_image_list(":1", repository_location{"localhost:5000", ""}).errors.size() == 1);
}

namespace {

class server {
 public:
  server() {
    svr_.new_task_queue = [] { return new httplib::ThreadPool(8); };
  }
  ~server() {
    svr_.stop();
    if (t_.joinable()) t_.join();
  }
  httplib::Server* operator->() { return &svr_; }
  void start() {
    port_ = svr_.bind_to_any_port("127.0.0.1");
    t_ = std::thread([this] { svr_.listen_after_bind(); });
    while (!svr_.is_running()) std::this_thread::sleep_for(1ms);
  }
  client::client_options options() const {
    client::client_options o;
    o.registry = "127.0.0.1:" + std::to_string(port_);
    o.url_scheme = client::scheme::http;
    return o;
  }

 private:
  httplib::Server svr_;
  std::thread t_;
  int port_ = 0;
};

std::vector<image_check_item> items_named(std::initializer_list<const char*> tags) {
  std::vector<image_check_item> out;
  for (const char* t : tags) out.push_back({std::string("repo:") + t, "repo", t});
  return out;
}

}  // namespace

TEST_CASE("every image present: all N items are checked, 3 at a time", "[image_check]") {
  server s;
  std::atomic<int> in_flight{0}, peak{0}, requests{0};
  std::string method;
  std::mutex m;
  s->Get(R"(/v2/repo/manifests/(.*))", [&](const httplib::Request& req, httplib::Response& res) {
    {
      std::lock_guard lock(m);
      method = req.method;
    }
    ++requests;
    const int now = ++in_flight;
    int p = peak.load();
    while (now > p && !peak.compare_exchange_weak(p, now)) {
    }
    std::this_thread::sleep_for(100ms);
    --in_flight;
    res.set_header("Docker-Content-Digest", "sha256:" + std::string(64, 'b'));
    res.set_content("{}", "application/vnd.oci.image.manifest.v1+json");
  });
  s.start();
  const auto report = check_images(s.options(), items_named({"1", "2", "3", "4", "5", "6", "7"}));
  CHECK(report.ok());
  CHECK(report.checked == 7);
  CHECK(report.message() == report.registry + ": all 7 items are checked");
  CHECK(peak == 3);
  CHECK(requests == 7);
  CHECK(method == "HEAD");
}

TEST_CASE("missing images are named in list order, transient failures are retried", "[image_check]") {
  server s;
  std::atomic<int> flaky_calls{0};
  s->Get(R"(/v2/repo/manifests/(.*))", [&](const httplib::Request& req, httplib::Response& res) {
    const std::string tag = req.matches[1];
    if (tag == "flaky" && ++flaky_calls < 3) {
      res.status = 503;
      return;
    }
    if (tag.rfind("missing", 0) == 0) {
      res.status = 404;
      return;
    }
    res.set_header("Docker-Content-Digest", "sha256:" + std::string(64, 'b'));
    res.set_content("{}", "application/vnd.oci.image.manifest.v1+json");
  });
  s.start();
  image_check_options o;
  o.backoff = 10ms;
  const auto report = check_images(s.options(), items_named({"ok", "missing-a", "flaky", "missing-b"}), o);
  CHECK_FALSE(report.ok());
  CHECK(report.checked == 4);
  CHECK(report.failed == 2);
  CHECK(flaky_calls == 3);
  REQUIRE(report.failures.size() == 2);
  CHECK(report.failures[0].item == "repo:missing-a");
  CHECK(report.failures[0].reason == "404 MANIFEST_UNKNOWN: manifest unknown to " + report.registry);
  CHECK(report.failures[1].item == "repo:missing-b");
  CHECK_THAT(report.message(), Catch::StartsWith(report.registry + ": 2 of 4 items failed the check:\n  repo:missing-a: 404"));
}

TEST_CASE("checking stops after the fifth failure and says how far it got", "[image_check]") {
  server s;
  s->Get(R"(/v2/repo/manifests/(.*))", [&](const httplib::Request&, httplib::Response& res) { res.status = 404; });
  s.start();
  std::vector<image_check_item> items;
  for (int i = 0; i < 40; ++i) items.push_back({"repo:t" + std::to_string(i), "repo", "t" + std::to_string(i)});
  const auto report = check_images(s.options(), items);
  CHECK(report.failed >= 5);
  CHECK(report.failed <= 7);  // those in flight when the fifth failed still count
  CHECK(report.stopped_early);
  CHECK(report.failures.size() == 5);
  CHECK(report.failures[0].item == "repo:t0");
  CHECK_THAT(report.message(), Catch::Contains("items failed the check (stopped after"));
}

TEST_CASE("an unreachable registry fails every attempt quickly and says so", "[image_check]") {
  int port = 0;
  {
    server s;
    s.start();
    port = std::stoi(s.options().registry.substr(10));
  }
  client::client_options o;
  o.registry = "127.0.0.1:" + std::to_string(port);
  o.url_scheme = client::scheme::http;
  image_check_options c;
  c.backoff = 10ms;
  const auto start = std::chrono::steady_clock::now();
  const auto report = check_images(o, items_named({"a"}), c);
  CHECK(std::chrono::steady_clock::now() - start < 2s);
  REQUIRE(report.failures.size() == 1);
  CHECK_THAT(report.failures[0].reason, Catch::StartsWith("connect: cannot connect to 127.0.0.1:") &&
                                            Catch::EndsWith("(after 3 attempts)"));
}
