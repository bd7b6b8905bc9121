#include <registryd/containerd/description.hpp>

#include "support.hpp"

using registryd::containerd::parse_description;
using namespace registryd::containerd::test;
using nlohmann::json;

namespace {

// The error for `doc`; fails the test when the description is accepted.
std::string error_of(const json& doc) {
  const auto r = parse_description(doc);
  REQUIRE_FALSE(r.ok());
  return r.error_message();
}

}  // namespace

TEST_CASE("a full description is parsed with defaults applied", "[containerd]") {
  const json doc = {
      {"hosts",
       {{{"host", "registry.example.com:5000"},
         {"server", "https://registry.example.com:5000"},
         {"mirrors",
          {{{"url", "https://mirror.example.com/v2/prefix"},
            {"ca", fixture("test_ca_a.pem")},
            {"overridePath", true},
            {"headers", {{"X-One", "1"}, {"X-Many", {"a", "b"}}}},
            {"auth", {{"username", "u"}, {"password", "p"}}},
            {"rewrites", {{{"regex", "^system/deckhouse"}, {"replace", "deckhouse/ee"}}}}},
           {{"url", "http://127.0.0.1:5001"}, {"skipVerify", true}, {"capabilities", {"pull"}}}}}}}}};
  const auto r = parse_description(doc);
  REQUIRE(r.ok());
  REQUIRE(r->hosts.size() == 1);
  const auto& h = r->hosts[0];
  CHECK(h.host == "registry.example.com:5000");
  CHECK(h.server == "https://registry.example.com:5000");
  REQUIRE(h.mirrors.size() == 2);
  CHECK(h.mirrors[0].capabilities == std::vector<std::string>{"pull", "resolve"});
  CHECK(h.mirrors[0].ca_pem.has_value());
  CHECK(h.mirrors[0].override_path);
  CHECK(h.mirrors[0].headers.size() == 2);
  CHECK(h.mirrors[0].auth->username == "u");
  CHECK(h.mirrors[0].rewrites.at(0).replace == "deckhouse/ee");
  CHECK(h.mirrors[1].capabilities == std::vector<std::string>{"pull"});
  CHECK(h.mirrors[1].skip_verify);
  CHECK_FALSE(h.mirrors[1].is_https());
}

TEST_CASE("an empty host list is a valid description", "[containerd]") {
  const auto r = parse_description(json{{"hosts", json::array()}});
  REQUIRE(r.ok());
  CHECK(r->hosts.empty());
}

