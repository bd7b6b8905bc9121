// From a validated config to a running mode plugin: which file, which settings, checked.
#pragma once

#include <registryd/config/host_settings.hpp>
#include <registryd/config/module_config.hpp>
#include <registryd/plugin_host/plugin_instance.hpp>
#include <registryd/util/result.hpp>

#include <spdlog/logger.h>

#include <filesystem>
#include <memory>
#include <optional>
#include <string>

namespace registryd::daemon {

// Where plugins live when nothing says otherwise: <dir of the executable>/../<libdir>/registryd/
// plugins, which is right both installed (P/bin, P/lib/registryd/plugins) and in the build tree.
std::filesystem::path default_plugin_dir();

// The host settings' plugin dir, or the default when it is empty.
std::filesystem::path plugin_dir(const config::host_settings& host);

// The file that implements a mode: <plugin dir>/<mode in lower case>.so.
std::filesystem::path mode_plugin_file(const std::filesystem::path& dir, config::registry_mode mode);

// Loads the plugin (the mode's own, or `override_file` when given), checks the settings
// document with it, and creates an instance (not started). Every failure names the file.
util::result<std::shared_ptr<plugin_host::plugin_instance>> create_mode(
    const config::module_config& config, const config::host_settings& host,
    const std::optional<std::filesystem::path>& override_file,
    std::shared_ptr<spdlog::logger> logger);

// The packages proxy: <plugin dir>/packages-proxy.so with `settings` (packages_document),
// checked and created (not started). Every failure names the file.
util::result<std::shared_ptr<plugin_host::plugin_instance>> create_packages_proxy(
    const std::string& settings, const config::host_settings& host, std::shared_ptr<spdlog::logger> logger);

}  // namespace registryd::daemon
