// The steps of a staged switch into each mode, as data. Each step is a condition in the
// persisted state, so a switch that stops (a restart, an error) resumes at the first step that
// is not True. docs/switching.md explains each step.
#pragma once

#include <registryd/switching/mode.hpp>

#include <span>
#include <string_view>

namespace registryd::switching::steps {

inline constexpr std::string_view registry_contains_required_images =
    "RegistryContainsRequiredImages";
inline constexpr std::string_view containerd_config_preflight_ready =
    "ContainerdConfigPreflightReady";
inline constexpr std::string_view transition_containerd_config_ready =
    "TransitionContainerdConfigReady";
inline constexpr std::string_view in_cluster_proxy_ready = "InClusterProxyReady";
inline constexpr std::string_view node_services_ready = "NodeServicesReady";
inline constexpr std::string_view deckhouse_registry_switch_ready = "DeckhouseRegistrySwitchReady";
inline constexpr std::string_view final_containerd_config_ready = "FinalContainerdConfigReady";
inline constexpr std::string_view cleanup_node_services = "CleanupNodeServices";
inline constexpr std::string_view cleanup_in_cluster_proxy = "CleanupInClusterProxy";
inline constexpr std::string_view ready = "Ready";

}  // namespace registryd::switching::steps

namespace registryd::switching {

// The ordered steps of a switch into `target`; the last is always steps::ready.
//   Direct:        RegistryContainsRequiredImages, ContainerdConfigPreflightReady,
//                  TransitionContainerdConfigReady, InClusterProxyReady,
//                  DeckhouseRegistrySwitchReady, FinalContainerdConfigReady,
//                  CleanupNodeServices, Ready
//   Proxy, Local:  the same with NodeServicesReady for InClusterProxyReady and
//                  CleanupInClusterProxy for CleanupNodeServices
//   Unmanaged (both variants): no service to bring up, both to clean up:
//                  RegistryContainsRequiredImages, ContainerdConfigPreflightReady,
//                  TransitionContainerdConfigReady, DeckhouseRegistrySwitchReady,
//                  FinalContainerdConfigReady, CleanupInClusterProxy, CleanupNodeServices,
//                  Ready
// The spans view static storage.
std::span<const std::string_view> switch_steps(mode target);

// Whether `type` is one of the step names above (any mode).
bool is_known_step(std::string_view type);

}  // namespace registryd::switching