TEST_CASE("bad descriptions are refused with the JSON path of the offending value",
          "[containerd]") {
  const json ok_mirror = {{"url", "https://r.example.com"}};
  struct bad_case {
    const char* what;
    json doc;
    const char* expected;
  };
  const std::vector<bad_case> cases = {
      {"not an object", json::array(), "$: the description must be a JSON object"},
      {"no hosts", json::object(), "hosts: is required"},
      {"unknown top-level key", {{"hosts", json::array()}, {"extra", 1}}, "$.extra: unknown key"},
      {"hosts not an array", {{"hosts", 3}}, "hosts: must be an array"},
      {"host missing", {{"hosts", {{{"mirrors", {ok_mirror}}}}}}, "hosts[0].host: is required"},
      {"host with a slash", one_mirror("a/b", ok_mirror), "hosts[0].host: \"a/b\" is not a registry host"},
      {"host climbing out", one_mirror("..", ok_mirror), "hosts[0].host"},
      {"host hidden", one_mirror(".registryd-managed.json", ok_mirror), "hosts[0].host"},
      {"port out of range", one_mirror("r.example.com:70000", ok_mirror), "port 70000 is out of range"},
      {"no mirrors", {{"hosts", {{{"host", "r"}, {"mirrors", json::array()}}}}},
       "hosts[0].mirrors: must name at least one mirror"},
      {"mirror without url", one_mirror("r", json::object()), "hosts[0].mirrors[0].url: is required"},
      {"url without scheme", one_mirror("r", {{"url", "r.example.com"}}),
       "hosts[0].mirrors[0].url: \"r.example.com\" must start with http:// or https://"},
      {"url with query", one_mirror("r", {{"url", "https://r/x?a=b"}}), "must not have a query"},
      {"url with credentials", one_mirror("r", {{"url", "https://u:p@r"}}), "use auth"},
      {"url with newline", one_mirror("r", {{"url", "https://r\n[evil]"}}), "control characters"},
      {"misspelt key", one_mirror("r", {{"url", "https://r"}, {"skipVerfy", true}}),
       "hosts[0].mirrors[0].skipVerfy: unknown key"},
      {"empty capabilities", one_mirror("r", {{"url", "https://r"}, {"capabilities", json::array()}}),
       "hosts[0].mirrors[0].capabilities: must name at least one"},
      {"unknown capability", one_mirror("r", {{"url", "https://r"}, {"capabilities", {"pull", "delete"}}}),
       "hosts[0].mirrors[0].capabilities[1]: \"delete\" is not a capability"},
      {"skip verify on https", one_mirror("r", {{"url", "https://r"}, {"skipVerify", true}}),
       "hosts[0].mirrors[0].skipVerify: TLS verification cannot be switched off"},
      {"skip verify not boolean", one_mirror("r", {{"url", "http://r"}, {"skipVerify", "yes"}}),
       "hosts[0].mirrors[0].skipVerify: must be a boolean, not string"},
      {"ca that is not PEM", one_mirror("r", {{"url", "https://r"}, {"ca", "hello"}}),
       "hosts[0].mirrors[0].ca: holds no PEM certificate"},
      {"ca that is a broken PEM",
       one_mirror("r", {{"url", "https://r"},
                        {"ca", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"}}),
       "hosts[0].mirrors[0].ca: certificate 1 is not a valid PEM certificate"},
      {"ca on http", one_mirror("r", {{"url", "http://r"}, {"ca", "x"}}),
       "hosts[0].mirrors[0].ca: a CA is meaningful for https:// mirrors only"},
      {"bad header name", one_mirror("r", {{"url", "https://r"}, {"headers", {{"X Bad", "v"}}}}),
       "hosts[0].mirrors[0].headers.X Bad: is not a valid HTTP header name"},
      {"header value with CR LF",
       one_mirror("r", {{"url", "https://r"}, {"headers", {{"X-A", "v\r\nX-B: w"}}}}),
       "hosts[0].mirrors[0].headers.X-A: must not contain control characters"},
      {"auth without password", one_mirror("r", {{"url", "https://r"}, {"auth", {{"username", "u"}}}}),
       "hosts[0].mirrors[0].auth.password: is required"},
      {"rewrite without replace",
       one_mirror("r", {{"url", "https://r"}, {"rewrites", {{{"regex", "^a"}}}}}),
       "hosts[0].mirrors[0].rewrites[0].replace: is required"},
      {"invalid UTF-8", one_mirror("r", {{"url", "https://r"}, {"headers", {{"X-A", "\xC3\x28"}}}}),
       "is not valid UTF-8"},
      {"mirror listed twice",
       {{"hosts", {{{"host", "r"}, {"mirrors", {ok_mirror, ok_mirror}}}}}},
       "hosts[0].mirrors[1].url: \"https://r.example.com\" is listed twice"},
      {"host described twice",
       {{"hosts", {{{"host", "r"}, {"mirrors", {ok_mirror}}}, {{"host", "r"}, {"mirrors", {ok_mirror}}}}}},
       "hosts[1].host: \"r\" is described twice"},
      {"server without scheme",
       {{"hosts", {{{"host", "r"}, {"server", "r"}, {"mirrors", {ok_mirror}}}}}},
       "hosts[0].server: \"r\" must start with http:// or https://"},
  };
  for (const auto& c : cases) {
    INFO(c.what);
    const std::string err = error_of(c.doc);
    CHECK_THAT(err, Catch::Contains(c.expected));
    CHECK_THAT(err, Catch::StartsWith("invalid containerd description: "));
  }
}

TEST_CASE("IPv6 and IPv4 registry hosts are accepted", "[containerd]") {
  for (const char* host : {"[::1]:5000", "[fd00::1]", "127.0.0.1:5001", "localhost"}) {
    INFO(host);
    CHECK(parse_description(one_mirror(host, {{"url", "https://example.com"}})).ok());
  }
  CHECK(parse_description(one_mirror("r", {{"url", "https://[::1]:5000/v2"}})).ok());
}

TEST_CASE("a CA bundle is re-encoded certificate by certificate", "[containerd]") {
  const std::string a = fixture("test_ca_a.pem");
  const std::string b = fixture("test_ca_b.pem");
  const auto r = parse_description(one_mirror(
      "r", {{"url", "https://r"}, {"ca", "comment line\r\n" + a + "\n\n" + b}}));
  REQUIRE(r.ok());
  // The comment and blank lines are gone; the two certificates are kept in order.
  CHECK(*r->hosts[0].mirrors[0].ca_pem == a + b);
}
