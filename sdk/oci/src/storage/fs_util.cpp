#include "fs_util.hpp"
#include <registryd/oci/text_file.hpp>

#include <openssl/rand.h>

#include <cerrno>
#include <dirent.h>
#include <cstdio>
#include <fcntl.h>
#include <stdexcept>
#include <sys/stat.h>
#include <system_error>
#include <unistd.h>
#include <vector>

namespace registryd::oci::storage::fsx {

unique_fd& unique_fd::operator=(unique_fd&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = o.release();
  }
  return *this;
}

unique_fd::~unique_fd() {
  if (fd_ >= 0) ::close(fd_);
}

std::string errno_text(int e) { return std::system_category().message(e); }

store_error from_errno(std::string_view what, const fs::path& path, int e) {
  const errc code = (e == ENOENT || e == ENOTDIR) ? errc::not_found : errc::io;
  return make_error(code, std::string(what) + " " + path.string() + ": " + errno_text(e));
}

store_status fsync_dir(const fs::path& dir) {
  unique_fd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd) return from_errno("cannot open directory", dir, errno);
  if (::fsync(fd.get()) != 0) return from_errno("cannot fsync directory", dir, errno);
  return success();
}

store_status ensure_dir(const fs::path& dir) {
  struct ::stat st {};
  if (::stat(dir.c_str(), &st) == 0) {
    if (S_ISDIR(st.st_mode)) return success();
    return make_error(errc::io, dir.string() + " exists and is not a directory");
  }
  if (errno != ENOENT) return from_errno("cannot stat", dir, errno);
  const fs::path parent = dir.parent_path();
  if (!parent.empty() && parent != dir) {
    if (auto st_parent = ensure_dir(parent); !st_parent) return st_parent;
  }
  if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) {
    return from_errno("cannot create directory", dir, errno);
  }
  // The new entry lives in the parent: without this fsync a crash could lose the directory
  // and with it every file later made durable inside it.
  return fsync_dir(parent.empty() ? fs::path(".") : parent);
}

bool pwrite_all(int fd, const char* data, std::size_t size, std::uint64_t offset) {
  while (size > 0) {
    const ssize_t n = ::pwrite(fd, data, size, static_cast<off_t>(offset));
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    data += n;
    size -= static_cast<std::size_t>(n);
    offset += static_cast<std::uint64_t>(n);
  }
  return true;
}

store_result<std::string> read_file(const fs::path& path, std::size_t max_size) {
  unique_fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return from_errno("cannot open", path, errno);
  std::string text;
  char buf[4096];
  for (;;) {
    const ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      return from_errno("cannot read", path, errno);
    }
    if (n == 0) break;
    text.append(buf, static_cast<std::size_t>(n));
    if (text.size() > max_size) return make_error(errc::io, path.string() + " is larger than expected");
  }
  return text;
}

store_status write_file_atomic(const fs::path& path, std::string_view content) {
  const fs::path dir = path.parent_path();
  if (auto st = ensure_dir(dir); !st) return st;
  // Built by appending: `"." + string` trips GCC 12's -Wrestrict false positive at -O3.
  std::string leaf(1, '.');
  leaf.append(path.filename().string()).append(".").append(random_hex(8)).append(".tmp");
  const fs::path tmp = dir / leaf;
  {
    unique_fd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
    if (!fd) return from_errno("cannot create", tmp, errno);
    if (!pwrite_all(fd.get(), content.data(), content.size(), 0) || ::fsync(fd.get()) != 0) {
      const int e = errno;
      ::unlink(tmp.c_str());
      return from_errno("cannot write", tmp, e);
    }
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const int e = errno;
    ::unlink(tmp.c_str());
    return from_errno("cannot rename into", path, e);
  }
  return fsync_dir(dir);
}

store_status create_empty(const fs::path& path) {
  const fs::path dir = path.parent_path();
  if (auto st = ensure_dir(dir); !st) return st;
  unique_fd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644));
  if (!fd) return from_errno("cannot create", path, errno);
  if (::fsync(fd.get()) != 0) return from_errno("cannot fsync", path, errno);
  return fsync_dir(dir);
}

store_status remove_file(const fs::path& path) {
  if (::unlink(path.c_str()) != 0) return from_errno("cannot remove", path, errno);
  return fsync_dir(path.parent_path());
}

std::string random_hex(std::size_t bytes) {
  std::vector<unsigned char> raw(bytes);
  if (RAND_bytes(raw.data(), static_cast<int>(raw.size())) != 1) {
    throw std::runtime_error("the random number generator failed");
  }
  static constexpr char digits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes * 2);
  for (const unsigned char b : raw) {
    out.push_back(digits[b >> 4]);
    out.push_back(digits[b & 0x0f]);
  }
  return out;
}

std::optional<fs::path> move_aside(const fs::path& path) {
  fs::path aside = path.parent_path() / (".gc-" + random_hex(8) + ".tmp");
  if (::rename(path.c_str(), aside.c_str()) != 0) return std::nullopt;
  return aside;
}

store_status put_back(const fs::path& aside, const fs::path& path) {
  if (::renameat2(AT_FDCWD, aside.c_str(), AT_FDCWD, path.c_str(), RENAME_NOREPLACE) != 0) {
    if (errno != EEXIST) return from_errno("cannot put back", path, errno);
    ::unlink(aside.c_str());
  }
  return fsync_dir(path.parent_path());
}

std::vector<std::string> list_dir(const fs::path& dir) {
  std::vector<std::string> names;
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return names;
  while (const dirent* e = ::readdir(d)) {
    const std::string_view name = e->d_name;
    if (name == "." || name == ".." || is_hidden(name)) continue;
    names.emplace_back(name);
  }
  ::closedir(d);
  return names;
}

time_point mtime_of(const struct ::timespec& ts) {
  return time_point(std::chrono::duration_cast<time_point::duration>(
      std::chrono::seconds(ts.tv_sec) + std::chrono::nanoseconds(ts.tv_nsec)));
}

}  // namespace registryd::oci::storage::fsx

namespace registryd::oci {

storage::store_status write_text_file_atomic(const std::filesystem::path& path, std::string_view content) {
  return storage::fsx::write_file_atomic(path, content);
}

}  // namespace registryd::oci
