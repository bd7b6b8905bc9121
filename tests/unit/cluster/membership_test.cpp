// The masters' shared state against a real etcd: the exactly-once bootstrap of the CA, token
// signer and accounts; users changed without losing a concurrent change; a master's link
// (registration under a lease, users mirrored into the file the host serves).
#include "etcd_process.hpp"

#include <registryd/auth/password_hash.hpp>
#include <registryd/auth/users_file.hpp>
#include <registryd/cluster/etcd_store.hpp>
#include <registryd/cluster/membership.hpp>
#include <registryd/pki/pki_directory.hpp>
#include <registryd/pki/token_signer.hpp>

#include <catch2/catch.hpp>
#include <spdlog/sinks/null_sink.h>
#include <spdlog/spdlog.h>

#include <thread>

using namespace registryd;
using registryd::test::etcd_process;
using registryd::test::open_store;
using registryd::test::scratch_dir;

namespace {

// A master's PKI directory as the host makes it: CA, serving certificate, token signer.
cluster::shared_pki make_pki(const std::filesystem::path& dir) {
  pki::pki_options o;
  o.dir = dir;
  REQUIRE(pki::ensure(o, pki::serving_names("127.0.0.1", {}).value(), pki::clock::now()));
  REQUIRE(pki::ensure_token_signer(dir, pki::clock::now()));
  return cluster::read_pki_dir(dir).value();
}

std::shared_ptr<spdlog::logger> quiet() {
  return std::make_shared<spdlog::logger>("test", std::make_shared<spdlog::sinks::null_sink_mt>());
}

template <typename F>
bool eventually(F&& condition, std::chrono::milliseconds limit = std::chrono::seconds(10)) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (condition()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return condition();
}

}  // namespace

TEST_CASE("cluster join: masters starting together all take the first one's CA and token signer") {
  scratch_dir dir;
  etcd_process etcd(dir.path());
  auto s = open_store(etcd.url());
  constexpr int masters = 4;
  std::vector<cluster::shared_pki> candidates;
  for (int i = 0; i < masters; ++i) candidates.push_back(make_pki(dir / ("m" + std::to_string(i))));

  std::vector<cluster::join_result> results(masters);
  std::vector<std::thread> threads;
  for (int i = 0; i < masters; ++i) {
    threads.emplace_back([&, i] { results[i] = cluster::join(*s, candidates[i]).value(); });
  }
  for (auto& t : threads) t.join();
  int created = 0;
  for (const auto& r : results) created += r.created ? 1 : 0;
  REQUIRE(created == 1);
  for (const auto& r : results) CHECK(r.pki == results[0].pki);

  // A loser installs the winner's files; its serving certificate is then re-issued from the
  // shared CA, and its token signer chains to it.
  for (int i = 0; i < masters; ++i) {
    const auto mdir = dir / ("m" + std::to_string(i));
    CHECK(cluster::install_pki(results[i].pki, mdir).value() == !results[i].created);
    CHECK_FALSE(cluster::install_pki(results[i].pki, mdir).value());  // nothing left to change
    pki::pki_options o;
    o.dir = mdir;
    auto report = pki::ensure(o, pki::serving_names("127.0.0.1", {}).value(), pki::clock::now()).value();
    CHECK(report.ca == pki::ca_action::kept);
    CHECK((report.serving == pki::serving_action::kept) == results[i].created);
    CHECK_FALSE(pki::ensure_token_signer(mdir, pki::clock::now()).value().issued);
    CHECK(registryd::test::slurp(mdir / pki::ca_cert_file) == results[0].pki.ca_crt);
  }
}

TEST_CASE("cluster join: four generated accounts, their passwords kept for masters, bcrypt for serving") {
  scratch_dir dir;
  etcd_process etcd(dir.path());
  auto s = open_store(etcd.url());
  REQUIRE(cluster::join(*s, make_pki(dir / "m")).value().created);
  auto users = auth::parse_users(s->get(cluster::users_key).value()->value).value();
  CHECK(users.size() == 4);
  for (const auto& [name, access] : std::vector<std::pair<std::string, auth::access_bits>>{
           {"ro", auth::access_read_only},
           {"rw", auth::access_read_write},
           {"mirror-puller", auth::access_mirror_puller},
           {"mirror-pusher", auth::access_mirror_pusher}}) {
    INFO(name);
    const auto password = cluster::account_password(*s, name).value();
    CHECK(password.size() == 16);
    const auto* u = users.find(name);
    REQUIRE(u != nullptr);
    CHECK(u->access == access);
    CHECK(auth::verify_password(password, u->password_hash));
  }
  CHECK_FALSE(cluster::account_password(*s, "nobody"));
}

