#include <registryd/config/host_settings.hpp>
#include <registryd/config/module_config.hpp>
#include <registryd/util/atomic_file.hpp>

#include "test_data.hpp"

#include <catch2/catch.hpp>
#include <test_support.hpp>

using namespace registryd::config;
using namespace registryd::config::test;
using namespace std::chrono_literals;

namespace {

module_config parse_ok(const std::string& yaml) {
  auto parsed = parse_module_config(yaml);
  INFO(parsed.error_message());
  REQUIRE(parsed.ok());
  return parsed.value();
}

field_errors parse_errors(const std::string& yaml) {
  auto parsed = parse_module_config(yaml);
  REQUIRE_FALSE(parsed.ok());
  REQUIRE_FALSE(parsed.errors().empty());
  return parsed.errors();
}

constexpr std::string_view P = "spec.settings.registry";

std::string at(std::string_view suffix) { return std::string(P) + "." + std::string(suffix); }


// A registry settings document (under `spec.settings.registry`) that must give exactly one
// error, at `path`, for `reason`.
struct error_row {
  std::string doc;
  std::string path;
  std::string reason;
};

void check_each_gives_one_error(const std::vector<error_row>& rows) {
  for (const auto& r : rows) {
    INFO(r.doc);
    const auto errors = parse_errors(with_registry(r.doc));
    INFO(to_string(errors));
    CHECK(errors.size() == 1);
    CHECK(has_error(errors, r.path, r.reason));
  }
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Valid documents

TEST_CASE("the Proxy example with every field parses into those values", "[config]") {
  const auto config =
      parse_ok(with_registry("mode: Proxy\n"
                             "proxy:\n"
                             "  imagesRepo: registry.example.com/deckhouse/ee\n"
                             "  scheme: HTTP\n"
                             "  username: user\n"
                             "  password: secret\n"
                             "  ca: |\n" +
                             indent(cert_a, 4) +
                             "  checkMode: Relax\n"
                             "  ttl: 72h\n"));
  CHECK(config.mode == registry_mode::proxy);
  CHECK_FALSE(config.legacy());
  REQUIRE(config.section);
  const auto& s = *config.section;
  CHECK(s.images_repo == "registry.example.com/deckhouse/ee");
  CHECK(s.scheme == url_scheme::http);
  REQUIRE(s.credentials);
  CHECK(s.credentials->username == "user");
  CHECK(s.credentials->password == "secret");
  CHECK_FALSE(s.credentials->from_license);
  REQUIRE(s.ca);
  CHECK(*s.ca == cert_a);
  CHECK(s.check == check_mode::relax);
  REQUIRE(s.ttl);
  CHECK(s.ttl->text == "72h");
  CHECK(s.ttl->duration == 72h);
}

TEST_CASE("an empty direct section gets every default", "[config]") {
  const auto config = parse_ok(with_registry("mode: Direct\ndirect: {}\n"));
  CHECK(config.mode == registry_mode::direct);
  REQUIRE(config.section);
  CHECK(config.section->images_repo == "registry.deckhouse.io/deckhouse/ce");
  CHECK(config.section->scheme == url_scheme::https);
  CHECK(config.section->check == check_mode::standard);
  CHECK_FALSE(config.section->credentials);
  CHECK_FALSE(config.section->ca);
  CHECK_FALSE(config.section->ttl);
}

TEST_CASE("a proxy section without ttl gets 168h", "[config]") {
  const auto config = parse_ok(with_registry("mode: Proxy\nproxy:\n  imagesRepo: r.example.com\n"));
  REQUIRE(config.section);
  REQUIRE(config.section->ttl);
  CHECK(config.section->ttl->text == "168h");
  CHECK(config.section->ttl->duration == 168h);
}

TEST_CASE("a license resolves to the license-token user with the key as password", "[config]") {
  const auto config = parse_ok(with_registry("mode: Direct\ndirect:\n  license: abc123\n"));
  REQUIRE(config.section);
  REQUIRE(config.section->credentials);
  CHECK(config.section->credentials->username == "license-token");
  CHECK(config.section->credentials->password == "abc123");
  CHECK(config.section->credentials->from_license);
}

TEST_CASE("a ModuleConfig without registry settings is the legacy Unmanaged mode", "[config]") {
  const std::string header =
      "apiVersion: deckhouse.io/v1alpha1\nkind: ModuleConfig\n"
      "metadata:\n  name: deckhouse\n";
  for (const std::string& doc : {
           header,
           header + "spec: {}\n",
           header + "spec:\n  version: 1\n  settings: {}\n",
           header + "spec:\n  version: 1\n  settings:\n    registry:\n",
           header + "spec:\n  version: 1\n  settings:\n    registry: {}\n",
           header + "spec:\n  version: 1\n  settings:\n    registry:\n      mode: Unmanaged\n",
       }) {
    INFO(doc);
    const auto config = parse_ok(doc);
    CHECK(config.mode == registry_mode::unmanaged);
    CHECK(config.legacy());
    CHECK_FALSE(config.section);
    CHECK(config == default_module_config());
  }
}

TEST_CASE("Unmanaged with an unmanaged section is the configurable variant", "[config]") {
  const auto config = parse_ok(
      with_registry("mode: Unmanaged\nunmanaged:\n  imagesRepo: mirror.example.com:5000/d8\n"));
  CHECK(config.mode == registry_mode::unmanaged);
  CHECK_FALSE(config.legacy());
  REQUIRE(config.section);
  CHECK(config.section->images_repo == "mirror.example.com:5000/d8");
  CHECK_FALSE(config.section->ttl);
}

TEST_CASE("Local mode parses without a section", "[config]") {
  const auto config = parse_ok(with_registry("mode: Local\n"));
  CHECK(config.mode == registry_mode::local);
  CHECK_FALSE(config.section);
  CHECK_FALSE(config.legacy());
}

TEST_CASE("other deckhouse settings and ModuleConfig fields beside registry are ignored",
          "[config]") {
  const auto config = parse_ok(
      "apiVersion: deckhouse.io/v1alpha1\n"
      "kind: ModuleConfig\n"
      "metadata:\n"
      "  name: deckhouse\n"
      "  labels: {a: b}\n"
      "  resourceVersion: \"42\"\n"
      "spec:\n"
      "  enabled: true\n"
      "  version: 1\n"
      "  maintenance: NoResourceReconciliation\n"
      "  settings:\n"
      "    bundle: Default\n"
      "    releaseChannel: Stable\n"
      "    logLevel: Info\n"
      "    registry:\n"
      "      mode: Local\n"
      "status:\n"
      "  message: ok\n");
  CHECK(config.mode == registry_mode::local);
}

TEST_CASE("a ModuleConfig written as JSON parses like YAML", "[config]") {
  const auto config = parse_ok(
      R"({"apiVersion":"deckhouse.io/v1alpha1","kind":"ModuleConfig","metadata":{"name":"deckhouse"},)"
      R"("spec":{"version":1,"settings":{"registry":{"mode":"Proxy","proxy":{"imagesRepo":"r.example.com/x","ttl":"10m"}}}}})");
  CHECK(config.mode == registry_mode::proxy);
  REQUIRE(config.section);
  CHECK(config.section->ttl->duration == 10min);
}

TEST_CASE("a null value counts as not set and gets the default", "[config]") {
  const auto config = parse_ok(with_registry(
      "mode: Proxy\nproxy:\n  imagesRepo:\n  scheme: ~\n  checkMode: null\n  ttl:\n"));
  REQUIRE(config.section);
  CHECK(config.section->images_repo == default_images_repo);
  CHECK(config.section->scheme == url_scheme::https);
  CHECK(config.section->check == check_mode::standard);
  CHECK(config.section->ttl->text == "168h");
}

TEST_CASE("quoted and block scalars are strings even when they look like numbers", "[config]") {
  const auto config = parse_ok(
      with_registry("mode: Direct\ndirect:\n  username: \"12345\"\n  password: !!str 67890\n"));
  REQUIRE(config.section->credentials);
  CHECK(config.section->credentials->username == "12345");
  CHECK(config.section->credentials->password == "67890");
}

// ---------------------------------------------------------------------------------------------
// The document around the settings

TEST_CASE("a wrong apiVersion, kind and name are each reported", "[config]") {
  const auto errors = parse_errors(
      "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: global\nspec:\n  version: 1\n");
  INFO(to_string(errors));
  CHECK(errors.size() == 3);
  CHECK(has_error(errors, "apiVersion", "must be deckhouse.io/v1alpha1, got \"v1\""));
  CHECK(has_error(errors, "kind", "must be ModuleConfig, got \"ConfigMap\""));
  CHECK(has_error(errors, "metadata.name", "must be deckhouse, got \"global\""));
}

TEST_CASE("missing apiVersion, kind and metadata are each reported", "[config]") {
  const auto errors = parse_errors("spec:\n  version: 1\n");
  INFO(to_string(errors));
  CHECK(errors.size() == 3);
  CHECK(has_error(errors, "apiVersion", "is required (deckhouse.io/v1alpha1)"));
  CHECK(has_error(errors, "kind", "is required (ModuleConfig)"));
  CHECK(has_error(errors, "metadata.name", "is required (deckhouse)"));
}

TEST_CASE("spec.version is required with settings and must be 1", "[config]") {
  const std::string header =
      "apiVersion: deckhouse.io/v1alpha1\nkind: ModuleConfig\n"
      "metadata:\n  name: deckhouse\n";
  CHECK(has_error(parse_errors(header + "spec:\n  settings:\n    registry:\n      mode: Local\n"),
                  "spec.version", "is required when spec.settings is set (1)"));
  CHECK(has_error(parse_errors(header + "spec:\n  version: 2\n"), "spec.version",
                  "unsupported settings version 2, expected 1"));
  CHECK(has_error(parse_errors(header + "spec:\n  version: \"1\"\n"), "spec.version",
                  "must be an integer, got a string"));
  CHECK(has_error(parse_errors(header + "spec:\n  version: 1.0\n"), "spec.version",
                  "must be an integer, got a number"));
}

TEST_CASE("unknown fields at the top and in spec are errors, in metadata they are not",
          "[config]") {
  const auto errors = parse_errors(
      "apiVersion: deckhouse.io/v1alpha1\nkind: ModuleConfig\nmetadata:\n  name: deckhouse\n"
      "  whatever: 1\nspce: {}\nspec:\n  version: 1\n  setings: {}\n");
  INFO(to_string(errors));
  CHECK(errors.size() == 2);
  CHECK(has_error(errors, "spce", "unknown field; did you mean spec?"));
  CHECK(has_error(errors, "spec.setings", "unknown field; did you mean settings?"));
}

TEST_CASE("an empty document, a list and several documents are refused", "[config]") {
  CHECK(has_error(parse_errors(""), "", "the document is empty, expected a ModuleConfig"));
  CHECK(has_error(parse_errors("# only a comment\n"), "",
                  "the document is empty, expected a ModuleConfig"));
  CHECK(has_error(parse_errors("- a\n- b\n"), "", "must be a ModuleConfig (a map), got a list"));
  CHECK(has_error(parse_errors("just text"), "", "must be a ModuleConfig (a map), got a string"));
  const auto two =
      parse_errors(with_registry("mode: Local\n") + "---\n" + with_registry("mode: Local\n"));
  REQUIRE(two.size() == 1);
  CHECK(two[0].reason == "must hold one YAML document, found 2");
}

TEST_CASE("a YAML syntax error names the line and column", "[config]") {
  const auto errors = parse_errors(
      "apiVersion: deckhouse.io/v1alpha1\nkind: ModuleConfig\n"
      "metadata: {name: deckhouse\n");
  REQUIRE(errors.size() == 1);
  CHECK(errors[0].path.rfind("line ", 0) == 0);
  CHECK(errors[0].path.find(", column ") != std::string::npos);
  CHECK(errors[0].reason.rfind("YAML syntax error: ", 0) == 0);

  const auto mapping = parse_errors("a: b: c\n");
  REQUIRE(mapping.size() == 1);
  CHECK(mapping[0].path == "line 1, column 5");
  CHECK(mapping[0].reason == "YAML syntax error: illegal map value");
  CHECK(mapping[0].to_string() == "line 1, column 5: YAML syntax error: illegal map value");
}

TEST_CASE("a stray comma is a syntax error, not an endless parse", "[config]") {
  // yaml-cpp 0.7's LoadAll never returns on these and allocates until the process dies.
  const auto errors = parse_errors(",\n");
  REQUIRE(errors.size() == 1);
  CHECK(errors[0].to_string() == "line 1, column 1: YAML syntax error: unexpected ','");
  const auto after_list = parse_errors("- a\n,\n");
  REQUIRE(after_list.size() == 1);
  CHECK(after_list[0].to_string() == "line 2, column 1: YAML syntax error: unexpected ','");
  CHECK(parse_errors(" ,")[0].to_string() == "line 1, column 2: YAML syntax error: unexpected ','");
  auto host = parse_host_settings(",listen_address: 127.0.0.1:5001\n");
  REQUIRE_FALSE(host.ok());
  CHECK(host.error_message() == "line 1, column 1: YAML syntax error: unexpected ','");
}

TEST_CASE("a syntax error in a named source carries source:line:column", "[config]") {
  auto parsed = parse_module_config("a: b: c\n", "/etc/registryd/deckhouse.yaml");
  REQUIRE_FALSE(parsed.ok());
  CHECK(parsed.errors().at(0).path == "/etc/registryd/deckhouse.yaml:1:5");
}

TEST_CASE("duplicate keys are errors", "[config]") {
  const auto errors = parse_errors(with_registry("mode: Local\nmode: Proxy\n"));
  CHECK(has_error(errors, at("mode"), "duplicate key"));
}

// ---------------------------------------------------------------------------------------------
// mode and the sections

TEST_CASE("an unknown mode lists the allowed ones and hints at case", "[config]") {
  CHECK(has_error(parse_errors(with_registry("mode: Mirror\n")), at("mode"),
                  "must be one of Unmanaged, Direct, Proxy, Local, got \"Mirror\""));
  CHECK(has_error(parse_errors(with_registry("mode: proxy\nproxy: {}\n")), at("mode"),
                  "must be one of Unmanaged, Direct, Proxy, Local, got \"proxy\" (values are "
                  "case-sensitive: write Proxy)"));
  CHECK(has_error(parse_errors(with_registry("mode: [Proxy]\n")), at("mode"),
                  "must be a string, got a list"));
}

TEST_CASE("an invalid mode does not add section errors of its own", "[config]") {
  const auto errors = parse_errors(with_registry("mode: Mirror\nproxy: {}\n"));
  INFO(to_string(errors));
  CHECK(errors.size() == 1);
}

TEST_CASE("Direct and Proxy require their own section", "[config]") {
  CHECK(has_error(parse_errors(with_registry("mode: Direct\n")), at("direct"),
                  "is required when mode is Direct"));
  CHECK(has_error(parse_errors(with_registry("mode: Proxy\n")), at("proxy"),
                  "is required when mode is Proxy"));
  CHECK(has_error(parse_errors(with_registry("mode: Proxy\nproxy:\n")), at("proxy"),
                  "is required when mode is Proxy"));
}

TEST_CASE("a section of another mode is forbidden", "[config]") {
  const std::vector<error_row> rows = {
      {"mode: Proxy\nproxy: {}\ndirect: {}\n", at("direct"),
       "is allowed only when mode is Direct, got mode Proxy"},
      {"mode: Direct\ndirect: {}\nproxy: {}\n", at("proxy"),
       "is allowed only when mode is Proxy, got mode Direct"},
      {"mode: Direct\ndirect: {}\nunmanaged: {}\n", at("unmanaged"),
       "is allowed only when mode is Unmanaged, got mode Direct"},
      {"mode: Proxy\nproxy: {}\nunmanaged: {}\n", at("unmanaged"),
       "is allowed only when mode is Unmanaged, got mode Proxy"},
      {"mode: Unmanaged\ndirect: {}\n", at("direct"),
       "is allowed only when mode is Direct, got mode Unmanaged"},
      {"direct: {}\n", at("direct"), "is allowed only when mode is Direct, got mode Unmanaged"},
      {"mode: Local\nproxy: {}\n", at("proxy"),
       "is allowed only when mode is Proxy, got mode Local (Local mode has no section)"},
      {"mode: Local\ndirect: {}\n", at("direct"),
       "is allowed only when mode is Direct, got mode Local (Local mode has no section)"},
      {"mode: Local\nunmanaged: {}\n", at("unmanaged"),
       "is allowed only when mode is Unmanaged, got mode Local (Local mode has no section)"},
  };
  check_each_gives_one_error(rows);
}

TEST_CASE("unknown keys under registry and in a section are errors", "[config]") {
  const auto errors = parse_errors(
      with_registry("mode: Proxy\nlocal: {}\nproxy:\n  imagesrepo: x\n  timeout: 5s\n"));
  INFO(to_string(errors));
  CHECK(errors.size() == 3);
  CHECK(has_error(errors, at("local"), "unknown field"));
  CHECK(has_error(errors, at("proxy.imagesrepo"), "unknown field; did you mean imagesRepo?"));
  CHECK(has_error(errors, at("proxy.timeout"), "unknown field"));
}

TEST_CASE("ttl is refused outside the proxy section", "[config]") {
  CHECK(has_error(parse_errors(with_registry("mode: Direct\ndirect:\n  ttl: 72h\n")),
                  at("direct.ttl"), "is allowed in the proxy section only"));
  CHECK(has_error(parse_errors(with_registry("unmanaged:\n  ttl: 72h\n")), at("unmanaged.ttl"),
                  "is allowed in the proxy section only"));
}

TEST_CASE("wrong YAML types are errors, not crashes", "[config]") {
  const std::vector<error_row> rows = {
      {"[mode, Proxy]\n", std::string(P), "must be a map, got a list"},
      {"mode: Direct\ndirect: registry.example.com\n", at("direct"), "must be a map, got a string"},
      {"mode: Direct\ndirect: [a]\n", at("direct"), "must be a map, got a list"},
      {"mode: Direct\ndirect:\n  imagesRepo: {a: b}\n", at("direct.imagesRepo"),
       "must be a string, got a map"},
      {"mode: Direct\ndirect:\n  scheme: [HTTP]\n", at("direct.scheme"),
       "must be a string, got a list"},
      {"mode: Direct\ndirect:\n  username: 12345\n  password: secret\n", at("direct.username"),
       "must be a string, got an integer (quote the value to use it as text)"},
      {"mode: Direct\ndirect:\n  username: u\n  password: true\n", at("direct.password"),
       "must be a string, got a boolean (quote the value to use it as text)"},
      {"mode: Direct\ndirect:\n  license: 1.5e3\n", at("direct.license"),
       "must be a string, got a number (quote the value to use it as text)"},
      {"mode: Direct\ndirect:\n  ca: {pem: x}\n", at("direct.ca"), "must be a string, got a map"},
      {"mode: Proxy\nproxy:\n  ttl: 72\n", at("proxy.ttl"),
       "must be a string, got an integer (quote the value to use it as text)"},
      {"mode: Proxy\nproxy:\n  checkMode: 0x1\n", at("proxy.checkMode"),
       "must be a string, got an integer (quote the value to use it as text)"},
  };
  check_each_gives_one_error(rows);
  CHECK(has_error(parse_errors(module_config_header + "    registry: Proxy\n"), P,
                  "must be a map, got a string"));
  CHECK(has_error(parse_errors(module_config_header + "    - registry\n"), "spec.settings",
                  "must be a map, got a list"));
  CHECK(has_error(parse_errors("apiVersion: deckhouse.io/v1alpha1\nkind: ModuleConfig\n"
                               "metadata: deckhouse\nspec: 1\n"),
                  "spec", "must be a map, got an integer"));
  CHECK(has_error(parse_errors("apiVersion: [deckhouse.io/v1alpha1]\nkind: ModuleConfig\n"
                               "metadata: {name: deckhouse}\n"),
                  "apiVersion", "must be a string, got a list"));
}

TEST_CASE("a secret of the wrong type is not echoed in the error", "[config]") {
  const auto errors =
      parse_errors(with_registry("mode: Direct\ndirect:\n  username: u\n  password: 987654321\n"));
  for (const auto& e : errors) CHECK(e.reason.find("987654321") == std::string::npos);
}

// ---------------------------------------------------------------------------------------------
// Fields

TEST_CASE("imagesRepo must match the pattern, explained in words", "[config]") {
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"https://registry.example.com/d8",
       "must not include a scheme (set scheme: HTTP or HTTPS instead), got "
       "\"https://registry.example.com/d8\""},
      {"registry.example.com/d8/",
       R"(must be host[:port][/path], like registry.example.com:5000/deckhouse/ee: a host of letters, digits, '.' and '-', an optional port of up to 5 digits, then path segments of letters, digits, '.', '-' and '_' (no scheme, no trailing '/', no tag); got "registry.example.com/d8/")"},
      {"\"\"", "must not be empty"},
      {"registry.example.com:123456/d8",
       R"(must be host[:port][/path], like registry.example.com:5000/deckhouse/ee: a host of letters, digits, '.' and '-', an optional port of up to 5 digits, then path segments of letters, digits, '.', '-' and '_' (no scheme, no trailing '/', no tag); got "registry.example.com:123456/d8")"},
      {"registry.example.com:99999/d8", "port must be at most 65535, got 99999"},
      {"reg_istry.example.com/d8",
       R"(must be host[:port][/path], like registry.example.com:5000/deckhouse/ee: a host of letters, digits, '.' and '-', an optional port of up to 5 digits, then path segments of letters, digits, '.', '-' and '_' (no scheme, no trailing '/', no tag); got "reg_istry.example.com/d8")"},
  };
  for (const auto& [repo, reason] : bad) {
    INFO(repo);
    CHECK(has_error(
        parse_errors(with_registry("mode: Direct\ndirect:\n  imagesRepo: " + repo + "\n")),
        at("direct.imagesRepo"), reason));
  }
}

