#include <registryd/containerd/render.hpp>

#include "support.hpp"

#include <algorithm>

using namespace registryd::containerd;
using namespace registryd::containerd::test;
using nlohmann::json;

namespace {

const rendered_file& file_at(const rendered_tree& t, const std::string& path) {
  const auto it = std::find_if(t.files.begin(), t.files.end(),
                               [&](const rendered_file& f) { return f.path == path; });
  INFO(path);
  REQUIRE(it != t.files.end());
  return *it;
}

std::size_t index_of(const rendered_tree& t, const std::string& path) {
  for (std::size_t i = 0; i < t.files.size(); ++i) {
    if (t.files[i].path == path) return i;
  }
  FAIL("no file " << path);
  return 0;
}

rendered_tree render_ok(const json& doc, const fs::path& root = "/etc/containerd") {
  auto r = render_files(doc, root);
  INFO(((r).ok() ? std::string() : (r).error_message()));
  REQUIRE(r.ok());
  return std::move(r).value();
}

}  // namespace

TEST_CASE("a host with one https mirror renders a hosts.toml containerd can read",
          "[containerd]") {
  const json doc = {{"hosts",
                     {{{"host", "registry.example.com:5000"},
                       {"server", "https://registry.example.com:5000"},
                       {"mirrors", {{{"url", "https://registry.example.com:5000"}}}}}}}};
  const auto tree = render_ok(doc);
  const auto& f = file_at(tree, "registry.d/registry.example.com:5000/hosts.toml");
  CHECK(f.mode == fs::perms(0644));
  const auto t = parse_toml(f.content);
  CHECK(t["server"].value<std::string>() == "https://registry.example.com:5000");
  const auto* host = t["host"]["https://registry.example.com:5000"].as_table();
  REQUIRE(host != nullptr);
  const auto* caps = (*host)["capabilities"].as_array();
  REQUIRE(caps != nullptr);
  REQUIRE(caps->size() == 2);
  CHECK(caps->at(0).value<std::string>() == "pull");
  CHECK(caps->at(1).value<std::string>() == "resolve");
  CHECK_FALSE(host->contains("skip_verify"));
  CHECK_FALSE(host->contains("ca"));
  CHECK(tree.hosts == std::vector<std::string>{"registry.example.com:5000"});
}

TEST_CASE("mirrors appear in hosts.toml in the order they were described", "[containerd]") {
  const json doc = {{"hosts",
                     {{{"host", "r"},
                       {"mirrors",
                        {{{"url", "https://zz.example.com"}},
                         {{"url", "https://aa.example.com"}},
                         {{"url", "http://mm.example.com"}}}}}}}};
  const auto tree = render_ok(doc);
  const std::string& text = file_at(tree, "registry.d/r/hosts.toml").content;
  const auto zz = text.find("[host.\"https://zz.example.com\"]");
  const auto aa = text.find("[host.\"https://aa.example.com\"]");
  const auto mm = text.find("[host.\"http://mm.example.com\"]");
  REQUIRE(zz != std::string::npos);
  REQUIRE(aa != std::string::npos);
  REQUIRE(mm != std::string::npos);
  CHECK(zz < aa);
  CHECK(aa < mm);
  CHECK(parse_toml(text)["host"].as_table()->size() == 3);
}

TEST_CASE("quotes, backslashes and control characters survive the trip through TOML",
          "[containerd]") {
  const std::string nasty = "a\"b\\c\td\ne\x01 f\x7F g ü \\\"\"\"";
  const std::string header_nasty = "a\"b\\c ü \\\"\"\"";  // no control characters in HTTP
  const json doc = one_mirror(
      "r", {{"url", "https://r/path\"with\\quotes"},
            {"headers", {{"X-Nasty", header_nasty}, {"X-List", {header_nasty, "plain"}}}},
            {"auth", {{"username", "user\"x"}, {"password", nasty}}},
            {"rewrites", {{{"regex", "^system/(deck\\.house)$"}, {"replace", "deckhouse/\\1"}}}}});
  const auto tree = render_ok(doc);
  const auto t = parse_toml(file_at(tree, "registry.d/r/hosts.toml").content);
  const auto* host = t["host"]["https://r/path\"with\\quotes"].as_table();
  REQUIRE(host != nullptr);
  auto h = toml::node_view<const toml::node>(*host);
  CHECK(h["header"]["X-Nasty"].value<std::string>() == header_nasty);
  CHECK(h["header"]["X-List"][0].value<std::string>() == header_nasty);
  CHECK(h["header"]["X-List"][1].value<std::string>() == "plain");
  CHECK(h["auth"]["username"].value<std::string>() == "user\"x");
  CHECK(h["auth"]["password"].value<std::string>() == nasty);
  CHECK(h["rewrite"][0]["regex"].value<std::string>() == "^system/(deck\\.house)$");
  CHECK(h["rewrite"][0]["replace"].value<std::string>() == "deckhouse/\\1");
}

