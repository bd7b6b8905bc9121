// Remembers recent successful password verifications so that a client sending the same basic
// credentials with every request pays for bcrypt once per TTL, not once per request.
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <list>
#include <mutex>
#include <string_view>
#include <unordered_map>

namespace registryd::auth {

// Bounded (least recently used entries go first) and time-limited; thread-safe. Entries are
// keyed by an HMAC-SHA-256, under a key random per process, of user name, password and the
// stored hash: no password is kept, a changed hash or password never matches an old entry, and
// a memory dump gives no precomputable table. Only successes are ever inserted.
class verification_cache {
 public:
  using key = std::array<unsigned char, 32>;
  using time_point = std::chrono::steady_clock::time_point;

  // capacity 0 disables the cache.
  verification_cache(std::size_t capacity, std::chrono::seconds ttl);

  key make_key(std::string_view user, std::string_view password,
               std::string_view stored_hash) const;

  // True when `k` was inserted less than ttl before `now`. Expired entries are dropped.
  bool contains(const key& k, time_point now);
  void insert(const key& k, time_point now);
  std::size_t size() const;
  void clear();

 private:
  struct key_hash {
    std::size_t operator()(const key& k) const noexcept;
  };
  struct entry {
    key k;
    time_point expires;
  };

  const std::size_t capacity_;
  const std::chrono::seconds ttl_;
  std::array<unsigned char, 32> secret_{};
  mutable std::mutex mutex_;
  std::list<entry> lru_;  // most recently used first
  std::unordered_map<key, std::list<entry>::iterator, key_hash> index_;
};

}  // namespace registryd::auth
