// The client against small in-process HTTP servers on loopback that play the parts a real
// registry plays (challenges, token realm, blob storage redirects, errors, slow answers), so
// each rule is checked on its own. tests/integration/client_test.sh checks the same client
// against the real docker-registry.
#include <registryd/oci/client/registry_client.hpp>

#include <registryd/oci/digest.hpp>

#include <catch2/catch.hpp>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <mutex>
#include <span>
#include <thread>

using namespace registryd::oci;
using namespace registryd::oci::client;
using namespace std::chrono_literals;

namespace {

// An httplib server on 127.0.0.1, an ephemeral port, stopped and joined on destruction.
class test_server {
 public:
  test_server() = default;
  ~test_server() { stop(); }
  httplib::Server& operator*() { return server_; }
  httplib::Server* operator->() { return &server_; }

  void start() {
    port_ = server_.bind_to_any_port("127.0.0.1");
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
  std::string url() const { return "http://" + authority(); }

 private:
  httplib::Server server_;
  std::thread thread_;
  int port_ = 0;
};

client_options options_for(const test_server& s) {
  client_options o;
  o.registry = s.authority();
  o.url_scheme = scheme::http;
  o.connect_timeout = 2s;
  o.read_timeout = 5s;
  return o;
}

void oci_error(httplib::Response& res, int status, const std::string& code, const std::string& message) {
  res.status = status;
  res.set_content(R"({"errors":[{"code":")" + code + R"(","message":")" + message + R"(","detail":{"k":"v"}}]})",
                  "application/json");
}

const std::string manifest_body = R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json"})";

std::string make_bytes(std::size_t n) {
  std::string s(n, '\0');
  for (std::size_t i = 0; i < n; ++i) s[i] = static_cast<char>('a' + (i * 7919) % 26);
  return s;
}

// A handler that appends every piece of the body to `into`.
response_handler appending_to(std::string& into) {
  response_handler h;
  h.on_body = [&into](std::string_view piece) {
    into.append(piece);
    return true;
  };
  return h;
}

// A TCP server on 127.0.0.1 that answers one request with fixed bytes, whatever they are: for
// answers no HTTP library would send. Closed on destruction.
class raw_server {
 public:
  explicit raw_server(std::string answer) : answer_(std::move(answer)) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(fd_ >= 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    REQUIRE(::listen(fd_, 4) == 0);
    socklen_t len = sizeof a;
    REQUIRE(::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len) == 0);
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] {
      const int c = ::accept(fd_, nullptr, nullptr);
      if (c < 0) return;
      std::string got;
      char buf[4096];
      while (got.find("\r\n\r\n") == std::string::npos) {
        const auto n = ::recv(c, buf, sizeof buf, 0);
        if (n <= 0) break;
        got.append(buf, static_cast<std::size_t>(n));
      }
      std::size_t sent = 0;
      while (sent < answer_.size()) {
        const auto n = ::send(c, answer_.data() + sent, answer_.size() - sent, MSG_NOSIGNAL);
        if (n <= 0) break;
        sent += static_cast<std::size_t>(n);
      }
      ::shutdown(c, SHUT_WR);
      while (::recv(c, buf, sizeof buf, 0) > 0) {
      }
      ::close(c);
    });
  }
  ~raw_server() {
    ::shutdown(fd_, SHUT_RDWR);  // wakes an accept that never got a client
    thread_.join();
    ::close(fd_);
  }
  client_options options() const {
    client_options o;
    o.registry = "127.0.0.1:" + std::to_string(port_);
    o.url_scheme = scheme::http;
    o.connect_timeout = 2s;
    o.read_timeout = 2s;
    return o;
  }

 private:
  std::string answer_;
  int fd_ = -1;
  int port_ = 0;
  std::thread thread_;
};

// A ping that is expected to fail, and how long it took to.
struct timed_failure {
  upstream_error error;
  std::chrono::steady_clock::duration took;
};
timed_failure failed_ping(const registry_client& c) {
  const auto start = std::chrono::steady_clock::now();
  auto p = c.ping();
  const auto took = std::chrono::steady_clock::now() - start;
  REQUIRE_FALSE(p);
  return {p.error(), took};
}

}  // namespace

TEST_CASE("an answer that is not valid HTTP/1.1 is a protocol error and its connection is dropped",
          "[client][wire]") {
  const std::string too_long_head = "HTTP/1.1 200 OK\r\nX-Pad: " + std::string(70 * 1024, 'a') + "\r\n\r\n";
  const std::vector<std::string> answers = {
      "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}",
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n",
      "HTTP/1.1 2OO OK\r\nContent-Length: 2\r\n\r\n{}",
      too_long_head,
  };
  for (const auto& answer : answers) {
    CAPTURE(answer.substr(0, 60));
    raw_server s(answer);
    registry_client c(s.options());
    auto p = c.ping();
    REQUIRE_FALSE(p);
    CHECK(p.error().kind == error_kind::protocol);
    CHECK_THAT(p.error().message, Catch::Contains("sent an answer that is not valid HTTP/1.1"));
    CHECK(c.idle_connections() == 0);
  }
}

