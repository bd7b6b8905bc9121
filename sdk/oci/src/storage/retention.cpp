#include <registryd/oci/storage/retention.hpp>

#include "maintenance.hpp"

#include <registryd/oci/semver.hpp>

#include <algorithm>
#include <optional>
#include <set>
#include <unordered_map>
#include <unordered_set>

namespace registryd::oci::storage {
namespace {

// Newest first; release tags always parse.
void sort_newest_first(std::vector<std::string>& tags) {
  std::sort(tags.begin(), tags.end(), [](const std::string& a, const std::string& b) {
    return *semver::parse(a) > *semver::parse(b);
  });
}

void rotate_one(const repository_store& repos, const std::string& name, const rotation_options& options,
                rotation_report& report) {
  std::vector<tag_record> tags;
  repos.for_each_tag(name, [&](const tag_record& t) { tags.push_back(t); });
  std::vector<std::string> names;
  for (const auto& t : tags) names.push_back(t.tag);

  rotation_repository r;
  r.name = name;
  r.kept_releases = newest_releases(names, options.keep);
  const std::set<std::string> kept(r.kept_releases.begin(), r.kept_releases.end());
  for (const auto& t : tags) {
    if (!is_release_tag(t.tag)) {
      r.other_tags.push_back(t.tag);
    } else if (kept.count(t.tag) == 0) {
      r.deleted_releases.push_back(t.tag);
    }
  }
  if (r.kept_releases.empty()) return;  // no release tags: not a release repository
  sort_newest_first(r.deleted_releases);
  std::sort(r.other_tags.begin(), r.other_tags.end());

  // What the deleted tags reach, less what anything that stays reaches.
  const detail::repository_graph g = detail::load_graph(repos, name);
  std::unordered_map<std::string, digest> target;
  std::vector<digest> removed_roots, stay_roots;
  for (const auto& t : tags) {
    target.emplace(t.tag, t.digest);
    const bool deleted = is_release_tag(t.tag) && kept.count(t.tag) == 0;
    (deleted ? removed_roots : stay_roots).push_back(t.digest);
  }
  const std::unordered_set<digest> reached = g.closure(removed_roots);
  for (const auto& [d, node] : g.manifests) {
    if (reached.count(d) == 0) stay_roots.push_back(d);  // untagged manifests rotation leaves
  }
  const std::unordered_set<digest> staying = g.closure(stay_roots);
  std::unordered_set<digest> doomed;
  for (const digest& d : reached) {
    if (staying.count(d) == 0) doomed.insert(d);
  }
  if (!g.complete && !doomed.empty()) {
    // An unreadable manifest may list any of them as a child: delete tags only.
    report.errors.push_back("repository " + name +
                            ": some manifests cannot be read, so only tags are deleted (run registryd fsck)");
    doomed.clear();
  }
  const std::vector<digest> order = detail::top_down(g, doomed);

  if (options.dry_run) {
    for (const digest& d : order) r.deleted_manifests.push_back(d.str());
    report.tags_deleted += r.deleted_releases.size();
    report.manifests_deleted += r.deleted_manifests.size();
    report.repositories.push_back(std::move(r));
    return;
  }

  std::vector<std::string> deleted_tags;
  for (const std::string& tag : r.deleted_releases) {
    // Only the tag as it was judged: re-pointed since, it is someone's new release.
    auto now = repos.resolve_tag(name, tag);
    if (!now || *now != target.at(tag)) continue;
    if (auto st = repos.delete_tag(name, tag); !st) {
      if (st.code() != errc::not_found) report.errors.push_back("cannot delete tag " + name + ":" + tag + ": " + st.error_message());
      continue;
    }
    deleted_tags.push_back(tag);
  }
  r.deleted_releases = std::move(deleted_tags);

  std::unordered_set<digest> tagged_now;
  repos.for_each_tag(name, [&](const tag_record& t) { tagged_now.insert(t.digest); });
  std::unordered_set<digest> saved;
  for (const digest& d : order) {
    if (options.should_stop && options.should_stop()) break;
    if (saved.count(d) != 0 || tagged_now.count(d) != 0) {
      for (const digest& s : g.closure({d})) saved.insert(s);
      continue;
    }
    auto removed = repos.delete_manifest(name, d);
    if (removed) {
      r.deleted_manifests.push_back(d.str());
    } else if (removed.code() != errc::not_found) {
      report.errors.push_back("cannot delete manifest " + name + "@" + d.str() + ": " + removed.error_message());
      for (const digest& s : g.closure({d})) saved.insert(s);
    }
  }
  report.tags_deleted += r.deleted_releases.size();
  report.manifests_deleted += r.deleted_manifests.size();
  report.repositories.push_back(std::move(r));
}

}  // namespace

std::string rotation_report::summary() const {
  if (skipped) return "skipped: another garbage collection, repair or rotation is running";
  std::string s = dry_run ? "would delete " : "deleted ";
  s += std::to_string(tags_deleted) + (tags_deleted == 1 ? " release tag and " : " release tags and ") +
       std::to_string(manifests_deleted) + (manifests_deleted == 1 ? " manifest" : " manifests") + " in " +
       std::to_string(repositories.size()) + (repositories.size() == 1 ? " repository" : " repositories");
  if (!errors.empty()) s += "; " + std::to_string(errors.size()) + (errors.size() == 1 ? " error" : " errors");
  return s;
}

rotation_report rotate_releases(const repository_store& repos, const rotation_options& options) {
  rotation_report report;
  report.dry_run = options.dry_run;
  if (options.keep == 0) {
    report.errors.push_back("keep must be at least 1: rotation never deletes every release");
    return report;
  }
  std::optional<detail::maintenance_lock> lock;
  if (!options.dry_run) {
    lock.emplace(repos.blobs().root(), true);
    if (!lock->held()) {
      report.skipped = true;
      report.errors.push_back("another garbage collection, repair or rotation holds " + lock->path().string());
      return report;
    }
  }
  const std::vector<std::string> all = repos.repositories();
  std::set<std::string> selected;
  for (const std::string& wanted : options.repositories) {
    bool found = false;
    for (const std::string& name : all) {
      if (name == wanted || (options.recursive && name.size() > wanted.size() &&
                             name.compare(0, wanted.size(), wanted) == 0 && name[wanted.size()] == '/')) {
        selected.insert(name);
        found = true;
      }
    }
    if (!found) report.errors.push_back("repository " + wanted + " is not in the store");
  }
  for (const std::string& name : selected) {
    if (options.should_stop && options.should_stop()) break;
    rotate_one(repos, name, options, report);
  }
  return report;
}

}  // namespace registryd::oci::storage
