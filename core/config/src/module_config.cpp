#include <registryd/config/module_config.hpp>

#include <registryd/config/host_settings.hpp>
#include <registryd/util/atomic_file.hpp>

#include "yaml_reader.hpp"

#include <array>
#include <exception>

namespace registryd::config {
namespace {

using detail::child_path;
using detail::is_absent;
using detail::map_reader;

// In enum order.
constexpr std::array<std::string_view, 4> mode_names = {"Unmanaged", "Direct", "Proxy", "Local"};
constexpr std::array<std::string_view, 2> scheme_names = {"HTTP", "HTTPS"};
constexpr std::array<std::string_view, 2> check_mode_names = {"Default", "Relax"};

constexpr std::string_view registry_path = "spec.settings.registry";

// The section each mode owns, in the order errors are reported.
struct section_kind {
  std::string_view key;
  registry_mode mode;
};
constexpr std::array<section_kind, 3> section_kinds = {{
    {"direct", registry_mode::direct},
    {"proxy", registry_mode::proxy},
    {"unmanaged", registry_mode::unmanaged},
}};

std::string_view section_key(registry_mode mode) {
  for (const auto& k : section_kinds) {
    if (k.mode == mode) return k.key;
  }
  return {};
}

std::optional<registry_section> parse_section(const YAML::Node& node, const std::string& path,
                                              bool is_proxy, field_errors& errors) {
  if (!detail::expect_map(node, path, errors)) return std::nullopt;
  const std::size_t errors_before = errors.size();
  map_reader fields(node, path, errors);
  registry_section section;

  {
    const std::string p = child_path(path, "imagesRepo");
    // Absent: the schema default, applied before validation.
    if (auto repo = detail::read_string(fields.take("imagesRepo"), p, errors)) {
      if (auto why = check_images_repo(*repo)) {
        errors.push_back({p, std::move(*why)});
      } else {
        section.images_repo = std::move(*repo);
      }
    }
  }
  if (auto i = detail::read_enum(fields.take("scheme"), child_path(path, "scheme"), scheme_names,
                                 errors)) {
    section.scheme = static_cast<url_scheme>(*i);
  }

  {
    const YAML::Node username_node = fields.take("username");
    const YAML::Node password_node = fields.take("password");
    const YAML::Node license_node = fields.take("license");
    const std::string username_path = child_path(path, "username");
    const std::string password_path = child_path(path, "password");
    const std::string license_path = child_path(path, "license");
    auto username = detail::read_non_empty_string(username_node, username_path, errors);
    auto password = detail::read_non_empty_string(password_node, password_path, errors);
    auto license = detail::read_non_empty_string(license_node, license_path, errors);
    // Presence, not validity, decides the pairing rules: a mistyped password is one error,
    // not two.
    const bool has_username = !is_absent(username_node);
    const bool has_password = !is_absent(password_node);
    const bool has_license = !is_absent(license_node);
    if (has_license && (has_username || has_password)) {
      errors.push_back({license_path, "must not be set together with username or password"});
    } else if (has_username && !has_password) {
      errors.push_back({password_path, "is required when username is set"});
    } else if (has_password && !has_username) {
      errors.push_back({username_path, "is required when password is set"});
    } else if (license) {
      section.credentials = registry_credentials{std::string(license_username), *license, true};
    } else if (username && password) {
      section.credentials = registry_credentials{*username, *password, false};
    }
  }

  {
    const std::string p = child_path(path, "ca");
    if (auto ca = detail::read_string(fields.take("ca"), p, errors)) {
      if (ca->empty()) {
        errors.push_back({p, "must not be empty (leave ca out to use the system trust store)"});
      } else if (auto why = check_ca_bundle(*ca)) {
        errors.push_back({p, std::move(*why)});
      } else {
        section.ca = std::move(*ca);
      }
    }
  }
  if (auto i = detail::read_enum(fields.take("checkMode"), child_path(path, "checkMode"),
                                 check_mode_names, errors)) {
    section.check = static_cast<check_mode>(*i);
  }

  {
    const std::string p = child_path(path, "ttl");
    const YAML::Node ttl_node = fields.take("ttl");
    if (!is_proxy) {
      if (!is_absent(ttl_node)) errors.push_back({p, "is allowed in the proxy section only"});
    } else if (is_absent(ttl_node)) {
      section.ttl = proxy_ttl{std::string(default_proxy_ttl), parse_duration(default_proxy_ttl).value()};
    } else if (auto text = detail::read_string(ttl_node, p, errors)) {
      auto duration = parse_duration(*text);
      if (!duration) {
        errors.push_back({p, duration.error_message()});
      } else if (*duration < minimum_proxy_ttl) {
        errors.push_back({p, "must be at least 5m, got " + *text});
      } else {
        section.ttl = proxy_ttl{*text, *duration};
      }
    }
  }

  fields.reject_unknown();
  if (errors.size() != errors_before) return std::nullopt;
  return section;
}

// `spec.settings.registry`; absent means all defaults (Unmanaged, legacy).
std::optional<module_config> parse_registry(const YAML::Node& node, const std::string& path,
                                            field_errors& errors) {
  if (is_absent(node)) return default_module_config();
  if (!detail::expect_map(node, path, errors)) return std::nullopt;
  const std::size_t errors_before = errors.size();
  map_reader fields(node, path, errors);

  const YAML::Node mode_node = fields.take("mode");
  registry_mode mode = registry_mode::unmanaged;
  bool mode_valid = true;
  if (!is_absent(mode_node)) {
    const auto i = detail::read_enum(mode_node, child_path(path, "mode"), mode_names, errors);
    mode_valid = i.has_value();
    if (i) mode = static_cast<registry_mode>(*i);
  }

  struct found_section {
    bool present = false;
    std::optional<registry_section> parsed;
  };
  std::array<found_section, section_kinds.size()> found;
  for (std::size_t i = 0; i < section_kinds.size(); ++i) {
    const auto& kind = section_kinds[i];
    const YAML::Node section_node = fields.take(kind.key);
    if (is_absent(section_node)) continue;
    found[i].present = true;
    found[i].parsed = parse_section(section_node, child_path(path, kind.key),
                                    kind.mode == registry_mode::proxy, errors);
  }
  fields.reject_unknown();

  // The cross-field rules need a valid mode; with a bad one its own error says enough.
  if (mode_valid) {
    for (std::size_t i = 0; i < section_kinds.size(); ++i) {
      const auto& kind = section_kinds[i];
      const std::string p = child_path(path, kind.key);
      if (kind.mode == mode && kind.mode != registry_mode::unmanaged && !found[i].present) {
        errors.push_back({p, "is required when mode is " + std::string(to_string(kind.mode))});
      }
      if (found[i].present && kind.mode != mode) {
        std::string reason = "is allowed only when mode is " + std::string(to_string(kind.mode)) +
                             ", got mode " + std::string(to_string(mode));
        if (mode == registry_mode::local) reason += " (Local mode has no section)";
        errors.push_back({p, std::move(reason)});
      }
    }
  }
  if (errors.size() != errors_before || !mode_valid) return std::nullopt;

  module_config config;
  config.mode = mode;
  for (std::size_t i = 0; i < section_kinds.size(); ++i) {
    if (section_kinds[i].mode == mode && found[i].present) config.section = found[i].parsed;
  }
  return config;
}

// Checks a required string field equal to `expected`.
void expect_value(map_reader& fields, std::string_view key, std::string_view expected,
                  field_errors& errors) {
  const std::string p = child_path(fields.path(), key);
  const YAML::Node node = fields.take(key);
  if (is_absent(node)) {
    errors.push_back({p, "is required (" + std::string(expected) + ")"});
    return;
  }
  if (auto value = detail::read_string(node, p, errors); value && *value != expected) {
    errors.push_back({p, "must be " + std::string(expected) + ", got " + detail::quoted(*value)});
  }
}

std::optional<module_config> parse_document(const YAML::Node& root, field_errors& errors) {
  if (is_absent(root)) {
    errors.push_back({"", "the document is empty, expected a ModuleConfig"});
    return std::nullopt;
  }
  if (!root.IsMap()) {
    errors.push_back({"", "must be a ModuleConfig (a map), got " + detail::kind_of(root)});
    return std::nullopt;
  }
  const std::size_t errors_before = errors.size();
  map_reader top(root, "", errors);
  expect_value(top, "apiVersion", module_config_api_version, errors);
  expect_value(top, "kind", module_config_kind, errors);

  const YAML::Node metadata = top.take("metadata");
  if (is_absent(metadata)) {
    errors.push_back({"metadata.name", "is required (" + std::string(module_config_name) + ")"});
  } else if (detail::expect_map(metadata, "metadata", errors)) {
    // labels, annotations, uid, ...: whatever the API server adds is not ours to check.
    map_reader meta(metadata, "metadata", errors);
    expect_value(meta, "name", module_config_name, errors);
  }

  std::optional<module_config> config = default_module_config();
  const YAML::Node spec = top.take("spec");
  if (!is_absent(spec) && detail::expect_map(spec, "spec", errors)) {
    map_reader spec_fields(spec, "spec", errors);
    const YAML::Node version = spec_fields.take("version");
    const YAML::Node settings = spec_fields.take("settings");
    // The rest of a ModuleConfig spec, which the host does not use.
    for (const auto key : {"enabled", "maintenance", "updatePolicy", "source"}) {
      (void)spec_fields.take(key);
    }
    spec_fields.reject_unknown();

    if (is_absent(version)) {
      if (!is_absent(settings)) {
        errors.push_back({"spec.version", "is required when spec.settings is set (1)"});
      }
    } else if (auto v = detail::read_integer(version, "spec.version", errors);
               v && *v != module_config_settings_version) {
      errors.push_back(
          {"spec.version", "unsupported settings version " + std::to_string(*v) + ", expected 1"});
    }

    if (!is_absent(settings) && detail::expect_map(settings, "spec.settings", errors)) {
      // Other settings of the deckhouse module live beside `registry`; they are not ours.
      map_reader settings_fields(settings, "spec.settings", errors);
      config = parse_registry(settings_fields.take("registry"), std::string(registry_path), errors);
    }
  }
  (void)top.take("status");
  top.reject_unknown();
  if (errors.size() != errors_before) return std::nullopt;
  return config;
}

nlohmann::json section_json(const registry_section& s) {
  nlohmann::json j = {
      {"imagesRepo", s.images_repo},
      {"scheme", to_string(s.scheme)},
      {"checkMode", to_string(s.check)},
  };
  if (s.credentials) {
    if (s.credentials->from_license) {
      j["license"] = s.credentials->password;
    } else {
      j["username"] = s.credentials->username;
      j["password"] = s.credentials->password;
    }
  }
  if (s.ca) j["ca"] = *s.ca;
  if (s.ttl) j["ttl"] = s.ttl->text;
  return j;
}

}  // namespace

std::string_view to_string(registry_mode mode) {
  return mode_names.at(static_cast<std::size_t>(mode));
}
std::string_view to_string(url_scheme scheme) {
  return scheme_names.at(static_cast<std::size_t>(scheme));
}
std::string_view to_string(check_mode mode) {
  return check_mode_names.at(static_cast<std::size_t>(mode));
}

module_config default_module_config() { return module_config{}; }

checked<module_config> parse_module_config(std::string_view yaml, std::string_view source) {
  field_errors errors;
  std::optional<module_config> config;
  try {
    if (auto root = detail::load_document(yaml, source, errors)) {
      config = parse_document(*root, errors);
    }
  } catch (const std::exception& e) {
    // The readers check types before converting, so this is a yaml-cpp surprise; still a value.
    errors.push_back({std::string(source), std::string("cannot read the document: ") + e.what()});
  }
  if (!errors.empty() || !config) {
    if (errors.empty()) errors.push_back({std::string(source), "invalid ModuleConfig"});
    return errors;
  }
  return std::move(*config);
}

checked<module_config> load_module_config(const std::filesystem::path& file) {
  std::error_code ec;
  const std::string text = util::read_small_file(file, ec);
  if (ec) return field_errors{{file.string(), "cannot read: " + ec.message()}};
  return parse_module_config(text, file.string());
}

checked<module_config> load_module_config(const host_settings& host) {
  if (!host.module_config_path) return default_module_config();
  return load_module_config(*host.module_config_path);
}

nlohmann::json to_canonical_json(const module_config& config) {
  nlohmann::json j = {{"mode", to_string(config.mode)}};
  if (config.section) j[std::string(section_key(config.mode))] = section_json(*config.section);
  return j;
}

std::string canonical_text(const module_config& config) { return to_canonical_json(config).dump(); }

checked<module_config> module_config_from_json(const nlohmann::json& registry_settings) {
  field_errors errors;
  std::optional<module_config> config;
  try {
    // JSON is YAML: one set of rules, one set of messages.
    const std::string text = registry_settings.dump();
    if (auto root = detail::load_document(text, std::string(registry_path), errors)) {
      config = parse_registry(*root, std::string(registry_path), errors);
    }
  } catch (const std::exception& e) {
    errors.push_back({std::string(registry_path), std::string("cannot read: ") + e.what()});
  }
  if (!errors.empty() || !config) {
    if (errors.empty()) errors.push_back({std::string(registry_path), "invalid registry settings"});
    return errors;
  }
  return std::move(*config);
}

}  // namespace registryd::config
