#include "api_support.hpp"

namespace registryd::local {

void storage_failure(sdk::response& res, const oci::storage::store_error& e) {
  res.send_error(500, "UNKNOWN", "storage failure: " + e.message);
}

void send_body(const sdk::request& req, sdk::response& res, int status, std::string_view content_type,
               const std::string& body) {
  res.status(status);
  if (is_head(req)) {
    res.header("Content-Type", content_type);
    res.header("Content-Length", std::to_string(body.size()));
    return;
  }
  res.send(content_type, body);
}

}  // namespace registryd::local
