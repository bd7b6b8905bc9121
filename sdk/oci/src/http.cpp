#include <registryd/oci/http.hpp>

#include <registryd/sdk/text.hpp>

#include <algorithm>
#include <charconv>

namespace registryd::oci::http {
namespace {

using sdk::iequals;
using sdk::trim;

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool all_digits(std::string_view s) {
  if (s.empty()) return false;
  for (const char c : s) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

std::optional<std::uint64_t> to_u64(std::string_view s) {
  if (!all_digits(s)) return std::nullopt;
  std::uint64_t v = 0;
  const auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc{} || ptr != s.data() + s.size()) return std::nullopt;
  return v;
}

// A position in a Range: digits only; more than fit in 64 bits reads as the largest value
// (it is past any end, and clamped there).
std::optional<std::uint64_t> to_position(std::string_view s) {
  if (!all_digits(s)) return std::nullopt;
  if (const auto v = to_u64(s)) return v;
  return UINT64_MAX;
}

std::string quoted(const digest& d) { return "\"" + d.str() + "\""; }

void set_content_headers(sdk::response& res, const digest& d, const answer_headers& h = {}) {
  if (h.content_digest) res.header("Docker-Content-Digest", d.str());
  res.header("ETag", quoted(d));
  // Content-addressed: what this URL names can never change.
  res.header("Cache-Control", h.cache_control);
}

// If-None-Match names this content: 304, nothing else to send.
bool answered_not_modified(const sdk::request& req, sdk::response& res, const digest& d) {
  if (!not_modified(req, d)) return false;
  res.status(304);
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
  const range_request whole;
  std::string_view h = trim(header);
  if (!sdk::istarts_with(h, "bytes=")) return whole;
  h = trim(h.substr(6));
  if (h.find(',') != std::string_view::npos) return whole;
  const auto dash = h.find('-');
  if (dash == std::string_view::npos) return whole;
  const std::string_view a = trim(h.substr(0, dash));
  const std::string_view b = trim(h.substr(dash + 1));
  range_request r;
  if (a.empty()) {  // suffix: the last n bytes
    const auto n = to_position(b);
    if (!n) return whole;
    if (*n == 0 || size == 0) return {range_kind::unsatisfiable, {}};
    r.range = {*n >= size ? 0 : size - *n, size - 1};
  } else {
    const auto first = to_position(a);
    if (!first) return whole;
    std::uint64_t last = UINT64_MAX;
    if (!b.empty()) {
      const auto l = to_position(b);
      if (!l || *l < *first) return whole;  // malformed: ignored (RFC 9110 14.2)
      last = *l;
    }
    if (*first >= size) return {range_kind::unsatisfiable, {}};
    r.range = {*first, std::min(last, size - 1)};
  }
  r.kind = range_kind::partial;
  return r;
}

std::optional<byte_range> parse_content_range(std::string_view header) {
  std::string_view h = trim(header);
  if (sdk::istarts_with(h, "bytes ") || sdk::istarts_with(h, "bytes=")) h = trim(h.substr(6));
  if (const auto slash = h.find('/'); slash != std::string_view::npos) h = h.substr(0, slash);
  const auto dash = h.find('-');
  if (dash == std::string_view::npos) return std::nullopt;
  const auto first = to_u64(trim(h.substr(0, dash)));
  const auto last = to_u64(trim(h.substr(dash + 1)));
  if (!first || !last || *last < *first) return std::nullopt;
  return byte_range{*first, *last};
}

std::string upload_range(std::uint64_t size) { return "0-" + std::to_string(size == 0 ? 0 : size - 1); }

std::string next_link(std::string_view path, std::uint64_t n, std::string_view last) {
  return "<" + std::string(path) + "?n=" + std::to_string(n) + "&last=" + percent_encode(last) +
         ">; rel=\"next\"";
}

std::optional<page_request> read_page(const sdk::request& req) {
  page_request p;
  if (const auto raw = req.query_param("n")) {
    std::uint64_t v = 0;
    const auto [ptr, ec] = std::from_chars(raw->data(), raw->data() + raw->size(), v);
    if (raw->empty() || ec != std::errc{} || ptr != raw->data() + raw->size()) return std::nullopt;
    p.n = v;
  }
  if (req.query_param("last")) {
    auto last = query_value(req, "last");
    if (!last) return std::nullopt;
    p.last = std::move(*last);
  }
  return p;
}

void send_page_invalid(sdk::response& res) {
  res.send_error(400, "PAGINATION_NUMBER_INVALID", "n must be a non-negative integer and last well encoded");
}

std::vector<std::string> answer_page(sdk::response& res, std::string_view path, const std::vector<std::string>& all,
                                     const std::string& last, std::uint64_t n) {
  auto it = last.empty() ? all.begin() : std::upper_bound(all.begin(), all.end(), last);
  std::vector<std::string> page;
  while (it != all.end() && page.size() < n) page.push_back(*it++);
  if (it != all.end() && n > 0 && !page.empty()) res.header("Link", next_link(path, n, page.back()));
  return page;
}

bool none_match(std::string_view if_none_match, std::string_view etag) {
  // The opaque part of an entity tag: without W/ (weak comparison) and its quotes (a bare
  // digest, which some clients send, is taken too).
  const auto opaque = [](std::string_view t) {
    t = trim(t);
    if (t.substr(0, 2) == "W/") t.remove_prefix(2);
    if (t.size() >= 2 && t.front() == '"' && t.back() == '"') t = t.substr(1, t.size() - 2);
    return t;
  };
  const std::string_view want = opaque(etag);
  std::string_view list = if_none_match;
  while (!list.empty()) {
    const auto comma = list.find(',');
    const std::string_view item = trim(list.substr(0, comma));
    if (item == "*" || (!item.empty() && opaque(item) == want)) return true;
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  return false;
}

bool not_modified(const sdk::request& req, const digest& d) {
  return none_match(header_values(req, "If-None-Match"), quoted(d));
}

std::optional<blob_slice> begin_blob_answer(const sdk::request& req, sdk::response& res, const digest& d,
                                            std::uint64_t size, std::string_view content_type) {
  answer_headers h;
  h.content_type = content_type;
  return begin_blob_answer(req, res, d, size, h);
}

std::optional<blob_slice> begin_blob_answer(const sdk::request& req, sdk::response& res, const digest& d,
                                            std::uint64_t size, const answer_headers& h) {
  const std::string_view content_type = h.content_type;
  set_content_headers(res, d, h);
  res.header("Accept-Ranges", "bytes");
  if (answered_not_modified(req, res, d)) return std::nullopt;

  range_request range;
  const auto range_header = req.header("Range");
  // If-Range with another validator than ours: the range is for another entity, send it whole.
  const auto if_range = req.header("If-Range");
  if (range_header && (!if_range || trim(*if_range) == quoted(d))) range = parse_range(*range_header, size);
  if (range.kind == range_kind::unsatisfiable) {
    res.header("Content-Range", "bytes */" + std::to_string(size));
    res.send_error(416, "RANGE_NOT_SATISFIABLE",
                   "the requested range is not within the blob's " + std::to_string(size) + " bytes",
                   {{"size", size}});
    return std::nullopt;
  }
  blob_slice slice{0, size};
  if (range.kind == range_kind::partial) {
    slice = {range.range.first, range.range.length()};
    res.status(206);
    res.header("Content-Range", "bytes " + std::to_string(range.range.first) + "-" +
                                    std::to_string(range.range.last) + "/" + std::to_string(size));
  } else {
    res.status(200);
  }
  if (is_head(req)) {
    res.header("Content-Type", content_type);
    res.header("Content-Length", std::to_string(slice.length));
  }
  return slice;
}

bool begin_unsized_blob_answer(const sdk::request& req, sdk::response& res, const digest& d) {
  set_content_headers(res, d);
  if (answered_not_modified(req, res, d)) return false;
  res.status(200);
  return true;
}

}  // namespace registryd::oci::http
