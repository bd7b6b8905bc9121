// Content discovery: _catalog, tags/list (both with n/last and a Link to the next page) and
// the referrers API.
#include "api_support.hpp"
#include "registry_api.hpp"

#include <registryd/oci/media_types.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <charconv>

namespace registryd::local {
namespace {

struct page_request {
  bool ok = true;
  std::optional<std::uint64_t> n;
  std::string last;
};

page_request read_page(const sdk::request& req) {
  page_request p;
  if (const auto raw = req.query_param("n")) {
    std::uint64_t v = 0;
    const auto [ptr, ec] = std::from_chars(raw->data(), raw->data() + raw->size(), v);
    if (raw->empty() || ec != std::errc{} || ptr != raw->data() + raw->size()) {
      p.ok = false;
      return p;
    }
    p.n = v;
  }
  if (req.query_param("last")) {
    const auto last = query_value(req, "last");
    if (!last) {
      p.ok = false;
      return p;
    }
    p.last = *last;
  }
  return p;
}

// The slice of a sorted list after `last`, at most `n` long; `more` when entries remain.
std::vector<std::string> page_of(const std::vector<std::string>& all, const std::string& last, std::uint64_t n,
                                 bool& more) {
  auto it = last.empty() ? all.begin() : std::upper_bound(all.begin(), all.end(), last);
  std::vector<std::string> out;
  while (it != all.end() && out.size() < n) out.push_back(*it++);
  more = it != all.end() && n > 0;
  return out;
}

void bad_page(sdk::response& res) {
  res.send_error(400, "PAGINATION_NUMBER_INVALID", "n must be a non-negative integer");
}

}  // namespace

void registry_api::get_catalog(const sdk::request& req, sdk::response& res) {
  const auto p = read_page(req);
  if (!p.ok) return bad_page(res);
  const std::uint64_t n = std::min(p.n.value_or(catalog_page), catalog_page);
  bool more = false;
  const auto page = page_of(repos_.repositories(), p.last, n, more);
  if (more) res.header("Link", next_link("/v2/_catalog", n, page.back()));
  send_body(req, res, 200, "application/json", nlohmann::json{{"repositories", page}}.dump());
}

void registry_api::get_tags(const sdk::request& req, sdk::response& res, const oci::target& r) {
  const auto p = read_page(req);
  if (!p.ok) return bad_page(res);
  auto tags = repos_.tags(r.name);
  if (!tags) {
    if (tags.code() == oci::storage::errc::not_found) {
      return res.send_error(404, "NAME_UNKNOWN", "repository " + r.name + " is not known",
                            {{"name", r.name}});
    }
    return storage_failure(res, tags.error());
  }
  const std::uint64_t n = p.n.value_or(tags->size());
  bool more = false;
  const auto page = page_of(*tags, p.last, n, more);
  if (more) res.header("Link", next_link("/v2/" + r.name + "/tags/list", n, page.back()));
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
