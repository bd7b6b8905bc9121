#include <registryd/pki/pki_directory.hpp>
#include <registryd/pki/tls_identity.hpp>

#include "pki_test_support.hpp"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <cctype>
#include <chrono>
#include <memory>

namespace pki = registryd::pki;
using namespace std::chrono_literals;
using pki_test::quote;
using pki_test::run;
using pki_test::scratch_dir;
using pki_test::slurp;

namespace {

pki::pki_options ensured(const scratch_dir& dir, pki::clock::time_point now = pki::clock::now(),
                         const std::string& node_ip = "10.0.0.5") {
  pki::pki_options o;
  o.dir = dir.path() / "pki";
  auto names = pki::serving_names(node_ip, {});
  REQUIRE(names);
  auto r = pki::ensure(o, *names, now);
  REQUIRE(r);
  return o;
}

std::shared_ptr<const pki::tls_identity> load(const pki::pki_options& o) {
  auto id = pki::load_tls_identity(o.dir);
  INFO((id ? std::string() : id.error_message()));
  REQUIRE(id);
  return *id;
}

// The server side of the hot swap as the front door does it: the current identity is installed
// into each connection from the certificate callback.
int install_current(SSL* ssl, void* arg) {
  const auto* current = static_cast<std::shared_ptr<const pki::tls_identity>*>(arg);
  return pki::install_identity(ssl, **current) ? 1 : 0;
}

// Runs a TLS handshake over an in-memory BIO pair; true when both ends completed it.
bool handshake(SSL* client, SSL* server) {
  BIO* client_bio = nullptr;
  BIO* server_bio = nullptr;
  REQUIRE(BIO_new_bio_pair(&client_bio, 0, &server_bio, 0) == 1);
  SSL_set_bio(client, client_bio, client_bio);
  SSL_set_bio(server, server_bio, server_bio);
  SSL_set_connect_state(client);
  SSL_set_accept_state(server);
  bool client_done = false;
  bool server_done = false;
  for (int round = 0; round < 50 && !(client_done && server_done); ++round) {
    for (auto [ssl, done] : {std::pair{client, &client_done}, std::pair{server, &server_done}}) {
      if (*done) continue;
      const int rc = SSL_do_handshake(ssl);
      if (rc == 1) {
        *done = true;
        continue;
      }
      const int err = SSL_get_error(ssl, rc);
      if (err != SSL_ERROR_WANT_READ && err != SSL_ERROR_WANT_WRITE) return false;
    }
  }
  return client_done && server_done;
}

}  // namespace

TEST_CASE("a loaded identity holds the leaf, the CA as chain and the matching key", "[pki]") {
  scratch_dir tmp;
  const auto o = ensured(tmp);
  const auto id = load(o);
  REQUIRE(id->leaf);
  REQUIRE(id->key);
  REQUIRE(id->chain.size() == 1);
  auto ca = pki::certificates_from_pem(slurp(o.dir / "ca.crt"));
  REQUIRE(ca);
  CHECK(X509_cmp(id->chain[0].get(), ca->front().get()) == 0);
  CHECK(pki::key_matches(id->leaf.get(), id->key.get()));
  CHECK(id->leaf_fingerprint.size() == 64);
  CHECK(id->chain_fingerprint.size() == 64);
  CHECK(id->not_after == pki::validity_of(id->leaf.get()).not_after);

  const auto serial = run("openssl x509 -noout -serial -in " + quote(o.dir / "tls.crt"));
  CHECK(serial.output == "serial=" + id->serial + "\n");
  auto fp = run("openssl x509 -noout -fingerprint -sha256 -in " + quote(o.dir / "tls.crt")).output;
  std::string hex;
  for (char c : fp.substr(fp.find('=') + 1)) {
    if (std::isxdigit(static_cast<unsigned char>(c))) hex += static_cast<char>(std::tolower(c));
  }
  CHECK(hex == id->leaf_fingerprint);
}

TEST_CASE("the fingerprints change when the serving certificate is re-issued and only then",
          "[pki]") {
  scratch_dir tmp;
  const auto now = pki::clock::now();
  const auto o = ensured(tmp, now);
  const auto first = load(o);
  ensured(tmp, now + 1h);
  const auto same = load(o);
  CHECK(same->leaf_fingerprint == first->leaf_fingerprint);
  CHECK(same->chain_fingerprint == first->chain_fingerprint);
  ensured(tmp, now + 1h, "10.0.0.9");
  const auto changed = load(o);
  CHECK(changed->leaf_fingerprint != first->leaf_fingerprint);
  CHECK(changed->chain_fingerprint != first->chain_fingerprint);
  CHECK(changed->serial != first->serial);
}

