// Expected failures as values for the SDK (plugins never link core, so this mirrors
// registryd::util::result): a value or an error message, nothing thrown.
#pragma once

#include <string>
#include <utility>
#include <variant>

namespace registryd::oci {

struct error {
  std::string message;
};

// A value of type T, or an error whose message is fit to show a user or to put in an OCI
// error's detail. Not thread-safe beyond what T is.
template <typename T>
class [[nodiscard]] result {
 public:
  result(T value) : v_(std::in_place_index<0>, std::move(value)) {}  // NOLINT: implicit by design
  result(error e) : v_(std::in_place_index<1>, std::move(e)) {}      // NOLINT: implicit by design

  bool ok() const noexcept { return v_.index() == 0; }
  explicit operator bool() const noexcept { return ok(); }

  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

  // The message; only when !ok().
  const std::string& error_message() const { return std::get<1>(v_).message; }

 private:
  std::variant<T, error> v_;
};

// For operations that return nothing but may fail.
struct ok_t {};
using status = result<ok_t>;
inline status ok() { return ok_t{}; }
inline error fail(std::string message) { return error{std::move(message)}; }

}  // namespace registryd::oci
