#include <registryd/oci/media_types.hpp>

#include <cctype>

namespace registryd::oci {

bool is_manifest_media_type(std::string_view type) noexcept {
  return type == media_type::oci_manifest || type == media_type::docker_manifest;
}

bool is_index_media_type(std::string_view type) noexcept {
  return type == media_type::oci_index || type == media_type::docker_manifest_list;
}

bool is_schema1_media_type(std::string_view type) noexcept {
  return type == media_type::docker_schema1_manifest ||
         type == media_type::docker_schema1_signed_manifest;
}

bool is_non_distributable_media_type(std::string_view type) noexcept {
  return type == media_type::docker_foreign_layer ||
         type == media_type::oci_layer_nondistributable ||
         type == media_type::oci_layer_nondistributable_gzip ||
         type == media_type::oci_layer_nondistributable_zstd;
}

namespace {

// RFC 6838 restricted-name: first char alnum, then up to 126 of alnum and !#$&-^_.+
bool is_restricted_name(std::string_view s) noexcept {
  if (s.empty() || s.size() > 127) return false;
  if (std::isalnum(static_cast<unsigned char>(s.front())) == 0) return false;
  for (char c : s) {
    if (std::isalnum(static_cast<unsigned char>(c)) != 0) continue;
    switch (c) {
      case '!': case '#': case '$': case '&': case '-': case '^': case '_': case '.': case '+':
        continue;
      default:
        return false;
    }
  }
  return true;
}

}  // namespace

bool is_well_formed_media_type(std::string_view type) noexcept {
  const auto slash = type.find('/');
  if (slash == std::string_view::npos) return false;
  return is_restricted_name(type.substr(0, slash)) && is_restricted_name(type.substr(slash + 1));
}

std::string essence_of(std::string_view content_type) {
  const auto semicolon = content_type.find(';');
  if (semicolon != std::string_view::npos) content_type = content_type.substr(0, semicolon);
  while (!content_type.empty() && (content_type.front() == ' ' || content_type.front() == '\t')) {
    content_type.remove_prefix(1);
  }
  while (!content_type.empty() && (content_type.back() == ' ' || content_type.back() == '\t')) {
    content_type.remove_suffix(1);
  }
  std::string out(content_type);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

}  // namespace registryd::oci
