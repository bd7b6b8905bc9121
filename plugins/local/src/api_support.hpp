// Small pieces every handler of registry_api uses: storage failures turned
// into OCI errors, and JSON answers that also serve HEAD.
#pragma once

#include <registryd/oci/errors.hpp>
#include <registryd/oci/http.hpp>
#include <registryd/oci/storage/store_result.hpp>
#include <registryd/sdk/plugin.hpp>

#include <string>
#include <string_view>

namespace registryd::local {

// 500 UNKNOWN for a storage failure that is not the client's doing (io), with the message.
void storage_failure(sdk::response& res, const oci::storage::store_error& e);

// A JSON (or other small) body with `status`; for HEAD only the headers and the length.
void send_body(const sdk::request& req, sdk::response& res, int status, std::string_view content_type,
               const std::string& body);

using oci::http::byte_range;
using oci::http::header_values;
using oci::http::is_head;
using oci::http::parse_content_range;
using oci::http::query_value;
using oci::http::upload_range;

}  // namespace registryd::local