TEST_CASE("scheme and checkMode accept only their values", "[config]") {
  CHECK(has_error(parse_errors(with_registry("mode: Direct\ndirect:\n  scheme: https\n")),
                  at("direct.scheme"),
                  "must be one of HTTP, HTTPS, got \"https\" (values are case-sensitive: write "
                  "HTTPS)"));
  CHECK(has_error(parse_errors(with_registry("mode: Direct\ndirect:\n  scheme: FTP\n")),
                  at("direct.scheme"), "must be one of HTTP, HTTPS, got \"FTP\""));
  CHECK(has_error(parse_errors(with_registry("mode: Direct\ndirect:\n  checkMode: Strict\n")),
                  at("direct.checkMode"), "must be one of Default, Relax, got \"Strict\""));
}

TEST_CASE("username and password come together and license excludes both", "[config]") {
  CHECK(has_error(parse_errors(with_registry("mode: Direct\ndirect:\n  username: u\n")),
                  at("direct.password"), "is required when username is set"));
  CHECK(has_error(parse_errors(with_registry("mode: Direct\ndirect:\n  password: p\n")),
                  at("direct.username"), "is required when password is set"));
  CHECK(has_error(parse_errors(with_registry("mode: Direct\ndirect:\n  license: l\n  username: u\n"
                                             "  password: p\n")),
                  at("direct.license"), "must not be set together with username or password"));
  CHECK(
      has_error(parse_errors(with_registry("mode: Direct\ndirect:\n  license: l\n  password: p\n")),
                at("direct.license"), "must not be set together with username or password"));
  CHECK(has_error(parse_errors(with_registry("mode: Direct\ndirect:\n  username: \"\"\n"
                                             "  password: p\n")),
                  at("direct.username"), "must not be empty"));
  CHECK(has_error(parse_errors(with_registry("mode: Direct\ndirect:\n  license: ''\n")),
                  at("direct.license"), "must not be empty"));
}

