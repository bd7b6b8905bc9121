// The certificate and key the front door presents, swappable while it serves.
#pragma once

#include <registryd/util/result.hpp>

#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <memory>
#include <mutex>
#include <string>
#include <string_view>

namespace registryd::frontdoor {

// A serving identity: the leaf certificate, the chain sent after it, and the private key.
// Immutable once built; shared by every handshake that picked it.
class tls_credentials {
 public:
  // Parses PEM text: `certificates` holds the leaf first, then any chain certificates.
  static util::result<std::shared_ptr<const tls_credentials>> from_pem(
      std::string_view certificates, std::string_view private_key);

  X509* leaf() const noexcept { return leaf_.get(); }
  STACK_OF(X509) * chain() const noexcept { return chain_.get(); }
  EVP_PKEY* key() const noexcept { return key_.get(); }
  // SHA-256 of the leaf's DER, hex: tells whether a reload brought a new certificate.
  const std::string& fingerprint() const noexcept { return fingerprint_; }

 private:
  struct x509_free { void operator()(X509* x) const noexcept { X509_free(x); } };
  struct chain_free {
    void operator()(STACK_OF(X509) * s) const noexcept { sk_X509_pop_free(s, X509_free); }
  };
  struct key_free { void operator()(EVP_PKEY* k) const noexcept { EVP_PKEY_free(k); } };

  std::unique_ptr<X509, x509_free> leaf_;
  std::unique_ptr<STACK_OF(X509), chain_free> chain_;
  std::unique_ptr<EVP_PKEY, key_free> key_;
  std::string fingerprint_;
};

// Holds the credentials new TLS handshakes use. Swapping them never touches connections
// already established. Thread-safe.
class credentials_slot {
 public:
  void set(std::shared_ptr<const tls_credentials> creds);
  std::shared_ptr<const tls_credentials> get() const;

  // Installs the slot on an SSL_CTX: every handshake takes the credentials current at that
  // moment (SSL_CTX_set_cert_cb). The slot must outlive the context.
  void install(SSL_CTX* ctx);

 private:
  static int on_handshake(SSL* ssl, void* arg);
  mutable std::mutex mutex_;
  std::shared_ptr<const tls_credentials> creds_;
};

}  // namespace registryd::frontdoor
