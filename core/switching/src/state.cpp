#include <registryd/switching/state.hpp>

#include <registryd/switching/steps.hpp>
#include <registryd/util/atomic_file.hpp>

#include <array>
#include <cstdio>
#include <exception>

namespace registryd::switching {
namespace {

using nlohmann::json;
namespace chrono = std::chrono;

constexpr std::array<std::string_view, 3> reason_names = {"Ready", "Processing", "Error"};

json mode_name(const std::optional<mode>& m) {
  if (!m) return nullptr;
  return std::string(config::to_string(registry_mode_of(*m)));
}

// Collects every problem of one state document, as "<field>: <reason>".
class field_checker {
 public:
  explicit field_checker(const json& object, field_checker* parent = nullptr,
                         std::string prefix = {})
      : object_(object), parent_(parent), prefix_(std::move(prefix)) {}

  const json* find(std::string_view key) const {
    const auto it = object_.find(key);
    return it == object_.end() ? nullptr : &*it;
  }
  void fail(const std::string& field, const std::string& reason) {
    failed_ = true;
    if (parent_) {
      parent_->fail(prefix_ + "." + field, reason);
      return;
    }
    if (!message_.empty()) message_ += "; ";
    message_ += field + ": " + reason;
  }
  bool failed() const noexcept { return failed_; }
  const json* require(std::string_view key) {
    const json* value = find(key);
    if (!value) fail(std::string(key), "is required");
    return value;
  }
  std::optional<bool> boolean(std::string_view key, bool required = true) {
    const json* value = required ? require(key) : find(key);
    if (!value) return std::nullopt;
    if (!value->is_boolean()) {
      fail(std::string(key), std::string("must be a boolean, got ") + value->type_name());
      return std::nullopt;
    }
    return value->get<bool>();
  }
  std::optional<std::string> string(std::string_view key, const std::string& field) {
    const json* value = require(key);
    if (!value) return std::nullopt;
    if (!value->is_string()) {
      fail(field, std::string("must be a string, got ") + value->type_name());
      return std::nullopt;
    }
    return value->get<std::string>();
  }
  std::optional<wall_clock::time_point> timestamp(std::string_view key, const std::string& field) {
    auto text = string(key, field);
    if (!text) return std::nullopt;
    auto t = parse_timestamp(*text);
    if (!t) {
      fail(field, t.error_message());
      return std::nullopt;
    }
    return *t;
  }
  // A ModuleConfig mode name (or null when `nullable`) into `out`; `legacy_key` completes
  // it. Returns false when the field is missing or invalid.
  bool mode_field(std::string_view key, std::string_view legacy_key, bool nullable,
                  std::optional<mode>& out) {
    out.reset();
    const json* value = require(key);
    if (!value) return false;
    if (value->is_null() && nullable) return true;
    const auto legacy = boolean(legacy_key, !value->is_null());
    if (!value->is_string()) {
      fail(std::string(key), std::string("must be a mode name, got ") + value->type_name());
      return false;
    }
    const std::string name = value->get<std::string>();
    for (const auto m : {config::registry_mode::unmanaged, config::registry_mode::direct,
                         config::registry_mode::proxy, config::registry_mode::local}) {
      if (name != config::to_string(m)) continue;
      if (legacy.value_or(false) && m != config::registry_mode::unmanaged) {
        fail(std::string(legacy_key), "is true but the mode is " + name);
        return false;
      }
      out = from_registry_mode(m, legacy.value_or(false));
      return true;
    }
    fail(std::string(key), "must be one of Unmanaged, Direct, Proxy, Local, got \"" + name + "\"");
    return false;
  }

  const std::string& message() const { return message_; }

