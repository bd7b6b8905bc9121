#include "token_test_support.hpp"

#include <registryd/auth/jwt.hpp>
#include <registryd/pki/certificates.hpp>

#include <openssl/x509.h>

namespace auth = registryd::auth;
namespace pki = registryd::pki;
using namespace auth_test;
using std::chrono::seconds;

namespace {

const auto now = std::chrono::system_clock::now();

std::string der_of(const fs::path& pem_file) {
  auto certs = pki::certificates_from_pem(slurp(pem_file));
  REQUIRE(certs.ok());
  unsigned char* der = nullptr;
  const int len = i2d_X509(certs->front().get(), &der);
  REQUIRE(len > 0);
  std::string out(reinterpret_cast<char*>(der), static_cast<std::size_t>(len));
  OPENSSL_free(der);
  return out;
}

pki::pkey_ptr key_of(const fs::path& pem_file) {
  auto key = pki::private_key_from_pem(slurp(pem_file));
  REQUIRE(key.ok());
  return std::move(*key);
}

// A token as the authority would make it, but signed by `key_file` and carrying `cert_file`.
std::string forged(const auth::token_claims& claims, const fs::path& key_file,
                   const fs::path& cert_file, const std::string& kid = "") {
  const auto key = key_of(key_file);
  auto token = auth::sign_token(claims, key.get(), kid, {der_of(cert_file)});
  REQUIRE(token.ok());
  return *token;
}

}  // namespace

TEST_CASE("an issued token carries the claims distribution reads and verifies", "[auth][token]") {
  scratch_dir dir;
  make_pki(dir.path());
  const auto authority = authority_in(dir.path());
  auto issued = authority->issue("reader", {{"repository", "a", {"pull"}}}, now);
  REQUIRE(issued.ok());
  CHECK(issued->expires_in == seconds{900});
  auto claims = authority->verify(issued->token, now);
  REQUIRE(claims.ok());
  CHECK(claims->issuer == "registryd");
  CHECK(claims->subject == "reader");
  CHECK(claims->audience == "registryd");
  CHECK(claims->expires_at - claims->issued_at == 900);
  CHECK(claims->not_before == claims->issued_at);
  CHECK(claims->issued_at == issued->issued_at);
  CHECK(claims->id.size() == 20);
  CHECK(claims->access == std::vector<auth::resource_actions>{{"repository", "a", {"pull"}}});
  auto parsed = auth::parse_token(issued->token);
  REQUIRE(parsed.ok());
  CHECK(parsed->header.kid == authority->key_id());
  CHECK(parsed->header.x5c == std::vector<std::string>{der_of(dir / pki::token_cert_file)});
  // Two tokens never share an id.
  CHECK(authority->verify(authority->issue("reader", {}, now)->token, now)->id != claims->id);
}

TEST_CASE("a token is refused once expired, and before it is valid, beyond a minute's leeway",
          "[auth][token]") {
  scratch_dir dir;
  make_pki(dir.path());
  const auto authority = authority_in(dir.path());
  const auto token = authority->issue("reader", {}, now)->token;
  CHECK(authority->verify(token, now + seconds{900 + 50}).ok());
  auto expired = authority->verify(token, now + seconds{900 + 70});
  REQUIRE_FALSE(expired.ok());
  CHECK_THAT(expired.error_message(), Catch::Contains("expired"));
  CHECK(authority->verify(token, now - seconds{50}).ok());
  auto early = authority->verify(token, now - seconds{70});
  REQUIRE_FALSE(early.ok());
  CHECK_THAT(early.error_message(), Catch::Contains("not valid before"));
}

TEST_CASE("a token for another service or from another issuer is refused", "[auth][token]") {
  scratch_dir dir;
  make_pki(dir.path());
  const auto ours = authority_in(dir.path());
  auth::token_settings other_service;
  other_service.service = "elsewhere";
  auth::token_settings other_issuer;
  other_issuer.issuer = "someone";
  const auto token_elsewhere = authority_in(dir.path(), other_service)->issue("u", {}, now)->token;
  const auto token_someone = authority_in(dir.path(), other_issuer)->issue("u", {}, now)->token;
  CHECK_THAT(ours->verify(token_elsewhere, now).error_message(), Catch::Contains("service"));
  CHECK_THAT(ours->verify(token_someone, now).error_message(), Catch::Contains("issued by"));
}

