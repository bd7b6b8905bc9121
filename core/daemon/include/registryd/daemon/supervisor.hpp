// The long-running host (`registryd serve`): brings the front door up with the host's
// certificates and users, runs the configured mode's plugin, and keeps all three current while
// it serves. A bad config, a forbidden switch or a failing plugin never replaces what runs.
#pragma once

#include <registryd/config/host_settings.hpp>
#include <registryd/config/module_config.hpp>
#include <registryd/frontdoor/front_door.hpp>
#include <registryd/plugin_host/plugin_instance.hpp>
#include <registryd/util/result.hpp>

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>
#include <spdlog/logger.h>

#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>

namespace registryd::auth {
class authenticator;
}
namespace registryd::cluster {
class assignment_watch;
class master_link;
class store;
}

namespace registryd::daemon {

struct supervisor_options {
  config::host_settings host;
  // Serve with this plugin file instead of the mode's own (plugin development, tests).
  std::optional<std::filesystem::path> plugin_override;
  bool plain_http = false;  // no TLS on the front door: benchmarks and experiments only
  std::optional<std::size_t> threads;  // worker threads; none: host.http.worker_threads
  // Re-reads the host settings on every reconcile pass; only their packages_* part is applied
  // at runtime (the packages proxy restarts alone). Unset: read once, at start.
  std::function<util::result<config::packages_settings>()> reload_packages;
};

class supervisor {
 public:
  supervisor(supervisor_options options, std::shared_ptr<spdlog::logger> logger);
  ~supervisor();
  supervisor(const supervisor&) = delete;
  supervisor& operator=(const supervisor&) = delete;

  // Certificates, users, mode, then the listener. Fails only when the host cannot serve at
  // all (unusable state dir, a corrupt state file, the address taken, no mode to start and
  // none recorded); a mode that fails to start leaves the front door answering 503 with why.
  util::status start();
  // One pass over everything that may have changed: certificates (re-issued before they
  // expire, or when the wanted names change), the users file, the ModuleConfig. A config that
  // was refused is not tried again until it changes, unless `retry_refused` (SIGHUP): an
  // operator who fixed what made a plugin fail can ask for another try.
  void reconcile(bool retry_refused = false);
  void stop();

 private:
  util::status refresh_certificates();
  // A cluster member (host.cluster set): takes the cluster's CA, token signer and users
  // (creating them when this master is the first), registers itself, and from then on
  // mirrors the cluster's users into the users file it serves (docs/cluster.md).
  util::status join_cluster();
  // A cluster member: a CA this master renewed goes to the store, and one another master
  // renewed comes from it (cluster::sync_pki); then the certificates are refreshed.
  void sync_cluster_pki();
  // In a cluster, the ModuleConfig is the one `registryd apply` stored, once there is one
  // (until then the host's own --config bootstraps the master).
  void use_cluster_config();
  // The mode served, the certificate's expiry and the switching state, to the cluster.
  void publish_to_cluster();
  // Writes <state_dir>/serve-status.json when it changed: pid, wanted and applied mode, and
  // why they differ (docs/operations.md, "Status").
  void write_serve_status();
  util::status refresh_users();
  std::string last_pki_sync_error_;  // logged once, not on every pass
  // Applies the ModuleConfig if it changed and the switch is allowed. `starting`: nothing runs
  // yet, so a refusal falls back to the mode recorded in the state.
  // The host settings the mode plugin is given: opts_.host, with a cluster member's masters
  // and replica peers taken from the store.
  config::host_settings plugin_host_settings() const;
  util::status refresh_mode(bool starting);
  // Records `config` as this node's mode in state.json.
  util::status save_switched_state(const config::module_config& config) const;
  // Starts `config`'s mode with `host` (what `settings`, the document compared against the
  // running one, was made from) and makes it serve.
  util::status activate(const config::module_config& config, const config::host_settings& host,
                        const std::string& settings, bool persist);
  // The packages proxy beside the mode in force (docs/packages-proxy.md): (re)started when
  // its document changes (the mode's upstream, the packages_* settings); its listener is
  // bound on the first pass that can. Its failures are logged once and retried on the next
  // pass; they never touch the mode.
  void refresh_packages();
  util::status refresh_static_tokens();
  // Applies changed packages_* host settings: a new listen address rebinds, anything else
  // gives the packages proxy a new document (and so a new instance).
  void reload_packages_settings();

  supervisor_options opts_;
  std::shared_ptr<spdlog::logger> logger_;
  std::shared_ptr<prometheus::Registry> metrics_;
  prometheus::Family<prometheus::Gauge>& mode_info_;
  prometheus::Gauge& certificate_expiry_;
  prometheus::Family<prometheus::Counter>& refusals_;
  prometheus::Gauge& config_applied_;
  std::unique_ptr<frontdoor::front_door> front_door_;
  std::shared_ptr<auth::authenticator> authenticator_;
  std::optional<std::filesystem::file_time_type> users_mtime_;
  std::shared_ptr<cluster::store> cluster_store_;
  std::unique_ptr<cluster::master_link> cluster_link_;
  // Wakes the nodes' parked long polls when their assignment changes.
  std::unique_ptr<cluster::assignment_watch> assignment_watch_;
  std::int64_t certificate_not_after_ = 0;
  std::filesystem::path cluster_config_file_;

  std::string active_settings_;   // the settings document the running mode was created with
  std::string last_refused_;      // the settings document last refused, to log a refusal once
  std::string active_mode_name_;
  std::optional<config::module_config> active_config_;
  // What `registryd status` reads from <state_dir>/serve-status.json (write_serve_status).
  std::string wanted_mode_;     // the mode the loaded ModuleConfig asks for; "" when invalid
  std::string not_applied_why_; // why the wanted config does not serve; "" when it does
  std::string serve_status_written_;
  std::int64_t started_at_ = 0;

  std::shared_ptr<prometheus::Registry> packages_metrics_;
  std::unique_ptr<frontdoor::front_door> packages_door_;
  std::string packages_settings_;  // the document the running packages proxy got
  std::string packages_failure_;   // the last failure logged, to log each once
  std::optional<std::filesystem::file_time_type> tokens_mtime_;
};

}  // namespace registryd::daemon
