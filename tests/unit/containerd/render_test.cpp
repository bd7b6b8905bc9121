#include <registryd/containerd/render.hpp>

#include "support.hpp"

#include <algorithm>
#include <map>
#include <atomic>
#include <set>
#include <thread>
#include <tuple>

#include <sys/stat.h>

using namespace registryd::containerd;
using namespace registryd::containerd::test;
using nlohmann::json;

namespace {

json host(const std::string& name, const json& extra = json::object()) {
  json m = {{"url", "https://" + name}};
  m.update(extra);
  return {{"host", name}, {"mirrors", {m}}};
}

render_report render_ok(const json& doc, const render_options& o) {
  auto r = render(doc, o);
  INFO(((r).ok() ? std::string() : (r).error_message()));
  REQUIRE(r.ok());
  return std::move(r).value();
}

bool contains(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

// Every regular file under `dir` with its modification time, to prove nothing was rewritten.
using file_state = std::tuple<std::string, ino_t, long, long, mode_t>;
std::map<std::string, file_state> snapshot(const fs::path& dir) {
  std::map<std::string, file_state> out;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    if (!e.is_regular_file()) continue;
    struct stat st {};
    REQUIRE(::stat(e.path().c_str(), &st) == 0);
    // A rewrite is an atomic rename: a new inode, whatever the content.
    out[fs::relative(e.path(), dir).generic_string()] = {
        slurp(e.path()), st.st_ino, st.st_mtim.tv_sec, st.st_mtim.tv_nsec, st.st_mode};
  }
  return out;
}

}  // namespace

TEST_CASE("a render writes hosts.toml, CA, manifest and drop-ins under the output directory",
          "[containerd]") {
  const registryd::test::scratch_dir scratch;
  const fs::path out = scratch.path();
  const json doc = {{"hosts", {host("a.example.com", {{"ca", fixture("test_ca_a.pem")}})}}};
  const auto rep = render_ok(doc, {.out_dir = out});
  CHECK(rep.changed());
  CHECK(rep.config_version.size() == 64);
  CHECK(rep.hosts == std::vector<std::string>{"a.example.com"});
  CHECK(fs::is_regular_file(out / "registry.d/a.example.com/hosts.toml"));
  CHECK(fs::is_regular_file(out / "registry.d/.registryd-managed.json"));
  CHECK(fs::is_regular_file(out / "conf.d/registryd-registry.toml"));
  CHECK(fs::is_regular_file(out / "conf2.d/registryd-registry.toml"));
  // The final root defaults to the output directory itself.
  const auto v1 = parse_toml(slurp(out / "conf.d/registryd-registry.toml"));
  CHECK(v1["plugins"]["io.containerd.grpc.v1.cri"]["registry"]["config_path"].value<std::string>() ==
        (out / "registry.d").string());
  const auto t = parse_toml(slurp(out / "registry.d/a.example.com/hosts.toml"));
  const auto ca = t["host"]["https://a.example.com"]["ca"].value<std::string>();
  REQUIRE(ca);
  CHECK(slurp(out / "registry.d/a.example.com" / *ca) == fixture("test_ca_a.pem"));
  // Published in order: the CA before the hosts.toml naming it, the drop-ins last.
  REQUIRE(rep.written.size() == 5);
  CHECK(rep.written[0] == "registry.d/a.example.com/" + *ca);
  CHECK(rep.written[1] == "registry.d/a.example.com/hosts.toml");
  CHECK(rep.written[2] == "registry.d/.registryd-managed.json");
  CHECK(rep.written[4] == "conf2.d/registryd-registry.toml");
}

