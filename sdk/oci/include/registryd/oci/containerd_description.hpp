// The containerd description (schema: docs/plugin-authors.md) shared by the modes that serve
// images from the masters through the node balancer, Proxy and Local (FACTS.md section 3):
// the fixed host (registry.d8-system.svc:5001) is mirrored by https://127.0.0.1:5001, the TCP
// balancer on every node, trusting the registry CA. One function, so both modes describe the
// same node configuration and a switch between them (through Direct or Unmanaged) renders
// identical files for the fixed host.
//
// Thread-safety: pure functions.
#pragma once

#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <string_view>

namespace registryd::oci {

// Where every node reaches the registry (the node balancer, FACTS.md section 4).
inline constexpr std::string_view node_balancer_url = "https://127.0.0.1:5001";

// {"hosts":[{"host": fixed_host, "mirrors":[{"url": mirror_url, "capabilities":["pull","resolve"],
// "ca": ca_pem}]}]}; "ca" only when `ca_pem` is given (the host's CA file, read when
// describing: it exists once the host serves TLS).
inline nlohmann::json node_balancer_description(std::string_view fixed_host,
                                                const std::optional<std::string>& ca_pem,
                                                std::string_view mirror_url = node_balancer_url) {
  nlohmann::json mirror = {{"url", mirror_url}, {"capabilities", {"pull", "resolve"}}};
  if (ca_pem) mirror["ca"] = *ca_pem;
  return nlohmann::json{{"hosts", {{{"host", fixed_host}, {"mirrors", {mirror}}}}}};
}

}  // namespace registryd::oci
