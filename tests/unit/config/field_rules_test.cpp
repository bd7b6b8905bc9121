#include <registryd/config/address.hpp>
#include <registryd/config/module_config.hpp>

#include "test_data.hpp"

#include <catch2/catch.hpp>

using namespace registryd::config;
using namespace registryd::config::test;
using namespace std::chrono_literals;

TEST_CASE("parse_duration reads hours, minutes and seconds in that order", "[config][ttl]") {
  const std::vector<std::pair<std::string, std::chrono::seconds>> good = {
      {"168h", 168h},   {"72h", 72h},      {"5m", 5min},    {"300s", 300s},
      {"1h30m", 90min}, {"1h2m3s", 3723s}, {"0s", 0s},      {"90m", 90min},
      {"007m", 7min},   {"2h15s", 7215s},  {"4m60s", 300s},
  };
  for (const auto& [text, expected] : good) {
    INFO(text);
    auto parsed = parse_duration(text);
    REQUIRE(parsed.ok());
    CHECK(*parsed == expected);
  }
}

TEST_CASE("parse_duration refuses what the pattern does not match", "[config][ttl]") {
  for (const std::string bad : {"", "h", "5", "5 m", "m5", "5M", "1s1m", "1m1h", "1h1h", "-5m",
                                "+5m", "5.5h", "1d", "1h 30m", "5ms", " 5m", "5m "}) {
    INFO(bad);
    CHECK_FALSE(parse_duration(bad).ok());
  }
  CHECK(parse_duration("").error_message() == "must not be empty");
}

TEST_CASE("parse_duration reports a duration too large to hold instead of wrapping", "[config][ttl]") {
  auto huge = parse_duration("99999999999999999999h");
  REQUIRE_FALSE(huge.ok());
  CHECK(huge.error_message().rfind("is too large", 0) == 0);
  auto overflow = parse_duration("9223372036854775807s1s");  // not in order: syntax error first
  CHECK_FALSE(overflow.ok());
  auto sum = parse_duration("2562047788015215h59m");  // fits alone, not with the minutes
  REQUIRE_FALSE(sum.ok());
  CHECK(sum.error_message().rfind("is too large", 0) == 0);
}

TEST_CASE("check_images_repo accepts what the pattern accepts", "[config][imagesRepo]") {
  for (const std::string good :
       {"registry.deckhouse.io/deckhouse/ce", "r.example.com", "r.example.com:5000",
        "r.example.com:5000/a", "10.0.0.1:443/deckhouse/ee", "localhost/a_b/c-d/e.f", "R-1.X/Y_Z",
        "host:1", "host:65535/x"}) {
    INFO(good);
    CHECK_FALSE(check_images_repo(good));
  }
}

TEST_CASE("check_images_repo refuses what the pattern refuses", "[config][imagesRepo]") {
  for (const std::string bad :
       {"", "/a", "r.example.com/", "r.example.com//a", "r.example.com:/a", "r.example.com:123456",
        "r.example.com:65536", "r.example.com:5000:1", "r_x.example.com", "r.example.com/a b",
        "http://r.example.com", "r.example.com/a:tag", "r.example.com/a@sha256", "[::1]:5000/a",
        "r.example.com\n/a"}) {
    INFO(bad);
    CHECK(check_images_repo(bad));
  }
}

TEST_CASE("check_ca_bundle accepts one or more certificates with text between them",
          "[config][ca]") {
  CHECK_FALSE(check_ca_bundle(cert_a));
  CHECK_FALSE(check_ca_bundle(std::string(cert_a) + std::string(cert_b)));
  CHECK_FALSE(check_ca_bundle("# the upstream CA\n" + std::string(cert_a) + "\n# another\n" +
                              std::string(cert_b)));
}

TEST_CASE("check_ca_bundle names the block that is wrong", "[config][ca]") {
  CHECK(check_ca_bundle("") ==
        "must be one or more PEM-encoded X.509 certificates (-----BEGIN CERTIFICATE-----), found "
        "no PEM block");
  CHECK(check_ca_bundle(public_key) == "PEM block 1 is PUBLIC KEY, expected CERTIFICATE");
  CHECK(check_ca_bundle(std::string(cert_a) + std::string(cert_b) + std::string(public_key)) ==
        "PEM block 3 is PUBLIC KEY, expected CERTIFICATE");
  CHECK(check_ca_bundle(std::string(cert_a) + std::string(not_a_certificate)) ==
        "PEM block 2 is not a valid X.509 certificate");
  std::string bad_base64(cert_a);
  bad_base64[70] = '*';
  CHECK(check_ca_bundle(bad_base64) ==
        "PEM block 1 is not valid PEM (bad base64 or a missing END line)");
}

