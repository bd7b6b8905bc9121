#include <registryd/oci/reference.hpp>

#include <catch2/catch.hpp>

using namespace registryd::oci;

TEST_CASE("repository names follow the distribution grammar", "[oci][reference]") {
  for (const char* good : {"a", "library/alpine", "system/deckhouse", "a.b_c__d---e/f0", "x/y/z"}) {
    INFO(good);
    CHECK(is_valid_repository_name(good));
  }
  for (const char* bad : {"", "A", "a/", "/a", "a//b", "a..b", "a___b", "-a", "a-", "a/_b", "a b", "a:b"}) {
    INFO(bad);
    CHECK_FALSE(is_valid_repository_name(bad));
  }
  CHECK(is_valid_repository_name(std::string(255, 'a')));
  CHECK_FALSE(is_valid_repository_name(std::string(256, 'a')));
}

TEST_CASE("tags follow the distribution grammar", "[oci][reference]") {
  CHECK(is_valid_tag("latest"));
  CHECK(is_valid_tag("v1.2.3-rc_1"));
  CHECK(is_valid_tag("_x"));
  CHECK(is_valid_tag(std::string(128, 'a')));
  CHECK_FALSE(is_valid_tag(std::string(129, 'a')));
  CHECK_FALSE(is_valid_tag(".x"));
  CHECK_FALSE(is_valid_tag("-x"));
  CHECK_FALSE(is_valid_tag("a/b"));
  CHECK_FALSE(is_valid_tag(""));
}

TEST_CASE("image references split into registry, repository, tag and digest", "[oci][reference]") {
  const std::string d = "sha256:" + std::string(64, 'b');
  auto r = image_reference::parse("registry.example.com:5000/deckhouse/ee:v1.60.1@" + d);
  REQUIRE(r);
  CHECK(r->registry == "registry.example.com:5000");
  CHECK(r->repository == "deckhouse/ee");
  CHECK(r->tag == "v1.60.1");
  CHECK(r->digest->str() == d);
  CHECK(r->manifest_reference() == d);
  CHECK(r->str() == "registry.example.com:5000/deckhouse/ee:v1.60.1@" + d);

  r = image_reference::parse("localhost/app");
  REQUIRE(r);
  CHECK(r->tag == "latest");
  CHECK(r->manifest_reference() == "latest");

  r = image_reference::parse("127.0.0.1:5000/app@" + d);
  REQUIRE(r);
  CHECK_FALSE(r->tag);

  std::string error;
  CHECK_FALSE(image_reference::parse("library/alpine", &error));
  CHECK(error.find("does not name a registry") != std::string::npos);
  CHECK_FALSE(image_reference::parse("r.io/Alpine", &error));
  CHECK(error.find("invalid repository name") != std::string::npos);
  CHECK_FALSE(image_reference::parse("r.io/a@sha256:zz", &error));
  CHECK(error.find("invalid digest") != std::string::npos);
}

TEST_CASE("an imagesRepo splits into registry and path", "[oci][reference]") {
  auto loc = repository_location::parse("registry.example.com/deckhouse/ee");
  REQUIRE(loc);
  CHECK(loc->registry == "registry.example.com");
  CHECK(loc->path == "deckhouse/ee");
  loc = repository_location::parse("127.0.0.1:5000");
  REQUIRE(loc);
  CHECK(loc->path.empty());
  CHECK(loc->str() == "127.0.0.1:5000");
  CHECK_FALSE(repository_location::parse("r.io//x"));
  CHECK_FALSE(repository_location::parse(""));
}
