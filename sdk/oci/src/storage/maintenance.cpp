#include "maintenance.hpp"

#include "fs_util.hpp"

#include <registryd/oci/manifest.hpp>

#include <algorithm>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

namespace registryd::oci::storage::detail {

namespace fs = std::filesystem;

maintenance_lock::maintenance_lock(const fs::path& root, bool exclusive)
    : path_(root / "gc.lock"), now_(std::chrono::system_clock::now()) {
  fd_ = ::open(path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd_ < 0) return;
  struct ::stat st {};
  if (::futimens(fd_, nullptr) == 0 && ::fstat(fd_, &st) == 0) now_ = fsx::mtime_of(st.st_mtim);
  if (exclusive) held_ = ::flock(fd_, LOCK_EX | LOCK_NB) == 0;
}

maintenance_lock::~maintenance_lock() {
  // Closing the descriptor releases the flock.
  if (fd_ >= 0) ::close(fd_);
}

std::optional<time_point> mtime_of(const fs::path& p) {
  struct ::stat st {};
  if (::stat(p.c_str(), &st) != 0) return std::nullopt;
  return fsx::mtime_of(st.st_mtim);
}

std::unordered_set<digest> repository_graph::closure(const std::vector<digest>& roots) const {
  std::unordered_set<digest> seen;
  std::vector<digest> stack;
  for (const digest& r : roots) {
    if (manifests.count(r) != 0 && seen.insert(r).second) stack.push_back(r);
  }
  while (!stack.empty()) {
    const digest d = std::move(stack.back());
    stack.pop_back();
    for (digest& next : edges(d)) {
      if (manifests.count(next) != 0 && seen.insert(next).second) stack.push_back(std::move(next));
    }
  }
  return seen;
}

std::vector<digest> repository_graph::edges(const digest& d) const {
  std::vector<digest> out;
  if (const auto it = manifests.find(d); it != manifests.end()) out = it->second.children;
  if (const auto it = referrers_of.find(d); it != referrers_of.end()) {
    out.insert(out.end(), it->second.begin(), it->second.end());
  }
  return out;
}

std::vector<digest> top_down(const repository_graph& g, const std::unordered_set<digest>& doomed) {
  std::vector<digest> post;
  std::unordered_set<digest> seen;
  // Iterative DFS (a deep index chain must not overflow the stack); post-order reversed.
  std::vector<digest> roots(doomed.begin(), doomed.end());
  std::sort(roots.begin(), roots.end());
  for (const digest& root : roots) {
    if (!seen.insert(root).second) continue;
    std::vector<std::pair<digest, std::vector<digest>>> stack;
    stack.emplace_back(root, g.edges(root));
    while (!stack.empty()) {
      auto& [d, next] = stack.back();
      if (next.empty()) {
        post.push_back(d);
        stack.pop_back();
        continue;
      }
      digest n = std::move(next.back());
      next.pop_back();
      if (doomed.count(n) != 0 && seen.insert(n).second) {
        auto edges = g.edges(n);
        stack.emplace_back(std::move(n), std::move(edges));
      }
    }
  }
  std::reverse(post.begin(), post.end());
  return post;
}

namespace {

// Reads the manifest a revision names into the graph.
void add_manifest(repository_graph& g, const repository_store& repos, const manifest_record& record) {
  manifest_node node{record, {}, false, {}, {}, {}};
  if (record.subject) g.referrers_of[*record.subject].push_back(record.digest);
  auto file = repos.blobs().open(record.digest);
  if (!file) {
    node.problem = file.error_message();
  } else {
    struct ::stat st {};
    if (::fstat(file->fd(), &st) == 0) node.content_mtime = fsx::mtime_of(st.st_mtim);
    if (file->size() > max_manifest_size) {
      node.problem = "the manifest is larger than " + std::to_string(max_manifest_size) + " bytes";
    } else if (auto bytes = file->read_all(); !bytes) {
      node.problem = bytes.error_message();
    } else if (auto parsed = parse_manifest(*bytes, record.media_type); !parsed) {
      node.problem = "the manifest does not parse: " + parsed.error_message();
    } else {
      node.readable = true;
      for (const descriptor& b : parsed->blobs()) node.blobs.push_back(b.digest);
      for (const descriptor& c : parsed->children()) node.children.push_back(c.digest);
    }
  }
  if (!node.readable) g.complete = false;
  g.manifests.emplace(record.digest, std::move(node));
}

}  // namespace

repository_graph load_graph(const repository_store& repos, std::string_view name) {
  repository_graph g;
  g.name = std::string(name);
  repos.for_each_manifest(name, [&](const manifest_record& record) { add_manifest(g, repos, record); });
  // for_each_manifest skips revision files it cannot read: what those reference is unknown.
  // A file the walk did not see may also be a revision pushed while it ran (pushes go on
  // during an online GC): read each such file once more, and only one that still cannot be
  // read makes the graph incomplete. One that is gone now was deleted meanwhile.
  const fs::path revisions = repos.repository_path(name) / "_manifests" / "revisions";
  for (const std::string& algorithm : fsx::list_dir(revisions)) {
    for (const std::string& hex : fsx::list_dir(revisions / algorithm)) {
      const auto d = digest::parse(algorithm + ":" + hex);
      if (!d || g.manifests.count(*d) != 0) continue;
      auto record = repos.stat_manifest(name, *d);
      if (record) {
        add_manifest(g, repos, *record);
      } else if (record.code() != errc::not_found) {
        g.complete = false;
        g.manifests.emplace(*d, manifest_node{manifest_record{*d, {}, 0, {}, {}}, {}, false,
                                              record.error_message(), {}, {}});
      }
    }
  }
  return g;
}

}  // namespace registryd::oci::storage::detail
