// The Direct mode end to end in-process: requests as the host hands them over (the C
// structures), a loopback upstream that checks what reaches it, and the answer as the host
// would send it (streams drained as the host drains them).
#include "direct_mode.hpp"
#include "test_upstream.hpp"

#include <registryd/oci/digest.hpp>
#include <registryd/oci/text_file.hpp>

#include <test_support.hpp>

#include <nlohmann/json.hpp>

#include <atomic>
#include <cstdlib>
#include <memory>
#include <thread>
#include <vector>
#include <map>
#include <mutex>

using namespace registryd;
using namespace registryd::direct;
using namespace registryd::direct::test;
using namespace std::chrono_literals;
using nlohmann::json;

namespace {

// A request as the host builds it for handle().
class fake_request {
 public:
  fake_request(std::string method, std::string path, std::string query = {},
               std::vector<std::pair<std::string, std::string>> headers = {})
      : method_(std::move(method)), path_(std::move(path)), query_(std::move(query)), headers_(std::move(headers)) {
    for (const auto& [n, v] : headers_) abi_headers_.push_back({sdk::to_abi(n), sdk::to_abi(v)});
    r_.struct_size = sizeof r_;
    r_.method = sdk::to_abi(method_);
    r_.path = sdk::to_abi(path_);
    r_.query = sdk::to_abi(query_);
    r_.headers = abi_headers_.data();
    r_.header_count = abi_headers_.size();
    r_.remote_addr = sdk::to_abi(remote_);
    r_.user = sdk::to_abi(user_);
    r_.access = REGISTRYD_ACCESS_PULL;
    r_.body = nullptr;
  }
  fake_request(const fake_request&) = delete;
  fake_request& operator=(const fake_request&) = delete;
  sdk::request view() const { return sdk::request(&r_); }
  // The client address the host saw (127.0.0.1 unless set).
  fake_request& from(std::string address) {
    remote_ = std::move(address);
    r_.remote_addr = sdk::to_abi(remote_);
    return *this;
  }

 private:
  std::string method_, path_, query_, remote_ = "127.0.0.1", user_ = "reader";
  std::vector<std::pair<std::string, std::string>> headers_;
  std::vector<registryd_header> abi_headers_;
  registryd_request r_{};
};

// What the plugin answered, with a stream drained the way the host drains it.
struct recorded {
  int status = 200;
  std::multimap<std::string, std::string> headers;
  std::string content_type;
  std::string body;
  bool streamed = false;
  std::int64_t stream_length = -2;
  bool stream_failed = false;
  registryd_stream stream{};

  std::string header(const std::string& name) const {
    for (const auto& [n, v] : headers) {
      if (oci::client::iequals(n, name)) return v;
    }
    return "<absent>";
  }
  json json_body() const { return json::parse(body); }

  registryd_response_writer writer() {
    registryd_response_writer w{};
    w.struct_size = sizeof w;
    w.ctx = this;
    w.set_status = [](void* c, int s) {
      static_cast<recorded*>(c)->status = s;
      return 0;
    };
    w.add_header = [](void* c, registryd_str n, registryd_str v) {
      auto* self = static_cast<recorded*>(c);
      self->headers.emplace(std::string(n.data, n.size), std::string(v.data, v.size));
      if (oci::client::iequals(std::string_view(n.data, n.size), "Content-Type")) self->content_type.assign(v.data, v.size);
      return 0;
    };
    w.send_bytes = [](void* c, registryd_str ct, registryd_str b) {
      auto* self = static_cast<recorded*>(c);
      self->content_type.assign(ct.data, ct.size);
      self->body.assign(b.data, b.size);
      return 0;
    };
    w.send_stream = [](void* c, registryd_str ct, int64_t length, registryd_stream s) {
      auto* self = static_cast<recorded*>(c);
      self->content_type.assign(ct.data, ct.size);
      self->streamed = true;
      self->stream_length = length;
      self->stream = s;
      return 0;
    };
    w.send_file = [](void*, registryd_str, int, uint64_t, uint64_t) { return -1; };
    return w;
  }

