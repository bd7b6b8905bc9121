// Reading a small text file whole (a CA bundle, a credentials file), and replacing one
// atomically (an index a cache saves): for files of a few KiB to a few MiB, never for blobs.
#pragma once

#include <registryd/oci/storage/store_result.hpp>

#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>

namespace registryd::oci {

// The content of `path`; nullopt when it cannot be opened.
inline std::optional<std::string> read_text_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::ostringstream s;
  s << in.rdbuf();
  if (in.bad()) return std::nullopt;
  return s.str();
}

// Replaces `path` with `content` atomically: a temporary in the same directory, fsync,
// rename, fsync of the directory (created when missing). A crash leaves the old or the new
// content, never a mix.
storage::store_status write_text_file_atomic(const std::filesystem::path& path, std::string_view content);

}  // namespace registryd::oci
