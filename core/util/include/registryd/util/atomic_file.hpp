// Crash-safe file publication: write to a temporary file in the same directory, fsync it,
// rename it over the target, fsync the directory. A reader sees the old content or the new,
// never a mix, and after a crash nothing half-written is visible under the target name.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>
#include <system_error>

namespace registryd::util {

// Writes `content` to `path` atomically with permission bits `mode` (applied before the
// rename, so a secret is never visible with looser bits). Creates missing parent directories.
// Returns an empty error_code on success.
std::error_code write_file_atomic(const std::filesystem::path& path, std::string_view content,
                                  std::filesystem::perms mode = std::filesystem::perms(0644));

// Reads a whole small file (configs, keys, state). On failure returns "" and sets `ec`.
std::string read_small_file(const std::filesystem::path& path, std::error_code& ec);

// fsyncs a directory so that a rename or unlink inside it survives a crash.
std::error_code sync_directory(const std::filesystem::path& dir);

}  // namespace registryd::util