 private:
  const json& object_;
  field_checker* parent_;
  std::string prefix_;
  std::string message_;
  bool failed_ = false;
};

std::optional<condition> condition_from_json(const json& j, const std::string& field,
                                             field_checker& outer) {
  if (!j.is_object()) {
    outer.fail(field, std::string("must be an object, got ") + j.type_name());
    return std::nullopt;
  }
  field_checker c(j, &outer, field);
  condition out;
  if (auto type = c.string("type", "type")) {
    if (type->empty()) c.fail("type", "must not be empty");
    out.type = std::move(*type);
  }
  if (auto status = c.string("status", "status")) {
    if (*status == "True") {
      out.status = true;
    } else if (*status != "False") {
      c.fail("status", "must be True or False, got \"" + *status + "\"");
    }
  }
  if (auto reason = c.string("reason", "reason")) {
    bool known = false;
    for (std::size_t i = 0; i < reason_names.size(); ++i) {
      if (*reason == reason_names[i]) {
        out.reason = static_cast<condition_reason>(i);
        known = true;
      }
    }
    if (!known) c.fail("reason", "must be Ready, Processing or Error, got \"" + *reason + "\"");
  }
  if (auto message = c.string("message", "message")) out.message = std::move(*message);
  if (auto t = c.timestamp("lastTransitionTime", "lastTransitionTime")) {
    out.last_transition_time = *t;
  }
  if (c.failed()) return std::nullopt;
  return out;
}

}  // namespace

std::string_view to_string(condition_reason reason) {
  return reason_names.at(static_cast<std::size_t>(reason));
}

std::filesystem::path state_file_path(const std::filesystem::path& state_dir) {
  return state_dir / state_file_name;
}

std::string format_timestamp(wall_clock::time_point t) {
  const auto secs = chrono::floor<chrono::seconds>(t);
  const auto day = chrono::floor<chrono::days>(secs);
  const chrono::year_month_day ymd{day};
  const chrono::hh_mm_ss<chrono::seconds> hms{secs - day};
  char buf[40];
  std::snprintf(buf, sizeof buf, "%04d-%02u-%02uT%02d:%02d:%02dZ", static_cast<int>(ymd.year()),
                static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()),
                static_cast<int>(hms.hours().count()), static_cast<int>(hms.minutes().count()),
                static_cast<int>(hms.seconds().count()));
  return buf;
}

util::result<wall_clock::time_point> parse_timestamp(std::string_view text) {
  const auto bad = [&] {
    return util::error{"must be an RFC 3339 UTC time like 2025-07-15T12:52:46Z, got \"" +
                       std::string(text) + "\""};
  };
  // YYYY-MM-DDTHH:MM:SSZ
  if (text.size() != 20 || text[4] != '-' || text[7] != '-' || text[10] != 'T' || text[13] != ':' ||
      text[16] != ':' || text[19] != 'Z') {
    return bad();
  }
  const auto number = [&](std::size_t pos, std::size_t len, int& out) {
    out = 0;
    for (std::size_t i = pos; i < pos + len; ++i) {
      if (text[i] < '0' || text[i] > '9') return false;
      out = out * 10 + (text[i] - '0');
    }
    return true;
  };
  int y = 0, mo = 0, d = 0, h = 0, mi = 0, s = 0;
  if (!number(0, 4, y) || !number(5, 2, mo) || !number(8, 2, d) || !number(11, 2, h) ||
      !number(14, 2, mi) || !number(17, 2, s)) {
    return bad();
  }
  const chrono::year_month_day ymd{chrono::year(y), chrono::month(static_cast<unsigned>(mo)),
                                   chrono::day(static_cast<unsigned>(d))};
  if (!ymd.ok() || h > 23 || mi > 59 || s > 59) return bad();
  return wall_clock::time_point(chrono::sys_days(ymd) + chrono::hours(h) + chrono::minutes(mi) +
                                chrono::seconds(s));
}

json to_json(const persisted_state& state) {
  json conditions = json::array();
  for (const auto& c : state.conditions) {
    conditions.push_back({
        {"type", c.type},
        {"status", c.status ? "True" : "False"},
        {"reason", to_string(c.reason)},
        {"message", c.message},
        {"lastTransitionTime", format_timestamp(c.last_transition_time)},
    });
  }
  json j = {
      {"version", state_format_version},
      {"mode", mode_name(state.current)},
      {"legacy", state.current == mode::unmanaged_legacy},
      {"bootstrapFinished", state.bootstrap_finished},
      {"config", state.config},
      {"appliedAt", format_timestamp(state.applied_at)},
      {"conditions", std::move(conditions)},
  };
  if (state.target) {
    j["targetMode"] = mode_name(state.target);
    j["targetLegacy"] = *state.target == mode::unmanaged_legacy;
  }
  return j;
}

