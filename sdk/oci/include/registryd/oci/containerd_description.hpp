// The containerd description (schema: docs/plugin-authors.md) shared by the modes that serve
// images from the masters through the node balancer, Proxy and Local (FACTS.md section 3):
// the fixed host (registry.d8-system.svc:5001) is mirrored by https://127.0.0.1:5001, the TCP
// balancer on every node, trusting the registry CA. One function, so both modes describe the
// same node configuration and a switch between them (through Direct or Unmanaged) renders
// identical files for the fixed host.
//
// Thread-safety: pure functions.
#pragma once

#include <registryd/oci/text_file.hpp>

#include <nlohmann/json.hpp>

#include <filesystem>

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

// The same, reading the CA from `ca_file` now. A file that cannot be read is passed to `warn`
// with the reason and the description names no CA (containerd then trusts the system CAs).
template <typename Warn>
nlohmann::json node_balancer_description(std::string_view fixed_host,
                                         const std::optional<std::filesystem::path>& ca_file,
                                         std::string_view mirror_url, Warn&& warn) {
  std::optional<std::string> ca;
  if (ca_file) {
    ca = read_text_file(*ca_file);
    if (!ca) warn("the registry CA " + ca_file->string() + " cannot be read: the containerd description names no CA");
  }
  return node_balancer_description(fixed_host, ca, mirror_url);
}

}  // namespace registryd::oci
