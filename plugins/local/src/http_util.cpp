#include "http_util.hpp"

#include <charconv>

namespace registryd::local {
namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::optional<std::uint64_t> to_u64(std::string_view s) {
  std::uint64_t v = 0;
  if (s.empty()) return std::nullopt;
  const auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc{} || ptr != s.data() + s.size()) return std::nullopt;
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

std::optional<std::string> percent_decode(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '%') {
      out.push_back(text[i]);
      continue;
    }
    if (i + 2 >= text.size()) return std::nullopt;
    const int hi = hex_value(text[i + 1]);
    const int lo = hex_value(text[i + 2]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out.push_back(static_cast<char>(hi * 16 + lo));
    i += 2;
  }
  return out;
}

std::optional<std::string> query_value(const sdk::request& req, std::string_view key) {
  const auto raw = req.query_param(key);
  if (!raw) return std::nullopt;
  return percent_decode(*raw);
}

std::string header_values(const sdk::request& req, std::string_view name) {
  std::string out;
  const registryd_request* r = req.raw();
  for (std::size_t i = 0; i < r->header_count; ++i) {
    if (!iequals(sdk::from_abi(r->headers[i].name), name)) continue;
    if (!out.empty()) out += ", ";
    out += sdk::from_abi(r->headers[i].value);
  }
  return out;
}

range_request parse_range(std::string_view header, std::uint64_t size) {
  range_request whole;
  std::string_view h = trim(header);
  if (h.empty() || h.size() < 6 || !iequals(h.substr(0, 6), "bytes=")) return whole;
  h = trim(h.substr(6));
  if (h.find(',') != std::string_view::npos) return whole;
  const auto dash = h.find('-');
  if (dash == std::string_view::npos) return whole;
  const std::string_view a = trim(h.substr(0, dash));
  const std::string_view b = trim(h.substr(dash + 1));
  range_request r;
  if (a.empty()) {  // suffix: the last n bytes
    const auto n = to_u64(b);
    if (!n) return whole;
    if (*n == 0 || size == 0) return {range_kind::unsatisfiable, {}};
    r.range = {*n >= size ? 0 : size - *n, size - 1};
  } else {
    const auto first = to_u64(a);
    if (!first) return whole;
    std::uint64_t last = size == 0 ? 0 : size - 1;
    if (!b.empty()) {
      const auto l = to_u64(b);
      if (!l || *l < *first) return whole;  // syntactically invalid: ignored (RFC 9110)
      last = std::min(*l, last);
    }
    if (*first >= size) return {range_kind::unsatisfiable, {}};
    r.range = {*first, last};
  }
  r.kind = range_kind::partial;
  return r;
}

std::optional<byte_range> parse_content_range(std::string_view header) {
  std::string_view h = trim(header);
  if (h.size() >= 6 && iequals(h.substr(0, 6), "bytes ")) h = trim(h.substr(6));
  if (h.size() >= 6 && iequals(h.substr(0, 6), "bytes=")) h = trim(h.substr(6));
  if (const auto slash = h.find('/'); slash != std::string_view::npos) h = h.substr(0, slash);
  const auto dash = h.find('-');
  if (dash == std::string_view::npos) return std::nullopt;
  const auto first = to_u64(trim(h.substr(0, dash)));
  const auto last = to_u64(trim(h.substr(dash + 1)));
  if (!first || !last || *last < *first) return std::nullopt;
  return byte_range{*first, *last};
}

std::string upload_range(std::uint64_t size) {
  return "0-" + std::to_string(size == 0 ? 0 : size - 1);
}

std::string percent_encode(std::string_view text) {
  static constexpr char hex[] = "0123456789ABCDEF";
  std::string out;
  for (const char c : text) {
    const bool unreserved = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                            c == '-' || c == '.' || c == '_' || c == '~' || c == '/';
    if (unreserved) {
      out.push_back(c);
    } else {
      const auto u = static_cast<unsigned char>(c);
      out += '%';
      out += hex[u >> 4];
      out += hex[u & 0xf];
    }
  }
  return out;
}

std::string next_link(std::string_view path, std::uint64_t n, std::string_view last) {
  return "<" + std::string(path) + "?n=" + std::to_string(n) + "&last=" + percent_encode(last) +
         ">; rel=\"next\"";
}

}  // namespace registryd::local
