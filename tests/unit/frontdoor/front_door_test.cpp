// The front door on plain HTTP over loopback, with the echo test plugin behind it, driven by
// raw sockets: what reaches the wire is what is checked (request desync, short streams,
// refused paths). Runs under ASan and UBSan in CI.
#include <registryd/auth/basic_credentials.hpp>
#include <registryd/frontdoor/front_door.hpp>
#include <registryd/pki/pki_directory.hpp>
#include <registryd/pki/token_signer.hpp>
#include <registryd/plugin_host/plugin_instance.hpp>
#include <registryd/plugin_host/plugin_library.hpp>

#include <test_support.hpp>

#include "metric_sample.hpp"
#include "tcp_counters.hpp"
#include "wire_text.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/sinks/ostream_sink.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <filesystem>
#include <memory>
#include <optional>
#include <thread>
#include <vector>

#include <sstream>
#include <set>
#include <string>
#include <string_view>

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

// A client connection that sends a request (or several at once) and reads what comes back.
class connection {
 public:
  // From `from` (a loopback address such as 127.0.0.2: another client address to the server)
  // when given.
  explicit connection(int port, const char* from = nullptr) : fd_(::socket(AF_INET, SOCK_STREAM, 0)) {
    if (from != nullptr) {
      sockaddr_in local{};
      local.sin_family = AF_INET;
      REQUIRE(::inet_pton(AF_INET, from, &local.sin_addr) == 1);
      REQUIRE(::bind(fd_, reinterpret_cast<sockaddr*>(&local), sizeof local) == 0);
    }
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
      if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) closed_ = true;
      if (n <= 0) break;
      reply.append(buf, static_cast<std::size_t>(n));
    }
    return reply;
  }

  // Reads until at least `n` bytes have arrived (or the server closes or stays silent 0.7 s).
  std::string read_at_least(std::size_t n) {
    std::string got;
    char buf[4096];
    while (got.size() < n) {
      const ssize_t r = ::recv(fd_, buf, sizeof buf, 0);
      if (r <= 0) break;
      got.append(buf, static_cast<std::size_t>(r));
    }
    return got;
  }

  // Waits up to `limit` for the first bytes of an answer, and reads what has come by then.
  std::string first_reply(std::chrono::milliseconds limit) {
    const auto until = std::chrono::steady_clock::now() + limit;
    std::string got;
    while (got.empty() && std::chrono::steady_clock::now() < until) got = read_at_least(12);
    return got;
  }

  // Sends `bytes` without reading.
  void send_only(const std::string& bytes) { ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL); }
  int fd() const noexcept { return fd_; }
  // Whether the server closed the connection (seen by the last roundtrip).
  bool closed() const { return closed_; }

 private:
  int fd_;
  bool closed_ = false;
};

std::string roundtrip(int port, const std::string& request) {
  connection c(port);
  return c.roundtrip(request);
}

