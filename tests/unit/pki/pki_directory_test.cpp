#include <registryd/pki/certificates.hpp>
#include <registryd/pki/pki_directory.hpp>

#include "pki_test_support.hpp"

#include <openssl/x509.h>

#include <chrono>

namespace pki = registryd::pki;
using namespace std::chrono_literals;
using pki_test::quote;
using pki_test::run;
using pki_test::scratch_dir;
using pki_test::slurp;
using pki_test::spill;

namespace {

pki::subject_alt_names names_for(const std::string& node_ip,
                                 const std::vector<std::string>& extra = {}) {
  auto names = pki::serving_names(node_ip, extra);
  REQUIRE(names);
  return *names;
}

pki::pki_options options_for(const scratch_dir& dir) {
  pki::pki_options o;
  o.dir = dir.path() / "pki";
  return o;
}

pki::ensure_report ensure_ok(const pki::pki_options& o, const pki::subject_alt_names& names,
                             pki::clock::time_point now) {
  auto r = pki::ensure(o, names, now);
  INFO((r ? r->summary() : r.error_message()));
  REQUIRE(r);
  return *r;
}

pki::x509_ptr first_cert(const std::filesystem::path& file) {
  auto certs = pki::certificates_from_pem(slurp(file));
  REQUIRE(certs);
  return std::move(certs->front());
}

pki::pkey_ptr key_in(const std::filesystem::path& file) {
  auto key = pki::private_key_from_pem(slurp(file));
  REQUIRE(key);
  return std::move(*key);
}

std::string openssl_verify(const std::filesystem::path& ca, const std::filesystem::path& leaf,
                           const std::string& extra = "") {
  const auto r = run("openssl verify -purpose sslserver " + extra + " -CAfile " + quote(ca) + " " +
                     quote(leaf));
  return std::to_string(r.exit_code) + " " + r.output;
}

long long epoch(pki::clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
}

}  // namespace

TEST_CASE("a fresh directory gets a CA and a serving certificate that openssl verify accepts",
          "[pki]") {
  scratch_dir tmp;
  const auto o = options_for(tmp);
  const auto report = ensure_ok(o, names_for("10.0.0.5"), pki::clock::now());
  CHECK(report.ca == pki::ca_action::created);
  CHECK(report.serving == pki::serving_action::issued);
  CHECK(report.changed());
  CHECK_THAT(report.ca_reason, Catch::Contains("ca.key is missing"));

  const auto ca = o.dir / "ca.crt";
  const auto tls = o.dir / "tls.crt";
  CHECK(openssl_verify(ca, tls) == "0 " + tls.string() + ": OK\n");

  // tls.crt is the leaf followed by the CA.
  auto chain = pki::certificates_from_pem(slurp(tls));
  REQUIRE(chain);
  REQUIRE(chain->size() == 2);
  CHECK(X509_cmp(chain->at(1).get(), first_cert(ca).get()) == 0);

  const auto ca_ext = run("openssl x509 -noout -ext basicConstraints,keyUsage,subjectKeyIdentifier -in " +
                          quote(ca));
  REQUIRE(ca_ext.exit_code == 0);
  CHECK_THAT(ca_ext.output, Catch::Contains("X509v3 Basic Constraints: critical") &&
                                Catch::Contains("CA:TRUE") &&
                                Catch::Contains("Certificate Sign, CRL Sign") &&
                                Catch::Contains("Subject Key Identifier"));
  const auto leaf_ext = run("openssl x509 -noout -text -in " + quote(tls));
  CHECK_THAT(leaf_ext.output, Catch::Contains("TLS Web Server Authentication") &&
                                  Catch::Contains("CA:FALSE") &&
                                  Catch::Contains("Authority Key Identifier") &&
                                  Catch::Contains("ASN1 OID: prime256v1"));
  const auto ca_text = run("openssl x509 -noout -text -in " + quote(ca));
  CHECK_THAT(ca_text.output, Catch::Contains("ASN1 OID: prime256v1"));

  const auto v = pki::validity_of(first_cert(ca).get());
  CHECK(v.not_after - v.not_before > std::chrono::days{3650});
  const auto lv = pki::validity_of(first_cert(tls).get());
  CHECK(lv.not_after - lv.not_before >= std::chrono::days{365});
  CHECK(lv.not_after - lv.not_before < std::chrono::days{366});
}

