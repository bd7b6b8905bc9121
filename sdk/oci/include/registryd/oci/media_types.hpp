// The media types registryd recognises, as the OCI image spec v1.1 and Docker's image manifest
// v2 schema 2 name them. Docker schema 1 types are listed only so that they can be refused
// with a message that says what they are.
//
// Thread-safety: constants and pure functions only.
#pragma once

#include <string>
#include <string_view>

namespace registryd::oci::media_type {

// OCI image spec v1.1
inline constexpr std::string_view oci_manifest = "application/vnd.oci.image.manifest.v1+json";
inline constexpr std::string_view oci_index = "application/vnd.oci.image.index.v1+json";
inline constexpr std::string_view oci_config = "application/vnd.oci.image.config.v1+json";
inline constexpr std::string_view oci_layer = "application/vnd.oci.image.layer.v1.tar";
inline constexpr std::string_view oci_layer_gzip = "application/vnd.oci.image.layer.v1.tar+gzip";
inline constexpr std::string_view oci_layer_zstd = "application/vnd.oci.image.layer.v1.tar+zstd";
// Deprecated in v1.1 but still found in the wild; registries must still accept them.
inline constexpr std::string_view oci_layer_nondistributable =
    "application/vnd.oci.image.layer.nondistributable.v1.tar";
inline constexpr std::string_view oci_layer_nondistributable_gzip =
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip";
inline constexpr std::string_view oci_layer_nondistributable_zstd =
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd";
// The image layout's own file (`oci-layout`) has no media type; this is the empty JSON
// object `{}` artifacts use as config or layer (image spec "Guidance for an Empty Descriptor").
inline constexpr std::string_view oci_empty = "application/vnd.oci.empty.v1+json";
inline constexpr std::string_view oci_empty_digest =
    "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";
inline constexpr long long oci_empty_size = 2;
inline constexpr std::string_view oci_empty_data = "{}";

// Docker image manifest v2, schema 2
inline constexpr std::string_view docker_manifest =
    "application/vnd.docker.distribution.manifest.v2+json";
inline constexpr std::string_view docker_manifest_list =
    "application/vnd.docker.distribution.manifest.list.v2+json";
inline constexpr std::string_view docker_config = "application/vnd.docker.container.image.v1+json";
inline constexpr std::string_view docker_layer = "application/vnd.docker.image.rootfs.diff.tar.gzip";
inline constexpr std::string_view docker_foreign_layer =
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";
inline constexpr std::string_view docker_plugin_config = "application/vnd.docker.plugin.v1+json";

// Docker schema 1 (unsigned and signed): recognised to be refused, never stored.
inline constexpr std::string_view docker_schema1_manifest =
    "application/vnd.docker.distribution.manifest.v1+json";
inline constexpr std::string_view docker_schema1_signed_manifest =
    "application/vnd.docker.distribution.manifest.v1+prettyjws";

// The annotation that names a tag in an image layout's index.json (and in bundles).
inline constexpr std::string_view annotation_ref_name = "org.opencontainers.image.ref.name";

}  // namespace registryd::oci::media_type

namespace registryd::oci {

// An image manifest: OCI image manifest or Docker schema 2 manifest.
bool is_manifest_media_type(std::string_view type) noexcept;
// A list of manifests: OCI image index or Docker manifest list.
bool is_index_media_type(std::string_view type) noexcept;
// Either of the above: what registryd stores under /manifests/.
inline bool is_any_manifest_media_type(std::string_view type) noexcept {
  return is_manifest_media_type(type) || is_index_media_type(type);
}
// Docker schema 1, signed or not.
bool is_schema1_media_type(std::string_view type) noexcept;
// Layers a registry may not hold (their descriptors carry `urls`): Docker foreign layers and
// the OCI non-distributable layer types.
bool is_non_distributable_media_type(std::string_view type) noexcept;
// RFC 6838 shape `type/subtype[+suffix]` with restricted-name characters, no parameters.
bool is_well_formed_media_type(std::string_view type) noexcept;
// The type without parameters and surrounding blanks, lowercased:
// "Application/JSON; charset=utf-8" -> "application/json".
std::string essence_of(std::string_view content_type);

}  // namespace registryd::oci
