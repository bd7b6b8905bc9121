// Token scopes as the docker registry token protocol spells them: `type:name:actions`, e.g.
// `repository:deckhouse/ee:pull,push` or `registry:catalog:*`. A repository name may itself
// hold ':' only in the host part of other resource types, so the actions are what follows the
// LAST ':' and the type what precedes the FIRST.
//
// Thread-safety: pure functions on values.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace registryd::oci::client {

// "repository:<name>:pull"
std::string pull_scope(std::string_view repository);
// "repository:<name>:pull,push"
std::string push_scope(std::string_view repository);
// "registry:catalog:*"
std::string catalog_scope();

// Merges scopes that name the same resource (their actions united), drops empty and malformed
// ones, and sorts: the canonical list a token is requested and cached for.
// {"repository:a:push", "repository:a:pull", "repository:b:pull"} ->
// {"repository:a:pull,push", "repository:b:pull"}
std::vector<std::string> normalize_scopes(const std::vector<std::string>& scopes);

// The token cache key of a list: normalize_scopes joined with ' '.
std::string scope_key(const std::vector<std::string>& scopes);

// Splits a challenge's `scope` parameter, which may list several scopes separated by spaces.
std::vector<std::string> split_scope_param(std::string_view scope);

}  // namespace registryd::oci::client
