#include <registryd/oci/client/link_header.hpp>

#include <catch2/catch.hpp>

using namespace registryd::oci::client;

TEST_CASE("the next page link is found as registries send it", "[client][link]") {
  CHECK(next_link(R"(</v2/_catalog?last=b&n=100>; rel="next")") == "/v2/_catalog?last=b&n=100");
  CHECK(next_link("</v2/a/tags/list?n=2&last=v2>; rel=next") == "/v2/a/tags/list?n=2&last=v2");
  CHECK(next_link(R"(<https://r.example/v2/_catalog?last=x>;rel="next")") == "https://r.example/v2/_catalog?last=x");
}

TEST_CASE("only a link whose rel holds next counts", "[client][link]") {
  CHECK_FALSE(next_link(R"(</v2/x>; rel="prev")"));
  CHECK(next_link(R"(</first>; rel="prev", </second>; title="a, b"; rel="NEXT last")") == "/second");
  CHECK(next_link(std::vector<std::string_view>{R"(</a>; rel="prev")", R"(</b>; rel="next")"}) == "/b");
}

TEST_CASE("malformed link headers yield no link", "[client][link]") {
  CHECK_FALSE(next_link(""));
  CHECK_FALSE(next_link("rel=next"));
  CHECK_FALSE(next_link("</unterminated; rel=next"));
  CHECK_FALSE(next_link("<>; rel=next"));
  CHECK_FALSE(next_link("</x>; rel"));
}
