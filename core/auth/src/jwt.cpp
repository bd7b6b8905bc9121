#include <registryd/auth/jwt.hpp>

#include <nlohmann/json.hpp>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include <array>
#include <memory>

namespace registryd::auth {
namespace {

using json = nlohmann::json;

template <auto Free>
struct free_with {
  template <typename T>
  void operator()(T* p) const noexcept {
    Free(p);
  }
};
using md_ctx_ptr = std::unique_ptr<EVP_MD_CTX, free_with<EVP_MD_CTX_free>>;
using ecdsa_sig_ptr = std::unique_ptr<ECDSA_SIG, free_with<ECDSA_SIG_free>>;
using bignum_ptr = std::unique_ptr<BIGNUM, free_with<BN_free>>;

constexpr std::size_t p256_octets = 32;

constexpr std::string_view url_alphabet =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
constexpr std::string_view std_alphabet =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

std::string base64_encode(std::string_view bytes, std::string_view alphabet, bool pad) {
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    const auto n = (std::uint32_t(std::uint8_t(bytes[i])) << 16) |
                   (std::uint32_t(std::uint8_t(bytes[i + 1])) << 8) | std::uint8_t(bytes[i + 2]);
    for (int shift = 18; shift >= 0; shift -= 6) out += alphabet[(n >> shift) & 63];
  }
  const std::size_t rest = bytes.size() - i;
  if (rest > 0) {
    std::uint32_t n = std::uint32_t(std::uint8_t(bytes[i])) << 16;
    if (rest == 2) n |= std::uint32_t(std::uint8_t(bytes[i + 1])) << 8;
    out += alphabet[(n >> 18) & 63];
    out += alphabet[(n >> 12) & 63];
    if (rest == 2) out += alphabet[(n >> 6) & 63];
    if (pad) out.append(rest == 1 ? "==" : "=");
  }
  return out;
}

// Unpadded text in `alphabet`; nullopt for any other character or non-zero leftover bits
// (which would let two texts decode to the same bytes).
std::optional<std::string> base64_decode(std::string_view text, std::string_view alphabet) {
  if (text.size() % 4 == 1) return std::nullopt;
  std::string out;
  out.reserve(text.size() * 3 / 4);
  std::uint32_t acc = 0;
  int bits = 0;
  for (const char c : text) {
    const auto pos = alphabet.find(c);
    if (pos == std::string_view::npos) return std::nullopt;
    acc = ((acc << 6) | static_cast<std::uint32_t>(pos)) & 0xffffff;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((acc >> bits) & 0xff);
    }
  }
  if ((acc & ((1u << bits) - 1)) != 0) return std::nullopt;
  return out;
}

// Standard base64 with its padding, as x5c entries are (RFC 7515, section 4.1.6).
std::optional<std::string> base64_decode_padded(std::string_view text) {
  if (text.size() % 4 != 0) return std::nullopt;
  std::size_t pad = 0;
  while (pad < 2 && pad < text.size() && text[text.size() - 1 - pad] == '=') ++pad;
  return base64_decode(text.substr(0, text.size() - pad), std_alphabet);
}

