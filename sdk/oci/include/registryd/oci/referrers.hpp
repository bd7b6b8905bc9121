// The referrers API response (distribution spec v1.1, "Listing Referrers"): an OCI image
// index whose `manifests` are the descriptors of the manifests whose `subject` is a digest.
//
// Thread-safety: pure functions.
#pragma once

#include <registryd/oci/digest.hpp>
#include <registryd/oci/manifest.hpp>

#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace registryd::oci {

// One candidate: the descriptor of the referring manifest (mediaType, digest, size: see
// describe_manifest) and the manifest parsed. Both borrowed for the call.
struct referrer_entry {
  const descriptor* of;
  const manifest* parsed;
};

struct referrers_response {
  nlohmann::json index;        // {"schemaVersion":2,"mediaType":<index>,"manifests":[...]}
  bool filter_applied = false; // true: answer with `OCI-Filters-Applied: artifactType`

  std::string body() const { return index.dump(); }
};

// Builds the response for `subject`. Entries whose manifest's subject is not `subject` are
// left out (so a caller's stale index cannot leak unrelated manifests). Each listed descriptor
// carries mediaType, digest, size, artifactType (manifest::artifact_type()) and the manifest's
// annotations. With `artifact_type_filter` set (and not empty), only entries of that artifact
// type are listed and filter_applied is true. Order: as given.
referrers_response build_referrers(const digest& subject, const std::vector<referrer_entry>& entries,
                                   std::optional<std::string_view> artifact_type_filter = {});

}  // namespace registryd::oci
