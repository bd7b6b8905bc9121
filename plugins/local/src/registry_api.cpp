#include "registry_api.hpp"

#include "api_support.hpp"

namespace registryd::local {

using oci::route_kind;

registry_api::registry_api(const oci::storage::blob_store& blobs, const oci::storage::repository_store& repos,
                           oci::storage::upload_store& uploads)
    : blobs_(blobs), repos_(repos), uploads_(uploads) {
  auto bind = [this](void (registry_api::*fn)(const sdk::request&, sdk::response&, const oci::target&)) {
    return [this, fn](const sdk::request& req, sdk::response& res, const oci::target& t) { (this->*fn)(req, res, t); };
  };
  api_.read(route_kind::catalog, [this](const sdk::request& req, sdk::response& res, const oci::target&) {
    get_catalog(req, res);
  });
  api_.read(route_kind::tags_list, bind(&registry_api::get_tags));
  api_.read(route_kind::referrers, bind(&registry_api::get_referrers));
  api_.read(route_kind::manifest, bind(&registry_api::get_manifest));
  api_.on(route_kind::manifest, "PUT", REGISTRYD_ACCESS_PUSH, bind(&registry_api::put_manifest));
  api_.on(route_kind::manifest, "DELETE", REGISTRYD_ACCESS_DELETE, bind(&registry_api::delete_manifest));
  api_.read(route_kind::blob, bind(&registry_api::get_blob));
  api_.on(route_kind::blob, "DELETE", REGISTRYD_ACCESS_DELETE, bind(&registry_api::delete_blob));
  api_.on(route_kind::upload_start, "POST", REGISTRYD_ACCESS_PUSH, bind(&registry_api::start_upload));
  // Asking for an upload's progress is part of pushing: it needs push access, as distribution's.
  api_.on(route_kind::upload_session, "GET", REGISTRYD_ACCESS_PUSH, bind(&registry_api::upload_status));
  api_.on(route_kind::upload_session, "HEAD", REGISTRYD_ACCESS_PUSH, bind(&registry_api::upload_status));
  api_.on(route_kind::upload_session, "PATCH", REGISTRYD_ACCESS_PUSH, bind(&registry_api::patch_upload));
  api_.on(route_kind::upload_session, "PUT", REGISTRYD_ACCESS_PUSH, bind(&registry_api::put_upload));
  api_.on(route_kind::upload_session, "DELETE", REGISTRYD_ACCESS_PUSH, bind(&registry_api::cancel_upload));
}

void registry_api::handle(const sdk::request& req, sdk::response& res) { api_.dispatch(req, res); }

}  // namespace registryd::local