TEST_CASE("a token from another master's signer of the same CA is accepted, another CA's is not",
          "[auth][token]") {
  scratch_dir a, b, stranger;
  make_pki(a.path());
  // Master b shares the CA (copied in before its first start) and makes its own signer.
  fs::create_directories(b.path());
  fs::copy_file(a / pki::ca_cert_file, b / pki::ca_cert_file);
  fs::copy_file(a / pki::ca_key_file, b / pki::ca_key_file);
  make_pki(b.path());
  make_pki(stranger.path());
  CHECK(slurp(a / pki::token_key_file) != slurp(b / pki::token_key_file));
  const auto on_a = authority_in(a.path());
  const auto from_b = authority_in(b.path())->issue("u", {{"repository", "x", {"pull"}}}, now);
  REQUIRE(from_b.ok());
  CHECK(on_a->verify(from_b->token, now).ok());
  const auto from_stranger = authority_in(stranger.path())->issue("u", {}, now);
  auto refused = on_a->verify(from_stranger->token, now);
  REQUIRE_FALSE(refused.ok());
  CHECK_THAT(refused.error_message(), Catch::Contains("untrusted signer"));
}

TEST_CASE("only a token signer certificate may sign tokens: the serving key may not",
          "[auth][token]") {
  scratch_dir dir;
  make_pki(dir.path());
  const auto authority = authority_in(dir.path());
  auto claims = authority->verify(authority->issue("u", {}, now)->token, now);
  REQUIRE(claims.ok());
  const auto with_serving_key = forged(*claims, dir / pki::serving_key_file, dir / pki::serving_cert_file);
  auto refused = authority->verify(with_serving_key, now);
  REQUIRE_FALSE(refused.ok());
  CHECK_THAT(refused.error_message(), Catch::Contains("not a token signer"));
}

TEST_CASE("a token that names our key by kid alone verifies, and an unknown kid does not",
          "[auth][token]") {
  scratch_dir dir;
  make_pki(dir.path());
  const auto authority = authority_in(dir.path());
  auto claims = *authority->verify(authority->issue("u", {}, now)->token, now);
  const auto key = key_of(dir / pki::token_key_file);
  auto by_kid = auth::sign_token(claims, key.get(), authority->key_id(), {});
  REQUIRE(by_kid.ok());
  CHECK(authority->verify(*by_kid, now).ok());
  auto unknown = auth::sign_token(claims, key.get(), "AAAA:BBBB", {});
  CHECK_THAT(authority->verify(*unknown, now).error_message(), Catch::Contains("unknown key"));
  auto none = auth::sign_token(claims, key.get(), "", {});
  CHECK_FALSE(authority->verify(*none, now).ok());
}

TEST_CASE("tampered tokens and other algorithms are refused", "[auth][token]") {
  scratch_dir dir;
  make_pki(dir.path());
  const auto authority = authority_in(dir.path());
  const std::string token = authority->issue("reader", {{"repository", "a", {"pull"}}}, now)->token;
  const auto dot1 = token.find('.');
  const auto dot2 = token.rfind('.');

  // Claims that grant more, with the original signature.
  auto claims = *authority->verify(token, now);
  claims.access[0].actions = {"*"};
  const auto key = key_of(dir / pki::token_key_file);
  const auto greedy = *auth::sign_token(claims, key.get(), authority->key_id(), {der_of(dir / pki::token_cert_file)});
  const std::string spliced = token.substr(0, dot1) + greedy.substr(greedy.find('.'), greedy.rfind('.') - greedy.find('.')) + token.substr(dot2);
  CHECK_THAT(authority->verify(spliced, now).error_message(), Catch::Contains("signature"));

  // A flipped bit in the signature.
  std::string flipped = token;
  flipped[dot2 + 5] = flipped[dot2 + 5] == 'A' ? 'B' : 'A';
  CHECK_FALSE(authority->verify(flipped, now).ok());

  // alg "none" with no signature, and HS256 keyed with the public certificate.
  const std::string none_header = auth::base64url_encode(R"({"alg":"none","typ":"JWT"})");
  CHECK_THAT(authority->verify(none_header + token.substr(dot1, dot2 - dot1) + ".", now).error_message(),
             Catch::Contains("not accepted"));
  const std::string hs_header = auth::base64url_encode(R"({"alg":"HS256","typ":"JWT"})");
  CHECK_FALSE(authority->verify(hs_header + token.substr(dot1), now).ok());
}
