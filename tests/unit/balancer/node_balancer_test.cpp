// The node balancer on loopback, with real HTTP servers as masters: least connections, a dead
// or hung master never seen by clients, health checks taking masters out and back, the master
// list changed under load, drains, half-closes, idle connections, whole transfers.
#include <registryd/balancer/node_balancer.hpp>

#include <catch2/catch.hpp>
#include <httplib.h>
#include <spdlog/sinks/null_sink.h>
#include <spdlog/spdlog.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <future>
#include <set>
#include <thread>

using namespace registryd;
using namespace std::chrono_literals;

namespace {

// A master stand-in: an httplib server on 127.0.0.1 answering /readyz (200 unless told
// otherwise), /who (its name), /sleep (after 1 s) and /big (n bytes).
class master {
 public:
  explicit master(std::string name) : name_(std::move(name)) {
    server_.Get("/readyz", [this](const httplib::Request&, httplib::Response& res) {
      res.status = ready_ ? 200 : 503;
      res.set_content(ready_ ? "ok" : "not ready", "text/plain");
    });
    server_.Get("/who", [this](const httplib::Request&, httplib::Response& res) { res.set_content(name_, "text/plain"); });
    server_.Get("/sleep", [this](const httplib::Request&, httplib::Response& res) {
      std::this_thread::sleep_for(1s);
      res.set_content(name_, "text/plain");
    });
    server_.Get("/big", [](const httplib::Request& req, httplib::Response& res) {
      const std::size_t n = std::stoul(req.get_param_value("n"));
      res.set_content_provider(n, "application/octet-stream", [](std::size_t offset, std::size_t length, httplib::DataSink& sink) {
        std::string chunk(std::min<std::size_t>(length, 65536), '\0');
        for (std::size_t i = 0; i < chunk.size(); ++i) chunk[i] = static_cast<char>((offset + i) % 251);
        sink.write(chunk.data(), chunk.size());
        return true;
      });
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    // stop() before the accept loop runs would be lost (httplib): wait for it.
    while (!server_.is_running()) std::this_thread::sleep_for(1ms);
  }
  ~master() { stop(); }
  void stop() {
    server_.stop();
    if (thread_.joinable()) thread_.join();
  }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  void set_ready(bool ready) { ready_ = ready; }

 private:
  std::string name_;
  httplib::Server server_;
  int port_ = 0;
  std::atomic<bool> ready_{true};
  std::thread thread_;
};

std::shared_ptr<spdlog::logger> quiet() {
  return std::make_shared<spdlog::logger>("test", std::make_shared<spdlog::sinks::null_sink_mt>());
}

balancer::balancer_options options(std::vector<std::string> backends) {
  balancer::balancer_options o;
  o.port = 0;
  o.backends = std::move(backends);
  o.health_interval = 200ms;
  o.health_timeout = 500ms;
  return o;
}

std::string get(std::uint16_t port, const std::string& path) {
  httplib::Client c("127.0.0.1", port);
  c.set_connection_timeout(5s);
  c.set_read_timeout(10s);
  auto res = c.Get(path);
  if (!res) return "error: " + httplib::to_string(res.error());
  return res->body;
}

template <typename F>
bool eventually(F&& condition, std::chrono::milliseconds limit = 5s) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (condition()) return true;
    std::this_thread::sleep_for(20ms);
  }
  return condition();
}

const balancer::backend_status& status_of(const std::vector<balancer::backend_status>& all, const std::string& address) {
  for (const auto& s : all) {
    if (s.address == address) return s;
  }
  FAIL("no backend " << address);
  return all.front();
}

int raw_connect(std::uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  timeval tv{5, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  return fd;
}

std::string read_all(int fd) {
  std::string out;
  char buf[4096];
  for (;;) {
    const auto n = ::read(fd, buf, sizeof buf);
    if (n <= 0) break;
    out.append(buf, static_cast<std::size_t>(n));
  }
  return out;
}

}  // namespace

TEST_CASE("the balancer spreads connections by least connections", "[balancer]") {
  master a("a"), b("b");
  balancer::node_balancer lb(options({a.address(), b.address()}), std::make_shared<prometheus::Registry>(), quiet());
  REQUIRE(lb.start());
  std::vector<std::future<std::string>> answers;
  for (int i = 0; i < 6; ++i) answers.push_back(std::async(std::launch::async, [&] { return get(lb.port(), "/sleep"); }));
  REQUIRE(eventually([&] { return lb.active_connections() == 6; }));
  const auto during = lb.backends();
  CHECK(status_of(during, a.address()).active == 3);
  CHECK(status_of(during, b.address()).active == 3);
  int from_a = 0;
  for (auto& f : answers) from_a += f.get() == "a" ? 1 : 0;
  CHECK(from_a == 3);
  REQUIRE(eventually([&] { return lb.active_connections() == 0; }));
  CHECK(status_of(lb.backends(), a.address()).total == 3);
}

TEST_CASE("a master that refuses connections is never seen by a client", "[balancer]") {
  master a("a"), b("b");
  auto o = options({a.address(), b.address()});
  o.health_interval = 60s;  // after the first checks, only failed connects can take b out
  balancer::node_balancer lb(o, std::make_shared<prometheus::Registry>(), quiet());
  REQUIRE(lb.start());
  std::set<std::string> seen;
  for (int i = 0; i < 4; ++i) seen.insert(get(lb.port(), "/who"));
  CHECK(seen == std::set<std::string>{"a", "b"});
  b.stop();  // nothing listens on its port now
  for (int i = 0; i < 10; ++i) CHECK(get(lb.port(), "/who") == "a");
  const auto all = lb.backends();
  const auto& d = status_of(all, b.address());
  CHECK_FALSE(d.healthy);
  CHECK(d.connect_failures == 1);  // out after the first: no client tried it again
  CHECK_THAT(d.last_failure, Catch::Contains("connect"));
}

TEST_CASE("a hung connect is given up after the connect timeout and retried elsewhere", "[balancer]") {
  master a("a");
  // A listener whose backlog is full: the kernel answers nothing more, the connect hangs.
  const int listener = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  REQUIRE(::listen(listener, 0) == 0);
  socklen_t len = sizeof addr;
  ::getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len);
  const std::uint16_t hung_port = ntohs(addr.sin_port);
  std::vector<int> fillers;
  for (int i = 0; i < 8; ++i) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    sockaddr_in to = addr;
    ::connect(fd, reinterpret_cast<sockaddr*>(&to), sizeof to);
    fillers.push_back(fd);
  }
  std::this_thread::sleep_for(100ms);

  auto o = options({"127.0.0.1:" + std::to_string(hung_port), a.address()});
  o.connect_timeout = 300ms;
  o.health_interval = 60s;
  balancer::node_balancer lb(o, std::make_shared<prometheus::Registry>(), quiet());
  REQUIRE(lb.start());
  // The first connection may pick the hung master: it still gets "a", after at most one timeout.
  for (int i = 0; i < 3; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    CHECK(get(lb.port(), "/who") == "a");
    CHECK(std::chrono::steady_clock::now() - t0 < 2s);
  }
  lb.stop(0ms);
  for (int fd : fillers) ::close(fd);
  ::close(listener);
}