TEST_CASE("a CA is written beside hosts.toml, named by content and before the hosts.toml",
          "[containerd]") {
  const std::string a = fixture("test_ca_a.pem");
  const std::string b = fixture("test_ca_b.pem");
  const json doc = {{"hosts",
                     {{{"host", "r"},
                       {"mirrors",
                        {{{"url", "https://one.example.com"}, {"ca", a}},
                         {{"url", "https://two.example.com"}, {"ca", a}},
                         {{"url", "https://three.example.com"}, {"ca", b}}}}}}}};
  const auto tree = render_ok(doc);
  std::vector<std::string> ca_paths;
  for (const auto& f : tree.files) {
    if (f.path.rfind("registry.d/r/ca-", 0) == 0) ca_paths.push_back(f.path);
  }
  REQUIRE(ca_paths.size() == 2);  // one file per distinct PEM
  const auto t = parse_toml(file_at(tree, "registry.d/r/hosts.toml").content);
  const auto ca_one = t["host"]["https://one.example.com"]["ca"].value<std::string>();
  const auto ca_two = t["host"]["https://two.example.com"]["ca"].value<std::string>();
  const auto ca_three = t["host"]["https://three.example.com"]["ca"].value<std::string>();
  REQUIRE(ca_one);
  REQUIRE(ca_three);
  CHECK(ca_one == ca_two);
  CHECK(ca_one != ca_three);
  // Relative to the host directory; the file holds exactly the PEM.
  CHECK(ca_one->find('/') == std::string::npos);
  CHECK(ca_one->size() == std::string("ca-0123456789ab.pem").size());
  CHECK(file_at(tree, "registry.d/r/" + *ca_one).content == a);
  CHECK(file_at(tree, "registry.d/r/" + *ca_three).content == b);
  // Not *.crt: containerd's Docker-style fallback would load a .crt silently if the hosts.toml
  // were ever unreadable, hiding the error.
  CHECK(ca_one->substr(ca_one->size() - 4) == ".pem");
  for (const auto& p : ca_paths) CHECK(index_of(tree, p) < index_of(tree, "registry.d/r/hosts.toml"));
}

TEST_CASE("skip_verify is written only for an http mirror that asks for it", "[containerd]") {
  const json doc = {{"hosts",
                     {{{"host", "r"},
                       {"mirrors",
                        {{{"url", "http://plain.example.com"}, {"skipVerify", true}},
                         {{"url", "https://tls.example.com"}, {"skipVerify", false}}}}}}}};
  const auto t = parse_toml(file_at(render_ok(doc), "registry.d/r/hosts.toml").content);
  CHECK(t["host"]["http://plain.example.com"]["skip_verify"].value<bool>() == true);
  CHECK_FALSE(t["host"]["https://tls.example.com"].as_table()->contains("skip_verify"));
}

TEST_CASE("override_path and multi-valued headers are rendered", "[containerd]") {
  const json doc = one_mirror("r", {{"url", "https://m.example.com/custom/v2"},
                                    {"overridePath", true},
                                    {"capabilities", {"pull", "resolve", "push"}},
                                    {"headers", {{"X-A", {"1", "2"}}}}});
  const auto t = parse_toml(file_at(render_ok(doc), "registry.d/r/hosts.toml").content);
  auto h = t["host"]["https://m.example.com/custom/v2"];
  CHECK(h["override_path"].value<bool>() == true);
  CHECK(h["capabilities"].as_array()->size() == 3);
  CHECK(h["header"]["X-A"].as_array()->size() == 2);
}

TEST_CASE("a hosts.toml holding credentials is readable by its owner only", "[containerd]") {
  const json doc = one_mirror("r", {{"url", "https://r"}, {"auth", {{"username", "u"}, {"password", "p"}}}});
  CHECK(file_at(render_ok(doc), "registry.d/r/hosts.toml").mode == fs::perms(0600));
}

