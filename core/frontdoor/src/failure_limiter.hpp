// Failed authentications per client address: a token bucket per address. Each failure takes a
// token; a bucket refills over a minute. An address with an empty bucket is refused (429)
// before any password check, so failing clients cannot fill the CPU with bcrypt checks.
#pragma once

#include <chrono>
#include <cstddef>
#include <mutex>
#include <string>
#include <unordered_map>

namespace registryd::frontdoor {

class failure_limiter {
 public:
  using clock = std::chrono::steady_clock;

  // `per_minute` failures an address may make in a minute; 0 turns the limit off.
  explicit failure_limiter(std::size_t per_minute) : per_minute_(per_minute) {}

  // Seconds until `client` may try again; 0 when it may try now.
  long blocked_for(const std::string& client, clock::time_point now = clock::now());
  // Takes one failure from `client`'s budget.
  void failed(const std::string& client, clock::time_point now = clock::now());

 private:
  struct bucket {
    double tokens;
    clock::time_point updated;
  };
  void refill(bucket& b, clock::time_point now) const;

  std::size_t per_minute_;
  std::mutex mutex_;
  std::unordered_map<std::string, bucket> buckets_;
};

}  // namespace registryd::frontdoor