  // Pulls the stream to its end (or `limit` bytes) and closes it, as the host does.
  void drain(std::size_t limit = SIZE_MAX) {
    if (!streamed) return;
    std::vector<char> buf(256 * 1024);
    while (body.size() < limit) {
      const auto n = stream.read(stream.ctx, buf.data(), buf.size());
      if (n < 0) {
        stream_failed = true;
        break;
      }
      if (n == 0) break;
      body.append(buf.data(), static_cast<std::size_t>(n));
    }
    stream.close(stream.ctx);
    streamed = false;
  }
};

struct log_capture {
  std::mutex mutex;
  std::string text;
  registryd_host_api api{REGISTRYD_PLUGIN_ABI_MAJOR, REGISTRYD_PLUGIN_ABI_MINOR, sizeof(registryd_host_api), this,
                         [](void* ctx, registryd_log_level, registryd_str m) {
                           auto* self = static_cast<log_capture*>(ctx);
                           std::lock_guard lock(self->mutex);
                           self->text.append(m.data, m.size).append("\n");
                         }};
  std::string get() {
    std::lock_guard lock(mutex);
    return text;
  }
};

// What `mode` answers `req`. Its stream is drained as the host drains it, unless `drain` is
// false: then the relay stays in flight until the caller drains it.
std::unique_ptr<recorded> answer(direct_mode& mode, const fake_request& req, bool drain = true) {
  auto rec = std::make_unique<recorded>();
  auto w = rec->writer();
  sdk::response res(&w);
  mode.handle(req.view(), res);
  if (drain) rec->drain();
  return rec;
}

json settings_for(const std::string& upstream, json extra_section = json::object()) {
  json section = {{"imagesRepo", upstream + "/deckhouse/ee"}, {"scheme", "HTTP"}, {"checkMode", "Default"},
                  {"username", "puller"}, {"password", "s3cret"}};
  section.update(extra_section);
  return json{{"mode", "Direct"},
              {"legacy", false},
              {"section", section},
              {"host",
               {{"fixedHost", "registry.d8-system.svc:5001"},
                {"fixedRepository", "system/deckhouse"},
                {"masters", {"192.0.2.10", "192.0.2.11"}},
                {"nodeIP", "192.0.2.10"}}}};
}

const std::string manifest =
    R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{},"layers":[]})";
const std::string manifest_type = "application/vnd.oci.image.manifest.v1+json";
// Basic puller:s3cret
const std::string upstream_auth = "Basic cHVsbGVyOnMzY3JldA==";

// An upstream with basic auth that serves deckhouse/ee: a manifest `v1`, a blob, a tag list.
struct upstream_registry {
  test_upstream server;
  std::string blob = make_bytes(5 * 1024 * 1024 + 3);
  std::string blob_digest = oci::digest_of(blob).str();
  std::mutex mutex;
  std::vector<std::string> authorizations, accepts, ranges, targets;