TEST_CASE("the drop-ins point containerd v1 and v2 at registry.d under the final root",
          "[containerd]") {
  const auto tree = render_ok(one_mirror("r.example.com", {{"url", "https://r.example.com"}}),
                              "/srv/node \"1\"/etc/containerd");
  const auto v1 = parse_toml(file_at(tree, "conf.d/registryd-registry.toml").content);
  CHECK(v1["version"].value<int64_t>() == 2);
  CHECK(v1["plugins"]["io.containerd.grpc.v1.cri"]["registry"]["config_path"].value<std::string>() ==
        "/srv/node \"1\"/etc/containerd/registry.d");
  const auto v2 = parse_toml(file_at(tree, "conf2.d/registryd-registry.toml").content);
  CHECK(v2["version"].value<int64_t>() == 3);
  CHECK(v2["plugins"]["io.containerd.cri.v1.images"]["registry"]["config_path"].value<std::string>() ==
        "/srv/node \"1\"/etc/containerd/registry.d");
  // The drop-ins come last: they point at a tree that is complete by then.
  CHECK(tree.files.back().path == "conf2.d/registryd-registry.toml");
  CHECK(file_at(tree, "conf.d/registryd-registry.toml").content.rfind(managed_marker, 0) == 0);
  CHECK(file_at(tree, "conf2.d/registryd-registry.toml").content.rfind(managed_marker, 0) == 0);
}

TEST_CASE("a description without hosts renders no drop-ins, only the manifest", "[containerd]") {
  const auto tree = render_ok(json{{"hosts", json::array()}});
  REQUIRE(tree.files.size() == 1);
  CHECK(tree.files[0].path == "registry.d/.registryd-managed.json");
  CHECK(tree.hosts.empty());
  // The config version stays defined: the hash over no files.
  CHECK(tree.config_version == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  const auto m = json::parse(tree.files[0].content);
  CHECK(m["hosts"] == json::array());
  CHECK(m["dropIns"] == json::array());
  CHECK(m["configVersion"] == tree.config_version);
}

TEST_CASE("a relative final root is refused", "[containerd]") {
  const auto r = render_files(json{{"hosts", json::array()}}, "etc/containerd");
  REQUIRE_FALSE(r.ok());
  CHECK_THAT(r.error_message(), Catch::Contains("must be an absolute path"));
}

TEST_CASE("the config version hashes the registry configuration and nothing else",
          "[containerd]") {
  const json a = {{"host", "a.example.com"}, {"mirrors", {{{"url", "https://a.example.com"}}}}};
  const json b = {{"host", "b.example.com"}, {"mirrors", {{{"url", "https://b.example.com"}}}}};
  const auto v_ab = render_ok(json{{"hosts", {a, b}}}).config_version;
  CHECK(v_ab.size() == 64);
  CHECK(v_ab.find_first_not_of("0123456789abcdef") == std::string::npos);
  // Same content: same version, whatever the host order or where the tree will live.
  CHECK(render_ok(json{{"hosts", {b, a}}}, "/elsewhere").config_version == v_ab);
  // Different content: a different version.
  json b2 = b;
  b2["mirrors"][0]["capabilities"] = {"pull"};
  CHECK(render_ok(json{{"hosts", {a, b2}}}).config_version != v_ab);
  CHECK(render_ok(json{{"hosts", {a}}}).config_version != v_ab);
}

TEST_CASE("the manifest lists the managed hosts and the config version", "[containerd]") {
  const json doc = {{"hosts",
                     {{{"host", "z.example.com"}, {"mirrors", {{{"url", "https://z.example.com"}}}}},
                      {{"host", "a.example.com"}, {"mirrors", {{{"url", "https://a.example.com"}}}}}}}};
  const auto tree = render_ok(doc);
  const auto m = json::parse(file_at(tree, "registry.d/.registryd-managed.json").content);
  CHECK(m["hosts"] == json({"a.example.com", "z.example.com"}));
  CHECK(m["configVersion"] == tree.config_version);
  CHECK(m["dropIns"] == json({"conf.d/registryd-registry.toml", "conf2.d/registryd-registry.toml"}));
}

TEST_CASE("an invalid description renders nothing", "[containerd]") {
  const auto r = render_files(json{{"hosts", {{{"host", "r"}}}}}, "/etc/containerd");
  REQUIRE_FALSE(r.ok());
  CHECK_THAT(r.error_message(), Catch::Contains("hosts[0].mirrors: is required"));
}
