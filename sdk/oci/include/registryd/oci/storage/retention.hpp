// Image rotation: a retention policy that keeps the images of the N newest platform releases
// in a repository and removes the rest, for a Local registry that `registryd mirror push`
// fills release after release (seed 002: "rotation of images of old releases, Mirror mode").
// GC then reclaims the blobs (docs/gc.md, "Rotation").
//
// In each repository rotated (by default system/deckhouse and every repository below it),
// independently:
// - release tags are the tags oci::is_release_tag accepts (`v1.62.3`); they are ordered by
//   oci::semver, so v1.10.0 is newer than v1.9.0. The `keep` newest (oci::newest_releases,
//   the choice `mirror pull --releases N` makes) stay; every other release tag is deleted.
// - every other tag (`latest`, channel tags such as `stable`, pre-releases such as
//   `v1.63.0-rc.1`, digest-like tags) stays, and so does what it points at: rotation only ever
//   removes releases.
// - a manifest is deleted when a deleted tag reached it (directly, as an index's child, or as
//   a referrer of such a manifest: signatures, SBOMs) and nothing that stays reaches it: no
//   remaining tag, and no untagged manifest that rotation does not remove.
// - a repository without release tags is left alone.
//
// Thread-safety: safe alongside any use of the store; a tag re-pointed during the run at a
// manifest rotation is deleting is re-checked just before the delete and spared.
#pragma once

#include <registryd/oci/storage/repository_store.hpp>

#include <cstddef>
#include <functional>
#include <string>
#include <vector>

namespace registryd::oci::storage {

inline constexpr const char* default_rotation_repository = "system/deckhouse";

struct rotation_options {
  // How many release tags each repository keeps; at least 1 (0 is refused: errors).
  std::size_t keep = 0;
  // The repositories to rotate; each also stands for every repository below it unless
  // `recursive` is false.
  std::vector<std::string> repositories{default_rotation_repository};
  bool recursive = true;
  // Report what would be deleted; change nothing.
  bool dry_run = false;
  std::function<bool()> should_stop;
};

struct rotation_repository {
  std::string name;
  std::vector<std::string> kept_releases;    // newest first
  std::vector<std::string> deleted_releases; // newest first
  std::vector<std::string> other_tags;       // not release tags: kept
  std::vector<std::string> deleted_manifests;  // digests
};

struct rotation_report {
  bool dry_run = false;
  bool skipped = false;  // another GC, repair or rotation holds the lock
  std::vector<rotation_repository> repositories;  // each one with release tags, sorted
  std::size_t tags_deleted = 0;
  std::size_t manifests_deleted = 0;
  std::vector<std::string> errors;  // an unknown repository, a failed delete

  std::string summary() const;
};

// Applies the policy to `repos`. Takes <root>/gc.lock unless dry_run.
rotation_report rotate_releases(const repository_store& repos, const rotation_options& options);

}  // namespace registryd::oci::storage