  bool authorized(const httplib::Request& req, httplib::Response& res) {
    {
      std::lock_guard lock(mutex);
      authorizations.push_back(req.get_header_value("Authorization"));
      accepts.push_back(req.get_header_value("Accept"));
      ranges.push_back(req.get_header_value("Range"));
      targets.push_back(req.target);
    }
    if (req.get_header_value("Authorization") == upstream_auth) return true;
    // httplib would apply a Range to this error body too (and answer 416); registries do not.
    const_cast<httplib::Request&>(req).ranges.clear();
    res.status = 401;
    res.set_header("WWW-Authenticate", "Basic realm=\"upstream\"");
    res.set_content(R"({"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]})", "application/json");
    return false;
  }

  upstream_registry() {
    server->Get("/v2/deckhouse/ee/manifests/v1", [this](const httplib::Request& req, httplib::Response& res) {
      if (!authorized(req, res)) return;
      res.set_header("Docker-Content-Digest", oci::digest_of(manifest).str());
      res.set_header("ETag", "\"" + oci::digest_of(manifest).str() + "\"");
      res.set_header("X-Upstream-Secret", "internal");
      res.set_content(manifest, manifest_type.c_str());
    });
    // By digest: the right bytes, and for another digest the same (wrong) bytes.
    server->Get("/v2/deckhouse/ee/manifests/" + oci::digest_of(manifest).str(),
                [this](const httplib::Request& req, httplib::Response& res) {
                  if (!authorized(req, res)) return;
                  res.set_content(manifest, manifest_type.c_str());
                });
    server->Get("/v2/deckhouse/ee/manifests/" + oci::digest_of("other").str(),
                [this](const httplib::Request& req, httplib::Response& res) {
                  if (!authorized(req, res)) return;
                  res.set_content(manifest, manifest_type.c_str());
                });
    server->Get(R"(/v2/deckhouse/ee/manifests/(.*))", [this](const httplib::Request& req, httplib::Response& res) {
      if (!authorized(req, res)) return;
      res.status = 404;
      res.set_content(R"({"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{"Tag":")" +
                          std::string(req.matches[1]) + R"("}}]})",
                      "application/json");
    });
    server->Get("/v2/deckhouse/ee/blobs/" + blob_digest, [this](const httplib::Request& req, httplib::Response& res) {
      if (!authorized(req, res)) return;
      res.set_header("Docker-Content-Digest", blob_digest);
      // httplib answers a Range itself: 206, Content-Range, the slice.
      res.set_content(blob, "application/octet-stream");
    });
    server->Get("/v2/deckhouse/ee/install/tags/list", [this](const httplib::Request& req, httplib::Response& res) {
      if (!authorized(req, res)) return;
      res.set_header("Link", "</v2/deckhouse/ee/install/tags/list?last=v1&n=1>; rel=\"next\"");
      res.set_content(R"({"name":"deckhouse/ee/install","tags":["v1"]})", "application/json");
    });
    server.start();
  }
};

struct direct_fixture {
  upstream_registry up;
  log_capture logs;
  sdk::host host{&logs.api};
  direct_mode mode{host, settings_for(up.server.authority())};

  recorded call(std::string method, std::string path, std::string query = {},
                std::vector<std::pair<std::string, std::string>> headers = {}) {
    fake_request req(std::move(method), std::move(path), std::move(query), std::move(headers));
    return std::move(*answer(mode, req));
  }
};

}  // namespace

TEST_CASE("a manifest streams through with its headers, authenticated upstream with the section's credentials", "[direct]") {
  direct_fixture f;
  const auto r = f.call("GET", "/v2/system/deckhouse/manifests/v1", "ns=registry.d8-system.svc%3A5001",
                        {{"Accept", manifest_type}, {"Accept", "application/vnd.oci.image.index.v1+json"},
                         {"Authorization", "Basic cmVhZGVyOnJwYXNz"}});
  CHECK(r.status == 200);
  CHECK(r.body == manifest);
  CHECK(r.content_type == manifest_type);
  CHECK(r.stream_length == static_cast<std::int64_t>(manifest.size()));
  CHECK_FALSE(r.stream_failed);
  CHECK(r.header("Docker-Content-Digest") == oci::digest_of(manifest).str());
  CHECK(r.header("ETag") == "\"" + oci::digest_of(manifest).str() + "\"");
  CHECK(r.header("X-Upstream-Secret") == "<absent>");

  std::lock_guard lock(f.up.mutex);
  // Anonymous first, then the section's credentials once the upstream asked: never the client's.
  REQUIRE(f.up.authorizations.size() == 2);
  CHECK(f.up.authorizations[0].empty());
  CHECK(f.up.authorizations[1] == upstream_auth);
  CHECK(f.up.accepts.back() == manifest_type + ", application/vnd.oci.image.index.v1+json");
  CHECK(f.up.targets.back() == "/v2/deckhouse/ee/manifests/v1");  // containerd's ns= stays here
}

