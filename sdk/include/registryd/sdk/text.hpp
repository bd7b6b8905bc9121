// Small text helpers every part of registryd needs for HTTP and config text: ASCII
// case-insensitive comparison (header names, auth schemes, units) and trimming of optional
// whitespace (RFC 9110 OWS: spaces and tabs). One copy, for the host, the SDK and plugins.
//
// Thread-safety: pure functions.
#pragma once

#include <string_view>

namespace registryd::sdk {

constexpr char ascii_lower(char c) noexcept { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

// ASCII case-insensitive equality.
constexpr bool iequals(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (ascii_lower(a[i]) != ascii_lower(b[i])) return false;
  }
  return true;
}

// `text` starts with `prefix`, ASCII case-insensitively.
constexpr bool istarts_with(std::string_view text, std::string_view prefix) noexcept {
  return text.size() >= prefix.size() && iequals(text.substr(0, prefix.size()), prefix);
}

// Without leading and trailing characters of `blank` (by default spaces and tabs).
constexpr std::string_view trim(std::string_view s, std::string_view blank = " \t") noexcept {
  while (!s.empty() && blank.find(s.front()) != std::string_view::npos) s.remove_prefix(1);
  while (!s.empty() && blank.find(s.back()) != std::string_view::npos) s.remove_suffix(1);
  return s;
}

}  // namespace registryd::sdk