util::result<persisted_state> state_from_json(const json& j) {
  if (!j.is_object()) {
    return util::error{std::string("must be a JSON object, got ") + j.type_name()};
  }
  field_checker c(j);
  if (const json* version = c.require("version")) {
    if (!version->is_number_integer()) {
      c.fail("version", std::string("must be an integer, got ") + version->type_name());
    } else if (version->get<long long>() != state_format_version) {
      return util::error{"unsupported state version " + version->dump() +
                         " (this release reads version " + std::to_string(state_format_version) +
                         ")"};
    }
  }
  persisted_state state;
  c.mode_field("mode", "legacy", true, state.current);
  if (auto finished = c.boolean("bootstrapFinished")) {
    state.bootstrap_finished = *finished;
    if (*finished && !state.current && c.find("mode") && c.find("mode")->is_null()) {
      c.fail("bootstrapFinished", "is true but no mode is recorded");
    }
  }
  if (const json* cfg = c.require("config")) {
    state.config = *cfg;
    if (state.current) {
      auto parsed = config::module_config_from_json(*cfg);
      if (!parsed) {
        c.fail("config", parsed.error_message());
      } else if (target_of(*parsed) != *state.current) {
        c.fail("config", "is a " + std::string(display_name(target_of(*parsed))) +
                             " config but the mode is " +
                             std::string(display_name(*state.current)));
      }
    } else if (c.find("mode") && c.find("mode")->is_null() && !cfg->is_null()) {
      c.fail("config", "must be null while no mode is recorded");
    }
  }
  if (auto t = c.timestamp("appliedAt", "appliedAt")) state.applied_at = *t;
  if (c.find("targetMode")) {
    c.mode_field("targetMode", "targetLegacy", false, state.target);
  }
  if (const json* conditions = c.require("conditions")) {
    if (!conditions->is_array()) {
      c.fail("conditions", std::string("must be an array, got ") + conditions->type_name());
    } else {
      for (std::size_t i = 0; i < conditions->size(); ++i) {
        if (auto cond =
                condition_from_json((*conditions)[i], "conditions[" + std::to_string(i) + "]", c)) {
          state.conditions.push_back(std::move(*cond));
        }
      }
    }
  }
  if (!c.message().empty()) return util::error{c.message()};
  return state;
}

util::result<std::optional<persisted_state>> load_state(const std::filesystem::path& state_dir) {
  const auto path = state_file_path(state_dir);
  std::error_code ec;
  const auto status = std::filesystem::status(path, ec);
  if (status.type() == std::filesystem::file_type::not_found) {
    return std::optional<persisted_state>();
  }
  if (ec) return util::error{"cannot read state file " + path.string() + ": " + ec.message()};
  if (status.type() != std::filesystem::file_type::regular) {
    return util::error{"state file " + path.string() + " is not a regular file"};
  }
  const std::string text = util::read_small_file(path, ec);
  if (ec) return util::error{"cannot read state file " + path.string() + ": " + ec.message()};
  json j;
  try {
    j = json::parse(text);
  } catch (const json::exception& e) {
    return util::error{"state file " + path.string() + " is corrupt (not JSON): " + e.what()};
  }
  auto state = state_from_json(j);
  if (!state) {
    return util::error{"state file " + path.string() + " is invalid: " + state.error_message()};
  }
  return std::optional<persisted_state>(std::move(state).value());
}

util::status save_state(const std::filesystem::path& state_dir, const persisted_state& state) {
  const auto path = state_file_path(state_dir);
  std::string text;
  try {
    // Invalid UTF-8 in a message must not stop the state from being saved.
    text = to_json(state).dump(2, ' ', false, json::error_handler_t::replace) + "\n";
  } catch (const std::exception& e) {
    return util::error{"cannot serialize the state: " + std::string(e.what())};
  }
  if (const auto ec = util::write_file_atomic(path, text, std::filesystem::perms(0600))) {
    return util::error{"cannot write state file " + path.string() + ": " + ec.message()};
  }
  return util::ok();
}

config::checked<config::module_config> recorded_config(const persisted_state& state) {
  return config::module_config_from_json(state.config);
}

std::vector<condition> initial_conditions(mode target, wall_clock::time_point now) {
  std::vector<condition> out;
  for (const auto step : switch_steps(target)) {
    out.push_back({std::string(step), false, condition_reason::processing, "", now});
  }
  return out;
}

void set_condition(std::vector<condition>& conditions, condition update,
                   wall_clock::time_point now) {
  for (auto& c : conditions) {
    if (c.type != update.type) continue;
    update.last_transition_time = c.status == update.status ? c.last_transition_time : now;
    c = std::move(update);
    return;
  }
  update.last_transition_time = now;
  conditions.push_back(std::move(update));
}

const condition* first_pending(const std::vector<condition>& conditions) {
  for (const auto& c : conditions) {
    if (!c.status) return &c;
  }
  return nullptr;
}

}  // namespace registryd::switching