TEST_CASE("a manifest asked for by digest reaches the client only if its bytes match", "[direct]") {
  direct_fixture f;
  auto r = f.call("GET", "/v2/system/deckhouse/manifests/" + oci::digest_of(manifest).str());
  CHECK(r.status == 200);
  CHECK(r.body == manifest);
  CHECK_FALSE(r.stream_failed);

  r = f.call("GET", "/v2/system/deckhouse/manifests/" + oci::digest_of("other").str());
  CHECK(r.status == 200);  // the head went out before the last byte could be checked
  CHECK(r.stream_failed);
  CHECK(r.body.size() < manifest.size());
  CHECK_THAT(f.logs.get(), Catch::Contains("hash to " + oci::digest_of(manifest).str()));
  std::string m;
  f.mode.metrics(m);
  CHECK_THAT(m, Catch::Contains("registryd_direct_upstream_errors_total{kind=\"body\"} 1"));
}

TEST_CASE("HEAD answers the upstream's length and digest with no body", "[direct]") {
  direct_fixture f;
  const auto r = f.call("HEAD", "/v2/system/deckhouse/blobs/" + f.up.blob_digest);
  CHECK(r.status == 200);
  CHECK(r.header("Content-Length") == std::to_string(f.up.blob.size()));
  CHECK(r.header("Docker-Content-Digest") == f.up.blob_digest);
  CHECK(r.body.empty());
  CHECK(r.stream_length == -2);  // no stream was handed over
}

TEST_CASE("a blob streams through whole and counted in the metrics", "[direct]") {
  direct_fixture f;
  const auto r = f.call("GET", "/v2/system/deckhouse/blobs/" + f.up.blob_digest);
  CHECK(r.status == 200);
  CHECK(r.stream_length == static_cast<std::int64_t>(f.up.blob.size()));
  CHECK(r.body.size() == f.up.blob.size());
  CHECK((r.body == f.up.blob));
  CHECK(f.mode.counters().bytes_total() == f.up.blob.size());
  std::string m;
  f.mode.metrics(m);
  CHECK_THAT(m, Catch::Contains("registryd_direct_requests_total{route=\"blob\",method=\"GET\"} 1"));
  CHECK_THAT(m, Catch::Contains("registryd_direct_bytes_total " + std::to_string(f.up.blob.size())));
  CHECK_THAT(m, Catch::Contains("registryd_direct_streams_active 0"));
  CHECK_THAT(m, Catch::Contains("registryd_direct_streams_abandoned_total 0"));
}

TEST_CASE("a Range goes upstream and its 206 comes back with Content-Range", "[direct]") {
  direct_fixture f;
  const auto r = f.call("GET", "/v2/system/deckhouse/blobs/" + f.up.blob_digest, {}, {{"Range", "bytes=1000-"}});
  CHECK(r.status == 206);
  CHECK(r.header("Content-Range") ==
        "bytes 1000-" + std::to_string(f.up.blob.size() - 1) + "/" + std::to_string(f.up.blob.size()));
  CHECK(r.stream_length == static_cast<std::int64_t>(f.up.blob.size() - 1000));
  CHECK((r.body == f.up.blob.substr(1000)));  // a partial answer is not checked against the digest
  CHECK_FALSE(r.stream_failed);
  std::lock_guard lock(f.up.mutex);
  CHECK(f.up.ranges.back() == "bytes=1000-");
}

TEST_CASE("a client that leaves mid-blob ends the upstream transfer and is counted", "[direct]") {
  direct_fixture f;
  fake_request req("GET", "/v2/system/deckhouse/blobs/" + f.up.blob_digest);
  recorded rec;
  auto w = rec.writer();
  sdk::response res(&w);
  f.mode.handle(req.view(), res);
  const auto t0 = std::chrono::steady_clock::now();
  rec.drain(256 * 1024);
  CHECK(std::chrono::steady_clock::now() - t0 < 2s);
  std::string m;
  f.mode.metrics(m);
  CHECK_THAT(m, Catch::Contains("registryd_direct_streams_abandoned_total 1"));
  CHECK_THAT(m, Catch::Contains("registryd_direct_streams_active 0"));
}

