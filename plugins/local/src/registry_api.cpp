#include "registry_api.hpp"

#include "api_support.hpp"

#include <registryd/oci/reference.hpp>

namespace registryd::local {

using oci::route_kind;

registry_api::registry_api(const oci::storage::blob_store& blobs, const oci::storage::repository_store& repos,
                           oci::storage::upload_store& uploads)
    : blobs_(blobs), repos_(repos), uploads_(uploads) {}

void registry_api::handle(const sdk::request& req, sdk::response& res) {
  const std::string_view method = req.method();
  const auto r = oci::parse_route(req.path());
  if (!r) {
    res.send_error(404, "NAME_UNKNOWN", "no such endpoint of the registry API: " + std::string(req.path()));
    return;
  }
  if (r->kind == route_kind::base) {
    // The host answers the version check itself; this is for completeness.
    res.status(200);
    res.send("application/json", "{}");
    return;
  }
  if (r->kind != route_kind::catalog && !oci::is_valid_repository_name(r->name)) {
    res.send_error(400, "NAME_INVALID", "invalid repository name \"" + r->name + "\"",
                   {{"name", r->name}});
    return;
  }
  const bool read = method == "GET" || method == "HEAD";
  auto unsupported = [&] {
    res.send_error(405, "UNSUPPORTED", "the registry API has no " + std::string(method) + " on this endpoint");
  };
  switch (r->kind) {
    case route_kind::base: return;
    case route_kind::catalog:
      if (!read) return unsupported();
      if (!require_access(req, res, REGISTRYD_ACCESS_PULL)) return;
      return get_catalog(req, res);
    case route_kind::tags_list:
      if (!read) return unsupported();
      if (!require_access(req, res, REGISTRYD_ACCESS_PULL)) return;
      return get_tags(req, res, *r);
    case route_kind::referrers:
      if (!read) return unsupported();
      if (!require_access(req, res, REGISTRYD_ACCESS_PULL)) return;
      return get_referrers(req, res, *r);
    case route_kind::manifest:
      if (read) {
        if (!require_access(req, res, REGISTRYD_ACCESS_PULL)) return;
        return get_manifest(req, res, *r);
      }
      if (method == "PUT") {
        if (!require_access(req, res, REGISTRYD_ACCESS_PUSH)) return;
        return put_manifest(req, res, *r);
      }
      if (method == "DELETE") {
        if (!require_access(req, res, REGISTRYD_ACCESS_DELETE)) return;
        return delete_manifest(req, res, *r);
      }
      return unsupported();
    case route_kind::blob:
      if (read) {
        if (!require_access(req, res, REGISTRYD_ACCESS_PULL)) return;
        return get_blob(req, res, *r);
      }
      if (method == "DELETE") {
        if (!require_access(req, res, REGISTRYD_ACCESS_DELETE)) return;
        return delete_blob(req, res, *r);
      }
      return unsupported();
    case route_kind::upload_start:
      if (method != "POST") return unsupported();
      if (!require_access(req, res, REGISTRYD_ACCESS_PUSH)) return;
      return start_upload(req, res, *r);
    case route_kind::upload_session:
      if (read) {
        if (!require_access(req, res, REGISTRYD_ACCESS_PUSH)) return;
        return upload_status(req, res, *r);
      }
      if (!require_access(req, res, REGISTRYD_ACCESS_PUSH)) return;
      if (method == "PATCH") return patch_upload(req, res, *r);
      if (method == "PUT") return put_upload(req, res, *r);
      if (method == "DELETE") return cancel_upload(req, res, *r);
      return unsupported();
  }
}

}  // namespace registryd::local