TEST_CASE("health checks take a master out of rotation and put it back", "[balancer]") {
  master a("a"), b("b");
  balancer::node_balancer lb(options({a.address(), b.address()}), std::make_shared<prometheus::Registry>(), quiet());
  REQUIRE(lb.start());
  b.set_ready(false);
  const auto t0 = std::chrono::steady_clock::now();
  REQUIRE(eventually([&] { return !status_of(lb.backends(), b.address()).healthy; }, 2s));
  INFO("out after " << std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count()
                    << " ms");
  CHECK_THAT(status_of(lb.backends(), b.address()).last_failure, Catch::Contains("answered 503"));
  for (int i = 0; i < 6; ++i) CHECK(get(lb.port(), "/who") == "a");
  b.set_ready(true);
  REQUIRE(eventually([&] { return status_of(lb.backends(), b.address()).healthy; }, 2s));
  std::set<std::string> seen;
  for (int i = 0; i < 6; ++i) seen.insert(get(lb.port(), "/who"));
  CHECK(seen == std::set<std::string>{"a", "b"});

  // A master that dies entirely goes out too.
  b.stop();
  REQUIRE(eventually([&] { return !status_of(lb.backends(), b.address()).healthy; }, 2s));
  for (int i = 0; i < 4; ++i) CHECK(get(lb.port(), "/who") == "a");
}

