// The Unmanaged mode: registryd serves no images. Nodes pull from the external registry
// directly, configured by a hosts.toml for that registry's host; the fixed address answers
// every request with an error that says so.
#pragma once

#include "settings.hpp"

#include <registryd/sdk/plugin.hpp>

#include <optional>
#include <string>

namespace registryd::unmanaged {

class unmanaged_mode final : public sdk::mode_plugin {
 public:
  unmanaged_mode(const sdk::host& host, const nlohmann::json& settings_doc);

  // Exported as validate_settings.
  static void validate(const nlohmann::json& settings_doc) { (void)parse_settings(settings_doc); }

  std::optional<nlohmann::json> containerd_config() const override;
  void handle(const sdk::request& req, sdk::response& res) override;
  std::string health() const override { return {}; }
  void metrics(std::string& out) const override;

  const settings& config() const noexcept { return settings_; }

 private:
  settings settings_;
};

// The description for `s` (schema: docs/plugin-authors.md), or nullopt for the legacy variant,
// whose node configuration stays what the installation made.
std::optional<nlohmann::json> describe_containerd(const settings& s);

}  // namespace registryd::unmanaged
