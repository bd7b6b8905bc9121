// The HTTP details of the distribution API that every mode needs and that are not about
// storage: query parameters and percent-encoding, repeated headers, Range (RFC 9110 14.2) and
// Content-Range, conditional requests, the Link header of paginated lists, and the whole head
// of a blob answer (digest, ETag, caching, 200/206/304/416).
//
// A mode that serves content-addressed bytes calls begin_blob_answer() and then sends the
// slice it names (send_file or send_stream); see sdk/examples/ and docs/plugin-authors.md.
//
// Thread-safety: pure functions; begin_blob_answer writes only to the response it is given.
#pragma once

#include <registryd/oci/digest.hpp>
#include <registryd/sdk/plugin.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace registryd::oci::http {

// --- requests --------------------------------------------------------------------------------

// %XX decoded; '+' stays '+' (media types and digests never hold spaces, and clients that
// build queries with Go's url.Values send '+' as %2B anyway). nullopt on a malformed escape.
std::optional<std::string> percent_decode(std::string_view text);
// Percent-encodes everything but unreserved characters and '/'.
std::string percent_encode(std::string_view text);
// The decoded value of a query parameter; nullopt when absent or malformed.
std::optional<std::string> query_value(const sdk::request& req, std::string_view key);
// Every value of a header (repeated headers joined with ", "); empty when absent.
std::string header_values(const sdk::request& req, std::string_view name);
inline bool is_head(const sdk::request& req) { return req.method() == "HEAD"; }

// --- ranges ----------------------------------------------------------------------------------

// A closed byte range [first, last].
struct byte_range {
  std::uint64_t first = 0;
  std::uint64_t last = 0;
  std::uint64_t length() const { return last - first + 1; }
};

enum class range_kind {
  // No Range, or one that is ignored as RFC 9110 allows: malformed ("bytes=abc",
  // "bytes=10-5"), another unit ("items=0-1"), or several ranges. Answered 200, whole.
  whole,
  partial,        // one satisfiable range, its end clamped to the size: 206
  unsatisfiable,  // a well-formed range that starts past the end: 416, Content-Range: bytes */size
};

struct range_request {
  range_kind kind = range_kind::whole;
  byte_range range;
};

// Reads a Range header against a representation of `size` bytes: "bytes=a-b", "bytes=a-" and
// "bytes=-n". A last position past the end (any number of digits) is clamped to the end.
range_request parse_range(std::string_view header, std::uint64_t size);

// A chunk's Content-Range as the distribution spec writes it, "<first>-<last>"; "bytes
// <first>-<last>/<total or *>" is accepted too. nullopt when malformed or last < first.
std::optional<byte_range> parse_content_range(std::string_view header);

// The value of an upload's Range header: "0-<size-1>", or "0-0" for an empty upload
// (distribution's way).
std::string upload_range(std::uint64_t size);

// `<path?n=N&last=L>; rel="next"` (RFC 8288) with `last` percent-encoded.
std::string next_link(std::string_view path, std::uint64_t n, std::string_view last);

// --- paginated lists (tags/list, _catalog) ------------------------------------------------------

// A list request's `?n=` (at most n entries) and `?last=` (entries after this one).
struct page_request {
  std::optional<std::uint64_t> n;
  std::string last;
};
// nullopt when n is not a whole number or last is badly percent-encoded: answer
// send_page_invalid().
std::optional<page_request> read_page(const sdk::request& req);
// 400 PAGINATION_NUMBER_INVALID.
void send_page_invalid(sdk::response& res);
// The entries of the sorted list `all` after `last`, at most `n`; when more follow, sets the
// Link header to the next page of the list at `path` (next_link).
std::vector<std::string> answer_page(sdk::response& res, std::string_view path, const std::vector<std::string>& all,
                                     const std::string& last, std::uint64_t n);

// --- conditional requests ----------------------------------------------------------------------

// `etag` (quoted, as sent in ETag) is one of the entity tags of an If-None-Match value, or the
// value is "*" (RFC 9110 13.1.2, weak comparison).
bool none_match(std::string_view if_none_match, std::string_view etag);
// The request's If-None-Match names the content `d` (its ETag is the quoted digest): a 304.
bool not_modified(const sdk::request& req, const digest& d);

// --- blob answers ------------------------------------------------------------------------------

// What to send after begin_blob_answer: `length` bytes from `offset` of the content.
struct blob_slice {
  std::uint64_t offset = 0;
  std::uint64_t length = 0;
};

// Starts the answer to a GET or HEAD of the content named by digest `d`, `size` bytes long:
// sets Docker-Content-Digest, ETag, Cache-Control (content-addressed: immutable),
// Accept-Ranges, and then either
//   - answers 304 (If-None-Match names the digest) or 416 (an unsatisfiable Range, with
//     Content-Range: bytes */size and an OCI error body) itself and returns nullopt, or
//   - sets 206 and Content-Range for one satisfiable Range (unless If-Range names another
//     entity), else 200, and returns the slice for the caller to send. For HEAD, it also sets
//     Content-Type and Content-Length, and the caller sends nothing.
std::optional<blob_slice> begin_blob_answer(const sdk::request& req, sdk::response& res, const digest& d,
                                            std::uint64_t size,
                                            std::string_view content_type = "application/octet-stream");

// The headers of a content-addressed answer that is not the distribution API's (the packages
// proxy's /package): the content type, Cache-Control, and whether Docker-Content-Digest is
// sent (not when `d` names something else than the body, an image whose layer is sent).
struct answer_headers {
  std::string_view content_type = "application/octet-stream";
  std::string_view cache_control = "max-age=31536000";
  bool content_digest = true;
};
std::optional<blob_slice> begin_blob_answer(const sdk::request& req, sdk::response& res, const digest& d,
                                            std::uint64_t size, const answer_headers& headers);

// The same for content whose size is not known yet (a pull-through fill whose upstream sent no
// length): no Accept-Ranges, any Range is served whole, and the caller streams it all.
// Returns false when it answered 304 itself.
bool begin_unsized_blob_answer(const sdk::request& req, sdk::response& res, const digest& d);

}  // namespace registryd::oci::http
