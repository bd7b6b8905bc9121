// The content-addressed blob store: every blob (layer, config, manifest) once, by digest,
// shared by every repository. Layout under the store root (docs/storage.md):
//
//   <root>/blobs/<algorithm>/<first 2 hex>/<hex>   the content, immutable once published
//   <root>/tmp/<random>.tmp                        blob_writer temporaries (same file system)
//
// Publication rule: content is streamed into a temporary file under the same root, hashed as
// it goes, fsync'ed, verified against the expected digest and only then renamed into place,
// after which the directory is fsync'ed. A crash at any moment leaves either no blob or the
// whole verified blob under its name; a temporary is never visible as a blob. When commit()
// returns, the blob survives a power loss.
//
// Both registered algorithms are accepted (sha256, sha512). A writer hashes with the
// algorithm it was created for (sha256 unless told otherwise); a commit with the other
// algorithm re-reads the temporary once to hash it.
//
// Garbage collection rule (for gc/fsck, which are not part of this class): a blob may be
// deleted only when no repository links it AND its mtime is older than a grace period. Every
// path that makes a blob reachable first publishes or touch()es it (mtime = now) and only
// then writes the repository link, so a blob reached during a GC run is always younger than
// the grace period (see docs/storage.md, "Online garbage collection").
//
// Thread-safety: a blob_store is safe to use from any number of threads (and processes) at
// once; it holds no mutable state besides the file system. A blob_writer is used by one
// thread at a time. Two writers of the same content may commit at the same time: both
// succeed and one file remains. Removing a blob while it is read is safe: an open blob_file
// keeps its data until it is closed.
#pragma once

#include <registryd/oci/digest.hpp>
#include <registryd/oci/storage/store_result.hpp>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string_view>

namespace registryd::oci::storage {

using time_point = std::chrono::system_clock::time_point;

// A published blob as enumeration and commit report it.
struct blob_info {
  oci::digest digest;
  std::uint64_t size = 0;
  time_point mtime{};
};

// An open, published blob: owns a read-only descriptor. Move-only; closes on destruction.
// Hand the descriptor to sdk::response::send_file with release() for a zero-copy answer.
class blob_file {
 public:
  blob_file() = default;
  blob_file(int fd, std::uint64_t size) noexcept : fd_(fd), size_(size) {}
  blob_file(blob_file&& o) noexcept : fd_(o.release()), size_(o.size_) {}
  blob_file& operator=(blob_file&& o) noexcept;
  blob_file(const blob_file&) = delete;
  blob_file& operator=(const blob_file&) = delete;
  ~blob_file();

  int fd() const noexcept { return fd_; }
  std::uint64_t size() const noexcept { return size_; }
  // Gives up ownership of the descriptor; the caller closes it (send_file does).
  int release() noexcept {
    const int f = fd_;
    fd_ = -1;
    return f;
  }
  // Reads the whole blob into memory: for small documents (manifests) only.
  store_result<std::string> read_all() const;

 private:
  int fd_ = -1;
  std::uint64_t size_ = 0;
};

class blob_store;

// Streams one blob into a temporary file and publishes it on commit. Move-only. Destroying
// an uncommitted writer aborts it (the temporary is removed).
//
// While the write is in progress, path() names the temporary and size()/flushed_size() say
// how far it has grown: a coalescing proxy can open the path and stream the first
// flushed_size() bytes to other clients while it grows. flushed_size() may be read from
// any thread; everything else from the writing thread only.
class blob_writer {
 public:
  blob_writer(blob_writer&&) noexcept;
  blob_writer& operator=(blob_writer&&) noexcept;
  blob_writer(const blob_writer&) = delete;
  blob_writer& operator=(const blob_writer&) = delete;
  ~blob_writer();

  // Appends bytes (buffered in at most 1 MiB; larger pieces go straight to the file).
  // On an I/O error (ENOSPC, say) the file is cut back to the bytes already flushed, which
  // stay valid: size() reports them, and the writer can go on.
  store_status append(std::string_view bytes);
  // append() without the copy, for a source that reads straight into the writer's buffer:
  // room() gives the free part of the buffer (flushing a full one first; at least 1 byte),
  // the caller puts bytes at its start, and appended(n) takes the first n of them. Nothing
  // else may run on the writer in between.
  store_result<std::span<char>> room();
  store_status appended(std::size_t n);
  // Writes buffered bytes to the file (not durable yet).
  store_status flush();
  // flush() and fdatasync: everything appended so far survives a crash.
  store_status sync();
  // Cuts the content back to `new_size` bytes (<= size()). The running hash is recomputed
  // from the file when next needed.
  store_status truncate(std::uint64_t new_size);

