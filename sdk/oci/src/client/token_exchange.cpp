#include "token_exchange.hpp"

#include <registryd/oci/base64.hpp>
#include <registryd/oci/client/scope.hpp>

namespace registryd::oci::client::detail {
namespace {

constexpr std::size_t max_token_body = 1024 * 1024;

}  // namespace

std::string basic_authorization(const credentials& c) { return "Basic " + oci::base64_encode(c.username + ":" + c.password); }

result<std::optional<std::string>> token_exchange::authorization(const std::vector<std::string>& scopes, bool refresh) {
  auth_scheme scheme;
  std::string r, s;
  {
    std::lock_guard lock(auth_mutex_);
    scheme = learned_;
    r = realm_;
    s = service_;
  }
  if (scheme == auth_scheme::basic && options_.auth) {
    return std::optional<std::string>(basic_authorization(*options_.auth));
  }
  if (scheme == auth_scheme::bearer) {
    auto token = bearer_token(r, s, scopes, refresh);
    if (!token) return std::move(token).error();
    return std::optional<std::string>("Bearer " + *token);
  }
  return std::optional<std::string>();
}

result<std::string> token_exchange::bearer_token(const std::string& token_realm, const std::string& token_service,
                                               const std::vector<std::string>& scopes, bool refresh) {
  const auto key = token_cache::key(token_realm, token_service, scope_key(scopes));
  if (!refresh) {
    if (auto cached = tokens_.get(key)) return *cached;
  }
  std::shared_future<result<std::string>> flight;
  std::promise<result<std::string>> mine;
  bool leader = false;
  {
    std::lock_guard lock(flights_mutex_);
    const auto it = flights_.find(key);
    if (it != flights_.end()) {
      flight = it->second;
    } else {
      flight = mine.get_future().share();
      flights_.emplace(key, flight);
      leader = true;
    }
  }
  if (!leader) return flight.get();
  auto fetched = fetch_token(token_realm, token_service, normalize_scopes(scopes));
  if (fetched) tokens_.put(key, fetched->token, fetched->expires_in);
  result<std::string> answer = fetched ? result<std::string>(fetched->token)
                                       : result<std::string>(fetched.error());
  mine.set_value(answer);
  {
    std::lock_guard lock(flights_mutex_);
    flights_.erase(key);
  }
  return answer;
}

result<token_answer> token_exchange::fetch_token(const std::string& token_realm, const std::string& token_service,
                                               const std::vector<std::string>& scopes) {
  auto where = detail::parse_url(token_realm);
  if (!where) {
    return make_error(error_kind::protocol, "the token realm '" + token_realm + "' is not an http(s) URL");
  }
  std::string query;
  if (!token_service.empty()) query += "service=" + detail::encode_query_value(token_service);
  for (const auto& s : scopes) query += (query.empty() ? "" : "&") + ("scope=" + detail::encode_query_value(s));
  if (!query.empty()) where->target += (where->target.find('?') == std::string::npos ? "?" : "&") + query;

  header_list headers;
  headers.add("Accept", "application/json");
  if (options_.auth) headers.add("Authorization", basic_authorization(*options_.auth));
  auto a = wire_.perform(*where, "GET", headers, nullptr,
                       [](const response_head&) { return transport::route::capture; }, {}, nullptr,
                       max_token_body);
  const std::string who = options_.auth ? "user " + options_.auth->username : "anonymous access";
  if (a.failure) {
    a.failure->message = "token realm: " + a.failure->message;
    return *std::move(a.failure);
  }
  if (a.head.status != 200) {
    auto e = http_error(a.head, a.captured, *where);
    e.message = "the token realm " + where->authority() + where->target.substr(0, where->target.find('?')) +
                " refused " + who + " (" + std::to_string(a.head.status) + "): " + e.message;
    if (a.head.status == 401 || a.head.status == 403) e.code = "UNAUTHORIZED", e.status = 401;
    return e;
  }
  if (a.capture_truncated) {
    return make_error(error_kind::protocol, "the token realm's answer is larger than 1 MiB", 200);
  }
  auto parsed = parse_token_answer(a.captured);
  if (!parsed) {
    return make_error(error_kind::protocol,
                      "the token realm's answer holds no `token` or `access_token`", 200);
  }
  return *std::move(parsed);
}

result<std::string> token_exchange::learn_bearer(const std::string& realm, const std::string& service,
                                                 const std::vector<std::string>& scopes) {
  {
    std::lock_guard lock(auth_mutex_);
    learned_ = auth_scheme::bearer;
    realm_ = realm;
    service_ = service;
  }
  return bearer_token(realm, service, scopes, true);
}

void token_exchange::learn_basic() {
  std::lock_guard lock(auth_mutex_);
  learned_ = auth_scheme::basic;
}

}  // namespace registryd::oci::client::detail
