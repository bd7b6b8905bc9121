// One eviction pass over the cache: every published blob (layers, configs and manifests
// alike, since manifests are blobs too) is weighed by its last pull (access_times, or its mtime
// when no pull is recorded); what the ttl or the size cap gives up is removed; manifests and
// tags left without their bytes are dropped; temporaries a crash left behind are swept; the
// access times are saved. docs/proxy-mode.md, "Eviction".
//
// Thread-safety: run_pass() is called by one thread at a time (the mode's evictor thread, or a
// test); it is safe against concurrent requests and fills.
#pragma once

#include "counters.hpp"
#include "upstream_health.hpp"

#include <registryd/oci/cache/blob_fill.hpp>
#include <registryd/oci/cache/eviction.hpp>
#include <registryd/oci/storage/blob_store.hpp>
#include <registryd/oci/storage/repository_store.hpp>
#include <registryd/sdk/plugin.hpp>

#include <cstddef>
#include <cstdint>

namespace registryd::proxy {

struct eviction_report {
  std::size_t expired = 0;   // evicted for the ttl
  std::size_t over_size = 0; // evicted for the size cap
  std::uint64_t bytes_evicted = 0;
  std::uint64_t bytes_after = 0;
  std::size_t blobs_after = 0;
  std::size_t manifests_dropped = 0;  // revisions whose bytes were evicted
  std::size_t temps_removed = 0;
};

class evictor {
 public:
  // Everything must outlive the evictor.
  evictor(const oci::storage::blob_store& blobs, const oci::storage::repository_store& repos,
          oci::cache::access_times& access, oci::cache::blob_fills& fills, oci::cache::eviction_policy policy,
          counters& c, sdk::host host, clock_fn clock);

  eviction_report run_pass();
  const oci::cache::eviction_policy& policy() const noexcept { return policy_; }

 private:
  const oci::storage::blob_store& blobs_;
  const oci::storage::repository_store& repos_;
  oci::cache::access_times& access_;
  oci::cache::blob_fills& fills_;
  oci::cache::eviction_policy policy_;
  counters& counters_;
  sdk::host host_;
  clock_fn clock_;
};

}  // namespace registryd::proxy
