#include "upstream_health.hpp"

namespace registryd::proxy {

upstream_health::upstream_health(sdk::host host, std::string upstream, clock_fn clock, counters& c)
    : host_(host), upstream_(std::move(upstream)), clock_(std::move(clock)), counters_(c) {}

void upstream_health::succeeded() {
  std::lock_guard lock(mutex_);
  if (up_) return;
  up_ = true;
  host_.info("upstream " + upstream_ + " answers again");
}

void upstream_health::failed(const std::string& why) {
  ++counters_.upstream_failures;
  std::lock_guard lock(mutex_);
  last_failure_ = clock_();
  if (!up_) return;
  up_ = false;
  host_.warn("upstream " + upstream_ + " is unavailable (" + why +
             "): cached content is served as it is, anything not cached fails");
}

bool upstream_health::up() const {
  std::lock_guard lock(mutex_);
  return up_;
}

bool upstream_health::down_within(std::chrono::milliseconds window) const {
  std::lock_guard lock(mutex_);
  return !up_ && clock_() - last_failure_ < window;
}

void upstream_health::stale(const std::string& what, const std::string& why) {
  ++counters_.stale_serves;
  std::lock_guard lock(mutex_);
  const auto now = clock_();
  if (now - last_stale_log_ < std::chrono::seconds(10)) {
    ++stale_unlogged_;
    return;
  }
  std::string line = "serving " + what + " from the cache without revalidation: upstream " + upstream_ + " " + why;
  if (stale_unlogged_ > 0) line += " (and " + std::to_string(stale_unlogged_) + " more stale answers since the last warning)";
  stale_unlogged_ = 0;
  last_stale_log_ = now;
  host_.warn(line);
}

}  // namespace registryd::proxy
