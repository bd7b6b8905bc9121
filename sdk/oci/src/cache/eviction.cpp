#include <registryd/oci/cache/eviction.hpp>

#include "../storage/fs_util.hpp"

#include <algorithm>
#include <charconv>
#include <fstream>
#include <string>

namespace registryd::oci::cache {

access_times::access_times(std::filesystem::path file) : file_(std::move(file)) {}

void access_times::touch(const digest& d, time_point now) {
  std::lock_guard lock(mutex_);
  auto [it, inserted] = last_.try_emplace(d, now);
  if (!inserted && it->second < now) it->second = now;
}

std::optional<time_point> access_times::last(const digest& d) const {
  std::lock_guard lock(mutex_);
  const auto it = last_.find(d);
  if (it == last_.end()) return std::nullopt;
  return it->second;
}

void access_times::forget(const digest& d) {
  std::lock_guard lock(mutex_);
  last_.erase(d);
}

std::size_t access_times::size() const {
  std::lock_guard lock(mutex_);
  return last_.size();
}

void access_times::load() {
  std::ifstream in(file_);
  if (!in) return;
  std::string line;
  while (std::getline(in, line)) {
    const auto space = line.find(' ');
    if (space == std::string::npos) continue;
    const auto d = digest::parse(std::string_view(line).substr(0, space));
    long long seconds = 0;
    const char* first = line.data() + space + 1;
    const char* last = line.data() + line.size();
    const auto [ptr, ec] = std::from_chars(first, last, seconds);
    if (!d || ec != std::errc() || ptr != last || seconds < 0) continue;
    touch(*d, time_point(std::chrono::seconds(seconds)));
  }
}

storage::store_status access_times::save() const {
  std::string text;
  {
    std::lock_guard lock(mutex_);
    text.reserve(last_.size() * 84);
    for (const auto& [d, t] : last_) {
      text += d.str();
      text += ' ';
      text += std::to_string(std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count());
      text += '\n';
    }
  }
  return storage::fsx::write_file_atomic(file_, text);
}

eviction_plan plan_eviction(std::vector<cache_entry> entries, const eviction_policy& policy, time_point now) {
  eviction_plan plan;
  for (const auto& e : entries) plan.bytes_before += e.size;
  // Least recently used first; the digest breaks ties so the same input gives the same plan.
  std::sort(entries.begin(), entries.end(), [](const cache_entry& a, const cache_entry& b) {
    if (a.last_access != b.last_access) return a.last_access < b.last_access;
    return a.blob < b.blob;
  });
  std::uint64_t bytes = plan.bytes_before;
  std::size_t i = 0;
  if (policy.ttl) {
    const time_point cutoff = now - *policy.ttl;
    for (; i < entries.size() && entries[i].last_access < cutoff; ++i) {
      bytes -= entries[i].size;
      plan.expired.push_back(entries[i]);
    }
  }
  if (policy.max_bytes && bytes > *policy.max_bytes) {
    const std::uint64_t target = std::min(policy.target_bytes.value_or(*policy.max_bytes), *policy.max_bytes);
    for (; i < entries.size() && bytes > target; ++i) {
      bytes -= entries[i].size;
      plan.over_size.push_back(entries[i]);
    }
  }
  plan.bytes_after = bytes;
  return plan;
}

}  // namespace registryd::oci::cache
