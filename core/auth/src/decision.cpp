#include <registryd/auth/decision.hpp>

namespace registryd::auth {
namespace {

std::string_view access_word(access_bits needed) {
  if (needed & access_push) return "push";
  if (needed & access_delete) return "delete";
  return "pull";
}

std::string_view account_word(access_bits held) {
  if (held == access_read_only) return "read-only";
  if (held == access_mirror_puller) return "mirror-puller";
  if (held == access_mirror_pusher) return "mirror-pusher";
  if (held == access_read_write) return "read-write";
  return "limited";
}

decision refuse(unsigned status, std::string code, std::string message) {
  decision d;
  d.kind = decision::verdict::refuse;
  d.status = status;
  d.code = std::move(code);
  d.message = std::move(message);
  return d;
}

decision allow(access_bits access) {
  decision d;
  d.kind = decision::verdict::allow;
  d.access = access;
  return d;
}

// The users-file bits a scope asks for on its repository (pull, push, delete).
access_bits bits_of(const request_scope& scope) {
  access_bits out = 0;
  for (const auto& r : scope.needed) {
    if (r.type != "repository" || r.name != scope.repository) continue;
    for (const auto& a : r.actions) {
      if (a == "pull") out |= access_pull;
      if (a == "push") out |= access_push;
      if (a == "delete") out |= access_delete;
    }
  }
  return out;
}

}  // namespace

decision decide(const caller& who, std::string_view method, const request_scope& scope) {
  using route = request_scope::route;
  // A method the registry API does not have (BREW, OPTIONS, TRACE, a lowercase "get") needs no
  // access and is no plugin's to answer. RFC 9110 (9.1): an unrecognized method gets 501.
  // Beast admits only token characters in a method, so it is safe to name.
  if (required_access(method) == 0) {
    return refuse(501, "UNSUPPORTED", std::string(method) + " is not a method of the registry API");
  }
  if (who.token_access) {
    // A token holds exactly what it was granted; a request outside any scope it could hold
    // has nothing to check against.
    if (scope.kind == route::unknown) {
      return refuse(404, "NAME_UNKNOWN", "no repository route in this path, or an invalid repository name");
    }
    if (!covers(*who.token_access, scope.needed)) {
      // A user whose account cannot hold what the route needs would only get the same token
      // again: say so (403) instead of asking for another one.
      const access_bits needed = scope.kind == route::repository ? bits_of(scope) : 0;
      if (who.access != 0 && needed != 0 && (who.access & needed) != needed) {
        return refuse(403, "DENIED", "user " + who.name + " may not " + std::string(access_word(needed)) +
                                         ": the account has " + std::string(account_word(who.access)) + " access");
      }
      decision d;
      d.kind = decision::verdict::challenge;
      d.error = "insufficient_scope";
      d.message = "the token does not grant " + to_string(scope.needed);
      return d;
    }
    // Plugins see what the token grants on this repository; the catalog is a read.
    return allow(scope.kind == route::catalog ? access_pull : repository_access(*who.token_access, scope.repository));
  }
  if (scope.kind == route::catalog && (who.access & access_catalog) == 0) {
    return refuse(403, "DENIED", "user " + who.name + " may not list the repositories: the account has no catalog access");
  }
  // What the route needs on its repository (an upload session needs push for every method);
  // elsewhere what the method needs, and the plugin answers the path.
  access_bits needed = required_access(method);
  bool allowed = is_allowed(who.access, method);
  if (scope.kind == route::repository && bits_of(scope) != 0) {
    needed = bits_of(scope);
    allowed = (who.access & needed) == needed;
  }
  if (!allowed) {
    return refuse(403, "DENIED", "user " + who.name + " may not " + std::string(access_word(needed)) +
                                     ": the account has " + std::string(account_word(who.access)) + " access");
  }
  return allow(plugin_access(who.access));
}

}  // namespace registryd::auth