TEST_CASE("the serving certificate carries the platform names, the node IP and the extra names",
          "[pki]") {
  scratch_dir tmp;
  const auto o = options_for(tmp);
  const auto wanted = names_for("10.0.0.5", {"registry.example.com", "192.168.7.7", "fd00::1"});
  ensure_ok(o, wanted, pki::clock::now());
  CHECK(pki::sans_of(first_cert(o.dir / "tls.crt").get()) == wanted);

  const auto ext = run("openssl x509 -noout -ext subjectAltName -in " + quote(o.dir / "tls.crt"));
  REQUIRE(ext.exit_code == 0);
  for (const char* expected : {"DNS:localhost", "DNS:registry.d8-system.svc",
                               "DNS:registry.example.com", "IP Address:127.0.0.1",
                               "IP Address:10.0.0.5", "IP Address:192.168.7.7",
                               "IP Address:FD00:0:0:0:0:0:0:1"}) {
    CHECK_THAT(ext.output, Catch::Contains(expected));
  }
}

TEST_CASE("private keys are written with mode 0600 and certificates readable by all", "[pki]") {
  scratch_dir tmp;
  const auto o = options_for(tmp);
  ensure_ok(o, names_for("10.0.0.5"), pki::clock::now());
  namespace fs = std::filesystem;
  const auto mode = [](const fs::path& p) { return fs::status(p).permissions() & fs::perms::all; };
  CHECK(mode(o.dir / "ca.key") == (fs::perms::owner_read | fs::perms::owner_write));
  CHECK(mode(o.dir / "tls.key") == (fs::perms::owner_read | fs::perms::owner_write));
  CHECK(mode(o.dir / "ca.crt") == fs::perms(0644));
  CHECK(mode(o.dir / "tls.crt") == fs::perms(0644));
  CHECK(mode(o.dir) == fs::perms::owner_all);
}

TEST_CASE("key files with looser modes are tightened to 0600", "[pki]") {
  scratch_dir tmp;
  const auto o = options_for(tmp);
  const auto names = names_for("10.0.0.5");
  ensure_ok(o, names, pki::clock::now());
  std::filesystem::permissions(o.dir / "ca.key", std::filesystem::perms(0644));
  const auto report = ensure_ok(o, names, pki::clock::now());
  CHECK_FALSE(report.changed());
  REQUIRE(report.notes.size() == 1);
  CHECK(report.notes[0] == "tightened ca.key to mode 0600");
  CHECK((std::filesystem::status(o.dir / "ca.key").permissions() & std::filesystem::perms::all) ==
        std::filesystem::perms(0600));
}

TEST_CASE("a second ensure with the same names changes nothing", "[pki]") {
  scratch_dir tmp;
  const auto o = options_for(tmp);
  const auto names = names_for("10.0.0.5");
  const auto now = pki::clock::now();
  ensure_ok(o, names, now);
  const std::string before = slurp(o.dir / "tls.crt") + slurp(o.dir / "ca.crt");
  const auto report = ensure_ok(o, names, now + 1h);
  CHECK_FALSE(report.changed());
  CHECK(report.summary() == "CA kept; serving certificate kept");
  CHECK(slurp(o.dir / "tls.crt") + slurp(o.dir / "ca.crt") == before);
}