TEST_CASE("cluster users: concurrent changes are all kept, and bad ones are refused") {
  scratch_dir dir;
  etcd_process etcd(dir.path());
  auto s = open_store(etcd.url());
  CHECK_THAT(cluster::set_user(*s, "early", "password1", "read-only").error_message(),
             Catch::Contains("start a master first"));
  REQUIRE(cluster::join(*s, make_pki(dir / "m")));

  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&, i] {
      CHECK(cluster::set_user(*s, "user" + std::to_string(i), "password" + std::to_string(i), "read-write"));
    });
  }
  for (auto& t : threads) t.join();
  REQUIRE(cluster::set_user(*s, "ro", "a-new-password", "read-only"));
  auto users = auth::parse_users(s->get(cluster::users_key).value()->value).value();
  CHECK(users.size() == 8);
  for (int i = 0; i < 4; ++i) {
    const auto* u = users.find("user" + std::to_string(i));
    REQUIRE(u != nullptr);
    CHECK(auth::verify_password("password" + std::to_string(i), u->password_hash));
  }
  CHECK(auth::verify_password("a-new-password", users.find("ro")->password_hash));

  CHECK_THAT(cluster::set_user(*s, "x", "password1", "admin").error_message(), Catch::Contains("access must be"));
  CHECK_THAT(cluster::set_user(*s, "x", "short", "read-only").error_message(), Catch::Contains("at least 8"));
}

TEST_CASE("master link: registered under a lease, kept current, re-registered, gone on stop") {
  scratch_dir dir;
  etcd_process etcd(dir.path());
  auto s = open_store(etcd.url());
  REQUIRE(cluster::join(*s, make_pki(dir / "m")));

  cluster::master_record self;
  self.node_ip = "10.0.0.7";
  self.address = "10.0.0.7:5001";
  cluster::link_options o;
  o.lease_ttl = std::chrono::seconds(3);
  o.renew_every = std::chrono::seconds(1);
  const auto users_file = dir / "state" / "users.yaml";
  const auto config_file = dir / "state" / "config.yaml";
  o.files = {cluster::users_file_mirror(users_file),
             {cluster::config_key, config_file, [](const std::string& v) -> std::optional<std::string> {
                if (v.find("mode:") == std::string::npos) return "no mode";
                return std::nullopt;
              }}};
  cluster::master_link link(s, self, o, quiet());
  REQUIRE(link.start());
  CHECK(auth::load_users_file(users_file).value().size() == 4);
  CHECK_FALSE(std::filesystem::exists(config_file));  // none stored yet: the file is left alone

  const std::string key = std::string(cluster::masters_prefix) + "10.0.0.7";
  REQUIRE(eventually([&] { return s->get(key).value().has_value(); }));
  link.update("Local", 1900000000);
  REQUIRE(eventually([&] {
    auto masters = cluster::list_masters(*s).value();
    return masters.size() == 1 && masters[0].mode == "Local" && masters[0].certificate_not_after == 1900000000;
  }));

  // A user added anywhere reaches this master's users file.
  REQUIRE(cluster::set_user(*s, "alice", "alice-password", "read-write"));
  REQUIRE(eventually([&] {
    auto users = auth::load_users_file(users_file);
    return users && users->find("alice") != nullptr;
  }));

  // The desired config: a good one reaches the file, one its check refuses does not.
  REQUIRE(cluster::store_config(*s, "mode: Direct\n", 0).value());
  REQUIRE(eventually([&] { return registryd::test::slurp(config_file) == "mode: Direct\n"; }));
  const auto rev = s->get(cluster::config_key).value()->mod_revision;
  CHECK_FALSE(cluster::store_config(*s, "mode: Local\n", 0).value());  // stale expectation
  REQUIRE(cluster::store_config(*s, "garbage\n", rev).value());
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  CHECK(registryd::test::slurp(config_file) == "mode: Direct\n");

  // Its switching state is published and outlives the lease.
  link.publish_state(R"({"mode":"Direct"})");
  REQUIRE(eventually([&] {
    auto e = s->get(std::string(cluster::states_prefix) + "10.0.0.7").value();
    return e && e->value == R"({"mode":"Direct"})" && e->lease == 0;
  }));

  // Its lease lost (as after a long store outage): it registers again by itself.
  const auto lease = s->get(key).value()->lease;
  REQUIRE(s->revoke(lease));
  CHECK_FALSE(s->get(key).value().has_value());
  REQUIRE(eventually([&] {
    auto e = s->get(key).value();
    return e && e->lease != lease;
  }));

  link.stop();
  CHECK_FALSE(s->get(key).value().has_value());  // revoked at once, not after the TTL
}