TEST_CASE("a mistyped password is one error, not a pairing error too", "[config]") {
  const auto errors =
      parse_errors(with_registry("mode: Direct\ndirect:\n  username: u\n  password: [p]\n"));
  INFO(to_string(errors));
  CHECK(errors.size() == 1);
}

TEST_CASE("ca must be PEM certificates that OpenSSL parses", "[config]") {
  const auto ca_error = [](std::string_view pem) {
    return parse_errors(with_registry("mode: Direct\ndirect:\n  ca: |\n" + indent(pem, 4)));
  };
  CHECK(has_error(ca_error("hello\n"), at("direct.ca"),
                  "must be one or more PEM-encoded X.509 certificates (-----BEGIN "
                  "CERTIFICATE-----), found no PEM block"));
  CHECK(has_error(ca_error(public_key), at("direct.ca"),
                  "PEM block 1 is PUBLIC KEY, expected CERTIFICATE"));
  CHECK(has_error(ca_error(std::string(cert_a) + std::string(public_key)), at("direct.ca"),
                  "PEM block 2 is PUBLIC KEY, expected CERTIFICATE"));
  CHECK(has_error(ca_error(not_a_certificate), at("direct.ca"),
                  "PEM block 1 is not a valid X.509 certificate"));
  const std::string truncated(cert_a.substr(0, cert_a.find("-----END")));
  CHECK(has_error(ca_error(truncated), at("direct.ca"),
                  "PEM block 1 is not valid PEM (bad base64 or a missing END line)"));
  CHECK(has_error(parse_errors(with_registry("mode: Direct\ndirect:\n  ca: \"\"\n")),
                  at("direct.ca"),
                  "must not be empty (leave ca out to use the system trust store)"));
}