TEST_CASE("an upstream 404 is passed on as MANIFEST_UNKNOWN naming the client's repository", "[direct]") {
  direct_fixture f;
  const auto r = f.call("GET", "/v2/system/deckhouse/manifests/nope");
  CHECK(r.status == 404);
  const auto e = r.json_body()["errors"][0];
  CHECK(e["code"] == "MANIFEST_UNKNOWN");
  CHECK(e["message"] == "manifest unknown: system/deckhouse:nope");
  CHECK(e["detail"] == json{{"Tag", "nope"}});
  CHECK(r.body.find("deckhouse/ee") == std::string::npos);

  const auto h = f.call("HEAD", "/v2/system/deckhouse/manifests/nope");
  CHECK(h.status == 404);
  CHECK(h.body.empty());
}

TEST_CASE("a tag list names the client's repository and pages through registryd", "[direct]") {
  direct_fixture f;
  const auto r = f.call("GET", "/v2/system/deckhouse/install/tags/list", "n=1");
  CHECK(r.status == 200);
  CHECK(r.json_body() == json{{"name", "system/deckhouse/install"}, {"tags", {"v1"}}});
  CHECK(r.header("Link") == "</v2/system/deckhouse/install/tags/list?last=v1&n=1>; rel=\"next\"");
  std::lock_guard lock(f.up.mutex);
  CHECK(f.up.targets.back() == "/v2/deckhouse/ee/install/tags/list?n=1");
}

TEST_CASE("push, other repositories and the catalog are answered without the upstream", "[direct]") {
  direct_fixture f;
  auto r = f.call("PUT", "/v2/system/deckhouse/manifests/v2");
  CHECK(r.status == 405);
  CHECK(r.json_body()["errors"][0]["code"] == "UNSUPPORTED");
  r = f.call("POST", "/v2/system/deckhouse/blobs/uploads/");
  CHECK(r.status == 405);
  r = f.call("GET", "/v2/library/alpine/manifests/latest");
  CHECK(r.status == 404);
  CHECK(r.json_body()["errors"][0]["code"] == "NAME_UNKNOWN");
  r = f.call("GET", "/v2/_catalog");
  CHECK(r.status == 405);
  std::lock_guard lock(f.up.mutex);
  CHECK(f.up.targets.empty());
}

TEST_CASE("an upstream that refuses registryd's credentials is a 502 with no challenge for the client", "[direct]") {
  upstream_registry up;
  log_capture logs;
  direct_mode mode(sdk::host(&logs.api), settings_for(up.server.authority(), {{"password", "wrong"}}));
  fake_request req("GET", "/v2/system/deckhouse/manifests/v1");
  recorded rec;
  auto w = rec.writer();
  sdk::response res(&w);
  mode.handle(req.view(), res);
  CHECK(rec.status == 502);
  CHECK(rec.header("WWW-Authenticate") == "<absent>");
  const auto e = rec.json_body()["errors"][0];
  CHECK(e["code"] == "UNAUTHORIZED");
  CHECK_THAT(e["message"].get<std::string>(), Catch::Contains("refused registryd's credentials"));
  CHECK_THAT(logs.get(), Catch::Contains("refused registryd's credentials"));
  std::string m;
  mode.metrics(m);
  CHECK_THAT(m, Catch::Contains("registryd_direct_upstream_errors_total{kind=\"unauthorized\"} 1"));
}

TEST_CASE("a stopped upstream is a 503 UNAVAILABLE within a second", "[direct]") {
  log_capture logs;
  direct_mode mode(sdk::host(&logs.api), settings_for("127.0.0.1:" + std::to_string(closed_port())));
  fake_request req("GET", "/v2/system/deckhouse/manifests/v1");
  recorded rec;
  auto w = rec.writer();
  sdk::response res(&w);
  const auto t0 = std::chrono::steady_clock::now();
  mode.handle(req.view(), res);
  CHECK(std::chrono::steady_clock::now() - t0 < 1s);
  CHECK(rec.status == 503);
  const auto e = rec.json_body()["errors"][0];
  CHECK(e["code"] == "UNAVAILABLE");
  CHECK_THAT(e["message"].get<std::string>(), Catch::Contains("is unreachable: cannot connect to"));
  CHECK(e["detail"]["failure"] == "connect");
  CHECK_THAT(logs.get(), Catch::Contains("connect:"));
}

