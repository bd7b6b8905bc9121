// The Local mode's replica sync (docs/replica-sync.md): serves this replica's state to its
// peers (GET /v2/_catalog?replica-state, the catalog's access) and runs the SDK's sync engine
// against the peers the host names in host.replicaPeers.
#pragma once

#include "replica/local_replica.hpp"
#include "replica/sync_engine.hpp"
#include <registryd/oci/storage/repository_store.hpp>
#include <registryd/sdk/plugin.hpp>

#include <nlohmann/json.hpp>

#include <chrono>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace registryd::local {

struct replica_settings {
  std::vector<std::string> peers;                          // host.replicaPeers
  std::filesystem::path ca_file;                           // host.replicaCaFile (else host.caFile)
  std::optional<std::filesystem::path> credentials_file;  // host.replicaCredentialsFile
  std::chrono::seconds interval{2};                        // host.replicaSyncIntervalSeconds
};

// Reads the host.replica* keys; absent keys leave the defaults (no peers). Throws
// std::invalid_argument naming the field.
replica_settings parse_replica_settings(const nlohmann::json& doc);

// Thread-safety: start/stop from the plugin's lifecycle calls; handle and metrics from any
// thread once started.
class replica_sync {
 public:
  replica_sync(const sdk::host& host, replica_settings settings);
  ~replica_sync();

  // Opens the journal beside the images and, when there are peers, starts syncing. `repos`
  // must stay alive until stop().
  void start(const oci::storage::repository_store& repos);
  void stop();

  // Answers the replica state request (true) or leaves the request alone (false).
  bool handle(const sdk::request& req, sdk::response& res);
  void metrics(std::string& out) const;

  const replica_settings& settings() const noexcept { return settings_; }

 private:
  sdk::host host_;
  replica_settings settings_;
  std::unique_ptr<replica::local_replica> local_;
  std::unique_ptr<replica::sync_engine> engine_;
};

}  // namespace registryd::local