TEST_CASE("parse_host_port accepts IPv4, bracketed IPv6 and DNS names", "[config][address]") {
  struct row {
    std::string text;
    std::string host;
    std::uint16_t port;
  };
  for (const auto& r :
       std::vector<row>{{"127.0.0.1:5001", "127.0.0.1", 5001},
                        {"0.0.0.0:0", "0.0.0.0", 0},
                        {"[::1]:5001", "::1", 5001},
                        {"[fe80::1]:65535", "fe80::1", 65535},
                        {"localhost:80", "localhost", 80},
                        {"registry.d8-system.svc:5001", "registry.d8-system.svc", 5001}}) {
    INFO(r.text);
    auto parsed = parse_host_port(r.text);
    REQUIRE(parsed.ok());
    CHECK(parsed->host == r.host);
    CHECK(parsed->port == r.port);
  }
}

TEST_CASE("parse_host_port says what is wrong", "[config][address]") {
  struct row {
    std::string text;
    std::string reason;
  };
  for (const auto& r : std::vector<row>{
           {"127.0.0.1",
            "must be host:port (e.g. 127.0.0.1:5001 or [::1]:5001), got \"127.0.0.1\""},
           {"", "must be host:port (e.g. 127.0.0.1:5001 or [::1]:5001), got \"\""},
           {"127.0.0.1:70000", "port must be a number from 0 to 65535, got \"70000\""},
           {"127.0.0.1:", "port must be a number from 0 to 65535, got \"\""},
           {"127.0.0.1:+80", "port must be a number from 0 to 65535, got \"+80\""},
           {"127.0.0.1:http", "port must be a number from 0 to 65535, got \"http\""},
           {":5001",
            "the host is missing (write 0.0.0.0:PORT to listen on every address), got \":5001\""},
           {"::1:5001", "an IPv6 host must be in brackets (e.g. [::1]:5001), got \"::1:5001\""},
           {"[::1]", "must be host:port (e.g. 127.0.0.1:5001 or [::1]:5001), got \"[::1]\""},
           {"[127.0.0.1]:80", "host \"127.0.0.1\" in brackets must be an IPv6 address"},
           {"300.1.1.1:80", "host \"300.1.1.1\" is neither an IP address nor a DNS name"},
           {"bad_host:80", "host \"bad_host\" is neither an IP address nor a DNS name"},
       }) {
    INFO(r.text);
    auto parsed = parse_host_port(r.text);
    REQUIRE_FALSE(parsed.ok());
    CHECK(parsed.error_message() == r.reason);
  }
}

TEST_CASE("is_dns_name follows the label rules", "[config][address]") {
  for (const std::string good : {"a", "example.com", "registry.d8-system.svc", "x-1.y", "1a.b"}) {
    INFO(good);
    CHECK(is_dns_name(good));
  }
  for (const std::string& bad :
       std::vector<std::string>{"", ".", "a..b", "-a.b", "a-.b", "a_b", "a.b.", "1.2.3.4", "300",
                                std::string(64, 'a'), "*.example.com"}) {
    INFO(bad);
    CHECK_FALSE(is_dns_name(bad));
  }
  CHECK(is_dns_name(std::string(63, 'a') + ".b"));
}

TEST_CASE("is_ip_address and is_unspecified_ip know IPv4 and IPv6", "[config][address]") {
  CHECK(is_ip_address("192.0.2.10"));
  CHECK(is_ip_address("::1"));
  CHECK(is_ip_address("2001:db8::1"));
  CHECK_FALSE(is_ip_address("192.0.2"));
  CHECK_FALSE(is_ip_address("[::1]"));
  CHECK_FALSE(is_ip_address("example.com"));
  CHECK_FALSE(is_ip_address(""));
  CHECK(is_unspecified_ip("0.0.0.0"));
  CHECK(is_unspecified_ip("::"));
  CHECK_FALSE(is_unspecified_ip("127.0.0.1"));
  CHECK_FALSE(is_unspecified_ip("x"));
}
