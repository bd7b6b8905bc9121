#include <registryd/oci/semver.hpp>

#include <catch2/catch.hpp>

#include <string>
#include <vector>

using registryd::oci::semver;

TEST_CASE("semantic versions parse with an optional v and reject what the grammar forbids", "[semver]") {
  const auto v = semver::parse("v1.56.3");
  REQUIRE(v);
  CHECK(v->major == 1);
  CHECK(v->minor == 56);
  CHECK(v->patch == 3);
  CHECK(v->is_release());
  const auto pre = semver::parse("1.0.0-rc.1+build.5");
  REQUIRE(pre);
  CHECK(pre->prerelease == std::vector<std::string>{"rc", "1"});
  CHECK(pre->build == "build.5");
  CHECK(pre->str() == "1.0.0-rc.1+build.5");
  for (const char* bad : {"", "v", "1", "1.2", "1.2.3.4", "v01.2.3", "1.02.3", "1.2.3-", "1.2.3-01",
                          "1.2.3-a..b", "1.2.3+", "latest", "v1.2.x", "1.2.3-rc_1", "V1.2.3", "-1.2.3"}) {
    INFO(bad);
    CHECK_FALSE(semver::parse(bad));
  }
  CHECK(semver::parse("1.2.3-0a"));
  CHECK(semver::parse("18446744073709551615.0.0"));
  CHECK_FALSE(semver::parse("18446744073709551616.0.0"));
}

TEST_CASE("semver precedence follows the example chain of semver.org item 11", "[semver]") {
  const std::vector<std::string> chain{"1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta",
                                       "1.0.0-beta.2", "1.0.0-beta.11", "1.0.0-rc.1", "1.0.0",
                                       "1.0.1", "1.1.0", "1.10.0", "2.0.0"};
  for (std::size_t i = 0; i + 1 < chain.size(); ++i) {
    INFO(chain[i] << " < " << chain[i + 1]);
    CHECK(*semver::parse(chain[i]) < *semver::parse(chain[i + 1]));
    CHECK(*semver::parse(chain[i + 1]) > *semver::parse(chain[i]));
  }
  CHECK(*semver::parse("1.0.0+a") == *semver::parse("1.0.0+b"));
}

TEST_CASE("release tags are v, then MAJOR.MINOR.PATCH and nothing else", "[semver]") {
  CHECK(registryd::oci::is_release_tag("v1.56.3"));
  CHECK(registryd::oci::is_release_tag("v0.0.0"));
  for (const char* not_release : {"1.56.3", "v1.56", "v1.56.3-rc.1", "v1.56.3+x", "main", "v1.56.3.1", ""}) {
    INFO(not_release);
    CHECK_FALSE(registryd::oci::is_release_tag(not_release));
  }
}

TEST_CASE("the N newest releases are chosen by semver, not by text, newest first", "[semver]") {
  const std::vector<std::string> tags{"v1.9.0", "v1.10.0", "latest", "v1.10.1-rc.1", "v1.2.3",
                                      "v1.10.1", "alpha", "v2.0.0", "1.99.0", "v1.10.0", "sha256-abc.sig"};
  CHECK(registryd::oci::newest_releases(tags, 3) == std::vector<std::string>{"v2.0.0", "v1.10.1", "v1.10.0"});
  CHECK(registryd::oci::newest_releases(tags, 100) ==
        std::vector<std::string>{"v2.0.0", "v1.10.1", "v1.10.0", "v1.9.0", "v1.2.3"});
  CHECK(registryd::oci::newest_releases(tags, 0).empty());
  CHECK(registryd::oci::newest_releases({}, 3).empty());
}
