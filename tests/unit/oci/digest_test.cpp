#include <registryd/oci/digest.hpp>

#include <catch2/catch.hpp>
#include <test_support.hpp>

#include <fstream>

using registryd::oci::digest;
using registryd::oci::digest_algorithm;

TEST_CASE("sha256 and sha512 digests of known inputs match the published values", "[oci][digest]") {
  CHECK(registryd::oci::digest_of("").str() ==
        "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  CHECK(registryd::oci::digest_of("abc", digest_algorithm::sha512).str() ==
        "sha512:ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f");
}

TEST_CASE("a hasher fed in pieces equals the digest of the whole, and can go on after current()", "[oci][digest]") {
  registryd::oci::hasher h;
  h.update("hello ");
  const auto partial = h.current();
  h.update("world");
  CHECK(partial == registryd::oci::digest_of("hello "));
  CHECK(h.current() == registryd::oci::digest_of("hello world"));
}

TEST_CASE("digest parsing accepts only registered algorithms with lowercase hex of the right length", "[oci][digest]") {
  const std::string hex64(64, 'a');
  CHECK(digest::parse("sha256:" + hex64));
  CHECK(digest::parse("sha512:" + std::string(128, '0')));
  CHECK_FALSE(digest::parse("sha256:" + std::string(64, 'A')));
  CHECK_FALSE(digest::parse("sha256:" + std::string(63, 'a')));
  CHECK_FALSE(digest::parse("sha512:" + hex64));
  CHECK_FALSE(digest::parse("md5:" + std::string(32, 'a')));
  CHECK_FALSE(digest::parse("sha256" + hex64));
  CHECK_FALSE(digest::parse(""));
  const auto d = digest::parse("sha256:" + hex64);
  CHECK(d->hex() == hex64);
  CHECK(d->algorithm_name() == "sha256");
}

TEST_CASE("the digest of a file is read in chunks and equals the digest of its bytes", "[oci][digest]") {
  registryd::test::scratch_dir dir;
  std::string content(700 * 1024, 'x');
  content += "tail";
  std::ofstream(dir.path() / "f", std::ios::binary) << content;
  CHECK(registryd::oci::digest_of_file(dir.path() / "f") == registryd::oci::digest_of(content));
  CHECK_FALSE(registryd::oci::digest_of_file(dir.path() / "missing"));
}