TEST_CASE("ca may hold a bundle of several certificates", "[config]") {
  const std::string bundle = std::string(cert_a) + std::string(cert_b);
  const auto config =
      parse_ok(with_registry("mode: Direct\ndirect:\n  ca: |\n" + indent(bundle, 4)));
  REQUIRE(config.section->ca);
  CHECK(*config.section->ca == bundle);
}

TEST_CASE("ttl follows the pattern and is at least 5m", "[config]") {
  const auto ttl_errors = [](const std::string& ttl) {
    return parse_errors(with_registry("mode: Proxy\nproxy:\n  ttl: " + ttl + "\n"));
  };
  const std::string pattern_reason =
      "must be a duration like 72h, 1h30m or 300s: whole numbers each followed by h, m or s, in "
      "that order, each unit at most once; got ";
  CHECK(has_error(ttl_errors("2m"), at("proxy.ttl"), "must be at least 5m, got 2m"));
  CHECK(has_error(ttl_errors("299s"), at("proxy.ttl"), "must be at least 5m, got 299s"));
  CHECK(has_error(ttl_errors("4m59s"), at("proxy.ttl"), "must be at least 5m, got 4m59s"));
  CHECK(has_error(ttl_errors("0h"), at("proxy.ttl"), "must be at least 5m, got 0h"));
  CHECK(has_error(ttl_errors("\"\""), at("proxy.ttl"), "must not be empty"));
  CHECK(has_error(ttl_errors("5 min"), at("proxy.ttl"), pattern_reason + "\"5 min\""));
  CHECK(has_error(ttl_errors("30m1h"), at("proxy.ttl"), pattern_reason + "\"30m1h\""));
  CHECK(has_error(ttl_errors("1d"), at("proxy.ttl"), pattern_reason + "\"1d\""));
  CHECK(has_error(ttl_errors("1h1h"), at("proxy.ttl"), pattern_reason + "\"1h1h\""));
  CHECK(has_error(ttl_errors("\"72\""), at("proxy.ttl"), pattern_reason + "\"72\""));
  for (const std::string ok : {"5m", "300s", "1h30m", "72h", "0h5m", "1h0m0s", "10000h"}) {
    INFO(ok);
    const auto config = parse_ok(with_registry("mode: Proxy\nproxy:\n  ttl: " + ok + "\n"));
    CHECK(config.section->ttl->text == ok);
  }
}

