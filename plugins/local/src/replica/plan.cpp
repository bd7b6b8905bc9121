#include "replica/plan.hpp"

#include <algorithm>
#include <set>

namespace registryd::local::replica {
namespace {

const repository_state& empty_repository() {
  static const repository_state none;
  return none;
}

repository_plan plan_repository(const std::string& name, const repository_state& l, const repository_state& p) {
  repository_plan out;
  out.repository = name;
  std::map<oci::digest, unix_ns> copies;

  // Tags of the peer.
  for (const auto& [tag, pe] : p.tags) {
    if (const auto it = l.tags.find(tag); it != l.tags.end()) {
      const tag_entry& le = it->second;
      if (le.digest == pe.digest || !newer(pe.updated, pe.digest, le.updated, le.digest)) continue;
    } else if (const auto tomb = l.deleted_tags.find(tag); tomb != l.deleted_tags.end()) {
      if (tomb->second.deleted >= pe.updated) continue;
    }
    out.set_tags.push_back({tag, pe.digest, pe.updated});
    if (!l.manifests.contains(pe.digest)) {
      const auto t = p.manifests.find(pe.digest);
      copies.emplace(pe.digest, t == p.manifests.end() ? pe.updated : t->second);
    }
  }

  // Tag tombstones of the peer.
  for (const auto& [tag, pt] : p.deleted_tags) {
    if (const auto it = l.tags.find(tag); it != l.tags.end()) {
      if (it->second.updated > pt.deleted) continue;  // set again after the delete: it stays
      out.delete_tags.push_back({tag, it->second.digest, pt.deleted});
      out.adopt_tag_tombstones.push_back({tag, pt.digest, pt.deleted});
      continue;
    }
    const auto mine = l.deleted_tags.find(tag);
    if (mine != l.deleted_tags.end() && mine->second.deleted >= pt.deleted) continue;
    if (p.tags.contains(tag)) continue;  // the peer set it again; its tag says so
    out.adopt_tag_tombstones.push_back({tag, pt.digest, pt.deleted});
  }

  // Manifests of the peer.
  for (const auto& [d, t] : p.manifests) {
    if (l.manifests.contains(d) || copies.contains(d)) continue;
    if (const auto tomb = l.deleted_manifests.find(d); tomb != l.deleted_manifests.end() && tomb->second >= t) {
      continue;
    }
    copies.emplace(d, t);
  }

  // Manifest tombstones of the peer.
  std::set<oci::digest> wanted;
  for (const auto& s : out.set_tags) wanted.insert(s.digest);
  for (const auto& [d, when] : p.deleted_manifests) {
    if (p.manifests.contains(d)) continue;  // stored again on the peer after the delete
    if (const auto it = l.manifests.find(d); it != l.manifests.end()) {
      bool keep = it->second > when || wanted.contains(d);
      for (const auto& [tag, le] : l.tags) {
        if (keep) break;
        if (le.digest != d) continue;
        const bool deleted_now = std::any_of(out.delete_tags.begin(), out.delete_tags.end(),
                                             [&](const tag_change& c) { return c.tag == tag; });
        keep = !deleted_now && le.updated > when;
      }
      if (keep) continue;
      out.delete_manifests.push_back({d, when});
      out.adopt_manifest_tombstones.push_back({d, when});
      continue;
    }
    const auto mine = l.deleted_manifests.find(d);
    if (mine != l.deleted_manifests.end() && mine->second >= when) continue;
    out.adopt_manifest_tombstones.push_back({d, when});
  }

  for (const auto& [d, t] : copies) out.copy_manifests.push_back({d, t});
  return out;
}

}  // namespace

bool newer(unix_ns a_time, const oci::digest& a_digest, unix_ns b_time, const oci::digest& b_digest) noexcept {
  if (a_time != b_time) return a_time > b_time;
  return a_digest > b_digest;
}

sync_plan plan_sync(const replica_state& local, const replica_state& peer) {
  sync_plan out;
  for (const auto& [name, p] : peer.repositories) {
    const auto it = local.repositories.find(name);
    repository_plan rp = plan_repository(name, it == local.repositories.end() ? empty_repository() : it->second, p);
    if (!rp.empty()) out.repositories.push_back(std::move(rp));
  }
  return out;
}

}  // namespace registryd::local::replica
