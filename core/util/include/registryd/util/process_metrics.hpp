// The standard process metrics (process_cpu_seconds_total, process_resident_memory_bytes,
// process_virtual_memory_bytes, process_open_fds, process_max_fds,
// process_start_time_seconds), read from /proc/self at each scrape, and
// registryd_build_info{version}.
#pragma once

#include <prometheus/collectable.h>
#include <prometheus/metric_family.h>

#include <vector>

namespace registryd::util {

class process_collector final : public prometheus::Collectable {
 public:
  // What a scrape reports. A value /proc does not give (another kernel) is left out.
  std::vector<prometheus::MetricFamily> Collect() const override;
};

}  // namespace registryd::util