// ---------------------------------------------------------------------------------------------
// Every error at once

TEST_CASE("every error in a document is reported, in a stable order", "[config]") {
  const auto errors = parse_errors(
      "apiVersion: deckhouse.io/v1\n"
      "kind: ModuleConfig\n"
      "metadata:\n"
      "  name: deckhouse\n"
      "spec:\n"
      "  version: 1\n"
      "  settings:\n"
      "    registry:\n"
      "      mode: Proxy\n"
      "      proxy:\n"
      "        imagesRepo: https://r.example.com\n"
      "        scheme: https\n"
      "        username: u\n"
      "        checkMode: Strict\n"
      "        ttl: 2m\n"
      "        extra: 1\n"
      "      unmanaged: {}\n");
  const std::vector<std::string> expected = {
      "apiVersion: must be deckhouse.io/v1alpha1, got \"deckhouse.io/v1\"",
      "spec.settings.registry.proxy.imagesRepo: must not include a scheme (set scheme: HTTP or "
      "HTTPS instead), got \"https://r.example.com\"",
      "spec.settings.registry.proxy.scheme: must be one of HTTP, HTTPS, got \"https\" (values are "
      "case-sensitive: write HTTPS)",
      "spec.settings.registry.proxy.password: is required when username is set",
      "spec.settings.registry.proxy.checkMode: must be one of Default, Relax, got \"Strict\"",
      "spec.settings.registry.proxy.ttl: must be at least 5m, got 2m",
      "spec.settings.registry.proxy.extra: unknown field",
      "spec.settings.registry.unmanaged: is allowed only when mode is Unmanaged, got mode Proxy",
  };
  CHECK(messages(errors) == expected);

  auto parsed = parse_module_config("apiVersion: x\nkind: y\nmetadata: {name: z}\n");
  CHECK(parsed.error_message() ==
        "apiVersion: must be deckhouse.io/v1alpha1, got \"x\"\n"
        "kind: must be ModuleConfig, got \"y\"\n"
        "metadata.name: must be deckhouse, got \"z\"");
  auto as_result = std::move(parsed).to_result();
  REQUIRE_FALSE(as_result.ok());
  CHECK(as_result.error_message().find("kind: must be ModuleConfig") != std::string::npos);
}

