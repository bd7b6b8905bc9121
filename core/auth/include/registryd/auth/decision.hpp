// The authorization decision for one /v2/ request: who asks (basic credentials or a token),
// what the request needs (request_scope, on the plugins' own route grammar), and what follows:
// go on with the access bits the plugin gets, challenge for a token that lacks the scope, or
// refuse with the registry API's error. The front door asks; it holds no rules of its own.
#pragma once

#include <registryd/auth/access.hpp>
#include <registryd/auth/request_scope.hpp>
#include <registryd/auth/scope.hpp>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace registryd::auth {

// An authenticated caller.
struct caller {
  std::string name;
  // From the users file: what the account may do. For a Bearer token's subject this is what
  // the account holds now, so that a scope it could never be granted is refused with 403
  // rather than challenged for a token that would not help; 0 when the subject is no user.
  access_bits access = 0;
  std::optional<std::vector<resource_actions>> token_access;  // from a Bearer token
};

struct decision {
  enum class verdict {
    allow,      // serve; `access` is what the plugin gets
    challenge,  // 401 with a Bearer challenge for scope.needed and `error` (insufficient_scope)
    refuse,     // `status` with the OCI error `code` and `message` (403, 404, 405)
  };
  verdict kind = verdict::refuse;
  access_bits access = 0;
  unsigned status = 403;
  std::string code;
  std::string message;
  std::string error;  // the challenge's error parameter
};

decision decide(const caller& who, std::string_view method, const request_scope& scope);

}  // namespace registryd::auth
