// The front door on plain HTTP over loopback, with the echo test plugin behind it, driven by
// raw sockets: what reaches the wire is what is checked (request desync, short streams,
// refused paths). Runs under ASan and UBSan in CI.
#include <registryd/frontdoor/front_door.hpp>
#include <registryd/plugin_host/plugin_instance.hpp>
#include <registryd/plugin_host/plugin_library.hpp>

#include <catch2/catch.hpp>
#include <spdlog/sinks/ostream_sink.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <sstream>
#include <string>

namespace {

using registryd::frontdoor::front_door;

int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

// A client connection that sends requests one exchange at a time. httplib does not serve
// pipelined requests (it waits for the socket to become readable again), so each request is
// sent after the previous answer has arrived.
class connection {
 public:
  explicit connection(int port) : fd_(::socket(AF_INET, SOCK_STREAM, 0)) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<std::uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    timeval tv{0, 700 * 1000};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  }
  ~connection() { ::close(fd_); }
  connection(const connection&) = delete;
  connection& operator=(const connection&) = delete;

  // Sends `request` and returns what arrives until the server closes or stays silent 0.7 s.
  std::string roundtrip(const std::string& request) {
    std::size_t sent = 0;
    while (sent < request.size()) {
      const ssize_t n = ::send(fd_, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
      if (n <= 0) break;  // the server may answer and close before reading everything
      sent += static_cast<std::size_t>(n);
    }
    std::string reply;
    char buf[65536];
    for (;;) {
      const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) break;
      reply.append(buf, static_cast<std::size_t>(n));
    }
    return reply;
  }

 private:
  int fd_;
};

std::string roundtrip(int port, const std::string& request) {
  connection c(port);
  return c.roundtrip(request);
}

std::size_t count(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (auto pos = text.find(what); pos != std::string::npos; pos = text.find(what, pos + 1)) ++n;
  return n;
}

// A request whose body is itself a complete request: if the server ever parses the body as
// the next request, a second answer (to /healthz) shows up.
std::string smuggling(const std::string& method, const std::string& path,
                      const std::string& extra_headers = "") {
  const std::string inner = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
  return method + " " + path + " HTTP/1.1\r\nHost: x\r\n" + extra_headers +
         "Content-Length: " + std::to_string(inner.size()) + "\r\n\r\n" + inner;
}

struct running_front_door {
  std::ostringstream log;
  std::shared_ptr<front_door> door;
  int port = free_port();

  explicit running_front_door(bool with_auth = false) {
    auto logger = std::make_shared<spdlog::logger>(
        "test", std::make_shared<spdlog::sinks::ostream_sink_mt>(log));
    registryd::frontdoor::options opts;
    opts.port = port;
    opts.tls = false;
    opts.threads = 4;
    door = std::make_shared<front_door>(opts, logger, std::make_shared<prometheus::Registry>());
    auto lib = registryd::plugin_host::plugin_library::load(
        std::string(REGISTRYD_FIXTURE_PLUGIN_DIR) + "/echo.so");
    REQUIRE(lib.ok());
    auto inst = registryd::plugin_host::plugin_instance::create(*lib, "{}", logger);
    REQUIRE(inst.ok());
    REQUIRE((*inst)->start().ok());
    door->set_mode(*inst);
    if (with_auth) {
      door->set_authenticator(
          [](std::string_view) -> std::optional<registryd::auth::principal> { return std::nullopt; },
          "Basic realm=\"test\"");
    }
    REQUIRE(door->start().ok());
  }
  ~running_front_door() { door->stop(); }
};

}  // namespace

TEST_CASE("a body the plugin does not read is drained, not parsed as the next request",
          "[frontdoor]") {
  running_front_door fd;
  connection c(fd.port);
  const auto first = c.roundtrip(smuggling("PUT", "/v2/x/ignore-body"));
  CHECK(count(first, "HTTP/1.1 ") == 1);  // nothing answers the body
  CHECK(count(first, "HTTP/1.1 202") == 1);
  const auto second = c.roundtrip("GET /v2/x/manifests/a HTTP/1.1\r\nHost: x\r\n\r\n");
  CHECK(count(second, "HTTP/1.1 ") == 1);
  CHECK(count(second, "/v2/x/manifests/a") == 1);  // the answer is to this request
}

