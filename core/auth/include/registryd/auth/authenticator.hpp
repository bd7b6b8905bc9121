// Basic authentication for the HTTPS front door, against the users file.
#pragma once

#include <registryd/auth/access.hpp>
#include <registryd/auth/users_file.hpp>
#include <registryd/auth/verification_cache.hpp>
#include <registryd/util/result.hpp>

#include <chrono>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

namespace registryd::auth {

struct principal {
  std::string name;
  access_bits access = 0;
  bool operator==(const principal&) const = default;
};

struct authenticator_options {
  std::filesystem::path users_file;
  std::chrono::seconds cache_ttl{300};
  std::size_t cache_capacity = 1024;  // successful verifications remembered; 0 disables
};

// Thread-safe: authenticate() may run on any number of threads while reload() replaces the
// users; each call sees either the old or the new table, never a mix.
class authenticator {
 public:
  // Loads the users file; fails with its path, field path and reason when it is unusable.
  static util::result<std::unique_ptr<authenticator>> create(authenticator_options options);

  // The user behind an Authorization header value, or nullopt when the header is missing or
  // malformed, the user is unknown or the password is wrong (the caller answers 401 with
  // basic_challenge). Access comes from the users file as loaded now, even on a cache hit.
  std::optional<principal> authenticate(std::string_view authorization_header) const;

  // Reads the users file again. When it is unusable the loaded users stay as they were and the
  // error says why.
  util::status reload();

  // The access the users file gives `name` now; nullopt for a name it does not hold.
  std::optional<access_bits> access_of(std::string_view name) const;

  std::size_t user_count() const;
  std::size_t cached_verifications() const { return cache_.size(); }

 private:
  struct snapshot;
  authenticator(authenticator_options options, std::shared_ptr<const snapshot> initial);
  static util::result<std::shared_ptr<const snapshot>> load(const std::filesystem::path& file);
  std::shared_ptr<const snapshot> current() const;

  const authenticator_options options_;
  mutable std::mutex snapshot_mutex_;  // guards only the pointer swap and copy
  std::shared_ptr<const snapshot> snapshot_;
  std::mutex reload_mutex_;  // one reload at a time
  mutable verification_cache cache_;
};

}  // namespace registryd::auth
