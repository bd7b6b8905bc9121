// The containerd description a mode plugin returns from describe_containerd (schema:
// docs/plugin-authors.md, "The containerd description"), parsed and validated.
//
// A plugin is third-party code, so everything it says is checked before anything is written to
// a node: every error names the JSON path of the offending value, e.g.
// `hosts[0].mirrors[1].url: must start with http:// or https://`.
#pragma once

#include <registryd/sdk/containerd.hpp>
#include <registryd/util/result.hpp>


#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace registryd::containerd {

// The structs are the SDK's (registryd/sdk/containerd.hpp): one definition for the plugin that
// writes a description and the host that reads it. Parsed here, `ca_pem` is canonical PEM
// (each certificate re-encoded, '\n' line ends).
using sdk::containerd::description;
using sdk::containerd::mirror;
using sdk::containerd::mirror_auth;
using sdk::containerd::path_rewrite;
using sdk::containerd::registry_host;

// Validates and parses a description. Unknown keys are refused too: a misspelt key
// ("skipVerfy") would otherwise be silently ignored on every node.
util::result<description> parse_description(const nlohmann::json& doc);

}  // namespace registryd::containerd
