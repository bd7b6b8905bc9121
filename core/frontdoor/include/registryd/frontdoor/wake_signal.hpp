#pragma once

// What parked requests (long polls, docs/frontdoor.md "Long polls") wait on.

#include <cstdint>
#include <functional>
#include <map>
#include <mutex>

namespace registryd::frontdoor {

// Wakes every request parked on it. A handler that parks reads generation() before it decides
// to: a notify() between that reading and the parking wakes the request at once instead of
// being missed. Thread-safe.
class wake_signal {
 public:
  using waiter = std::function<void()>;

  std::uint64_t generation() const {
    std::lock_guard lock(mutex_);
    return generation_;
  }

  // Registers `w`, called once (on the notifying thread) by the next notify(). When the
  // generation moved past `seen` already, calls `w` now and returns 0; else returns an id for
  // remove().
  std::uint64_t add(waiter w, std::uint64_t seen) {
    {
      std::lock_guard lock(mutex_);
      if (seen == generation_) {
        const std::uint64_t id = ++next_id_;
        waiters_.emplace(id, std::move(w));
        return id;
      }
    }
    w();
    return 0;
  }

  // Forgets a waiter that was not called (its request was woken by its deadline or ended).
  void remove(std::uint64_t id) {
    std::lock_guard lock(mutex_);
    waiters_.erase(id);
  }

  // Calls every waiter registered now, once, and moves to the next generation.
  void notify() {
    std::map<std::uint64_t, waiter> woken;
    {
      std::lock_guard lock(mutex_);
      ++generation_;
      woken.swap(waiters_);
    }
    for (auto& [id, w] : woken) w();
  }

  std::size_t parked() const {
    std::lock_guard lock(mutex_);
    return waiters_.size();
  }

 private:
  mutable std::mutex mutex_;
  std::uint64_t generation_ = 0;
  std::uint64_t next_id_ = 0;
  std::map<std::uint64_t, waiter> waiters_;
};

}  // namespace registryd::frontdoor
