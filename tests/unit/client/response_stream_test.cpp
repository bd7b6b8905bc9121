#include <registryd/oci/client/response_stream.hpp>

#include <catch2/catch.hpp>
#include <httplib.h>

#include <chrono>
#include <thread>

using namespace registryd::oci::client;
using namespace std::chrono_literals;

namespace {

class server {
 public:
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
  client_options options() const {
    client_options o;
    o.registry = "127.0.0.1:" + std::to_string(port_);
    o.url_scheme = scheme::http;
    return o;
  }
  int port() const { return port_; }

 private:
  httplib::Server svr_;
  std::thread t_;
  int port_ = 0;
};

std::string read_all(response_stream& s, std::size_t chunk = 10000) {
  std::string out(chunk, '\0'), all;
  for (;;) {
    const auto n = s.read(out.data(), out.size());
    REQUIRE(n >= 0);
    if (n == 0) return all;
    all.append(out.data(), static_cast<std::size_t>(n));
  }
}

}  // namespace

TEST_CASE("a pulled stream gives the head first, then the whole body through a small buffer", "[client][stream]") {
  server s;
  std::string blob(3 * 1024 * 1024 + 7, '\0');
  for (std::size_t i = 0; i < blob.size(); ++i) blob[i] = static_cast<char>(i * 31);
  s->Get("/v2/a/blobs/x", [&](const httplib::Request&, httplib::Response& res) {
    res.set_header("X-Upstream", "1");
    res.set_content(blob, "application/octet-stream");
  });
  s.start();
  registry_client c(s.options());
  request req;
  req.target = "/v2/a/blobs/x";
  auto st = response_stream::open(c, req, 64 * 1024);
  REQUIRE(st);
  auto& stream = **st;
  CHECK(stream.head().status == 200);
  CHECK(stream.head().headers.get("X-Upstream") == "1");
  CHECK(stream.head().headers.get("Content-Length") == std::to_string(blob.size()));
  std::this_thread::sleep_for(50ms);  // the reader is slow: the worker waits, memory stays bounded
  CHECK(read_all(stream, 7777) == blob);
  CHECK_FALSE(stream.error());
}

TEST_CASE("an upstream error answer is a stream of its own, passed on as it is", "[client][stream]") {
  server s;
  s->Get("/v2/a/manifests/v1", [&](const httplib::Request&, httplib::Response& res) {
    res.status = 404;
    res.set_content(R"({"errors":[{"code":"MANIFEST_UNKNOWN","message":"no"}]})", "application/json");
  });
  s.start();
  registry_client c(s.options());
  request req;
  req.target = "/v2/a/manifests/v1";
  auto st = response_stream::open(c, req);
  REQUIRE(st);
  CHECK((*st)->head().status == 404);
  CHECK(read_all(**st) == R"({"errors":[{"code":"MANIFEST_UNKNOWN","message":"no"}]})");
  CHECK_FALSE((*st)->error());
}

TEST_CASE("a stream that cannot open returns the transport error", "[client][stream]") {
  int port = 0;
  {
    server s;
    s.start();
    port = s.port();
  }
  client_options o;
  o.registry = "127.0.0.1:" + std::to_string(port);
  o.url_scheme = scheme::http;
  registry_client c(o);
  request req;
  req.target = "/v2/";
  auto st = response_stream::open(c, req);
  REQUIRE_FALSE(st);
  CHECK(st.error().kind == error_kind::connect);
}

TEST_CASE("dropping a stream midway stops the transfer at once", "[client][stream]") {
  server s;
  s->Get("/v2/a/blobs/endless", [&](const httplib::Request&, httplib::Response& res) {
    res.set_chunked_content_provider("application/octet-stream", [](std::size_t, httplib::DataSink& sink) {
      static const std::string piece(16 * 1024, 'z');
      std::this_thread::sleep_for(1ms);
      return sink.write(piece.data(), piece.size());
    });
  });
  s.start();
  registry_client c(s.options());
  request req;
  req.target = "/v2/a/blobs/endless";
  auto st = response_stream::open(c, req, 64 * 1024);
  REQUIRE(st);
  char buf[1000];
  REQUIRE((*st)->read(buf, sizeof buf) > 0);
  const auto start = std::chrono::steady_clock::now();
  st.value().reset();
  CHECK(std::chrono::steady_clock::now() - start < 2s);
}
