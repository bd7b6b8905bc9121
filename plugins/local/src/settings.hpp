// The Local mode's view of the settings document (docs/plugin-authors.md). Local mode has no
// section of its own: everything it needs comes from `host`.
#pragma once

#include <registryd/sdk/containerd.hpp>

#include <nlohmann/json.hpp>

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>

namespace registryd::local {

struct settings {
  std::filesystem::path data_dir;               // host.dataDir: the storage root
  std::optional<std::filesystem::path> ca_file;  // host.caFile: the registry CA (PEM)
  std::string fixed_host = "registry.d8-system.svc:5001";
  // The address every node reaches the registry at (the node balancer, FACTS.md section 4).
  std::string node_mirror{sdk::containerd::node_balancer_url};
  // Online garbage collection (docs/gc.md): host.gcIntervalSeconds (0: never) and
  // host.gcGraceSeconds.
  std::chrono::seconds gc_interval{3600};
  std::chrono::seconds gc_grace{3600};
};

// Parses and checks the document. Throws std::invalid_argument naming the offending field.
settings parse_settings(const nlohmann::json& doc);

}  // namespace registryd::local