TEST_CASE("a changed node IP re-issues the serving certificate and keeps the CA", "[pki]") {
  scratch_dir tmp;
  const auto o = options_for(tmp);
  const auto now = pki::clock::now();
  ensure_ok(o, names_for("10.0.0.5"), now);
  const std::string ca_before = slurp(o.dir / "ca.crt");
  const auto report = ensure_ok(o, names_for("10.0.0.6"), now);
  CHECK(report.ca == pki::ca_action::kept);
  CHECK(report.serving == pki::serving_action::issued);
  CHECK_THAT(report.serving_reason, Catch::StartsWith("the names differ") &&
                                        Catch::Contains("IP:10.0.0.6"));
  CHECK(slurp(o.dir / "ca.crt") == ca_before);
  CHECK(pki::sans_of(first_cert(o.dir / "tls.crt").get()).ips.count("10.0.0.6") == 1);
  CHECK(openssl_verify(o.dir / "ca.crt", o.dir / "tls.crt") ==
        "0 " + (o.dir / "tls.crt").string() + ": OK\n");
}

TEST_CASE("the serving certificate is renewed after two thirds of its lifetime, not before",
          "[pki]") {
  scratch_dir tmp;
  auto o = options_for(tmp);
  o.serving_lifetime = std::chrono::days{30};
  const auto names = names_for("10.0.0.5");
  const auto t0 = pki::clock::now();
  ensure_ok(o, names, t0);

  // Two thirds of 30 days is 20 days.
  CHECK_FALSE(ensure_ok(o, names, t0 + std::chrono::days{20} - 1h).changed());
  const auto report = ensure_ok(o, names, t0 + std::chrono::days{20} + 1h);
  CHECK(report.ca == pki::ca_action::kept);
  CHECK(report.serving == pki::serving_action::issued);
  CHECK_THAT(report.serving_reason, Catch::StartsWith("two thirds of its lifetime passed"));
  // The new certificate starts a new lifetime.
  CHECK_FALSE(ensure_ok(o, names, t0 + std::chrono::days{35}).changed());
}

TEST_CASE("an expired or not yet valid serving certificate is re-issued", "[pki]") {
  scratch_dir tmp;
  auto o = options_for(tmp);
  o.serving_lifetime = std::chrono::days{3};
  const auto names = names_for("10.0.0.5");
  const auto t0 = pki::clock::now();
  ensure_ok(o, names, t0);
  const auto expired = ensure_ok(o, names, t0 + std::chrono::days{4});
  CHECK(expired.serving == pki::serving_action::issued);
  CHECK_THAT(expired.serving_reason, Catch::StartsWith("tls.crt expired on"));

  const auto early = ensure_ok(o, names, t0 + std::chrono::days{2});
  CHECK(early.serving == pki::serving_action::issued);
  CHECK_THAT(early.serving_reason, Catch::StartsWith("tls.crt is not valid until"));
}

TEST_CASE("a tls.crt replaced by garbage is re-issued", "[pki]") {
  scratch_dir tmp;
  const auto o = options_for(tmp);
  const auto names = names_for("10.0.0.5");
  ensure_ok(o, names, pki::clock::now());
  spill(o.dir / "tls.crt", "this is not a certificate\n");
  const auto report = ensure_ok(o, names, pki::clock::now());
  CHECK(report.ca == pki::ca_action::kept);
  CHECK(report.serving == pki::serving_action::issued);
  CHECK_THAT(report.serving_reason, Catch::StartsWith("tls.crt is not a readable certificate"));
  CHECK(openssl_verify(o.dir / "ca.crt", o.dir / "tls.crt") ==
        "0 " + (o.dir / "tls.crt").string() + ": OK\n");
}

TEST_CASE("a truncated tls.crt is re-issued", "[pki]") {
  scratch_dir tmp;
  const auto o = options_for(tmp);
  const auto names = names_for("10.0.0.5");
  ensure_ok(o, names, pki::clock::now());
  const std::string text = slurp(o.dir / "tls.crt");
  spill(o.dir / "tls.crt", text.substr(0, 200) + "\n-----END CERTIFICATE-----\n");
  const auto report = ensure_ok(o, names, pki::clock::now());
  CHECK(report.serving == pki::serving_action::issued);
}

