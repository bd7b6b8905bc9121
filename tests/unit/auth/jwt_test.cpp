#include "token_test_support.hpp"

#include <registryd/auth/jwt.hpp>
#include <registryd/pki/certificates.hpp>

#include <nlohmann/json.hpp>

namespace auth = registryd::auth;
namespace pki = registryd::pki;
using namespace auth_test;

namespace {

pki::pkey_ptr new_key() {
  auto key = pki::generate_p256_key();
  REQUIRE(key.ok());
  return std::move(*key);
}

auth::token_claims sample_claims() {
  auth::token_claims c;
  c.issuer = "registryd";
  c.subject = "reader";
  c.audience = "registryd";
  c.issued_at = 1700000000;
  c.not_before = 1700000000;
  c.expires_at = 1700000900;
  c.id = "abc";
  c.access = {{"repository", "system/deckhouse", {"pull"}}};
  return c;
}

std::string replace_part(const std::string& token, int part, const std::string& with) {
  const auto d1 = token.find('.');
  const auto d2 = token.find('.', d1 + 1);
  if (part == 1) return with + token.substr(d1);
  if (part == 2) return token.substr(0, d1 + 1) + with + token.substr(d2);
  return token.substr(0, d2 + 1) + with;
}

}  // namespace

TEST_CASE("base64url has no padding and refuses what is not base64url", "[auth][token]") {
  CHECK(auth::base64url_encode("") == "");
  CHECK(auth::base64url_encode("f") == "Zg");
  CHECK(auth::base64url_encode("fo") == "Zm8");
  CHECK(auth::base64url_encode("foo") == "Zm9v");
  CHECK(auth::base64url_encode("\xfb\xff") == "-_8");
  for (const std::string& s : {std::string(), std::string("f"), std::string("foob"),
                               std::string("\xff\xfe\x00\x01", 4)}) {
    CHECK(auth::base64url_decode(auth::base64url_encode(s)) == s);
  }
  CHECK_FALSE(auth::base64url_decode("Zg=="));
  CHECK_FALSE(auth::base64url_decode("Z+8"));
  CHECK_FALSE(auth::base64url_decode("Zh"));  // leftover bits not zero
  CHECK_FALSE(auth::base64url_decode("Z"));
}

TEST_CASE("the key id is libtrust's: SHA-256 of the public key DER, 240 bits, base32 in groups",
          "[auth][token]") {
  scratch_dir dir;
  const auto key = new_key();
  spill(dir / "key.pem", pki::to_pem(key.get()));
  // The same computation by other tools: openssl for the DER and the hash, coreutils' base32.
  std::string expected = output_of("openssl pkey -in " + quote(dir / "key.pem") +
                                   " -pubout -outform DER | openssl dgst -sha256 -binary | "
                                   "head -c 30 | base32 -w0");
  while (!expected.empty() && (expected.back() == '=' || expected.back() == '\n')) expected.pop_back();
  REQUIRE(expected.size() == 48);
  std::string grouped;
  for (std::size_t i = 0; i < expected.size(); i += 4) {
    grouped += (i ? ":" : "") + expected.substr(i, 4);
  }
  CHECK(auth::libtrust_key_id(key.get()) == grouped);
}

TEST_CASE("a signed token parses back to its claims and its ES256 signature verifies",
          "[auth][token]") {
  const auto key = new_key();
  auto token = auth::sign_token(sample_claims(), key.get(), "KID", {"der-bytes"});
  REQUIRE(token.ok());
  auto parsed = auth::parse_token(*token);
  REQUIRE(parsed.ok());
  CHECK(parsed->claims == sample_claims());
  CHECK(parsed->header.alg == "ES256");
  CHECK(parsed->header.kid == "KID");
  CHECK(parsed->header.x5c == std::vector<std::string>{"der-bytes"});
  CHECK(parsed->signature.size() == 64);  // raw r||s, not DER
  CHECK(auth::verify_es256(key.get(), parsed->signing_input, parsed->signature));
  CHECK_FALSE(auth::verify_es256(new_key().get(), parsed->signing_input, parsed->signature));

  // What distribution 2.8 reads: aud a string, times numbers, access entries with actions.
  const auto claims_json = nlohmann::json::parse(
      *auth::base64url_decode(token->substr(token->find('.') + 1, token->rfind('.') - token->find('.') - 1)));
  CHECK(claims_json.at("aud").is_string());
  CHECK(claims_json.at("exp").is_number_integer());
  CHECK(claims_json.at("access")[0].at("actions")[0] == "pull");
  const auto header_json = nlohmann::json::parse(*auth::base64url_decode(token->substr(0, token->find('.'))));
  CHECK(header_json.at("typ") == "JWT");
  CHECK(header_json.at("x5c")[0] == "ZGVyLWJ5dGVz");  // standard base64 of "der-bytes"
}

TEST_CASE("a tampered token no longer verifies", "[auth][token]") {
  const auto key = new_key();
  auto token = auth::sign_token(sample_claims(), key.get(), "", {});
  REQUIRE(token.ok());
  auto claims = sample_claims();
  claims.access[0].actions = {"pull", "push"};
  auto other = auth::sign_token(claims, key.get(), "", {});
  REQUIRE(other.ok());
  // Someone else's claims under this signature.
  const std::string other_claims = other->substr(other->find('.') + 1, other->rfind('.') - other->find('.') - 1);
  auto swapped = auth::parse_token(replace_part(*token, 2, other_claims));
  REQUIRE(swapped.ok());
  CHECK_FALSE(auth::verify_es256(key.get(), swapped->signing_input, swapped->signature));
  // A flipped signature bit.
  auto parsed = auth::parse_token(*token);
  REQUIRE(parsed.ok());
  std::string sig = parsed->signature;
  sig[10] = static_cast<char>(sig[10] ^ 1);
  CHECK_FALSE(auth::verify_es256(key.get(), parsed->signing_input, sig));
  CHECK_FALSE(auth::verify_es256(key.get(), parsed->signing_input, sig.substr(1)));
}

TEST_CASE("malformed tokens are refused with a reason", "[auth][token]") {
  const auto key = new_key();
  auto token = auth::sign_token(sample_claims(), key.get(), "", {});
  REQUIRE(token.ok());
  for (const std::string& bad :
       {std::string(""), std::string("a.b"), std::string("a.b.c.d"), std::string("!!.e30.e30"),
        replace_part(*token, 1, auth::base64url_encode("not json")),
        replace_part(*token, 1, auth::base64url_encode("[]")),
        replace_part(*token, 2, auth::base64url_encode(R"({"exp":"soon"})")),
        replace_part(*token, 2, auth::base64url_encode(R"({"aud":["a","b"]})")),
        replace_part(*token, 2, auth::base64url_encode(R"({"access":[{"type":"repository","actions":"pull"}]})")),
        replace_part(*token, 1, auth::base64url_encode(R"({"alg":"ES256","x5c":["not base64!"]})")),
        std::string(20000, 'a')}) {
    INFO(bad.substr(0, 80));
    CHECK_FALSE(auth::parse_token(bad).ok());
  }
  CHECK(auth::parse_token(replace_part(*token, 2, auth::base64url_encode(R"({"aud":["one"]})")))
            ->claims.audience == "one");
}