// ---------------------------------------------------------------------------------------------
// Files

TEST_CASE("load_module_config reads a file and names it in errors", "[config]") {
  const registryd::test::scratch_dir scratch;
  const auto& dir = scratch.path();
  const auto file = dir / "deckhouse.yaml";
  REQUIRE_FALSE(registryd::util::write_file_atomic(file, with_registry("mode: Local\n")));
  auto loaded = load_module_config(file);
  REQUIRE(loaded.ok());
  CHECK(loaded->mode == registry_mode::local);

  REQUIRE_FALSE(registryd::util::write_file_atomic(file, "a: b: c\n"));
  auto broken = load_module_config(file);
  REQUIRE_FALSE(broken.ok());
  CHECK(broken.errors().at(0).path == file.string() + ":1:5");

  auto missing = load_module_config(dir / "missing.yaml");
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.errors().at(0).path == (dir / "missing.yaml").string());
  CHECK(missing.errors().at(0).reason.rfind("cannot read: ", 0) == 0);
}

TEST_CASE("without a module config file the host runs the default config", "[config]") {
  host_settings host;
  auto config = load_module_config(host);
  REQUIRE(config.ok());
  CHECK(*config == default_module_config());
  CHECK(config->legacy());

  const registryd::test::scratch_dir scratch;
  const auto& dir = scratch.path();
  host.module_config_path = dir / "mc.yaml";
  REQUIRE_FALSE(registryd::util::write_file_atomic(*host.module_config_path,
                                                   with_registry("mode: Direct\ndirect: {}\n")));
  auto from_file = load_module_config(host);
  REQUIRE(from_file.ok());
  CHECK(from_file->mode == registry_mode::direct);
}