TEST_CASE("a serving certificate and key from another CA are replaced", "[pki]") {
  scratch_dir tmp;
  scratch_dir other;
  const auto o = options_for(tmp);
  const auto foreign = options_for(other);
  const auto names = names_for("10.0.0.5");
  ensure_ok(o, names, pki::clock::now());
  ensure_ok(foreign, names, pki::clock::now());
  std::filesystem::copy_file(foreign.dir / "tls.crt", o.dir / "tls.crt",
                             std::filesystem::copy_options::overwrite_existing);
  std::filesystem::copy_file(foreign.dir / "tls.key", o.dir / "tls.key",
                             std::filesystem::copy_options::overwrite_existing);
  CHECK(openssl_verify(o.dir / "ca.crt", o.dir / "tls.crt").rfind("0 ", 0) != 0);

  const auto report = ensure_ok(o, names, pki::clock::now());
  CHECK(report.ca == pki::ca_action::kept);
  CHECK(report.serving == pki::serving_action::issued);
  CHECK_THAT(report.serving_reason, Catch::StartsWith("tls.crt does not chain to ca.crt"));
  CHECK(openssl_verify(o.dir / "ca.crt", o.dir / "tls.crt") ==
        "0 " + (o.dir / "tls.crt").string() + ": OK\n");
}

TEST_CASE("a serving key that does not belong to the certificate is replaced", "[pki]") {
  scratch_dir tmp;
  scratch_dir other;
  const auto o = options_for(tmp);
  const auto foreign = options_for(other);
  const auto names = names_for("10.0.0.5");
  ensure_ok(o, names, pki::clock::now());
  ensure_ok(foreign, names, pki::clock::now());
  std::filesystem::copy_file(foreign.dir / "tls.key", o.dir / "tls.key",
                             std::filesystem::copy_options::overwrite_existing);
  const auto report = ensure_ok(o, names, pki::clock::now());
  CHECK(report.serving == pki::serving_action::issued);
  CHECK(report.serving_reason == "tls.key does not belong to tls.crt");
  CHECK(pki::key_matches(first_cert(o.dir / "tls.crt").get(), key_in(o.dir / "tls.key").get()));
}

TEST_CASE("a missing tls.key is re-issued together with its certificate", "[pki]") {
  scratch_dir tmp;
  const auto o = options_for(tmp);
  const auto names = names_for("10.0.0.5");
  ensure_ok(o, names, pki::clock::now());
  std::filesystem::remove(o.dir / "tls.key");
  const auto report = ensure_ok(o, names, pki::clock::now());
  CHECK(report.serving == pki::serving_action::issued);
  CHECK(report.serving_reason == "tls.key is missing");
}

TEST_CASE("a lost CA key re-creates the CA and with it the serving certificate", "[pki]") {
  scratch_dir tmp;
  const auto o = options_for(tmp);
  const auto names = names_for("10.0.0.5");
  ensure_ok(o, names, pki::clock::now());
  std::filesystem::copy_file(o.dir / "ca.crt", tmp / "old-ca.crt");
  const std::string old_leaf = slurp(o.dir / "tls.crt");
  std::filesystem::remove(o.dir / "ca.key");

  const auto report = ensure_ok(o, names, pki::clock::now());
  CHECK(report.ca == pki::ca_action::created);
  CHECK(report.ca_reason == "ca.key is missing");
  CHECK(report.serving == pki::serving_action::issued);
  CHECK(report.serving_reason == "the CA was re-created");
  CHECK(slurp(o.dir / "tls.crt") != old_leaf);
  CHECK(openssl_verify(o.dir / "ca.crt", o.dir / "tls.crt") ==
        "0 " + (o.dir / "tls.crt").string() + ": OK\n");
  CHECK(openssl_verify(tmp / "old-ca.crt", o.dir / "tls.crt").rfind("0 ", 0) != 0);
}

