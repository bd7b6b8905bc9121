#include "forwarding.hpp"

#include <registryd/oci/client/scope.hpp>
#include <registryd/oci/dispatcher.hpp>

#include <algorithm>
#include <array>
#include <initializer_list>

namespace registryd::direct {
namespace {

using nlohmann::json;
using oci::client::iequals;

bool is_one_of(std::string_view name, std::initializer_list<std::string_view> names) {
  for (const auto n : names) {
    if (iequals(name, n)) return true;
  }
  return false;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Percent-decodes a query component ('+' is a space, as forms encode it).
std::string query_decode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size()) {
      const int hi = hex_value(s[i + 1]), lo = hex_value(s[i + 2]);
      if (hi >= 0 && lo >= 0) {
        out.push_back(static_cast<char>(hi * 16 + lo));
        i += 2;
        continue;
      }
    }
    out.push_back(s[i] == '+' ? ' ' : s[i]);
  }
  return out;
}

// Percent-encodes everything but RFC 3986's unreserved characters.
std::string query_encode(std::string_view s) {
  static constexpr char hex[] = "0123456789ABCDEF";
  std::string out;
  for (const char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
        c == '.' || c == '_' || c == '~') {
      out.push_back(c);
    } else {
      out.push_back('%');
      out.push_back(hex[u >> 4]);
      out.push_back(hex[u & 0xf]);
    }
  }
  return out;
}

local_answer unsupported(std::string message) {
  return {405, "UNSUPPORTED", std::move(message), nullptr};
}

std::string_view segment_of(oci::route_kind kind) {
  switch (kind) {
    case oci::route_kind::manifest: return "manifests";
    case oci::route_kind::blob: return "blobs";
    case oci::route_kind::referrers: return "referrers";
    default: return "";
  }
}

// Every string in a JSON document (keys aside) with upstream names mapped.
void map_strings(json& j, const oci::path_mapping& mapping) {
  if (j.is_string()) {
    j = mapping.text_to_client(j.get_ref<const std::string&>());
  } else if (j.is_array() || j.is_object()) {
    for (auto& v : j) map_strings(v, mapping);
  }
}

// A message with upstream names mapped, naming the client's reference when it names no
// repository of the client's at all.
std::string client_message(std::string_view message, const oci::path_mapping& mapping,
                           const forward_plan& plan) {
  std::string m = mapping.text_to_client(message);
  if (m.find(plan.client_name) == std::string::npos) {
    m += (m.empty() ? "" : ": ") + plan.client_reference();
  }
  return m;
}

// `<url>; rel="next"` with the URL mapped as a Location is.
std::string link_to_client(std::string_view link, const oci::path_mapping& mapping,
                           std::string_view upstream_host) {
  const auto open = link.find('<');
  const auto close = link.find('>', open == std::string_view::npos ? 0 : open);
  if (open == std::string_view::npos || close == std::string_view::npos) {
    return mapping.text_to_client(link);
  }
  return std::string(link.substr(0, open + 1)) +
         mapping.location_to_client(link.substr(open + 1, close - open - 1), upstream_host) +
         std::string(link.substr(close));
}

}  // namespace

std::string forward_plan::client_reference() const {
  if (route.kind == oci::route_kind::manifest) {
    return client_name + (route.reference.find(':') != std::string::npos ? "@" : ":") + route.reference;
  }
  if (route.kind == oci::route_kind::blob || route.kind == oci::route_kind::referrers) {
    return client_name + "@" + route.reference;
  }
  return client_name;
}