// ---------------------------------------------------------------------------------------------
// The canonical form

TEST_CASE("the canonical form holds every default and sorted keys", "[config]") {
  const auto config =
      parse_ok(with_registry("mode: Proxy\nproxy:\n  username: u\n  password: p\n"));
  const auto j = to_canonical_json(config);
  const nlohmann::json expected = {
      {"mode", "Proxy"},
      {"proxy",
       {{"imagesRepo", "registry.deckhouse.io/deckhouse/ce"},
        {"scheme", "HTTPS"},
        {"checkMode", "Default"},
        {"ttl", "168h"},
        {"username", "u"},
        {"password", "p"}}},
  };
  CHECK(j == expected);
  CHECK(
      canonical_text(config) ==
      R"({"mode":"Proxy","proxy":{"checkMode":"Default","imagesRepo":"registry.deckhouse.io/deckhouse/ce","password":"p","scheme":"HTTPS","ttl":"168h","username":"u"}})");
}

TEST_CASE("the canonical form keeps a license as a license", "[config]") {
  const auto config = parse_ok(with_registry("mode: Direct\ndirect:\n  license: key\n"));
  const auto j = to_canonical_json(config);
  CHECK(j["direct"]["license"] == "key");
  CHECK_FALSE(j["direct"].contains("username"));
  CHECK_FALSE(j["direct"].contains("password"));
}

