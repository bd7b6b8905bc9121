// What one sync round with one peer must do, decided from the two states alone: a pure
// function, so every rule is tested without a network or a disk. docs/replica-sync.md.
//
// The rules, per repository (L = this replica, P = the peer):
// - A tag of P that L lacks, or that L has pointing elsewhere with an older time, is set on L
//   to P's digest with P's time ("newest wins"; equal times: the greater digest wins, so both
//   sides pick the same). A tombstone on L at least as new as P's tag keeps it deleted.
// - A tombstone of P at least as new as L's tag deletes the tag on L (a delete wins a tie); a
//   newer tag on L survives it. P's tombstones are adopted by L (newest kept), so deletions
//   travel through every replica and not only to direct peers.
// - A manifest of P that L lacks is copied, unless L holds a tombstone for it at least as new
//   (a manifest a tag needs is copied whatever tombstones say).
// - A manifest tombstone of P at least as new as L's revision deletes it on L, unless a tag of
//   L newer than the tombstone, or a tag being set, points at it.
// - Whatever L has and P lacks is left alone: P pulls it from L in its own rounds.
//
// Thread-safety: plain values and pure functions.
#pragma once

#include "replica/oci_names.hpp"

#include "replica/state.hpp"

#include <string>
#include <vector>

namespace registryd::local::replica {

struct tag_change {
  std::string tag;
  oci::digest digest;
  // set: the peer's digest and time; delete: the local digest it must still point at and the
  // tombstone's time; adopt: the peer's tombstone.
  unix_ns time = 0;
  friend bool operator==(const tag_change&, const tag_change&) = default;
};

struct manifest_change {
  oci::digest digest;
  unix_ns time = 0;  // copy: the revision's time on the peer; delete: the tombstone's time
  friend bool operator==(const manifest_change&, const manifest_change&) = default;
};

// The changes to one repository, to be applied in this order: record the adopted
// tombstones, delete tags, delete manifests, copy manifests (each with its children and blobs
// before it), and set the tags last, each only once its manifest is complete.
struct repository_plan {
  std::string repository;
  std::vector<tag_change> adopt_tag_tombstones;
  std::vector<manifest_change> adopt_manifest_tombstones;
  std::vector<tag_change> delete_tags;
  std::vector<manifest_change> delete_manifests;
  std::vector<manifest_change> copy_manifests;  // sorted by digest, no duplicates
  std::vector<tag_change> set_tags;             // sorted by tag

  bool empty() const noexcept {
    return adopt_tag_tombstones.empty() && adopt_manifest_tombstones.empty() && delete_tags.empty() &&
           delete_manifests.empty() && copy_manifests.empty() && set_tags.empty();
  }
};

struct sync_plan {
  std::vector<repository_plan> repositories;  // sorted by name, only those with changes
  bool empty() const noexcept { return repositories.empty(); }
};

// True when a change made at (a_time, a_digest) is newer than one made at (b_time, b_digest).
bool newer(unix_ns a_time, const oci::digest& a_digest, unix_ns b_time, const oci::digest& b_digest) noexcept;

// The plan that brings `local` up to date with `peer`.
sync_plan plan_sync(const replica_state& local, const replica_state& peer);

}  // namespace registryd::local::replica
