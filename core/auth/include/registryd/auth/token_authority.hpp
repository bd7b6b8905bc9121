// The host's side of the docker registry token protocol: issues tokens at /auth/token and
// verifies the ones clients send to /v2/. See docs/security.md, "Token authentication".
#pragma once

#include <registryd/auth/jwt.hpp>
#include <registryd/auth/scope.hpp>
#include <registryd/pki/openssl_ptr.hpp>
#include <registryd/util/result.hpp>

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace registryd::auth {

// The names a token is bound to. A registry that trusts registryd's tokens (docker-registry's
// `auth: token`) is configured with the same issuer and service.
inline constexpr std::string_view default_token_issuer = "registryd";
inline constexpr std::string_view default_token_service = "registryd";

struct token_settings {
  std::string issuer{default_token_issuer};
  std::string service{default_token_service};  // the `aud` claim and the challenge's service
  std::chrono::seconds lifetime{900};
  // Clock skew allowed on exp and nbf, as distribution allows.
  std::chrono::seconds leeway{60};
};

struct issued_token {
  std::string token;
  std::int64_t issued_at = 0;  // Unix seconds
  std::chrono::seconds expires_in{0};
  std::vector<resource_actions> access;  // what was granted
};

// Immutable once made; every member function is thread-safe. The host replaces the whole
// object (shared_ptr swap) when the token signer or the CA changes.
class token_authority {
 public:
  using clock = std::chrono::system_clock;

  // `key` signs, `cert` is its certificate (sent as x5c), `ca` is the CA that any trusted
  // signer's certificate must chain to (another master's, say).
  static util::result<std::shared_ptr<const token_authority>> create(pki::pkey_ptr key,
                                                                     pki::x509_ptr cert,
                                                                     pki::x509_ptr ca,
                                                                     token_settings settings);
  // Reads token.key, token.crt and ca.crt from a PKI directory (pki/token_signer.hpp).
  static util::result<std::shared_ptr<const token_authority>> load(
      const std::filesystem::path& pki_dir, token_settings settings = {});

  // A token for `subject` holding exactly `access` (the caller has intersected it with what
  // the account may do: grant() in scope.hpp).
  util::result<issued_token> issue(std::string_view subject, std::vector<resource_actions> access,
                                   clock::time_point now) const;

  // The claims of a token this host, or another signer certified by the same CA, issued for
  // this service, valid at `now` (within the leeway). Checked: the algorithm (ES256 only), the
  // signing key (our own by x5c or kid, or an x5c certificate that is a token signer of our
  // CA), the signature, iss, aud, exp and nbf. The error says which check failed, for logs;
  // clients are told only "invalid token".
  util::result<token_claims> verify(std::string_view token, clock::time_point now) const;

  const token_settings& settings() const noexcept { return settings_; }
  const std::string& key_id() const noexcept { return key_id_; }  // libtrust key ID

 private:
  token_authority(pki::pkey_ptr key, pki::x509_ptr cert, pki::x509_ptr ca, std::string cert_der,
                  std::string key_id, token_settings settings);

  pki::pkey_ptr key_;
  pki::x509_ptr cert_;
  pki::x509_ptr ca_;
  std::string cert_der_;
  std::string key_id_;
  token_settings settings_;
};

}  // namespace registryd::auth
