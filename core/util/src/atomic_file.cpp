#include <registryd/util/atomic_file.hpp>

#include <cerrno>
#include <cstdio>
#include <fcntl.h>
#include <fstream>
#include <sstream>
#include <sys/stat.h>
#include <unistd.h>

namespace registryd::util {
namespace {

std::error_code last_error() { return {errno, std::generic_category()}; }

// Writes everything or fails; retries short writes and EINTR.
std::error_code write_all(int fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return last_error();
    }
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  return {};
}

}  // namespace

std::error_code sync_directory(const std::filesystem::path& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return last_error();
  std::error_code ec;
  if (::fsync(fd) != 0) ec = last_error();
  ::close(fd);
  return ec;
}

std::error_code write_file_atomic(const std::filesystem::path& path, std::string_view content,
                                  std::filesystem::perms mode) {
  std::error_code ec;
  const auto dir = path.has_parent_path() ? path.parent_path() : std::filesystem::path(".");
  std::filesystem::create_directories(dir, ec);
  if (ec) return ec;

  // Built by appending: `"." + string` trips GCC 12's -Wrestrict false positive at -O3.
  std::string leaf(1, '.');
  leaf.append(path.filename().string()).append(".tmp-XXXXXX");
  std::string tmpl = (dir / leaf).string();
  const int fd = ::mkostemp(tmpl.data(), O_CLOEXEC);
  if (fd < 0) return last_error();
  const std::filesystem::path tmp(tmpl);

  auto fail = [&](std::error_code e) {
    ::close(fd);
    ::unlink(tmp.c_str());
    return e;
  };
  if (::fchmod(fd, static_cast<mode_t>(mode)) != 0) return fail(last_error());
  if (auto e = write_all(fd, content)) return fail(e);
  if (::fsync(fd) != 0) return fail(last_error());
  if (::close(fd) != 0) {
    ::unlink(tmp.c_str());
    return last_error();
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const auto e = last_error();
    ::unlink(tmp.c_str());
    return e;
  }
  return sync_directory(dir);
}

std::string read_small_file(const std::filesystem::path& path, std::error_code& ec) {
  ec.clear();
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    ec = std::make_error_code(std::errc::no_such_file_or_directory);
    if (std::filesystem::exists(path)) ec = std::make_error_code(std::errc::permission_denied);
    return {};
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace registryd::util
