// The Local mode: a complete OCI registry (distribution spec v1.1) on registryd's own storage
// under host.dataDir. Nodes reach it through the node balancer on 127.0.0.1:5001, which the
// containerd description names as the mirror of the fixed address.
#pragma once

#include "registry_api.hpp"
#include "replica_sync.hpp"
#include "settings.hpp"

#include <registryd/oci/storage/blob_store.hpp>
#include <registryd/oci/storage/repository_store.hpp>
#include <registryd/oci/storage/upload_store.hpp>
#include <registryd/sdk/plugin.hpp>

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

namespace registryd::local {

// What the storage holds, as the last background scan counted it (for /metrics).
struct storage_stats {
  std::uint64_t blobs = 0;
  std::uint64_t blob_bytes = 0;
  std::uint64_t repositories = 0;
  std::uint64_t uploads = 0;
  std::uint64_t upload_bytes = 0;
  double scanned_at = 0;  // unix seconds; 0 before the first scan
};

class local_mode final : public sdk::mode_plugin {
 public:
  local_mode(const sdk::host& host, const nlohmann::json& settings_doc);
  ~local_mode() override;

  // Exported as validate_settings.
  static void validate(const nlohmann::json& settings_doc) { (void)parse_settings(settings_doc); }

  // Opens the storage under host.dataDir (creating it) and starts the statistics scan.
  void start() override;
  void stop() override;
  std::optional<nlohmann::json> containerd_config() const override;
  void handle(const sdk::request& req, sdk::response& res) override;
  std::string health() const override;
  void metrics(std::string& out) const override;

  const settings& config() const noexcept { return settings_; }
  // Scans the storage now (the background thread does it every minute).
  void refresh_stats();

 private:
  sdk::host host_;
  settings settings_;
  std::unique_ptr<oci::storage::blob_store> blobs_;
  std::unique_ptr<oci::storage::repository_store> repos_;
  std::unique_ptr<oci::storage::upload_store> uploads_;
  std::unique_ptr<registry_api> api_;
  std::unique_ptr<replica_sync> replica_;  // docs/replica-sync.md

  mutable std::mutex stats_mutex_;
  storage_stats stats_;
  std::mutex stop_mutex_;
  std::condition_variable stop_cv_;
  bool stopping_ = false;
  std::thread scanner_;
};

// The description for `s` (schema: docs/plugin-authors.md): the fixed host mirrored by the
// node balancer over HTTPS, trusting `ca_pem` when given.
nlohmann::json describe_containerd(const settings& s, const std::optional<std::string>& ca_pem);

}  // namespace registryd::local
