// The registry modes as switching targets. The legacy Unmanaged mode (Unmanaged without an
// `unmanaged` section) is a target of its own: the switching rules treat it differently.
#pragma once

#include <registryd/config/module_config.hpp>
#include <registryd/util/result.hpp>

#include <array>
#include <string_view>

namespace registryd::switching {

enum class mode { direct, proxy, local, unmanaged, unmanaged_legacy };

inline constexpr std::array<mode, 5> all_modes = {mode::direct, mode::proxy, mode::local,
                                                  mode::unmanaged, mode::unmanaged_legacy};

// A stable token: "Direct", "Proxy", "Local", "Unmanaged", "UnmanagedLegacy".
std::string_view to_string(mode m);
// For messages: as to_string, but "Unmanaged (legacy)" for the legacy mode.
std::string_view display_name(mode m);

// Case-insensitive, ignoring '-', '_', ' ' and parentheses, so "proxy", "Unmanaged-legacy",
// "unmanaged_legacy", "UnmanagedLegacy", "Unmanaged (legacy)" and "legacy" all parse. For
// command-line flags such as `--from MODE`.
util::result<mode> parse_mode(std::string_view text);

// Both Unmanaged variants.
constexpr bool is_unmanaged(mode m) noexcept {
  return m == mode::unmanaged || m == mode::unmanaged_legacy;
}

// The mode a module config asks for.
mode target_of(const config::module_config& config);

// The ModuleConfig mode and legacy flag of a target, as the state file records them.
config::registry_mode registry_mode_of(mode m);
mode from_registry_mode(config::registry_mode m, bool legacy);

}  // namespace registryd::switching
