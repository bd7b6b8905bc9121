#include <registryd/plugin_host/plugin_library.hpp>

#include <exception>

#include <cstddef>
#include <algorithm>
#include <cstring>
#include <utility>

namespace registryd::plugin_host {
namespace {

util::error refusal(const std::filesystem::path& path, const std::string& why) {
  return util::error{"cannot load plugin " + path.string() + ": " + why};
}

std::string abi_text(std::uint32_t major, std::uint32_t minor) {
  return std::to_string(major) + "." + std::to_string(minor);
}

// The fields every plugin must set, with their names for the message.
struct required_field {
  std::size_t offset;
  const char* name;
};
constexpr required_field required_fields[] = {
    {offsetof(registryd_plugin_api, create), "create"},
    {offsetof(registryd_plugin_api, destroy), "destroy"},
    {offsetof(registryd_plugin_api, handle), "handle"},
};

}  // namespace

std::string host_abi_version() {
  return abi_text(REGISTRYD_PLUGIN_ABI_MAJOR, REGISTRYD_PLUGIN_ABI_MINOR);
}

plugin_library::plugin_library(boost::dll::shared_library lib, const registryd_plugin_api& api,
                               std::filesystem::path path)
    : lib_(std::move(lib)), api_(api), path_(std::move(path)) {}

util::result<std::shared_ptr<const plugin_library>> plugin_library::load(
    const std::filesystem::path& path) {
  if (!std::filesystem::exists(path)) return refusal(path, "no such file");

  boost::dll::shared_library lib;
  try {
    lib.load(path, boost::dll::load_mode::rtld_now | boost::dll::load_mode::rtld_local);
  } catch (const std::exception& e) {  // boost::dll::fs::system_error, std:: or boost:: by config
    return refusal(path, std::string("not a loadable shared object (") + e.what() + ")");
  }
  if (!lib.has(REGISTRYD_PLUGIN_ENTRY_SYMBOL)) {
    return refusal(path, std::string("not a registryd plugin: it does not export ") +
                             REGISTRYD_PLUGIN_ENTRY_SYMBOL);
  }
  const auto entry = lib.get<const registryd_plugin_api*()>(REGISTRYD_PLUGIN_ENTRY_SYMBOL);
  const registryd_plugin_api* api = entry();
  if (api == nullptr) return refusal(path, "its entry point returned no function table");

  const std::string theirs = abi_text(api->abi_major, api->abi_minor);
  if (api->abi_major != REGISTRYD_PLUGIN_ABI_MAJOR) {
    return refusal(path, "plugin ABI " + theirs + " is incompatible with this registryd's ABI " +
                             host_abi_version() +
                             " (the major versions differ); rebuild the plugin against the "
                             "registryd " +
                             std::to_string(REGISTRYD_PLUGIN_ABI_MAJOR) + ".x SDK");
  }
  if (api->abi_minor > REGISTRYD_PLUGIN_ABI_MINOR) {
    return refusal(path, "plugin ABI " + theirs + " is newer than this registryd's ABI " +
                             host_abi_version() +
                             "; upgrade registryd or rebuild the plugin against this SDK");
  }
  if (api->struct_size < offsetof(registryd_plugin_api, validate_settings)) {
    return refusal(path, "its function table is too short (" + std::to_string(api->struct_size) +
                             " bytes) to hold the required functions");
  }
  // Copy what the plugin knows of the table into a zeroed table of the host's size.
  registryd_plugin_api table{};
  std::memcpy(&table, api, std::min<std::size_t>(api->struct_size, sizeof(table)));
  for (const auto& f : required_fields) {
    const void* value = nullptr;
    std::memcpy(&value, reinterpret_cast<const char*>(&table) + f.offset, sizeof(value));
    if (value == nullptr) {
      return refusal(path, std::string("the required function '") + f.name + "' is missing");
    }
  }
  if (table.name.data == nullptr || table.name.size == 0) {
    return refusal(path, "it does not name its mode");
  }
  return std::shared_ptr<const plugin_library>(
      new plugin_library(std::move(lib), table, path));
}

std::string plugin_library::describe() const {
  return path_.string() + " (" + std::string(name()) + " " + std::string(version()) + ")";
}

}  // namespace registryd::plugin_host