TEST_CASE("a body refused with 401 before the plugin is drained too", "[frontdoor]") {
  running_front_door fd(true);
  connection c(fd.port);
  const auto first = c.roundtrip(smuggling("PUT", "/v2/x/blobs/uploads/1"));
  CHECK(count(first, "HTTP/1.1 ") == 1);
  CHECK(count(first, "HTTP/1.1 401") == 1);
  const auto second = c.roundtrip("GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n");
  CHECK(count(second, "HTTP/1.1 ") == 1);
  CHECK(count(second, "ok: Echo") == 1);
}

TEST_CASE("a body sent to an unknown path is drained", "[frontdoor]") {
  running_front_door fd;
  connection c(fd.port);
  const auto first = c.roundtrip(smuggling("POST", "/not/the/api"));
  CHECK(count(first, "HTTP/1.1 ") == 1);
  CHECK(count(first, "HTTP/1.1 404") == 1);
  const auto second = c.roundtrip("GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n");
  CHECK(count(second, "ok: Echo") == 1);
}

TEST_CASE("a plugin that stops reading early is told so and the rest is drained",
          "[frontdoor]") {
  running_front_door fd;
  connection c(fd.port);
  const std::string big(3 * 1024 * 1024, 'x');
  const auto first = c.roundtrip("PUT /v2/x/partial-body HTTP/1.1\r\nHost: x\r\nContent-Length: " +
                                 std::to_string(big.size()) + "\r\n\r\n" + big);
  CHECK(count(first, "HTTP/1.1 ") == 1);
  CHECK(count(first, "stopped\n") == 1);
  const auto second = c.roundtrip("GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n");
  CHECK(count(second, "HTTP/1.1 ") == 1);
  CHECK(count(second, "ok: Echo") == 1);
}

TEST_CASE("a stream that ends before its promised length closes the connection, and the host "
          "goes on serving",
          "[frontdoor]") {
  running_front_door fd;
  const auto reply = roundtrip(fd.port, "GET /v2/x/short HTTP/1.1\r\nHost: x\r\n\r\n");
  CHECK(count(reply, "Content-Length: 100") == 1);
  const auto body = reply.substr(reply.find("\r\n\r\n") + 4);
  CHECK(body.size() == 10);
  const auto after = roundtrip(fd.port, "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  CHECK(count(after, "HTTP/1.1 200") == 1);
}

TEST_CASE("a GET with a large body is refused before it is read", "[frontdoor]") {
  running_front_door fd;
  const auto reply = roundtrip(
      fd.port, "GET /v2/x/manifests/a HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000000\r\n\r\n");
  CHECK(count(reply, "HTTP/1.1 413") == 1);
  CHECK(count(reply, "SIZE_INVALID") == 1);
}

TEST_CASE("paths with dot segments, empty segments or an encoded slash are refused",
          "[frontdoor]") {
  running_front_door fd;
  for (const std::string path :
       {"/v2/a/%2e%2e/b/manifests/x", "/v2/a/../b/manifests/x", "/v2/a//b/manifests/x",
        "/v2/a%2Fb/manifests/x", "/v2/./a/manifests/x", "/v2/a/%09/manifests/x"}) {
    const auto reply = roundtrip(fd.port, "GET " + path + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    INFO(path << "\n" << reply);
    CHECK(count(reply, "HTTP/1.1 400") == 1);
    CHECK(count(reply, "NAME_INVALID") == 1);
  }
  const auto ok = roundtrip(fd.port, "GET /v2/a/b-c.d_e/manifests/x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  CHECK(count(ok, "HTTP/1.1 200") == 1);
}

TEST_CASE("a request path cannot forge a log line", "[frontdoor]") {
  running_front_door fd;
  roundtrip(fd.port,
           "GET /v2/x%0a2026-01-01%20info%20forged%ff HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  const std::string log = fd.log.str();
  CHECK(log.find("\n2026-01-01 info forged") == std::string::npos);
  CHECK(log.find("%0a2026-01-01%20info%20forged%ff") != std::string::npos);
}
