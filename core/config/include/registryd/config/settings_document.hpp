// The plugin settings document: the one JSON object a mode plugin receives in `create` and
// `validate_settings`. docs/plugin-authors.md is the contract; this builds exactly that.
#pragma once

#include <registryd/config/host_settings.hpp>
#include <registryd/config/module_config.hpp>

#include <nlohmann/json.hpp>

#include <string_view>

namespace registryd::config {

// The address and repository every node pulls the platform's images through, whatever the
// mode; a mode makes them point at its backend.
inline constexpr std::string_view fixed_host = "registry.d8-system.svc:5001";
inline constexpr std::string_view fixed_repository = "system/deckhouse";

// {"mode", "legacy", "section", "host"} as docs/plugin-authors.md describes:
// `section` is the mode's section with defaults applied (a license already resolved,
// `ttl`+`ttlSeconds` in Proxy mode only, absent optional fields left out), null in Local mode,
// and for the legacy Unmanaged mode the install-time imagesRepo with default fields.
nlohmann::json settings_document(const module_config& config, const host_settings& host);

// The packages proxy's document: settings_document() of the mode in force (its default
// repository follows the mode) plus `packages` with the cache's settings
// (docs/packages-proxy.md).
nlohmann::json packages_document(const module_config& config, const host_settings& host);

}  // namespace registryd::config