TEST_CASE("rendering the same description again rewrites nothing", "[containerd]") {
  const registryd::test::scratch_dir scratch;
  const fs::path out = scratch.path();
  const json doc = {{"hosts",
                     {host("a.example.com", {{"ca", fixture("test_ca_a.pem")}}),
                      host("b.example.com:5000", {{"auth", {{"username", "u"}, {"password", "p"}}}})}}};
  const auto first = render_ok(doc, {.out_dir = out, .final_root = "/etc/containerd"});
  const auto before = snapshot(out);
  const auto second = render_ok(doc, {.out_dir = out, .final_root = "/etc/containerd"});
  CHECK_FALSE(second.changed());
  CHECK(second.written.empty());
  CHECK(second.removed.empty());
  CHECK(second.unchanged.size() == first.written.size());
  CHECK(second.config_version == first.config_version);
  CHECK(snapshot(out) == before);
  CHECK((fs::status(out / "registry.d/b.example.com:5000/hosts.toml").permissions() &
         fs::perms::mask) == fs::perms(0600));
}

TEST_CASE("a file changed by hand is put back, and only that file", "[containerd]") {
  const registryd::test::scratch_dir scratch;
  const fs::path out = scratch.path();
  const json doc = {{"hosts", {host("a.example.com"), host("b.example.com")}}};
  render_ok(doc, {.out_dir = out});
  REQUIRE_FALSE(registryd::util::write_file_atomic(out / "registry.d/a.example.com/hosts.toml", "x"));
  fs::permissions(out / "registry.d/b.example.com/hosts.toml", fs::perms(0666));
  const auto rep = render_ok(doc, {.out_dir = out});
  CHECK(rep.written == std::vector<std::string>{"registry.d/a.example.com/hosts.toml",
                                                "registry.d/b.example.com/hosts.toml"});
  CHECK(parse_toml(slurp(out / "registry.d/a.example.com/hosts.toml")).contains("host"));
  CHECK((fs::status(out / "registry.d/b.example.com/hosts.toml").permissions() & fs::perms::mask) ==
        fs::perms(0644));
}

TEST_CASE("a managed host that is no longer described is removed, a hand-made one is kept",
          "[containerd]") {
  const registryd::test::scratch_dir scratch;
  const fs::path out = scratch.path();
  REQUIRE_FALSE(registryd::util::write_file_atomic(out / "registry.d/hand.example.com/hosts.toml",
                                                   "server = \"https://hand.example.com\"\n"));
  render_ok(json{{"hosts", {host("a.example.com"), host("b.example.com")}}}, {.out_dir = out});
  REQUIRE(fs::exists(out / "registry.d/b.example.com/hosts.toml"));

  const auto rep = render_ok(json{{"hosts", {host("a.example.com")}}}, {.out_dir = out});
  CHECK(rep.removed == std::vector<std::string>{"registry.d/b.example.com/"});
  CHECK_FALSE(fs::exists(out / "registry.d/b.example.com"));
  CHECK(fs::exists(out / "registry.d/a.example.com/hosts.toml"));
  CHECK(slurp(out / "registry.d/hand.example.com/hosts.toml") ==
        "server = \"https://hand.example.com\"\n");
  const auto m = json::parse(slurp(out / "registry.d/.registryd-managed.json"));
  CHECK(m["hosts"] == json({"a.example.com"}));
  CHECK(m["configVersion"] == rep.config_version);

  // Describing nothing removes every managed directory (and the drop-ins), still sparing the
  // hand-made one.
  const auto empty = render_ok(json{{"hosts", json::array()}}, {.out_dir = out});
  CHECK(empty.removed == std::vector<std::string>{"conf.d/registryd-registry.toml",
                                                  "conf2.d/registryd-registry.toml",
                                                  "registry.d/a.example.com/"});
  CHECK(fs::exists(out / "registry.d/hand.example.com/hosts.toml"));
}

