// The Unmanaged mode's view of the settings document (docs/plugin-authors.md).
#pragma once

#include <nlohmann/json.hpp>

#include <optional>
#include <string>

namespace registryd::unmanaged {

struct settings {
  bool legacy = false;            // no `unmanaged` section: the install-time registry
  std::string images_repo;        // host[:port][/path], e.g. registry.example.com/deckhouse/ee
  std::string scheme = "HTTPS";   // HTTP | HTTPS
  std::optional<std::string> username;
  std::optional<std::string> password;
  std::optional<std::string> ca;  // PEM
  std::string check_mode = "Default";
  std::string fixed_host = "registry.d8-system.svc:5001";

  // host[:port] of images_repo: the registry host images are named with.
  std::string registry_host() const;
  // "http" or "https".
  std::string url_scheme() const;
};

// Parses and checks the document. Throws std::invalid_argument naming the offending field,
// e.g. `section.imagesRepo: "a b" does not match ...`.
settings parse_settings(const nlohmann::json& doc);

}  // namespace registryd::unmanaged
