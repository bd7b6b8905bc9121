// Renders a containerd description (docs/plugin-authors.md) to the files containerd reads:
//
//   <out>/registry.d/<host[:port]>/hosts.toml          one per described host
//   <out>/registry.d/<host[:port]>/ca-<sha256:12>.pem  one per distinct CA, beside hosts.toml
//   <out>/registry.d/.registryd-managed.json           the host directories registryd owns
//   <out>/conf.d/registryd-registry.toml               config_path drop-in, containerd 1.x
//   <out>/conf2.d/registryd-registry.toml              config_path drop-in, containerd 2.x
//
// The drop-ins are rendered only when the description names at least one host: a mode that
// describes none (legacy Unmanaged) leaves containerd with the node's own configuration.
// `<out>` plays the role of /etc/containerd. docs/containerd.md describes the layout, the
// atomicity and the managed-directories rule. render() is the single entry point for
// "description JSON -> tree on disk"; render_files() is the pure part, for tests and dry runs.
#pragma once

#include <registryd/containerd/description.hpp>
#include <registryd/util/result.hpp>

#include <nlohmann/json_fwd.hpp>

#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace registryd::containerd {

// Paths relative to the output directory, '/'-separated.
inline constexpr const char* registry_dir = "registry.d";
inline constexpr const char* manifest_path = "registry.d/.registryd-managed.json";
inline constexpr const char* dropin_v1_path = "conf.d/registryd-registry.toml";
inline constexpr const char* dropin_v2_path = "conf2.d/registryd-registry.toml";
// Every hosts.toml and drop-in registryd writes begins with this comment.
inline constexpr std::string_view managed_marker = "# Managed by registryd";

struct rendered_file {
  std::string path;     // relative to the output directory, '/'-separated
  std::string content;
  std::filesystem::perms mode;  // 0600 for a hosts.toml that holds credentials, else 0644
};

struct rendered_tree {
  // In the order they must be published: per host its CA files, then the hosts.toml naming
  // them; then the manifest; then the two drop-ins, if `hosts` is not empty (a drop-in
  // pointing containerd at an empty registry.d would replace the node's own config_path).
  std::vector<rendered_file> files;
  std::vector<std::string> hosts;  // host directory names, as described
  // sha256 hex over every file under registry.d/ except the manifest (path and content): what
  // a node acknowledges once it has applied the configuration. Independent of the output
  // directory and of the final root; defined for an empty description too.
  std::string config_version;
};

// Validates `description` and produces the files in memory. `final_root` is where the output
// directory will be on the node (the config_path in the drop-ins is <final_root>/registry.d);
// it must be absolute. Nothing touches the disk.
util::result<rendered_tree> render_files(const nlohmann::json& description,
                                         const std::filesystem::path& final_root);
util::result<rendered_tree> render_files(const description& parsed,
                                         const std::filesystem::path& final_root);

struct render_options {
  std::filesystem::path out_dir{};  // the directory that plays /etc/containerd; created if missing
  // Where out_dir will live on the node; empty means out_dir itself (made absolute).
  std::filesystem::path final_root{};
  // A described host whose directory exists but is not in the manifest was made by hand; it is
  // refused unless adopt_unmanaged is set, in which case registryd takes the directory over
  // (and from then on owns all of it).
  bool adopt_unmanaged = false;
  // Computes the report without changing anything on disk.
  bool dry_run = false;
};

struct render_report {
  std::string config_version;
  std::vector<std::string> hosts;      // the managed host directories after the render
  std::vector<std::string> written;    // files (re)written, in publication order
  std::vector<std::string> unchanged;  // files that already had the rendered content
  // Stale files, no-longer-described host directories, and the drop-ins registryd rendered
  // before when the description now names no host.
  std::vector<std::string> removed;
  bool changed() const noexcept { return !written.empty() || !removed.empty(); }
};

// Validates the description, then publishes the tree under options.out_dir:
//  - every file atomically (temporary file, fsync, rename, directory fsync), and only when
//    its content or mode differs, so rendering the same description twice writes nothing;
//  - CA files before the hosts.toml that names them, so containerd never reads a hosts.toml
//    whose CA file is missing;
//  - host directories that the manifest lists and the description no longer names are
//    removed; directories the manifest does not list are never touched (nor adopted, see
//    render_options::adopt_unmanaged);
//  - a description without hosts renders no drop-ins and removes those the manifest records
//    (first, before the host directories); on a tree without a manifest it writes nothing at
//    all, not even registry.d;
//  - the manifest is widened before a new directory is created and narrowed only after the
//    removals, so a crash at any point leaves no directory registryd made but forgot;
//  - renders of one tree are serialized by an flock on registry.d/.registryd-render.lock
//    (blocking), so the daemon and the CLI may render at once. Thread-safe on that basis.
// Errors (bad description, unreadable manifest, a hand-made directory in the way, I/O) are
// returned as values with the path involved.
util::result<render_report> render(const nlohmann::json& description,
                                   const render_options& options);

}  // namespace registryd::containerd
