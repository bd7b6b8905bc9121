// The Proxy mode: a pull-through cache of the upstream imagesRepo on every master, served at
// the fixed address through the node balancer (docs/proxy-mode.md). This class wires the
// pieces together and runs the evictor thread; pull_through answers the requests.
#pragma once

#include "counters.hpp"
#include "evictor.hpp"
#include "pull_through.hpp"
#include "settings.hpp"
#include "upstream_health.hpp"

#include <registryd/oci/cache/blob_fill.hpp>
#include <registryd/oci/cache/eviction.hpp>
#include <registryd/oci/client/registry_client.hpp>
#include <registryd/oci/storage/blob_store.hpp>
#include <registryd/oci/storage/repository_store.hpp>
#include <registryd/sdk/plugin.hpp>

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

namespace registryd::proxy {

// How often the evictor runs a pass (and saves the access times), besides once at start and
// whenever a fill takes the cache past its size cap.
inline constexpr std::chrono::seconds eviction_interval{60};

class proxy_mode final : public sdk::mode_plugin {
 public:
  // The plugin's constructor: settings from the document, then the environment overrides.
  proxy_mode(const sdk::host& host, const nlohmann::json& settings_doc);
  // For tests: `clock` drives ttl, access times and tag revalidation; the environment is not
  // read; `evictor_thread` false leaves eviction to evict_now().
  proxy_mode(const sdk::host& host, const nlohmann::json& settings_doc, clock_fn clock, bool evictor_thread);
  ~proxy_mode() override;

  // Exported as validate_settings.
  static void validate(const nlohmann::json& settings_doc) {
    auto s = parse_settings(settings_doc);
    apply_environment(s);
  }

  // Opens the cache under <dataDir>/proxy (creating it), loads the access times and starts
  // the evictor (its first pass runs at once, on its thread).
  void start() override;
  // Stops the evictor, cancels fills in flight and saves the access times.
  void stop() override;
  std::optional<nlohmann::json> containerd_config() const override;
  void handle(const sdk::request& req, sdk::response& res) override;
  std::string health() const override;
  void metrics(std::string& out) const override;

  const settings& config() const noexcept { return settings_; }
  const counters& stats() const noexcept { return counters_; }
  // One eviction pass now, on the calling thread (after start()).
  eviction_report evict_now();
  std::size_t fills_in_flight() const { return fills_ ? fills_->in_flight() : 0; }

 private:
  proxy_mode(const sdk::host& host, settings s, clock_fn clock, bool evictor_thread);
  void wake_evictor();

  sdk::host host_;
  settings settings_;
  clock_fn clock_;
  bool evictor_thread_enabled_;
  counters counters_;
  std::unique_ptr<oci::client::registry_client> upstream_;
  std::unique_ptr<upstream_health> health_;

  std::unique_ptr<oci::storage::blob_store> blobs_;
  std::unique_ptr<oci::storage::repository_store> repos_;
  std::unique_ptr<oci::cache::access_times> access_;
  std::unique_ptr<oci::cache::blob_fills> fills_;
  std::unique_ptr<pull_through> api_;
  std::unique_ptr<evictor> evictor_;

  std::mutex evictor_mutex_;  // serializes passes
  std::mutex wake_mutex_;
  std::condition_variable wake_cv_;
  bool stopping_ = false;
  bool wake_ = false;
  std::thread evictor_thread_;
};

}  // namespace registryd::proxy