TEST_CASE("interim 1xx answers are passed over and the final answer is the one returned", "[client][wire]") {
  raw_server s(
      "HTTP/1.1 100 Continue\r\n\r\n"
      "HTTP/1.1 103 Early Hints\r\nLink: </x>; rel=preload\r\n\r\n"
      "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}");
  registry_client c(s.options());
  request req;
  req.target = "/v2/";
  int status = 0;
  std::string body;
  response_handler h;
  h.on_head = [&](const response_head& head) {
    status = head.status;
    return true;
  };
  h.on_body = [&](std::string_view piece) {
    body.append(piece);
    return true;
  };
  auto r = c.send(req, h);
  REQUIRE(r);
  CHECK(r->status == 200);
  CHECK(status == 200);
  CHECK(body == "{}");
}

TEST_CASE("a chunked answer in many small chunks arrives whole and verified", "[client][wire]") {
  const auto bytes = make_bytes(300 * 1024 + 17);
  std::string answer = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: application/octet-stream\r\n\r\n";
  for (std::size_t at = 0; at < bytes.size(); at += 1000) {
    const auto piece = bytes.substr(at, 1000);
    char size[16];
    std::snprintf(size, sizeof size, "%zx\r\n", piece.size());
    answer += size + piece + "\r\n";
  }
  answer += "0\r\n\r\n";
  raw_server s(answer);
  registry_client c(s.options());
  std::string got;
  std::size_t largest = 0;
  response_handler h;
  h.on_body = [&](std::string_view piece) {
    got.append(piece);
    largest = std::max(largest, piece.size());
    return true;
  };
  auto r = c.get_blob("a", digest_of(bytes), h);
  REQUIRE(r);
  CHECK(got == bytes);
  CHECK(largest <= 64 * 1024);
  CHECK(c.idle_connections() == 1);  // a complete keep-alive answer returns its connection
}

TEST_CASE("a blob of known length arrives whole and its connection is kept", "[client][wire]") {
  const auto bytes = make_bytes(300 * 1024 + 17);
  const std::string head = "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: " +
                           std::to_string(bytes.size()) + "\r\n\r\n";
  raw_server s(head + bytes);
  registry_client c(s.options());
  std::string got;
  REQUIRE(c.get_blob("a", digest_of(bytes), appending_to(got)));
  CHECK(got == bytes);
  CHECK(c.idle_connections() == 1);
}

TEST_CASE("a blob cut short of its Content-Length fails and its connection is dropped", "[client][wire]") {
  const auto bytes = make_bytes(200 * 1024);
  raw_server s("HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(bytes.size()) + "\r\n\r\n" +
               bytes.substr(0, bytes.size() - 1000));
  registry_client c(s.options());
  std::size_t got = 0;
  response_handler h;
  h.on_body = [&](std::string_view piece) {
    got += piece.size();
    return true;
  };
  auto r = c.get_blob("a", digest_of(bytes), h);
  REQUIRE_FALSE(r);
  CAPTURE(r.error().message);
  CHECK(got == bytes.size() - 1000);  // every byte that came was handed on
  CHECK(c.idle_connections() == 0);
}

namespace {

// A handler that takes bodies into its own room, `room` bytes at a time (as a cache fill
// does), and counts what reached on_body instead.
struct room_handler {
  std::string got;
  std::vector<char> scratch;
  std::size_t pieces = 0;     // body_filled calls
  std::size_t on_body = 0;    // bytes that came through on_body
  bool refuse_room = false;
  explicit room_handler(std::size_t room) : scratch(room) {}
  response_handler handler() {
    response_handler h;
    h.on_body = [this](std::string_view piece) {
      on_body += piece.size();
      got.append(piece);
      return true;
    };
    h.body_room = [this] { return refuse_room ? std::span<char>() : std::span<char>(scratch); };
    h.body_filled = [this](std::size_t n) {
      REQUIRE(n <= scratch.size());
      got.append(scratch.data(), n);
      ++pieces;
      return true;
    };
    return h;
  }
};

blob_read_options unverified() {
  blob_read_options o;
  o.verify = false;
  return o;
}

}  // namespace

