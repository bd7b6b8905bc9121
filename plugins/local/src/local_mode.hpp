// The Local mode: a complete OCI registry (distribution spec v1.1) on registryd's own storage
// under host.dataDir. Nodes reach it through the node balancer on 127.0.0.1:5001, which the
// containerd description names as the mirror of the fixed address.
#pragma once

#include "registry_api.hpp"
#include "replica_sync.hpp"
#include "settings.hpp"

#include <registryd/oci/storage/blob_store.hpp>
#include <registryd/oci/storage/gc.hpp>
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

// What the online garbage collection has done since start (for /metrics).
struct gc_stats {
  std::uint64_t runs = 0;            // runs that finished (skipped ones not counted)
  std::uint64_t skipped = 0;         // runs skipped: another run (`registryd gc`) held the lock
  std::uint64_t blobs_deleted = 0;
  std::uint64_t bytes_deleted = 0;   // blobs, uploads and temporaries
  std::uint64_t errors = 0;
  double last_run_at = 0;            // unix seconds the last run ended; 0 before the first
  double last_duration = 0;          // seconds
};

class local_mode final : public sdk::mode_plugin {
 public:
  local_mode(const sdk::host& host, const nlohmann::json& settings_doc);
  ~local_mode() override;

  // Exported as validate_settings.
  static void validate(const nlohmann::json& settings_doc) { (void)parse_settings(settings_doc); }

  // Opens the storage under host.dataDir (creating it) and starts the statistics scan and,
  // unless host.gcIntervalSeconds is 0, the online garbage collection.
  void start() override;
  void stop() override;
  std::optional<nlohmann::json> containerd_config() const override;
  void handle(const sdk::request& req, sdk::response& res) override;
  std::string health() const override;
  void metrics(std::string& out) const override;

  const settings& config() const noexcept { return settings_; }
  // Scans the storage now (the background thread does it every minute).
  void refresh_stats();
  // Runs the garbage collection now (the GC thread does it every host.gcIntervalSeconds) and
  // returns its report; logs its summary and errors.
  oci::storage::gc_report collect_garbage();

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
  gc_stats gc_stats_;
  std::mutex stop_mutex_;
  std::condition_variable stop_cv_;
  std::atomic<bool> stopping_{false};  // written under stop_mutex_, polled by a GC run
  std::thread scanner_;
  std::thread collector_;

  // Runs `work` every `interval` until stop(); the first run comes after `first`.
  std::thread every(std::chrono::seconds first, std::chrono::seconds interval, void (local_mode::*work)());
  void scheduled_gc() { (void)collect_garbage(); }
};

}  // namespace registryd::local
