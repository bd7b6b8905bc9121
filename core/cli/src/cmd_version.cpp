// registryd version: the host's version and ABI, and every plugin in the plugin dir with its
// own version, or the reason it would be refused.
#include "commands.hpp"
#include "host_flags.hpp"

#include <registryd/daemon/mode_loader.hpp>
#include <registryd/plugin_host/plugin_library.hpp>

#include <algorithm>
#include <iostream>
#include <memory>
#include <vector>

namespace registryd::cli {

command add_version(CLI::App& app) {
  auto* sub = app.add_subcommand("version", "Print the version, the plugin ABI, and the plugins found");
  auto plugin_dir = std::make_shared<std::string>();
  sub->add_option("--plugin-dir", *plugin_dir, "Where the mode plugins are (next to the binary)");
  return [plugin_dir] {
    std::cout << "registryd " << REGISTRYD_VERSION << " (plugin ABI "
              << plugin_host::host_abi_version() << ")\n";
    const std::filesystem::path dir =
        plugin_dir->empty() ? daemon::default_plugin_dir() : std::filesystem::path(*plugin_dir);
    std::cout << "plugins in " << dir.string() << ":\n";
    std::error_code ec;
    std::vector<std::filesystem::path> files;
    for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
      if (e.path().extension() == ".so") files.push_back(e.path());
    }
    if (ec) {
      std::cout << "  (cannot read: " << ec.message() << ")\n";
      return exit_ok;
    }
    std::sort(files.begin(), files.end());
    for (const auto& f : files) {
      const auto lib = plugin_host::plugin_library::load(f);
      if (lib) {
        std::cout << "  " << f.filename().string() << ": " << (*lib)->name() << " "
                  << (*lib)->version() << " (ABI " << (*lib)->api().abi_major << "."
                  << (*lib)->api().abi_minor << ")\n";
      } else {
        std::cout << "  " << f.filename().string() << ": refused: " << lib.error_message() << "\n";
      }
    }
    return exit_ok;
  };
}

}  // namespace registryd::cli
