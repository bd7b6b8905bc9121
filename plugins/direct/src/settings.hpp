// The Direct mode's view of the settings document (docs/plugin-authors.md): the upstream
// (`section`, read by the SDK's upstream_from_section) and the host facts the mode needs to
// describe containerd.
#pragma once

#include <registryd/oci/client/options.hpp>

#include <nlohmann/json.hpp>

#include <chrono>
#include <string>
#include <vector>

namespace registryd::direct {

// How long a TCP connect (and TLS handshake) to the upstream may take. A node waiting for an
// image behind a dead upstream should hear so in seconds, not after the client's default.
inline constexpr std::chrono::milliseconds upstream_connect_timeout{3000};

struct settings {
  // imagesRepo split into registry and path, and the client options (scheme, credentials, CA).
  oci::client::upstream_settings upstream;
  // The client-facing repository and address (host.fixedRepository, host.fixedHost).
  std::string fixed_repository = "system/deckhouse";
  std::string fixed_host = "registry.d8-system.svc:5001";
  // The registry CA that registryd's serving certificates chain to (host.caFile), read when
  // describing containerd, not before: it exists once the host serves TLS.
  std::string ca_file;
  // Where the in-cluster proxy runs: registryd on every master (host.masters, or host.nodeIP
  // when no master is named).
  std::vector<std::string> masters;
  // The nodes run the platform's patched containerd (host.containerdBuild "patched"): they are
  // also given the upstream itself, with the path rewrite and the upstream credentials.
  bool patched_containerd = false;
  // Relays in flight, in all and per client address (host.directMaxRelays,
  // host.directMaxRelaysPerClient; the host settings direct_max_relays and
  // direct_max_relays_per_client).
  std::size_t max_relays = 1024;
  std::size_t max_relays_per_client = 128;
  // Of those, waiting for the upstream's answer head at once (host.directMaxRelaysWaiting).
  std::size_t max_relays_waiting = 32;
};

// Parses and checks the document. Throws std::invalid_argument naming the offending field,
// e.g. `invalid Direct settings: section.scheme must be HTTP or HTTPS, not 'FTP'`.
settings parse_settings(const nlohmann::json& doc);

}  // namespace registryd::direct
