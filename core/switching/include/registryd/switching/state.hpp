// The switching state the host persists in `<state_dir>/state.json`: which mode runs, whether
// bootstrap has finished, the canonical config the mode runs with, and the conditions of the
// staged switch. Written atomically (0600: the config holds credentials); a file that cannot
// be read back is an error, never silently reset, because resetting would let a half-switched
// node be bootstrapped again.
#pragma once

#include <registryd/config/module_config.hpp>
#include <registryd/switching/mode.hpp>
#include <registryd/util/result.hpp>

#include <nlohmann/json.hpp>

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace registryd::switching {

using wall_clock = std::chrono::system_clock;

// The state file's own format version, checked on load.
inline constexpr int state_format_version = 1;
inline constexpr std::string_view state_file_name = "state.json";

enum class condition_reason { ready, processing, error };
std::string_view to_string(condition_reason reason);  // "Ready" | "Processing" | "Error"

// One step of a switch, shaped like a Kubernetes condition.
struct condition {
  std::string type;     // a step name (steps.hpp)
  bool status = false;  // "True" / "False"
  condition_reason reason = condition_reason::processing;
  std::string message;
  // When `status` last changed; stored with one-second precision (RFC 3339, UTC).
  wall_clock::time_point last_transition_time{};

  friend bool operator==(const condition&, const condition&) = default;
};

struct persisted_state {
  // The mode that runs (or is being bootstrapped); empty before bootstrap picked one.
  std::optional<mode> current;
  bool bootstrap_finished = false;
  // config::to_canonical_json() of the config `current` runs with; null without a mode.
  nlohmann::json config;
  // When `config` was applied; one-second precision.
  wall_clock::time_point applied_at{};
  // The mode a staged switch is heading for, while one is under way.
  std::optional<mode> target;
  // The steps of the switch under way (or of the last one), in step order.
  std::vector<condition> conditions;

  friend bool operator==(const persisted_state&, const persisted_state&) = default;
};

// <state_dir>/state.json
std::filesystem::path state_file_path(const std::filesystem::path& state_dir);

// The file format:
// {"version":1,"mode":"Unmanaged","legacy":false,"bootstrapFinished":true,"config":{...},
//  "appliedAt":"2025-07-15T12:55:48Z","targetMode":"Proxy","targetLegacy":false,
//  "conditions":[{"type":"...","status":"True","reason":"Ready","message":"",
//                 "lastTransitionTime":"2025-07-15T12:52:46Z"}]}
// "mode" is null before bootstrap picked a mode; "targetMode"/"targetLegacy" are absent when
// no switch is under way.
nlohmann::json to_json(const persisted_state& state);
// Every field is checked; the error names the field and the rule.
util::result<persisted_state> state_from_json(const nlohmann::json& json);

// The state in `state_dir`: nullopt when there is no state file (a fresh node), an error when
// the file exists but cannot be read or is not a valid state.
util::result<std::optional<persisted_state>> load_state(const std::filesystem::path& state_dir);
// Replaces the state file atomically, mode 0600, creating `state_dir` if needed.
util::status save_state(const std::filesystem::path& state_dir, const persisted_state& state);

// The module config the state records, validated again.
config::checked<config::module_config> recorded_config(const persisted_state& state);

// The conditions of a switch into `target` that has not started: every step False,
// Processing, empty message, last transition `now`.
std::vector<condition> initial_conditions(mode target, wall_clock::time_point now);

// Sets the condition `update.type` (appending it when missing). As in Kubernetes,
// last_transition_time changes only when the status changes; `now` is used then.
void set_condition(std::vector<condition>& conditions, condition update,
                   wall_clock::time_point now);

// The first condition that is not True: where a switch resumes. nullptr when all are True.
const condition* first_pending(const std::vector<condition>& conditions);

// RFC 3339 in UTC with second precision ("2025-07-15T12:52:46Z"), and back.
std::string format_timestamp(wall_clock::time_point t);
util::result<wall_clock::time_point> parse_timestamp(std::string_view text);

}  // namespace registryd::switching