TEST_CASE("containerd on the nodes pulls through the masters with the registry CA", "[direct]") {
  registryd::test::scratch_dir dir;
  const std::string ca = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
  registryd::test::spill(dir / "ca.crt", ca);
  auto doc = settings_for("registry.example.com");
  doc["host"]["caFile"] = (dir / "ca.crt").string();
  doc["host"]["masters"] = {"192.0.2.10", "2001:db8::1"};
  direct_mode mode(sdk::host(nullptr), doc);
  const auto d = mode.containerd_config();
  REQUIRE(d);
  const json want = {{"hosts",
                      {{{"host", "registry.d8-system.svc:5001"},
                        {"mirrors",
                         {{{"url", "https://192.0.2.10:5001"}, {"capabilities", {"pull", "resolve"}}, {"ca", ca}},
                          {{"url", "https://[2001:db8::1]:5001"}, {"capabilities", {"pull", "resolve"}}, {"ca", ca}}}}}}}};
  CHECK(*d == want);
  // No credentials or rewrites: nodes authenticate to registryd, which maps the path itself.
  CHECK(d->dump().find("auth") == std::string::npos);
  CHECK(d->dump().find("rewrite") == std::string::npos);

  doc["host"]["caFile"] = (dir / "missing.crt").string();
  direct_mode no_ca(sdk::host(nullptr), doc);
  CHECK_THROWS_WITH(no_ca.containerd_config(), Catch::Contains("cannot be read"));
}

TEST_CASE("with the patched containerd the nodes go straight to the upstream first, path rewritten and with "
          "its credentials, and the masters stay as the next mirrors",
          "[direct]") {
  registryd::test::scratch_dir dir;
  const std::string ca = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
  registryd::test::spill(dir / "ca.crt", ca);
  auto doc = settings_for("registry.example.com");
  doc["host"]["caFile"] = (dir / "ca.crt").string();
  doc["host"]["masters"] = {"192.0.2.10"};
  doc["host"]["containerdBuild"] = "patched";
  const auto d = direct_mode(sdk::host(nullptr), doc).containerd_config();
  REQUIRE(d);
  const json mirrors = (*d)["hosts"][0]["mirrors"];
  REQUIRE(mirrors.size() == 2);
  CHECK(mirrors[0] == json{{"url", "http://registry.example.com"},
                           {"capabilities", {"pull", "resolve"}},
                           {"skipVerify", true},
                           {"auth", {{"username", "puller"}, {"password", "s3cret"}}},
                           {"rewrites", {{{"regex", "^system/deckhouse"}, {"replace", "deckhouse/ee"}}}}});
  CHECK(mirrors[1]["url"] == "https://192.0.2.10:5001");
  CHECK_FALSE(mirrors[1].contains("auth"));

  // Over HTTPS the upstream's own CA (section.ca) is the one trusted, not the registry CA.
  const auto key = dir / "upstream-ca.key", cert = dir / "upstream-ca.crt";
  REQUIRE(std::system(("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 "
                       "-subj /CN=upstream-ca -keyout '" + key.string() + "' -out '" + cert.string() +
                       "' >/dev/null 2>&1").c_str()) == 0);
  const std::string upstream_ca = registryd::oci::read_text_file(cert.string()).value();
  auto tls = settings_for("registry.example.com", {{"scheme", "HTTPS"}, {"ca", upstream_ca}});
  tls["host"] = doc["host"];
  const auto t = direct_mode(sdk::host(nullptr), tls).containerd_config();
  REQUIRE(t);
  CHECK((*t)["hosts"][0]["mirrors"][0]["url"] == "https://registry.example.com");
  CHECK((*t)["hosts"][0]["mirrors"][0]["ca"] == upstream_ca);

  doc["host"]["containerdBuild"] = "forked";
  CHECK_THROWS_WITH(direct_mode::validate(doc), Catch::Contains("host.containerdBuild"));
}

