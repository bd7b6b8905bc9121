#include <registryd/oci/client/error.hpp>

namespace registryd::oci::client {

std::string_view to_string(error_kind kind) noexcept {
  switch (kind) {
    case error_kind::http: return "http";
    case error_kind::connect: return "connect";
    case error_kind::timeout: return "timeout";
    case error_kind::tls: return "tls";
    case error_kind::io: return "io";
    case error_kind::canceled: return "canceled";
    case error_kind::protocol: return "protocol";
    case error_kind::invalid_argument: return "invalid_argument";
  }
  return "unknown";
}

bool upstream_error::retryable() const noexcept {
  switch (kind) {
    case error_kind::connect:
    case error_kind::timeout:
    case error_kind::io: return true;
    case error_kind::http:
      return status == 408 || status == 429 || status == 500 || status == 502 || status == 503 ||
             status == 504;
    default: return false;
  }
}

std::string upstream_error::str() const {
  if (kind == error_kind::http) {
    std::string out = std::to_string(status);
    if (!code.empty()) out += " " + code;
    return out + ": " + message;
  }
  return std::string(to_string(kind)) + ": " + message;
}

upstream_error make_error(error_kind kind, std::string message, int status) {
  upstream_error e;
  e.kind = kind;
  e.status = status;
  e.message = std::move(message);
  switch (kind) {
    case error_kind::invalid_argument: e.code = "NAME_INVALID"; break;
    case error_kind::protocol: e.code = "UNKNOWN"; break;
    case error_kind::canceled: e.code = "UNKNOWN"; break;
    case error_kind::http: break;
    default: e.code = "UNAVAILABLE"; break;
  }
  return e;
}

}  // namespace registryd::oci::client
