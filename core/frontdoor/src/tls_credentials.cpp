#include <registryd/frontdoor/tls_credentials.hpp>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <array>
#include <cstdio>

namespace registryd::frontdoor {
namespace {

std::string openssl_error() {
  const unsigned long code = ERR_get_error();
  ERR_clear_error();
  if (code == 0) return "no detail";
  std::array<char, 256> buf{};
  ERR_error_string_n(code, buf.data(), buf.size());
  return buf.data();
}

struct bio_free { void operator()(BIO* b) const noexcept { BIO_free(b); } };
using bio_ptr = std::unique_ptr<BIO, bio_free>;

bio_ptr memory_bio(std::string_view text) {
  return bio_ptr(BIO_new_mem_buf(text.data(), static_cast<int>(text.size())));
}

}  // namespace

util::result<std::shared_ptr<const tls_credentials>> tls_credentials::from_pem(
    std::string_view certificates, std::string_view private_key) {
  auto creds = std::make_shared<tls_credentials>();
  auto certs = memory_bio(certificates);
  creds->leaf_.reset(PEM_read_bio_X509(certs.get(), nullptr, nullptr, nullptr));
  if (!creds->leaf_) return util::error{"serving certificate is not PEM X.509: " + openssl_error()};
  creds->chain_.reset(sk_X509_new_null());
  while (X509* extra = PEM_read_bio_X509(certs.get(), nullptr, nullptr, nullptr)) {
    sk_X509_push(creds->chain_.get(), extra);
  }
  ERR_clear_error();  // the loop ends on "no start line", which is not an error

  auto key = memory_bio(private_key);
  creds->key_.reset(PEM_read_bio_PrivateKey(key.get(), nullptr, nullptr, nullptr));
  if (!creds->key_) return util::error{"serving key is not a PEM private key: " + openssl_error()};
  if (X509_check_private_key(creds->leaf_.get(), creds->key_.get()) != 1) {
    ERR_clear_error();
    return util::error{"serving key does not match the serving certificate"};
  }

  std::array<unsigned char, EVP_MAX_MD_SIZE> md{};
  unsigned int md_len = 0;
  X509_digest(creds->leaf_.get(), EVP_sha256(), md.data(), &md_len);
  for (unsigned int i = 0; i < md_len; ++i) {
    std::array<char, 3> hex{};
    std::snprintf(hex.data(), hex.size(), "%02x", md[i]);
    creds->fingerprint_ += hex.data();
  }
  return std::shared_ptr<const tls_credentials>(std::move(creds));
}

void credentials_slot::set(std::shared_ptr<const tls_credentials> creds) {
  std::lock_guard lock(mutex_);
  creds_ = std::move(creds);
}

std::shared_ptr<const tls_credentials> credentials_slot::get() const {
  std::lock_guard lock(mutex_);
  return creds_;
}

void credentials_slot::install(SSL_CTX* ctx) { SSL_CTX_set_cert_cb(ctx, &on_handshake, this); }

int credentials_slot::on_handshake(SSL* ssl, void* arg) {
  const auto creds = static_cast<credentials_slot*>(arg)->get();
  if (!creds) return 0;  // no certificate yet: fail the handshake
  // SSL_use_* take their own references, so the connection keeps what it picked even if the
  // slot moves on to new credentials in the middle of it.
  if (SSL_use_certificate(ssl, creds->leaf()) != 1) return 0;
  if (SSL_use_PrivateKey(ssl, creds->key()) != 1) return 0;
  if (SSL_set1_chain(ssl, creds->chain()) != 1) return 0;
  return 1;
}

}  // namespace registryd::frontdoor
