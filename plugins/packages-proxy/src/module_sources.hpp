// Per-repository credentials from ModuleSource documents (FACTS.md section 6):
//
//   apiVersion: deckhouse.io/v1alpha1
//   kind: ModuleSource
//   metadata: {name: example}
//   spec:
//     registry:
//       repo: registry.example.com/modules     # host[:port]/path
//       dockerCfg: <base64 of a docker config JSON with auths for the host>
//       scheme: HTTPS                          # or HTTP
//       ca: |                                  # PEM, trusted besides the system's CAs
//         -----BEGIN CERTIFICATE-----
//
// The documents live in a directory (one or more per file, *.yaml, *.yml, *.json). refresh()
// re-reads it when any file's name, size or mtime changed, so an edit applies without a
// restart. A document that does not parse is reported (errors()) and skipped; the others keep
// working, and a source that was valid before keeps its last good version until it is fixed.
//
// Thread-safety: every member function is safe from any thread.
#pragma once

#include <registryd/oci/client/options.hpp>
#include <registryd/oci/reference.hpp>

#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace registryd::packages {

struct module_source {
  std::string name;                   // metadata.name
  oci::repository_location repo;      // spec.registry.repo
  oci::client::client_options client; // registry, scheme, credentials, CA
};

// Parses the ModuleSource documents of one file (other kinds are ignored). Throws
// std::invalid_argument naming the file, the document and the field.
std::vector<module_source> parse_module_sources(std::string_view text, const std::string& file);

class module_sources {
 public:
  explicit module_sources(std::optional<std::filesystem::path> dir) : dir_(std::move(dir)) {}

  // Re-reads the directory when it changed. Returns true when the set of sources changed.
  bool refresh();
  // The source whose repo is the longest prefix (at a '/' boundary) of `repository`.
  std::optional<module_source> match(const oci::repository_location& repository) const;
  // Why files or documents were skipped at the last refresh, one line each.
  std::vector<std::string> errors() const;
  std::size_t size() const;

 private:
  std::optional<std::filesystem::path> dir_;
  mutable std::mutex mutex_;
  std::string signature_;  // names, sizes and mtimes seen at the last refresh
  std::map<std::string, module_source> by_repo_;  // key: repo.str()
  std::vector<std::string> errors_;
};

}  // namespace registryd::packages