TEST_CASE("bad settings are refused naming the field", "[direct]") {
  auto doc = settings_for("registry.example.com");
  doc["section"]["scheme"] = "FTP";
  CHECK_THROWS_WITH(direct_mode::validate(doc), Catch::Contains("section.scheme"));
  doc = settings_for("registry.example.com");
  doc["section"].erase("imagesRepo");
  CHECK_THROWS_WITH(direct_mode::validate(doc), Catch::Contains("section.imagesRepo"));
  doc = settings_for("registry.example.com");
  doc["section"] = nullptr;
  CHECK_THROWS_WITH(direct_mode::validate(doc), Catch::Contains("section: is required"));
  doc = settings_for("registry.example.com");
  doc["host"]["masters"] = "192.0.2.1";
  CHECK_THROWS_WITH(direct_mode::validate(doc), Catch::Contains("host.masters"));
  doc = settings_for("registry.example.com", {{"ca", "not a certificate"}, {"scheme", "HTTPS"}});
  CHECK_THROWS_AS(direct_mode(sdk::host(nullptr), doc), std::invalid_argument);

  doc = settings_for("registry.example.com");
  doc["section"].erase("username");
  doc["section"].erase("password");
  doc["section"]["license"] = "LICENSE-KEY";
  const auto s = parse_settings(doc);
  REQUIRE(s.upstream.options.auth);
  CHECK(s.upstream.options.auth->username == "license-token");
  CHECK(s.upstream.options.auth->password == "LICENSE-KEY");
  CHECK(s.upstream.options.connect_timeout == upstream_connect_timeout);
  CHECK(s.max_relays == 1024);
  CHECK(s.max_relays_per_client == 128);
  CHECK(s.max_relays_waiting == 32);

  doc = settings_for("registry.example.com");
  doc["host"]["directMaxRelaysPerClient"] = 0;
  CHECK_THROWS_WITH(direct_mode::validate(doc), Catch::Contains("host.directMaxRelaysPerClient"));
  doc["host"]["directMaxRelaysPerClient"] = 4;
  doc["host"]["directMaxRelays"] = "many";
  CHECK_THROWS_WITH(direct_mode::validate(doc), Catch::Contains("host.directMaxRelays"));
}

TEST_CASE("relays waiting for a slow upstream's answer are bounded, so they cannot take every worker", "[direct]") {
  test_upstream slow;
  slow->Get(R"(/v2/deckhouse/ee/manifests/(.*))", [](const httplib::Request&, httplib::Response& res) {
    std::this_thread::sleep_for(1500ms);
    res.set_content(manifest, manifest_type.c_str());
  });
  slow.start();
  log_capture logs;
  auto doc = settings_for(slow.authority());
  doc["host"]["directMaxRelaysWaiting"] = 2;
  direct_mode mode(sdk::host(&logs.api), doc);
  const auto get = [&](const std::string& address) {
    fake_request req("GET", "/v2/system/deckhouse/manifests/v1");
    req.from(address);
    return std::move(*answer(mode, req));
  };
  // Two handlers wait on their workers for the upstream's head; a third is refused at once.
  std::vector<std::thread> waiting;
  std::atomic<int> answered{0};
  for (int i = 0; i < 2; ++i) {
    waiting.emplace_back([&, i] {
      if (get("192.0.2." + std::to_string(i + 1)).status == 200) ++answered;
    });
  }
  std::this_thread::sleep_for(300ms);
  std::string m;
  mode.metrics(m);
  CHECK_THAT(m, Catch::Contains("registryd_direct_relays_waiting 2\n"));
  const auto started = std::chrono::steady_clock::now();
  const auto refused = get("192.0.2.9");
  CHECK(std::chrono::steady_clock::now() - started < 200ms);
  CHECK(refused.status == 503);
  CHECK(refused.header("Retry-After") == "1");
  CHECK(refused.json_body()["errors"][0]["code"] == "UNAVAILABLE");
  CHECK_THAT(refused.json_body()["errors"][0]["message"].get<std::string>(), Catch::Contains("direct_max_relays_waiting"));
  for (auto& t : waiting) t.join();
  CHECK(answered == 2);
  // Once the upstream answered them, the places are free again.
  CHECK(get("192.0.2.9").status == 200);
  m.clear();
  mode.metrics(m);
  CHECK_THAT(m, Catch::Contains("registryd_direct_relays_waiting 0\n"));
  CHECK_THAT(m, Catch::Contains("registryd_direct_relays_refused_total{limit=\"waiting\"} 1\n"));
}

