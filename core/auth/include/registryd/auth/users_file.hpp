// The users file: who may log in with HTTP basic auth, with which bcrypt hash and access.
//
//   users:
//     - name: reader
//       password: "$2y$10$..."   # bcrypt, e.g. from `htpasswd -nbB reader secret`
//       access: read-only        # read-only (pull) | read-write (pull, push, delete, catalog)
//                                # | mirror-puller (pull, catalog) | mirror-pusher (pull, push,
//                                # catalog): the last two are for replica sync
#pragma once

#include <registryd/auth/access.hpp>
#include <registryd/util/result.hpp>

#include <filesystem>
#include <functional>
#include <map>
#include <string>
#include <string_view>

namespace registryd::auth {

struct user {
  std::string name;
  std::string password_hash;  // bcrypt ($2a$, $2b$ or $2y$)
  access_bits access = 0;
};

// An immutable, validated set of users.
class user_table {
 public:
  const user* find(std::string_view name) const;
  std::size_t size() const noexcept { return users_.size(); }
  const std::map<std::string, user, std::less<>>& users() const noexcept { return users_; }

 private:
  friend util::result<user_table> parse_users(std::string_view yaml_text);
  std::map<std::string, user, std::less<>> users_;
};

// Parses and validates the YAML text. Errors carry the field path and the reason, e.g.
// `users[1].access: must be read-only or read-write`; password values are never echoed.
util::result<user_table> parse_users(std::string_view yaml_text);

// Reads and parses a users file; errors are prefixed with its path.
util::result<user_table> load_users_file(const std::filesystem::path& path);

// True for a bcrypt hash as crypt(3) and htpasswd -B make: $2a$, $2b$ or $2y$, cost 04..31,
// 22 characters of salt and 31 of hash.
bool is_bcrypt_hash(std::string_view text) noexcept;

}  // namespace registryd::auth
