// The operator's registry settings: the `deckhouse` ModuleConfig, `spec.settings.registry`
// (docs/configuration.md). Parsing validates everything the platform's OpenAPI schema does,
// applies the schema's defaults first (the way the Kubernetes API server defaults before it
// validates), and resolves a `license` into credentials, so the rest of the host only ever
// sees a complete, valid module_config.
#pragma once

#include <registryd/config/errors.hpp>
#include <registryd/util/result.hpp>

#include <nlohmann/json.hpp>

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

namespace registryd::config {

struct host_settings;

inline constexpr std::string_view module_config_api_version = "deckhouse.io/v1alpha1";
inline constexpr std::string_view module_config_kind = "ModuleConfig";
inline constexpr std::string_view module_config_name = "deckhouse";
inline constexpr int module_config_settings_version = 1;

inline constexpr std::string_view default_images_repo = "registry.deckhouse.io/deckhouse/ce";
// The username a `license` key resolves to.
inline constexpr std::string_view license_username = "license-token";
inline constexpr std::string_view default_proxy_ttl = "168h";
inline constexpr std::chrono::seconds minimum_proxy_ttl{300};

enum class registry_mode { unmanaged, direct, proxy, local };
enum class url_scheme { http, https };
// `Default` checks every required image digest, `Relax` only the platform's own image by tag.
enum class check_mode { standard, relax };

// The spellings of the ModuleConfig: "Unmanaged", "HTTPS", "Default", ...
std::string_view to_string(registry_mode mode);
std::string_view to_string(url_scheme scheme);
std::string_view to_string(check_mode mode);

struct registry_credentials {
  std::string username;
  std::string password;
  // Given as `license: <key>`: username is license_username and password the key.
  bool from_license = false;

  friend bool operator==(const registry_credentials&, const registry_credentials&) = default;
};

struct proxy_ttl {
  std::string text;  // as written, e.g. "72h" (canonical JSON and plugins keep the spelling)
  std::chrono::seconds duration{};

  friend bool operator==(const proxy_ttl&, const proxy_ttl&) = default;
};

// A `direct`, `proxy` or `unmanaged` section with every default applied.
struct registry_section {
  std::string images_repo{default_images_repo};
  url_scheme scheme = url_scheme::https;
  std::optional<registry_credentials> credentials;
  std::optional<std::string> ca;  // PEM, one or more certificates, checked with OpenSSL
  check_mode check = check_mode::standard;
  std::optional<proxy_ttl> ttl;  // set in Proxy mode (default 168h), never in another

  friend bool operator==(const registry_section&, const registry_section&) = default;
};

struct module_config {
  registry_mode mode = registry_mode::unmanaged;
  // The mode's own section: always set in Direct and Proxy, set in Unmanaged when the operator
  // wrote an `unmanaged` section, never set in Local.
  std::optional<registry_section> section;

  // Unmanaged without a section: the non-configurable variant whose registry is the cluster's
  // install-time imagesRepo (host_settings::install_images_repo).
  bool legacy() const noexcept { return mode == registry_mode::unmanaged && !section; }

  friend bool operator==(const module_config&, const module_config&) = default;
};

// What a missing ModuleConfig means: Unmanaged, legacy.
module_config default_module_config();

// Parses and validates a ModuleConfig document (YAML or JSON). `source` names the input in
// syntax errors (`<source>:<line>:<column>`); without it they read `line L, column C`.
// Exceptions from yaml-cpp are caught here; every problem found is returned.
checked<module_config> parse_module_config(std::string_view yaml, std::string_view source = {});

// Reads and parses a ModuleConfig file; an unreadable file is an error naming the file.
checked<module_config> load_module_config(const std::filesystem::path& file);

// The module config the host runs with: the file host_settings::module_config_path names, or
// default_module_config() when it names none.
checked<module_config> load_module_config(const host_settings& host);

// The canonical form: the `spec.settings.registry` object with every default applied, keys
// sorted, a license kept as `license`. Two configs are equal exactly when their canonical
// forms are; the host persists it (it holds secrets: store it 0600) and compares it to tell
// whether the config changed. Note that for the legacy Unmanaged mode the registry comes from
// host_settings::install_images_repo, which this form does not hold; compare
// settings_document() to see every input a mode runs with.
nlohmann::json to_canonical_json(const module_config& config);
std::string canonical_text(const module_config& config);  // to_canonical_json(config).dump()

// Parses a `spec.settings.registry` object given as JSON, such as a canonical form read back
// from the state file, with the same rules; error paths start with `spec.settings.registry`.
checked<module_config> module_config_from_json(const nlohmann::json& registry_settings);

// A duration: whole numbers each followed by h, m or s, in that order, each unit at most once
// (the ttl pattern ^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$), not empty. The ModuleConfig's `ttl`
// and the host's `*_seconds` keys given with units. No minimum applied here.
util::result<std::chrono::seconds> parse_duration(std::string_view text);

// The imagesRepo rule: ^[0-9a-zA-Z\.\-]+(\:[0-9]{1,5})?(\/[0-9a-zA-Z\.\-\_]+)*$ and a port
// of at most 65535. Returns the reason when `repo` breaks it.
std::optional<std::string> check_images_repo(std::string_view repo);

// The `ca` rule: one or more PEM blocks, each a CERTIFICATE that OpenSSL parses as X.509,
// nothing else. Returns the reason when `pem` breaks it.
std::optional<std::string> check_ca_bundle(std::string_view pem);

}  // namespace registryd::config
