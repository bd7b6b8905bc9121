// Names as the OCI distribution spec and the docker reference grammar define them:
// repository names, tags, and full image references (`host[:port]/path[:tag][@digest]`).
#pragma once

#include <registryd/oci/digest.hpp>

#include <optional>
#include <string>
#include <string_view>

namespace registryd::oci {

// The longest repository name registryd accepts (distribution's limit).
inline constexpr std::size_t max_repository_name = 255;

// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*`, at most 255 chars.
bool is_valid_repository_name(std::string_view name) noexcept;

// `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`
bool is_valid_tag(std::string_view tag) noexcept;

// A reference to an image in some registry. `registry` is `host[:port]`; at least one of
// `tag` and `digest` is set after parse() unless the text named neither (then `tag` is
// "latest", as every client assumes).
struct image_reference {
  std::string registry;
  std::string repository;
  std::optional<std::string> tag;
  std::optional<oci::digest> digest;

  // `registry/repository[:tag][@digest]`
  std::string str() const;
  // What goes after /manifests/: the digest when there is one, else the tag.
  std::string manifest_reference() const;

  // Parses a full reference. The first path component is the registry when it contains a
  // '.' or a ':' or is "localhost"; otherwise the reference has no registry and parse fails
  // with a reason (registryd never guesses docker.io). The error names what is wrong.
  static std::optional<image_reference> parse(std::string_view text, std::string* error = nullptr);
};

// A repository location `host[:port]/path` (an imagesRepo): splits at the first '/'.
// The path may be empty (`host:5000`).
struct repository_location {
  std::string registry;
  std::string path;
  static std::optional<repository_location> parse(std::string_view text);
  std::string str() const { return path.empty() ? registry : registry + "/" + path; }
};

}  // namespace registryd::oci
