#include <registryd/oci/path_mapping.hpp>

namespace registryd::oci {
namespace {

// `name` is `prefix` or `prefix/...`; returns what follows the prefix ("" or "/...").
std::optional<std::string_view> below(std::string_view name, std::string_view prefix) {
  if (prefix.empty()) return name.empty() ? std::optional<std::string_view>{} : std::optional(name);
  if (name.substr(0, prefix.size()) != prefix) return std::nullopt;
  const std::string_view rest = name.substr(prefix.size());
  if (!rest.empty() && rest.front() != '/') return std::nullopt;
  return rest;
}

std::optional<std::string> join(std::string_view prefix, std::string_view rest) {
  if (prefix.empty()) {
    // rest is "/x" (from a non-empty prefix) or a bare name (from an empty prefix).
    if (!rest.empty() && rest.front() == '/') rest.remove_prefix(1);
    if (rest.empty()) return std::nullopt;
    return std::string(rest);
  }
  if (!rest.empty() && rest.front() != '/') return std::string(prefix) + "/" + std::string(rest);
  return std::string(prefix) + std::string(rest);
}

bool is_boundary(char c) {
  return c == '/' || c == ':' || c == '"' || c == ',' || c == ' ' || c == '\t' || c == '\n' ||
         c == '\'' || c == '@';
}

}  // namespace

path_mapping::path_mapping(std::string fixed_repository, std::string upstream_path)
    : fixed_(std::move(fixed_repository)), upstream_(std::move(upstream_path)) {}

std::optional<std::string> path_mapping::to_upstream(std::string_view client_name) const {
  const auto rest = below(client_name, fixed_);
  if (!rest) return std::nullopt;
  return join(upstream_, *rest);
}

std::optional<std::string> path_mapping::to_client(std::string_view upstream_name) const {
  const auto rest = below(upstream_name, upstream_);
  if (!rest) return std::nullopt;
  if (upstream_.empty()) return fixed_ + "/" + std::string(*rest);
  return fixed_ + std::string(*rest);
}

std::string path_mapping::location_to_client(std::string_view location,
                                             std::string_view upstream_host) const {
  std::string_view path = location;
  for (std::string_view scheme : {"http://", "https://"}) {
    if (location.substr(0, scheme.size()) == scheme) {
      const std::string_view rest = location.substr(scheme.size());
      const auto slash = rest.find('/');
      if (rest.substr(0, slash) != upstream_host) return std::string(location);
      path = slash == std::string_view::npos ? std::string_view("/") : rest.substr(slash);
    }
  }
  constexpr std::string_view api = "/v2/";
  if (path.substr(0, api.size()) != api) return std::string(location);
  const std::string_view after = path.substr(api.size());
  // The name ends where one of the API's fixed segments starts.
  for (std::string_view marker : {"/manifests/", "/blobs/", "/tags/", "/referrers/"}) {
    const auto pos = after.find(marker);
    if (pos == std::string_view::npos) continue;
    if (auto mapped = to_client(after.substr(0, pos))) {
      return std::string(api) + *mapped + std::string(after.substr(pos));
    }
    break;
  }
  return std::string(location);
}

std::string path_mapping::text_to_client(std::string_view text) const {
  if (upstream_.empty()) return std::string(text);
  std::string out;
  out.reserve(text.size());
  std::size_t i = 0;
  while (i < text.size()) {
    const auto pos = text.find(upstream_, i);
    if (pos == std::string_view::npos) break;
    const std::size_t end = pos + upstream_.size();
    const bool starts = pos == 0 || is_boundary(text[pos - 1]);
    const bool ends = end == text.size() || is_boundary(text[end]);
    out.append(text.substr(i, pos - i));
    out.append(starts && ends ? std::string_view(fixed_) : text.substr(pos, upstream_.size()));
    i = end;
  }
  out.append(text.substr(i));
  return out;
}

}  // namespace registryd::oci
