// The key that signs registry tokens (JWTs, docs/security.md "Token authentication") and its
// certificate, issued by the host CA and kept in the PKI directory beside it:
//
//   token.key  the signing key (ECDSA P-256, PKCS#8 PEM), mode 0600
//   token.crt  its certificate, signed by ca.crt; CN "registryd token signer", CA:FALSE,
//              keyUsage digitalSignature only
//
// Why a CA-issued certificate and not a bare key: every master has its own token key, yet a
// client that got a token from one master through the node balancer may spend it on another.
// Tokens carry their certificate (the JWT header's x5c), so any master, and any registry given
// ca.crt as its token root bundle, accepts a token from any master that shares the CA.
//
// Not safe to run concurrently on the same directory; the host owns its state directory.
#pragma once

#include <registryd/pki/certificates.hpp>
#include <registryd/util/result.hpp>

#include <chrono>
#include <filesystem>
#include <string>
#include <string_view>

namespace registryd::pki {

inline constexpr const char* token_cert_file = "token.crt";
inline constexpr const char* token_key_file = "token.key";
// The subject CN that tells a token signer from any other certificate of the same CA. A
// serving certificate's CN is one of its DNS names or IPs and can never hold a space.
inline constexpr std::string_view token_signer_common_name = "registryd token signer";

struct token_signer_report {
  bool issued = false;  // a new key and certificate were written
  std::string reason;   // why, when issued
  std::string summary() const;
};

// Makes sure `dir` holds a token key and a certificate for it that chains to the CA in the
// same directory (run after ensure(), which makes the CA). A new key and certificate are
// written when either is missing or unreadable as PEM, they do not match, the certificate does
// not chain to ca.crt (the CA was re-created), it is not a token signer, it is expired or not
// yet valid at `now`, or two thirds of its lifetime have passed. The key is written before the
// certificate, each atomically. Errors are I/O and OpenSSL failures, and a missing CA.
util::result<token_signer_report> ensure_token_signer(
    const std::filesystem::path& dir, clock::time_point now,
    std::chrono::seconds lifetime = std::chrono::days{365});

// A token signing certificate for `key`, signed by `ca`/`ca_key` (see the file comment).
util::result<x509_ptr> issue_token_signer_certificate(EVP_PKEY* key, X509* ca, EVP_PKEY* ca_key,
                                                      const validity& v);

// OK when `cert` is a token signer certificate (CN, not a CA, digitalSignature allowed) that
// chains to `ca` and is valid at `now`; otherwise why not.
util::status verify_token_signer(X509* cert, X509* ca, clock::time_point now);

}  // namespace registryd::pki
