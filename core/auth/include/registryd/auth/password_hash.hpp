// bcrypt through libcrypt's crypt_r: the only password format the host accepts.
#pragma once

#include <registryd/util/result.hpp>

#include <string>
#include <string_view>

namespace registryd::auth {

// True when `password` hashes to `hash` (a bcrypt hash). The comparison takes the same time
// wherever the first difference is. Deliberately slow: about 2^cost bcrypt rounds (~50-100 ms at
// cost 10). A password containing a NUL byte never matches (crypt would silently truncate it).
// bcrypt only uses the first 72 bytes of a password. Thread-safe.
bool verify_password(std::string_view password, std::string_view hash);

// A new bcrypt ($2b$) hash of `password` with a random salt; `cost` from 4 to 31.
util::result<std::string> make_bcrypt_hash(std::string_view password, int cost = 10);

}  // namespace registryd::auth