TEST_CASE("master link: the other masters registered are the replica peers, and a stop right after start is quick") {
  scratch_dir dir;
  etcd_process etcd(dir.path());
  auto s = open_store(etcd.url());
  REQUIRE(cluster::join(*s, make_pki(dir / "m")));

  const auto link_for = [&](const std::string& ip) {
    cluster::master_record self;
    self.node_ip = ip;
    self.address = ip + ":5001";
    cluster::link_options o;
    o.lease_ttl = std::chrono::seconds(2);
    o.renew_every = std::chrono::seconds(1);
    o.files = {cluster::users_file_mirror(dir / ip / "users.yaml")};
    return std::make_unique<cluster::master_link>(s, self, o, quiet());
  };
  auto a = link_for("10.0.0.1");
  auto b = link_for("10.0.0.2");
  auto c = link_for("10.0.0.3");
  REQUIRE(a->start());
  CHECK(a->peer_addresses().empty());  // itself is never its own peer
  REQUIRE(b->start());
  REQUIRE(c->start());
  using list = std::vector<std::string>;
  CHECK(eventually([&] { return a->peer_addresses() == list{"10.0.0.2:5001", "10.0.0.3:5001"}; }));
  CHECK(eventually([&] { return c->peer_addresses() == list{"10.0.0.1:5001", "10.0.0.2:5001"}; }));
  CHECK(eventually([&] { return b->master_ips() == list{"10.0.0.1", "10.0.0.2", "10.0.0.3"}; }));

  // A master that stops leaves the others' peers (its lease is revoked on stop).
  b->stop();
  CHECK(eventually([&] { return a->peer_addresses() == list{"10.0.0.3:5001"}; }, std::chrono::seconds(5)));
  CHECK(eventually([&] { return c->peer_addresses() == list{"10.0.0.1:5001"}; }, std::chrono::seconds(5)));

  // Stopping while the watch may still be opening its connection does not wait for the
  // watch's idle timeout (60 s).
  for (int i = 0; i < 5; ++i) {
    auto d = link_for("10.0.0.4");
    REQUIRE(d->start());
    const auto asked = std::chrono::steady_clock::now();
    d->stop();
    CHECK(std::chrono::steady_clock::now() - asked < std::chrono::seconds(3));
  }
  a->stop();
  c->stop();
}

TEST_CASE("cluster CA: a master's renewal goes to the store, the others take it, and an older copy never wins") {
  scratch_dir dir;
  etcd_process etcd(dir.path());
  auto s = open_store(etcd.url());
  auto a = make_pki(dir / "a");
  auto b = make_pki(dir / "b");
  REQUIRE(cluster::join(*s, a).value().created);
  REQUIRE(cluster::install_pki(cluster::join(*s, b).value().pki, dir / "b").value());
  b = cluster::read_pki_dir(dir / "b").value();
  REQUIRE(a == b);

  // Seven years on, master a renews its copy (same key, new validity), as pki::ensure does.
  const auto later = pki::clock::now() + std::chrono::days(7 * 365);
  pki::pki_options o;
  o.dir = dir / "a";
  const auto report = pki::ensure(o, pki::serving_names("127.0.0.1", {}).value(), later).value();
  REQUIRE(report.ca == pki::ca_action::renewed);
  const auto renewed = cluster::read_pki_dir(dir / "a").value();
  REQUIRE(renewed.ca_crt != a.ca_crt);
  REQUIRE(renewed.ca_key == a.ca_key);

  bool published = false;
  CHECK(cluster::sync_pki(*s, renewed, later, &published).value() == renewed);
  CHECK(published);
  // b still holds the old copy: it is given the renewed one, and its old one is not stored.
  const auto for_b = cluster::sync_pki(*s, b, later, &published).value();
  CHECK_FALSE(published);
  CHECK(for_b == renewed);
  REQUIRE(cluster::install_pki(for_b, dir / "b").value());
  CHECK(cluster::read_pki_dir(dir / "b").value() == renewed);
  CHECK(cluster::sync_pki(*s, renewed, later, &published).value() == renewed);
  CHECK_FALSE(published);

  // A master that renewed only its token signer keeps it: the CA alone is kept as one.
  auto own_signer = renewed;
  own_signer.token_crt = "another token certificate";
  own_signer.token_key = "another token key";
  CHECK(cluster::sync_pki(*s, own_signer, later, &published).value() == own_signer);
  CHECK_FALSE(published);

  // A master that re-created its CA (another key) while the stored one is valid takes the
  // stored CA back, and keeps its own token signer.
  auto stranger = make_pki(dir / "c");
  const auto taken = cluster::sync_pki(*s, stranger, later, &published).value();
  CHECK_FALSE(published);
  CHECK(taken.ca_crt == renewed.ca_crt);
  CHECK(taken.ca_key == renewed.ca_key);
  CHECK(taken.token_crt == stranger.token_crt);
}
