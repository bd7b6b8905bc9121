// OCI distribution error bodies, shared by the host and plugins so every error a registry
// client sees has the same shape: {"errors":[{"code":...,"message":...,"detail":...}]}.
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <string_view>

namespace registryd::sdk {

// The JSON body for one error. `code` is one of the distribution spec's codes
// (BLOB_UNKNOWN, MANIFEST_UNKNOWN, NAME_UNKNOWN, UNAUTHORIZED, DENIED, UNSUPPORTED, ...).
// `detail` is omitted when null. Text that is not UTF-8 (a client's bytes quoted back in the
// message or detail) is written with U+FFFD in place of each invalid byte: an error answer
// never fails to serialize.
inline std::string oci_error_body(std::string_view code, std::string_view message,
                                  const nlohmann::json& detail = nullptr) {
  nlohmann::json e = {{"code", code}, {"message", message}};
  if (!detail.is_null()) e["detail"] = detail;
  return nlohmann::json{{"errors", nlohmann::json::array({e})}}.dump(-1, ' ', false,
                                                                     nlohmann::json::error_handler_t::replace);
}

}  // namespace registryd::sdk
