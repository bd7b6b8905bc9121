// The `Link` header (RFC 8288) that paginated registry lists (tags, catalog) answer with:
//   </v2/_catalog?last=b&n=100>; rel="next"
//
// Thread-safety: pure functions on values.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace registryd::oci::client {

// The URI of the link whose `rel` (a space-separated list, case-insensitive) holds "next",
// from one or more Link header values; nullopt when there is none. The URI is returned as
// written: an absolute path ("/v2/...") or an absolute URL.
std::optional<std::string> next_link(std::string_view link_header);
std::optional<std::string> next_link(const std::vector<std::string_view>& link_headers);

}  // namespace registryd::oci::client
