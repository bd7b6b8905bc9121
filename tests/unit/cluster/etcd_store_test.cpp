// The cluster store against a real etcd: compare-and-swap, multi-key create, watches that
// resume across an etcd restart, leases, and TLS with client certificates.
#include "etcd_process.hpp"

#include <registryd/cluster/etcd_store.hpp>

#include <catch2/catch.hpp>

#include <atomic>
#include <mutex>
#include <thread>

using namespace registryd;
using registryd::test::etcd_process;
using registryd::test::open_store;
using registryd::test::scratch_dir;


TEST_CASE("etcd store: list by prefix, compare-and-swap and delete by revision") {
  scratch_dir dir;
  etcd_process etcd(dir.path());
  auto s = open_store(etcd.url());

  auto created = s->compare_and_swap("/t/a", 0, "one");
  REQUIRE(created);
  CHECK(created->swapped);
  // Create-only a second time: refused, and the key as it is comes back.
  auto again = s->compare_and_swap("/t/a", 0, "two");
  REQUIRE(again);
  CHECK_FALSE(again->swapped);
  REQUIRE(again->current);
  CHECK(again->current->value == "one");
  const auto rev = again->current->mod_revision;

  auto stale = s->compare_and_swap("/t/a", rev + 100, "three");
  REQUIRE(stale);
  CHECK_FALSE(stale->swapped);
  auto fresh = s->compare_and_swap("/t/a", rev, "four");
  REQUIRE(fresh);
  CHECK(fresh->swapped);

  // Binary bytes survive the base64 trip; the prefix range takes /t/ and nothing else.
  const std::string bytes("\0\xff\x01 value", 9);
  REQUIRE(s->compare_and_swap("/t/b", 0, bytes)->swapped);
  REQUIRE(s->compare_and_swap("/u", 0, "other")->swapped);
  auto listed = s->list("/t/");
  REQUIRE(listed);
  REQUIRE(listed->first.size() == 2);
  CHECK(listed->first[0].key == "/t/a");
  CHECK(listed->first[0].value == "four");
  CHECK(listed->first[1].value == bytes);
  CHECK(listed->second >= listed->first[1].mod_revision);

  auto got = s->get("/t/a");
  REQUIRE(got);
  REQUIRE(*got);
  CHECK_FALSE(s->compare_and_delete("/t/a", (*got)->mod_revision - 1).value());
  CHECK(s->compare_and_delete("/t/a", (*got)->mod_revision).value());
  CHECK_FALSE(s->get("/t/a").value().has_value());
}

TEST_CASE("etcd store: create_all writes every key once, whoever races") {
  scratch_dir dir;
  etcd_process etcd(dir.path());
  auto s = open_store(etcd.url());
  std::atomic<int> winners{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&, i] {
      const std::string mine = "candidate-" + std::to_string(i);
      auto done = s->create_all("/c/guard", {{"/c/guard", mine}, {"/c/other", mine}});
      if (done && done->swapped) ++winners;
    });
  }
  for (auto& t : threads) t.join();
  CHECK(winners == 1);
  auto guard = s->get("/c/guard").value();
  auto other = s->get("/c/other").value();
  REQUIRE(guard);
  REQUIRE(other);
  CHECK(guard->value == other->value);
}