std::string as_string(const unsigned char* data, std::size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

json claims_to_json(const token_claims& c) {
  json access = json::array();
  for (const auto& r : c.access) {
    access.push_back({{"type", r.type}, {"name", r.name}, {"actions", r.actions}});
  }
  return {{"iss", c.issuer},     {"sub", c.subject},    {"aud", c.audience},
          {"exp", c.expires_at}, {"nbf", c.not_before}, {"iat", c.issued_at},
          {"jti", c.id},         {"access", access}};
}

// Reads an optional string member; false when present with another type.
bool read_string(const json& obj, const char* key, std::string& out) {
  const auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return true;
  if (!it->is_string()) return false;
  out = it->get<std::string>();
  return true;
}

bool read_time(const json& obj, const char* key, std::int64_t& out) {
  const auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return true;
  if (!it->is_number()) return false;
  out = it->is_number_float() ? static_cast<std::int64_t>(it->get<double>()) : it->get<std::int64_t>();
  return true;
}

util::result<token_claims> claims_from_json(const json& j) {
  if (!j.is_object()) return util::error{"the claims are not a JSON object"};
  token_claims c;
  if (!read_string(j, "iss", c.issuer) || !read_string(j, "sub", c.subject) ||
      !read_string(j, "jti", c.id)) {
    return util::error{"iss, sub or jti is not a string"};
  }
  if (const auto aud = j.find("aud"); aud != j.end()) {
    if (aud->is_string()) {
      c.audience = aud->get<std::string>();
    } else if (aud->is_array() && aud->size() == 1 && aud->front().is_string()) {
      c.audience = aud->front().get<std::string>();
    } else if (!aud->is_null()) {
      return util::error{"aud is neither a string nor a list of one string"};
    }
  }
  if (!read_time(j, "exp", c.expires_at) || !read_time(j, "nbf", c.not_before) ||
      !read_time(j, "iat", c.issued_at)) {
    return util::error{"exp, nbf or iat is not a number"};
  }
  if (const auto access = j.find("access"); access != j.end() && !access->is_null()) {
    if (!access->is_array()) return util::error{"access is not a list"};
    for (const auto& item : *access) {
      if (!item.is_object()) return util::error{"an access entry is not an object"};
      resource_actions r;
      if (!read_string(item, "type", r.type) || !read_string(item, "name", r.name)) {
        return util::error{"an access entry's type or name is not a string"};
      }
      if (const auto actions = item.find("actions"); actions != item.end() && !actions->is_null()) {
        if (!actions->is_array()) return util::error{"an access entry's actions is not a list"};
        for (const auto& a : *actions) {
          if (!a.is_string()) return util::error{"an action is not a string"};
          r.actions.push_back(a.get<std::string>());
        }
      }
      c.access.push_back(std::move(r));
    }
  }
  return c;
}

bool is_p256(const EVP_PKEY* key) {
  if (key == nullptr || EVP_PKEY_is_a(key, "EC") != 1) return false;
  char group[64] = {};
  std::size_t len = 0;
  const bool ok = EVP_PKEY_get_group_name(key, group, sizeof group, &len) == 1 &&
                  std::string_view(group, len) == "prime256v1";
  ERR_clear_error();
  return ok;
}

}  // namespace

std::string base64url_encode(std::string_view bytes) {
  return base64_encode(bytes, url_alphabet, false);
}

std::optional<std::string> base64url_decode(std::string_view text) {
  return base64_decode(text, url_alphabet);
}

std::string libtrust_key_id(const EVP_PKEY* key) {
  unsigned char* der = nullptr;
  const int len = i2d_PUBKEY(key, &der);
  if (len <= 0) {
    ERR_clear_error();
    return {};
  }
  std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
  unsigned int digest_len = 0;
  const bool ok = EVP_Digest(der, static_cast<std::size_t>(len), digest.data(), &digest_len,
                             EVP_sha256(), nullptr) == 1;
  OPENSSL_free(der);
  if (!ok) {
    ERR_clear_error();
    return {};
  }
  // 30 bytes = 240 bits = 48 base32 characters, no padding needed.
  constexpr std::string_view base32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  std::string encoded;
  std::uint64_t acc = 0;
  int bits = 0;
  for (std::size_t i = 0; i < 30; ++i) {
    acc = (acc << 8) | digest[i];
    bits += 8;
    while (bits >= 5) {
      bits -= 5;
      encoded += base32[(acc >> bits) & 31];
    }
  }
  std::string out;
  for (std::size_t i = 0; i < encoded.size(); i += 4) {
    if (i > 0) out += ':';
    out += encoded.substr(i, 4);
  }
  return out;
}

util::result<std::string> sign_token(const token_claims& claims, EVP_PKEY* key,
                                     std::string_view kid,
                                     const std::vector<std::string>& x5c_der) {
  if (!is_p256(key)) return util::error{"the token signing key is not an ECDSA P-256 key"};
  json header = {{"typ", "JWT"}, {"alg", "ES256"}};
  if (!kid.empty()) header["kid"] = std::string(kid);
  if (!x5c_der.empty()) {
    json chain = json::array();
    for (const auto& der : x5c_der) chain.push_back(base64_encode(der, std_alphabet, true));
    header["x5c"] = std::move(chain);
  }
  const std::string input =
      base64url_encode(header.dump()) + "." + base64url_encode(claims_to_json(claims).dump());

  md_ctx_ptr ctx(EVP_MD_CTX_new());
  std::size_t der_len = 0;
  if (!ctx || EVP_DigestSignInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key) != 1 ||
      EVP_DigestSign(ctx.get(), nullptr, &der_len,
                     reinterpret_cast<const unsigned char*>(input.data()), input.size()) != 1) {
    ERR_clear_error();
    return util::error{"signing the token failed"};
  }
  std::string der(der_len, '\0');
  auto* der_bytes = reinterpret_cast<unsigned char*>(der.data());
  if (EVP_DigestSign(ctx.get(), der_bytes, &der_len,
                     reinterpret_cast<const unsigned char*>(input.data()), input.size()) != 1) {
    ERR_clear_error();
    return util::error{"signing the token failed"};
  }
  // EVP gives a DER ECDSA-Sig-Value; JWS wants r and s as two 32-byte big-endian numbers.
  const unsigned char* p = der_bytes;
  ecdsa_sig_ptr sig(d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(der_len)));
  std::array<unsigned char, 2 * p256_octets> raw{};
  const BIGNUM* r = nullptr;
  const BIGNUM* s = nullptr;
  if (sig) ECDSA_SIG_get0(sig.get(), &r, &s);
  if (!sig || BN_bn2binpad(r, raw.data(), p256_octets) != p256_octets ||
      BN_bn2binpad(s, raw.data() + p256_octets, p256_octets) != p256_octets) {
    ERR_clear_error();
    return util::error{"encoding the token signature failed"};
  }
  return input + "." + base64url_encode(as_string(raw.data(), raw.size()));
}