using frontdoor_test::count;
using frontdoor_test::is_pattern;

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
  std::shared_ptr<prometheus::Registry> metrics = std::make_shared<prometheus::Registry>();
  int port = free_port();

  explicit running_front_door(bool with_auth = false, registryd::frontdoor::transport_options transport = {}) {
    auto logger = std::make_shared<spdlog::logger>(
        "test", std::make_shared<spdlog::sinks::ostream_sink_mt>(log));
    registryd::frontdoor::options opts;
    opts.port = port;
    opts.tls = false;
    opts.transport = transport;
    opts.transport.worker_threads = 4;
    door = std::make_shared<front_door>(opts, logger, metrics);
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

  // The value of an unlabelled gauge, or -1 when there is none of that name.
  double gauge(const std::string& name) const { return frontdoor_test::gauge_value(*metrics, name); }
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

TEST_CASE("a method the registry API does not have is a 501, and a 405 says what is allowed, on the "
          "host's endpoints too",
          "[frontdoor]") {
  running_front_door fd;  // authentication off: the anonymous caller may read and write
  for (const std::string path : {"/v2/a/manifests/x", "/v2/a/blobs/uploads/", "/v2/"}) {
    const auto reply = roundtrip(fd.port, "BREW " + path + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    INFO(path << "\n" << reply);
    CHECK(count(reply, "HTTP/1.1 501") == 1);
    CHECK(count(reply, "BREW is not a method of the registry API") == 1);
    CHECK(count(reply, "X-Echo") == 0);  // never handed to the plugin
  }
  // The same without credentials where authentication is on: 501, not 401.
  running_front_door with_auth(true);
  for (const std::string method : {"BREW", "OPTIONS", "get"}) {
    const auto reply =
        roundtrip(with_auth.port, method + " /v2/a/manifests/x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    INFO(method << "\n" << reply);
    CHECK(count(reply, "HTTP/1.1 501") == 1);
    CHECK(count(reply, "WWW-Authenticate") == 0);
  }
  const auto put = roundtrip(fd.port, "PUT /v2/ HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
  CHECK(count(put, "HTTP/1.1 405") == 1);
  CHECK(count(put, "Allow: GET, HEAD") == 1);
  // The host's own endpoints exist whatever the method: 405 with what they answer, not 404.
  for (const auto& [path, allowed] : std::vector<std::pair<std::string, std::string>>{
           {"/healthz", "GET, HEAD"}, {"/readyz", "GET, HEAD"}, {"/metrics", "GET, HEAD"},
           {"/auth/token", "GET, HEAD, POST"}}) {
    const auto reply = roundtrip(fd.port, "DELETE " + path + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    INFO(path << "\n" << reply);
    CHECK(count(reply, "HTTP/1.1 405") == 1);
    CHECK(count(reply, "Allow: " + allowed + "\r\n") == 1);
  }
  CHECK(count(roundtrip(fd.port, "DELETE /elsewhere HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
              "HTTP/1.1 404") == 1);
}

TEST_CASE("invented methods share one metric label, so a client cannot grow /metrics", "[frontdoor]") {
  running_front_door fd;
  for (int i = 0; i < 50; ++i) {
    roundtrip(fd.port, "BREW" + std::to_string(i) + " /v2/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  }
  roundtrip(fd.port, "GET /v2/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  const auto families = fd.metrics->Collect();
  std::set<std::string> methods;
  for (const auto& family : families) {
    if (family.name != "registryd_http_requests_total") continue;
    for (const auto& m : family.metric) {
      for (const auto& l : m.label) {
        if (l.name == "method") methods.insert(l.value);
      }
    }
  }
  CHECK(methods == std::set<std::string>{"GET", "other"});
  const auto* other = frontdoor_test::metric_sample(families, "registryd_http_requests_total", "method", "other");
  REQUIRE(other != nullptr);
  CHECK(other->counter.value == 50);
}

TEST_CASE("a request path cannot forge a log line", "[frontdoor]") {
  running_front_door fd;
  roundtrip(fd.port,
           "GET /v2/x%0a2026-01-01%20info%20forged%ff HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  const std::string log = fd.log.str();
  CHECK(log.find("\n2026-01-01 info forged") == std::string::npos);
  CHECK(log.find("%0a2026-01-01%20info%20forged%ff") != std::string::npos);
}

// --- token auth -----------------------------------------------------------------------------

namespace {

namespace auth = registryd::auth;
namespace pki = registryd::pki;

// A front door with two users (reader: read-only, writer: read-write) and token auth, its
// PKI made by the real code in a scratch directory.
struct token_front_door {
  registryd::test::scratch_dir dir;
  running_front_door fd{false};
  std::shared_ptr<const auth::token_authority> authority;

  token_front_door() {
    auto names = pki::serving_names("127.0.0.1", {});
    REQUIRE(names.ok());
    pki::pki_options options;
    options.dir = dir.path();
    REQUIRE(pki::ensure(options, *names, pki::clock::now()).ok());
    REQUIRE(pki::ensure_token_signer(dir.path(), pki::clock::now()).ok());
    auto loaded = auth::token_authority::load(dir.path());
    REQUIRE(loaded.ok());
    authority = *loaded;
    fd.door->set_authenticator(
        [](std::string_view header) -> std::optional<auth::principal> {
          const auto c = auth::parse_basic_authorization(header);
          if (c && c->username == "reader" && c->password == "rpass") {
            return auth::principal{"reader", auth::access_read_only};
          }
          if (c && c->username == "writer" && c->password == "wpass") {
            return auth::principal{"writer", auth::access_read_write};
          }
          return std::nullopt;
        },
        std::string(auth::basic_challenge));
    fd.door->set_token_authority(authority);
  }

  std::string get(const std::string& target, const std::string& authorization = "",
                  const std::string& method = "GET") {
    std::string request = method + " " + target + " HTTP/1.1\r\nHost: reg.example:5001\r\n";
    if (!authorization.empty()) request += "Authorization: " + authorization + "\r\n";
    if (method == "PUT" || method == "POST") request += "Content-Length: 0\r\n";
    return roundtrip(fd.port, request + "Connection: close\r\n\r\n");
  }

  // A token from /auth/token for these basic credentials and query.
  std::string token(const std::string& user, const std::string& password, const std::string& query) {
    const auto reply = get("/auth/token?" + query, auth::basic_authorization(user, password));
    INFO(reply);
    REQUIRE(count(reply, "HTTP/1.1 200") == 1);
    return nlohmann::json::parse(body_of(reply)).at("token").get<std::string>();
  }

  static std::string body_of(const std::string& reply) { return reply.substr(reply.find("\r\n\r\n") + 4); }
};

std::string header_of(const std::string& reply, const std::string& name) {
  const auto at = reply.find("\r\n" + name + ": ");
  if (at == std::string::npos) return {};
  const auto start = at + name.size() + 4;
  return reply.substr(start, reply.find("\r\n", start) - start);
}

}  // namespace

TEST_CASE("with token auth, a request without credentials is challenged with Bearer, the realm "
          "of its Host and the scope it needs",
          "[frontdoor][token]") {
  token_front_door t;
  const auto reply = t.get("/v2/system/deckhouse/manifests/latest");
  CHECK(count(reply, "HTTP/1.1 401") == 1);
  CHECK(header_of(reply, "WWW-Authenticate") ==
        R"(Bearer realm="http://reg.example:5001/auth/token",service="registryd",scope="repository:system/deckhouse:pull")");
  CHECK(count(reply, R"("code":"UNAUTHORIZED")") == 1);
  const auto push = t.get("/v2/a/blobs/uploads/", "", "POST");
  CHECK(header_of(push, "WWW-Authenticate") ==
        R"(Bearer realm="http://reg.example:5001/auth/token",service="registryd",scope="repository:a:pull,push")");
  const auto base = t.get("/v2/");
  CHECK(header_of(base, "WWW-Authenticate") ==
        R"(Bearer realm="http://reg.example:5001/auth/token",service="registryd")");
  // An absolute-form target's authority stands for the Host (RFC 9112 3.2.2).
  const auto absolute = t.get("http://balancer.example:5001/v2/");
  CHECK(header_of(absolute, "WWW-Authenticate") ==
        R"(Bearer realm="http://balancer.example:5001/auth/token",service="registryd")");
}

TEST_CASE("the token realm refuses anonymous requests and wrong passwords", "[frontdoor][token]") {
  token_front_door t;
  const auto anonymous = t.get("/auth/token?service=registryd&scope=repository:a:pull");
  CHECK(count(anonymous, "HTTP/1.1 401") == 1);
  CHECK(header_of(anonymous, "WWW-Authenticate") == R"(Basic realm="registryd")");
  const auto wrong = t.get("/auth/token?scope=repository:a:pull", auth::basic_authorization("reader", "nope"));
  CHECK(count(wrong, "HTTP/1.1 401") == 1);
  const auto other_service =
      t.get("/auth/token?service=elsewhere", auth::basic_authorization("reader", "rpass"));
  CHECK(count(other_service, "HTTP/1.1 400") == 1);
  const auto other_account =
      t.get("/auth/token?account=writer", auth::basic_authorization("reader", "rpass"));
  CHECK(count(other_account, "HTTP/1.1 400") == 1);
  // Repeated, every value counts, not only the first; an empty one counts as absent.
  const auto reader = auth::basic_authorization("reader", "rpass");
  CHECK(count(t.get("/auth/token?service=registryd&service=elsewhere", reader), "HTTP/1.1 400") == 1);
  CHECK(count(t.get("/auth/token?account=reader&account=writer", reader), "HTTP/1.1 400") == 1);
  CHECK(count(t.get("/auth/token?service=&account=&scope=repository:a:pull", reader), "HTTP/1.1 200") == 1);
  CHECK(count(t.get("/auth/token?service=registryd&service=registryd&account=reader", reader), "HTTP/1.1 200") == 1);
}

TEST_CASE("a read-only user's token grants pull only, and is refused for push with "
          "insufficient_scope",
          "[frontdoor][token]") {
  token_front_door t;
  const auto reply = t.get("/auth/token?service=registryd&scope=repository:a:pull,push&account=reader",
                           auth::basic_authorization("reader", "rpass"));
  REQUIRE(count(reply, "HTTP/1.1 200") == 1);
  CHECK(header_of(reply, "Cache-Control") == "no-store");
  const auto body = nlohmann::json::parse(token_front_door::body_of(reply));
  CHECK(body.at("expires_in") == 900);
  CHECK(body.at("access_token") == body.at("token"));
  CHECK(body.at("issued_at").get<std::string>().size() == 20);  // 2024-01-01T00:00:00Z
  const std::string token = body.at("token");
  auto claims = t.authority->verify(token, std::chrono::system_clock::now());
  REQUIRE(claims.ok());
  CHECK(claims->subject == "reader");
  CHECK(claims->access == std::vector<auth::resource_actions>{{"repository", "a", {"pull"}}});

  const auto pulled = t.get("/v2/a/manifests/x", "Bearer " + token);
  CHECK(count(pulled, "HTTP/1.1 200") == 1);
  const auto echo = nlohmann::json::parse(token_front_door::body_of(pulled));
  CHECK(echo.at("user") == "reader");
  CHECK(echo.at("access") == REGISTRYD_ACCESS_PULL);

  const auto pushed = t.get("/v2/a/manifests/x", "Bearer " + token, "PUT");
  CHECK(count(pushed, "HTTP/1.1 401") == 1);
  CHECK(header_of(pushed, "WWW-Authenticate") ==
        R"(Bearer realm="http://reg.example:5001/auth/token",service="registryd",scope="repository:a:pull,push",error="insufficient_scope")");
  const auto elsewhere = t.get("/v2/b/manifests/x", "Bearer " + token);
  CHECK(count(elsewhere, "HTTP/1.1 401") == 1);
  CHECK(count(elsewhere, "insufficient_scope") == 1);
  CHECK(count(t.get("/v2/", "Bearer " + token), "HTTP/1.1 200") == 1);
}

TEST_CASE("a writer's token carries its grant to the plugin", "[frontdoor][token]") {
  token_front_door t;
  const auto token = t.token("writer", "wpass", "scope=repository:a:pull,push");
  const auto pulled = t.get("/v2/a/tags/list", "Bearer " + token);
  REQUIRE(count(pulled, "HTTP/1.1 200") == 1);
  CHECK(nlohmann::json::parse(token_front_door::body_of(pulled)).at("access") ==
        (REGISTRYD_ACCESS_PULL | REGISTRYD_ACCESS_PUSH));
  CHECK(count(t.get("/v2/a/blobs/uploads/", "Bearer " + token, "POST"), "HTTP/1.1 201") == 1);
  // Delete was not asked for, so it is not granted.
  CHECK(count(t.get("/v2/a/manifests/sha256:1", "Bearer " + token, "DELETE"), "insufficient_scope") == 1);
  // A mount needs pull on its source as well.
  const auto mount = t.get("/v2/a/blobs/uploads/?mount=sha256:1&from=b", "Bearer " + token, "POST");
  CHECK(header_of(mount, "WWW-Authenticate").find(R"(scope="repository:a:pull,push repository:b:pull")") !=
        std::string::npos);
}

TEST_CASE("a tampered or foreign token is refused with invalid_token", "[frontdoor][token]") {
  token_front_door t;
  std::string token = t.token("writer", "wpass", "scope=repository:a:pull");
  token[token.size() - 3] = token[token.size() - 3] == 'A' ? 'B' : 'A';
  const auto reply = t.get("/v2/a/manifests/x", "Bearer " + token);
  CHECK(count(reply, "HTTP/1.1 401") == 1);
  CHECK(header_of(reply, "WWW-Authenticate").ends_with(R"(,error="invalid_token")"));
  CHECK(count(t.fd.log.str(), "refused a token: the signature does not verify") == 1);
  CHECK(count(t.get("/v2/a/manifests/x", "Bearer not.a.token"), "HTTP/1.1 401") == 1);
}

TEST_CASE("basic credentials keep working beside tokens", "[frontdoor][token]") {
  token_front_door t;
  const auto reply = t.get("/v2/a/manifests/x", auth::basic_authorization("writer", "wpass"));
  REQUIRE(count(reply, "HTTP/1.1 200") == 1);
  CHECK(nlohmann::json::parse(token_front_door::body_of(reply)).at("access") ==
        (REGISTRYD_ACCESS_PULL | REGISTRYD_ACCESS_PUSH | REGISTRYD_ACCESS_DELETE));
  CHECK(count(t.get("/v2/a/manifests/x", auth::basic_authorization("reader", "rpass"), "PUT"),
              "HTTP/1.1 403") == 1);
}

TEST_CASE("the catalog needs catalog access, by basic credentials and by token",
          "[frontdoor][token]") {
  token_front_door t;
  CHECK(count(t.get("/v2/_catalog", auth::basic_authorization("reader", "rpass")), "HTTP/1.1 403") == 1);
  CHECK(count(t.get("/v2/_catalog", auth::basic_authorization("writer", "wpass")), "HTTP/1.1 200") == 1);
  const auto reader_token = t.token("reader", "rpass", "scope=registry:catalog:*");
  const auto refused = t.get("/v2/_catalog", "Bearer " + reader_token);
  CHECK(header_of(refused, "WWW-Authenticate").ends_with(
      R"(scope="registry:catalog:*",error="insufficient_scope")"));
  const auto writer_token = t.token("writer", "wpass", "scope=registry:catalog:*");
  CHECK(count(t.get("/v2/_catalog", "Bearer " + writer_token), "HTTP/1.1 200") == 1);
}

TEST_CASE("the OAuth2 password grant issues the same tokens", "[frontdoor][token]") {
  token_front_door t;
  auto post = [&](const std::string& form) {
    return roundtrip(t.fd.port, "POST /auth/token HTTP/1.1\r\nHost: x\r\nContent-Type: "
                                "application/x-www-form-urlencoded\r\nContent-Length: " +
                                    std::to_string(form.size()) + "\r\nConnection: close\r\n\r\n" + form);
  };
  const auto ok = post("grant_type=password&username=reader&password=rpass&service=registryd"
                       "&client_id=containerd-client&scope=repository%3Aa%3Apull%2Cpush+repository%3Ab%3Apull");
  REQUIRE(count(ok, "HTTP/1.1 200") == 1);
  const auto body = nlohmann::json::parse(token_front_door::body_of(ok));
  CHECK(body.at("scope") == "repository:a:pull repository:b:pull");
  CHECK(t.authority->verify(body.at("access_token").get<std::string>(), std::chrono::system_clock::now()).ok());
  CHECK(count(post("grant_type=password&username=reader&password=bad"), "HTTP/1.1 401") == 1);
  CHECK(count(post("grant_type=refresh_token&refresh_token=x"), "unsupported_grant_type") == 1);
}

TEST_CASE("without a token authority the challenge stays Basic and the realm is off",
          "[frontdoor][token]") {
  token_front_door t;
  t.fd.door->set_token_authority(nullptr);
  CHECK(header_of(t.get("/v2/a/manifests/x"), "WWW-Authenticate") == R"(Basic realm="registryd")");
  CHECK(count(t.get("/auth/token", auth::basic_authorization("reader", "rpass")), "HTTP/1.1 404") == 1);
}

// --- the transport: HTTP/1.1 framing, limits and timeouts --------------------------------------

namespace {

using namespace std::chrono_literals;
using registryd::frontdoor::transport_options;

transport_options quick_timeouts() {
  transport_options t;
  t.handshake_timeout = 600ms;
  t.head_timeout = 600ms;
  t.idle_timeout = 600ms;
  t.body_timeout = 600ms;
  return t;
}

// What a request whose framing can be read two ways gets: one answer (400, or 501 for a coding
// the server does not know), then a close; the smuggled request after it is never answered.
void expect_refused_and_closed(int port, const std::string& request, const std::string& status) {
  connection c(port);
  const auto reply = c.roundtrip(request);
  INFO(request << "\n---\n" << reply);
  CHECK(count(reply, "HTTP/1.1 ") == 1);
  CHECK(count(reply, "HTTP/1.1 " + status) == 1);
  CHECK(count(reply, "Connection: close") == 1);
  CHECK(count(reply, "ok: Echo") == 0);
  CHECK(c.closed());
}

}  // namespace

TEST_CASE("a mode being replaced whose stop waits does not hold up requests", "[frontdoor]") {
  running_front_door fd;
  auto logger = std::make_shared<spdlog::logger>("slow", std::make_shared<spdlog::sinks::ostream_sink_mt>(fd.log));
  auto lib = registryd::plugin_host::plugin_library::load(std::string(REGISTRYD_FIXTURE_PLUGIN_DIR) + "/echo.so");
  REQUIRE(lib.ok());
  auto slow = registryd::plugin_host::plugin_instance::create(*lib, R"({"stop_delay_ms": 3000})", logger);
  auto next = registryd::plugin_host::plugin_instance::create(*lib, "{}", logger);
  REQUIRE(slow.ok());
  REQUIRE(next.ok());
  REQUIRE((*slow)->start().ok());
  REQUIRE((*next)->start().ok());
  fd.door->set_mode(std::move(*slow));  // the door holds its only reference
  // Replacing it stops it (3 s) in set_mode: a request meanwhile is answered at once.
  std::thread replace([&] { fd.door->set_mode(std::move(*next)); });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  const auto started = std::chrono::steady_clock::now();
  const auto reply = roundtrip(fd.port, "GET /v2/x/manifests/a HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  const auto waited = std::chrono::steady_clock::now() - started;
  replace.join();
  CHECK(count(reply, "HTTP/1.1 200") == 1);
  CHECK(waited < std::chrono::milliseconds(1000));
}

TEST_CASE("ambiguous or malformed framing is a 400 (or 501) and a close, never a second request",
          "[frontdoor][transport]") {
  running_front_door fd;
  const std::string smuggled = "GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n";
  const std::string n = std::to_string(smuggled.size());
  auto put = [&](const std::string& framing, const std::string& body) {
    return "PUT /v2/x/blobs/uploads/1 HTTP/1.1\r\nHost: x\r\n" + framing + "\r\n" + body;
  };
  for (const std::string& framing : std::vector<std::string>{
           "Content-Length: " + n + "\r\nContent-Length: 0\r\n",       // two different lengths
        "Content-Length: " + n + "\r\nContent-Length: " + n + "\r\n",  // two equal ones
        "Content-Length: 0, " + n + "\r\n",                            // a list
        "Content-Length: +" + n + "\r\n", std::string("Content-Length: 0x2a\r\n"),
        std::string("Content-Length: -5\r\n"),
        "Content-Length : " + n + "\r\n",                              // space before the colon
        "Content-Length: " + n + "\r\nTransfer-Encoding: chunked\r\n",  // both, either order
        "Transfer-Encoding: chunked\r\nContent-Length: " + n + "\r\n",
        // Obsolete line folding, which Beast would read as "Content-Length: <n>" or as chunked
        // while a proxy in front may not: refused wherever it appears, as nginx does.
        "Content-Length:\r\n " + n + "\r\n", "Transfer-Encoding:\r\n\tchunked\r\n",
        "X-Folded: a\r\n b\r\nContent-Length: " + n + "\r\n"}) {
    expect_refused_and_closed(fd.port, put(framing, smuggled), "400");
  }
  for (const std::string& framing :
       {std::string("Transfer-Encoding: gzip\r\n"), std::string("Transfer-Encoding: chunked, gzip\r\n"),
        std::string("Transfer-Encoding: xchunked\r\n"), std::string("Transfer-Encoding: identity\r\n")}) {
    expect_refused_and_closed(fd.port, put(framing, smuggled), "501");
  }
  // Bad chunk sizes.
  for (const std::string& chunk : {std::string("zz\r\n"), std::string("-5\r\n"), std::string("5 5\r\n")}) {
    expect_refused_and_closed(fd.port, put("Transfer-Encoding: chunked\r\n", chunk + smuggled), "400");
  }
  // No Host, two Hosts, bare LF line ends, Transfer-Encoding in HTTP/1.0.
  expect_refused_and_closed(fd.port, "GET /v2/x/manifests/a HTTP/1.1\r\n\r\n" + smuggled, "400");
  expect_refused_and_closed(fd.port, "GET /v2/x/manifests/a HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n" + smuggled, "400");
  // Two credentials: a proxy in front might read the other one.
  expect_refused_and_closed(fd.port,
                            "GET /v2/x/manifests/a HTTP/1.1\r\nHost: a\r\nAuthorization: Basic YTpi\r\n"
                            "Authorization: Basic Yzpk\r\n\r\n" + smuggled,
                            "400");
  expect_refused_and_closed(fd.port, "GET /v2/x/manifests/a HTTP/1.1\nHost: a\n\n" + smuggled, "400");
  expect_refused_and_closed(fd.port, "PUT /v2/x/a HTTP/1.0\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + smuggled,
                            "400");
  // Nothing of a refused request is logged as a request: no header line, no credentials.
  expect_refused_and_closed(fd.port,
                            "GET /v2/x/manifests/a HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n"
                            "Authorization: Basic c2VjcmV0OnNlY3JldA==\r\n\r\n",
                            "400");
  CHECK(fd.log.str().find("c2VjcmV0") == std::string::npos);
  CHECK(fd.log.str().find("/readyz") == std::string::npos);
}

TEST_CASE("request targets: the absolute form is served as its path, asterisk and authority forms are "
          "501, a Host that is not a host and port is a 400, a version past 1.1 a 505",
          "[frontdoor][transport]") {
  running_front_door fd;
  // RFC 9112 3.2.2: a server must accept the absolute form, whatever the scheme's case.
  for (const std::string target : {"http://reg.example:5001/v2/x/manifests/one?n=1", "HTTPS://[::1]:5001/v2/x/manifests/one?n=1"}) {
    connection c(fd.port);
    const auto reply = c.roundtrip("GET " + target + " HTTP/1.1\r\nHost: other\r\n\r\n");
    INFO(target << "\n" << reply);
    CHECK(count(reply, "HTTP/1.1 200") == 1);
    CHECK(count(reply, R"("path":"/v2/x/manifests/one")") == 1);
    CHECK(count(reply, R"("query":"n=1")") == 1);
    CHECK_FALSE(c.closed());
  }
  CHECK(count(roundtrip(fd.port, "GET http://reg.example HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
              "HTTP/1.1 404") == 1);  // path "/"
  for (const std::string target : {"http:///v2/", "http://user@reg.example/v2/", "http://reg example/v2/", "ftp://reg.example/v2/",
                                   "v2/x/manifests/one", "*"}) {
    expect_refused_and_closed(fd.port, "GET " + target + " HTTP/1.1\r\nHost: x\r\n\r\n", "400");
  }
  expect_refused_and_closed(fd.port, "OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n", "501");
  expect_refused_and_closed(fd.port, "CONNECT reg.example:443 HTTP/1.1\r\nHost: reg.example:443\r\n\r\n", "501");
  // RFC 9112 3.2: a Host that is not a host and port is a 400; an empty one is allowed.
  for (const std::string host : {"a/b", "user@a", "a b", "a:port", "[::1", "[zz]:1", "a%zz", ":5001", "a:65536"}) {
    expect_refused_and_closed(fd.port, "GET /v2/ HTTP/1.1\r\nHost: " + host + "\r\n\r\n", "400");
  }
  for (const std::string host : {"", "reg.example:5001", "[::1]:5001", "10.0.0.1", "a%41b"}) {
    INFO(host);
    CHECK(count(roundtrip(fd.port, "GET /v2/ HTTP/1.1\r\nHost: " + host + "\r\nConnection: close\r\n\r\n"),
                "HTTP/1.1 200") == 1);
  }
  // RFC 9112 2.2: an empty line before the request line is ignored.
  CHECK(count(roundtrip(fd.port, "\r\nGET /v2/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"), "HTTP/1.1 200") == 1);
  {
    connection kept(fd.port);
    const auto two = kept.roundtrip("GET /v2/ HTTP/1.1\r\nHost: x\r\n\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    CHECK(count(two, "HTTP/1.1 200") == 2);
  }
  // A well-formed version other than 1.0 and 1.1 is a 505; a malformed one a 400.
  expect_refused_and_closed(fd.port, "GET /v2/ HTTP/2.0\r\nHost: x\r\n\r\n", "505");
  expect_refused_and_closed(fd.port, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "505");
  expect_refused_and_closed(fd.port, "GET /v2/ HTTX/1.1\r\nHost: x\r\n\r\n", "400");
}

TEST_CASE("empty lines between requests neither restart the wait for a request nor count past two",
          "[frontdoor][transport]") {
  auto t = quick_timeouts();
  t.head_timeout = 1000ms;
  t.idle_timeout = 1000ms;
  running_front_door fd(false, t);
  // How long after `from` the server closed `c` (at most 3 s of waiting).
  const auto closed_after = [](connection& c, std::chrono::steady_clock::time_point from) {
    while (!c.closed() && std::chrono::steady_clock::now() - from < 3s) c.roundtrip("");
    return std::chrono::steady_clock::now() - from;
  };
  {
    // Before any request: an empty line now and then does not hold the connection past the head
    // timeout, counted from accept.
    const auto accepted = std::chrono::steady_clock::now();
    connection c(fd.port);
    c.send_only("\r\n");
    std::this_thread::sleep_for(600ms);
    c.send_only("\r\n");
    const auto took = closed_after(c, accepted);
    CHECK(c.closed());
    CHECK(took < 1400ms);
  }
  {
    // After an answer: the idle timeout counts from the answer, whatever empty lines come.
    connection c(fd.port);
    CHECK(count(c.roundtrip("GET /v2/ HTTP/1.1\r\nHost: x\r\n\r\n"), "HTTP/1.1 200") == 1);
    const auto answered = std::chrono::steady_clock::now() - 700ms;  // roundtrip waited 0.7 s
    c.send_only("\r\n");
    const auto took = closed_after(c, answered);
    CHECK(c.closed());
    CHECK(took < 1400ms);
  }
  {
    // Two empty lines at most, in one write or in several: the third is a 400 and a close.
    connection c(fd.port);
    for (int i = 0; i < 2; ++i) {
      c.send_only("\r\n");
      std::this_thread::sleep_for(50ms);
    }
    const auto reply = c.roundtrip("\r\nGET /v2/ HTTP/1.1\r\nHost: x\r\n\r\n");
    INFO(reply);
    CHECK(count(reply, "HTTP/1.1 400") == 1);
    CHECK(count(reply, "HTTP/1.1 200") == 0);
    CHECK(c.closed());
  }
}

TEST_CASE("pipelined requests are answered in order, at once", "[frontdoor][transport]") {
  running_front_door fd;
  connection c(fd.port);
  const auto started = std::chrono::steady_clock::now();
  const auto reply = c.roundtrip(
      "GET /v2/x/manifests/one HTTP/1.1\r\nHost: x\r\n\r\n"
      "PUT /v2/x/blobs/uploads/1 HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
      "HEAD /v2/x/manifests/two HTTP/1.1\r\nHost: x\r\n\r\n"
      "GET /v2/x/manifests/three HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  CHECK(std::chrono::steady_clock::now() - started < 650ms);  // closed after the last, no wait
  CHECK(count(reply, "HTTP/1.1 ") == 4);
  const auto one = reply.find("/v2/x/manifests/one");
  const auto put = reply.find("X-Received-Bytes: 5");
  const auto three = reply.find("/v2/x/manifests/three");
  CHECK(one < put);
  CHECK(put < three);
  CHECK(count(reply, "/v2/x/manifests/two") == 0);  // HEAD: headers only
  CHECK(c.closed());
}

TEST_CASE("chunked request bodies and Expect: 100-continue reach the plugin", "[frontdoor][transport]") {
  running_front_door fd;
  connection c(fd.port);
  const auto chunked = c.roundtrip(
      "PATCH /v2/x/blobs/uploads/1 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
      "5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nTrailer: x\r\n\r\n");
  CHECK(count(chunked, "X-Received-Bytes: 11") == 1);
  CHECK_FALSE(c.closed());
  // Past the 64 KiB read before a worker is taken, the rest comes through the pipe.
  std::string large = "PATCH /v2/x/blobs/uploads/1 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
  for (int i = 0; i < 25; ++i) large += "1000\r\n" + std::string(4096, 'c') + "\r\n";  // 100 KiB
  CHECK(count(c.roundtrip(large + "0\r\n\r\n"), "X-Received-Bytes: 102400") == 1);
  // With no budget for bodies read ahead, the handler reads them all.
  transport_options none;
  none.read_ahead_budget = 0;
  running_front_door unbuffered(false, none);
  CHECK(count(roundtrip(unbuffered.port, "PATCH /v2/x/blobs/uploads/1 HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
                                         "Connection: close\r\n\r\nhello"),
              "X-Received-Bytes: 5") == 1);
  // The client waits for 100 Continue before its body, as curl does.
  connection e(fd.port);
  const auto interim = e.roundtrip(
      "PUT /v2/x/blobs/uploads/1 HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n");
  CHECK(count(interim, "HTTP/1.1 100 Continue") == 1);
  const auto final_answer = e.roundtrip("body");
  CHECK(count(final_answer, "X-Received-Bytes: 4") == 1);
}

TEST_CASE("a request whose client left before a worker took it is not run", "[frontdoor][transport]") {
  running_front_door fd;  // 4 worker threads
  const std::string slow = "GET /v2/x/sleep?ms=1500 HTTP/1.1\r\nHost: x\r\n\r\n";
  std::vector<std::unique_ptr<connection>> busy;
  for (int i = 0; i < 4; ++i) {  // every worker held 1.5 s
    busy.push_back(std::make_unique<connection>(fd.port));
    busy.back()->send_only(slow);
  }
  std::this_thread::sleep_for(200ms);
  for (int i = 0; i < 8; ++i) {  // queued behind them, then gone (FIN)
    connection gone(fd.port);
    gone.send_only(slow);
  }
  const auto started = std::chrono::steady_clock::now();
  connection live(fd.port);
  live.send_only("GET /v2/x/manifests/a HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  const std::string reply = live.first_reply(6s);
  const auto waited = std::chrono::steady_clock::now() - started;
  CHECK(count(reply, "HTTP/1.1 200") == 1);
  // Behind the first four only: the eight that left would have held the workers 3 s more.
  CHECK(waited < 2500ms);
  // Long enough for any of the eight to have run: none did, and each connection was closed.
  std::this_thread::sleep_for(2s);
  CHECK(frontdoor_test::counter_value(*fd.metrics, "registryd_http_requests_total", "code", "200") == 5);
  CHECK(frontdoor_test::counter_value(*fd.metrics, "registryd_http_connections_closed_total", "reason", "client_left") == 8);
  for (auto& c : busy) CHECK(count(c->roundtrip(""), "HTTP/1.1 200") == 1);
}

TEST_CASE("bodies read ahead are charged for the bytes that came, not for the length declared",
          "[frontdoor][transport]") {
  auto t = quick_timeouts();
  t.body_timeout = 2s;
  t.read_ahead_budget = 64 * 1024;  // one declared 64 KiB body, as it was charged before
  running_front_door fd(false, t);    // 4 worker threads
  // Eight clients declare 64 KiB and send a byte: each holds 4 KiB of the budget, no worker.
  std::vector<std::unique_ptr<connection>> stalled;
  for (int i = 0; i < 8; ++i) {
    stalled.push_back(std::make_unique<connection>(fd.port));
    stalled.back()->send_only("PATCH /v2/x/blobs/uploads/1 HTTP/1.1\r\nHost: x\r\nContent-Length: 65536\r\n\r\nb");
  }
  std::this_thread::sleep_for(300ms);
  CHECK(fd.gauge("registryd_http_body_read_ahead_bytes") == 8 * 4096);
  CHECK(fd.gauge("registryd_http_requests_in_flight") == 0);
  const auto started = std::chrono::steady_clock::now();
  CHECK(count(roundtrip(fd.port, "GET /v2/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"), "HTTP/1.1 200") == 1);
  CHECK(std::chrono::steady_clock::now() - started < 500ms);
  // A body that arrives is read ahead in growing steps, and where the budget runs out the
  // handler reads the rest: every byte reaches it.
  const std::string body(60000, 'x');
  CHECK(count(roundtrip(fd.port, "PATCH /v2/x/blobs/uploads/1 HTTP/1.1\r\nHost: x\r\nContent-Length: 60000\r\n"
                                 "Connection: close\r\n\r\n" + body),
              "X-Received-Bytes: 60000") == 1);
  stalled.clear();
  std::this_thread::sleep_for(300ms);
  CHECK(fd.gauge("registryd_http_body_read_ahead_bytes") == 0);
}

TEST_CASE("an answer sent before a large body was read is followed by a clean close",
          "[frontdoor][transport]") {
  running_front_door fd(true);  // every request is refused 401 before the plugin
  connection c(fd.port);
  const auto started = std::chrono::steady_clock::now();
  const auto reply = c.roundtrip(
      "PUT /v2/x/blobs/uploads/1 HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000000\r\n\r\nsome of it");
  CHECK(count(reply, "HTTP/1.1 401") == 1);
  CHECK(count(reply, "Connection: close") == 1);
  CHECK(c.closed());
  CHECK(std::chrono::steady_clock::now() - started < 3s);
  // Expect: 100-continue and no body read: the answer, then a close (the body never comes).
  connection e(fd.port);
  const auto refused = e.roundtrip(
      "PUT /v2/x/blobs/uploads/1 HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\nExpect: 100-continue\r\n\r\n");
  CHECK(count(refused, "HTTP/1.1 100") == 0);
  CHECK(count(refused, "HTTP/1.1 401") == 1);
  CHECK(e.closed());
}

TEST_CASE("an answer to a request whose unread body stops arriving goes out within a second, then a close",
          "[frontdoor][transport]") {
  running_front_door fd(true);  // every request is refused 401 before the plugin
  connection c(fd.port);
  const auto started = std::chrono::steady_clock::now();
  // Under the drain limit, so the body would be drained to keep the connection; 10 bytes come.
  c.send_only("PUT /v2/x/blobs/uploads/1 HTTP/1.1\r\nHost: x\r\nContent-Length: 200000\r\n\r\nsome of it");
  const std::string reply = c.first_reply(5s);
  const auto took = std::chrono::steady_clock::now() - started;
  CHECK(count(reply, "HTTP/1.1 401") == 1);
  CHECK(took < 1800ms);
  CHECK(count(reply + c.roundtrip(""), "Connection: close") == 1);
  CHECK(c.closed());
}

TEST_CASE("bodies that stop arriving hold connections, not workers: others are answered at once, and "
          "each stalled request gets 408 at its body timeout",
          "[frontdoor][transport]") {
  auto t = quick_timeouts();
  t.body_timeout = 1500ms;
  running_front_door fd(false, t);  // 4 worker threads
  // Part of a small body, of a chunked one, and of a token form whose client waits for 100
  // Continue: three times as many as there are workers, then nothing more.
  const std::array<std::string, 3> partial{
      "PATCH /v2/x/blobs/uploads/1 HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\nabc",
      "PATCH /v2/x/blobs/uploads/1 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n100\r\nabc",
      "POST /auth/token HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n"
      "Content-Length: 1000\r\nExpect: 100-continue\r\n\r\n"};
  std::vector<std::unique_ptr<connection>> stalled;
  for (int i = 0; i < 12; ++i) {
    stalled.push_back(std::make_unique<connection>(fd.port));
    stalled.back()->send_only(partial[static_cast<std::size_t>(i) % partial.size()]);
  }
  std::this_thread::sleep_for(200ms);
  const auto started = std::chrono::steady_clock::now();
  const auto reply = roundtrip(fd.port, "GET /v2/x/manifests/a HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  CHECK(count(reply, "HTTP/1.1 200") == 1);
  CHECK(std::chrono::steady_clock::now() - started < 500ms);
  CHECK(fd.gauge("registryd_http_requests_in_flight") == 0);
  std::this_thread::sleep_for(1600ms);
  for (std::size_t i = 0; i < stalled.size(); ++i) {
    const auto answer = stalled[i]->roundtrip("");
    INFO(i << ": " << answer);
    CHECK(count(answer, "HTTP/1.1 408") == 1);
    CHECK(count(answer, "HTTP/1.1 100 Continue") == (i % partial.size() == 2 ? 1u : 0u));
    CHECK(stalled[i]->closed());
  }
}

TEST_CASE("a body that stops arriving while the plugin reads it gets 408 at the body timeout, not after a drain",
          "[frontdoor][transport]") {
  auto t = quick_timeouts();
  t.body_timeout = 1500ms;
  running_front_door fd(false, t);
  connection c(fd.port);
  const auto started = std::chrono::steady_clock::now();
  // Larger than what is read before a worker is taken: the plugin reads it, and it stops.
  c.send_only("PATCH /v2/x/blobs/uploads/1 HTTP/1.1\r\nHost: x\r\nContent-Length: 200000\r\n\r\n" +
              std::string(1000, 'b'));
  const std::string reply = c.first_reply(5s);
  const auto took = std::chrono::steady_clock::now() - started;
  CHECK(count(reply, "HTTP/1.1 408") == 1);
  CHECK(took >= 1400ms);
  CHECK(took < 2500ms);
  c.roundtrip("");
  CHECK(c.closed());
}

TEST_CASE("uploads that stall while others wait for a worker get 408 after the busy timeout, not the body "
          "timeout, and while nobody waits they keep their workers",
          "[frontdoor][transport]") {
  auto t = quick_timeouts();
  t.body_timeout = 30s;
  t.body_busy_timeout = 1s;
  running_front_door fd(false, t);  // 4 worker threads
  // Larger than what is read before a worker is taken: each stalls on its worker.
  const std::string stall = "PATCH /v2/x/blobs/uploads/1 HTTP/1.1\r\nHost: x\r\nContent-Length: 200000\r\n\r\n" +
                            std::string(1000, 'b');
  std::vector<std::unique_ptr<connection>> stalled;
  for (int i = 0; i < 2; ++i) {
    stalled.push_back(std::make_unique<connection>(fd.port));
    stalled.back()->send_only(stall);
  }
  std::this_thread::sleep_for(1500ms);
  CHECK(stalled[0]->read_at_least(1).empty());  // fewer than the workers: still waited for
  for (int i = 0; i < 6; ++i) {  // every worker taken, and requests waiting
    stalled.push_back(std::make_unique<connection>(fd.port));
    stalled.back()->send_only(stall);
  }
  const auto started = std::chrono::steady_clock::now();
  connection fresh(fd.port);
  fresh.send_only("GET /v2/x/manifests/a HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  const auto reply = fresh.first_reply(10s);
  CHECK(count(reply, "HTTP/1.1 200") == 1);
  CHECK(std::chrono::steady_clock::now() - started < 4s);
  // Those that made room got 408; once nobody waited, the rest kept their workers.
  std::this_thread::sleep_for(1500ms);
  std::size_t timed_out = 0;
  for (std::size_t i = 0; i < stalled.size(); ++i) {
    const auto answer = stalled[i]->read_at_least(12);
    INFO(i << ": " << answer);
    CHECK((answer.empty() || count(answer, "HTTP/1.1 408") == 1));
    timed_out += answer.empty() ? 0 : 1;
  }
  CHECK(timed_out >= 2);  // at least the two stalled longest made room
  CHECK(timed_out < stalled.size());
}

// Uploads that send a byte every 100 ms (10 bytes a second) on every worker, and more of them
// waiting; then a fresh request. Returns how long the fresh request waited for its first byte
// (none: no answer within `limit`) and how many uploads got 408.
std::pair<std::optional<std::chrono::milliseconds>, std::size_t> trickle_then_ask(std::size_t min_rate,
                                                                                   std::chrono::milliseconds limit) {
  auto t = quick_timeouts();
  t.body_timeout = 30s;
  t.body_busy_timeout = 1s;
  t.body_busy_min_rate = min_rate;
  running_front_door fd(false, t);  // 4 worker threads
  const std::string head = "PATCH /v2/x/blobs/uploads/1 HTTP/1.1\r\nHost: x\r\nContent-Length: 200000\r\n\r\n";
  std::vector<std::unique_ptr<connection>> uploads;
  for (int i = 0; i < 8; ++i) {
    uploads.push_back(std::make_unique<connection>(fd.port));
    uploads.back()->send_only(head + std::string(70000, 'b'));  // past what is read ahead
  }
  std::atomic<bool> done{false};
  std::thread trickler([&] {
    while (!done) {
      for (auto& u : uploads) u->send_only("b");
      std::this_thread::sleep_for(100ms);
    }
  });
  std::this_thread::sleep_for(300ms);
  const auto started = std::chrono::steady_clock::now();
  connection fresh(fd.port);
  fresh.send_only("GET /v2/x/manifests/a HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  const auto reply = fresh.first_reply(limit);
  const auto waited = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started);
  std::size_t timed_out = 0;  // read while the trickle goes on: a stopped one would stall
  for (auto& u : uploads) {
    const auto answer = u->read_at_least(12);
    timed_out += count(answer, "HTTP/1.1 408") == 1 ? 1 : 0;
  }
  done = true;
  trickler.join();
  INFO("waited " << waited.count() << " ms, " << timed_out << " uploads got 408");
  if (reply.empty()) return {std::nullopt, timed_out};
  CHECK(count(reply, "HTTP/1.1 200") == 1);
  return {waited, timed_out};
}

TEST_CASE("uploads trickled slower than the busy rate while others wait for a worker get 408, and "
          "with no rate, a byte at a time holds every worker",
          "[frontdoor][transport]") {
  // 10 bytes a second against 1 KiB a second: each window of 1 s fails, so the workers free up
  // within a few windows: the 4 at work, then the 4 waiting uploads that take their workers
  // (at least one of them, to make room for the fresh request, which came after them).
  // About 2.5 s on an idle machine (two windows and the 200 ms checks); 7 s leaves room for a
  // loaded one, and is still far from the 30 s body timeout.
  const auto [waited, timed_out] = trickle_then_ask(1024, 10s);
  REQUIRE(waited);
  CHECK(*waited < 7s);
  CHECK(timed_out >= 5);
  // Without the rate each byte is progress: nothing frees a worker until the body timeout.
  const auto [held, none] = trickle_then_ask(0, 7s);
  CHECK_FALSE(held);
  CHECK(none == 0);
}

TEST_CASE("a free worker goes to the client with the fewest requests at work, not to the longest queue",
          "[frontdoor][transport]") {
  auto t = quick_timeouts();
  t.body_timeout = 30s;
  t.body_busy_timeout = 0s;  // uploads that stall keep their workers
  running_front_door fd(false, t);  // 4 worker threads
  const std::string head = "PATCH /v2/x/blobs/uploads/1 HTTP/1.1\r\nHost: x\r\nContent-Length: 70001\r\n\r\n";
  // One client (127.0.0.1) takes every worker with uploads that stall one byte short, and
  // queues ten more of them.
  std::vector<std::unique_ptr<connection>> flood;
  for (int i = 0; i < 14; ++i) {
    flood.push_back(std::make_unique<connection>(fd.port));
    flood.back()->send_only(head + std::string(70000, 'b'));
    if (i == 3) std::this_thread::sleep_for(300ms);  // the first four are at work
  }
  std::this_thread::sleep_for(300ms);
  // Another client (127.0.0.2) asks after all of them.
  connection other(fd.port, "127.0.0.2");
  other.send_only("GET /v2/x/manifests/a HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  std::this_thread::sleep_for(300ms);
  CHECK(other.read_at_least(1).empty());  // no worker free yet
  // The four at work end: in arrival order the next four stalled uploads would take their
  // workers and the other client would wait for the body timeout.
  const auto started = std::chrono::steady_clock::now();
  for (int i = 0; i < 4; ++i) flood[static_cast<std::size_t>(i)]->send_only("b");
  const auto reply = other.first_reply(5s);
  CHECK(count(reply, "HTTP/1.1 200") == 1);
  CHECK(std::chrono::steady_clock::now() - started < 2s);
  for (int i = 0; i < 4; ++i) CHECK(count(flood[static_cast<std::size_t>(i)]->read_at_least(12), "HTTP/1.1 201") == 1);
}

TEST_CASE("an expectation other than 100-continue gets 417 and a close", "[frontdoor][transport]") {
  running_front_door fd;
  expect_refused_and_closed(fd.port, "GET /healthz HTTP/1.1\r\nHost: x\r\nExpect: foo\r\n\r\n", "417");
  expect_refused_and_closed(
      fd.port, "PUT /v2/x/blobs/uploads/1 HTTP/1.1\r\nHost: x\r\nExpect: 100-continue, foo\r\nContent-Length: 3\r\n\r\nabc",
      "417");
  // An empty Expect asks for nothing.
  const auto empty = roundtrip(fd.port, "GET /healthz HTTP/1.1\r\nHost: x\r\nExpect:\r\n\r\n");
  CHECK(count(empty, "HTTP/1.1 200") == 1);
  // 100-continue in a list of itself, or in any case, is served; HTTP/1.0 ignores Expect.
  const auto listed = roundtrip(fd.port,
                                "PUT /v2/x/blobs/uploads/1 HTTP/1.1\r\nHost: x\r\nExpect: 100-Continue, 100-continue\r\n"
                                "Content-Length: 3\r\n\r\nabc");
  CHECK(count(listed, "HTTP/1.1 100 Continue") == 1);
  CHECK(count(listed, "X-Received-Bytes: 3") == 1);
  const auto old = roundtrip(fd.port, "GET /healthz HTTP/1.0\r\nExpect: foo\r\n\r\n");
  CHECK(count(old, "HTTP/1.0 200") == 1);
}

TEST_CASE("Connection: close and HTTP/1.0 are honoured", "[frontdoor][transport]") {
  running_front_door fd;
  connection c(fd.port);
  const auto reply = c.roundtrip("GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  CHECK(count(reply, "Connection: close") == 1);
  CHECK(c.closed());
  connection old(fd.port);
  const auto reply10 = old.roundtrip("GET /healthz HTTP/1.0\r\n\r\n");
  CHECK(count(reply10, "HTTP/1.0 200") == 1);
  CHECK(old.closed());
  connection kept(fd.port);
  const auto reply10k = kept.roundtrip("GET /healthz HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
  CHECK(count(reply10k, "Connection: keep-alive") == 1);
  CHECK_FALSE(kept.closed());
}

TEST_CASE("request lines, header sizes and header counts past their limits get 414 and 431",
          "[frontdoor][transport]") {
  running_front_door fd;
  expect_refused_and_closed(fd.port, "GET /v2/" + std::string(9000, 'a') + " HTTP/1.1\r\nHost: x\r\n\r\n", "414");
  std::string many = "GET /healthz HTTP/1.1\r\nHost: x\r\n";
  for (int i = 0; i < 101; ++i) many += "X-" + std::to_string(i) + ": y\r\n";
  expect_refused_and_closed(fd.port, many + "\r\n", "431");
  expect_refused_and_closed(fd.port,
                            "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(70000, 'b') + "\r\n\r\n",
                            "431");
  // A flood far past the limit is cut off at the limit, not buffered.
  connection c(fd.port);
  std::string flood = "GET /healthz HTTP/1.1\r\nHost: x\r\n";
  for (int i = 0; i < 20000; ++i) flood += "X-Flood: " + std::to_string(i) + "\r\n";
  const auto reply = c.roundtrip(flood);
  CHECK(count(reply, "HTTP/1.1 431") == 1);
}

TEST_CASE("trailer fields are dropped, and more of them than a head may have get 431 and a close",
          "[frontdoor][transport]") {
  // Beast would add each to the request's fields, where a few KiB of empty fields cost MiBs.
  running_front_door fd;
  const std::string head = "PATCH /v2/x/blobs/uploads/1 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
  auto fields = [](int n) {
    std::string t;
    for (int i = 0; i < n; ++i) t += "X-T" + std::to_string(i) + ": t\r\n";
    return t;
  };
  connection c(fd.port);
  const auto taken = c.roundtrip(head + "5\r\nhello\r\n0\r\n" + fields(100) + "\r\n");  // the head limit
  CHECK(count(taken, "X-Received-Bytes: 5") == 1);
  CHECK_FALSE(c.closed());
  expect_refused_and_closed(fd.port, head + "5\r\nhello\r\n0\r\n" + fields(101) + "\r\n", "431");
  std::string empty_fields;  // 112 KiB would fit the read buffer; the count stops it first
  for (int i = 0; i < 28000; ++i) empty_fields += "X:\r\n";
  expect_refused_and_closed(fd.port, head + "0\r\n" + empty_fields + "\r\n", "431");
}

TEST_CASE("a chunk line or a trailer section past the head limit gets 431 and a close",
          "[frontdoor][transport]") {
  // Beast sets no limit on either; without the connection's own bound one client could grow
  // its buffer without end with an endless chunk extension or trailer.
  running_front_door fd;
  const std::string head = "PATCH /v2/x/blobs/uploads/1 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
  std::string trailers;
  for (int i = 0; trailers.size() < 300000; ++i) trailers += "X-T" + std::to_string(i) + ": t\r\n";
  // The plugin reads these bodies.
  expect_refused_and_closed(fd.port, head + "5;ext=" + std::string(300000, 'e') + "\r\nhello\r\n0\r\n\r\n", "431");
  expect_refused_and_closed(fd.port, head + "5\r\nhello\r\n0\r\n" + trailers + "\r\n", "431");
  // No handler reads this one: the front door drains it, under the same bound.
  expect_refused_and_closed(fd.port,
                            "POST /not/the/api HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n" +
                                trailers + "\r\n",
                            "431");
}

TEST_CASE("a head that arrives too slowly gets 408 at its deadline, however it trickles",
          "[frontdoor][transport]") {
  running_front_door fd(false, quick_timeouts());
  connection c(fd.port);
  const auto started = std::chrono::steady_clock::now();
  c.send_only("GET /healthz HTTP/1.1\r\n");
  std::string reply;
  for (int i = 0; i < 12 && reply.empty(); ++i) {
    std::this_thread::sleep_for(100ms);
    reply = c.roundtrip("X-Trickle: " + std::to_string(i) + "\r\n");  // waits up to 0.7 s
  }
  const auto took = std::chrono::steady_clock::now() - started;
  CHECK(count(reply, "HTTP/1.1 408") == 1);
  CHECK(took < 2500ms);
  CHECK(c.closed());
}

TEST_CASE("idle connections cost no thread: hundreds held, a new client answered at once, all "
          "closed at their timeouts",
          "[frontdoor][transport]") {
  auto t = quick_timeouts();
  t.head_timeout = 1500ms;
  t.idle_timeout = 1500ms;
  running_front_door fd(false, t);  // 4 worker threads
  std::vector<std::unique_ptr<connection>> idle;
  for (int i = 0; i < 200; ++i) idle.push_back(std::make_unique<connection>(fd.port));  // nothing sent
  std::vector<std::unique_ptr<connection>> kept;
  for (int i = 0; i < 100; ++i) {
    kept.push_back(std::make_unique<connection>(fd.port));
    kept.back()->send_only("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");  // then idle, kept alive
  }
  const auto started = std::chrono::steady_clock::now();
  connection fresh(fd.port);
  fresh.send_only("GET /v2/x/manifests/a HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  const auto reply = fresh.roundtrip("");
  CHECK(count(reply, "HTTP/1.1 200") == 1);
  CHECK(std::chrono::steady_clock::now() - started < 500ms);
  std::this_thread::sleep_for(2500ms);
  std::size_t closed = 0;
  for (auto& c : idle) {
    c->roundtrip("");
    closed += c->closed() ? 1 : 0;
  }
  for (auto& c : kept) {
    c->roundtrip("");
    closed += c->closed() ? 1 : 0;
  }
  CHECK(closed == 300);
}

TEST_CASE("connections past the per-client limit get 503 and a close", "[frontdoor][transport]") {
  transport_options t;
  t.max_connections_per_client = 3;
  running_front_door fd(false, t);
  connection a(fd.port), b(fd.port), c(fd.port);
  a.send_only("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
  std::this_thread::sleep_for(100ms);
  connection d(fd.port);
  const auto reply = d.roundtrip("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
  CHECK(count(reply, "HTTP/1.1 503") == 1);
  CHECK(d.closed());
  CHECK(count(a.roundtrip(""), "HTTP/1.1 200") == 1);  // the ones admitted are served
}

TEST_CASE("failed logins past the per-address budget get 429 without a password check",
          "[frontdoor][transport]") {
  transport_options t;
  t.auth_failures_per_minute = 5;
  running_front_door fd(true, t);
  std::vector<std::string> statuses;
  for (int i = 0; i < 8; ++i) {
    const auto reply = roundtrip(fd.port, "GET /v2/ HTTP/1.1\r\nHost: x\r\nAuthorization: Basic dTpw\r\nConnection: close\r\n\r\n");
    statuses.push_back(reply.substr(9, 3));
  }
  CHECK(statuses == std::vector<std::string>{"401", "401", "401", "401", "401", "429", "429", "429"});
  // Without credentials nothing is checked, so nothing is limited: the challenge still comes.
  CHECK(count(roundtrip(fd.port, "GET /v2/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"), "HTTP/1.1 401") == 1);
}

TEST_CASE("a file answer goes out whole, and HEAD states its length without a body",
          "[frontdoor][transport]") {
  running_front_door fd;
  const auto got = roundtrip(fd.port, "GET /v2/x/file HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  CHECK(count(got, "Content-Length: 3") == 1);
  CHECK(got.substr(got.find("\r\n\r\n") + 4).size() == 3);
  const auto head = roundtrip(fd.port, "HEAD /v2/x/stream?size=5000 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  CHECK(count(head, "Content-Length: 5000") == 1);
  CHECK(head.substr(head.find("\r\n\r\n") + 4).empty());
  const auto streamed = roundtrip(fd.port, "GET /v2/x/stream?size=3000000 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  CHECK(streamed.substr(streamed.find("\r\n\r\n") + 4).size() == 3000000);
}

// The server's end of a client's connection: the front door runs in this process, so it is the
// descriptor here whose peer is the client's own address. -1 until the server has accepted it.
int server_end_of(const connection& client) {
  sockaddr_in own{};
  socklen_t own_size = sizeof own;
  if (::getsockname(client.fd(), reinterpret_cast<sockaddr*>(&own), &own_size) != 0) return -1;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/proc/self/fd", ec)) {
    int fd = -1;
    try {
      fd = std::stoi(entry.path().filename().string());
    } catch (const std::exception&) {
      continue;
    }
    sockaddr_in peer{};
    socklen_t peer_size = sizeof peer;
    if (fd != client.fd() && ::getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &peer_size) == 0 &&
        peer.sin_family == AF_INET && peer.sin_port == own.sin_port && peer.sin_addr.s_addr == own.sin_addr.s_addr) {
      return fd;
    }
  }
  return -1;
}

// The TCP_NOTSENT_LOWAT the server set on its end of a new connection; -1 if it was not found.
int server_notsent_lowat(int port) {
  connection client(port);
  int server_end = -1;
  for (int i = 0; i < 250 && server_end < 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    server_end = server_end_of(client);
  }
  int lowat = -1;
  socklen_t size = sizeof lowat;
  if (server_end < 0 || ::getsockopt(server_end, IPPROTO_TCP, TCP_NOTSENT_LOWAT, &lowat, &size) != 0) return -1;
  return lowat;
}

TEST_CASE("a connection's socket holds at most http_tcp_notsent_lowat_bytes unsent, and 0 leaves the "
          "kernel's default",
          "[frontdoor][transport]") {
  running_front_door bounded;
  CHECK(server_notsent_lowat(bounded.port) == 64 * 1024);
  registryd::frontdoor::transport_options t;
  t.tcp_notsent_lowat = 16384;
  running_front_door small(false, t);
  CHECK(server_notsent_lowat(small.port) == 16384);
  t.tcp_notsent_lowat = 0;
  running_front_door unset(false, t);
  CHECK(server_notsent_lowat(unset.port) == 0);  // the kernel reads 0 as "the sysctl's value"
  // The bounded queue changes how a large answer moves, not what arrives.
  const auto streamed = roundtrip(small.port, "GET /v2/x/stream?size=3000000 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  CHECK(streamed.substr(streamed.find("\r\n\r\n") + 4).size() == 3000000);
}

TEST_CASE("a file answer's slices are each offered to the socket in one send: under 1.5 times the "
          "fewest segments",
          "[frontdoor][transport]") {
  // Asio's own writes offer at most 64 KiB per send, and loopback's largest segment is a little
  // less (65,483 bytes), so every such send left as one full segment and one of a few dozen
  // bytes: about two segments per 64 KiB (2.0 times the fewest), where one 256 KiB slice per
  // send leaves four full segments and one short one (about 1.25 times).
  running_front_door fd;
  connection client(fd.port);
  constexpr std::size_t size = 32 * 1024 * 1024;
  client.send_only("GET /v2/x/pattern-file?size=" + std::to_string(size) + " HTTP/1.1\r\nHost: x\r\n\r\n");
  std::string head;
  std::size_t body = 0;
  std::vector<char> buf(1 << 20);
  // Read as fast as the server sends, so the window is rarely what splits a segment. The socket
  // gives up after 0.7 s of silence; a slow build (ASan, a busy machine) may be silent longer
  // while the plugin fills the file, so silence is retried until one overall deadline.
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (body < size && std::chrono::steady_clock::now() < give_up) {
    const ssize_t n = ::recv(client.fd(), buf.data(), buf.size(), 0);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) continue;
    REQUIRE(n > 0);
    std::size_t at = 0;
    while (at < static_cast<std::size_t>(n) && !head.ends_with("\r\n\r\n")) head += buf[at++];
    body += static_cast<std::size_t>(n) - at;
  }
  REQUIRE(head.starts_with("HTTP/1.1 200"));
  REQUIRE(body == size);
  const int server_end = server_end_of(client);
  REQUIRE(server_end >= 0);
  frontdoor_test::tcp_counters sent;
  REQUIRE(frontdoor_test::read_tcp_counters(server_end, sent));
  REQUIRE(sent.snd_mss > 0);
  if (sent.snd_mss < 32768) {
    WARN("loopback's segments carry at most " << sent.snd_mss << " bytes here (its MTU is not 64 KiB): a 64 KiB "
         "send splits into few enough segments that this check cannot tell it from one offer per slice");
  }
  const double fewest = static_cast<double>(sent.bytes_sent) / sent.snd_mss;
  INFO("data segments " << sent.data_segs_out << " for " << sent.bytes_sent << " bytes, segments of at most "
                        << sent.snd_mss << ": " << sent.data_segs_out / fewest << " times the fewest");
  CHECK(sent.data_segs_out < 1.5 * fewest);
}

TEST_CASE("file answers in flight together on one I/O thread each arrive whole and in order",
          "[frontdoor][transport]") {
  registryd::frontdoor::transport_options one_thread;
  one_thread.io_threads = 1;
  running_front_door fd(false, one_thread);
  // 24 MiB each, more than loopback's socket buffers hold, so a send stays in flight until its
  // client reads: once each client has its first bytes, all four sends are under way at once,
  // and the one I/O thread takes turns between them, a whole slice offered per send.
  constexpr std::size_t size = 24 * 1024 * 1024;
  const std::string request = "GET /v2/x/pattern-file?size=" + std::to_string(size) +
                              " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
  std::vector<std::unique_ptr<connection>> clients;
  std::vector<std::string> replies;
  for (int i = 0; i < 4; ++i) {
    clients.push_back(std::make_unique<connection>(fd.port));
    clients.back()->send_only(request);
  }
  for (auto& c : clients) replies.push_back(c->read_at_least(1));
  for (std::size_t i = 0; i < clients.size(); ++i) replies[i] += clients[i]->roundtrip("");
  for (const auto& reply : replies) {
    REQUIRE(reply.starts_with("HTTP/1.1 200"));
    const auto body_at = reply.find("\r\n\r\n");
    REQUIRE(body_at != std::string::npos);
    REQUIRE(reply.size() - body_at - 4 == size);
    CHECK(is_pattern(std::string_view(reply).substr(body_at + 4)));
  }
}

TEST_CASE("a stream's buffer grows while its source fills it, never past what is left, and stays "
          "small for a source that gives less",
          "[frontdoor][transport]") {
  running_front_door fd;
  const auto body_of = [](const std::string& reply) { return reply.substr(reply.find("\r\n\r\n") + 4); };
  const auto streamed = roundtrip(fd.port, "GET /v2/x/stream?size=3000000 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  const auto body = body_of(streamed);
  REQUIRE(body.size() == 3000000);
  CHECK(is_pattern(body));
  // 256 KiB, doubled while each read fills the buffer, up to 1 MiB; the last read is offered
  // only what is left (3000000 - 262144 - 524288 - 2 * 1048576 = 116416).
  CHECK(body_of(roundtrip(fd.port, "GET /v2/x/stream-reads HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")) ==
        "262144,524288,1048576,1048576,116416");
  // A source that gives 100000 bytes per read never fills its buffer: it stays at 256 KiB.
  const auto slow = roundtrip(fd.port, "GET /v2/x/stream?size=300000&per_read=100000 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  CHECK(body_of(slow).size() == 300000);
  CHECK(body_of(roundtrip(fd.port, "GET /v2/x/stream-reads HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")) ==
        "262144,200000,100000");
}

TEST_CASE("stream buffers past 64 KiB share one budget, half for first pieces and half for growth: past "
          "it a stream starts at 64 KiB, and a stream's shares come back when it ends",
          "[frontdoor][transport]") {
  registryd::frontdoor::transport_options t;
  // Half (196,608 bytes) is one first piece's 192 KiB past 64 KiB; the other half lets a stream
  // grow from 64 KiB to 256 KiB, or not at all from 256 KiB (to 512 KiB takes 262,144).
  t.stream_buffer_budget = 393216;
  // The holder below must take MBs without reading: the server's socket, unbounded, holds them.
  // With the default bound on unsent bytes (64 KiB) it takes less than one 256 KiB piece.
  t.tcp_notsent_lowat = 0;
  running_front_door fd(false, t);
  const auto body_of = [](const std::string& reply) { return reply.substr(reply.find("\r\n\r\n") + 4); };
  const std::string reads_request = "GET /v2/x/stream-reads HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
  const std::string stream_request = "GET /v2/x/stream?size=3000000 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
  const auto pieces = [](std::initializer_list<std::pair<int, int>> runs) {
    std::string list;
    for (const auto& [count, size] : runs) {
      for (int i = 0; i < count; ++i) list += (list.empty() ? "" : ",") + std::to_string(size);
    }
    return list;
  };
  {
    // A client that reads nothing holds a 64 MB stream, and the half for first pieces, until it
    // goes; its buffer cannot grow within the other half.
    connection holder(fd.port);
    holder.send_only("GET /v2/x/stream?size=64000000 HTTP/1.1\r\nHost: x\r\n\r\n");
    for (int i = 0; i < 250 && fd.gauge("registryd_http_stream_buffer_grown_bytes") < 196608; ++i) {
      std::this_thread::sleep_for(20ms);
    }
    REQUIRE(fd.gauge("registryd_http_stream_buffer_grown_bytes") == 196608);
    // Until its socket buffers are full and it reads no more from its source: the reads it
    // records stop changing (they would otherwise land in the next stream's list). This needs
    // the kernel to buffer a few MB for a client that reads nothing, as loopback does with the
    // server's unsent bytes unbounded.
    std::string last = "-";
    for (int i = 0; i < 100; ++i) {
      std::this_thread::sleep_for(100ms);
      const auto now = body_of(roundtrip(fd.port, reads_request));
      if (now == last) break;
      last = now;
    }
    REQUIRE(body_of(roundtrip(fd.port, reads_request)) == last);
    CHECK(last.find("524288") == std::string::npos);
    CHECK(fd.gauge("registryd_http_stream_buffer_grown_bytes") == 196608);
    // The next stream finds the first pieces' half spent: 64 KiB, then doubled twice within the
    // growth half, and no further (3000000 - 65536 - 131072 - 10 x 262144 = 181952).
    CHECK(body_of(roundtrip(fd.port, stream_request)).size() == 3000000);
    CHECK(body_of(roundtrip(fd.port, reads_request)) == pieces({{1, 65536}, {1, 131072}, {10, 262144}, {1, 181952}}));
  }
  for (int i = 0; i < 250 && fd.gauge("registryd_http_stream_buffer_grown_bytes") != 0; ++i) {
    std::this_thread::sleep_for(20ms);
  }
  CHECK(fd.gauge("registryd_http_stream_buffer_grown_bytes") == 0);
  // The holder's share is back: 256 KiB from the start. Its buffer cannot double within the
  // growth half; it grows only to fit the last 378,560 bytes (3000000 - 10 x 262144).
  CHECK(body_of(roundtrip(fd.port, stream_request)).size() == 3000000);
  CHECK(body_of(roundtrip(fd.port, reads_request)) == pieces({{10, 262144}, {1, 378560}}));
  CHECK(fd.gauge("registryd_http_stream_buffer_grown_bytes") == 0);  // given back once sent

  // With no budget every stream keeps 64 KiB (45 pieces, and 50,880 bytes).
  registryd::frontdoor::transport_options none;
  none.stream_buffer_budget = 0;
  running_front_door unbudgeted(false, none);
  CHECK(body_of(roundtrip(unbudgeted.port, stream_request)).size() == 3000000);
  CHECK(body_of(roundtrip(unbudgeted.port, reads_request)) == pieces({{45, 65536}, {1, 50880}}));
}

TEST_CASE("a wake signal calls each waiter once, and a waiter added after a change it did not see is called at once",
          "[frontdoor][transport]") {
  registryd::frontdoor::wake_signal signal;
  int a = 0, b = 0, late = 0;
  const auto seen = signal.generation();
  CHECK(signal.add([&] { ++a; }, seen) != 0);
  const auto id_b = signal.add([&] { ++b; }, seen);
  signal.remove(id_b);
  CHECK(signal.parked() == 1);
  signal.notify();
  signal.notify();
  CHECK(a == 1);
  CHECK(b == 0);
  CHECK(signal.add([&] { ++late; }, seen) == 0);  // two generations on: called now
  CHECK(late == 1);
  CHECK(signal.parked() == 0);
}

TEST_CASE("long polls are parked without a worker: more than the workers held while the door answers at "
          "once, all answered when their signal fires, one at its deadline",
          "[frontdoor][transport]") {
  running_front_door fd;  // 4 worker threads
  auto signal = std::make_shared<registryd::frontdoor::wake_signal>();
  fd.door->set_cluster_api([signal](const registryd::frontdoor::host_api_request& r) {
    registryd::frontdoor::host_api_response out;
    out.body = r.resumed ? R"({"resumed":true})" : R"({"resumed":false})";
    const auto wait = r.params.find("wait");
    if (wait != r.params.end()) {
      out.park_on = signal;
      out.park_seen = signal->generation();
      out.park_for = std::chrono::milliseconds(std::stoi(wait->second));
      if (r.params.count("change")) signal->notify();  // a change between the look and the park
    }
    return out;
  });
  const auto poll = [](const std::string& query) {
    return "GET /cluster/v1/node?" + query + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
  };
  std::vector<std::unique_ptr<connection>> polls;
  for (int i = 0; i < 20; ++i) {
    polls.push_back(std::make_unique<connection>(fd.port));
    polls.back()->send_only(poll("wait=30000"));
  }
  for (int i = 0; i < 250 && signal->parked() < 20; ++i) std::this_thread::sleep_for(20ms);
  REQUIRE(signal->parked() == 20);

  auto started = std::chrono::steady_clock::now();
  CHECK(count(roundtrip(fd.port, "GET /v2/x/manifests/a HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
              "HTTP/1.1 200") == 1);
  CHECK(std::chrono::steady_clock::now() - started < 500ms);
  // A change the handler's look missed is not waited out.
  started = std::chrono::steady_clock::now();
  CHECK(count(roundtrip(fd.port, poll("wait=30000&change=1")), R"({"resumed":true})") == 1);
  CHECK(std::chrono::steady_clock::now() - started < 1500ms);

  signal->notify();
  started = std::chrono::steady_clock::now();
  std::size_t answered = 0;
  for (auto& c : polls) answered += count(c->roundtrip(""), R"({"resumed":true})");
  CHECK(answered == 20);
  CHECK(std::chrono::steady_clock::now() - started < 3s);
  CHECK(signal->parked() == 0);

  started = std::chrono::steady_clock::now();
  CHECK(count(roundtrip(fd.port, poll("wait=300")), R"({"resumed":true})") == 1);
  CHECK(std::chrono::steady_clock::now() - started >= 300ms);
  // Without a wait the API answers at once and is never parked.
  CHECK(count(roundtrip(fd.port, poll("x=1")), R"({"resumed":false})") == 1);
}
