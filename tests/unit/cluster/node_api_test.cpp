// The masters' node endpoints (node_api.hpp) against a real etcd: a join spends its token and
// buys a certificate; a renewal needs a node certificate of a joined node and gives a new one
// for the same node, for the CSR's key, with the configured lifetime.
#include "etcd_process.hpp"

#include <registryd/cluster/node_api.hpp>
#include <registryd/pki/certificates.hpp>
#include <registryd/pki/pki_directory.hpp>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <openssl/x509.h>
#include <spdlog/sinks/null_sink.h>

#include <atomic>
#include <map>
#include <mutex>
#include <stdexcept>
#include <thread>

using namespace registryd;
using nlohmann::json;
using registryd::test::etcd_process;
using registryd::test::open_store;
using registryd::test::scratch_dir;

namespace {

// "/O=registryd-node/CN=<node>", as the front door passes a verified client certificate on.
std::string subject_of(const std::string& certificate_pem) {
  auto certs = pki::certificates_from_pem(certificate_pem);
  REQUIRE(certs);
  char* line = X509_NAME_oneline(X509_get_subject_name(certs->front().get()), nullptr, 0);
  std::string out = line;
  OPENSSL_free(line);
  return out;
}

// A running etcd and the cluster CA the node endpoints sign with.
struct cluster_with_ca {
  scratch_dir dir;
  etcd_process etcd{dir.path()};
  std::shared_ptr<cluster::store> store = open_store(etcd.url());
  std::filesystem::path pki_dir = dir.path() / "pki";

  cluster_with_ca() {
    pki::pki_options o;
    o.dir = pki_dir;
    REQUIRE(pki::ensure(o, pki::serving_names("127.0.0.1", {}).value(), pki::clock::now()));
  }
};

}  // namespace

TEST_CASE("node endpoints: join with a token, renew with the node certificate, and strangers are refused") {
  cluster_with_ca c;
  const auto& s = c.store;
  const cluster::master_api api(
      s, c.pki_dir, [] { return cluster::master_view{}; },
      std::make_shared<spdlog::logger>("test", std::make_shared<spdlog::sinks::null_sink_mt>()),
      std::chrono::hours(2));

  const auto key = pki::generate_p256_key().value();
  const auto csr = pki::make_csr_pem(key.get(), "n1").value();
  const auto token = cluster::create_join_token(*s, std::chrono::minutes(5)).value();
  const auto joined = api.handle("POST", "/cluster/v1/join", "", "", "10.0.0.21",
                                 json{{"token", token}, {"node", "n1"}, {"csr", csr}}.dump());
  REQUIRE(joined.status == 200);
  const std::string first = json::parse(joined.body).at("certificate");
  const std::string subject = subject_of(first);
  CHECK(cluster::node_of(subject) == "n1");
  // The token is spent.
  CHECK(api.handle("POST", "/cluster/v1/join", "", "", "10.0.0.21",
                   json{{"token", token}, {"node", "n1"}, {"csr", csr}}.dump()).status == 401);

  // Renewal: a new key, the same node, the configured lifetime.
  const auto key2 = pki::generate_p256_key().value();
  const std::string first_serial = pki::serial_hex(pki::certificates_from_pem(first).value().front().get());
  const auto renewed = api.handle("POST", "/cluster/v1/node/certificate", subject, first_serial, "10.0.0.21",
                                  json{{"csr", pki::make_csr_pem(key2.get(), "n1").value()}}.dump());
  REQUIRE(renewed.status == 200);
  const std::string second = json::parse(renewed.body).at("certificate");
  auto cert = pki::certificates_from_pem(second).value();
  CHECK(pki::key_matches(cert.front().get(), key2.get()));
  CHECK(subject_of(second) == subject);
  const auto v = pki::validity_of(cert.front().get());
  CHECK(v.not_after - pki::clock::now() > std::chrono::minutes(110));
  CHECK(v.not_after - pki::clock::now() <= std::chrono::hours(2));
  CHECK(pki::serial_hex(cert.front().get()) != pki::serial_hex(pki::certificates_from_pem(first).value().front().get()));
  auto record = s->get(std::string(cluster::nodes_prefix) + "n1").value();
  REQUIRE(record);
  const auto r = json::parse(record->value);
  CHECK(r.at("serial") == pki::serial_hex(cert.front().get()));
  CHECK(r.contains("joinedAt"));
  CHECK(r.contains("renewedAt"));

  // No certificate; a node that never joined; a bad CSR; the wrong method.
  const std::string latest = pki::serial_hex(cert.front().get());
  // The replaced certificate cannot renew again; no certificate; a node that never joined; a
  // bad CSR; the wrong method.
  CHECK(api.handle("POST", "/cluster/v1/node/certificate", subject, first_serial, "10.0.0.21",
                   json{{"csr", csr}}.dump()).status == 403);
  CHECK(api.handle("POST", "/cluster/v1/node/certificate", "", "", "10.0.0.9", json{{"csr", csr}}.dump()).status == 401);
  CHECK(api.handle("POST", "/cluster/v1/node/certificate", "/O=registryd-node/CN=n9", "AB", "10.0.0.9",
                   json{{"csr", csr}}.dump()).status == 403);
  CHECK(api.handle("POST", "/cluster/v1/node/certificate", subject, latest, "10.0.0.21", R"({"csr":"nope"})").status ==
        400);
  CHECK(api.handle("GET", "/cluster/v1/node/certificate", subject, latest, "10.0.0.21", "").status == 405);
  CHECK(api.handle("POST", "/cluster/v1/node/certificate", subject, latest, "10.0.0.21",
                   json{{"csr", csr}}.dump()).status == 200);
}