std::variant<forward_plan, local_answer> plan_request(const oci::path_mapping& mapping,
                                                      std::string_view method, std::string_view path,
                                                      std::string_view raw_query) {
  const std::string served = mapping.fixed_repository() + " and the repositories below it";
  const auto route = oci::parse_route(path);
  if (!route) {
    return local_answer{404, "NAME_UNKNOWN", "not a registry API path; registryd serves " + served, nullptr};
  }
  const bool read = method == "GET" || method == "HEAD";
  switch (route->kind) {
    case oci::route_kind::base:
      if (read) return local_answer{200, "", "", nullptr};
      return unsupported("the version check answers GET and HEAD only");
    case oci::route_kind::catalog:
      return unsupported("registryd in Direct mode does not list repositories: it forwards pulls of " +
                         served + " to the upstream registry");
    case oci::route_kind::upload_start:
    case oci::route_kind::upload_session:
      return unsupported("registryd in Direct mode forwards pulls only: push is not supported");
    default: break;
  }
  if (!read) {
    return unsupported("registryd in Direct mode forwards pulls only: " + std::string(method) +
                       " (push, delete) is not supported");
  }
  // The spec's 400s for a bad name, tag or digest (and 404 for names outside the fixed
  // repository) are answered here: nothing the upstream could not take is forwarded.
  auto checked = oci::check_route(*route);
  if (const auto* err = std::get_if<oci::api_error>(&checked)) {
    return local_answer{oci::http_status(err->code), std::string(oci::code_text(err->code)), err->message,
                        err->detail};
  }
  auto& target = std::get<oci::target>(checked);
  auto upstream = mapping.to_upstream(target.name);
  if (!upstream) {
    return local_answer{404, "NAME_UNKNOWN",
                        "repository " + target.name + " is not served: registryd in Direct mode serves " + served,
                        json{{"name", target.name}}};
  }

  forward_plan plan;
  plan.route = target;
  plan.client_name = target.name;
  plan.upstream_name = std::move(*upstream);
  plan.method = std::string(method);
  plan.scope = oci::client::pull_scope(plan.upstream_name);
  // A manifest by digest is verified on its way through; blobs are the client's to verify.
  if (target.kind == oci::route_kind::manifest && method == "GET") plan.verify = target.digest;

  if (route->kind == oci::route_kind::tags_list) {
    plan.target = "/v2/" + plan.upstream_name + "/tags/list";
  } else {
    plan.target = "/v2/" + plan.upstream_name + "/" + std::string(segment_of(route->kind)) + "/" + route->reference;
  }
  plan.target += upstream_query(route->kind, raw_query);
  return plan;
}

std::string upstream_query(oci::route_kind kind, std::string_view raw_query) {
  std::vector<std::string_view> kept;
  if (kind == oci::route_kind::tags_list) kept = {"n", "last"};
  if (kind == oci::route_kind::referrers) kept = {"artifactType"};
  std::string out;
  while (!raw_query.empty()) {
    const auto amp = raw_query.find('&');
    const std::string_view pair = raw_query.substr(0, amp);
    raw_query = amp == std::string_view::npos ? std::string_view{} : raw_query.substr(amp + 1);
    const auto eq = pair.find('=');
    const std::string key = query_decode(pair.substr(0, eq));
    bool wanted = false;
    for (const auto k : kept) wanted = wanted || key == k;
    if (!wanted) continue;
    const std::string value = eq == std::string_view::npos ? "" : query_decode(pair.substr(eq + 1));
    out += (out.empty() ? "?" : "&") + query_encode(key) + "=" + query_encode(value);
  }
  return out;
}

oci::client::header_list upstream_request_headers(const header_fields& client_headers) {
  oci::client::header_list out;
  std::string accept;
  for (const auto& [name, value] : client_headers) {
    if (iequals(name, "Accept")) {
      if (!value.empty()) accept += (accept.empty() ? "" : ", ") + value;
    } else if (is_one_of(name, {"Range", "If-Range", "If-None-Match", "If-Match", "If-Modified-Since"})) {
      if (!out.has(name)) out.add(name, value);
    }
  }
  if (!accept.empty()) out.add("Accept", accept);
  return out;
}

header_fields client_response_headers(const oci::client::header_list& upstream,
                                      const oci::path_mapping& mapping,
                                      std::string_view upstream_host) {
  header_fields out;
  for (const auto& f : upstream) {
    if (is_one_of(f.name, {"Content-Type", "Content-Length", "Content-Range", "Content-Encoding",
                           "Accept-Ranges", "Docker-Content-Digest", "ETag", "Last-Modified",
                           "Cache-Control", "Expires", "Retry-After", "OCI-Filters-Applied",
                           "OCI-Subject"})) {
      out.emplace_back(f.name, f.value);
    } else if (iequals(f.name, "Location")) {
      out.emplace_back(f.name, mapping.location_to_client(f.value, upstream_host));
    } else if (iequals(f.name, "Link")) {
      out.emplace_back(f.name, link_to_client(f.value, mapping, upstream_host));
    }
  }
  return out;
}

