// HTTP details the Proxy mode's answers need: Range requests on blobs and repeated headers.
//
// Thread-safety: pure functions.
#pragma once

#include <registryd/sdk/plugin.hpp>

#include <cstdint>
#include <string>
#include <string_view>

namespace registryd::proxy {

enum class range_kind {
  whole,          // no Range, or one served whole (several ranges, another unit, malformed): 200
  partial,        // one satisfiable range: 206
  unsatisfiable,  // 416 with Content-Range: bytes */<size>
};

struct range_request {
  range_kind kind = range_kind::whole;
  std::uint64_t first = 0;
  std::uint64_t length = 0;
};

// Reads a Range header (RFC 9110 14.2) against `size` bytes: "bytes=a-b", "bytes=a-",
// "bytes=-n".
range_request parse_range(std::string_view header, std::uint64_t size);

// Every value of a header, joined with ", " (the request view returns the first only); the
// header list is walked on the raw request.
std::string header_values(const sdk::request& req, std::string_view name);

}  // namespace registryd::proxy
