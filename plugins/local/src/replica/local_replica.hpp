// This replica's side of replica sync: reads the state of the local store (tags, manifests)
// and keeps the tombstones of what was deleted here, in a journal beside the images.
// docs/replica-sync.md.
//
// Deletions are found by comparison, not by hooks: observe() compares the store with what the
// previous observe() saw, and every tag or manifest that vanished gets a tombstone. So a
// delete through the API, `registryd rotate`, `registryd gc --delete-untagged` and a repair all
// leave tombstones, even when registryd was not running when they happened. A tombstone's time
// is bounded by the two observations (the directory's mtime when it falls between them).
//
// The journal lives in <data root>/replica/journal.json (written atomically): it goes with
// the images, so a replica whose store was wiped starts with no memory of deletions and
// copies everything back from its peers instead of deleting it there. Tombstones expire after
// `tombstone_lifetime`; a replica that was away longer may bring a deleted tag back.
//
// Thread-safety: every member function may be called from any thread; observations and
// journal updates are serialised by an internal mutex.
#pragma once

#include "replica/oci_names.hpp"

#include "replica/state.hpp"
#include <registryd/oci/storage/repository_store.hpp>

#include <chrono>
#include <filesystem>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

namespace registryd::local::replica {

inline constexpr std::chrono::hours default_tombstone_lifetime{24 * 7};

// The current time as unix_ns.
unix_ns now_ns() noexcept;
unix_ns to_unix_ns(std::chrono::system_clock::time_point t) noexcept;

class local_replica {
 public:
  // `repos` (and its blob store) must outlive this object. The journal is read from
  // <repos.blobs().root()>/replica/journal.json when present; an unreadable journal is set
  // aside (renamed *.bad) and started afresh: losing tombstones only risks a resurrection.
  explicit local_replica(const storage::repository_store& repos,
                         std::chrono::nanoseconds tombstone_lifetime = default_tombstone_lifetime);

  const storage::repository_store& repositories() const noexcept { return repos_; }
  std::filesystem::path journal_path() const;

  // Walks the store and returns its state with the live tombstones: records a tombstone for
  // every tag and manifest the previous observation saw and this one does not, drops the
  // tombstones a newer tag or manifest superseded and those older than the lifetime, and
  // saves the journal when it changed. `now` is for tests.
  replica_state observe(std::optional<unix_ns> now = std::nullopt);

  // Changes made by sync, each atomic with respect to observe(), so an observation never sees
  // a copied tag or manifest with the copy's time instead of the original push's, nor a
  // deleted one without its tombstone.
  //
  // Points `tag` at `d` (which `repository` must hold) and gives it the time `updated`, unless
  // the tag was set here since the plan to something newer (then it stays, and success).
  storage::store_status set_tag(std::string_view repository, std::string_view tag, const oci::digest& d,
                                unix_ns updated);
  // Stores a manifest (put.tag must be empty) and gives its revision the time `stored`.
  storage::store_result<storage::manifest_record> put_manifest(std::string_view repository,
                                                               const storage::manifest_put& put, unix_ns stored);
  // Records the peer's tombstone (kept when newer than the one held), then deletes the tag when
  // it still points at what it pointed at when planned (`expected`); a tag set since stays.
  storage::store_status delete_tag(std::string_view repository, std::string_view tag, const oci::digest& expected,
                                   const tag_tombstone& t);
  // Records a tombstone for the manifest and for every tag that points at it, then deletes it
  // (its tags go with it, as with the API's delete by digest).
  storage::store_status delete_manifest(std::string_view repository, const oci::digest& d, unix_ns deleted);
  // Records a peer's tombstone for something this replica does not hold (newest kept).
  void adopt_tag_tombstone(std::string_view repository, std::string_view tag, const tag_tombstone& t);
  void adopt_manifest_tombstone(std::string_view repository, const oci::digest& d, unix_ns deleted);

  // Tombstones held (for metrics).
  std::size_t tombstones() const;

 private:
  struct seen_repository {
    std::map<std::string, oci::digest, std::less<>> tags;
    std::map<oci::digest, unix_ns> manifests;
  };
  void load();
  void save_locked();
  void expire_locked(unix_ns now);
  std::size_t tombstones_locked() const;
  bool adopt_tag_locked(std::string_view repository, std::string_view tag, const tag_tombstone& t);
  bool adopt_manifest_locked(std::string_view repository, const oci::digest& d, unix_ns deleted);

  const storage::repository_store& repos_;
  std::chrono::nanoseconds lifetime_;
  mutable std::mutex mutex_;
  bool observed_ = false;  // the journal holds a previous observation
  unix_ns observed_at_ = 0;
  std::map<std::string, seen_repository, std::less<>> seen_;
  // Tombstones only (tags and manifests maps unused).
  std::map<std::string, repository_state, std::less<>> tombstones_;
};

}  // namespace registryd::local::replica
