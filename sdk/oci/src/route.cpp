#include <registryd/oci/route.hpp>

namespace registryd::oci {
namespace {

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

// Splits `rest` = "<name>/<marker>/<tail>" at the LAST "/<marker>/" whose name part is
// non-empty; tail must not contain '/'.
std::optional<route> split(std::string_view rest, std::string_view marker, route_kind kind) {
  const std::string needle = "/" + std::string(marker) + "/";
  const auto pos = rest.rfind(needle);
  if (pos == std::string_view::npos || pos == 0) return std::nullopt;
  const std::string_view tail = rest.substr(pos + needle.size());
  if (tail.find('/') != std::string_view::npos) return std::nullopt;
  return route{kind, std::string(rest.substr(0, pos)), std::string(tail)};
}

}  // namespace

std::optional<route> parse_route(std::string_view path) {
  constexpr std::string_view prefix = "/v2/";
  if (path == "/v2") return route{route_kind::base, {}, {}};
  if (path.substr(0, prefix.size()) != prefix) return std::nullopt;
  std::string_view rest = path.substr(prefix.size());
  if (rest.empty()) return route{route_kind::base, {}, {}};
  if (rest == "_catalog") return route{route_kind::catalog, {}, {}};
  if (ends_with(rest, "/tags/list")) {
    const std::string_view name = rest.substr(0, rest.size() - 10);
    if (name.empty()) return std::nullopt;
    return route{route_kind::tags_list, std::string(name), {}};
  }
  if (ends_with(rest, "/blobs/uploads/") || ends_with(rest, "/blobs/uploads")) {
    const std::string_view name = rest.substr(0, rest.rfind("/blobs/uploads"));
    if (name.empty()) return std::nullopt;
    return route{route_kind::upload_start, std::string(name), {}};
  }
  if (auto r = split(rest, "blobs/uploads", route_kind::upload_session); r && !r->reference.empty()) {
    return r;
  }
  for (auto [marker, kind] : {std::pair{"manifests", route_kind::manifest},
                              std::pair{"blobs", route_kind::blob},
                              std::pair{"referrers", route_kind::referrers}}) {
    if (auto r = split(rest, marker, kind); r && !r->reference.empty()) return r;
  }
  return std::nullopt;
}

std::string route_path(const route& r) {
  switch (r.kind) {
    case route_kind::base: return "/v2/";
    case route_kind::catalog: return "/v2/_catalog";
    case route_kind::tags_list: return "/v2/" + r.name + "/tags/list";
    case route_kind::manifest: return "/v2/" + r.name + "/manifests/" + r.reference;
    case route_kind::blob: return "/v2/" + r.name + "/blobs/" + r.reference;
    case route_kind::upload_start: return "/v2/" + r.name + "/blobs/uploads/";
    case route_kind::upload_session: return "/v2/" + r.name + "/blobs/uploads/" + r.reference;
    case route_kind::referrers: return "/v2/" + r.name + "/referrers/" + r.reference;
  }
  return "/v2/";
}

}  // namespace registryd::oci