TEST_CASE("etcd store: a watch sees every change in order, across an etcd restart") {
  scratch_dir dir;
  etcd_process etcd(dir.path());
  auto s = open_store(etcd.url());
  const auto start = s->list("/w/").value().second;

  std::mutex m;
  std::vector<std::string> seen;
  std::atomic<bool> stop{false};
  std::thread watcher([&] {
    auto st = s->watch("/w/", start,
                       [&](const std::vector<cluster::watch_event>& events) {
                         std::lock_guard lock(m);
                         for (const auto& e : events) {
                           seen.push_back((e.deleted ? "-" : "+") + e.item.key + "=" + e.item.value);
                         }
                         return true;
                       },
                       stop);
    CHECK(st);
  });
  const auto count = [&] {
    std::lock_guard lock(m);
    return seen.size();
  };
  const auto wait_for = [&](std::size_t n) {
    for (int i = 0; i < 200 && count() < n; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    return count();
  };
  REQUIRE(s->compare_and_swap("/w/1", 0, "a")->swapped);
  REQUIRE(s->compare_and_swap("/x", 0, "not watched")->swapped);
  auto one = s->get("/w/1").value();
  REQUIRE(s->compare_and_swap("/w/1", one->mod_revision, "b")->swapped);
  CHECK(wait_for(2) == 2);

  // etcd goes away; changes made while the watch reconnects are not lost.
  etcd.stop();
  etcd.start();
  one = s->get("/w/1").value();
  REQUIRE(s->compare_and_delete("/w/1", one->mod_revision).value());
  REQUIRE(s->compare_and_swap("/w/2", 0, "c")->swapped);
  CHECK(wait_for(4) == 4);

  stop = true;
  const auto asked = std::chrono::steady_clock::now();
  s->interrupt_watches();
  watcher.join();
  CHECK(std::chrono::steady_clock::now() - asked < std::chrono::seconds(5));
  std::lock_guard lock(m);
  CHECK(seen == std::vector<std::string>{"+/w/1=a", "+/w/1=b", "-/w/1=", "+/w/2=c"});
}

TEST_CASE("etcd store: a watch from a compacted revision says so") {
  scratch_dir dir;
  etcd_process etcd(dir.path());
  auto s = open_store(etcd.url());
  REQUIRE(s->compare_and_swap("/k/1", 0, "a")->swapped);
  const auto rev = s->list("/k/").value().second;
  auto k = s->get("/k/1").value();
  REQUIRE(s->compare_and_swap("/k/1", k->mod_revision, "b")->swapped);
  httplib::Client c(etcd.url());
  auto res = c.Post("/v3/kv/compaction", R"({"revision":")" + std::to_string(rev + 1) + R"(","physical":true})",
                    "application/json");
  REQUIRE(res);
  REQUIRE(res->status == 200);
  std::atomic<bool> stop{false};
  auto st = s->watch("/k/", rev - 1, [](const auto&) { return true; }, stop);
  REQUIRE_FALSE(st);
  CHECK_THAT(st.error_message(), Catch::Contains("compacted"));
}

TEST_CASE("etcd store: a key under a lease lives while it is renewed and goes with it") {
  scratch_dir dir;
  etcd_process etcd(dir.path());
  auto s = open_store(etcd.url());
  auto lease = s->grant_lease(std::chrono::seconds(3));
  REQUIRE(lease);
  REQUIRE(s->compare_and_swap("/l/kept", 0, "x", *lease)->swapped);
  for (int i = 0; i < 5; ++i) {
    std::this_thread::sleep_for(std::chrono::seconds(1));
    REQUIRE(s->keep_alive(*lease));
  }
  CHECK(s->get("/l/kept").value().has_value());
  CHECK(s->get("/l/kept").value()->lease == *lease);

  auto short_lease = s->grant_lease(std::chrono::seconds(3)).value();
  REQUIRE(s->compare_and_swap("/l/lapsed", 0, "y", short_lease)->swapped);
  std::this_thread::sleep_for(std::chrono::milliseconds(4500));
  CHECK_FALSE(s->get("/l/lapsed").value().has_value());
  CHECK_FALSE(s->keep_alive(short_lease));

  // Revoked: its keys go at once.
  auto revoked = s->grant_lease(std::chrono::seconds(30)).value();
  REQUIRE(s->compare_and_swap("/l/revoked", 0, "z", revoked)->swapped);
  REQUIRE(s->revoke(revoked));
  CHECK_FALSE(s->get("/l/revoked").value().has_value());
  CHECK_FALSE(s->keep_alive(revoked));
}

TEST_CASE("etcd store: endpoints are tried in turn, and none answering is an error naming each") {
  scratch_dir dir;
  etcd_process etcd(dir.path());
  cluster::etcd_options o;
  const std::string dead = "http://127.0.0.1:" + std::to_string(registryd::test::free_loopback_port());
  o.endpoints = {dead, etcd.url()};
  auto s = cluster::open_etcd(o).value();
  CHECK(s->compare_and_swap("/e", 0, "v").value().swapped);

  o.endpoints = {dead};
  o.request_timeout = std::chrono::milliseconds(1000);
  auto none = cluster::open_etcd(o).value();
  const auto asked = std::chrono::steady_clock::now();
  auto failed = none->list("/");
  const auto took = std::chrono::steady_clock::now() - asked;
  REQUIRE_FALSE(failed);
  CHECK_THAT(failed.error_message(), Catch::Contains(dead) && Catch::Contains("within 1000 ms"));
  // Retried for request_timeout, not for ever.
  CHECK(took >= std::chrono::milliseconds(900));
  CHECK(took < std::chrono::milliseconds(3000));
}

TEST_CASE("etcd store: options are checked before anything is contacted") {
  cluster::etcd_options o;
  CHECK_THAT(cluster::open_etcd(o).error_message(), Catch::Contains("at least one"));
  o.endpoints = {"127.0.0.1:2379"};
  CHECK_THAT(cluster::open_etcd(o).error_message(), Catch::Contains("not an http:// or https:// URL"));
  o.endpoints = {"https://127.0.0.1:2379"};
  o.cert_file = "/nonexistent.crt";
  CHECK_THAT(cluster::open_etcd(o).error_message(), Catch::Contains("needs its key"));
  o.key_file = "/nonexistent.key";
  CHECK_THAT(cluster::open_etcd(o).error_message(), Catch::Contains("cannot read /nonexistent.crt"));
}

TEST_CASE("etcd store: TLS with client certificates, and no certificate, no access") {
  scratch_dir dir;
  // A CA, etcd's serving certificate for 127.0.0.1, and a client certificate (clientAuth).
  registryd::test::output_of(
      "cd " + registryd::test::quote(dir.path()) +
      " && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.crt"
      " -subj /CN=etcd-ca -days 2"
      " && openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout server.key -out server.csr"
      " -subj /CN=etcd"
      " && printf 'subjectAltName=IP:127.0.0.1\\nextendedKeyUsage=serverAuth,clientAuth\\n' > server.ext"
      " && openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out server.crt -days 2"
      " -extfile server.ext"
      " && openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout client.key -out client.csr"
      " -subj /CN=master && printf 'extendedKeyUsage=clientAuth\\n' > client.ext"
      " && openssl x509 -req -in client.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out client.crt -days 2"
      " -extfile client.ext");
  etcd_process etcd(dir.path(), registryd::test::etcd_tls{dir / "ca.crt", dir / "server.crt", dir / "server.key"});

  cluster::etcd_options o;
  o.endpoints = {etcd.url()};
  o.ca_file = dir / "ca.crt";
  o.cert_file = dir / "client.crt";
  o.key_file = dir / "client.key";
  auto s = cluster::open_etcd(o).value();
  CHECK(s->compare_and_swap("/tls", 0, "yes").value().swapped);

  o.cert_file.reset();
  o.key_file.reset();
  auto anonymous = cluster::open_etcd(o).value();
  CHECK_FALSE(anonymous->list("/"));

  o.ca_file.reset();  // the system's CAs do not know etcd's: the server is not trusted
  o.cert_file = dir / "client.crt";
  o.key_file = dir / "client.key";
  auto untrusting = cluster::open_etcd(o).value();
  CHECK_FALSE(untrusting->list("/"));
}
