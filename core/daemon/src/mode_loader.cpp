#include <registryd/daemon/mode_loader.hpp>

#include <registryd/config/settings_document.hpp>

#include <boost/dll/runtime_symbol_info.hpp>

#include <algorithm>
#include <cctype>

#ifndef REGISTRYD_PLUGIN_INSTALL_DIR
#error "REGISTRYD_PLUGIN_INSTALL_DIR must be defined by the build"
#endif

namespace registryd::daemon {

std::filesystem::path default_plugin_dir() {
  const std::filesystem::path exe = boost::dll::program_location();
  return (exe.parent_path().parent_path() / REGISTRYD_PLUGIN_INSTALL_DIR).lexically_normal();
}

std::filesystem::path plugin_dir(const config::host_settings& host) {
  return host.plugin_dir.empty() ? default_plugin_dir() : host.plugin_dir;
}

std::filesystem::path mode_plugin_file(const std::filesystem::path& dir,
                                       config::registry_mode mode) {
  std::string name(config::to_string(mode));
  std::transform(name.begin(), name.end(), name.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return dir / (name + ".so");
}

namespace {

util::result<std::shared_ptr<plugin_host::plugin_instance>> create_instance(const std::filesystem::path& file,
                                                                          const std::string& settings,
                                                                          std::shared_ptr<spdlog::logger> logger) {
  auto library = plugin_host::plugin_library::load(file);
  if (!library) return util::error{library.error_message()};
  if (auto checked = plugin_host::plugin_instance::validate_settings(**library, settings); !checked) {
    return util::error{checked.error_message()};
  }
  return plugin_host::plugin_instance::create(std::move(*library), settings, std::move(logger));
}

}  // namespace

util::result<std::shared_ptr<plugin_host::plugin_instance>> create_mode(
    const config::module_config& config, const config::host_settings& host,
    const std::optional<std::filesystem::path>& override_file,
    std::shared_ptr<spdlog::logger> logger) {
  const auto file = override_file.value_or(mode_plugin_file(plugin_dir(host), config.mode));
  return create_instance(file, config::settings_document(config, host).dump(), std::move(logger));
}

util::result<std::shared_ptr<plugin_host::plugin_instance>> create_packages_proxy(
    const std::string& settings, const config::host_settings& host, std::shared_ptr<spdlog::logger> logger) {
  return create_instance(plugin_dir(host) / "packages-proxy.so", settings, std::move(logger));
}

}  // namespace registryd::daemon
