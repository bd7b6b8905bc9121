#include "evictor.hpp"

#include <vector>

namespace registryd::proxy {

evictor::evictor(const oci::storage::blob_store& blobs, const oci::storage::repository_store& repos,
                 oci::cache::access_times& access, oci::cache::blob_fills& fills,
                 oci::cache::eviction_policy policy, counters& c, sdk::host host, clock_fn clock)
    : blobs_(blobs),
      repos_(repos),
      access_(access),
      fills_(fills),
      policy_(policy),
      counters_(c),
      host_(host),
      clock_(std::move(clock)) {}

eviction_report evictor::run_pass() {
  const auto now = clock_();
  eviction_report report;

  std::vector<oci::cache::cache_entry> entries;
  blobs_.for_each_blob([&](const oci::storage::blob_info& b) {
    auto last = b.mtime;
    if (const auto pulled = access_.last(b.digest); pulled && *pulled > last) last = *pulled;
    entries.push_back({b.digest, b.size, last});
  });
  const auto plan = oci::cache::plan_eviction(std::move(entries), policy_, now);

  auto evict = [&](const oci::cache::cache_entry& e) {
    // Removing is safe while the blob is served: an open descriptor keeps its bytes.
    auto st = blobs_.remove(e.blob);
    if (!st && st.code() != oci::storage::errc::not_found) {
      host_.warn("eviction could not remove " + e.blob.str() + ": " + st.error_message());
      return false;
    }
    access_.forget(e.blob);
    report.bytes_evicted += e.size;
    return true;
  };
  for (const auto& e : plan.expired) {
    if (evict(e)) ++report.expired;
  }
  for (const auto& e : plan.over_size) {
    if (evict(e)) ++report.over_size;
  }

  // Revisions and tags whose manifest bytes are gone would only ever be misses: drop them.
  for (const auto& name : repos_.repositories()) {
    std::vector<oci::digest> gone;
    repos_.for_each_manifest(name, [&](const oci::storage::manifest_record& m) {
      if (!blobs_.exists(m.digest)) gone.push_back(m.digest);
    });
    for (const auto& d : gone) {
      // Checked again: a pull may have fetched it anew meanwhile.
      if (!blobs_.exists(d) && repos_.delete_manifest(name, d)) ++report.manifests_dropped;
    }
  }
  report.temps_removed = fills_.sweep_temps(now);

  std::size_t blobs_after = 0;
  std::uint64_t bytes_after = 0;
  blobs_.for_each_blob([&](const oci::storage::blob_info& b) {
    ++blobs_after;
    bytes_after += b.size;
  });
  report.blobs_after = blobs_after;
  report.bytes_after = bytes_after;

  counters_.evictions_ttl += report.expired;
  counters_.evictions_size += report.over_size;
  counters_.evicted_bytes += report.bytes_evicted;
  counters_.cache_bytes = bytes_after;
  counters_.cache_blobs = blobs_after;
  counters_.last_eviction_pass =
      std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count();

  if (auto st = access_.save(); !st) host_.warn("cannot save the cache's access times: " + st.error_message());
  if (report.expired + report.over_size > 0) {
    host_.info("cache eviction: " + std::to_string(report.expired) + " blobs not pulled for " +
               std::to_string(policy_.ttl ? policy_.ttl->count() : 0) + " s, " +
               std::to_string(report.over_size) + " least recently used over the size cap; " +
               std::to_string(report.bytes_evicted) + " bytes freed, " + std::to_string(bytes_after) +
               " bytes in " + std::to_string(blobs_after) + " blobs remain");
  }
  return report;
}

}  // namespace registryd::proxy
