#include "http.hpp"

#include <charconv>
#include <optional>

namespace registryd::proxy {
namespace {

std::optional<std::uint64_t> number(std::string_view s) {
  std::uint64_t v = 0;
  const auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || ptr != s.data() + s.size()) return std::nullopt;
  return v;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? char(c - 'A' + 'a') : c; };
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

}  // namespace

range_request parse_range(std::string_view header, std::uint64_t size) {
  range_request r;
  header = trim(header);
  constexpr std::string_view unit = "bytes=";
  if (header.substr(0, unit.size()) != unit) return r;
  const std::string_view spec = trim(header.substr(unit.size()));
  if (spec.find(',') != std::string_view::npos) return r;  // several ranges: served whole
  const auto dash = spec.find('-');
  if (dash == std::string_view::npos) return r;
  const auto first_text = trim(spec.substr(0, dash));
  const auto last_text = trim(spec.substr(dash + 1));
  if (first_text.empty()) {  // suffix: the last n bytes
    const auto n = number(last_text);
    if (!n) return r;
    if (*n == 0 || size == 0) {
      r.kind = range_kind::unsatisfiable;
      return r;
    }
    r.kind = range_kind::partial;
    r.length = std::min(*n, size);
    r.first = size - r.length;
    return r;
  }
  const auto first = number(first_text);
  if (!first) return r;
  std::uint64_t last = size == 0 ? 0 : size - 1;
  if (!last_text.empty()) {
    const auto l = number(last_text);
    if (!l || *l < *first) return r;
    last = std::min(*l, last);
  }
  if (*first >= size) {
    r.kind = range_kind::unsatisfiable;
    return r;
  }
  r.kind = range_kind::partial;
  r.first = *first;
  r.length = last - *first + 1;
  return r;
}

std::string header_values(const sdk::request& req, std::string_view name) {
  std::string out;
  const registryd_request* raw = req.raw();
  for (std::size_t i = 0; i < raw->header_count; ++i) {
    if (!iequals(sdk::from_abi(raw->headers[i].name), name)) continue;
    if (!out.empty()) out += ", ";
    out += sdk::from_abi(raw->headers[i].value);
  }
  return out;
}

}  // namespace registryd::proxy
