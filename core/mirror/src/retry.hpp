// Retrying registry calls whose failure may pass (oci::client::upstream_error::retryable()),
// with the exponential backoff of a retry_policy.
#pragma once

#include <registryd/mirror/engine.hpp>

#include <chrono>
#include <thread>

namespace registryd::mirror {

// The wait after failed attempt `attempt` (0-based): backoff, 2x backoff, 4x ...
inline std::chrono::milliseconds backoff_of(const retry_policy& p, int attempt) {
  return p.backoff * (1LL << std::min(attempt, 16));
}
inline void wait_before_retry(const retry_policy& p, int attempt) { std::this_thread::sleep_for(backoff_of(p, attempt)); }

// Calls `f` (returning an oci::client::result) until it succeeds, fails for good, or the
// attempts are spent.
template <typename F>
auto with_retries(const retry_policy& p, F f) -> decltype(f()) {
  for (int attempt = 0;; ++attempt) {
    auto r = f();
    if (r || !r.error().retryable() || attempt + 1 >= p.attempts) return r;
    wait_before_retry(p, attempt);
  }
}

}  // namespace registryd::mirror
