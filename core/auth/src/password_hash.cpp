#include <registryd/auth/password_hash.hpp>

#include <crypt.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>

#include <cstring>
#include <memory>

namespace registryd::auth {
namespace {

// crypt_r's work area is ~32 KiB: too big for every thread's stack, so it lives on the heap,
// zeroed (which is how libxcrypt wants it initialised) and wiped afterwards.
struct crypt_area {
  crypt_area() : data(std::make_unique<crypt_data>()) {}
  ~crypt_area() { OPENSSL_cleanse(data.get(), sizeof(crypt_data)); }
  crypt_area(const crypt_area&) = delete;
  crypt_area& operator=(const crypt_area&) = delete;
  std::unique_ptr<crypt_data> data;
};

// A NUL-terminated copy of a secret, wiped when it goes.
struct secret_string {
  explicit secret_string(std::string_view s) : text(s) {}
  ~secret_string() { OPENSSL_cleanse(text.data(), text.size()); }
  secret_string(const secret_string&) = delete;
  secret_string& operator=(const secret_string&) = delete;
  std::string text;
};

}  // namespace

bool verify_password(std::string_view password, std::string_view hash) {
  if (password.find('\0') != std::string_view::npos) return false;
  if (hash.size() < 7 || !hash.starts_with("$2")) return false;
  const secret_string pw(password);
  const std::string setting(hash);
  crypt_area area;
  const char* out = ::crypt_r(pw.text.c_str(), setting.c_str(), area.data.get());
  // libxcrypt signals failure with NULL or a string starting with '*'.
  if (out == nullptr || out[0] != '$') return false;
  const std::size_t len = std::strlen(out);
  return len == hash.size() && CRYPTO_memcmp(out, hash.data(), len) == 0;
}

util::result<std::string> make_bcrypt_hash(std::string_view password, int cost) {
  if (cost < 4 || cost > 31) return util::error{"bcrypt cost must be between 4 and 31"};
  if (password.find('\0') != std::string_view::npos) {
    return util::error{"a password must not contain a NUL byte"};
  }
  unsigned char random[16];
  if (RAND_bytes(random, sizeof random) != 1) return util::error{"no random bytes for a salt"};
  char setting[CRYPT_GENSALT_OUTPUT_SIZE];
  if (::crypt_gensalt_rn("$2b$", static_cast<unsigned long>(cost),
                         reinterpret_cast<const char*>(random), sizeof random, setting,
                         sizeof setting) == nullptr) {
    return util::error{"crypt_gensalt_rn failed for bcrypt"};
  }
  const secret_string pw(password);
  crypt_area area;
  const char* out = ::crypt_r(pw.text.c_str(), setting, area.data.get());
  if (out == nullptr || out[0] != '$') return util::error{"crypt_r failed for bcrypt"};
  return std::string(out);
}

}  // namespace registryd::auth
