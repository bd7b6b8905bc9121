#include <registryd/auth/request_scope.hpp>

#include <registryd/oci/route.hpp>

namespace registryd::auth {

std::string repository_in_path(std::string_view path) {
  // The route grammar is the SDK's (oci::parse_route), the one every plugin serves on: the
  // host authorizes exactly the repository the plugin will touch.
  const auto r = oci::parse_route(path);
  if (!r || r->name.empty()) return {};
  return is_repository_name(r->name) ? r->name : std::string();
}

request_scope scope_of_request(std::string_view method, std::string_view path,
                               std::string_view mount_from) {
  request_scope out;
  if (path == "/v2" || path == "/v2/") {
    out.kind = request_scope::route::version_check;
    return out;
  }
  if (path == "/v2/_catalog") {
    out.kind = request_scope::route::catalog;
    out.needed.push_back({"registry", "catalog", {"*"}});
    return out;
  }
  out.repository = repository_in_path(path);
  if (out.repository.empty()) return out;
  out.kind = request_scope::route::repository;
  // An upload session is part of a push whatever the method: asking where an upload stands
  // (GET) needs push, as writing to it does, so a token client asks for push at once.
  const auto r = oci::parse_route(path);
  const bool upload = r && (r->kind == oci::route_kind::upload_session || r->kind == oci::route_kind::upload_start);
  const access_bits needed =
      upload && (method == "GET" || method == "HEAD") ? access_push : required_access(method);
  if (needed == access_pull) out.needed.push_back({"repository", out.repository, {"pull"}});
  if (needed == access_push) out.needed.push_back({"repository", out.repository, {"pull", "push"}});
  if (needed == access_delete) out.needed.push_back({"repository", out.repository, {"delete"}});
  if (needed == access_push && !mount_from.empty() && mount_from != out.repository) {
    if (!is_repository_name(mount_from)) {
      // Nothing can grant it, and its text must not reach a challenge header.
      out.kind = request_scope::route::unknown;
      out.needed.clear();
      return out;
    }
    out.needed.push_back({"repository", std::string(mount_from), {"pull"}});
  }
  return out;
}

std::string bearer_challenge(std::string_view realm, std::string_view service,
                             const std::vector<resource_actions>& needed,
                             std::string_view error) {
  std::string out = "Bearer realm=\"" + std::string(realm) + "\",service=\"" +
                    std::string(service) + "\"";
  if (!needed.empty()) out += ",scope=\"" + to_string(needed) + "\"";
  if (!error.empty()) out += ",error=\"" + std::string(error) + "\"";
  return out;
}

}  // namespace registryd::auth