  // Verifies and publishes: flush, fdatasync, hash (with expected's algorithm), compare,
  // rename into blobs/, fsync the directory. On errc::digest_mismatch the temporary is
  // removed and nothing is published (the message names both digests). After any commit the
  // writer is finished; a second commit is errc::invalid.
  store_result<blob_info> commit(const digest& expected);
  // Removes the temporary. Idempotent.
  void abort() noexcept;
  // Flushes what is buffered, closes the file and leaves it in place, unpublished: an upload
  // session closed in memory keeps its data for the next request or the next process.
  // The writer is finished afterwards (open_writer() on the path resumes it).
  void detach() noexcept;

  // How the writer recycles its page cache behind itself (docs/storage.md). `wait` (the
  // default): at each 8 MiB step, wait for the previous step to reach the disk, then drop its
  // pages; the writer goes at the disk's pace. `no_wait`: never wait; drop the pages of the
  // step two back, which has had two steps' time to be written (pages still under writeback
  // are left to the kernel). The writer goes at its source's pace while the disk catches up
  // behind; the kernel's dirty-page limits bound the memory. Durability is the same: commit()
  // still syncs before it publishes. Cache fills use `no_wait` so that clients waiting for a
  // fill get bytes as fast as the upstream sends them.
  enum class drop_behind { wait, no_wait };
  void set_drop_behind(drop_behind mode) noexcept;
  // `no_wait` only: pages at or past `offset` are kept however far behind the writer they are
  // (a cache fill passes the offset its slowest reader has reached, so no reader finds the
  // pages it is about to read dropped and waits for the disk to read them back). Default: no
  // limit.
  void set_drop_limit(std::uint64_t offset) noexcept;

  // Bytes appended so far (including buffered bytes).
  std::uint64_t size() const noexcept;
  // Bytes written to the file so far; safe to read from any thread.
  std::uint64_t flushed_size() const noexcept;
  // The temporary being written.
  const std::filesystem::path& path() const noexcept;
  // The digest of everything appended so far, in the writer's algorithm (re-hashing the file
  // after a truncate).
  store_result<digest> current_digest();

 private:
  friend class blob_store;
  struct impl;
  explicit blob_writer(std::unique_ptr<impl> p) noexcept;
  std::unique_ptr<impl> impl_;
};

class blob_store {
 public:
  // Opens (creating when missing) the store under `root`. Throws std::runtime_error when the
  // directories cannot be created: a start-up failure.
  explicit blob_store(std::filesystem::path root);

  const std::filesystem::path& root() const noexcept { return root_; }
  // <root>/blobs/<algorithm>/<2 hex>/<hex>
  std::filesystem::path blob_path(const digest& d) const;
  // <root>/tmp
  std::filesystem::path temp_dir() const { return root_ / "tmp"; }

  // The size of a published blob, or nullopt when it is not there.
  std::optional<std::uint64_t> stat(const digest& d) const;
  bool exists(const digest& d) const { return stat(d).has_value(); }
  // Opens a published blob for reading; errc::not_found when absent.
  store_result<blob_file> open(const digest& d) const;

  // A writer whose temporary is a new file under <root>/tmp.
  store_result<blob_writer> create_writer(digest_algorithm algorithm = digest_algorithm::sha256) const;
  // A writer over an existing or new file `temp_path`, which must be on the same file system
  // as the store (upload sessions keep theirs under <root>/uploads). When the file has
  // content, its bytes are hashed first (resuming after a restart). abort() deletes the
  // file, as with any writer.
  store_result<blob_writer> open_writer(const std::filesystem::path& temp_path,
                                        digest_algorithm algorithm = digest_algorithm::sha256) const;
  // Writes a small in-memory document (a manifest) through a writer: verified and durable.
  store_result<blob_info> put(std::string_view bytes, const digest& expected) const;

  // Sets the blob's mtime to now (see the GC rule above); false when the blob is absent.
  // True only when the blob is still under its name after the touch, so a GC that raced it
  // either saw the new mtime or had already deleted the blob (then false, after up to 2 s of
  // looking for it: a GC may be putting it back).
  bool touch(const digest& d) const;
  // Deletes a published blob (for garbage collection; readers with it open keep reading).
  store_status remove(const digest& d) const;

  // Every published blob, in no particular order. Files whose names are not digests are
  // skipped. The walk tolerates concurrent writes and removals (the callback may remove the
  // blob it is given).
  void for_each_blob(const std::function<void(const blob_info&)>& fn) const;
  // Every writer temporary under <root>/tmp (path, size, mtime): abandoned ones are GC's.
  void for_each_temp(
      const std::function<void(const std::filesystem::path&, std::uint64_t, time_point)>& fn) const;

 private:
  std::filesystem::path root_;
};

}  // namespace registryd::oci::storage
