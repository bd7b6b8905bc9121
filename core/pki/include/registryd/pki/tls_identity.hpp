// The serving identity as the HTTPS front door uses it: loaded from the PKI directory, swapped
// atomically while the server runs.
//
// Hot swap: keep a std::shared_ptr<const tls_identity> (behind a mutex or std::atomic), and in an
// SSL_CTX_set_cert_cb callback install the current one into each new connection with
// install_identity(SSL*, ...). Changing certificates on an SSL_CTX that is in use by other
// threads is not thread-safe in OpenSSL; per-connection installation is. After pki::ensure()
// reports a change, load again and swap when chain_fingerprint differs.
#pragma once

#include <registryd/pki/certificates.hpp>
#include <registryd/pki/openssl_ptr.hpp>
#include <registryd/util/result.hpp>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

namespace registryd::pki {

// Immutable once loaded; share it freely between threads (OpenSSL objects are reference
// counted and only read).
struct tls_identity {
  x509_ptr leaf;
  std::vector<x509_ptr> chain;  // what is sent after the leaf (the CA certificate)
  pkey_ptr key;
  std::string leaf_fingerprint;   // sha256_fingerprint(leaf)
  std::string chain_fingerprint;  // SHA-256 over leaf and chain: changes when anything sent does
  std::string serial;             // serial_hex(leaf)
  clock::time_point not_after;
};

// Loads tls.crt and tls.key from `pki_dir`. Fails (with the file and reason) when a file is
// missing or damaged or the key does not belong to the certificate.
util::result<std::shared_ptr<const tls_identity>> load_tls_identity(
    const std::filesystem::path& pki_dir);

// The CA certificate as PEM text, to hand to clients (containerd's hosts.toml `ca`, Secrets).
// Fails when ca.crt is missing or does not hold a certificate.
util::result<std::string> ca_pem(const std::filesystem::path& pki_dir);

// Installs certificate, chain and key into one connection (thread-safe per connection) or into
// a context that no other thread is using yet. Checks that the key matches.
util::status install_identity(SSL* ssl, const tls_identity& identity);
util::status install_identity(SSL_CTX* ctx, const tls_identity& identity);

}  // namespace registryd::pki
