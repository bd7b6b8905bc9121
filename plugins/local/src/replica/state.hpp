// What one Local replica holds, as replica sync compares it with its peers: per repository the
// tags (with the time each was last set), the manifest revisions (with the time each was
// stored), and the tombstones of tags and manifests deleted lately. docs/replica-sync.md.
//
// Times are nanoseconds since the Unix epoch, taken from the files' mtimes: a tag's time is
// its tag file's mtime, a manifest's its revision file's. Sync copies a tag or manifest with
// the time its peer reports and sets the file's mtime to it, so the time of the original
// push travels with the content and "newest wins" compares pushes, not copies.
//
// The wire form (GET /v2/_catalog?replica-state, served by the Local mode):
//
//   {"version": 1,
//    "repositories": {
//      "<name>": {"tags":            {"<tag>": {"digest": "sha256:..", "updated": <ns>}},
//                 "manifests":       {"sha256:..": <ns>},
//                 "deletedTags":     {"<tag>": {"digest": "sha256:..", "deleted": <ns>}},
//                 "deletedManifests": {"sha256:..": <ns>}}}}
//
// Thread-safety: plain values and pure functions.
#pragma once

#include "replica/oci_names.hpp"

#include <registryd/oci/digest.hpp>
#include <registryd/oci/result.hpp>

#include <nlohmann/json.hpp>

#include <cstdint>
#include <functional>
#include <map>
#include <string>

namespace registryd::local::replica {

// Nanoseconds since the Unix epoch.
using unix_ns = std::int64_t;

inline constexpr int state_format_version = 1;

struct tag_entry {
  oci::digest digest;
  unix_ns updated = 0;  // when the tag was last pointed at `digest` (its original push)
  friend bool operator==(const tag_entry&, const tag_entry&) = default;
};

struct tag_tombstone {
  oci::digest digest;  // what the tag pointed at when it was deleted
  unix_ns deleted = 0;
  friend bool operator==(const tag_tombstone&, const tag_tombstone&) = default;
};

struct repository_state {
  std::map<std::string, tag_entry, std::less<>> tags;
  std::map<oci::digest, unix_ns> manifests;  // every revision, tagged or not
  std::map<std::string, tag_tombstone, std::less<>> deleted_tags;
  std::map<oci::digest, unix_ns> deleted_manifests;

  bool empty() const noexcept {
    return tags.empty() && manifests.empty() && deleted_tags.empty() && deleted_manifests.empty();
  }
  friend bool operator==(const repository_state&, const repository_state&) = default;
};

struct replica_state {
  std::map<std::string, repository_state, std::less<>> repositories;
  friend bool operator==(const replica_state&, const replica_state&) = default;
};

// The wire form above.
nlohmann::json to_json(const replica_state& state);
// Reads the wire form; the error names the offending field. Unknown fields are ignored, so a
// newer peer may add some; another "version" is refused.
result<replica_state> state_from_json(const nlohmann::json& doc);

}  // namespace registryd::local::replica
