#include "host_flags.hpp"

#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <iostream>

namespace registryd::cli {

void host_flags::add_to(CLI::App& app, unsigned groups) {
  app.add_option("--host-config", host_config_,
                 "Host settings YAML (docs/configuration.md); flags below override its keys")
      ->check(CLI::ExistingFile);
  app.add_option("--state-dir", state_dir_,
                 "Where the host keeps its state, CA and certificates (/var/lib/registryd)");
  if (groups & module_flags) {
    app.add_option("--config,--module-config", module_config_,
                   "The operator's ModuleConfig YAML (spec.settings.registry picks the mode); "
                   "none: Unmanaged mode with the install-time registry");
    app.add_option("--install-images-repo", install_images_repo_,
                   "The install-time registry the legacy Unmanaged mode points at "
                   "(registry.deckhouse.io/deckhouse/ce)");
  }
  if (groups & storage_flags) {
    app.add_option("--data-dir", data_dir_, "Where modes keep images (/opt/deckhouse/registry)");
    app.add_option("--plugin-dir", plugin_dir_, "Where the mode plugins are (next to the binary)");
  }
  if (groups & serving_flags) {
    app.add_option("--listen-address", listen_address_, "HTTPS address, host:port (127.0.0.1:5001)");
    app.add_option("--node-ip", node_ip_, "This node's IP, a SAN of the serving certificate (127.0.0.1)");
    app.add_option("--masters", masters_, "The masters' IPs (repeat the flag; default: the node IP)");
    app.add_option("--extra-server-names", server_names_,
                   "More names or IPs for the serving certificate (repeat the flag; none)");
    app.add_option("--users-file", users_file_,
                   "Users YAML with bcrypt hashes (docs/security.md); none: authentication off");
    app.add_option("--log-format", log_format_, "text or json (text)");
    app.add_option("--config-reload-interval-seconds", reload_interval_,
                   "How often to look for new configs, users and certificates: seconds or a "
                   "duration like 1m (5)");
    app.add_option("--packages-listen-address", packages_listen_address_,
                   "The packages proxy's HTTPS address, host:port, or off (127.0.0.1:4219)");
  }
  if (groups & containerd_flags) {
    app.add_option("--containerd-dir", containerd_dir_, "containerd's config directory (/etc/containerd)");
  }
  if (groups & cluster_flags) {
    app.add_option("--cluster-store", cluster_store_,
                   "A master's etcd client URL (repeat the flag); none: a single host (docs/cluster.md)");
    app.add_option("--cluster-store-ca-file", cluster_ca_file_, "The CA that etcd's certificates chain to");
    app.add_option("--cluster-store-cert-file", cluster_cert_file_, "Client certificate for etcd");
    app.add_option("--cluster-store-key-file", cluster_key_file_, "Its private key");
  }
}

config::checked<config::host_settings> host_flags::load() const {
  YAML::Node doc;
  std::filesystem::path base = std::filesystem::current_path();
  if (!host_config_.empty()) {
    // Parse the file alone first, so its own errors name it and its lines.
    auto from_file = config::load_host_settings(std::filesystem::path(host_config_));
    if (!from_file) return from_file.errors();
    doc = YAML::LoadFile(host_config_);
    base = std::filesystem::absolute(host_config_).parent_path();
  }
  if (!doc.IsMap()) doc = YAML::Node(YAML::NodeType::Map);
  auto set = [&](const char* key, const std::string& value) {
    if (!value.empty()) doc[key] = value;
  };
  // A flag's relative path is relative to the working directory, a file's to the file: made
  // absolute here, a flag's path is right whatever base the merged document is resolved on.
  auto set_path = [&](const char* key, const std::string& value) {
    if (!value.empty()) doc[key] = std::filesystem::absolute(value).string();
  };
  set("listen_address", listen_address_);
  set_path("data_dir", data_dir_);
  set_path("state_dir", state_dir_);
  set_path("plugin_dir", plugin_dir_);
  set("node_ip", node_ip_);
  set_path("users_file", users_file_);
  set_path("module_config", module_config_);
  set("install_images_repo", install_images_repo_);
  set("log_format", log_format_);
  set_path("containerd_dir", containerd_dir_);
  set("packages_listen_address", packages_listen_address_);
  set_path("cluster_store_ca_file", cluster_ca_file_);
  set_path("cluster_store_cert_file", cluster_cert_file_);
  set_path("cluster_store_key_file", cluster_key_file_);
  if (!cluster_store_.empty()) doc["cluster_store"] = cluster_store_;
  if (!masters_.empty()) doc["masters"] = masters_;
  if (!server_names_.empty()) doc["extra_server_names"] = server_names_;
  set("config_reload_interval_seconds", reload_interval_);
  YAML::Emitter out;
  out << doc;
  return config::parse_host_settings(out.c_str(), base, host_config_.empty() ? "flags" : host_config_);
}

std::optional<config::host_settings> host_flags::load_or_report() const {
  auto host = load();
  if (host) return std::move(host).value();
  std::cerr << "registryd: invalid host settings:\n" << host.error_message() << "\n";
  return std::nullopt;
}

std::optional<config::module_config> host_flags::module_config_or_report(
    const config::host_settings& host) {
  auto config = config::load_module_config(host);
  if (config) return std::move(config).value();
  std::cerr << "registryd: invalid ModuleConfig:\n" << config.error_message() << "\n";
  return std::nullopt;
}

}  // namespace registryd::cli
