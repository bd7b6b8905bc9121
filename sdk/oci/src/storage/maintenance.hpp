// What garbage collection, fsck and rotation share (private to registryd::oci): the store's
// maintenance lock and file-system clock, and a repository's manifests as a graph (which
// blobs and child manifests each references, which manifests refer to which subject).
#pragma once

#include <registryd/oci/digest.hpp>
#include <registryd/oci/storage/repository_store.hpp>

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace registryd::oci::storage::detail {

// <root>/gc.lock, held (flock) by whichever GC, fsck --repair or rotation changes the store.
// Opening it also reads the file system's clock: the lock file is touched and its mtime read
// back, so a grace cutoff computed from it compares with blob mtimes on the same clock (the
// kernel's coarse clock, or an NFS server's), not with this process's.
class maintenance_lock {
 public:
  // `exclusive`: try to take the lock (never waits); held() says whether it was taken.
  // Without it the file is only used to read the clock. Failing to create the file (a
  // read-only store) leaves held() false and now() the system clock.
  maintenance_lock(const std::filesystem::path& root, bool exclusive);
  ~maintenance_lock();
  maintenance_lock(const maintenance_lock&) = delete;
  maintenance_lock& operator=(const maintenance_lock&) = delete;

  bool held() const noexcept { return held_; }
  // The file system's time when the lock was opened.
  time_point now() const noexcept { return now_; }
  const std::filesystem::path& path() const noexcept { return path_; }

 private:
  std::filesystem::path path_;
  int fd_ = -1;
  bool held_ = false;
  time_point now_{};
};

// One manifest revision and what it references.
struct manifest_node {
  manifest_record record;
  time_point content_mtime{};     // the manifest blob's mtime (a re-push refreshes it)
  bool readable = false;          // the content was read and parsed
  std::string problem;            // why not, when !readable
  std::vector<digest> blobs;      // config and layers
  std::vector<digest> children;   // an index's manifests
};

// A repository's revisions. Edges: a manifest -> its children, a subject -> its referrers.
struct repository_graph {
  std::string name;
  std::unordered_map<digest, manifest_node> manifests;
  std::unordered_map<digest, std::vector<digest>> referrers_of;  // subject -> referrers
  bool complete = true;  // every revision was read and parsed

  // The revisions reachable from `roots` (roots that are not revisions are left out).
  std::unordered_set<digest> closure(const std::vector<digest>& roots) const;
  // The revisions `d` points at directly: its children, then its referrers.
  std::vector<digest> edges(const digest& d) const;
};

repository_graph load_graph(const repository_store& repos, std::string_view name);

// The manifests of `doomed` (revisions of `g`) in the order to delete them: parents (an index,
// a subject) before what they reach, so that a parent found in use at the last moment can
// still save its children and referrers.
std::vector<digest> top_down(const repository_graph& g, const std::unordered_set<digest>& doomed);

// The mtime of a file, or nullopt when it is not there.
std::optional<time_point> mtime_of(const std::filesystem::path& p);

}  // namespace registryd::oci::storage::detail
