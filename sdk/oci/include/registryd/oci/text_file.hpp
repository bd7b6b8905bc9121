// Reading a small text file whole (a CA bundle, a credentials file): for files of a few KiB
// that are re-read when they change, never for blobs.
#pragma once

#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>

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

}  // namespace registryd::oci