TEST_CASE("the canonical form of the legacy mode is just the mode", "[config]") {
  CHECK(canonical_text(default_module_config()) == R"({"mode":"Unmanaged"})");
  CHECK(canonical_text(parse_ok(with_registry("mode: Local\n"))) == R"({"mode":"Local"})");
}

TEST_CASE("a config read back from its canonical form is equal to it", "[config]") {
  const std::vector<std::string> docs = {
      "mode: Local\n",
      "mode: Unmanaged\n",
      "mode: Unmanaged\nunmanaged:\n  imagesRepo: m.example.com/x\n  scheme: HTTP\n",
      "mode: Direct\ndirect:\n  license: key\n  checkMode: Relax\n",
      "mode: Proxy\nproxy:\n  imagesRepo: r.example.com:5000/a/b_c\n  username: '123'\n"
      "  password: 'yes: no'\n  ttl: 1h30m\n  ca: |\n" +
          indent(cert_a, 4),
  };
  for (const auto& doc : docs) {
    INFO(doc);
    const auto config = parse_ok(with_registry(doc));
    auto back = module_config_from_json(to_canonical_json(config));
    INFO(back.error_message());
    REQUIRE(back.ok());
    CHECK(*back == config);
    CHECK(canonical_text(*back) == canonical_text(config));
  }
}

TEST_CASE("the canonical form changes exactly when the config changes", "[config]") {
  const auto a = parse_ok(with_registry("mode: Direct\ndirect:\n  username: u\n  password: p1\n"));
  const auto b = parse_ok(with_registry("mode: Direct\ndirect:\n  username: u\n  password: p2\n"));
  // Spelled differently, same config: defaults written out and keys in another order.
  const auto a2 = parse_ok(
      with_registry("direct:\n  password: p1\n  scheme: HTTPS\n  username: u\n  imagesRepo: "
                    "registry.deckhouse.io/deckhouse/ce\nmode: Direct\n"));
  CHECK(a != b);
  CHECK(canonical_text(a) != canonical_text(b));
  CHECK(a == a2);
  CHECK(canonical_text(a) == canonical_text(a2));
}

TEST_CASE("module_config_from_json applies the same rules with the same paths", "[config]") {
  auto bad = module_config_from_json(
      nlohmann::json{{"mode", "Proxy"}, {"proxy", {{"ttl", "1m"}, {"scheme", 1}}}});
  REQUIRE_FALSE(bad.ok());
  CHECK(has_error(bad.errors(), at("proxy.ttl"), "must be at least 5m, got 1m"));
  CHECK(has_error(bad.errors(), at("proxy.scheme"),
                  "must be a string, got an integer (quote the value to use it as text)"));
  auto not_object = module_config_from_json(nlohmann::json::array({1, 2}));
  REQUIRE_FALSE(not_object.ok());
  CHECK(has_error(not_object.errors(), P, "must be a map, got a list"));
  auto legacy = module_config_from_json(nlohmann::json::object());
  REQUIRE(legacy.ok());
  CHECK(legacy->legacy());
}

TEST_CASE("a misspelt key or value names what was likely meant", "[config]") {
  CHECK(has_error(parse_errors(with_registry("mode: proxi\n")), at("mode"),
                  "must be one of Unmanaged, Direct, Proxy, Local, got \"proxi\"; did you mean Proxy?"));
  CHECK(has_error(parse_errors(with_registry("mode: Proxy\nproxy:\n  imagesRepo: r.example.com/d8\n  tll: 72h\n")),
                  at("proxy.tll"), "unknown field; did you mean ttl?"));
  // Nothing near enough: no guess.
  const auto far = parse_errors(with_registry("mode: Proxy\nproxy:\n  imagesRepo: r.example.com/d8\n  timeout: 3\n"));
  CHECK(has_error(far, at("proxy.timeout"), "unknown field"));
}
