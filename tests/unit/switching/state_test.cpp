#include <registryd/switching/state.hpp>
#include <registryd/switching/steps.hpp>
#include <registryd/util/atomic_file.hpp>

#include <catch2/catch.hpp>
#include <test_support.hpp>

#include <sys/stat.h>
#include <cstdlib>
#include <filesystem>
#include <functional>

using namespace registryd;
using namespace std::chrono_literals;
using switching::condition;
using switching::condition_reason;
using switching::mode;
using switching::persisted_state;
using switching::wall_clock;
namespace fs = std::filesystem;

namespace {

// 2025-07-15T12:52:46Z
const wall_clock::time_point t0 = wall_clock::time_point(1752583966s);

persisted_state proxy_state() {
  config::module_config c;
  c.mode = config::registry_mode::proxy;
  c.section = config::registry_section{};
  c.section->images_repo = "registry.example.com/deckhouse/ee";
  c.section->credentials = config::registry_credentials{"user", "secret", false};
  c.section->ttl = config::proxy_ttl{"72h", 72h};
  persisted_state s;
  s.current = mode::proxy;
  s.bootstrap_finished = true;
  s.config = config::to_canonical_json(c);
  s.applied_at = t0;
  s.target = mode::direct;
  s.conditions = switching::initial_conditions(mode::direct, t0);
  s.conditions[0] = {"RegistryContainsRequiredImages", true, condition_reason::ready,
                     "registry.example.com: all 157 items are checked", t0 + 5s};
  s.conditions[1].reason = condition_reason::error;
  s.conditions[1].message = "node-1: has custom toml merge containerd configuration";
  return s;
}

std::string load_error(const fs::path& dir) {
  auto loaded = switching::load_state(dir);
  REQUIRE_FALSE(loaded.ok());
  return loaded.error_message();
}

void write(const fs::path& dir, const std::string& text) {
  REQUIRE_FALSE(util::write_file_atomic(switching::state_file_path(dir), text));
}

nlohmann::json valid_json() { return switching::to_json(proxy_state()); }

}  // namespace

TEST_CASE("a missing state file means no state", "[switching][state]") {
  const registryd::test::scratch_dir scratch;
  const auto& dir = scratch.path();
  auto loaded = switching::load_state(dir);
  REQUIRE(loaded.ok());
  CHECK_FALSE(loaded->has_value());
  auto no_dir = switching::load_state(dir / "does" / "not" / "exist");
  REQUIRE(no_dir.ok());
  CHECK_FALSE(no_dir->has_value());
}

TEST_CASE("a saved state loads back equal", "[switching][state]") {
  const registryd::test::scratch_dir scratch;
  const auto& dir = scratch.path();
  const auto state = proxy_state();
  REQUIRE(switching::save_state(dir / "state", state).ok());
  auto loaded = switching::load_state(dir / "state");
  INFO((loaded.ok() ? "" : loaded.error_message()));
  REQUIRE(loaded.ok());
  REQUIRE(loaded->has_value());
  CHECK(**loaded == state);
}

TEST_CASE("states of every mode, legacy and bootstrap round-trip", "[switching][state]") {
  const registryd::test::scratch_dir scratch;
  const auto& dir = scratch.path();
  std::vector<persisted_state> states;
  {
    persisted_state fresh;  // bootstrap has not picked a mode
    fresh.applied_at = t0;
    states.push_back(fresh);
  }
  for (const auto m : switching::all_modes) {
    config::module_config c;
    c.mode = switching::registry_mode_of(m);
    if (m == mode::direct || m == mode::proxy || m == mode::unmanaged) {
      c.section = config::registry_section{};
      if (m == mode::proxy) c.section->ttl = config::proxy_ttl{"168h", 168h};
    }
    REQUIRE(switching::target_of(c) == m);
    persisted_state s;
    s.current = m;
    s.bootstrap_finished = m != mode::direct;
    s.config = config::to_canonical_json(c);
    s.applied_at = t0;
    states.push_back(s);
  }
  for (const auto& s : states) {
    INFO(switching::to_json(s).dump());
    REQUIRE(switching::save_state(dir, s).ok());
    auto loaded = switching::load_state(dir);
    INFO((loaded.ok() ? "" : loaded.error_message()));
    REQUIRE(loaded.ok());
    REQUIRE(loaded->has_value());
    CHECK(**loaded == s);
  }
}