TEST_CASE("a CA key that does not match ca.crt re-creates the CA", "[pki]") {
  scratch_dir tmp;
  scratch_dir other;
  const auto o = options_for(tmp);
  const auto foreign = options_for(other);
  const auto names = names_for("10.0.0.5");
  ensure_ok(o, names, pki::clock::now());
  ensure_ok(foreign, names, pki::clock::now());
  std::filesystem::copy_file(foreign.dir / "ca.key", o.dir / "ca.key",
                             std::filesystem::copy_options::overwrite_existing);
  const auto report = ensure_ok(o, names, pki::clock::now());
  CHECK(report.ca == pki::ca_action::created);
  CHECK(report.ca_reason == "ca.key does not belong to ca.crt");
  CHECK(report.serving == pki::serving_action::issued);
}

TEST_CASE("a ca.crt that is not a CA is replaced", "[pki]") {
  scratch_dir tmp;
  const auto o = options_for(tmp);
  const auto names = names_for("10.0.0.5");
  ensure_ok(o, names, pki::clock::now());
  // The serving pair is a valid certificate with its key, but not a CA.
  std::filesystem::copy_file(o.dir / "tls.crt", o.dir / "ca.crt",
                             std::filesystem::copy_options::overwrite_existing);
  std::filesystem::copy_file(o.dir / "tls.key", o.dir / "ca.key",
                             std::filesystem::copy_options::overwrite_existing);
  const auto report = ensure_ok(o, names, pki::clock::now());
  CHECK(report.ca == pki::ca_action::created);
  CHECK_THAT(report.ca_reason, Catch::StartsWith("ca.crt is not a usable CA"));
}

TEST_CASE("an expired CA is re-created with a new key", "[pki]") {
  scratch_dir tmp;
  const auto o = options_for(tmp);
  const auto names = names_for("10.0.0.5");
  const auto t0 = pki::clock::now();
  ensure_ok(o, names, t0);
  const auto old_key = key_in(o.dir / "ca.key");
  const auto report = ensure_ok(o, names, t0 + std::chrono::years{11});
  CHECK(report.ca == pki::ca_action::created);
  CHECK_THAT(report.ca_reason, Catch::StartsWith("ca.crt expired on"));
  CHECK(report.serving == pki::serving_action::issued);
  CHECK_FALSE(pki::key_matches(first_cert(o.dir / "ca.crt").get(), old_key.get()));
}

TEST_CASE("after two thirds of its life the CA is renewed with the same key and old and new "
          "certificates chain either way",
          "[pki]") {
  scratch_dir tmp;
  const auto o = options_for(tmp);
  const auto names = names_for("10.0.0.5");
  const auto t0 = pki::clock::now();
  ensure_ok(o, names, t0);
  std::filesystem::copy_file(o.dir / "ca.crt", tmp / "old-ca.crt");
  std::filesystem::copy_file(o.dir / "tls.crt", tmp / "old-tls.crt");
  const auto old_ca = first_cert(tmp / "old-ca.crt");

  CHECK(ensure_ok(o, names, t0 + std::chrono::years{6}).ca == pki::ca_action::kept);
  const auto t7 = t0 + std::chrono::years{7};
  const auto report = ensure_ok(o, names, t7);
  CHECK(report.ca == pki::ca_action::renewed);
  CHECK_THAT(report.ca_reason, Catch::StartsWith("two thirds of its lifetime passed"));
  CHECK_THAT(report.summary(), Catch::StartsWith("CA renewed with the same key"));

  const auto new_ca = first_cert(o.dir / "ca.crt");
  CHECK(X509_cmp(new_ca.get(), old_ca.get()) != 0);
  CHECK(X509_NAME_cmp(X509_get_subject_name(new_ca.get()), X509_get_subject_name(old_ca.get())) == 0);
  CHECK(pki::key_matches(new_ca.get(), key_in(o.dir / "ca.key").get()));
  CHECK(pki::key_matches(old_ca.get(), key_in(o.dir / "ca.key").get()));
  CHECK(pki::validity_of(new_ca.get()).not_after > t7 + std::chrono::years{9});

  // A client still holding the old ca.crt trusts the new serving certificate ...
  const std::string at = "-attime " + std::to_string(epoch(t7 + 1h));
  CHECK(openssl_verify(tmp / "old-ca.crt", o.dir / "tls.crt", at) ==
        "0 " + (o.dir / "tls.crt").string() + ": OK\n");
  CHECK(openssl_verify(o.dir / "ca.crt", o.dir / "tls.crt", at) ==
        "0 " + (o.dir / "tls.crt").string() + ": OK\n");
  // ... and a client given the new ca.crt trusts certificates issued before the renewal.
  CHECK(openssl_verify(o.dir / "ca.crt", tmp / "old-tls.crt", "-no_check_time") ==
        "0 " + (tmp / "old-tls.crt").string() + ": OK\n");
  CHECK(pki::verify_issued_by(first_cert(tmp / "old-tls.crt").get(), new_ca.get()));
}

