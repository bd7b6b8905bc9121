// Content discovery: _catalog, tags/list (both with n/last and a Link to the next page) and
// the referrers API.
#include "api_support.hpp"
#include "registry_api.hpp"

#include <registryd/oci/media_types.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>

namespace registryd::local {

void registry_api::get_catalog(const sdk::request& req, sdk::response& res) {
  const auto p = oci::http::read_page(req);
  if (!p) return oci::http::send_page_invalid(res);
  const std::uint64_t n = std::min(p->n.value_or(catalog_page), catalog_page);
  const auto page = oci::http::answer_page(res, "/v2/_catalog", repos_.repositories(), p->last, n);
  send_body(req, res, 200, "application/json", nlohmann::json{{"repositories", page}}.dump());
}

void registry_api::get_tags(const sdk::request& req, sdk::response& res, const oci::target& r) {
  const auto p = oci::http::read_page(req);
  if (!p) return oci::http::send_page_invalid(res);
  auto tags = repos_.tags(r.name);
  if (!tags) {
    if (tags.code() == oci::storage::errc::not_found) {
      return res.send_error(404, "NAME_UNKNOWN", "repository " + r.name + " is not known",
                            {{"name", r.name}});
    }
    return storage_failure(res, tags.error());
  }
  const auto page = oci::http::answer_page(res, "/v2/" + r.name + "/tags/list", *tags, p->last, p->n.value_or(tags->size()));
  send_body(req, res, 200, "application/json", nlohmann::json{{"name", r.name}, {"tags", page}}.dump());
}

void registry_api::get_referrers(const sdk::request& req, sdk::response& res, const oci::target& r) {
  const auto& subject = r.digest;
  std::optional<std::string> filter;
  if (req.query_param("artifactType")) {
    filter = query_value(req, "artifactType");
    if (filter && filter->empty()) filter.reset();
  }
  nlohmann::json manifests = nlohmann::json::array();
  for (auto& desc : repos_.referrers(r.name, *subject)) {
    if (filter && desc.value("artifactType", std::string()) != *filter) continue;
    manifests.push_back(std::move(desc));
  }
  nlohmann::json index = nlohmann::json::object();
  index["schemaVersion"] = 2;
  index["mediaType"] = oci::media_type::oci_index;
  index["manifests"] = std::move(manifests);
  if (filter) res.header("OCI-Filters-Applied", "artifactType");
  // The spec asks for 200 with an empty index even when the repository or subject is unknown.
  send_body(req, res, 200, oci::media_type::oci_index, index.dump());
}

}  // namespace registryd::local