TEST_CASE("a hand-made directory for a described host is refused unless adopted",
          "[containerd]") {
  const registryd::test::scratch_dir scratch;
  const fs::path out = scratch.path();
  REQUIRE_FALSE(registryd::util::write_file_atomic(out / "registry.d/a.example.com/hosts.toml",
                                                   "# mine\n"));
  REQUIRE_FALSE(registryd::util::write_file_atomic(out / "registry.d/a.example.com/extra.crt", "x"));
  const json doc = {{"hosts", {host("a.example.com")}}};

  const auto refused = render(doc, {.out_dir = out});
  REQUIRE_FALSE(refused.ok());
  CHECK_THAT(refused.error_message(), Catch::Contains("registry.d/a.example.com exists but registryd "
                                                      "does not manage it"));
  CHECK(slurp(out / "registry.d/a.example.com/hosts.toml") == "# mine\n");
  CHECK_FALSE(fs::exists(out / "registry.d/.registryd-managed.json"));
  CHECK_FALSE(fs::exists(out / "conf.d"));

  const auto adopted = render_ok(doc, {.out_dir = out, .adopt_unmanaged = true});
  CHECK(contains(adopted.removed, "registry.d/a.example.com/extra.crt"));
  CHECK_FALSE(fs::exists(out / "registry.d/a.example.com/extra.crt"));
  CHECK(parse_toml(slurp(out / "registry.d/a.example.com/hosts.toml")).contains("host"));
  // Adopted means managed: a later render without it removes it.
  render_ok(json{{"hosts", json::array()}}, {.out_dir = out});
  CHECK_FALSE(fs::exists(out / "registry.d/a.example.com"));
}

TEST_CASE("a new CA replaces the old file only after hosts.toml names the new one",
          "[containerd]") {
  const registryd::test::scratch_dir scratch;
  const fs::path out = scratch.path();
  const auto first = render_ok(json{{"hosts", {host("a.example.com", {{"ca", fixture("test_ca_a.pem")}})}}},
                               {.out_dir = out});
  const std::string old_ca = first.written.at(0);
  const auto second = render_ok(json{{"hosts", {host("a.example.com", {{"ca", fixture("test_ca_b.pem")}})}}},
                                {.out_dir = out});
  REQUIRE(second.written.size() >= 2);
  const std::string new_ca = second.written[0];
  CHECK(new_ca != old_ca);
  CHECK(second.written[1] == "registry.d/a.example.com/hosts.toml");
  CHECK(second.removed == std::vector<std::string>{old_ca});
  CHECK_FALSE(fs::exists(out / old_ca));
  CHECK(slurp(out / new_ca) == fixture("test_ca_b.pem"));
  CHECK(second.config_version != first.config_version);
}

TEST_CASE("a temporary file left by a crash in a managed directory is cleaned up",
          "[containerd]") {
  const registryd::test::scratch_dir scratch;
  const fs::path out = scratch.path();
  const json doc = {{"hosts", {host("a.example.com")}}};
  render_ok(doc, {.out_dir = out});
  REQUIRE_FALSE(registryd::util::write_file_atomic(
      out / "registry.d/a.example.com/.hosts.toml.tmp-AbCdEf", "half"));
  const auto rep = render_ok(doc, {.out_dir = out});
  CHECK(rep.removed == std::vector<std::string>{"registry.d/a.example.com/.hosts.toml.tmp-AbCdEf"});
  CHECK(rep.written.empty());
}

TEST_CASE("a dry run reports the changes and leaves the disk alone", "[containerd]") {
  const registryd::test::scratch_dir scratch;
  const fs::path out = scratch.path();
  render_ok(json{{"hosts", {host("a.example.com"), host("b.example.com")}}}, {.out_dir = out});
  const auto before = snapshot(out);
  const auto rep = render_ok(json{{"hosts", {host("a.example.com"), host("c.example.com")}}},
                             {.out_dir = out, .dry_run = true});
  CHECK(contains(rep.written, "registry.d/c.example.com/hosts.toml"));
  CHECK(contains(rep.written, "registry.d/.registryd-managed.json"));
  CHECK(contains(rep.unchanged, "registry.d/a.example.com/hosts.toml"));
  CHECK(rep.removed == std::vector<std::string>{"registry.d/b.example.com/"});
  CHECK(snapshot(out) == before);
  CHECK_FALSE(fs::exists(out / "registry.d/c.example.com"));

  const registryd::test::scratch_dir fresh_scratch;
  const fs::path fresh = fresh_scratch / "not-yet";
  const auto first = render_ok(json{{"hosts", {host("a.example.com")}}}, {.out_dir = fresh, .dry_run = true});
  CHECK(first.written.size() == 4);
  CHECK_FALSE(fs::exists(fresh));
}

