#include <registryd/oci/client/token_cache.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>

namespace registryd::oci::client {

std::optional<token_answer> parse_token_answer(std::string_view body) {
  const auto doc = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (!doc.is_object()) return std::nullopt;
  token_answer out;
  auto text = [&](const char* key) -> std::string {
    const auto it = doc.find(key);
    return it != doc.end() && it->is_string() ? it->get<std::string>() : std::string();
  };
  out.token = text("token");
  if (out.token.empty()) out.token = text("access_token");
  if (out.token.empty()) return std::nullopt;
  const auto exp = doc.find("expires_in");
  if (exp != doc.end() && exp->is_number() && exp->get<double>() >= 1) {
    // Beyond a day is implausible for a registry token and would overflow nothing, but
    // caching it that long would outlive a revocation: cap it.
    out.expires_in = std::chrono::seconds(
        static_cast<long long>(std::min(exp->get<double>(), 86400.0)));
  }
  return out;
}

token_cache::token_cache(std::function<clock::time_point()> now, std::size_t max_entries)
    : now_(std::move(now)), max_entries_(std::max<std::size_t>(max_entries, 1)) {}

std::chrono::milliseconds token_cache::refresh_margin(std::chrono::seconds expires_in) {
  const auto tenth = std::chrono::duration_cast<std::chrono::milliseconds>(expires_in) / 10;
  return std::min<std::chrono::milliseconds>(tenth, std::chrono::seconds(30));
}

std::string token_cache::key(std::string_view realm, std::string_view service,
                             std::string_view scope_key) {
  std::string k(realm);
  k += '\n';
  k += service;
  k += '\n';
  k += scope_key;
  return k;
}

std::optional<std::string> token_cache::get(const std::string& key) const {
  const auto now = now_();
  std::lock_guard lock(mutex_);
  const auto it = entries_.find(key);
  if (it == entries_.end() || now >= it->second.fresh_until) return std::nullopt;
  return it->second.token;
}

void token_cache::put(const std::string& key, std::string token, std::chrono::seconds expires_in) {
  const auto margin = refresh_margin(expires_in);
  const auto lifetime = std::chrono::duration_cast<std::chrono::milliseconds>(expires_in);
  if (lifetime <= margin || lifetime.count() <= 0) return;
  const auto now = now_();
  const auto fresh_until = now + (lifetime - margin);
  std::lock_guard lock(mutex_);
  // Drop what has gone stale, then, if still full, the entry that goes stale first.
  std::erase_if(entries_, [&](const auto& e) { return now >= e.second.fresh_until; });
  if (entries_.size() >= max_entries_ && entries_.find(key) == entries_.end()) {
    auto oldest = std::min_element(entries_.begin(), entries_.end(), [](const auto& a, const auto& b) {
      return a.second.fresh_until < b.second.fresh_until;
    });
    entries_.erase(oldest);
  }
  entries_[key] = entry{std::move(token), fresh_until};
}

void token_cache::erase(const std::string& key) {
  std::lock_guard lock(mutex_);
  entries_.erase(key);
}

std::size_t token_cache::size() const {
  std::lock_guard lock(mutex_);
  return entries_.size();
}

}  // namespace registryd::oci::client
