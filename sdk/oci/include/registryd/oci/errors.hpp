// The distribution spec's error codes, the HTTP status each is answered with, and a helper
// that sends one as the OCI error body.
#pragma once

#include <registryd/sdk/plugin.hpp>

#include <nlohmann/json.hpp>

#include <string_view>

namespace registryd::oci {

enum class error_code {
  blob_unknown,           // 404
  blob_upload_invalid,    // 400 (416 for out-of-order chunks is sent by the caller)
  blob_upload_unknown,    // 404
  digest_invalid,         // 400
  manifest_blob_unknown,  // 400 (as distribution answers)
  manifest_invalid,       // 400
  manifest_unknown,       // 404
  name_invalid,           // 400
  name_unknown,           // 404
  size_invalid,           // 400
  tag_invalid,            // 400 (distribution's: a reference that is neither a tag nor a digest)
  unauthorized,           // 401
  denied,                 // 403
  unsupported,            // 405
  too_many_requests,      // 429
  range_invalid,          // 416 (distribution's BLOB_UPLOAD_INVALID with 416 for bad ranges)
  unavailable,            // 503 (registryd: upstream unreachable and nothing cached)
  internal,               // 500
};

// The code as it appears on the wire, e.g. "MANIFEST_UNKNOWN".
std::string_view code_text(error_code code) noexcept;
// The status the spec (or, where it is silent, distribution) answers with.
int http_status(error_code code) noexcept;

// Sends {"errors":[{"code","message","detail"}]} with the code's status.
inline void send_error(sdk::response& res, error_code code, std::string_view message,
                       const nlohmann::json& detail = nullptr) {
  res.send_error(http_status(code), code_text(code), message, detail);
}

}  // namespace registryd::oci