TEST_CASE("a whole transfer arrives intact, and the master list changes without cutting it", "[balancer]") {
  master a("a"), b("b");
  balancer::node_balancer lb(options({a.address()}), std::make_shared<prometheus::Registry>(), quiet());
  REQUIRE(lb.start());
  constexpr std::size_t size = 64ull << 20;
  auto big = std::async(std::launch::async, [&] {
    httplib::Client c("127.0.0.1", lb.port());
    std::size_t offset = 0;
    bool intact = true;
    auto res = c.Get("/big?n=" + std::to_string(size), [&](const char* data, std::size_t n) {
      for (std::size_t i = 0; i < n; ++i) intact &= data[i] == static_cast<char>((offset + i) % 251);
      offset += n;
      std::this_thread::sleep_for(std::chrono::microseconds(200));  // a slow reader: backpressure
      return true;
    });
    return res && intact && offset == size;
  });
  REQUIRE(eventually([&] { return lb.active_connections() == 1; }));
  lb.set_backends({b.address()});
  CHECK(get(lb.port(), "/who") == "b");
  CHECK(big.get());
  CHECK(status_of(lb.backends(), b.address()).total == 1);
  CHECK(lb.backends().size() == 1);
}

TEST_CASE("a half-close is passed on, and idle connections are closed after the idle timeout", "[balancer]") {
  // A master that reads until the client's end of stream, then answers with what it read:
  // it can only answer if the balancer passed the half-close on.
  const int listener = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  REQUIRE(::listen(listener, 8) == 0);
  socklen_t len = sizeof addr;
  ::getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len);
  std::thread reader([listener] {
    // Each connection on its own thread: the health check's (which never gets its answer)
    // must not hold up the client's.
    std::vector<std::thread> served;
    for (;;) {
      const int c = ::accept(listener, nullptr, nullptr);
      if (c < 0) break;
      served.emplace_back([c] {
        const std::string got = read_all(c);
        const std::string answer = "read " + std::to_string(got.size()) + " bytes";
        (void)!::write(c, answer.data(), answer.size());
        ::close(c);
      });
    }
    for (auto& t : served) t.join();
  });
  auto o = options({"127.0.0.1:" + std::to_string(ntohs(addr.sin_port))});
  o.idle_timeout = 500ms;
  o.health_interval = 60s;
  balancer::node_balancer lb(o, std::make_shared<prometheus::Registry>(), quiet());
  REQUIRE(lb.start());

  int fd = raw_connect(lb.port());
  const std::string request(100000, 'x');
  REQUIRE(::write(fd, request.data(), request.size()) == static_cast<ssize_t>(request.size()));
  ::shutdown(fd, SHUT_WR);
  CHECK(read_all(fd) == "read 100000 bytes");
  ::close(fd);
  ::shutdown(listener, SHUT_RDWR);
  reader.join();
  ::close(listener);

  master a("a");
  lb.set_backends({a.address()});

  fd = raw_connect(lb.port());
  const auto t0 = std::chrono::steady_clock::now();
  CHECK(read_all(fd).empty());  // closed by the balancer, not by the 5 s receive timeout
  const auto waited = std::chrono::steady_clock::now() - t0;
  CHECK(waited >= 400ms);
  CHECK(waited < 3s);
  ::close(fd);
}

TEST_CASE("stop drains: a transfer under way finishes, new connections are refused", "[balancer]") {
  master a("a");
  balancer::node_balancer lb(options({a.address()}), std::make_shared<prometheus::Registry>(), quiet());
  REQUIRE(lb.start());
  const auto port = lb.port();
  auto slow = std::async(std::launch::async, [&] { return get(port, "/sleep"); });
  REQUIRE(eventually([&] { return lb.active_connections() == 1; }));
  auto stopping = std::async(std::launch::async, [&] { lb.stop(5s); });
  std::this_thread::sleep_for(200ms);
  CHECK_THAT(get(port, "/who"), Catch::StartsWith("error"));
  CHECK(slow.get() == "a");
  stopping.get();
}

TEST_CASE("masters that are not IP:port are refused by name, and a taken address is an error", "[balancer]") {
  master a("a");
  balancer::node_balancer lb(options({"master-1:5001", "127.0.0.1:0", a.address()}),
                             std::make_shared<prometheus::Registry>(), quiet());
  REQUIRE(lb.start());
  CHECK(lb.backends().size() == 1);
  auto o = options({a.address()});
  o.port = lb.port();
  balancer::node_balancer second(o, std::make_shared<prometheus::Registry>(), quiet());
  auto st = second.start();
  REQUIRE_FALSE(st);
  CHECK_THAT(st.error_message(), Catch::Contains("cannot listen"));
}
