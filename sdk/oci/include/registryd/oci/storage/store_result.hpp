// What storage operations return: a value, or an error with a kind a caller can branch on (a
// missing blob is a 404, a digest mismatch a 400, a failing disk a 500) and a message that
// names the object and the reason.
//
// Thread-safety: plain values.
#pragma once

#include <string>
#include <utility>
#include <variant>

namespace registryd::oci::storage {

enum class errc {
  not_found,        // no such blob, link, manifest, tag or upload session
  digest_mismatch,  // the content does not hash to the digest it was meant to have
  range_mismatch,   // a chunk does not start where an upload session stands
  invalid,          // an argument storage refuses (a repository name, a tag, an upload id)
  io,               // the file system failed; the message names the path and the errno text
};

struct store_error {
  errc code;
  std::string message;
};

// A value of type T or a store_error. [[nodiscard]]: a storage failure ignored is data lost.
template <typename T>
class [[nodiscard]] store_result {
 public:
  store_result(T value) : v_(std::in_place_index<0>, std::move(value)) {}      // NOLINT: implicit
  store_result(store_error e) : v_(std::in_place_index<1>, std::move(e)) {}    // NOLINT: implicit

  bool ok() const noexcept { return v_.index() == 0; }
  explicit operator bool() const noexcept { return ok(); }

  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

  // Only when !ok().
  const store_error& error() const { return std::get<1>(v_); }
  errc code() const { return error().code; }
  const std::string& message() const { return error().message; }

 private:
  std::variant<T, store_error> v_;
};

struct done {};
using store_status = store_result<done>;

inline store_status success() { return done{}; }
inline store_error make_error(errc code, std::string message) {
  return store_error{code, std::move(message)};
}

}  // namespace registryd::oci::storage
