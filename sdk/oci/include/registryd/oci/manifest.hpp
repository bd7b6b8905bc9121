// Manifests as a registry receives them: parse and validate the bytes of an OCI image
// manifest, OCI image index, Docker schema 2 manifest or Docker manifest list, given the
// Content-Type they were sent with, and say which blobs and child manifests they reference.
//
// Rules (OCI image spec v1.1, distribution spec v1.1 "Pushing Manifests"):
// - The media type is the document's `mediaType`, or the Content-Type when the document has
//   none. When both are present they must be equal (parameters such as `; charset=` ignored).
//   When neither is, the shape decides: `manifests` -> OCI index, `config` -> OCI manifest.
// - `schemaVersion` must be the number 2. Docker schema 1 (by media type or schemaVersion 1)
//   is refused with a message that says so.
// - A manifest must not carry `manifests`, an index must not carry `config`/`layers` (the
//   image spec's guard against one document read as two types).
// - Every descriptor has a well-formed `mediaType`, a digest registryd can verify (sha256,
//   sha512) and an integer `size` >= 0; `annotations` map strings to strings.
// - An image manifest whose config is the empty descriptor type must set `artifactType`.
//
// Thread-safety: values and pure functions only.
#pragma once

#include <registryd/oci/digest.hpp>
#include <registryd/oci/result.hpp>

#include <nlohmann/json.hpp>

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace registryd::oci {

// The largest manifest registryd accepts or fetches (distribution's limit).
inline constexpr std::size_t max_manifest_size = 4 * 1024 * 1024;

using annotations_map = std::map<std::string, std::string>;

// A content descriptor (image spec "Descriptors").
struct descriptor {
  descriptor(std::string type, oci::digest d, std::int64_t bytes)
      : media_type(std::move(type)), digest(std::move(d)), size(bytes) {}

  std::string media_type;
  oci::digest digest;
  std::int64_t size = 0;
  std::string artifact_type;       // "" when absent
  annotations_map annotations;     // empty when absent
  std::vector<std::string> urls;   // foreign / non-distributable layers
  nlohmann::json platform;         // null when absent; an object on index entries
  std::optional<std::string> data; // embedded base64 data, as sent

  // The descriptor as JSON: mediaType, digest, size, then only the optional fields that are set.
  nlohmann::json to_json() const;

  // Validates one descriptor; `where` names it in the error ("layers[2]", "config").
  static result<descriptor> from_json(const nlohmann::json& j, std::string_view where);
};

enum class manifest_kind {
  image,  // OCI image manifest or Docker schema 2 manifest
  index,  // OCI image index or Docker manifest list
};

struct manifest {
  std::string media_type;
  manifest_kind kind = manifest_kind::image;
  int schema_version = 2;
  std::optional<descriptor> config;  // image manifests only
  std::vector<descriptor> layers;    // image manifests only
  std::vector<descriptor> manifests; // indexes only: the child manifests
  std::optional<descriptor> subject;
  // `artifactType` as the document states it ("" when absent).
  std::string declared_artifact_type;
  annotations_map annotations;

  bool is_index() const noexcept { return kind == manifest_kind::index; }
  // The artifact type the referrers API reports: the declared one, else (image manifests) the
  // config's media type, else "".
  std::string artifact_type() const;
  // The blobs this document references: config first, then layers. Empty for an index.
  std::vector<descriptor> blobs() const;
  // The manifests this document references: the index's entries. Empty for an image manifest.
  const std::vector<descriptor>& children() const noexcept { return manifests; }
  // The tag an image layout index entry carries (`org.opencontainers.image.ref.name`), if any.
  std::optional<std::string> annotation(std::string_view key) const;
};

// Parses and validates `bytes`, sent with `content_type` (a Content-Type header value, ""
// when absent). The error message is fit for the detail of MANIFEST_INVALID.
result<manifest> parse_manifest(std::string_view bytes, std::string_view content_type = {});

// The descriptor of a manifest document itself: its media type, sha256 digest and size.
descriptor describe_manifest(std::string_view bytes, const manifest& m);

}  // namespace registryd::oci
