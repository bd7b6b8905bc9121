// Reads one sample from a front door's metrics registry, as /metrics would show it.
#pragma once

#include <prometheus/registry.h>

#include <string>
#include <vector>

namespace frontdoor_test {

// The first sample of the family `name` (with the label `label` equal to `value`, when `label` is
// given), or nullptr when there is none.
inline const prometheus::ClientMetric* metric_sample(const std::vector<prometheus::MetricFamily>& families,
                                                     const std::string& name, const std::string& label = {},
                                                     const std::string& value = {}) {
  for (const auto& family : families) {
    if (family.name != name) continue;
    for (const auto& m : family.metric) {
      if (label.empty()) return &m;
      for (const auto& l : m.label) {
        if (l.name == label && l.value == value) return &m;
      }
    }
  }
  return nullptr;
}

// A counter's value, or -1 when there is no such sample.
inline double counter_value(prometheus::Registry& metrics, const std::string& name, const std::string& label = {},
                            const std::string& value = {}) {
  const auto families = metrics.Collect();
  const auto* m = metric_sample(families, name, label, value);
  return m != nullptr ? m->counter.value : -1;
}

// A gauge's value, or -1 when there is no such sample.
inline double gauge_value(prometheus::Registry& metrics, const std::string& name) {
  const auto families = metrics.Collect();
  const auto* m = metric_sample(families, name);
  return m != nullptr ? m->gauge.value : -1;
}

}  // namespace frontdoor_test
