#include <registryd/oci/http.hpp>

#include <catch2/catch.hpp>

using namespace registryd::oci::http;

TEST_CASE("parse_range follows RFC 9110: one range served, malformed ones ignored, past the end refused", "[oci][http]") {
  auto partial = [](std::string_view h, std::uint64_t size, std::uint64_t first, std::uint64_t last) {
    INFO(h);
    const auto r = parse_range(h, size);
    REQUIRE(r.kind == range_kind::partial);
    CHECK(r.range.first == first);
    CHECK(r.range.last == last);
  };
  partial("bytes=0-0", 10, 0, 0);
  partial("bytes=2-5", 10, 2, 5);
  partial(" bytes=2-5 ", 10, 2, 5);
  partial("BYTES=2-", 10, 2, 9);
  partial("bytes=-3", 10, 7, 9);
  partial("bytes=-30", 10, 0, 9);
  partial("bytes=5-18446744073709551615", 10, 5, 9);
  partial("bytes=5-184467440737095516150000", 10, 5, 9);
  for (const char* h : {"", "bytes", "bytes=", "bytes=-", "bytes=a-b", "bytes=5-2", "items=0-1", "bytes=0-1,3-4",
                        "bytes=+1-2", "bytes=1--2", "bytes=0x1-2"}) {
    INFO(h);
    CHECK(parse_range(h, 10).kind == range_kind::whole);
  }
  CHECK(parse_range("bytes=10-", 10).kind == range_kind::unsatisfiable);
  CHECK(parse_range("bytes=-0", 10).kind == range_kind::unsatisfiable);
  CHECK(parse_range("bytes=0-", 0).kind == range_kind::unsatisfiable);
  CHECK(parse_range("bytes=99999999999999999999999-", 10).kind == range_kind::unsatisfiable);
}

TEST_CASE("parse_content_range takes the spec's and RFC's forms", "[oci][http]") {
  CHECK(parse_content_range("0-99")->length() == 100);
  CHECK(parse_content_range("bytes 5-9/100")->first == 5);
  CHECK(parse_content_range("bytes 5-9/*")->last == 9);
  CHECK_FALSE(parse_content_range("9-5"));
  CHECK_FALSE(parse_content_range("a-5"));
  CHECK_FALSE(parse_content_range("5"));
}

TEST_CASE("none_match compares entity tags weakly, quoted or bare, and takes *", "[oci][http]") {
  const std::string etag = "\"sha256:abc\"";
  CHECK(none_match("\"sha256:abc\"", etag));
  CHECK(none_match("W/\"sha256:abc\"", etag));
  CHECK(none_match("sha256:abc", etag));
  CHECK(none_match("\"x\", \"sha256:abc\"", etag));
  CHECK(none_match("*", etag));
  CHECK_FALSE(none_match("\"sha256:abd\"", etag));
  CHECK_FALSE(none_match("", etag));
}

TEST_CASE("percent coding round-trips and refuses broken escapes", "[oci][http]") {
  CHECK(percent_decode("a%2Fb%3a") == "a/b:");
  CHECK_FALSE(percent_decode("a%2"));
  CHECK_FALSE(percent_decode("a%zz"));
  CHECK(percent_encode("a b/c:") == "a%20b/c%3A");
  CHECK(next_link("/v2/_catalog", 5, "x y") == "</v2/_catalog?n=5&last=x%20y>; rel=\"next\"");
  CHECK(upload_range(0) == "0-0");
  CHECK(upload_range(10) == "0-9");
}
