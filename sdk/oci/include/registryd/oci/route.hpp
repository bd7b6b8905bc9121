// Where a request path lands in the distribution API (OCI distribution spec v1.1, "endpoints").
// Repository names contain slashes, so the path is read from its end: the last fixed segment
// (`manifests`, `blobs`, `uploads`, `tags`, `referrers`) decides the route.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace registryd::oci {

enum class route_kind {
  base,            // /v2/
  catalog,         // /v2/_catalog
  tags_list,       // /v2/<name>/tags/list
  manifest,        // /v2/<name>/manifests/<reference>
  blob,            // /v2/<name>/blobs/<digest>
  upload_start,    // /v2/<name>/blobs/uploads/
  upload_session,  // /v2/<name>/blobs/uploads/<id>
  referrers,       // /v2/<name>/referrers/<digest>
};

struct route {
  route_kind kind = route_kind::base;
  std::string name;       // the repository, empty for base and catalog
  std::string reference;  // tag or digest (manifest), digest (blob, referrers), id (upload)
};

// Parses an already percent-decoded path such as "/v2/library/alpine/manifests/latest".
// nullopt when the path is not an API endpoint (the caller answers 404 NAME_UNKNOWN or
// NAME_INVALID as fits). The name is NOT validated here: call is_valid_repository_name.
std::optional<route> parse_route(std::string_view path);

// The path of a route: the inverse of parse_route.
std::string route_path(const route& r);

}  // namespace registryd::oci