TEST_CASE("the state file has the documented shape", "[switching][state]") {
  const auto j = valid_json();
  CHECK(j["version"] == 1);
  CHECK(j["mode"] == "Proxy");
  CHECK(j["legacy"] == false);
  CHECK(j["bootstrapFinished"] == true);
  CHECK(j["appliedAt"] == "2025-07-15T12:52:46Z");
  CHECK(j["targetMode"] == "Direct");
  CHECK(j["targetLegacy"] == false);
  CHECK(j["config"]["proxy"]["ttl"] == "72h");
  REQUIRE(j["conditions"].size() == 8);
  CHECK(j["conditions"][0] ==
        nlohmann::json{{"type", "RegistryContainsRequiredImages"},
                       {"status", "True"},
                       {"reason", "Ready"},
                       {"message", "registry.example.com: all 157 items are checked"},
                       {"lastTransitionTime", "2025-07-15T12:52:51Z"}});
  CHECK(j["conditions"][1]["status"] == "False");
  CHECK(j["conditions"][1]["reason"] == "Error");

  persisted_state legacy;
  legacy.current = mode::unmanaged_legacy;
  legacy.bootstrap_finished = true;
  legacy.config = config::to_canonical_json(config::default_module_config());
  const auto lj = switching::to_json(legacy);
  CHECK(lj["mode"] == "Unmanaged");
  CHECK(lj["legacy"] == true);
  CHECK_FALSE(lj.contains("targetMode"));
  CHECK(lj["conditions"] == nlohmann::json::array());
}