TEST_CASE("relays in flight are bounded in all and per client address, each place held until its answer was read",
          "[direct]") {
  upstream_registry up;
  log_capture logs;
  auto doc = settings_for(up.server.authority());
  doc["host"]["directMaxRelays"] = 3;
  doc["host"]["directMaxRelaysPerClient"] = 2;
  direct_mode mode(sdk::host(&logs.api), doc);
  const std::string blob = "/v2/system/deckhouse/blobs/" + up.blob_digest;

  // A blob GET whose answer is not read: its relay stays in flight.
  std::vector<std::unique_ptr<recorded>> held;
  const auto get = [&](const std::string& address, const std::string& path) {
    fake_request req("GET", path);
    req.from(address);
    return answer(mode, req, false);
  };
  const auto metric = [&](const std::string& line) {
    std::string m;
    mode.metrics(m);
    return m.find(line + "\n") != std::string::npos;
  };

  held.push_back(get("192.0.2.1", blob));
  held.push_back(get("192.0.2.1", blob));
  REQUIRE(held[0]->streamed);
  REQUIRE(held[1]->streamed);
  CHECK(metric("registryd_direct_relays_in_flight 2"));

  // A third from the same address: 429, told when to come back, the upstream not asked.
  std::size_t asked = 0;
  {
    std::lock_guard lock(up.mutex);
    asked = up.targets.size();
  }
  auto refused = get("192.0.2.1", blob);
  CHECK(refused->status == 429);
  CHECK(refused->header("Retry-After") == "1");
  CHECK(refused->json_body()["errors"][0]["code"] == "TOOMANYREQUESTS");
  CHECK_FALSE(refused->streamed);
  {
    std::lock_guard lock(up.mutex);
    CHECK(up.targets.size() == asked);
  }

  // Another address still has room until the total is reached: then 503.
  held.push_back(get("192.0.2.2", blob));
  REQUIRE(held[2]->streamed);
  auto full = get("192.0.2.3", blob);
  CHECK(full->status == 503);
  CHECK(full->header("Retry-After") == "1");
  CHECK(full->json_body()["errors"][0]["code"] == "UNAVAILABLE");
  CHECK(metric("registryd_direct_relays_refused_total{limit=\"per_client\"} 1"));
  CHECK(metric("registryd_direct_relays_refused_total{limit=\"total\"} 1"));

  // Reading an answer to its end gives its place back.
  held[0]->drain();
  CHECK((held[0]->body == up.blob));
  CHECK(metric("registryd_direct_relays_in_flight 2"));
  auto again = get("192.0.2.1", blob);
  REQUIRE(again->streamed);
  again->drain();
  CHECK((again->body == up.blob));

  // A client that leaves mid-answer gives it back too; so does an answer with no body.
  held[1]->drain(64 * 1024);
  held[2]->drain(64 * 1024);
  CHECK(metric("registryd_direct_relays_in_flight 0"));
  for (int i = 0; i < 5; ++i) {
    fake_request head("HEAD", blob);
    head.from("192.0.2.1");
    CHECK(answer(mode, head)->status == 200);
  }
  CHECK(metric("registryd_direct_relays_in_flight 0"));
}
