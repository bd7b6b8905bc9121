// The token realm, /auth/token: the docker registry token protocol's GET form
// (https://distribution.github.io/distribution/spec/auth/token/) with HTTP basic credentials,
// and the OAuth2 password grant POST form that containerd tries first
// (https://distribution.github.io/distribution/spec/auth/oauth/).
#include <registryd/frontdoor/front_door.hpp>

#include "http_message.hpp"

#include <registryd/auth/basic_credentials.hpp>
#include <registryd/sdk/oci_error.hpp>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <ctime>

namespace registryd::frontdoor {
namespace {

std::string rfc3339(std::int64_t unix_seconds) {
  const std::time_t t = static_cast<std::time_t>(unix_seconds);
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

void error_json(http_response& res, unsigned status, std::string_view code,
                std::string_view message) {
  res.status = status;
  res.set_content(sdk::oci_error_body(code, message), "application/json");
}

// Of a parameter's values (a client may repeat it), the first that is neither empty nor `want`;
// "" when there is none. A repeated service or account is checked whole, not by its first value:
// `service=registryd&service=other` names another service. An empty value counts as absent.
std::string first_other(const std::multimap<std::string, std::string>& params, const char* name,
                        std::string_view want) {
  const auto range = params.equal_range(name);
  for (auto it = range.first; it != range.second; ++it) {
    if (!it->second.empty() && it->second != want) return it->second;
  }
  return {};
}

// RFC 6749, section 5.2: what an OAuth2 client expects from a failed token POST.
void oauth_error(http_response& res, unsigned status, std::string_view error,
                 std::string_view description) {
  res.status = status;
  res.set_content(nlohmann::json{{"error", error}, {"error_description", description}}.dump(),
                  "application/json");
}

}  // namespace

void front_door::handle_token_get(const http_request& req, http_response& res) const {
  res.set_header("Cache-Control", "no-store");
  const auto tokens = token_snapshot();
  const auto auth = auth_snapshot();
  if (!tokens || !auth) {
    error_json(res, 404, "UNSUPPORTED",
               !auth ? "authentication is off: the registry needs no token"
                     : "token authentication is not enabled");
    return;
  }
  const std::string authorization = req.header("Authorization");
  if (!authorization.empty() && refuse_when_failing(req, res)) return;
  const auto who = auth->authenticate(authorization);
  if (!who) {
    if (!authorization.empty()) note_failure(req);
    // Tokens are only for users of the users file: anonymous requests are refused.
    res.set_header("WWW-Authenticate", std::string(auth::basic_challenge));
    error_json(res, 401, "UNAUTHORIZED",
               req.has_header("Authorization") ? "invalid credentials"
                                               : "authentication required: use basic credentials");
    return;
  }
  const auto params = req.params();
  if (!first_other(params, "account", who->name).empty()) {
    error_json(res, 400, "DENIED", "the account parameter names another user than the credentials");
    return;
  }
  std::vector<std::string> scopes;
  const auto range = params.equal_range("scope");
  for (auto it = range.first; it != range.second; ++it) scopes.push_back(it->second);
  answer_token(res, *who, scopes, first_other(params, "service", tokens->settings().service), false);
}

void front_door::handle_token_post(const http_request& req, request_body& reader,
                                   http_response& res) const {
  res.set_header("Cache-Control", "no-store");
  std::string body;
  if (!read_bounded(req, reader, token_form_limit, body)) {
    oauth_error(res, 413, "invalid_request", "the form is larger than 16 KiB");
    return;
  }
  const auto tokens = token_snapshot();
  const auto auth = auth_snapshot();
  if (!tokens || !auth) {
    oauth_error(res, 404, "unsupported_grant_type", "token authentication is not enabled");
    return;
  }
  httplib::Params form;
  httplib::detail::parse_query_text(body, form);
  auto field = [&](const char* name) {
    const auto it = form.find(name);
    return it == form.end() ? std::string() : it->second;
  };
  if (field("grant_type") != "password") {
    // No refresh tokens are handed out, so the password grant is the only one.
    oauth_error(res, 400, "unsupported_grant_type", "only grant_type=password is supported");
    return;
  }
  const std::string user = field("username");
  if (user.empty() || user.find(':') != std::string::npos) {
    oauth_error(res, 400, "invalid_request", "username is missing or invalid");
    return;
  }
  if (refuse_when_failing(req, res)) return;
  const auto who = auth->authenticate(auth::basic_authorization(user, field("password")));
  if (!who) {
    note_failure(req);
    oauth_error(res, 401, "invalid_grant", "invalid credentials");
    return;
  }
  answer_token(res, *who, {field("scope")}, first_other(form, "service", tokens->settings().service), true);
}

void front_door::answer_token(http_response& res,
                              const auth::principal& who, const std::vector<std::string>& scopes,
                              std::string_view service, bool oauth_form) const {
  const auto tokens = token_snapshot();
  // A token for another service would be refused wherever it went: say so now.
  if (!service.empty() && service != tokens->settings().service) {
    const std::string message = "unknown service \"" + std::string(service) +
                                "\": this realm issues tokens for \"" +
                                tokens->settings().service + "\"";
    if (oauth_form) {
      oauth_error(res, 400, "invalid_request", message);
    } else {
      error_json(res, 400, "DENIED", message);
    }
    return;
  }
  const std::vector<auth::resource_actions> requested = auth::parse_scopes(scopes);
  std::vector<auth::resource_actions> granted = auth::grant(who.access, requested);
  auto issued = tokens->issue(who.name, std::move(granted), std::chrono::system_clock::now());
  if (!issued) {
    logger_->error("cannot issue a token for {}: {}", who.name, issued.error_message());
    error_json(res, 500, "UNKNOWN", "cannot issue a token");
    return;
  }
  logger_->info("token for {}: granted [{}] of [{}]", who.name, auth::to_string(issued->access),
                auth::to_string(requested));
  nlohmann::json body = {{"token", issued->token},
                         {"access_token", issued->token},
                         {"expires_in", issued->expires_in.count()},
                         {"issued_at", rfc3339(issued->issued_at)}};
  if (oauth_form) body["scope"] = auth::to_string(issued->access);
  res.status = 200;
  res.set_content(body.dump(), "application/json");
}

}  // namespace registryd::frontdoor
