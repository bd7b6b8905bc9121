// Scopes of the docker registry token protocol ("repository:system/deckhouse:pull,push",
// "registry:catalog:*"): parsing what a client asks for, formatting challenges, and deciding
// what an account is granted. See https://distribution.github.io/distribution/spec/auth/scope/
#pragma once

#include <registryd/auth/access.hpp>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace registryd::auth {

// One resource and the actions on it, as in a scope string and in a token's `access` claim.
struct resource_actions {
  std::string type;                  // "repository", "registry"
  std::string name;                  // "system/deckhouse", "catalog"
  std::vector<std::string> actions;  // sorted, no duplicates: "pull", "push", "delete", "*"
  bool operator==(const resource_actions&) const = default;
};

// What a token must grant to fetch from the packages proxy: "registry:packages:pull".
inline const resource_actions packages_resource{"registry", "packages", {"pull"}};

// "type:name:action[,action...]". The type ends at the first ':' and the actions start after
// the last, so a name may hold ':' (a registry host with a port). nullopt when a part is empty
// or the text holds a space or a control character. Actions are sorted and deduplicated;
// empty ones ("pull,,push") are dropped.
std::optional<resource_actions> parse_scope(std::string_view text);

// The `scope` parameters of a token request: each may hold several scopes separated by spaces
// (the OAuth2 form). Scopes for the same resource are merged. Malformed ones are ignored, as
// distribution's token server does: a client that asks for nonsense is granted nothing for it.
std::vector<resource_actions> parse_scopes(const std::vector<std::string>& params);

// "repository:a/b:pull,push"; a list is joined with spaces, as a challenge's scope= carries it.
std::string to_string(const resource_actions& r);
std::string to_string(const std::vector<resource_actions>& list);

// True for a repository name per the distribution spec: path components of lower-case letters
// and digits, joined inside by '.', '_', '__' or runs of '-', separated by '/'; at most 255
// characters.
bool is_repository_name(std::string_view name) noexcept;

// What `account` is given of `requested`: the intersection, never an error. Repository scopes
// keep the actions the account holds (pull, push, delete; "*" is kept only for an account that
// holds all three and is otherwise replaced by the actions it holds); "registry:catalog:*" is
// kept for accounts with catalog access, "registry:packages:pull" for accounts that may pull.
// Unknown types, other registry resources, invalid
// repository names and unknown actions are dropped, and so are resources left with no action.
std::vector<resource_actions> grant(access_bits account,
                                    const std::vector<resource_actions>& requested);

// True when every action of every entry of `needed` is in `granted` (a granted "*" covers any
// action on its resource), as distribution's access controller checks a token.
bool covers(const std::vector<resource_actions>& granted,
            const std::vector<resource_actions>& needed);

// The REGISTRYD_ACCESS_* bits `granted` gives on one repository ("*" gives all three).
access_bits repository_access(const std::vector<resource_actions>& granted,
                              std::string_view repository);

}  // namespace registryd::auth
