// Replica sync: keeps this Local replica identical to its peers by pulling, from each peer,
// the tags and manifests that differ and the blobs that are missing (FACTS.md section 4).
// docs/replica-sync.md tells the whole story; in short:
//
// - One thread per peer runs a round every `interval` (and at once after wake()): fetch the
//   peer's state, observe the local one (local_replica), plan (plan.hpp), apply.
// - A manifest is fetched by digest and checked against it; an index's children are stored
//   before the index, an image's config and layers before the manifest, and a tag is set only
//   once its manifest is complete, so a tag never points at an incomplete image.
// - A blob is never copied twice: one already in the local blob store (from any repository)
//   is only linked; concurrent copies of one blob (two peers offering it) are coalesced, the
//   second waits for the first and links.
// - A peer that fails does not hold up the others; its state changes (reachable,
//   unreachable, failing) are logged once each, not every round.
//
// Thread-safety: start/stop from one thread; sync_with, wake and metrics from any.
#pragma once

#include "replica/oci_names.hpp"

#include "replica/local_replica.hpp"
#include "replica/peer.hpp"
#include "replica/plan.hpp"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace registryd::local::replica {

enum class log_level { info, warn };

struct engine_options {
  // Time between the rounds with one peer (the end of one to the start of the next).
  std::chrono::milliseconds interval{2000};
  // Where the engine's log lines go (the plugin's host logger). Optional.
  std::function<void(log_level, const std::string&)> log;
};

// What one round with one peer did.
struct round_report {
  bool reached = false;  // the peer's state was read
  std::size_t failures = 0;
  std::string first_failure;  // empty when nothing failed
  std::uint64_t manifests_copied = 0;
  std::uint64_t blobs_copied = 0;
  std::uint64_t blob_bytes_copied = 0;
  std::uint64_t blobs_linked = 0;  // present locally already: linked, not copied
  std::uint64_t tags_set = 0;
  std::uint64_t tags_deleted = 0;
  std::uint64_t manifests_deleted = 0;
  std::uint64_t tombstones_adopted = 0;

  bool ok() const noexcept { return reached && failures == 0; }
  bool changed_anything() const noexcept {
    return manifests_copied + blobs_linked + tags_set + tags_deleted + manifests_deleted + tombstones_adopted > 0;
  }
};

class sync_engine {
 public:
  // `local` (and the stores under it) must outlive the engine.
  sync_engine(local_replica& local, std::vector<std::unique_ptr<peer_source>> peers, engine_options options = {});
  ~sync_engine();
  sync_engine(const sync_engine&) = delete;
  sync_engine& operator=(const sync_engine&) = delete;

  // Starts one thread per peer; the first rounds run at once.
  void start();
  // Stops the threads after their current step (a blob transfer in flight is finished or
  // fails first; the client's timeouts bound it).
  void stop();
  // Makes every peer thread start a round now.
  void wake();

  std::size_t peer_count() const noexcept { return peers_.size(); }
  const std::string& peer_name(std::size_t i) const { return peers_.at(i)->name(); }
  // One round with peer `i` on the calling thread (the peer threads call it; tests too).
  round_report sync_with(std::size_t i);

  // Prometheus text: per peer rounds, failures, copies, last success; the tombstones held.
  void metrics(std::string& out) const;

 private:
  struct peer_stats {
    std::atomic<std::uint64_t> rounds{0};
    std::atomic<std::uint64_t> failed_rounds{0};
    std::atomic<std::uint64_t> errors{0};
    std::atomic<std::uint64_t> manifests_copied{0};
    std::atomic<std::uint64_t> blobs_copied{0};
    std::atomic<std::uint64_t> blob_bytes_copied{0};
    std::atomic<std::uint64_t> blobs_linked{0};
    std::atomic<std::uint64_t> tags_set{0};
    std::atomic<std::uint64_t> tags_deleted{0};
    std::atomic<std::uint64_t> manifests_deleted{0};
    std::atomic<double> last_success{0};  // unix seconds
    std::atomic<double> last_round_seconds{0};
    std::atomic<int> up{0};  // 1 when the last round read the peer's state
  };
  enum class peer_condition { unknown, in_step, failing, unreachable };
  struct inflight_copy {
    bool done = false;
  };
  class round;  // the work of one round (sync_engine.cpp)

  void log(log_level level, const std::string& message) const;
  void report_condition(std::size_t i, const round_report& r);
  void run_peer(std::size_t i);

  local_replica& local_;
  std::vector<std::unique_ptr<peer_source>> peers_;
  engine_options options_;
  std::vector<std::unique_ptr<peer_stats>> stats_;
  std::vector<peer_condition> conditions_;  // touched by the peer's own thread only
  std::vector<std::mutex> round_mutexes_;   // one round per peer at a time

  std::mutex inflight_mutex_;
  std::condition_variable inflight_cv_;
  std::map<oci::digest, std::shared_ptr<inflight_copy>> inflight_;
  std::atomic<std::uint64_t> coalesced_{0};

  std::mutex wake_mutex_;
  std::condition_variable wake_cv_;
  std::uint64_t wake_generation_ = 0;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace registryd::local::replica
