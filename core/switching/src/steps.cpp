#include <registryd/switching/steps.hpp>

#include <array>

namespace registryd::switching {
namespace {

using namespace steps;

constexpr std::array<std::string_view, 8> direct_steps = {registry_contains_required_images,
                                                          containerd_config_preflight_ready,
                                                          transition_containerd_config_ready,
                                                          in_cluster_proxy_ready,
                                                          deckhouse_registry_switch_ready,
                                                          final_containerd_config_ready,
                                                          cleanup_node_services,
                                                          ready};

constexpr std::array<std::string_view, 8> node_services_steps = {
    registry_contains_required_images,  containerd_config_preflight_ready,
    transition_containerd_config_ready, node_services_ready,
    deckhouse_registry_switch_ready,    final_containerd_config_ready,
    cleanup_in_cluster_proxy,           ready};

constexpr std::array<std::string_view, 8> unmanaged_steps = {registry_contains_required_images,
                                                             containerd_config_preflight_ready,
                                                             transition_containerd_config_ready,
                                                             deckhouse_registry_switch_ready,
                                                             final_containerd_config_ready,
                                                             cleanup_in_cluster_proxy,
                                                             cleanup_node_services,
                                                             ready};

constexpr std::array<std::string_view, 10> all_steps = {registry_contains_required_images,
                                                        containerd_config_preflight_ready,
                                                        transition_containerd_config_ready,
                                                        in_cluster_proxy_ready,
                                                        node_services_ready,
                                                        deckhouse_registry_switch_ready,
                                                        final_containerd_config_ready,
                                                        cleanup_node_services,
                                                        cleanup_in_cluster_proxy,
                                                        ready};

}  // namespace

std::span<const std::string_view> switch_steps(mode target) {
  switch (target) {
    case mode::direct:
      return direct_steps;
    case mode::proxy:
    case mode::local:
      return node_services_steps;
    case mode::unmanaged:
    case mode::unmanaged_legacy:
      break;
  }
  return unmanaged_steps;
}

bool is_known_step(std::string_view type) {
  for (const auto s : all_steps) {
    if (s == type) return true;
  }
  return false;
}

}  // namespace registryd::switching
