// When a cache forgets: the last time each cached blob was pulled, kept cheaply, and the
// policy that picks what to evict from it (a time to live, and an optional size cap that
// drops the least recently used first).
//
// Pulls are recorded in memory (a map insert under a mutex: nothing touches the disk on the
// serving path) and saved to one file every so often by the cache's evictor, so a restart
// loses at most the pulls since the last save. A blob with no recorded pull counts as pulled
// when it was published or last touched (its mtime), so a lost file never makes anything look
// older than it is.
//
// Thread-safety: access_times is safe from any number of threads. plan_eviction is a pure
// function.
#pragma once

#include <registryd/oci/digest.hpp>
#include <registryd/oci/storage/store_result.hpp>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <mutex>
#include <optional>
#include <unordered_map>
#include <vector>

namespace registryd::oci::cache {

using time_point = std::chrono::system_clock::time_point;

class access_times {
 public:
  // `file` is where save() writes and load() reads ("<digest> <unix seconds>" per line).
  explicit access_times(std::filesystem::path file);

  // Records a pull of `d` at `now` (later times win).
  void touch(const digest& d, time_point now);
  // The last recorded pull.
  std::optional<time_point> last(const digest& d) const;
  // Forgets `d` (after it was evicted).
  void forget(const digest& d);
  std::size_t size() const;

  // Reads the file, keeping the later of what it says and what is in memory. Lines that do
  // not parse are skipped; a missing file is no error.
  void load();
  // Replaces the file atomically (temporary, fsync, rename, directory fsync).
  storage::store_status save() const;

 private:
  std::filesystem::path file_;
  mutable std::mutex mutex_;
  std::unordered_map<digest, time_point> last_;
};

// One cached blob as the evictor sees it.
struct cache_entry {
  digest blob;
  std::uint64_t size = 0;
  time_point last_access{};
};

struct eviction_policy {
  // Evict what has not been pulled for this long; nullopt: never for age.
  std::optional<std::chrono::seconds> ttl;
  // When the cache holds more than this many bytes, evict the least recently pulled entries
  // until it holds at most `target_bytes` (default: max_bytes). nullopt: no cap.
  std::optional<std::uint64_t> max_bytes;
  std::optional<std::uint64_t> target_bytes;
};

struct eviction_plan {
  std::vector<cache_entry> expired;    // older than the ttl, oldest first
  std::vector<cache_entry> over_size;  // then, to get under the cap, least recently used first
  std::uint64_t bytes_before = 0;
  std::uint64_t bytes_after = 0;
};

// Picks the entries to evict at `now`. Entries accessed at or after `now - ttl` stay (an entry
// pulled exactly ttl ago is kept); ties in the LRU order are broken by digest, so the plan is
// deterministic.
eviction_plan plan_eviction(std::vector<cache_entry> entries, const eviction_policy& policy, time_point now);

}  // namespace registryd::oci::cache
