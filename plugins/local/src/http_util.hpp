// HTTP details of the distribution API that are not about storage: query parameters,
// repeated headers, Range and Content-Range, and the Link header of paginated lists.
//
// Thread-safety: pure functions.
#pragma once

#include <registryd/sdk/plugin.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace registryd::local {

// %XX decoded; '+' stays '+' (media types and digests never hold spaces, and clients that
// build queries with Go's url.Values send '+' as %2B anyway). nullopt on a malformed escape.
std::optional<std::string> percent_decode(std::string_view text);
// The decoded value of a query parameter; nullopt when absent or malformed.
std::optional<std::string> query_value(const sdk::request& req, std::string_view key);
// Every value of a header (repeated headers joined with ", "); empty when absent.
std::string header_values(const sdk::request& req, std::string_view name);

// A closed byte range [first, last].
struct byte_range {
  std::uint64_t first = 0;
  std::uint64_t last = 0;
  std::uint64_t length() const { return last - first + 1; }
};

enum class range_kind {
  whole,          // no Range, or one registryd ignores (several ranges, another unit): 200
  partial,        // one satisfiable range: 206
  unsatisfiable,  // 416 with Content-Range: bytes */<size>
};

struct range_request {
  range_kind kind = range_kind::whole;
  byte_range range;
};

// Reads a Range header (RFC 9110 14.2) against a representation of `size` bytes:
// "bytes=a-b", "bytes=a-" and "bytes=-n"; a multi-range request is served whole.
range_request parse_range(std::string_view header, std::uint64_t size);

// A chunk's Content-Range as the distribution spec writes it, "<first>-<last>"; "bytes
// <first>-<last>/<total or *>" is accepted too. nullopt when malformed or last < first.
std::optional<byte_range> parse_content_range(std::string_view header);

// The value of an upload's Range header: "0-<size-1>", or "0-0" for an empty upload
// (distribution's way).
std::string upload_range(std::uint64_t size);

// `<path?n=N&last=L>; rel="next"` (RFC 8288) with `last` percent-encoded.
std::string next_link(std::string_view path, std::uint64_t n, std::string_view last);

// Percent-encodes everything but unreserved characters and '/'.
std::string percent_encode(std::string_view text);

}  // namespace registryd::local