TEST_CASE("a body of known length is read straight into the handler's room", "[client][wire]") {
  // 7001-byte rooms: mostly socket reads. 16-byte rooms: the bytes the head's read took past
  // the head (a few hundred here) fill many rooms in turn before the first socket read.
  const auto [size, room] = GENERATE(table<std::size_t, std::size_t>({{300 * 1024 + 17, 7001}, {20 * 1024 + 3, 16}}));
  CAPTURE(size, room);
  const auto bytes = make_bytes(size);
  raw_server s("HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(bytes.size()) + "\r\n\r\n" + bytes);
  registry_client c(s.options());
  room_handler h(room);
  REQUIRE(c.get_blob("a", digest_of(bytes), h.handler(), unverified()));
  CHECK(h.got == bytes);
  CHECK(h.on_body == 0);
  CHECK(h.pieces >= bytes.size() / room);  // each piece fits a room (the handler REQUIREs it)
  CHECK(c.idle_connections() == 1);
}

TEST_CASE("a kept connection carries a second body read into the room", "[client][wire]") {
  const auto one = make_bytes(150 * 1024 + 1);
  const auto two = make_bytes(90 * 1024 + 7);
  test_server srv;
  srv->Get(R"(/v2/a/blobs/(.*))", [&](const httplib::Request& req, httplib::Response& res) {
    res.set_content(req.matches[1] == digest_of(one).str() ? one : two, "application/octet-stream");
  });
  srv.start();
  registry_client c(options_for(srv));
  room_handler h1(64 * 1024), h2(64 * 1024);
  REQUIRE(c.get_blob("a", digest_of(one), h1.handler(), unverified()));
  CHECK(c.idle_connections() == 1);
  REQUIRE(c.get_blob("a", digest_of(two), h2.handler(), unverified()));
  CHECK(h1.got == one);
  CHECK(h2.got == two);
  CHECK(h2.on_body == 0);
  CHECK(c.idle_connections() == 1);
}

TEST_CASE("a body read into the room that ends short fails and drops its connection", "[client][wire]") {
  const auto bytes = make_bytes(200 * 1024);
  raw_server s("HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(bytes.size()) + "\r\n\r\n" +
               bytes.substr(0, bytes.size() - 1000));
  registry_client c(s.options());
  room_handler h(64 * 1024);
  auto r = c.get_blob("a", digest_of(bytes), h.handler(), unverified());
  REQUIRE_FALSE(r);
  CAPTURE(r.error().message);
  CHECK(h.got == bytes.substr(0, bytes.size() - 1000));  // every byte that came was handed on
  CHECK(c.idle_connections() == 0);
}

TEST_CASE("a chunked body goes to on_body even when the handler offers room", "[client][wire]") {
  const std::string body = "hello, chunked world";
  raw_server s("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nf\r\n, chunked world\r\n0\r\n\r\n");
  registry_client c(s.options());
  room_handler h(8);
  REQUIRE(c.get_blob("a", digest_of(body), h.handler(), unverified()));
  CHECK(h.got == body);
  CHECK(h.on_body == body.size());
  CHECK(h.pieces == 0);
}

TEST_CASE("a handler whose room is gone stops the transfer", "[client][wire]") {
  const auto bytes = make_bytes(100 * 1024);
  raw_server s("HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(bytes.size()) + "\r\n\r\n" + bytes);
  registry_client c(s.options());
  room_handler h(4096);
  h.refuse_room = true;
  auto r = c.get_blob("a", digest_of(bytes), h.handler(), unverified());
  REQUIRE_FALSE(r);
  CHECK(r.error().kind == error_kind::canceled);
  CHECK(h.got.empty());
  CHECK(c.idle_connections() == 0);
}

TEST_CASE("a manifest is fetched with the OCI and docker Accept list, and its digest checked", "[client]") {
  test_server s;
  std::string accept_seen;
  s->Get("/v2/a/b/manifests/v1", [&](const httplib::Request& req, httplib::Response& res) {
    accept_seen = req.get_header_value("Accept");
    res.set_header("Docker-Content-Digest", digest_of(manifest_body).str());
    res.set_content(manifest_body, "application/vnd.oci.image.manifest.v1+json");
  });
  s.start();
  registry_client c(options_for(s));

  auto m = c.get_manifest("a/b", "v1");
  REQUIRE(m);
  CHECK(m->body == manifest_body);
  CHECK(m->descriptor.media_type == "application/vnd.oci.image.manifest.v1+json");
  CHECK(m->descriptor.digest == digest_of(manifest_body));
  CHECK(m->descriptor.size == manifest_body.size());
  CHECK_THAT(accept_seen, Catch::Contains("application/vnd.oci.image.index.v1+json"));
  CHECK_THAT(accept_seen, Catch::Contains("application/vnd.docker.distribution.manifest.list.v2+json"));

  auto h = c.head_manifest("a/b", "v1");
  REQUIRE(h);
  CHECK(h->digest == digest_of(manifest_body));
  CHECK(h->size == manifest_body.size());
  // The same connection served both.
  CHECK(c.idle_connections() == 1);
}

TEST_CASE("a manifest whose bytes do not match the digest asked for is refused", "[client]") {
  test_server s;
  s->Get(R"(/v2/a/manifests/(.*))", [&](const httplib::Request&, httplib::Response& res) {
    res.set_content(manifest_body, "application/vnd.oci.image.manifest.v1+json");
  });
  s.start();
  registry_client c(options_for(s));
  const auto other = digest_of("something else");
  auto m = c.get_manifest("a", other.str());
  REQUIRE_FALSE(m);
  CHECK(m.error().kind == error_kind::protocol);
  CHECK_THAT(m.error().message, Catch::Contains(other.str()));
}

TEST_CASE("the upstream's OCI error code, message and detail are passed on", "[client]") {
  test_server s;
  s->Get(R"(/v2/a/manifests/(.*))", [&](const httplib::Request&, httplib::Response& res) {
    oci_error(res, 404, "MANIFEST_UNKNOWN", "manifest unknown to upstream");
  });
  s->Get(R"(/v2/a/blobs/(.*))", [&](const httplib::Request&, httplib::Response& res) { res.status = 404; });
  s->Get("/v2/", [&](const httplib::Request&, httplib::Response& res) {
    res.status = 503;
    res.set_content("maintenance\n", "text/plain");
  });
  s.start();
  registry_client c(options_for(s));

  auto m = c.get_manifest("a", "v1");
  REQUIRE_FALSE(m);
  CHECK(m.error().kind == error_kind::http);
  CHECK(m.error().status == 404);
  CHECK(m.error().code == "MANIFEST_UNKNOWN");
  CHECK(m.error().message == "manifest unknown to upstream");
  CHECK(m.error().detail == R"({"k":"v"})");
  CHECK_FALSE(m.error().retryable());

  // A HEAD has no body: the code comes from the route.
  auto b = c.head_blob("a", digest_of("x"));
  REQUIRE_FALSE(b);
  CHECK(b.error().code == "BLOB_UNKNOWN");
  auto exists = c.blob_exists("a", digest_of("x"));
  REQUIRE(exists);
  CHECK_FALSE(*exists);

  auto p = c.ping();
  REQUIRE_FALSE(p);
  CHECK(p.error().status == 503);
  CHECK(p.error().code == "UNAVAILABLE");
  CHECK_THAT(p.error().message, Catch::Contains("maintenance"));
  CHECK(p.error().retryable());
}

TEST_CASE("a pass-through request sees the upstream's error answer itself", "[client]") {
  test_server s;
  s->Get("/v2/a/tags/list", [&](const httplib::Request&, httplib::Response& res) {
    res.set_header("X-Upstream", "yes");
    oci_error(res, 404, "NAME_UNKNOWN", "no such repository");
  });
  s.start();
  registry_client c(options_for(s));
  request req;
  req.target = "/v2/a/tags/list";
  req.deliver_errors = true;
  int status = 0;
  std::string upstream_header, body;
  auto r = c.send(req, {[&](const response_head& h) {
                          status = h.status;
                          upstream_header = std::string(h.headers.get("X-Upstream").value_or(""));
                          return true;
                        },
                        [&](std::string_view piece) {
                          body.append(piece);
                          return true;
                        }});
  REQUIRE_FALSE(r);
  CHECK(status == 404);
  CHECK(upstream_header == "yes");
  CHECK_THAT(body, Catch::Contains("no such repository"));
  CHECK(r.error().code == "NAME_UNKNOWN");
}

TEST_CASE("the bearer flow fetches a token once, caches it and sends it up front", "[client][auth]") {
  test_server s;
  std::atomic<int> token_requests{0}, challenges{0};
  std::string scope_asked, token_auth_seen;
  std::mutex m;
  s->Get("/token", [&](const httplib::Request& req, httplib::Response& res) {
    ++token_requests;
    std::lock_guard lock(m);
    scope_asked = req.get_param_value("scope");
    token_auth_seen = req.get_header_value("Authorization");
    if (req.get_param_value("service") != "test-registry") {
      res.status = 400;
      return;
    }
    res.set_content(R"({"token":"T1","expires_in":300})", "application/json");
  });
  s->Get(R"(/v2/a/manifests/(.*))", [&](const httplib::Request& req, httplib::Response& res) {
    if (req.get_header_value("Authorization") != "Bearer T1") {
      ++challenges;
      res.set_header("WWW-Authenticate", "Bearer realm=\"" + s.url() +
                                             "/token\",service=\"test-registry\",scope=\"repository:a:pull\"");
      oci_error(res, 401, "UNAUTHORIZED", "authentication required");
      return;
    }
    res.set_content(manifest_body, "application/vnd.oci.image.manifest.v1+json");
  });
  s.start();
  auto o = options_for(s);
  o.auth = credentials{"user", "secret"};
  registry_client c(o);

  REQUIRE(c.get_manifest("a", "v1"));
  REQUIRE(c.get_manifest("a", "v2"));
  REQUIRE(c.head_manifest("a", "v3"));
  CHECK(token_requests == 1);
  CHECK(challenges == 1);
  CHECK(scope_asked == "repository:a:pull");
  CHECK(token_auth_seen == "Basic dXNlcjpzZWNyZXQ=");  // user:secret
}

TEST_CASE("concurrent first requests share one token fetch", "[client][auth]") {
  test_server s;
  std::atomic<int> token_requests{0};
  s->Get("/token", [&](const httplib::Request&, httplib::Response& res) {
    ++token_requests;
    std::this_thread::sleep_for(200ms);
    res.set_content(R"({"access_token":"T","expires_in":300})", "application/json");
  });
  s->Get("/v2/", [&](const httplib::Request& req, httplib::Response& res) {
    if (req.get_header_value("Authorization") != "Bearer T") {
      res.status = 401;
      res.set_header("WWW-Authenticate", "Bearer realm=\"" + s.url() + "/token\"");
    }
  });
  s.start();
  registry_client c(options_for(s));
  REQUIRE(c.ping());  // learns the scheme
  CHECK(token_requests == 1);
  // Tokens for a new scope, wanted by 6 threads at once.
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  for (int i = 0; i < 6; ++i) {
    threads.emplace_back([&] {
      request req;
      req.target = "/v2/";
      req.scopes = {"repository:shared:pull"};
      if (c.send(req)) ++ok;
    });
  }
  for (auto& t : threads) t.join();
  CHECK(ok == 6);
  CHECK(token_requests == 2);
}

TEST_CASE("a token realm that refuses the credentials gives UNAUTHORIZED naming the realm", "[client][auth]") {
  test_server s;
  s->Get("/token", [&](const httplib::Request&, httplib::Response& res) {
    oci_error(res, 401, "UNAUTHORIZED", "bad credentials");
  });
  s->Get("/v2/", [&](const httplib::Request&, httplib::Response& res) {
    res.status = 401;
    res.set_header("WWW-Authenticate", "Bearer realm=\"" + s.url() + "/token\",service=\"x\"");
  });
  s.start();
  auto o = options_for(s);
  o.auth = credentials{"user", "wrong"};
  registry_client c(o);
  auto p = c.ping();
  REQUIRE_FALSE(p);
  CHECK(p.error().kind == error_kind::http);
  CHECK(p.error().status == 401);
  CHECK(p.error().code == "UNAUTHORIZED");
  CHECK_THAT(p.error().message, Catch::Contains("token realm") && Catch::Contains("/token") &&
                                    Catch::Contains("user user") && Catch::Contains("bad credentials"));
  CHECK_THAT(p.error().message, !Catch::Contains("wrong"));
}

TEST_CASE("a 401 without a challenge fails clearly with the upstream's message", "[client][auth]") {
  test_server s;
  s->Get("/v2/", [&](const httplib::Request&, httplib::Response& res) {
    oci_error(res, 401, "UNAUTHORIZED", "license expired");
  });
  s.start();
  auto o = options_for(s);
  o.auth = credentials{"license-token", "KEY"};
  registry_client c(o);
  auto p = c.ping();
  REQUIRE_FALSE(p);
  CHECK(p.error().status == 401);
  CHECK(p.error().code == "UNAUTHORIZED");
  CHECK_THAT(p.error().message, Catch::Contains("without a WWW-Authenticate challenge") &&
                                    Catch::Contains("license expired"));
}

TEST_CASE("a token that stops working is replaced once, then the 401 is final", "[client][auth]") {
  test_server s;
  std::atomic<int> issued{0}, accepted_from{1};
  s->Get("/token", [&](const httplib::Request&, httplib::Response& res) {
    const int n = ++issued;
    res.set_content(R"({"token":"T)" + std::to_string(n) + R"(","expires_in":300})", "application/json");
  });
  s->Get("/v2/", [&](const httplib::Request& req, httplib::Response& res) {
    if (req.get_header_value("Authorization") != "Bearer T" + std::to_string(accepted_from.load())) {
      res.status = 401;
      res.set_header("WWW-Authenticate", "Bearer realm=\"" + s.url() + "/token\"");
    }
  });
  s.start();
  registry_client c(options_for(s));
  REQUIRE(c.ping());
  CHECK(issued == 1);
  accepted_from = 2;  // the upstream revokes T1
  REQUIRE(c.ping());
  CHECK(issued == 2);
  accepted_from = 99;  // nothing the realm issues is accepted
  auto p = c.ping();
  REQUIRE_FALSE(p);
  CHECK(p.error().status == 401);
  CHECK(issued == 3);
}

TEST_CASE("basic auth is sent after a Basic challenge, and only then", "[client][auth]") {
  test_server s;
  std::atomic<int> anonymous{0};
  s->Get("/v2/", [&](const httplib::Request& req, httplib::Response& res) {
    if (req.get_header_value("Authorization") != "Basic dXNlcjpzZWNyZXQ=") {
      ++anonymous;
      res.status = 401;
      res.set_header("WWW-Authenticate", "Basic realm=\"registry\"");
    }
  });
  s.start();
  auto o = options_for(s);
  o.auth = credentials{"user", "secret"};
  registry_client c(o);
  REQUIRE(c.ping());
  REQUIRE(c.ping());
  CHECK(anonymous == 1);

  registry_client without(options_for(s));
  auto p = without.ping();
  REQUIRE_FALSE(p);
  CHECK(p.error().code == "UNAUTHORIZED");
  CHECK_THAT(p.error().message, Catch::Contains("no credentials are configured"));
}

TEST_CASE("a blob redirected to another host streams from there without the registry's Authorization",
          "[client][redirect]") {
  const std::string blob = make_bytes(1024 * 1024 + 17);
  const auto d = digest_of(blob);
  test_server storage;
  std::string auth_at_storage = "unset";
  storage->Get("/bucket/blob", [&](const httplib::Request& req, httplib::Response& res) {
    auth_at_storage = req.get_header_value("Authorization");
    if (req.get_param_value("sig") != "a/b") {
      res.status = 403;
      return;
    }
    res.set_content(blob, "application/octet-stream");
  });
  storage.start();
  test_server s;
  s->Get(R"(/v2/a/blobs/(.*))", [&](const httplib::Request& req, httplib::Response& res) {
    if (req.get_header_value("Authorization") != "Basic dXNlcjpzZWNyZXQ=") {
      res.status = 401;
      res.set_header("WWW-Authenticate", "Basic realm=\"r\"");
      return;
    }
    res.status = 307;
    res.set_header("Location", storage.url() + "/bucket/blob?sig=a%2Fb");
  });
  s.start();
  auto o = options_for(s);
  o.auth = credentials{"user", "secret"};
  registry_client c(o);

  std::vector<std::string> events;
  std::size_t largest = 0, total = 0;
  hasher h;
  auto r = c.get_blob("a", d,
                      {[&](const response_head& head) {
                         events.push_back("head " + std::to_string(head.status));
                         return true;
                       },
                       [&](std::string_view piece) {
                         if (events.back() != "body") events.push_back("body");
                         largest = std::max(largest, piece.size());
                         total += piece.size();
                         h.update(piece);
                         return true;
                       }});
  INFO((r ? std::string() : r.error().str()));
  REQUIRE(r);
  CHECK(events == std::vector<std::string>{"head 200", "body"});
  CHECK(total == blob.size());
  CHECK(h.current() == d);
  CHECK(largest <= 64 * 1024);
  CHECK(auth_at_storage.empty());
  CHECK_THAT(r->url, Catch::StartsWith(storage.url()));
}

TEST_CASE("a blob whose bytes do not match its digest fails after the last byte", "[client]") {
  test_server s;
  s->Get(R"(/v2/a/blobs/(.*))", [&](const httplib::Request&, httplib::Response& res) {
    res.set_content("tampered", "application/octet-stream");
  });
  s.start();
  registry_client c(options_for(s));
  auto r = c.get_blob("a", digest_of("original"), {});
  REQUIRE_FALSE(r);
  CHECK(r.error().kind == error_kind::protocol);
  // Ranged reads are not verified.
  blob_read_options ranged;
  ranged.range = byte_range{0, 3};
  CHECK(c.get_blob("a", digest_of("original"), {}, ranged));
}

TEST_CASE("a range is asked for with a Range header", "[client]") {
  test_server s;
  std::string range_seen;
  s->Get(R"(/v2/a/blobs/(.*))", [&](const httplib::Request& req, httplib::Response& res) {
    range_seen = req.get_header_value("Range");
    res.set_content("abcde", "application/octet-stream");  // the server applies the range
  });
  s.start();
  registry_client c(options_for(s));
  blob_read_options o;
  o.range = byte_range{2, std::nullopt};
  std::string got;
  auto r = c.get_blob("a", digest_of("abcde"), {nullptr, [&](std::string_view p) {
                                                  got.append(p);
                                                  return true;
                                                }},
                      o);
  REQUIRE(r);
  CHECK(r->status == 206);
  CHECK(range_seen == "bytes=2-");
  CHECK(got == "cde");
}

TEST_CASE("a caller that stops reading cancels the transfer", "[client]") {
  test_server s;
  const std::string blob = make_bytes(4 * 1024 * 1024);
  s->Get(R"(/v2/a/blobs/(.*))", [&](const httplib::Request&, httplib::Response& res) {
    res.set_content(blob, "application/octet-stream");
  });
  s.start();
  registry_client c(options_for(s));
  std::size_t got = 0;
  auto r = c.get_blob("a", digest_of(blob), {nullptr, [&](std::string_view p) {
                                               got += p.size();
                                               return got < 100000;
                                             }});
  REQUIRE_FALSE(r);
  CHECK(r.error().kind == error_kind::canceled);
  CHECK(got < blob.size());
  // The broken connection is not kept.
  CHECK(c.idle_connections() == 0);
}

TEST_CASE("an abort handle stops a stalled answer from another thread", "[client]") {
  test_server s;
  s->Get(R"(/v2/a/blobs/(.*))", [&](const httplib::Request&, httplib::Response& res) {
    res.set_chunked_content_provider("application/octet-stream", [](std::size_t offset, httplib::DataSink& sink) {
      if (offset == 0) {
        sink.write("x", 1);
        return true;
      }
      std::this_thread::sleep_for(100ms);
      return offset < 1 || sink.is_writable();  // stalls until the client goes
    });
  });
  s.start();
  registry_client c(options_for(s));
  blob_read_options o;
  o.abort = std::make_shared<abort_handle>();
  std::thread stopper([&] {
    std::this_thread::sleep_for(300ms);
    o.abort->abort();
  });
  const auto start = std::chrono::steady_clock::now();
  auto r = c.get_blob("a", digest_of("x"), {}, o);
  stopper.join();
  REQUIRE_FALSE(r);
  CHECK(r.error().kind == error_kind::canceled);
  CHECK(std::chrono::steady_clock::now() - start < 3s);
}

TEST_CASE("an upstream that stops answering times out with the read timeout", "[client][timeout]") {
  test_server s;
  s->Get("/v2/", [&](const httplib::Request&, httplib::Response&) { std::this_thread::sleep_for(1500ms); });
  s.start();
  auto o = options_for(s);
  o.read_timeout = 300ms;
  registry_client c(o);
  const auto p = failed_ping(c);
  CHECK(p.error.kind == error_kind::timeout);
  CHECK(p.error.retryable());
  CHECK_THAT(p.error.message, Catch::Contains(s.authority()));
  CHECK(p.took < 1200ms);
}

TEST_CASE("the answer timeout bounds the wait for an answer's head, not the pauses of its body",
          "[client][timeout]") {
  const auto bytes = make_bytes(200 * 1024);
  test_server s;
  s->Get("/v2/", [&](const httplib::Request&, httplib::Response&) { std::this_thread::sleep_for(900ms); });
  s->Get(R"(/v2/a/blobs/(.+))", [&](const httplib::Request&, httplib::Response& res) {
    res.set_content_provider(bytes.size(), "application/octet-stream",
                             [&](std::size_t offset, std::size_t length, httplib::DataSink& sink) {
                               if (offset > 0) std::this_thread::sleep_for(400ms);  // a pause mid-body
                               return sink.write(bytes.data() + offset, std::min<std::size_t>(length, 64 * 1024));
                             });
  });
  s.start();
  auto o = options_for(s);
  o.answer_timeout = 250ms;
  o.read_timeout = 2s;
  registry_client c(o);
  const auto p = failed_ping(c);
  CHECK(p.error.kind == error_kind::timeout);
  CHECK_THAT(p.error.message, Catch::Contains("sent nothing for 0.250 s"));
  CHECK(p.took < 800ms);

  std::string got;
  REQUIRE(c.get_blob("a", digest_of(bytes), appending_to(got)));
  CHECK(got == bytes);
}

TEST_CASE("an upstream that is not listening fails at once as a connect error", "[client][timeout]") {
  int port = 0;
  {
    test_server s;
    s.start();
    port = s.port();
  }
  client_options o;
  o.registry = "127.0.0.1:" + std::to_string(port);
  o.url_scheme = scheme::http;
  registry_client c(o);
  const auto start = std::chrono::steady_clock::now();
  auto p = c.ping();
  REQUIRE_FALSE(p);
  CHECK(p.error().kind == error_kind::connect);
  CHECK(p.error().code == "UNAVAILABLE");
  CHECK_THAT(p.error().message, Catch::Contains("cannot connect to 127.0.0.1:" + std::to_string(port)));
  CHECK(std::chrono::steady_clock::now() - start < 1s);
}

TEST_CASE("concurrent requests do not wait for each other", "[client][pool]") {
  test_server s;
  s->new_task_queue = [] { return new httplib::ThreadPool(8); };
  s->Get("/v2/", [&](const httplib::Request&, httplib::Response&) { std::this_thread::sleep_for(300ms); });
  s.start();
  registry_client c(options_for(s));
  const auto start = std::chrono::steady_clock::now();
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  for (int i = 0; i < 6; ++i) {
    threads.emplace_back([&] {
      if (c.ping()) ++ok;
    });
  }
  for (auto& t : threads) t.join();
  const auto took = std::chrono::steady_clock::now() - start;
  CHECK(ok == 6);
  CHECK(took < 1200ms);  // serialized would be 1800 ms
  CHECK(c.idle_connections() == 6);
  // Kept connections are reused: no new ones for the next round.
  REQUIRE(c.ping());
  CHECK(c.idle_connections() == 6);
}

TEST_CASE("a kept connection the server closed is replaced without an error", "[client][pool]") {
  test_server s;
  s->set_keep_alive_timeout(1);
  s->Get("/v2/", [&](const httplib::Request&, httplib::Response& res) { res.set_content("{}", "application/json"); });
  s.start();
  registry_client c(options_for(s));
  REQUIRE(c.ping());
  std::this_thread::sleep_for(2500ms);  // the server closes its side
  REQUIRE(c.ping());
}

TEST_CASE("a blob upload streams its body with POST then one PUT", "[client][push]") {
  test_server s;
  const std::string blob = make_bytes(300 * 1024 + 5);
  const auto d = digest_of(blob);
  std::string received, digest_param, length_header;
  s->Post("/v2/a/blobs/uploads/", [&](const httplib::Request&, httplib::Response& res) {
    res.status = 202;
    res.set_header("Location", s.url() + "/v2/a/blobs/uploads/u1?_state=x%2Fy");
  });
  s->Put("/v2/a/blobs/uploads/u1", [&](const httplib::Request& req, httplib::Response& res) {
    received = req.body;
    digest_param = req.get_param_value("digest");
    length_header = req.get_header_value("Content-Length");
    if (req.get_param_value("_state") != "x/y") {
      res.status = 400;

      return;
    }
    res.status = 201;
  });
  s.start();
  registry_client c(options_for(s));
  std::size_t offset = 0, largest_read = 0;
  request_body body;
  body.length = blob.size();
  body.read = [&](char* buf, std::size_t cap) -> std::ptrdiff_t {
    largest_read = std::max(largest_read, cap);
    const auto n = std::min(cap, blob.size() - offset);
    std::memcpy(buf, blob.data() + offset, n);
    offset += n;
    return static_cast<std::ptrdiff_t>(n);
  };
  auto r = c.push_blob("a", d, body);
  INFO((r ? std::string() : r.error().str()));
  REQUIRE(r);
  CHECK(received == blob);
  CHECK(digest_param == d.str());
  CHECK(length_header == std::to_string(blob.size()));
  CHECK(largest_read <= 64 * 1024);
}

TEST_CASE("a mount is reported as done or not done", "[client][push]") {
  test_server s;
  std::string from_seen, mount_seen;
  s->Post("/v2/a/blobs/uploads/", [&](const httplib::Request& req, httplib::Response& res) {
    from_seen = req.get_param_value("from");
    mount_seen = req.get_param_value("mount");
    res.status = from_seen == "b/c" ? 201 : 202;
    res.set_header("Location", "/v2/a/blobs/uploads/u2");
  });
  s.start();
  registry_client c(options_for(s));
  const auto d = digest_of("x");
  auto m = c.mount_blob("a", d, "b/c");
  REQUIRE(m);
  CHECK(*m);
  CHECK(mount_seen == d.str());
  m = c.mount_blob("a", d, "other");
  REQUIRE(m);
  CHECK_FALSE(*m);
}

TEST_CASE("a manifest is pushed with its media type and the upstream's digest returned", "[client][push]") {
  test_server s;
  std::string type_seen, body_seen;
  s->Put("/v2/a/manifests/v1", [&](const httplib::Request& req, httplib::Response& res) {
    type_seen = req.get_header_value("Content-Type");
    body_seen = req.body;
    res.status = 201;
    res.set_header("Docker-Content-Digest", digest_of(req.body).str());
  });
  s.start();
  registry_client c(options_for(s));
  auto r = c.push_manifest("a", "v1", "application/vnd.oci.image.manifest.v1+json", manifest_body);
  REQUIRE(r);
  CHECK(*r == digest_of(manifest_body));
  CHECK(type_seen == "application/vnd.oci.image.manifest.v1+json");
  CHECK(body_seen == manifest_body);
}

TEST_CASE("tags and the catalog are read page by page following Link", "[client][list]") {
  test_server s;
  std::atomic<int> pages{0};
  s->Get("/v2/a/tags/list", [&](const httplib::Request& req, httplib::Response& res) {
    ++pages;
    const auto last = req.get_param_value("last");
    if (last.empty()) {
      res.set_header("Link", "</v2/a/tags/list?n=2&last=t2>; rel=\"next\"");
      res.set_content(R"({"name":"a","tags":["t1","t2"]})", "application/json");
    } else if (last == "t2") {
      res.set_header("Link", "<" + s.url() + "/v2/a/tags/list?n=2&last=t4>; rel=\"next\"");
      res.set_content(R"({"name":"a","tags":["t3","t4"]})", "application/json");
    } else {
      res.set_content(R"({"name":"a","tags":["t5"]})", "application/json");
    }
  });
  s->Get("/v2/_catalog", [&](const httplib::Request&, httplib::Response& res) {
    res.set_content(R"({"repositories":["a","b/c"]})", "application/json");
  });
  s->Get("/v2/empty/tags/list", [&](const httplib::Request&, httplib::Response& res) {
    res.set_content(R"({"name":"empty","tags":null})", "application/json");
  });
  s.start();
  registry_client c(options_for(s));
  auto tags = c.list_tags("a", 2);
  REQUIRE(tags);
  CHECK(*tags == std::vector<std::string>{"t1", "t2", "t3", "t4", "t5"});
  CHECK(pages == 3);
  auto limited = c.list_tags("a", 2, 3);
  REQUIRE(limited);
  CHECK(limited->size() == 3);
  auto repos = c.catalog();
  REQUIRE(repos);
  CHECK(*repos == std::vector<std::string>{"a", "b/c"});
  auto none = c.list_tags("empty");
  REQUIRE(none);
  CHECK(none->empty());
}

TEST_CASE("bad names and references are refused before anything is sent", "[client]") {
  client_options o;
  o.registry = "127.0.0.1:1";
  o.url_scheme = scheme::http;
  registry_client c(o);
  auto m = c.get_manifest("Bad Name", "v1");
  REQUIRE_FALSE(m);
  CHECK(m.error().kind == error_kind::invalid_argument);
  m = c.get_manifest("a", "sha256:nothex");
  REQUIRE_FALSE(m);
  CHECK(m.error().code == "DIGEST_INVALID");
  CHECK_THROWS_AS(registry_client(client_options{}), std::invalid_argument);
  client_options bad_ca = o;
  bad_ca.ca_pem = "not a certificate";
  CHECK_THROWS_AS(registry_client(bad_ca), std::invalid_argument);
}
