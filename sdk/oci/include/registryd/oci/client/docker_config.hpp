// Credentials from a docker config document (`~/.docker/config.json`, podman's auth.json, a
// Kubernetes dockerconfigjson Secret, a ModuleSource's `dockerCfg`):
//   {"auths": {"registry.example.com": {"auth": "<base64 user:password>"}}}
// or with `username` and `password` fields instead of `auth`.
//
// Thread-safety: pure functions.
#pragma once

#include <registryd/oci/client/options.hpp>

#include <nlohmann/json.hpp>

#include <optional>
#include <string_view>

namespace registryd::oci::client {

// The credentials `config` holds for `registry` (host[:port]). Keys are compared after
// dropping a scheme ("https://") and anything after the host ("/v1/"), as docker does.
// nullopt when the document has no entry for the registry, or only an empty one (docker keeps
// the secret in a credsStore then): anonymous. Throws
// std::invalid_argument naming the field when the document or the matching entry is
// malformed (`auths` not an object, `auth` not base64 of "user:password").
std::optional<credentials> docker_config_credentials(const nlohmann::json& config, std::string_view registry);

}  // namespace registryd::oci::client