util::result<parsed_token> parse_token(std::string_view compact) {
  // Our tokens are about 1.5 KiB (most of it the certificate); anything far larger is not one.
  if (compact.size() > 16 * 1024) return util::error{"the token is too long"};
  const auto dot1 = compact.find('.');
  const auto dot2 = dot1 == std::string_view::npos ? dot1 : compact.find('.', dot1 + 1);
  if (dot2 == std::string_view::npos || compact.find('.', dot2 + 1) != std::string_view::npos) {
    return util::error{"a token has three parts separated by '.'"};
  }
  const auto header_text = base64url_decode(compact.substr(0, dot1));
  const auto claims_text = base64url_decode(compact.substr(dot1 + 1, dot2 - dot1 - 1));
  auto signature = base64url_decode(compact.substr(dot2 + 1));
  if (!header_text || !claims_text || !signature) return util::error{"a part is not base64url"};

  const json header = json::parse(*header_text, nullptr, false);
  const json claims = json::parse(*claims_text, nullptr, false);
  if (header.is_discarded() || !header.is_object()) return util::error{"the header is not JSON"};
  if (claims.is_discarded()) return util::error{"the claims are not JSON"};

  parsed_token out;
  if (!read_string(header, "alg", out.header.alg) || !read_string(header, "kid", out.header.kid)) {
    return util::error{"alg or kid is not a string"};
  }
  if (const auto x5c = header.find("x5c"); x5c != header.end() && !x5c->is_null()) {
    if (!x5c->is_array()) return util::error{"x5c is not a list"};
    for (const auto& cert : *x5c) {
      if (!cert.is_string()) return util::error{"an x5c entry is not a string"};
      auto der = base64_decode_padded(cert.get<std::string>());
      if (!der) return util::error{"an x5c entry is not base64"};
      out.header.x5c.push_back(std::move(*der));
    }
  }
  auto parsed_claims = claims_from_json(claims);
  if (!parsed_claims) return util::error{parsed_claims.error_message()};
  out.claims = std::move(*parsed_claims);
  out.signing_input = std::string(compact.substr(0, dot2));
  out.signature = std::move(*signature);
  return out;
}

bool verify_es256(const EVP_PKEY* key, std::string_view signing_input, std::string_view signature) {
  if (signature.size() != 2 * p256_octets || !is_p256(key)) return false;
  const auto* raw = reinterpret_cast<const unsigned char*>(signature.data());
  bignum_ptr r(BN_bin2bn(raw, p256_octets, nullptr));
  bignum_ptr s(BN_bin2bn(raw + p256_octets, p256_octets, nullptr));
  ecdsa_sig_ptr sig(ECDSA_SIG_new());
  if (!r || !s || !sig || ECDSA_SIG_set0(sig.get(), r.get(), s.get()) != 1) {
    ERR_clear_error();
    return false;
  }
  r.release();  // owned by sig now
  s.release();
  unsigned char* der = nullptr;
  const int der_len = i2d_ECDSA_SIG(sig.get(), &der);
  if (der_len <= 0) {
    ERR_clear_error();
    return false;
  }
  md_ctx_ptr ctx(EVP_MD_CTX_new());
  // EVP_DigestVerifyInit takes a non-const key; it only reads it.
  const bool ok =
      ctx &&
      EVP_DigestVerifyInit(ctx.get(), nullptr, EVP_sha256(), nullptr,
                           const_cast<EVP_PKEY*>(key)) == 1 &&
      EVP_DigestVerify(ctx.get(), der, static_cast<std::size_t>(der_len),
                       reinterpret_cast<const unsigned char*>(signing_input.data()),
                       signing_input.size()) == 1;
  OPENSSL_free(der);
  ERR_clear_error();
  return ok;
}

}  // namespace registryd::auth
