#include <registryd/auth/token_authority.hpp>

#include <registryd/pki/certificates.hpp>
#include <registryd/pki/pki_directory.hpp>
#include <registryd/pki/token_signer.hpp>
#include <registryd/util/atomic_file.hpp>

#include <openssl/err.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include <array>

namespace registryd::auth {
namespace {

std::string der_of(X509* cert) {
  unsigned char* der = nullptr;
  const int len = i2d_X509(cert, &der);
  if (len <= 0) {
    ERR_clear_error();
    return {};
  }
  std::string out(reinterpret_cast<const char*>(der), static_cast<std::size_t>(len));
  OPENSSL_free(der);
  return out;
}

std::int64_t unix_seconds(token_authority::clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
}

}  // namespace

token_authority::token_authority(pki::pkey_ptr key, pki::x509_ptr cert, pki::x509_ptr ca,
                                 std::string cert_der, std::string key_id,
                                 token_settings settings)
    : key_(std::move(key)),
      cert_(std::move(cert)),
      ca_(std::move(ca)),
      cert_der_(std::move(cert_der)),
      key_id_(std::move(key_id)),
      settings_(std::move(settings)) {}

util::result<std::shared_ptr<const token_authority>> token_authority::create(
    pki::pkey_ptr key, pki::x509_ptr cert, pki::x509_ptr ca, token_settings settings) {
  if (!key || !cert || !ca) return util::error{"a token authority needs a key, its certificate and the CA"};
  if (!pki::key_matches(cert.get(), key.get())) {
    return util::error{"the token signing key does not belong to its certificate"};
  }
  std::string der = der_of(cert.get());
  std::string kid = libtrust_key_id(key.get());
  if (der.empty() || kid.empty()) return util::error{"encoding the token signer failed"};
  return std::shared_ptr<const token_authority>(
      new token_authority(std::move(key), std::move(cert), std::move(ca), std::move(der),
                          std::move(kid), std::move(settings)));
}

util::result<std::shared_ptr<const token_authority>> token_authority::load(
    const std::filesystem::path& pki_dir, token_settings settings) {
  auto read = [&](const char* name, std::string& out) -> util::status {
    std::error_code ec;
    out = util::read_small_file(pki_dir / name, ec);
    if (ec) return util::error{"reading " + (pki_dir / name).string() + ": " + ec.message()};
    return util::ok();
  };
  std::string key_text, cert_text, ca_text;
  if (auto st = read(pki::token_key_file, key_text); !st) return util::error{st.error_message()};
  if (auto st = read(pki::token_cert_file, cert_text); !st) return util::error{st.error_message()};
  if (auto st = read(pki::ca_cert_file, ca_text); !st) return util::error{st.error_message()};
  auto key = pki::private_key_from_pem(key_text);
  if (!key) return util::error{std::string(pki::token_key_file) + ": " + key.error_message()};
  auto certs = pki::certificates_from_pem(cert_text);
  if (!certs) return util::error{std::string(pki::token_cert_file) + ": " + certs.error_message()};
  auto cas = pki::certificates_from_pem(ca_text);
  if (!cas) return util::error{std::string(pki::ca_cert_file) + ": " + cas.error_message()};
  return create(std::move(*key), std::move(certs->front()), std::move(cas->front()),
                std::move(settings));
}

util::result<issued_token> token_authority::issue(std::string_view subject,
                                                  std::vector<resource_actions> access,
                                                  clock::time_point now) const {
  std::array<unsigned char, 15> random{};
  if (RAND_bytes(random.data(), random.size()) != 1) {
    ERR_clear_error();
    return util::error{"no randomness for a token id"};
  }
  token_claims claims;
  claims.issuer = settings_.issuer;
  claims.subject = std::string(subject);
  claims.audience = settings_.service;
  claims.issued_at = unix_seconds(now);
  claims.not_before = claims.issued_at;
  claims.expires_at = claims.issued_at + settings_.lifetime.count();
  claims.id = base64url_encode({reinterpret_cast<const char*>(random.data()), random.size()});
  claims.access = std::move(access);
  auto token = sign_token(claims, key_.get(), key_id_, {cert_der_});
  if (!token) return util::error{token.error_message()};
  return issued_token{std::move(*token), claims.issued_at, settings_.lifetime,
                      std::move(claims.access)};
}

util::result<token_claims> token_authority::verify(std::string_view token,
                                                   clock::time_point now) const {
  auto parsed = parse_token(token);
  if (!parsed) return util::error{parsed.error_message()};
  if (parsed->header.alg != "ES256") {
    return util::error{"algorithm \"" + parsed->header.alg + "\" is not accepted (ES256 only)"};
  }

  // Which key: ours (the certificate we send, or our kid), or another token signer of our CA.
  const EVP_PKEY* key = nullptr;
  pki::x509_ptr other;
  const auto& x5c = parsed->header.x5c;
  if (!x5c.empty() && x5c.front() == cert_der_) {
    key = key_.get();
  } else if (!x5c.empty()) {
    const auto* p = reinterpret_cast<const unsigned char*>(x5c.front().data());
    other.reset(d2i_X509(nullptr, &p, static_cast<long>(x5c.front().size())));
    if (!other) {
      ERR_clear_error();
      return util::error{"the x5c certificate does not parse"};
    }
    if (auto st = pki::verify_token_signer(other.get(), ca_.get(), now); !st) {
      return util::error{"untrusted signer: " + st.error_message()};
    }
    key = X509_get0_pubkey(other.get());
  } else if (!parsed->header.kid.empty() && parsed->header.kid == key_id_) {
    key = key_.get();
  } else {
    return util::error{"signed by an unknown key (kid \"" + parsed->header.kid + "\", no x5c)"};
  }
  if (key == nullptr || !verify_es256(key, parsed->signing_input, parsed->signature)) {
    return util::error{"the signature does not verify"};
  }

  const auto& c = parsed->claims;
  if (c.issuer != settings_.issuer) return util::error{"issued by \"" + c.issuer + "\""};
  if (c.audience != settings_.service) return util::error{"meant for service \"" + c.audience + "\""};
  const std::int64_t t = unix_seconds(now);
  const std::int64_t leeway = settings_.leeway.count();
  if (c.expires_at == 0 || t > c.expires_at + leeway) {
    return util::error{"expired at " + std::to_string(c.expires_at)};
  }
  if (t < c.not_before - leeway) return util::error{"not valid before " + std::to_string(c.not_before)};
  return std::move(parsed->claims);
}

}  // namespace registryd::auth
