// Whether a stored manifest may be served to a client, given the Accept header it sent.
//
// registryd follows distribution (registry/handlers/manifests.go, GetManifest) with one
// deliberate difference:
// - An OCI image manifest is served only to a client that accepts
//   application/vnd.oci.image.manifest.v1+json; an OCI index only to one that accepts
//   application/vnd.oci.image.index.v1+json. Otherwise: MANIFEST_UNKNOWN (404) with
//   distribution's messages ("OCI manifest found, but accept header does not support OCI
//   manifests"), because that is what clients already recognise.
// - A Docker schema 2 manifest is served whatever the Accept: distribution no longer converts
//   to schema 1, so there is nothing else to give.
// - A Docker manifest list requested by tag from a client that does not accept lists:
//   distribution serves the linux/amd64 child instead (serve_platform_child); requested by
//   digest, the list itself is served.
// - Difference: distribution ignores wildcards and q values, so a client that sends no Accept
//   is refused OCI content. registryd treats a missing Accept, `*/*` and `application/*` as
//   accepting every type (RFC 9110), and honours `q=0` as "not acceptable".
//
// Thread-safety: pure functions.
#pragma once

#include <registryd/oci/digest.hpp>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace registryd::oci {

struct accept_entry {
  std::string media_type;  // lowercased essence, may be "*/*" or "type/*"
  double quality = 1.0;
};

// Parses an Accept value: a comma separated list (repeated headers joined with ','), each
// with optional parameters; `q` is read, other parameters ignored, malformed entries skipped.
std::vector<accept_entry> parse_accept(std::string_view accept);

// Whether `media_type` is acceptable under `accept`. An empty or blank Accept accepts all.
// The most specific matching entry decides (exact type over `type/*` over `*/*`); q=0 refuses.
bool accepts(std::string_view accept, std::string_view media_type);

enum class negotiation {
  serve,                 // send the stored manifest
  serve_platform_child,  // a Docker list by tag to an old client: send its linux/amd64 child
  refuse,                // answer MANIFEST_UNKNOWN with negotiation_message()
};

// The decision for a stored manifest of `stored_media_type`, requested by tag or by digest.
negotiation negotiate_manifest(std::string_view accept, std::string_view stored_media_type,
                               bool by_tag);

// The message for a refusal (distribution's wording).
std::string negotiation_message(std::string_view stored_media_type);

// For serve_platform_child: the linux/amd64 entry of the manifest list `bytes` (what
// distribution serves to a client that asked by tag and does not accept lists); nullopt when
// the list has none or does not parse.
std::optional<digest> default_platform_child(const std::string& bytes, std::string_view media_type);

}  // namespace registryd::oci
