// Expected failures as values (STYLE.md), one template for the whole code base: the host, the
// SDK, the plugins. C++20 has no std::expected and Boost 1.74 no boost::system::result, so this
// is the small subset we use: a value or an error, nothing thrown.
//
//   registryd::result<T>       a T, or a registryd::error (a message fit to show a user)
//   registryd::result<T, E>    a T, or a domain's own error: oci::client::upstream_error (kind,
//                              status, code, headers), oci::storage::store_error (errc and
//                              message), config::field_errors
//   registryd::status          result<done>: an operation that returns nothing but may fail
//
// Accessors are the same for every E: ok() and operator bool, value() / * / ->, error();
// error_message() when E has a `message`, code() when E has a `code`.
//
// Header-only; plain values, thread-safe as far as T and E are.
#pragma once

#include <string>
#include <utility>
#include <variant>

namespace registryd {

// The value of an operation that succeeds with nothing to return.
struct done {};

// An error that is a message.
struct error {
  std::string message;
};

template <typename T, typename E = error>
class [[nodiscard]] result {
 public:
  using value_type = T;
  using error_type = E;

  result(T value) : v_(std::in_place_index<0>, std::move(value)) {}  // NOLINT: implicit by design
  result(E e) : v_(std::in_place_index<1>, std::move(e)) {}          // NOLINT: implicit by design

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
  const E& error() const& { return std::get<1>(v_); }
  E&& error() && { return std::get<1>(std::move(v_)); }
  const std::string& error_message() const
    requires requires(const E& e) { e.message; }
  {
    return error().message;
  }
  auto code() const
    requires requires(const E& e) { e.code; }
  {
    return error().code;
  }

 private:
  std::variant<T, E> v_;
};

using status = result<done>;
inline status ok() { return done{}; }
inline error fail(std::string message) { return error{std::move(message)}; }

}  // namespace registryd
