// Internal to the mirror engine: retrying registry calls whose failure may pass
// (oci::client::upstream_error::retryable()) with the exponential backoff of a retry_policy,
// waits that end early when the transfer is cancelled, and running a transfer's blobs on
// several threads.
#pragma once

#include <registryd/mirror/engine.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace registryd::mirror {

inline bool cancelled(const transfer_options& t) {
  return t.cancel != nullptr && t.cancel->load(std::memory_order_relaxed);
}

// The wait after failed attempt `attempt` (0-based): backoff, 2x backoff, 4x ...
inline std::chrono::milliseconds backoff_of(const retry_policy& p, int attempt) {
  return p.backoff * (1LL << std::min(attempt, 16));
}

// Sleeps the backoff of `attempt`, in steps of 50 ms so a cancel is seen at once. False when
// the transfer was cancelled.
inline bool wait_before_retry(const transfer_options& t, int attempt) {
  const auto until = std::chrono::steady_clock::now() + backoff_of(t.retry, attempt);
  while (!cancelled(t)) {
    const auto now = std::chrono::steady_clock::now();
    if (now >= until) return true;
    std::this_thread::sleep_for(std::min<std::chrono::steady_clock::duration>(until - now, std::chrono::milliseconds(50)));
  }
  return false;
}

// Calls `f` (returning an oci::client::result) until it succeeds, fails for good, the
// attempts are spent, or the transfer is cancelled.
template <typename F>
auto with_retries(const transfer_options& t, F f) -> decltype(f()) {
  for (int attempt = 0;; ++attempt) {
    auto r = f();
    if (r || !r.error().retryable() || attempt + 1 >= t.retry.attempts) return r;
    if (!wait_before_retry(t, attempt)) return r;
  }
}

// A progress sink the engine's workers share: each call is made under a lock.
class locked_progress final : public progress_sink {
 public:
  explicit locked_progress(progress_sink& inner) : inner_(inner) {}
  void begin(std::string_view verb, std::uint64_t total_bytes, std::size_t total_items) override {
    std::lock_guard lock(m_);
    inner_.begin(verb, total_bytes, total_items);
  }
  void add_bytes(std::uint64_t n) override {
    std::lock_guard lock(m_);
    inner_.add_bytes(n);
  }
  void item(std::string_view how, const oci::digest& d, std::uint64_t size) override {
    std::lock_guard lock(m_);
    inner_.item(how, d, size);
  }
  void line(std::string_view text) override {
    std::lock_guard lock(m_);
    inner_.line(text);
  }
  void end() override {
    std::lock_guard lock(m_);
    inner_.end();
  }

 private:
  progress_sink& inner_;
  std::mutex m_;
};

// Runs `work(i)` for i in [0, count) on up to `parallel` threads (the calling thread is one of
// them). A `work` that returns an error message stops the others from taking more; the first
// such message is returned ("" when every item went through). A cancel stops them as well and
// returns interrupted_error.
inline std::string run_parallel(const transfer_options& t, std::size_t count,
                                const std::function<std::string(std::size_t)>& work) {
  std::atomic<std::size_t> next{0};
  std::atomic<bool> stop{false};
  std::mutex m;
  std::string first_error;
  const auto worker = [&] {
    for (;;) {
      if (stop.load() || cancelled(t)) return;
      const std::size_t i = next.fetch_add(1);
      if (i >= count) return;
      auto err = work(i);
      if (!err.empty()) {
        std::lock_guard lock(m);
        if (first_error.empty()) first_error = std::move(err);
        stop = true;
        return;
      }
    }
  };
  const std::size_t threads = std::max<std::size_t>(1, std::min(t.parallel, count));
  std::vector<std::thread> pool;
  pool.reserve(threads - 1);
  for (std::size_t i = 1; i < threads; ++i) pool.emplace_back(worker);
  worker();
  for (auto& th : pool) th.join();
  if (cancelled(t)) return std::string(interrupted_error);
  return first_error;
}

}  // namespace registryd::mirror
