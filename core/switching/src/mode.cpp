#include <registryd/switching/mode.hpp>

#include <cctype>
#include <string>

namespace registryd::switching {

std::string_view to_string(mode m) {
  switch (m) {
    case mode::direct:
      return "Direct";
    case mode::proxy:
      return "Proxy";
    case mode::local:
      return "Local";
    case mode::unmanaged:
      return "Unmanaged";
    case mode::unmanaged_legacy:
      return "UnmanagedLegacy";
  }
  return "Unknown";
}

std::string_view display_name(mode m) {
  return m == mode::unmanaged_legacy ? "Unmanaged (legacy)" : to_string(m);
}

util::result<mode> parse_mode(std::string_view text) {
  std::string folded;
  for (const char c : text) {
    if (c == '-' || c == '_' || c == ' ' || c == '(' || c == ')') continue;
    folded += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  if (folded == "direct") return mode::direct;
  if (folded == "proxy") return mode::proxy;
  if (folded == "local") return mode::local;
  if (folded == "unmanaged") return mode::unmanaged;
  if (folded == "unmanagedlegacy" || folded == "legacyunmanaged" || folded == "legacy") {
    return mode::unmanaged_legacy;
  }
  return util::error{"unknown mode \"" + std::string(text) +
                     "\": expected Direct, Proxy, Local, Unmanaged or UnmanagedLegacy"};
}

mode target_of(const config::module_config& config) {
  return from_registry_mode(config.mode, config.legacy());
}

config::registry_mode registry_mode_of(mode m) {
  switch (m) {
    case mode::direct:
      return config::registry_mode::direct;
    case mode::proxy:
      return config::registry_mode::proxy;
    case mode::local:
      return config::registry_mode::local;
    case mode::unmanaged:
    case mode::unmanaged_legacy:
      break;
  }
  return config::registry_mode::unmanaged;
}

mode from_registry_mode(config::registry_mode m, bool legacy) {
  switch (m) {
    case config::registry_mode::direct:
      return mode::direct;
    case config::registry_mode::proxy:
      return mode::proxy;
    case config::registry_mode::local:
      return mode::local;
    case config::registry_mode::unmanaged:
      break;
  }
  return legacy ? mode::unmanaged_legacy : mode::unmanaged;
}

}  // namespace registryd::switching
