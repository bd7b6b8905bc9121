#include <registryd/auth/request_scope.hpp>

namespace registryd::auth {
namespace {

std::vector<std::string_view> segments_of(std::string_view rest) {
  std::vector<std::string_view> out;
  std::size_t start = 0;
  while (true) {
    const auto slash = rest.find('/', start);
    if (slash == std::string_view::npos) {
      out.push_back(rest.substr(start));
      return out;
    }
    out.push_back(rest.substr(start, slash - start));
    start = slash + 1;
  }
}

std::string join(const std::vector<std::string_view>& segments, std::size_t count) {
  std::string out;
  for (std::size_t i = 0; i < count; ++i) {
    if (i > 0) out += '/';
    out += segments[i];
  }
  return out;
}

}  // namespace

std::string repository_in_path(std::string_view path) {
  constexpr std::string_view prefix = "/v2/";
  if (!path.starts_with(prefix)) return {};
  const auto s = segments_of(path.substr(prefix.size()));
  const std::size_t n = s.size();
  // Shapes are tried from the most specific: an upload id never holds ':', a digest always does.
  std::size_t name_segments = 0;
  if (n >= 3 && s[n - 2] == "blobs" && s[n - 1].find(':') != std::string_view::npos) {
    name_segments = n - 2;
  } else if (n >= 4 && s[n - 3] == "blobs" && s[n - 2] == "uploads") {
    name_segments = n - 3;
  } else if (n >= 3 && s[n - 2] == "blobs" && s[n - 1] == "uploads") {
    name_segments = n - 2;
  } else if (n >= 3 && s[n - 2] == "tags" && s[n - 1] == "list") {
    name_segments = n - 2;
  } else if (n >= 3 && (s[n - 2] == "manifests" || s[n - 2] == "referrers") && !s[n - 1].empty()) {
    name_segments = n - 2;
  }
  if (name_segments == 0) return {};
  std::string name = join(s, name_segments);
  return is_repository_name(name) ? name : std::string();
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
  const access_bits needed = required_access(method);
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
