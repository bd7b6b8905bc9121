#include <registryd/pki/certificates.hpp>
#include <registryd/pki/pki_directory.hpp>
#include <registryd/pki/token_signer.hpp>

#include "pki_test_support.hpp"

namespace pki = registryd::pki;
using namespace pki_test;
using std::chrono::days;

namespace {

const auto now = pki::clock::now();

void make_ca_and_serving(const fs::path& dir, pki::clock::time_point when = now) {
  auto names = pki::serving_names("127.0.0.1", {});
  REQUIRE(names.ok());
  pki::pki_options options;
  options.dir = dir;
  REQUIRE(pki::ensure(options, *names, when).ok());
}

pki::x509_ptr first_cert(const fs::path& file) {
  auto certs = pki::certificates_from_pem(slurp(file));
  REQUIRE(certs.ok());
  return std::move(certs->front());
}

}  // namespace

TEST_CASE("the token signer is issued by the host CA, kept private, and kept on the next pass",
          "[pki]") {
  scratch_dir dir;
  make_ca_and_serving(dir.path());
  auto first = pki::ensure_token_signer(dir.path(), now);
  REQUIRE(first.ok());
  CHECK(first->issued);
  CHECK(first->reason == "token.key is missing");
  CHECK(fs::status(dir / "token.key").permissions() ==
        (fs::perms::owner_read | fs::perms::owner_write));
  // openssl agrees that it chains to ca.crt, and shows what it may do.
  output_of("openssl verify -CAfile " + quote(dir / "ca.crt") + " " + quote(dir / "token.crt"));
  const std::string text = output_of("openssl x509 -noout -text -in " + quote(dir / "token.crt"));
  CHECK_THAT(text, Catch::Contains("CN = registryd token signer"));
  CHECK_THAT(text, Catch::Contains("Digital Signature"));
  CHECK_THAT(text, Catch::Contains("CA:FALSE"));
  CHECK_THAT(text, !Catch::Contains("TLS Web Server Authentication"));

  const std::string key_before = slurp(dir / "token.key");
  auto second = pki::ensure_token_signer(dir.path(), now + days{30});
  REQUIRE(second.ok());
  CHECK_FALSE(second->issued);
  CHECK(second->summary() == "token signer kept");
  CHECK(slurp(dir / "token.key") == key_before);
}

TEST_CASE("the token signer is re-issued when damaged, when the CA is new, and at two thirds of "
          "its life",
          "[pki]") {
  scratch_dir dir;
  make_ca_and_serving(dir.path());
  REQUIRE(pki::ensure_token_signer(dir.path(), now).ok());

  spill(dir / "token.crt", "garbage\n");
  auto damaged = pki::ensure_token_signer(dir.path(), now);
  REQUIRE(damaged.ok());
  CHECK(damaged->issued);
  CHECK_THAT(damaged->reason, Catch::Contains("not a readable certificate"));

  fs::remove(dir / "ca.crt");
  fs::remove(dir / "ca.key");
  make_ca_and_serving(dir.path());
  auto new_ca = pki::ensure_token_signer(dir.path(), now);
  REQUIRE(new_ca.ok());
  CHECK(new_ca->issued);
  CHECK_THAT(new_ca->reason, Catch::Contains("does not verify against ca.crt"));

  auto old = pki::ensure_token_signer(dir.path(), now + days{250});
  REQUIRE(old.ok());
  CHECK(old->issued);
  CHECK_THAT(old->reason, Catch::Contains("two thirds of its lifetime"));
}

TEST_CASE("a serving certificate of the same CA is no token signer", "[pki]") {
  scratch_dir dir;
  make_ca_and_serving(dir.path());
  REQUIRE(pki::ensure_token_signer(dir.path(), now).ok());
  const auto ca = first_cert(dir / "ca.crt");
  CHECK(pki::verify_token_signer(first_cert(dir / "token.crt").get(), ca.get(), now).ok());
  auto serving = pki::verify_token_signer(first_cert(dir / "tls.crt").get(), ca.get(), now);
  REQUIRE_FALSE(serving.ok());
  CHECK_THAT(serving.error_message(), Catch::Contains("not a token signer"));
  auto expired = pki::verify_token_signer(first_cert(dir / "token.crt").get(), ca.get(),
                                          now + days{400});
  CHECK_FALSE(expired.ok());
}

TEST_CASE("without a CA there is no token signer", "[pki]") {
  scratch_dir dir;
  CHECK_FALSE(pki::ensure_token_signer(dir.path(), now).ok());
  CHECK_FALSE(fs::exists(dir / "token.key"));
}
