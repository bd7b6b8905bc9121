// The host's logger: spdlog to stderr, as text for people or one JSON object per line for
// log collectors.
#pragma once

#include <spdlog/formatter.h>
#include <spdlog/logger.h>

#include <cstdint>
#include <memory>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace registryd::util {

// The fields of a structured entry (an access log line): a JSON entry carries them as members
// of its object, a text entry as key=value after the message. monostate is null ("-" in text).
using log_value = std::variant<std::monostate, std::string_view, std::int64_t, double>;
using log_fields = std::vector<std::pair<std::string_view, log_value>>;

// Logs `message` with `fields`, on one line in either format.
void log_structured(spdlog::logger& logger, spdlog::level::level_enum level, std::string_view message,
                    const log_fields& fields);

// Makes the process-wide logger (also set as spdlog's default): text lines for people, or with
// `json` one JSON object per line. Either way an entry is one line: a message's line breaks and
// control characters are escaped. Levels are spelt as spdlog names them (trace, debug, info,
// warning, error, critical) in both formats. `level` is an spdlog level name: trace, debug, info, warn,
// error.
std::shared_ptr<spdlog::logger> make_logger(bool json, std::string_view level);
// The formatter make_logger gives its sink, for a logger with another sink (tests).
std::unique_ptr<spdlog::formatter> make_formatter(bool json);

}  // namespace registryd::util
