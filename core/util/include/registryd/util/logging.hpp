// The host's logger: spdlog to stderr, as text for people or one JSON object per line for
// log collectors.
#pragma once

#include <spdlog/logger.h>

#include <memory>
#include <string_view>

namespace registryd::util {

// Makes the process-wide logger (also set as spdlog's default): text lines for people, or with
// `json` one JSON object per line. `level` is an spdlog level name: trace, debug, info, warn,
// error.
std::shared_ptr<spdlog::logger> make_logger(bool json, std::string_view level);

}  // namespace registryd::util