std::string error_body_to_client(std::string_view body, const oci::client::upstream_error& error,
                                 const oci::path_mapping& mapping, const forward_plan& plan) {
  auto doc = json::parse(body, nullptr, false);
  if (doc.is_object() && doc.contains("errors") && doc["errors"].is_array() && !doc["errors"].empty()) {
    json errors = json::array();
    for (auto e : doc["errors"]) {
      if (!e.is_object()) continue;
      if (e.contains("message") && e["message"].is_string()) {
        e["message"] = client_message(e["message"].get_ref<const std::string&>(), mapping, plan);
      }
      if (e.contains("detail")) map_strings(e["detail"], mapping);
      errors.push_back(std::move(e));
    }
    if (!errors.empty()) return json{{"errors", errors}}.dump();
  }
  json e = {{"code", error.code.empty() ? "UNKNOWN" : error.code},
            {"message", client_message(error.message, mapping, plan)}};
  if (!error.detail.empty()) {
    auto detail = json::parse(error.detail, nullptr, false);
    if (!detail.is_discarded()) {
      map_strings(detail, mapping);
      e["detail"] = std::move(detail);
    }
  }
  return json{{"errors", json::array({e})}}.dump();
}

oci::client::upstream_error error_from_answer(int status, const oci::client::header_list& headers,
                                              std::string_view body, const forward_plan& plan,
                                              std::string_view upstream_host) {
  oci::client::upstream_error e;
  e.kind = oci::client::error_kind::http;
  e.status = status;
  e.headers = headers;
  const auto doc = json::parse(body, nullptr, false);
  if (doc.is_object() && doc.contains("errors") && doc["errors"].is_array() && !doc["errors"].empty() &&
      doc["errors"][0].is_object()) {
    const auto& first = doc["errors"][0];
    if (first.contains("code") && first["code"].is_string()) e.code = first["code"].get<std::string>();
    if (first.contains("message") && first["message"].is_string()) e.message = first["message"].get<std::string>();
    if (first.contains("detail") && !first["detail"].is_null()) e.detail = first["detail"].dump();
  }
  if (e.code.empty()) {
    switch (status) {
      case 401: e.code = "UNAUTHORIZED"; break;
      case 403: e.code = "DENIED"; break;
      case 404:
        e.code = plan.route.kind == oci::route_kind::manifest ? "MANIFEST_UNKNOWN"
                 : plan.route.kind == oci::route_kind::blob   ? "BLOB_UNKNOWN"
                                                              : "NAME_UNKNOWN";
        break;
      case 429: e.code = "TOOMANYREQUESTS"; break;
      default: e.code = status >= 500 ? "UNAVAILABLE" : "UNKNOWN";
    }
  }
  if (e.message.empty()) {
    e.message = std::string(upstream_host) + " answered " + std::to_string(status);
    std::string text(body.substr(0, 201));
    while (!text.empty() && (text.back() == '\n' || text.back() == '\r' || text.back() == ' ')) text.pop_back();
    const bool printable = std::all_of(text.begin(), text.end(), [](char c) {
      return c == ' ' || c == '\t' || (static_cast<unsigned char>(c) >= 0x20 && c != 0x7f);
    });
    if (!text.empty() && text.size() <= 200 && printable && !doc.is_object()) e.message += ": " + text;
  }
  return e;
}

int client_status_for(const oci::client::upstream_error& error) {
  if (error.status == 401) return 502;
  if (error.status >= 400 && error.status <= 599) return error.status;
  return 502;
}

std::optional<std::string> tags_list_to_client(std::string_view body, std::string_view client_name) {
  auto doc = json::parse(body, nullptr, false);
  if (!doc.is_object() || !doc.contains("tags") || !(doc["tags"].is_array() || doc["tags"].is_null())) {
    return std::nullopt;
  }
  doc["name"] = client_name;
  return doc.dump();
}

local_answer transport_failure(const oci::client::upstream_error& error, std::string_view upstream_host,
                               const oci::path_mapping& mapping) {
  using oci::client::error_kind;
  const bool retry = error.kind == error_kind::connect || error.kind == error_kind::timeout ||
                     error.kind == error_kind::io || error.kind == error_kind::canceled;
  const std::string host(upstream_host);
  return local_answer{
      retry ? 503 : 502, "UNAVAILABLE",
      (retry ? "the upstream registry " + host + " is unreachable: " : "the upstream registry " + host + " failed: ") +
          mapping.text_to_client(error.message),
      json{{"upstream", host}, {"failure", std::string(oci::client::to_string(error.kind))}}};
}

}  // namespace registryd::direct
