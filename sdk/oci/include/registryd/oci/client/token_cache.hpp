// Bearer tokens from a registry's token realm: the realm's answer parsed, and a cache of
// tokens per (realm, service, scopes) that forgets each token shortly before it expires.
//
// Thread-safety: token_cache is safe to use from many threads; parse_token_answer is pure.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

namespace registryd::oci::client {

// The token spec's default lifetime when the realm gives no `expires_in`.
inline constexpr std::chrono::seconds default_token_lifetime{60};

struct token_answer {
  std::string token;
  std::chrono::seconds expires_in{default_token_lifetime};
};

// Reads the realm's JSON answer: `token`, or `access_token` (OAuth2 style) when `token` is
// absent or empty; `expires_in` in seconds, default 60 when absent or not positive. nullopt when
// the text is not JSON or holds neither token. `issued_at` is ignored: the local receive time
// is the start of the lifetime, so a skewed upstream clock does no harm.
std::optional<token_answer> parse_token_answer(std::string_view body);

class token_cache {
 public:
  using clock = std::chrono::steady_clock;
  // `now` lets tests drive time; `max_entries` bounds memory (the oldest expiry goes first).
  explicit token_cache(std::function<clock::time_point()> now = &clock::now,
                       std::size_t max_entries = 1024);

  // The cached token for `key` while it is still fresh, else nullopt.
  std::optional<std::string> get(const std::string& key) const;
  // Keeps `token` until refresh_margin(expires_in) before it expires. A lifetime too short to
  // be worth keeping (at most the margin) is not cached.
  void put(const std::string& key, std::string token, std::chrono::seconds expires_in);
  void erase(const std::string& key);
  std::size_t size() const;

  // How long before expiry a token is dropped: a tenth of its lifetime, at most 30 s, so a
  // request never sets out with a token that expires on the way.
  static std::chrono::milliseconds refresh_margin(std::chrono::seconds expires_in);

  // The key of a token: realm, service and scope_key, joined with newlines.
  static std::string key(std::string_view realm, std::string_view service,
                         std::string_view scope_key);

 private:
  struct entry {
    std::string token;
    clock::time_point fresh_until;
  };
  std::function<clock::time_point()> now_;
  std::size_t max_entries_;
  mutable std::mutex mutex_;
  std::map<std::string, entry, std::less<>> entries_;
};

}  // namespace registryd::oci::client