TEST_CASE("a renewed CA with a still good serving certificate only updates the chain in tls.crt",
          "[pki]") {
  scratch_dir tmp;
  auto o = options_for(tmp);
  o.ca_lifetime = std::chrono::days{30};
  o.serving_lifetime = std::chrono::days{3};
  const auto names = names_for("10.0.0.5");
  const auto t0 = pki::clock::now();
  ensure_ok(o, names, t0);
  // Day 19: the serving certificate expired long ago, the CA (renewal at day 20) is kept.
  const auto day19 = ensure_ok(o, names, t0 + std::chrono::days{19});
  CHECK(day19.ca == pki::ca_action::kept);
  CHECK(day19.serving == pki::serving_action::issued);
  const auto leaf_before = first_cert(o.dir / "tls.crt");

  const auto report = ensure_ok(o, names, t0 + std::chrono::days{20} + 12h);
  CHECK(report.ca == pki::ca_action::renewed);
  CHECK(report.serving == pki::serving_action::chain_updated);
  auto chain = pki::certificates_from_pem(slurp(o.dir / "tls.crt"));
  REQUIRE(chain);
  REQUIRE(chain->size() == 2);
  CHECK(X509_cmp(chain->at(0).get(), leaf_before.get()) == 0);
  CHECK(X509_cmp(chain->at(1).get(), first_cert(o.dir / "ca.crt").get()) == 0);
}

TEST_CASE("a CA that is not yet valid because the clock went back is renewed, not re-created",
          "[pki]") {
  scratch_dir tmp;
  const auto o = options_for(tmp);
  const auto names = names_for("10.0.0.5");
  const auto t0 = pki::clock::now();
  ensure_ok(o, names, t0);
  const std::string key_before = slurp(o.dir / "ca.key");
  const auto report = ensure_ok(o, names, t0 - 2h);
  CHECK(report.ca == pki::ca_action::renewed);
  CHECK_THAT(report.ca_reason, Catch::Contains("did the clock go back?"));
  CHECK(slurp(o.dir / "ca.key") == key_before);
  CHECK(report.serving == pki::serving_action::issued);
  CHECK_THAT(report.serving_reason, Catch::StartsWith("tls.crt is not valid until"));
}

TEST_CASE("the serving certificate never outlives its CA", "[pki]") {
  scratch_dir tmp;
  auto o = options_for(tmp);
  o.ca_lifetime = std::chrono::days{30};
  ensure_ok(o, names_for("10.0.0.5"), pki::clock::now());
  CHECK(pki::validity_of(first_cert(o.dir / "tls.crt").get()).not_after ==
        pki::validity_of(first_cert(o.dir / "ca.crt").get()).not_after);
}

TEST_CASE("ensure refuses to issue a certificate without names", "[pki]") {
  scratch_dir tmp;
  auto r = pki::ensure(options_for(tmp), pki::subject_alt_names{}, pki::clock::now());
  REQUIRE_FALSE(r);
  CHECK(r.error_message() == "no names for the serving certificate");
}
