#include <registryd/pki/subject_alt_names.hpp>

#include <catch2/catch.hpp>

namespace pki = registryd::pki;

TEST_CASE("serving names hold the platform names, the node IP and the extra names", "[pki]") {
  auto names = pki::serving_names("10.0.0.5", {"Registry.Example.COM.", "192.168.1.10",
                                               "2001:DB8::0001", "*.mirror.example"});
  REQUIRE(names);
  CHECK(names->dns == std::set<std::string>{"localhost", "registry.d8-system.svc",
                                            "registry.example.com", "*.mirror.example"});
  CHECK(names->ips == std::set<std::string>{"127.0.0.1", "10.0.0.5", "192.168.1.10", "2001:db8::1"});
}

TEST_CASE("serving names without a node IP still hold the platform names", "[pki]") {
  auto names = pki::serving_names("", {});
  REQUIRE(names);
  CHECK(names->to_string() == "DNS:localhost, DNS:registry.d8-system.svc, IP:127.0.0.1");
}

TEST_CASE("an extra name that is neither a DNS name nor an IP is refused with its index",
          "[pki]") {
  for (const char* bad : {"bad name", "under_score.example", "-lead.example", "a..b", "",
                          "300.1.2.3.4/24"}) {
    INFO(bad);
    auto names = pki::serving_names("10.0.0.5", {"ok.example", bad});
    REQUIRE_FALSE(names);
    CHECK(names.error_message().rfind("extra name [1]: ", 0) == 0);
  }
}

TEST_CASE("a node IP that is not an IP address is refused", "[pki]") {
  auto names = pki::serving_names("master-1", {});
  REQUIRE_FALSE(names);
  CHECK(names.error_message() == "node IP \"master-1\" is not an IP address");
}

TEST_CASE("a label longer than 63 characters is refused", "[pki]") {
  pki::subject_alt_names names;
  auto st = pki::add_name(names, std::string(64, 'a') + ".example");
  REQUIRE_FALSE(st);
  CHECK_THAT(st.error_message(), Catch::Contains("longer than 63"));
}
