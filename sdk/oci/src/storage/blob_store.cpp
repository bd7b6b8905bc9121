#include <registryd/oci/storage/blob_store.hpp>

#include "fs_util.hpp"

#include <atomic>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <limits>
#include <span>
#include <stdexcept>
#include <thread>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

namespace registryd::oci::storage {
namespace {

namespace fs = std::filesystem;

// Appends are gathered into this much memory before a write: request bodies arrive in
// pieces of a few KiB, and one syscall per piece would cost more than the copy.
constexpr std::size_t buffer_size = 1 << 20;
// After this many bytes, writeback of what was written is started without waiting, so dirty
// pages stay few and the fdatasync at commit has little left to do.
constexpr std::uint64_t writeback_step = 8ull << 20;

// Hashes `size` bytes of `fd` from offset 0 with `algorithm`.
store_result<digest> hash_fd(int fd, std::uint64_t size, digest_algorithm algorithm,
                             const fs::path& path) {
  hasher h(algorithm);
  std::vector<char> buf(256 * 1024);
  std::uint64_t offset = 0;
  while (offset < size) {
    const std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(buf.size(), size - offset));
    const ssize_t n = ::pread(fd, buf.data(), want, static_cast<off_t>(offset));
    if (n < 0) {
      if (errno == EINTR) continue;
      return fsx::from_errno("cannot read", path, errno);
    }
    if (n == 0) return make_error(errc::io, path.string() + " is shorter than expected");
    h.update(buf.data(), static_cast<std::size_t>(n));
    offset += static_cast<std::uint64_t>(n);
  }
  return h.current();
}

bool is_hex(std::string_view s) {
  for (const char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return !s.empty();
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// blob_file

blob_file& blob_file::operator=(blob_file&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = o.release();
    size_ = o.size_;
  }
  return *this;
}

blob_file::~blob_file() {
  if (fd_ >= 0) ::close(fd_);
}

store_result<std::string> blob_file::read_all() const {
  std::string bytes(static_cast<std::size_t>(size_), '\0');
  std::uint64_t offset = 0;
  while (offset < size_) {
    const ssize_t n = ::pread(fd_, bytes.data() + offset, static_cast<std::size_t>(size_ - offset),
                              static_cast<off_t>(offset));
    if (n < 0) {
      if (errno == EINTR) continue;
      return make_error(errc::io, "cannot read a blob: " + fsx::errno_text(errno));
    }
    if (n == 0) return make_error(errc::io, "a blob is shorter than its size");
    offset += static_cast<std::uint64_t>(n);
  }
  return bytes;
}

// ---------------------------------------------------------------------------------------------
// blob_writer

struct blob_writer::impl {
  const blob_store* store = nullptr;
  fs::path path;
  fsx::unique_fd fd;
  std::uint64_t size = 0;                 // appended, including the buffer
  std::atomic<std::uint64_t> flushed{0};  // in the file
  std::uint64_t writeback_from = 0;
  std::uint64_t dropped_to = 0;  // pages before this offset were written back and dropped
  std::uint64_t previous_step = 0;  // no_wait: where the step before the last one began
  std::uint64_t drop_limit = std::numeric_limits<std::uint64_t>::max();  // no_wait: keep pages from here
  blob_writer::drop_behind drop_mode = blob_writer::drop_behind::wait;
  // buffer_size bytes, allocated on first use and not initialised (a small blob touches only
  // the pages it fills); the first `used` bytes wait to be written.
  std::unique_ptr<char[]> buffer;
  std::size_t used = 0;
  // What the last room() offered; 0 once bytes were taken or the buffer moved on. appended()
  // takes no more than this, so it never takes bytes nobody put there.
  std::size_t room_given = 0;
  hasher hash;
  bool hash_valid = true;
  bool finished = false;

  explicit impl(digest_algorithm a) : hash(a) {}

  std::size_t buffered() const { return static_cast<std::size_t>(size - flushed.load()); }

  // Writes `data` at the end of the file; on failure cuts the file back to what was flushed.
  store_status write_through(const char* data, std::size_t n) {
    const std::uint64_t at = flushed.load();
    if (!fsx::pwrite_all(fd.get(), data, n, at)) {
      const int e = errno;
      // Whatever part of this write landed is not accounted for: drop it, so the file holds
      // exactly the flushed bytes and the writer can go on (or be resumed) from there.
      (void)::ftruncate(fd.get(), static_cast<off_t>(at));
      size = at;
      used = 0;
      hash_valid = false;
      return fsx::from_errno("cannot write", path, e);
    }
    flushed.store(at + n);
    if (flushed.load() - writeback_from >= writeback_step) {
      // Drop-behind: the step before this one has had a whole step's time to reach the disk;
      // wait for it and let its pages go. A blob is written once and read later (or by a
      // proxy's waiters just behind the writer), so keeping every written page cached only
      // makes the kernel find fresh pages for the next ones, which costs more than the copy.
      if (drop_mode == blob_writer::drop_behind::no_wait) {
        // The step two back has had two steps' time to reach the disk: drop what of it has
        // (DONTNEED skips pages still dirty or under writeback), never wait; and never what a
        // reader has still to read.
        const std::uint64_t drop_to = std::min(previous_step, drop_limit);
        if (drop_to > dropped_to) {
          (void)::posix_fadvise(fd.get(), static_cast<off_t>(dropped_to),
                                static_cast<off_t>(drop_to - dropped_to), POSIX_FADV_DONTNEED);
          dropped_to = drop_to;
        }
        previous_step = writeback_from;
      } else if (writeback_from > dropped_to) {
        (void)::sync_file_range(fd.get(), static_cast<off_t>(dropped_to),
                                static_cast<off_t>(writeback_from - dropped_to),
                                SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE | SYNC_FILE_RANGE_WAIT_AFTER);
        (void)::posix_fadvise(fd.get(), static_cast<off_t>(dropped_to),
                              static_cast<off_t>(writeback_from - dropped_to), POSIX_FADV_DONTNEED);
        dropped_to = writeback_from;
      }
      (void)::sync_file_range(fd.get(), static_cast<off_t>(writeback_from),
                              static_cast<off_t>(flushed.load() - writeback_from), SYNC_FILE_RANGE_WRITE);
      writeback_from = flushed.load();
    }
    return success();
  }

  store_status flush_buffer() {
    room_given = 0;
    if (used == 0) return success();
    auto st = write_through(buffer.get(), used);
    used = 0;
    return st;
  }

  // Room for the next bytes in the buffer (flushing a full one first).
  store_result<std::span<char>> room() {
    if (!buffer) buffer = std::make_unique_for_overwrite<char[]>(buffer_size);
    if (used == buffer_size) {
      if (auto st = flush_buffer(); !st) return st.error();
    }
    room_given = buffer_size - used;
    return std::span<char>(buffer.get() + used, room_given);
  }
  // `n` bytes were put at the start of room(): hash and keep them.
  store_status take(std::size_t n) {
    room_given = 0;
    if (hash_valid) hash.update(std::string_view(buffer.get() + used, n));
    used += n;
    size += n;
    if (used == buffer_size) return flush_buffer();
    return success();
  }

  store_status ensure_hash() {
    if (hash_valid) return success();
    if (auto st = flush_buffer(); !st) return st;
    hasher fresh(hash.algorithm());
    std::vector<char> buf(256 * 1024);
    std::uint64_t offset = 0;
    const std::uint64_t end = flushed.load();
    while (offset < end) {
      const std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(buf.size(), end - offset));
      const ssize_t n = ::pread(fd.get(), buf.data(), want, static_cast<off_t>(offset));
      if (n < 0) {
        if (errno == EINTR) continue;
        return fsx::from_errno("cannot read", path, errno);
      }
      if (n == 0) return make_error(errc::io, path.string() + " is shorter than expected");
      fresh.update(buf.data(), static_cast<std::size_t>(n));
      offset += static_cast<std::uint64_t>(n);
    }
    hash = std::move(fresh);
    hash_valid = true;
    return success();
  }
};

blob_writer::blob_writer(std::unique_ptr<impl> p) noexcept : impl_(std::move(p)) {}
blob_writer::blob_writer(blob_writer&&) noexcept = default;
blob_writer& blob_writer::operator=(blob_writer&& o) noexcept {
  if (this != &o) {
    abort();
    impl_ = std::move(o.impl_);
  }
  return *this;
}
blob_writer::~blob_writer() { abort(); }

store_status blob_writer::append(std::string_view bytes) {
  impl& w = *impl_;
  if (w.finished) return make_error(errc::invalid, "the blob writer is finished");
  if (bytes.empty()) return success();
  if (w.used == 0 && bytes.size() >= buffer_size) {
    if (w.hash_valid) w.hash.update(bytes);
    w.size += bytes.size();
    return w.write_through(bytes.data(), bytes.size());
  }
  while (!bytes.empty()) {
    auto room = w.room();
    if (!room) return room.error();
    const std::size_t n = std::min(room->size(), bytes.size());
    std::memcpy(room->data(), bytes.data(), n);
    if (auto st = w.take(n); !st) return st;
    bytes.remove_prefix(n);
  }
  return success();
}

store_result<std::span<char>> blob_writer::room() {
  if (impl_->finished) return make_error(errc::invalid, "the blob writer is finished");
  return impl_->room();
}

store_status blob_writer::appended(std::size_t n) {
  impl& w = *impl_;
  if (w.finished) return make_error(errc::invalid, "the blob writer is finished");
  if (n > w.room_given) return make_error(errc::invalid, "more bytes appended than the last room() gave");
  return w.take(n);
}

store_status blob_writer::flush() {
  if (impl_->finished) return make_error(errc::invalid, "the blob writer is finished");
  return impl_->flush_buffer();
}

store_status blob_writer::sync() {
  if (auto st = flush(); !st) return st;
  if (::fdatasync(impl_->fd.get()) != 0) return fsx::from_errno("cannot fsync", impl_->path, errno);
  return success();
}

store_status blob_writer::truncate(std::uint64_t new_size) {
  impl& w = *impl_;
  if (w.finished) return make_error(errc::invalid, "the blob writer is finished");
  if (new_size > w.size) return make_error(errc::invalid, "cannot truncate a blob writer forward");
  if (auto st = w.flush_buffer(); !st) return st;
  if (new_size == w.size) return success();
  if (::ftruncate(w.fd.get(), static_cast<off_t>(new_size)) != 0) {
    return fsx::from_errno("cannot truncate", w.path, errno);
  }
  w.size = new_size;
  w.flushed.store(new_size);
  w.writeback_from = std::min(w.writeback_from, new_size);
  w.dropped_to = std::min(w.dropped_to, new_size);
  w.previous_step = std::min(w.previous_step, new_size);
  w.hash_valid = false;
  return success();
}

store_result<digest> blob_writer::current_digest() {
  if (impl_->finished) return make_error(errc::invalid, "the blob writer is finished");
  if (auto st = impl_->ensure_hash(); !st) return st.error();
  return impl_->hash.current();
}

store_result<blob_info> blob_writer::commit(const digest& expected) {
  impl& w = *impl_;
  if (w.finished) return make_error(errc::invalid, "the blob writer is finished");
  if (auto st = sync(); !st) return st.error();

  std::optional<digest> actual;
  if (w.hash.algorithm() == expected.algorithm()) {
    if (auto st = w.ensure_hash(); !st) return st.error();
    actual = w.hash.current();
  } else {
    auto h = hash_fd(w.fd.get(), w.flushed.load(), expected.algorithm(), w.path);
    if (!h) return h.error();
    actual = std::move(h.value());
  }
  if (*actual != expected) {
    const std::uint64_t size = w.size;
    abort();
    return make_error(errc::digest_mismatch, "the content (" + std::to_string(size) +
                                                 " bytes) has digest " + actual->str() + ", not " +
                                                 expected.str());
  }

  const fs::path target = w.store->blob_path(expected);
  if (auto st = fsx::ensure_dir(target.parent_path()); !st) {
    abort();
    return st.error();
  }
  // The GC grace rule reads a blob's mtime as the time it was published, and rename keeps the
  // mtime of the last write: an upload left idle longer than the grace would be published
  // looking old enough to sweep before a manifest could reference it. Stamp it now.
  if (::futimens(w.fd.get(), nullptr) != 0) {
    const int e = errno;
    abort();
    return fsx::from_errno("cannot stamp", w.path, e);
  }
  // Replacing an existing copy is harmless (same bytes; readers keep the inode they have
  // open) and the new copy carries the fresh mtime.
  if (::rename(w.path.c_str(), target.c_str()) != 0) {
    const int e = errno;
    abort();
    return fsx::from_errno("cannot publish", target, e);
  }
  w.finished = true;
  w.fd = fsx::unique_fd();
  if (auto st = fsx::fsync_dir(target.parent_path()); !st) return st.error();
  blob_info info{expected, w.size, std::chrono::system_clock::now()};
  return info;
}

void blob_writer::abort() noexcept {
  if (!impl_ || impl_->finished) return;
  impl_->finished = true;
  impl_->fd = fsx::unique_fd();
  ::unlink(impl_->path.c_str());
}

void blob_writer::detach() noexcept {
  if (!impl_ || impl_->finished) return;
  (void)impl_->flush_buffer();
  impl_->finished = true;
  impl_->fd = fsx::unique_fd();
}

void blob_writer::set_drop_behind(drop_behind mode) noexcept { impl_->drop_mode = mode; }
void blob_writer::set_drop_limit(std::uint64_t offset) noexcept { impl_->drop_limit = offset; }
std::uint64_t blob_writer::size() const noexcept { return impl_->size; }
std::uint64_t blob_writer::flushed_size() const noexcept { return impl_->flushed.load(); }
const std::filesystem::path& blob_writer::path() const noexcept { return impl_->path; }

// ---------------------------------------------------------------------------------------------
// blob_store

blob_store::blob_store(std::filesystem::path root) : root_(std::move(root)) {
  for (const fs::path& dir : {root_ / "blobs", temp_dir()}) {
    if (auto st = fsx::ensure_dir(dir); !st) {
      throw std::runtime_error("cannot open the blob store: " + st.error_message());
    }
  }
}

fs::path blob_store::blob_path(const digest& d) const {
  const std::string_view hex = d.hex();
  return root_ / "blobs" / std::string(d.algorithm_name()) / std::string(hex.substr(0, 2)) /
         std::string(hex);
}

std::optional<std::uint64_t> blob_store::stat(const digest& d) const {
  struct ::stat st {};
  if (::stat(blob_path(d).c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return std::nullopt;
  return static_cast<std::uint64_t>(st.st_size);
}

store_result<blob_file> blob_store::open(const digest& d) const {
  const fs::path p = blob_path(d);
  fsx::unique_fd fd(::open(p.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) {
    if (errno == ENOENT || errno == ENOTDIR) return make_error(errc::not_found, "blob " + d.str() + " is not stored");
    return fsx::from_errno("cannot open", p, errno);
  }
  struct ::stat st {};
  if (::fstat(fd.get(), &st) != 0) return fsx::from_errno("cannot stat", p, errno);
  return blob_file(fd.release(), static_cast<std::uint64_t>(st.st_size));
}

store_result<blob_writer> blob_store::create_writer(digest_algorithm algorithm) const {
  auto p = std::make_unique<blob_writer::impl>(algorithm);
  p->store = this;
  p->path = temp_dir() / (fsx::random_hex(16) + ".tmp");
  p->fd = fsx::unique_fd(::open(p->path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
  if (!p->fd) return fsx::from_errno("cannot create", p->path, errno);
  return blob_writer(std::move(p));
}

store_result<blob_writer> blob_store::open_writer(const std::filesystem::path& temp_path,
                                                  digest_algorithm algorithm) const {
  auto p = std::make_unique<blob_writer::impl>(algorithm);
  p->store = this;
  p->path = temp_path;
  p->fd = fsx::unique_fd(::open(temp_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644));
  if (!p->fd) return fsx::from_errno("cannot open", temp_path, errno);
  struct ::stat st {};
  if (::fstat(p->fd.get(), &st) != 0) return fsx::from_errno("cannot stat", temp_path, errno);
  p->size = static_cast<std::uint64_t>(st.st_size);
  p->flushed.store(p->size);
  p->writeback_from = p->size;
  p->hash_valid = p->size == 0;
  blob_writer w(std::move(p));
  // Hash what is there now, so a resumed upload answers as fast as a fresh one afterwards.
  if (auto h = w.current_digest(); !h) {
    w.impl_->finished = true;  // keep the data: it is the caller's, not ours to delete
    return h.error();
  }
  return w;
}

store_result<blob_info> blob_store::put(std::string_view bytes, const digest& expected) const {
  auto w = create_writer(expected.algorithm());
  if (!w) return w.error();
  if (auto st = w->append(bytes); !st) return st.error();
  return w->commit(expected);
}

bool blob_store::touch(const digest& d) const {
  const fs::path path = blob_path(d);
  // utimensat finds the file by its name, then sets its times. A GC can move the file aside,
  // see an old mtime and delete it in between: the call still succeeds, on a file that is gone,
  // and a caller that links the blob next would link nothing. So a touch counts once the name
  // is seen again after it: a GC that moves the file aside later sees the new mtime and puts
  // it back. Gone after the touch, the file may be aside for a moment while a GC that saw this
  // touch (or another one) restores it, so the name is looked for a while before giving up.
  // 1 ms apart, for up to 2 s: a GC restores a file microseconds after moving it, unless the
  // machine stalls it; only a touch that raced a GC waits at all.
  constexpr int polls = 2000;
  for (int i = 0; i < polls; ++i) {
    if (::utimensat(AT_FDCWD, path.c_str(), nullptr, 0) != 0) {
      // Not there at all: absent, or aside. Only a touch that found it waits for its return.
      if (i == 0 || errno != ENOENT) return false;
    } else if (::access(path.c_str(), F_OK) == 0) {
      return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return false;
}

store_status blob_store::remove(const digest& d) const {
  auto st = fsx::remove_file(blob_path(d));
  if (!st && st.code() == errc::not_found) return make_error(errc::not_found, "blob " + d.str() + " is not stored");
  return st;
}

void blob_store::for_each_blob(const std::function<void(const blob_info&)>& fn) const {
  const fs::path blobs = root_ / "blobs";
  for (const std::string& algorithm : fsx::list_dir(blobs)) {
    for (const std::string& prefix : fsx::list_dir(blobs / algorithm)) {
      if (prefix.size() != 2 || !is_hex(prefix)) continue;
      for (const std::string& hex : fsx::list_dir(blobs / algorithm / prefix)) {
        if (hex.compare(0, 2, prefix) != 0) continue;
        auto d = digest::parse(algorithm + ":" + hex);
        if (!d) continue;
        struct ::stat st {};
        if (::stat((blobs / algorithm / prefix / hex).c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
        fn(blob_info{*d, static_cast<std::uint64_t>(st.st_size), fsx::mtime_of(st.st_mtim)});
      }
    }
  }
}

void blob_store::for_each_temp(
    const std::function<void(const std::filesystem::path&, std::uint64_t, time_point)>& fn) const {
  for (const std::string& name : fsx::list_dir(temp_dir())) {
    const fs::path p = temp_dir() / name;
    struct ::stat st {};
    if (::stat(p.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
    fn(p, static_cast<std::uint64_t>(st.st_size), fsx::mtime_of(st.st_mtim));
  }
}

}  // namespace registryd::oci::storage
