#include <registryd/auth/verification_cache.hpp>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <cstdint>
#include <cstring>
#include <string>

namespace registryd::auth {

verification_cache::verification_cache(std::size_t capacity, std::chrono::seconds ttl)
    : capacity_(capacity), ttl_(ttl) {
  // Without randomness the cache still works, keyed by a plain SHA-256-like HMAC under zeros;
  // RAND_bytes failing means the process has bigger problems than this.
  if (RAND_bytes(secret_.data(), static_cast<int>(secret_.size())) != 1) secret_.fill(0);
}

verification_cache::key verification_cache::make_key(std::string_view user,
                                                     std::string_view password,
                                                     std::string_view stored_hash) const {
  // Length-prefixed fields: ("ab", "c") and ("a", "bc") must not collide.
  std::string message;
  message.reserve(user.size() + password.size() + stored_hash.size() + 24);
  for (const std::string_view field : {user, password, stored_hash}) {
    const std::uint64_t n = field.size();
    message.append(reinterpret_cast<const char*>(&n), sizeof n);
    message.append(field);
  }
  key k{};
  unsigned int len = 0;
  HMAC(EVP_sha256(), secret_.data(), static_cast<int>(secret_.size()),
       reinterpret_cast<const unsigned char*>(message.data()), message.size(), k.data(), &len);
  OPENSSL_cleanse(message.data(), message.size());
  return k;
}

std::size_t verification_cache::key_hash::operator()(const key& k) const noexcept {
  std::size_t h = 0;
  std::memcpy(&h, k.data(), sizeof h);  // already uniformly distributed
  return h;
}

bool verification_cache::contains(const key& k, time_point now) {
  std::lock_guard lock(mutex_);
  const auto it = index_.find(k);
  if (it == index_.end()) return false;
  if (now >= it->second->expires) {
    lru_.erase(it->second);
    index_.erase(it);
    return false;
  }
  lru_.splice(lru_.begin(), lru_, it->second);
  return true;
}

void verification_cache::insert(const key& k, time_point now) {
  if (capacity_ == 0) return;
  std::lock_guard lock(mutex_);
  if (const auto it = index_.find(k); it != index_.end()) {
    it->second->expires = now + ttl_;
    lru_.splice(lru_.begin(), lru_, it->second);
    return;
  }
  while (lru_.size() >= capacity_) {
    index_.erase(lru_.back().k);
    lru_.pop_back();
  }
  lru_.push_front(entry{k, now + ttl_});
  index_.emplace(k, lru_.begin());
}

std::size_t verification_cache::size() const {
  std::lock_guard lock(mutex_);
  return lru_.size();
}

void verification_cache::clear() {
  std::lock_guard lock(mutex_);
  lru_.clear();
  index_.clear();
}

}  // namespace registryd::auth