TEST_CASE("an unreadable manifest stops the render before anything changes", "[containerd]") {
  const registryd::test::scratch_dir scratch;
  const fs::path out = scratch.path();
  render_ok(json{{"hosts", {host("a.example.com")}}}, {.out_dir = out});
  SECTION("not JSON") {
    REQUIRE_FALSE(registryd::util::write_file_atomic(out / "registry.d/.registryd-managed.json", "{"));
  }
  SECTION("naming a path outside registry.d") {
    REQUIRE_FALSE(registryd::util::write_file_atomic(out / "registry.d/.registryd-managed.json",
                                                     R"({"hosts": ["../../etc"]})"));
  }
  SECTION("naming a drop-in registryd does not render") {
    REQUIRE_FALSE(registryd::util::write_file_atomic(
        out / "registry.d/.registryd-managed.json",
        R"({"hosts": [], "dropIns": ["conf.d/../../etc/passwd"]})"));
  }
  const auto before = snapshot(out);
  const auto r = render(json{{"hosts", json::array()}}, {.out_dir = out});
  REQUIRE_FALSE(r.ok());
  CHECK_THAT(r.error_message(), Catch::Contains("is not a valid registryd manifest"));
  CHECK(snapshot(out) == before);
}

TEST_CASE("a bad description is reported and nothing is written", "[containerd]") {
  const registryd::test::scratch_dir scratch;
  const fs::path out = scratch.path();
  const auto r = render(json{{"hosts", {{{"host", "a"}, {"mirrors", {{{"url", "ftp://a"}}}}}}}},
                        {.out_dir = out});
  REQUIRE_FALSE(r.ok());
  CHECK_THAT(r.error_message(), Catch::Contains("hosts[0].mirrors[0].url"));
  CHECK(fs::is_empty(out));
}

TEST_CASE("a described host whose path is a file is refused", "[containerd]") {
  const registryd::test::scratch_dir scratch;
  const fs::path out = scratch.path();
  REQUIRE_FALSE(registryd::util::write_file_atomic(out / "registry.d/a.example.com", "file"));
  const auto r = render(json{{"hosts", {host("a.example.com")}}}, {.out_dir = out, .adopt_unmanaged = true});
  REQUIRE_FALSE(r.ok());
  CHECK_THAT(r.error_message(), Catch::Contains("is not a directory"));
}

TEST_CASE("concurrent renders of one tree leave the manifest and the directories in agreement",
          "[containerd]") {
  const registryd::test::scratch_dir scratch;
  const fs::path out = scratch.path();
  const std::vector<json> docs = {
      json{{"hosts", {host("a.example.com"), host("b.example.com")}}},
      json{{"hosts", {host("b.example.com"), host("c.example.com")}}},
      json{{"hosts", {host("d.example.com")}}},
      json{{"hosts", json::array()}},
  };
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < 6; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 10; ++i) {
        if (!render(docs[static_cast<std::size_t>(t + i) % docs.size()], {.out_dir = out}).ok()) ++failures;
      }
    });
  }
  for (auto& th : threads) th.join();
  CHECK(failures == 0);
  std::set<std::string> on_disk;
  for (const auto& e : fs::directory_iterator(out / "registry.d")) {
    if (e.is_directory()) on_disk.insert(e.path().filename().string());
  }
  const auto m = json::parse(slurp(out / "registry.d/.registryd-managed.json"));
  CHECK(m["hosts"].get<std::set<std::string>>() == on_disk);
  for (const auto& h : on_disk) CHECK(fs::exists(out / "registry.d" / h / "hosts.toml"));
  // The drop-ins exist exactly when the manifest records them, and then it names hosts.
  const bool dropins = !m["dropIns"].empty();
  CHECK(dropins == !on_disk.empty());
  CHECK(fs::exists(out / "conf.d/registryd-registry.toml") == dropins);
  CHECK(fs::exists(out / "conf2.d/registryd-registry.toml") == dropins);
}

namespace {

const std::string dropin_v1 = "conf.d/registryd-registry.toml";
const std::string dropin_v2 = "conf2.d/registryd-registry.toml";

}  // namespace

