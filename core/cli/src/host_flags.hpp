// The host settings flags every command shares. Each flag is named after its key in the host
// settings YAML (docs/configuration.md) and overrides it, so a flag and a file are validated by
// the same rules and an error names the same key.
#pragma once

#include <registryd/config/host_settings.hpp>
#include <registryd/config/module_config.hpp>

#include <CLI/CLI.hpp>

#include <optional>
#include <string>
#include <vector>

namespace registryd::cli {

// Which host settings flags a command shows: only those whose settings it reads. Every command
// that reads host settings takes --host-config and --state-dir; the rest of a file it is given
// is read and checked whole whatever the flags shown.
enum flag_groups : unsigned {
  module_flags = 1,      // --config, --install-images-repo (the ModuleConfig and its legacy default)
  storage_flags = 2,     // --data-dir, --plugin-dir
  serving_flags = 4,     // --listen-address, --node-ip, --masters, --extra-server-names,
                         // --users-file, --log-format, --config-reload-interval-seconds,
                         // --packages-listen-address
  containerd_flags = 8,  // --containerd-dir
  cluster_flags = 16,    // --cluster-store and its TLS files
  all_flags = 31,
};

class host_flags {
 public:
  // Registers --host-config, --state-dir and the flags of `groups` on `app`.
  void add_to(CLI::App& app, unsigned groups);

  // The settings: the --host-config file (or the defaults) with the flags laid over it.
  // Errors are printed by the caller; each names the key (flag) and the rule.
  config::checked<config::host_settings> load() const;

  // load(), or nullopt after printing every error (with its key) to stderr.
  std::optional<config::host_settings> load_or_report() const;
  // The ModuleConfig the settings name, or nullopt after printing every error (with its field
  // path) to stderr.
  static std::optional<config::module_config> module_config_or_report(
      const config::host_settings& host);

  // When --config (the ModuleConfig) is required, a command says so itself.
  bool has_module_config() const { return !module_config_.empty(); }

 private:
  std::string host_config_;
  std::string module_config_;
  std::string listen_address_, data_dir_, state_dir_, plugin_dir_, node_ip_, users_file_;
  std::string install_images_repo_, log_format_, containerd_dir_, packages_listen_address_;
  std::string cluster_ca_file_, cluster_cert_file_, cluster_key_file_;
  std::vector<std::string> masters_, server_names_, cluster_store_;
  std::string reload_interval_;
};

}  // namespace registryd::cli
