// What a /v2/ request needs, in the terms of the token protocol, and the challenge a client
// gets when it does not have it. Mirrors distribution's registry: the repository name comes
// from the route, GET and HEAD need pull, POST, PUT and PATCH need pull and push, DELETE needs
// delete, a cross-repository blob mount (?from=) needs pull on the source too, /v2/_catalog
// needs registry:catalog:* and the version check /v2/ needs a valid token only.
#pragma once

#include <registryd/auth/scope.hpp>

#include <string>
#include <string_view>
#include <vector>

namespace registryd::auth {

struct request_scope {
  enum class route {
    version_check,  // /v2/
    catalog,        // /v2/_catalog
    repository,     // /v2/<name>/(manifests|blobs|tags|referrers)/...
    unknown,        // anything else under /v2/ (or a mount from an invalid name): nothing a
                    // token can grant
  };
  route kind = route::unknown;
  std::string repository;                // route::repository
  std::vector<resource_actions> needed;  // empty for version_check, unknown and odd methods
};

// The repository a /v2/ path names, or "" when the path is no repository route:
// <name>/manifests/<ref>, <name>/blobs/<digest>, <name>/blobs/uploads/[<id>],
// <name>/tags/list, <name>/referrers/<digest>. `path` is the decoded path ("/v2/a/b/tags/list").
std::string repository_in_path(std::string_view path);

// What the request needs. `mount_from` is the decoded `from` query parameter ("" when absent).
request_scope scope_of_request(std::string_view method, std::string_view path,
                               std::string_view mount_from = {});

// The WWW-Authenticate value of a 401 under token auth, as distribution writes it:
//   Bearer realm="<realm>",service="<service>"[,scope="<scopes>"][,error="<error>"]
// `error` is "" (no token), "invalid_token" or "insufficient_scope" (RFC 6750, section 3).
std::string bearer_challenge(std::string_view realm, std::string_view service,
                             const std::vector<resource_actions>& needed,
                             std::string_view error = {});

}  // namespace registryd::auth
