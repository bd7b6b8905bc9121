// What storage operations return: a value, or an error with a kind a caller can branch on (a
// missing blob is a 404, a digest mismatch a 400, a failing disk a 500) and a message that
// names the object and the reason.
//
// Thread-safety: plain values.
#pragma once

#include <registryd/result.hpp>

#include <string>
#include <utility>

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

// A value of type T or a store_error (registryd/result.hpp: code() and error_message() read
// it). [[nodiscard]]: a storage failure ignored is data lost.
template <typename T>
using store_result = registryd::result<T, store_error>;

using registryd::done;
using store_status = store_result<done>;

inline store_status success() { return done{}; }
inline store_error make_error(errc code, std::string message) {
  return store_error{code, std::move(message)};
}

}  // namespace registryd::oci::storage
