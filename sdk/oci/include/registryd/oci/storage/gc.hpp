// Garbage collection of a store (blob_store + repository_store + upload_store under one
// root), online: it runs while the registry keeps serving, in the registry's process (a
// plugin's background thread) or in another (`registryd gc`). docs/gc.md explains the rules.
//
// Mark, per repository: the manifests kept (every revision; with delete_untagged only the
// tagged ones, those younger than the grace period, and what they reach), then everything
// they reach: child manifests, referrers of a kept manifest, config and layer blobs. A
// repository's link to a blob no kept manifest references is removed when both the link and
// the blob are older than the grace period (distribution leaves such links behind after a
// manifest delete, so their blobs are never freed; registryd does not). A blob still linked
// by any repository is marked. When a repository holds a manifest that cannot be read or
// parsed, none of its links are removed (what it references is unknown).
//
// Sweep: blobs not marked and older than the grace period; upload sessions and writer
// temporaries untouched for upload_grace; hidden temporaries that crashes left in
// repositories.
//
// Why a blob reached during the run survives (the GC rule of blob_store.hpp): every path that
// makes a blob reachable publishes or touch()es it before writing the link. The cutoff is the
// file system's clock when the run starts minus the grace, so anything touched after the
// start is younger than the cutoff, even with a grace of 0. A blob is deleted by renaming it
// into <root>/tmp first and reading the mtime of what was renamed: a touch that came before
// the rename shows there (the blob is put back); a touch after it finds no blob and fails,
// so whoever touched it does not link it. Links are removed the same way (renamed aside,
// then the blob's mtime decides). Deleting an untagged manifest re-checks its tags and mtimes
// just before, and keeps what it reaches when it turns out to be in use.
//
// One run at a time per store: a run takes <root>/gc.lock (flock); a second one is skipped
// (report.skipped). A dry run takes no lock and changes nothing.
//
// Scheduling it online (e.g. the Local plugin): call run_gc from a background thread every
// hour or so with the defaults; pass should_stop so stop() does not wait for a long run; log
// the report's one-line summary and its errors. Thread-safety: run_gc may run alongside any
// use of the same stores from other threads and processes.
#pragma once

#include <registryd/oci/storage/repository_store.hpp>
#include <registryd/oci/storage/upload_store.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace registryd::oci::storage {

enum class gc_item_kind {
  blob,       // a blob file (name: the digest)
  link,       // a repository's link to a blob (repository, name: the digest)
  manifest,   // an untagged manifest revision (repository, name: the digest)
  upload,     // an upload session (repository, name: the id)
  temporary,  // a stale temporary file (name: its path)
};

// "blob", "link", "manifest", "upload", "temporary"
const char* to_string(gc_item_kind kind) noexcept;

struct gc_item {
  gc_item_kind kind = gc_item_kind::blob;
  std::string repository;  // "" for blobs and temporaries
  std::string name;
  std::uint64_t bytes = 0; // blobs, uploads, temporaries; 0 for links and manifests
};

struct gc_options {
  // Blobs, links and (with delete_untagged) untagged manifests younger than this are kept.
  // 0 is allowed: what is touched after the run starts is still kept.
  std::chrono::seconds grace{std::chrono::hours(1)};
  // Upload sessions and writer temporaries idle for longer than this are removed.
  std::chrono::seconds upload_grace{std::chrono::hours(24)};
  // Report what would be deleted; change nothing.
  bool dry_run = false;
  // Delete manifests no tag reaches (distribution's --delete-untagged). Off by default: the
  // platform's component images are pulled by digest and are never tagged.
  bool delete_untagged = false;

  // Called once between mark and sweep (tests use it to race the sweep). May be empty.
  std::function<void()> after_mark;
  // Called with each blob, link or manifest chosen for deletion, just before the last check
  // and the delete (not in a dry run): tests race a push against the delete with it.
  std::function<void(const gc_item&)> before_delete;
  // Called with each manifest whose revision was just moved aside, before GC looks whether it
  // is in use (tests race a push against the look with it). May be empty.
  std::function<void(const gc_item&)> after_aside;
  // Called for each thing deleted (or, in a dry run, that would be), as it happens.
  std::function<void(const gc_item&)> on_item;
  // Polled between items; true ends the run early (the report says so). May be empty.
  std::function<bool()> should_stop;
};

struct gc_count {
  std::uint64_t count = 0;
  std::uint64_t bytes = 0;
};

struct gc_report {
  bool dry_run = false;
  bool skipped = false;  // another run holds the lock; nothing was done
  bool stopped = false;  // should_stop ended the run early
  // Deleted, or in a dry run would be deleted.
  gc_count blobs, links, manifests, uploads, temporaries;
  // What stays.
  std::uint64_t repositories = 0;
  gc_count blobs_kept;
  std::uint64_t manifests_kept = 0;
  // Candidates found reachable again during the sweep and kept (a push raced the run).
  std::uint64_t rescued = 0;
  // Failures (a file that could not be removed, a repository whose manifests could not all
  // be read): the run goes on past each.
  std::vector<std::string> errors;
  std::chrono::milliseconds duration{0};

  // "deleted 3 blobs (12.5 MiB), 4 links, 0 manifests, 1 upload (2.0 KiB), 0 temporaries"
  std::string summary() const;
};

// Collects the garbage of the store `repos` and `uploads` are over (they must share a root:
// uploads over repos.blobs()). Never throws for a storage failure; those are in errors.
gc_report run_gc(const repository_store& repos, upload_store& uploads, const gc_options& options);

// "1.5 GiB", "12 B": sizes as the CLI and logs print them.
std::string format_bytes(std::uint64_t bytes);

}  // namespace registryd::oci::storage
