// Small POSIX helpers the storage classes share: durable directory creation, atomic file
// publication, descriptors that close themselves, and errno turned into store_errors.
#pragma once

#include <registryd/oci/storage/store_result.hpp>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace registryd::oci::storage::fsx {

namespace fs = std::filesystem;
using time_point = std::chrono::system_clock::time_point;

class unique_fd {
 public:
  unique_fd() = default;
  explicit unique_fd(int fd) noexcept : fd_(fd) {}
  unique_fd(unique_fd&& o) noexcept : fd_(o.release()) {}
  unique_fd& operator=(unique_fd&& o) noexcept;
  unique_fd(const unique_fd&) = delete;
  unique_fd& operator=(const unique_fd&) = delete;
  ~unique_fd();
  int get() const noexcept { return fd_; }
  int release() noexcept {
    const int f = fd_;
    fd_ = -1;
    return f;
  }
  explicit operator bool() const noexcept { return fd_ >= 0; }

 private:
  int fd_ = -1;
};

std::string errno_text(int e);
// errc::not_found for ENOENT/ENOTDIR, errc::io otherwise; "<what> <path>: <errno text>".
store_error from_errno(std::string_view what, const fs::path& path, int e);

// Creates `dir` and any missing parents; each directory created is made durable by an fsync
// of its parent, so a link written into it after a crash is never orphaned.
store_status ensure_dir(const fs::path& dir);
store_status fsync_dir(const fs::path& dir);
// Writes all bytes at `offset` (pwrite, retried on EINTR and short writes).
bool pwrite_all(int fd, const char* data, std::size_t size, std::uint64_t offset);
// Reads a whole small file (at most `max_size` bytes; more is an io error).
store_result<std::string> read_file(const fs::path& path, std::size_t max_size = 1 << 20);
// Replaces `path` with `content` atomically: a hidden temporary in the same directory,
// fsync, rename, fsync of the directory. The directory is created when missing.
store_status write_file_atomic(const fs::path& path, std::string_view content);
// Creates an empty file (or keeps an existing one) durably.
store_status create_empty(const fs::path& path);
// Removes a file and makes the removal durable; errc::not_found when it was not there.
store_status remove_file(const fs::path& path);
// Random lowercase hex from `bytes` random bytes (OpenSSL's CSPRNG).
std::string random_hex(std::size_t bytes);
// Moves `path` to a hidden name in its directory (".gc-<random>.tmp"), so that no reader or
// writer sees it there: GC's first step before a delete. nullopt when it could not be moved
// (errno tells; ENOENT: nothing there).
std::optional<fs::path> move_aside(const fs::path& path);
// Puts what move_aside moved back, unless something new took the name meanwhile: then the
// new one stays and the old one goes. Durable (fsync of the directory).
store_status put_back(const fs::path& aside, const fs::path& path);
time_point mtime_of(const struct ::timespec& ts);
// Entries of `dir` (names only; ".", ".." and hidden names skipped); empty when it cannot
// be read (absent, say).
std::vector<std::string> list_dir(const fs::path& dir);
// A name storage writes itself as a temporary, or any hidden file: enumerations skip them.
inline bool is_hidden(std::string_view name) { return !name.empty() && name.front() == '.'; }

}  // namespace registryd::oci::storage::fsx
