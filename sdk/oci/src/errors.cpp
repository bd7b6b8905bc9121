#include <registryd/oci/errors.hpp>

namespace registryd::oci {

std::string_view code_text(error_code code) noexcept {
  switch (code) {
    case error_code::blob_unknown: return "BLOB_UNKNOWN";
    case error_code::blob_upload_invalid: return "BLOB_UPLOAD_INVALID";
    case error_code::blob_upload_unknown: return "BLOB_UPLOAD_UNKNOWN";
    case error_code::digest_invalid: return "DIGEST_INVALID";
    case error_code::manifest_blob_unknown: return "MANIFEST_BLOB_UNKNOWN";
    case error_code::manifest_invalid: return "MANIFEST_INVALID";
    case error_code::manifest_unknown: return "MANIFEST_UNKNOWN";
    case error_code::name_invalid: return "NAME_INVALID";
    case error_code::name_unknown: return "NAME_UNKNOWN";
    case error_code::size_invalid: return "SIZE_INVALID";
    case error_code::tag_invalid: return "TAG_INVALID";
    case error_code::unauthorized: return "UNAUTHORIZED";
    case error_code::denied: return "DENIED";
    case error_code::unsupported: return "UNSUPPORTED";
    case error_code::too_many_requests: return "TOOMANYREQUESTS";
    case error_code::range_invalid: return "BLOB_UPLOAD_INVALID";
    case error_code::unavailable: return "UNAVAILABLE";
    case error_code::internal: return "UNKNOWN";
  }
  return "UNKNOWN";
}

int http_status(error_code code) noexcept {
  switch (code) {
    case error_code::blob_unknown:
    case error_code::blob_upload_unknown:
    case error_code::manifest_unknown:
    case error_code::name_unknown: return 404;
    case error_code::manifest_blob_unknown:  // distribution answers a PUT naming an absent blob 400
    case error_code::blob_upload_invalid:
    case error_code::digest_invalid:
    case error_code::manifest_invalid:
    case error_code::name_invalid:
    case error_code::size_invalid:
    case error_code::tag_invalid: return 400;
    case error_code::unauthorized: return 401;
    case error_code::denied: return 403;
    case error_code::unsupported: return 405;
    case error_code::too_many_requests: return 429;
    case error_code::range_invalid: return 416;
    case error_code::unavailable: return 503;
    case error_code::internal: return 500;
  }
  return 500;
}

}  // namespace registryd::oci
