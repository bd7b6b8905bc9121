// Checks a store (blob_store + repository_store under one root) for damage and, on request,
// repairs what can be repaired without losing anything that is still good (docs/gc.md):
//
//   check                                           repair
//   every blob re-hashed (streamed) = its name      moved to <root>/quarantine/ (kept for
//     (corrupt_blob; unreadable: the same)            inspection, never served, never GC'd)
//   files in blobs/ that are not blobs (stray_file) moved to <root>/quarantine/
//   every revision file parses (damaged_revision)   rewritten from the manifest's content, or
//                                                     removed when there is none
//   every revision's content exists                 the revision and its tags removed
//     (missing_manifest_content)
//   every manifest parses (invalid_manifest)        none (reported)
//   its config and layers exist (missing_blob)      none: push the image again
//   ... and are linked in the repository            linked
//     (unlinked_blob)
//   its index entries are revisions (missing_child) none: push the image again
//   its subject has its referrer entry              written
//     (missing_referrer)
//   every tag names a digest (damaged_tag) and a    removed
//     revision the repository holds (dangling_tag)
//   every link's blob exists (dangling_link)        removed
//   every referrer entry names a revision with      removed
//     that subject (stale_referrer) and is JSON
//     with that digest (damaged_referrer)           rewritten, or removed
//
// A corrupt blob is moved aside rather than deleted: the bytes may be all an operator has
// left, and a wrongly judged blob (a disk that returned an error once) can be put back by
// hand. The links to it are then dangling and are removed as well, so the registry answers
// "blob unknown" and a push restores it.
//
// fsck may run while the registry serves. A check races a push in flight at worst into a
// false report (a revision written a moment before its referrer entry); each repair re-checks
// its object first. --repair takes <root>/gc.lock like GC (skipped when it is held).
//
// Thread-safety: run_fsck may run alongside any use of the same stores.
#pragma once

#include <registryd/oci/storage/repository_store.hpp>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

namespace registryd::oci::storage {

enum class fsck_problem_kind {
  corrupt_blob,
  stray_file,
  damaged_revision,
  missing_manifest_content,
  invalid_manifest,
  missing_blob,
  unlinked_blob,
  missing_child,
  missing_referrer,
  damaged_tag,
  dangling_tag,
  dangling_link,
  stale_referrer,
  damaged_referrer,
};

// "corrupt blob", "dangling tag", ...
const char* to_string(fsck_problem_kind kind) noexcept;

struct fsck_problem {
  fsck_problem_kind kind = fsck_problem_kind::corrupt_blob;
  std::string repository;        // "" for blobs and stray files
  std::filesystem::path path;    // the file the problem is in
  std::string reason;            // what is wrong, in words
  bool repaired = false;
  std::string repair;            // what the repair did, or why it could not ("" without repair)
};

struct fsck_options {
  bool repair = false;
  // Re-hash every blob (the slow part); false checks only structure.
  bool verify_blobs = true;
  // Called for each problem once it is settled (after its repair, when repairing).
  std::function<void(const fsck_problem&)> on_problem;
  // Polled between objects; true ends the check early.
  std::function<bool()> should_stop;
};

struct fsck_report {
  bool repair = false;
  bool skipped = false;  // repairing, and another GC, repair or rotation holds the lock
  bool stopped = false;
  std::uint64_t blobs = 0, blob_bytes = 0;  // checked
  std::uint64_t repositories = 0, manifests = 0, tags = 0, links = 0, referrers = 0;
  std::vector<fsck_problem> problems;
  std::uint64_t repaired = 0;

  bool clean() const noexcept { return problems.empty() && !skipped; }
  // "checked 12 blobs (3.1 MiB), 2 repositories, 4 manifests, 3 tags, 9 links, 0 referrers:
  // 2 problems, 2 repaired"
  std::string summary() const;
};

fsck_report run_fsck(const repository_store& repos, const fsck_options& options);

}  // namespace registryd::oci::storage
