// Expected failures as values (STYLE.md): a bad config, a refused switch, an unreadable file.
// C++20 has no std::expected and Boost 1.74 no boost::system::result, so this is the small
// subset we use: a value or an error, nothing thrown.
#pragma once

#include <string>
#include <utility>
#include <variant>

namespace registryd::util {

// A value of type T or an error of type E. The base of result<T> (an error message) and of
// config::checked<T> (a list of field errors).
template <typename T, typename E>
class [[nodiscard]] basic_result {
 public:
  basic_result(T value) : v_(std::in_place_index<0>, std::move(value)) {}  // NOLINT: implicit by design
  basic_result(E e) : v_(std::in_place_index<1>, std::move(e)) {}          // NOLINT: implicit by design

  bool ok() const noexcept { return v_.index() == 0; }
  explicit operator bool() const noexcept { return ok(); }

  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 protected:
  // The error; only when !ok().
  const E& error_value() const { return std::get<1>(v_); }

 private:
  std::variant<T, E> v_;
};

struct error {
  std::string message;
};

template <typename T>
class [[nodiscard]] result : public basic_result<T, error> {
 public:
  using basic_result<T, error>::basic_result;
  const std::string& error_message() const { return this->error_value().message; }
};

// For operations that return nothing but may fail.
struct ok_t {};
using status = result<ok_t>;
inline status ok() { return ok_t{}; }

}  // namespace registryd::util