TEST_CASE("the chain fingerprint changes when only the CA in tls.crt changes", "[pki]") {
  scratch_dir tmp;
  pki::pki_options o;
  o.dir = tmp.path() / "pki";
  o.ca_lifetime = std::chrono::days{30};
  o.serving_lifetime = std::chrono::days{3};
  const auto names = pki::serving_names("10.0.0.5", {});
  REQUIRE(names);
  const auto t0 = pki::clock::now();
  REQUIRE(pki::ensure(o, *names, t0));
  REQUIRE(pki::ensure(o, *names, t0 + std::chrono::days{19}));  // new leaf, same CA
  const auto before = load(o);
  auto r = pki::ensure(o, *names, t0 + std::chrono::days{20} + 12h);
  REQUIRE(r);
  REQUIRE(r->serving == pki::serving_action::chain_updated);
  const auto after = load(o);
  CHECK(after->leaf_fingerprint == before->leaf_fingerprint);
  CHECK(after->chain_fingerprint != before->chain_fingerprint);
}

TEST_CASE("ca_pem returns the CA certificate for clients", "[pki]") {
  scratch_dir tmp;
  const auto o = ensured(tmp);
  auto pem = pki::ca_pem(o.dir);
  REQUIRE(pem);
  CHECK(*pem == slurp(o.dir / "ca.crt"));
  CHECK(pem->rfind("-----BEGIN CERTIFICATE-----\n", 0) == 0);
}

TEST_CASE("loading an identity names the missing or mismatched file", "[pki]") {
  scratch_dir tmp;
  scratch_dir other;
  const auto o = ensured(tmp);
  const auto foreign = ensured(other);
  std::filesystem::copy_file(foreign.dir / "tls.key", o.dir / "tls.key",
                             std::filesystem::copy_options::overwrite_existing);
  auto mismatched = pki::load_tls_identity(o.dir);
  REQUIRE_FALSE(mismatched);
  CHECK_THAT(mismatched.error_message(), Catch::EndsWith("tls.key does not belong to " +
                                                         (o.dir / "tls.crt").string()));
  std::filesystem::remove(o.dir / "tls.key");
  auto missing = pki::load_tls_identity(o.dir);
  REQUIRE_FALSE(missing);
  CHECK_THAT(missing.error_message(), Catch::StartsWith((o.dir / "tls.key").string()));
  std::filesystem::remove(o.dir / "ca.crt");
  CHECK_FALSE(pki::ca_pem(o.dir));
}

TEST_CASE("a client trusting ca.crt completes a handshake for the fixed address and refuses "
          "other names",
          "[pki]") {
  scratch_dir tmp;
  const auto o = ensured(tmp);
  auto current = load(o);

  pki::ssl_ctx_ptr server_ctx(SSL_CTX_new(TLS_server_method()));
  REQUIRE(server_ctx);
  SSL_CTX_set_cert_cb(server_ctx.get(), install_current, &current);
  pki::ssl_ctx_ptr client_ctx(SSL_CTX_new(TLS_client_method()));
  REQUIRE(client_ctx);
  REQUIRE(SSL_CTX_load_verify_locations(client_ctx.get(), (o.dir / "ca.crt").c_str(), nullptr) == 1);
  SSL_CTX_set_verify(client_ctx.get(), SSL_VERIFY_PEER, nullptr);

  for (const char* host : {"registry.d8-system.svc", "localhost", "127.0.0.1"}) {
    INFO(host);
    pki::ssl_ptr client(SSL_new(client_ctx.get()));
    pki::ssl_ptr server(SSL_new(server_ctx.get()));
    REQUIRE(SSL_set1_host(client.get(), host) == 1);
    CHECK(handshake(client.get(), server.get()));
    CHECK(SSL_get_verify_result(client.get()) == X509_V_OK);
  }

  pki::ssl_ptr client(SSL_new(client_ctx.get()));
  pki::ssl_ptr server(SSL_new(server_ctx.get()));
  REQUIRE(SSL_set1_host(client.get(), "evil.example") == 1);
  CHECK_FALSE(handshake(client.get(), server.get()));
  CHECK(SSL_get_verify_result(client.get()) == X509_V_ERR_HOSTNAME_MISMATCH);
  ERR_clear_error();
}

TEST_CASE("an identity installed into a context passes the key check", "[pki]") {
  scratch_dir tmp;
  const auto id = load(ensured(tmp));
  pki::ssl_ctx_ptr ctx(SSL_CTX_new(TLS_server_method()));
  REQUIRE(ctx);
  CHECK(pki::install_identity(ctx.get(), *id));
  CHECK(SSL_CTX_check_private_key(ctx.get()) == 1);
}