TEST_CASE("a node's long poll for the assignment it has is held, and another version, a resumed poll or no wait "
          "is answered, and the watch sees the assignment change") {
  using namespace std::chrono_literals;
  cluster_with_ca c;
  const auto& s = c.store;
  std::mutex mutex;
  std::string mode = "Local";
  std::atomic<bool> broken{false};
  auto api = std::make_shared<const cluster::master_api>(
      s, c.pki_dir,
      [&] {
        if (broken) throw std::runtime_error("a view that cannot be read");
        std::lock_guard lock(mutex);
        return cluster::master_view{mode, ""};
      },
      std::make_shared<spdlog::logger>("test", std::make_shared<spdlog::sinks::null_sink_mt>()));
  const std::string node = "/O=registryd-node/CN=n1";
  const auto ask = [&](std::multimap<std::string, std::string> params, bool resumed = false) {
    return api->handle("GET", "/cluster/v1/node", node, "", "10.0.0.21", "", params, resumed);
  };

  const auto first = ask({});
  REQUIRE(first.status == 200);
  CHECK(first.wait.count() == 0);
  const std::string version = json::parse(first.body).at("version");
  CHECK(json::parse(first.body).at("node") == "n1");
  CHECK(api->assignment_version().value() == version);

  const auto held = ask({{"version", version}, {"wait", "20"}});
  CHECK(held.wait == 20s);
  CHECK(held.body.empty());
  CHECK(ask({{"version", version}, {"wait", "600"}}).wait == cluster::max_assignment_wait);
  const auto resumed = ask({{"version", version}, {"wait", "20"}}, true);
  CHECK(resumed.wait.count() == 0);
  CHECK(json::parse(resumed.body).at("version") == version);
  const auto other = ask({{"version", "sha256:00"}, {"wait", "20"}});
  CHECK(other.wait.count() == 0);
  CHECK(json::parse(other.body).at("version") == version);
  CHECK(ask({{"version", version}}).wait.count() == 0);  // no wait: a plain poll
  CHECK(ask({{"version", version}, {"wait", "soon"}}).status == 400);

  std::atomic<int> changes{0};
  const auto wait_for = [&](auto done) {
    for (int i = 0; i < 100 && !done(); ++i) std::this_thread::sleep_for(20ms);
    return done();
  };
  cluster::assignment_watch watch(api, 50ms, [&] { ++changes; });
  REQUIRE(wait_for([&] { return changes.load() >= 1; }));  // its first look
  std::this_thread::sleep_for(200ms);
  CHECK(changes.load() == 1);  // nothing changed: no more wake-ups
  {
    std::lock_guard lock(mutex);
    mode = "Proxy";
  }
  CHECK(wait_for([&] { return changes.load() == 2; }));
  CHECK(api->assignment_version().value() != version);
  CHECK(ask({{"version", version}, {"wait", "20"}}).wait.count() == 0);  // the node's version is old now

  // What the watch's look throws ends neither it nor the process.
  broken = true;
  std::this_thread::sleep_for(200ms);
  broken = false;
  {
    std::lock_guard lock(mutex);
    mode = "Direct";
  }
  CHECK(wait_for([&] { return changes.load() == 3; }));
}