TEST_CASE("the state file is written 0600 and atomically replaced", "[switching][state]") {
  const registryd::test::scratch_dir scratch;
  const auto& dir = scratch.path();
  REQUIRE(switching::save_state(dir, proxy_state()).ok());
  struct stat st {};
  REQUIRE(::stat(switching::state_file_path(dir).c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  auto second = proxy_state();
  second.target.reset();
  REQUIRE(switching::save_state(dir, second).ok());
  int entries = 0;
  for (const auto& e : fs::directory_iterator(dir)) {
    (void)e;
    ++entries;
  }
  CHECK(entries == 1);
  CHECK(**switching::load_state(dir) == second);
}

TEST_CASE("a corrupt state file is an error and is left as it is", "[switching][state]") {
  const registryd::test::scratch_dir scratch;
  const auto& dir = scratch.path();
  const auto file = switching::state_file_path(dir).string();
  for (const std::string& text : std::vector<std::string>{"", "{", "not json", "{\"version\":1,",
                                                          std::string("\x00\x01", 2)}) {
    INFO(text);
    write(dir, text);
    const auto message = load_error(dir);
    CHECK(message.rfind("state file " + file + " is corrupt (not JSON): ", 0) == 0);
    std::error_code ec;
    CHECK(util::read_small_file(file, ec) == text);  // never reset
  }
}

TEST_CASE("an invalid state names the field and the rule", "[switching][state]") {
  const registryd::test::scratch_dir scratch;
  const auto& dir = scratch.path();
  const auto file = switching::state_file_path(dir).string();
  struct row {
    std::string what;
    std::function<void(nlohmann::json&)> change;
    std::string reason;
  };
  const std::vector<row> rows = {
      {"not an object", [](nlohmann::json& j) { j = nlohmann::json::array(); },
       "must be a JSON object, got array"},
      {"newer version", [](nlohmann::json& j) { j["version"] = 2; },
       "unsupported state version 2 (this release reads version 1)"},
      {"no version", [](nlohmann::json& j) { j.erase("version"); }, "version: is required"},
      {"unknown mode", [](nlohmann::json& j) { j["mode"] = "Mirror"; },
       "mode: must be one of Unmanaged, Direct, Proxy, Local, got \"Mirror\""},
      {"mode of wrong type", [](nlohmann::json& j) { j["mode"] = 3; },
       "mode: must be a mode name, got number"},
      {"legacy Proxy", [](nlohmann::json& j) { j["legacy"] = true; },
       "legacy: is true but the mode is Proxy"},
      {"no legacy flag", [](nlohmann::json& j) { j.erase("legacy"); }, "legacy: is required"},
      {"finished without a mode",
       [](nlohmann::json& j) {
         j["mode"] = nullptr;
         j["config"] = nullptr;
       },
       "bootstrapFinished: is true but no mode is recorded"},
      {"bootstrapFinished as text", [](nlohmann::json& j) { j["bootstrapFinished"] = "yes"; },
       "bootstrapFinished: must be a boolean, got string"},
      {"config of another mode",
       [](nlohmann::json& j) {
         j["config"] = {{"mode", "Local"}};
       },
       "config: is a Local config but the mode is Proxy"},
      {"invalid config", [](nlohmann::json& j) { j["config"]["proxy"]["ttl"] = "1m"; },
       "config: spec.settings.registry.proxy.ttl: must be at least 5m, got 1m"},
      {"config without a mode",
       [](nlohmann::json& j) {
         j["mode"] = nullptr;
         j["bootstrapFinished"] = false;
       },
       "config: must be null while no mode is recorded"},
      {"bad appliedAt", [](nlohmann::json& j) { j["appliedAt"] = "yesterday"; },
       "appliedAt: must be an RFC 3339 UTC time like 2025-07-15T12:52:46Z, got \"yesterday\""},
      {"bad target", [](nlohmann::json& j) { j["targetMode"] = "Nowhere"; },
       "targetMode: must be one of Unmanaged, Direct, Proxy, Local, got \"Nowhere\""},
      {"null target", [](nlohmann::json& j) { j["targetMode"] = nullptr; },
       "targetMode: must be a mode name, got null"},
      {"conditions not a list", [](nlohmann::json& j) { j["conditions"] = "none"; },
       "conditions: must be an array, got string"},
      {"condition status", [](nlohmann::json& j) { j["conditions"][2]["status"] = "Unknown"; },
       "conditions[2].status: must be True or False, got \"Unknown\""},
      {"condition reason", [](nlohmann::json& j) { j["conditions"][0]["reason"] = ""; },
       "conditions[0].reason: must be Ready, Processing or Error, got \"\""},
      {"condition type", [](nlohmann::json& j) { j["conditions"][0]["type"] = ""; },
       "conditions[0].type: must not be empty"},
      {"condition time",
       [](nlohmann::json& j) { j["conditions"][3]["lastTransitionTime"] = "2025-02-30T00:00:00Z"; },
       "conditions[3].lastTransitionTime: must be an RFC 3339 UTC time like "
       "2025-07-15T12:52:46Z, got \"2025-02-30T00:00:00Z\""},
      {"condition missing message", [](nlohmann::json& j) { j["conditions"][1].erase("message"); },
       "conditions[1].message: is required"},
      {"condition not an object", [](nlohmann::json& j) { j["conditions"][1] = 5; },
       "conditions[1]: must be an object, got number"},
  };
  for (const auto& r : rows) {
    INFO(r.what);
    auto j = valid_json();
    r.change(j);
    write(dir, j.dump());
    CHECK(load_error(dir) == "state file " + file + " is invalid: " + r.reason);
  }
}

TEST_CASE("every problem of an invalid state is reported together", "[switching][state]") {
  auto j = valid_json();
  j["bootstrapFinished"] = 1;
  j["appliedAt"] = 5;
  j["conditions"][0]["status"] = true;
  auto parsed = switching::state_from_json(j);
  REQUIRE_FALSE(parsed.ok());
  CHECK(parsed.error_message() ==
        "bootstrapFinished: must be a boolean, got number; appliedAt: must be a string, got "
        "number; conditions[0].status: must be a string, got boolean");
}

TEST_CASE("unknown keys in the state file are ignored for newer releases", "[switching][state]") {
  auto j = valid_json();
  j["futureField"] = {1, 2, 3};
  j["conditions"][0]["observedGeneration"] = 4;
  auto parsed = switching::state_from_json(j);
  REQUIRE(parsed.ok());
  CHECK(*parsed == proxy_state());
}

TEST_CASE("a state path that is not a regular file is an error", "[switching][state]") {
  const registryd::test::scratch_dir scratch;
  const auto& dir = scratch.path();
  fs::create_directories(switching::state_file_path(dir));
  CHECK(load_error(dir) ==
        "state file " + switching::state_file_path(dir).string() + " is not a regular file");
  CHECK_FALSE(switching::save_state(dir, proxy_state()).ok());
}

TEST_CASE("saving into a state dir that cannot be created is an error", "[switching][state]") {
  const registryd::test::scratch_dir scratch;
  const auto& dir = scratch.path();
  REQUIRE_FALSE(util::write_file_atomic(dir / "file", "x"));
  auto saved = switching::save_state(dir / "file" / "sub", proxy_state());
  REQUIRE_FALSE(saved.ok());
  CHECK(saved.error_message().rfind(
            "cannot write state file " + (dir / "file" / "sub" / "state.json").string() + ": ",
            0) == 0);
}

TEST_CASE("the recorded config reads back into the module config", "[switching][state]") {
  auto recorded = switching::recorded_config(proxy_state());
  REQUIRE(recorded.ok());
  CHECK(recorded->mode == config::registry_mode::proxy);
  CHECK(recorded->section->credentials->password == "secret");
  CHECK(switching::target_of(*recorded) == mode::proxy);
}

TEST_CASE("timestamps are RFC 3339 UTC with second precision", "[switching][state]") {
  CHECK(switching::format_timestamp(t0) == "2025-07-15T12:52:46Z");
  CHECK(switching::format_timestamp(t0 + 999ms) == "2025-07-15T12:52:46Z");
  CHECK(switching::format_timestamp(wall_clock::time_point{}) == "1970-01-01T00:00:00Z");
  CHECK(*switching::parse_timestamp("2025-07-15T12:52:46Z") == t0);
  CHECK(*switching::parse_timestamp("2024-02-29T23:59:59Z") == wall_clock::time_point(1709251199s));
  for (const std::string bad :
       {"", "2025-07-15", "2025-07-15T12:52:46", "2025-07-15T12:52:46+00:00",
        "2025-07-15T12:52:46.5Z", "2025-13-01T00:00:00Z", "2025-02-29T00:00:00Z",
        "2025-07-15T24:00:00Z", "2025-07-15T12:60:00Z", "2025-07-15T12:00:60Z",
        "2025-07-15 12:52:46Z", "2025-0a-15T12:52:46Z"}) {
    INFO(bad);
    CHECK_FALSE(switching::parse_timestamp(bad).ok());
  }
}

TEST_CASE("a new switch starts with every step False and Processing", "[switching][state]") {
  const auto conditions = switching::initial_conditions(mode::local, t0);
  const auto steps = switching::switch_steps(mode::local);
  REQUIRE(conditions.size() == steps.size());
  for (std::size_t i = 0; i < steps.size(); ++i) {
    CHECK(conditions[i].type == steps[i]);
    CHECK_FALSE(conditions[i].status);
    CHECK(conditions[i].reason == condition_reason::processing);
    CHECK(conditions[i].message.empty());
    CHECK(conditions[i].last_transition_time == t0);
  }
  REQUIRE(switching::first_pending(conditions) != nullptr);
  CHECK(switching::first_pending(conditions)->type == "RegistryContainsRequiredImages");
}

TEST_CASE("a condition's transition time changes only with its status", "[switching][state]") {
  auto conditions = switching::initial_conditions(mode::direct, t0);
  // Same status, new message: the time stays.
  switching::set_condition(conditions,
                           {"RegistryContainsRequiredImages",
                            false,
                            condition_reason::processing,
                            "12 of 157 items checked",
                            {}},
                           t0 + 10s);
  CHECK(conditions[0].message == "12 of 157 items checked");
  CHECK(conditions[0].last_transition_time == t0);
  // Status flips: the time moves.
  switching::set_condition(conditions,
                           {"RegistryContainsRequiredImages",
                            true,
                            condition_reason::ready,
                            "registry.example.com: all 157 items are checked",
                            {}},
                           t0 + 20s);
  CHECK(conditions[0].status);
  CHECK(conditions[0].last_transition_time == t0 + 20s);
  CHECK(switching::first_pending(conditions)->type == "ContainerdConfigPreflightReady");
  // An unknown type is appended.
  switching::set_condition(conditions, {"Extra", true, condition_reason::ready, "", {}}, t0 + 30s);
  CHECK(conditions.back().type == "Extra");
  CHECK(conditions.back().last_transition_time == t0 + 30s);
  CHECK(conditions.size() == switching::switch_steps(mode::direct).size() + 1);
}

TEST_CASE("a switch whose steps are all True has nothing pending", "[switching][state]") {
  auto conditions = switching::initial_conditions(mode::proxy, t0);
  for (const auto step : switching::switch_steps(mode::proxy)) {
    switching::set_condition(conditions, {std::string(step), true, condition_reason::ready, "", {}},
                             t0 + 1s);
  }
  CHECK(switching::first_pending(conditions) == nullptr);
  CHECK(switching::first_pending({}) == nullptr);
}

TEST_CASE("a state interrupted mid-switch resumes at the first unfinished step",
          "[switching][state]") {
  const registryd::test::scratch_dir scratch;
  const auto& dir = scratch.path();
  auto s = proxy_state();
  REQUIRE(switching::save_state(dir, s).ok());
  auto loaded = switching::load_state(dir);
  REQUIRE(loaded.ok());
  const auto* pending = switching::first_pending((*loaded)->conditions);
  REQUIRE(pending != nullptr);
  CHECK(pending->type == "ContainerdConfigPreflightReady");
  CHECK(pending->reason == condition_reason::error);
  CHECK((*loaded)->target == mode::direct);
}
