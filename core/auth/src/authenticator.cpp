#include <registryd/auth/authenticator.hpp>

#include <registryd/auth/basic_credentials.hpp>
#include <registryd/auth/password_hash.hpp>

#include <algorithm>

namespace registryd::auth {

struct authenticator::snapshot {
  user_table users;
  // A hash of a throw-away password, as costly as the dearest real one: an unknown user name
  // costs one bcrypt like a wrong password does, so timing does not tell which names exist.
  // Its result is never used.
  std::string decoy_hash;
};

util::result<std::shared_ptr<const authenticator::snapshot>> authenticator::load(
    const std::filesystem::path& file) {
  auto users = load_users_file(file);
  if (!users) return util::error{users.error_message()};
  auto s = std::make_shared<snapshot>();
  int cost = 0;
  for (const auto& [name, u] : users->users()) {
    // is_bcrypt_hash() has checked that characters 4 and 5 are the cost's digits.
    cost = std::max(cost, (u.password_hash[4] - '0') * 10 + (u.password_hash[5] - '0'));
  }
  if (cost > 0) {
    auto decoy = make_bcrypt_hash("registryd decoy", cost);
    if (!decoy) return util::error{decoy.error_message()};
    s->decoy_hash = std::move(*decoy);
  }
  s->users = std::move(*users);
  return std::shared_ptr<const snapshot>(std::move(s));
}

util::result<std::unique_ptr<authenticator>> authenticator::create(authenticator_options options) {
  auto initial = load(options.users_file);
  if (!initial) return util::error{initial.error_message()};
  return std::unique_ptr<authenticator>(new authenticator(std::move(options), std::move(*initial)));
}

authenticator::authenticator(authenticator_options options, std::shared_ptr<const snapshot> initial)
    : options_(std::move(options)),
      snapshot_(std::move(initial)),
      cache_(options_.cache_capacity, options_.cache_ttl) {}

std::shared_ptr<const authenticator::snapshot> authenticator::current() const {
  std::lock_guard lock(snapshot_mutex_);
  return snapshot_;
}

std::optional<principal> authenticator::authenticate(std::string_view authorization_header) const {
  const auto creds = parse_basic_authorization(authorization_header);
  if (!creds) return std::nullopt;
  const auto snap = current();
  const user* u = snap->users.find(creds->username);
  if (u == nullptr) {
    if (!snap->decoy_hash.empty()) (void)verify_password(creds->password, snap->decoy_hash);
    return std::nullopt;
  }
  const auto now = std::chrono::steady_clock::now();
  const auto key = cache_.make_key(u->name, creds->password, u->password_hash);
  if (!cache_.contains(key, now)) {
    if (!verify_password(creds->password, u->password_hash)) return std::nullopt;
    cache_.insert(key, now);
  }
  return principal{u->name, u->access};
}

util::status authenticator::reload() {
  std::lock_guard reload_lock(reload_mutex_);
  auto next = load(options_.users_file);
  if (!next) return util::error{next.error_message()};
  std::lock_guard lock(snapshot_mutex_);
  snapshot_ = std::move(*next);
  return util::ok();
}

std::optional<access_bits> authenticator::access_of(std::string_view name) const {
  const auto snap = current();
  if (const auto* u = snap->users.find(name)) return u->access;
  return std::nullopt;
}

std::size_t authenticator::user_count() const { return current()->users.size(); }

}  // namespace registryd::auth
