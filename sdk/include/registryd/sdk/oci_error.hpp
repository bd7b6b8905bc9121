// OCI distribution error bodies, shared by the host and plugins so every error a registry
// client sees has the same shape: {"errors":[{"code":...,"message":...,"detail":...}]}.
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <string_view>

namespace registryd::sdk {

// The JSON body for one error. `code` is one of the distribution spec's codes
// (BLOB_UNKNOWN, MANIFEST_UNKNOWN, NAME_UNKNOWN, UNAUTHORIZED, DENIED, UNSUPPORTED, ...).
// `detail` is omitted when null.
inline std::string oci_error_body(std::string_view code, std::string_view message,
                                  const nlohmann::json& detail = nullptr) {
  nlohmann::json e = {{"code", code}, {"message", message}};
  if (!detail.is_null()) e["detail"] = detail;
  return nlohmann::json{{"errors", nlohmann::json::array({e})}}.dump();
}

}  // namespace registryd::sdk
