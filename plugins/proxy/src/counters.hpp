// What the Proxy mode counts, for /metrics (docs/proxy-mode.md lists every metric).
//
// Thread-safety: atomics; read and bumped from any thread.
#pragma once

#include <registryd/sdk/metrics_text.hpp>

#include <atomic>
#include <cstdint>
#include <string>

namespace registryd::proxy {

struct counters {
  std::atomic<std::uint64_t> blob_hits{0};
  std::atomic<std::uint64_t> blob_misses{0};
  std::atomic<std::uint64_t> manifest_hits{0};
  std::atomic<std::uint64_t> manifest_misses{0};
  // Requests actually sent upstream.
  std::atomic<std::uint64_t> upstream_blob_gets{0};
  std::atomic<std::uint64_t> upstream_blob_heads{0};
  std::atomic<std::uint64_t> upstream_manifest_gets{0};
  std::atomic<std::uint64_t> upstream_manifest_heads{0};
  std::atomic<std::uint64_t> upstream_failures{0};  // unreachable, 5xx or 429
  std::atomic<std::uint64_t> tag_revalidations_unchanged{0};
  std::atomic<std::uint64_t> tag_revalidations_changed{0};
  std::atomic<std::uint64_t> stale_serves{0};
  std::atomic<std::uint64_t> fills_failed{0};
  std::atomic<std::uint64_t> bytes_cached{0};  // verified bytes written into the cache
  std::atomic<std::uint64_t> evictions_ttl{0};
  std::atomic<std::uint64_t> evictions_size{0};
  std::atomic<std::uint64_t> evicted_bytes{0};
  // The cache's size: set by each eviction pass, grown by every fill and manifest stored since.
  std::atomic<std::uint64_t> cache_bytes{0};
  std::atomic<std::uint64_t> cache_blobs{0};
  std::atomic<std::int64_t> last_eviction_pass{0};  // unix seconds; 0 before the first
};

// Prometheus text exposition helpers.
using sdk::metrics_text::counter;
using sdk::metrics_text::gauge;
// One family with a label: `name{label="a"} va`, `name{label="b"} vb`.
void counter2(std::string& out, const char* name, const char* help, const char* label,
              const char* a, std::uint64_t va, const char* b, std::uint64_t vb);

}  // namespace registryd::proxy
