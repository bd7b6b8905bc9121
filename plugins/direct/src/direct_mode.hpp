// The Direct mode: registryd on the masters is the in-cluster proxy in front of the upstream
// registry (imagesRepo). It forwards pulls of system/deckhouse (and the repositories below it)
// to the imagesRepo path with the section's credentials, streams manifests and blobs through
// without storing them, maps every upstream name back to the client's, and refuses push,
// delete and other repositories. docs/direct-mode.md tells the whole story.
#pragma once

#include "metrics.hpp"
#include "settings.hpp"

#include <registryd/oci/client/registry_client.hpp>
#include <registryd/oci/path_mapping.hpp>
#include <registryd/sdk/admission.hpp>
#include <registryd/sdk/plugin.hpp>

#include <memory>
#include <optional>
#include <string>

namespace registryd::direct {

struct forward_plan;

class direct_mode final : public sdk::mode_plugin {
 public:
  // Throws std::invalid_argument for bad settings (and a `ca` that holds no certificate).
  // Does not touch the network: a switch to Direct is quick, and an upstream that is down now
  // is reported per request, not by refusing the mode.
  direct_mode(const sdk::host& host, const nlohmann::json& settings_doc);

  // Exported as validate_settings.
  static void validate(const nlohmann::json& settings_doc) { (void)parse_settings(settings_doc); }

  std::optional<nlohmann::json> containerd_config() const override;
  void handle(const sdk::request& req, sdk::response& res) override;
  void metrics(std::string& out) const override;

  const settings& config() const noexcept { return settings_; }
  const direct_metrics& counters() const noexcept { return *metrics_; }

 private:
  void answer_upstream_error(sdk::response& res, const forward_plan& plan,
                             const oci::client::upstream_error& error, const std::string& body,
                             bool head_request);

  sdk::host host_;
  settings settings_;
  oci::path_mapping mapping_;
  std::shared_ptr<const oci::client::registry_client> client_;
  // Shared with the streams in flight, which may end after a handler returned.
  std::shared_ptr<direct_metrics> metrics_;
  // A place per upstream exchange, held until its answer has been read (the stream's source
  // holds it past handle()): direct_max_relays in all, direct_max_relays_per_client per client
  // address.
  sdk::admission relays_;
  // Of those, the ones whose handler waits for the upstream's answer head on a worker
  // (direct_max_relays_waiting).
  sdk::admission waiting_;
};

// The containerd description for the fixed host (schema: docs/plugin-authors.md). Stock
// containerd can neither rewrite system/deckhouse to the imagesRepo path nor authenticate from
// hosts.toml, so nodes pull through the in-cluster proxy: one mirror per master,
// https://<master>:<fixed port>, verified with the registry CA `ca_pem` (host.caFile). Throws
// std::invalid_argument when no master is known.
nlohmann::json describe_containerd(const settings& s, const std::string& ca_pem);

}  // namespace registryd::direct
