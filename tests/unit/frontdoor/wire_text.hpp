// What the front-door tests look for in the bytes a server sent.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace frontdoor_test {

// How many times `what` occurs in `text`.
inline std::size_t count(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (auto pos = text.find(what); pos != std::string::npos; pos = text.find(what, pos + 1)) ++n;
  return n;
}

// Whether `body` is the echo plugin's pattern from its start: 'a' to 'z', repeated.
inline bool is_pattern(std::string_view body) {
  for (std::size_t i = 0; i < body.size(); ++i) {
    if (body[i] != static_cast<char>('a' + i % 26)) return false;
  }
  return true;
}

}  // namespace frontdoor_test