TEST_CASE("a description without hosts renders no drop-ins and leaves a fresh node as it was",
          "[containerd]") {
  const registryd::test::scratch_dir scratch;
  const fs::path out = scratch.path();
  REQUIRE_FALSE(registryd::util::write_file_atomic(out / "conf.d/10-node.toml", "version = 2\n"));
  const auto before = snapshot(out);
  const auto rep = render_ok(json{{"hosts", json::array()}}, {.out_dir = out});
  CHECK_FALSE(rep.changed());
  CHECK(rep.written.empty());
  CHECK(rep.unchanged.empty());
  CHECK(rep.hosts.empty());
  // The config version is defined all the same.
  CHECK(rep.config_version.size() == 64);
  CHECK_FALSE(fs::exists(out / "conf.d/registryd-registry.toml"));
  CHECK_FALSE(fs::exists(out / "conf2.d"));
  // Not even registry.d: nothing was rendered here, so there is nothing to record.
  CHECK_FALSE(fs::exists(out / "registry.d"));
  CHECK(snapshot(out) == before);
}

TEST_CASE("a render without hosts removes the drop-ins and host directories rendered before",
          "[containerd]") {
  const registryd::test::scratch_dir scratch;
  const fs::path out = scratch.path();
  render_ok(json{{"hosts", {host("a.example.com", {{"ca", fixture("test_ca_a.pem")}}),
                            host("b.example.com")}}},
            {.out_dir = out});
  REQUIRE(fs::exists(out / dropin_v1));
  REQUIRE(fs::exists(out / dropin_v2));

  const auto rep = render_ok(json{{"hosts", json::array()}}, {.out_dir = out});
  // The drop-ins go first: containerd stops pointing at the tree before it is emptied.
  CHECK(rep.removed == std::vector<std::string>{dropin_v1, dropin_v2, "registry.d/a.example.com/",
                                                "registry.d/b.example.com/"});
  CHECK(rep.written == std::vector<std::string>{"registry.d/.registryd-managed.json"});
  CHECK_FALSE(fs::exists(out / dropin_v1));
  CHECK_FALSE(fs::exists(out / dropin_v2));
  CHECK_FALSE(fs::exists(out / "registry.d/a.example.com"));
  CHECK_FALSE(fs::exists(out / "registry.d/b.example.com"));
  const auto m = json::parse(slurp(out / "registry.d/.registryd-managed.json"));
  CHECK(m["hosts"] == json::array());
  CHECK(m["dropIns"] == json::array());
  CHECK(m["configVersion"] == rep.config_version);

  // Again: nothing left to do.
  const auto again = render_ok(json{{"hosts", json::array()}}, {.out_dir = out});
  CHECK_FALSE(again.changed());
  CHECK(again.config_version == rep.config_version);

  // Hosts described once more: the drop-ins come back.
  const auto back = render_ok(json{{"hosts", {host("a.example.com")}}}, {.out_dir = out});
  CHECK(contains(back.written, dropin_v1));
  CHECK(contains(back.written, dropin_v2));
  CHECK(fs::exists(out / dropin_v1));
}

TEST_CASE("a file in conf.d that registryd did not write is left untouched", "[containerd]") {
  const registryd::test::scratch_dir scratch;
  const fs::path out = scratch.path();
  REQUIRE_FALSE(registryd::util::write_file_atomic(out / "conf.d/10-node.toml",
                                                   "version = 2\n# the node's own\n"));
  REQUIRE_FALSE(registryd::util::write_file_atomic(out / "conf2.d/10-node.toml", "version = 3\n"));
  const auto mine = [&] {
    auto all = snapshot(out);
    std::erase_if(all, [](const auto& kv) { return kv.first.rfind("registry.d/", 0) == 0; });
    all.erase(dropin_v1);
    all.erase(dropin_v2);
    return all;
  };
  const auto before = mine();
  REQUIRE(before.size() == 2);

  render_ok(json{{"hosts", {host("a.example.com")}}}, {.out_dir = out});
  CHECK(mine() == before);
  const auto rep = render_ok(json{{"hosts", json::array()}}, {.out_dir = out});
  CHECK_FALSE(contains(rep.removed, "conf.d/10-node.toml"));
  CHECK(mine() == before);
  // The directories stay too: they hold the node's own files.
  CHECK(fs::is_directory(out / "conf.d"));
  CHECK(fs::is_directory(out / "conf2.d"));
}

