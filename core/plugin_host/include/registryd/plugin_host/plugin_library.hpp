// One loaded plugin shared object, checked against the host's ABI.
#pragma once

#include <registryd/plugin_abi.h>
#include <registryd/util/result.hpp>

#include <boost/dll/shared_library.hpp>

#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

namespace registryd::plugin_host {

// Owns the loaded library. Everything that can call into the plugin (instances, streams it
// handed out) holds a shared_ptr to this object, so the code stays mapped until the last of
// them is gone. Immutable after load; thread-safe.
class plugin_library {
 public:
  // Loads `path` and validates its table. Every refusal names the file and the reason:
  // not loadable, no entry point, ABI major differs, ABI minor newer than the host's, a
  // required function missing, a malformed table.
  static util::result<std::shared_ptr<const plugin_library>> load(
      const std::filesystem::path& path);

  // The plugin's table as the host knows it: fields past the plugin's struct_size (an older
  // plugin) read as NULL, which means "not offered" for every optional function.
  const registryd_plugin_api& api() const noexcept { return api_; }
  const std::filesystem::path& path() const noexcept { return path_; }
  std::string_view name() const noexcept { return {api_.name.data, api_.name.size}; }
  std::string_view version() const noexcept { return {api_.version.data, api_.version.size}; }

  // "<path> (<name> <version>)", for messages.
  std::string describe() const;

 private:
  plugin_library(boost::dll::shared_library lib, const registryd_plugin_api& api,
                 std::filesystem::path path);

  boost::dll::shared_library lib_;  // first member: unloaded last
  registryd_plugin_api api_;
  std::filesystem::path path_;
};

// The host's own ABI version as text, "1.0".
std::string host_abi_version();

}  // namespace registryd::plugin_host
