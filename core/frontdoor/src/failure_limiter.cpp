#include "failure_limiter.hpp"

#include <algorithm>
#include <cmath>
#include <iterator>

namespace registryd::frontdoor {
namespace {

// More addresses than this and full buckets are forgotten (they hold nothing worth keeping).
constexpr std::size_t max_tracked = 65536;

}  // namespace

void failure_limiter::refill(bucket& b, clock::time_point now) const {
  const double minutes = std::chrono::duration<double>(now - b.updated).count() / 60.0;
  b.tokens = std::min(static_cast<double>(per_minute_), b.tokens + minutes * static_cast<double>(per_minute_));
  b.updated = now;
}

long failure_limiter::blocked_for(const std::string& client, clock::time_point now) {
  if (per_minute_ == 0) return 0;
  std::lock_guard lock(mutex_);
  const auto it = buckets_.find(client);
  if (it == buckets_.end()) return 0;
  refill(it->second, now);
  if (it->second.tokens >= 1.0) return 0;
  // One token comes back every 60 / per_minute seconds.
  const double seconds = (1.0 - it->second.tokens) * 60.0 / static_cast<double>(per_minute_);
  return std::max(1L, static_cast<long>(std::ceil(seconds)));
}

void failure_limiter::failed(const std::string& client, clock::time_point now) {
  if (per_minute_ == 0) return;
  std::lock_guard lock(mutex_);
  if (buckets_.size() >= max_tracked) {
    for (auto it = buckets_.begin(); it != buckets_.end();) {
      refill(it->second, now);
      it = it->second.tokens >= static_cast<double>(per_minute_) ? buckets_.erase(it) : std::next(it);
    }
  }
  auto [it, inserted] = buckets_.try_emplace(client, bucket{static_cast<double>(per_minute_), now});
  if (!inserted) refill(it->second, now);
  it->second.tokens = std::max(0.0, it->second.tokens - 1.0);
}

}  // namespace registryd::frontdoor
