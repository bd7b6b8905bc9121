// The packages proxy's cache: a bounded, self-healing set of verified blobs (layers, and the
// manifests that lead to them) on disk, with an in-memory index (docs/packages-proxy.md).
//
// - Bounded: when the bytes held pass evict_at (80 % of the cap by default), the least
//   recently used entries are evicted until they are under it again (oci::cache's LRU plan).
//   An entry being read is never evicted: every descriptor handed out holds a shared flock on
//   its file until the host closes it, and eviction takes the file only with an exclusive
//   flock it can get at once.
// - Verified: content enters only through a fill (oci::cache::blob_fills) or put(), both of
//   which check the digest before publishing. Each entry remembers the stamp of its file when
//   it was last verified (inode, size, ctime, which nothing can set back); an entry whose file
//   changed since is re-hashed before it is served, and dropped (and fetched again by the
//   caller) when it no longer matches. A background pass re-hashes entries whose last check is
//   older than the verify interval, to find what the stamp cannot see (bit rot).
// - Persistent: the index is rebuilt from the files at start; the stamps and access times are
//   saved (stamps, access-times) so a restart neither re-hashes nor forgets recency.
//
// Thread-safety: every member function is safe from any thread.
#pragma once

#include <registryd/oci/cache/eviction.hpp>
#include <registryd/oci/digest.hpp>
#include <registryd/oci/storage/blob_store.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string_view>

namespace registryd::packages {

using time_point = std::chrono::system_clock::time_point;

struct cache_counters {
  std::atomic<std::uint64_t> hits{0};
  std::atomic<std::uint64_t> misses{0};
  std::atomic<std::uint64_t> evictions{0};
  std::atomic<std::uint64_t> evicted_bytes{0};
  std::atomic<std::uint64_t> corrupted{0};       // entries found not to match their digest, dropped
  std::atomic<std::uint64_t> verified{0};        // entries re-hashed and found good
  std::atomic<std::uint64_t> upstream_bytes{0};  // verified bytes fetched into the cache
  std::atomic<std::uint64_t> fills_failed{0};
  std::atomic<std::uint64_t> upstream_fetches{0};
};

// What identifies a file's content as last verified: if any of these changed, it is re-hashed.
struct file_stamp {
  std::uint64_t inode = 0;
  std::uint64_t size = 0;
  std::int64_t ctime_ns = 0;
  bool operator==(const file_stamp&) const = default;
};

class package_cache {
 public:
  // Opens (creating) the store under `root`. Nothing is read before load().
  package_cache(std::filesystem::path root, std::uint64_t max_bytes, std::uint64_t evict_at, cache_counters& c,
                std::function<void(std::string_view)> warn);

  oci::storage::blob_store& store() noexcept { return store_; }
  const std::filesystem::path& root() const noexcept { return root_; }

  // Rebuilds the index from the store, then evicts down to the threshold.
  void load(time_point now);
  // Saves stamps and access times (atomically). False when a file could not be written.
  bool save() const;

  // A cached, verified entry, open and pinned until its descriptor is closed; nullopt when not
  // cached, being evicted, or found corrupted (then dropped and counted).
  std::optional<oci::storage::blob_file> open(const oci::digest& d, time_point now);
  // Enters `d`, just published by a fill (or put()), and evicts past the threshold.
  void published(const oci::digest& d, time_point now);
  // Stores a small document (a manifest) whose digest is checked; nullopt on failure.
  std::optional<std::string> put(std::string_view bytes, const oci::digest& d, time_point now);

  // Evicts least recently used unpinned entries until usage is at most evict_at. Returns how
  // many went.
  std::size_t evict(time_point now);
  // Re-hashes entries last verified before `now - age`, oldest first, until `budget` bytes were
  // read or `stop()` says so. Returns how many were checked.
  std::size_t verify_some(std::chrono::seconds age, std::uint64_t budget, time_point now,
                          const std::function<bool()>& stop = {});

  std::uint64_t bytes() const;
  std::size_t entries() const;
  std::uint64_t max_bytes() const noexcept { return max_bytes_; }
  std::uint64_t evict_at() const noexcept { return evict_at_; }

 private:
  struct entry {
    std::uint64_t size = 0;
    file_stamp stamp;          // at the last verification
    time_point verified_at{};  // epoch: never verified by this cache (re-hash before serving)
  };
  // Records `d` as verified now with this stamp, counting its bytes once.
  void verified(const oci::digest& d, const file_stamp& stamp, time_point now);
  // Drops `d` from the index and the store (a corrupted entry).
  void drop(const oci::digest& d, std::string_view why);
  // Hashes the open file; true when it matches `d`.
  static bool content_matches(int fd, const oci::digest& d);

  std::filesystem::path root_;
  oci::storage::blob_store store_;
  oci::cache::access_times access_;
  std::uint64_t max_bytes_;
  std::uint64_t evict_at_;
  cache_counters& counters_;
  std::function<void(std::string_view)> warn_;

  mutable std::mutex mutex_;
  std::map<oci::digest, entry> index_;
  std::uint64_t bytes_ = 0;
  std::mutex evict_mutex_;  // one eviction at a time
};

// The stamp of an open file.
std::optional<file_stamp> stamp_of(int fd);

}  // namespace registryd::packages
