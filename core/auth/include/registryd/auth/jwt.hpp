// JSON Web Tokens as the docker registry token protocol uses them: compact JWS, ES256 (ECDSA
// P-256 with SHA-256, the signature as the raw 64-byte r||s of RFC 7518), and the claims
// distribution's token verifier reads. OpenSSL 3 EVP does the cryptography.
#pragma once

#include <registryd/auth/scope.hpp>
#include <registryd/util/result.hpp>

#include <openssl/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace registryd::auth {

// The claim set. `aud` is written as a single string: distribution 2.8 refuses a list.
struct token_claims {
  std::string issuer;    // iss
  std::string subject;   // sub: the account name
  std::string audience;  // aud: the service
  std::int64_t expires_at = 0;  // exp, Unix seconds
  std::int64_t not_before = 0;  // nbf
  std::int64_t issued_at = 0;   // iat
  std::string id;               // jti, random
  std::vector<resource_actions> access;
  bool operator==(const token_claims&) const = default;
};

// The JOSE header fields a verifier uses to find the key.
struct token_header {
  std::string alg;               // "ES256"
  std::string kid;               // libtrust key ID of the signing key
  std::vector<std::string> x5c;  // DER certificates, signing certificate first
};

// A token split and decoded, not yet verified.
struct parsed_token {
  token_header header;
  token_claims claims;
  std::string signing_input;  // "<header>.<claims>" as received: what the signature covers
  std::string signature;      // raw bytes
};

// base64url without padding (RFC 7515, section 2).
std::string base64url_encode(std::string_view bytes);
// Accepts unpadded base64url only; nullopt for anything else.
std::optional<std::string> base64url_decode(std::string_view text);

// The libtrust key ID docker's tools print and distribution 2.x looks a `kid` up by: SHA-256
// over the DER SubjectPublicKeyInfo, first 240 bits, base32 without padding, in groups of four
// joined by ':' ("ABCD:EFGH:...", 12 groups). "" when the key cannot be encoded.
std::string libtrust_key_id(const EVP_PKEY* key);

// Signs `claims` with the P-256 `key` into a compact JWS with header
// {"typ":"JWT","alg":"ES256","kid":<kid>,"x5c":[<base64 DER>...]} (kid and x5c left out when
// empty). Fails only when OpenSSL does.
util::result<std::string> sign_token(const token_claims& claims, EVP_PKEY* key,
                                     std::string_view kid,
                                     const std::vector<std::string>& x5c_der);

// Splits and decodes a compact JWS; checks the shape (three parts, JSON objects, claim types),
// not the signature. The error says what is wrong, for logs.
util::result<parsed_token> parse_token(std::string_view compact);

// True when `signature` (raw r||s, 64 bytes) is a valid ES256 signature of `signing_input`
// under the P-256 public key `key`.
bool verify_es256(const EVP_PKEY* key, std::string_view signing_input, std::string_view signature);

}  // namespace registryd::auth