TEST_CASE("drop-ins a manifest does not record are never removed", "[containerd]") {
  const registryd::test::scratch_dir scratch;
  const fs::path out = scratch.path();
  render_ok(json{{"hosts", {host("a.example.com")}}}, {.out_dir = out});
  // Someone else's file under registryd's name, after registryd stopped recording one.
  REQUIRE_FALSE(registryd::util::write_file_atomic(
      out / "registry.d/.registryd-managed.json",
      R"({"hosts": ["a.example.com"], "dropIns": ["conf2.d/registryd-registry.toml"]})"));
  const auto rep = render_ok(json{{"hosts", json::array()}}, {.out_dir = out});
  CHECK(rep.removed == std::vector<std::string>{dropin_v2, "registry.d/a.example.com/"});
  CHECK(fs::exists(out / dropin_v1));
  CHECK_FALSE(fs::exists(out / dropin_v2));
}

TEST_CASE("a manifest written before drop-ins were recorded still lets their removal happen",
          "[containerd]") {
  const registryd::test::scratch_dir scratch;
  const fs::path out = scratch.path();
  const auto first = render_ok(json{{"hosts", {host("a.example.com")}}}, {.out_dir = out});
  // What the code before the dropIns record wrote: it rendered both drop-ins on every render.
  const std::string old_manifest =
      json{{"managedBy", "registryd"}, {"configVersion", first.config_version},
           {"hosts", {"a.example.com"}}}
          .dump(2) +
      "\n";
  REQUIRE_FALSE(registryd::util::write_file_atomic(out / "registry.d/.registryd-managed.json",
                                                   old_manifest));

  SECTION("a render with hosts takes the old manifest over and rewrites nothing else") {
    const auto rep = render_ok(json{{"hosts", {host("a.example.com")}}}, {.out_dir = out});
    CHECK(rep.written == std::vector<std::string>{"registry.d/.registryd-managed.json"});
    CHECK(rep.removed.empty());
    const auto m = json::parse(slurp(out / "registry.d/.registryd-managed.json"));
    CHECK(m["dropIns"] == json({dropin_v1, dropin_v2}));
  }
  SECTION("a render without hosts removes the drop-ins registryd wrote") {
    const auto rep = render_ok(json{{"hosts", json::array()}}, {.out_dir = out});
    CHECK(rep.removed == std::vector<std::string>{dropin_v1, dropin_v2, "registry.d/a.example.com/"});
    CHECK_FALSE(fs::exists(out / dropin_v1));
    CHECK_FALSE(fs::exists(out / dropin_v2));
  }
  SECTION("a file under a drop-in's name without registryd's marker is not taken for one") {
    REQUIRE_FALSE(registryd::util::write_file_atomic(out / dropin_v1, "version = 2\n# mine\n"));
    const auto rep = render_ok(json{{"hosts", json::array()}}, {.out_dir = out});
    CHECK(rep.removed == std::vector<std::string>{dropin_v2, "registry.d/a.example.com/"});
    CHECK(slurp(out / dropin_v1) == "version = 2\n# mine\n");
  }
}

TEST_CASE("a dry run without hosts reports the drop-ins it would remove and removes nothing",
          "[containerd]") {
  const registryd::test::scratch_dir scratch;
  const fs::path out = scratch.path();
  render_ok(json{{"hosts", {host("a.example.com")}}}, {.out_dir = out});
  const auto before = snapshot(out);
  const auto rep = render_ok(json{{"hosts", json::array()}}, {.out_dir = out, .dry_run = true});
  CHECK(rep.removed == std::vector<std::string>{dropin_v1, dropin_v2, "registry.d/a.example.com/"});
  CHECK(snapshot(out) == before);
}
