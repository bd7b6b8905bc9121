// An OCI image layout directory (image spec v1.1 "OCI Image Layout"): `oci-layout`,
// `index.json` and `blobs/<alg>/<hex>`. Tags are the `org.opencontainers.image.ref.name`
// annotation of index.json's entries, one entry per tag, as skopeo 1.9 writes and reads them
// (`skopeo copy ... oci:DIR:TAG`). Note that skopeo finds a tag only on an entry whose
// mediaType is an OCI manifest or index; an entry of a Docker schema 2 type is read by skopeo
// only as the single image of a layout (`oci:DIR`), never by tag.
//
// Writes are crash-safe: a blob is streamed into `blobs/<alg>/.partial-<hex>`, verified against
// its digest and size, fsynced and renamed into place, and the directory fsynced; index.json is
// replaced the same way. A partial file left by an interrupted write is resumed from where it
// stopped. So a reader never sees a blob whose bytes do not match its name.
//
// Thread-safety: an image_layout is used by one thread at a time; lock() keeps other
// processes from writing the same layout.
#pragma once

#include <registryd/oci/digest.hpp>
#include <registryd/oci/manifest.hpp>
#include <registryd/oci/result.hpp>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace registryd::oci {

inline constexpr std::string_view image_layout_version = "1.0.0";

// Reads one blob file in bounded pieces. Move-only; closes its file.
class blob_file_reader {
 public:
  blob_file_reader(blob_file_reader&& other) noexcept;
  blob_file_reader& operator=(blob_file_reader&& other) noexcept;
  blob_file_reader(const blob_file_reader&) = delete;
  blob_file_reader& operator=(const blob_file_reader&) = delete;
  ~blob_file_reader();

  std::uint64_t size() const noexcept { return size_; }
  // Up to `capacity` bytes into `buffer`: the count, 0 at the end, -1 on a read error.
  std::ptrdiff_t read(char* buffer, std::size_t capacity);
  // Back to the first byte; false on error.
  bool rewind();

 private:
  friend class image_layout;
  blob_file_reader(int fd, std::uint64_t size) : fd_(fd), size_(size) {}
  int fd_ = -1;
  std::uint64_t size_ = 0;
};

// A streamed write of one blob. Move-only. Destroying it without commit() keeps the partial
// file so that a later write_blob() of the same digest resumes it; discard() removes it.
class blob_writer {
 public:
  blob_writer(blob_writer&& other) noexcept;
  blob_writer& operator=(blob_writer&& other) noexcept;
  blob_writer(const blob_writer&) = delete;
  blob_writer& operator=(const blob_writer&) = delete;
  ~blob_writer();

  // Bytes already in the partial file: where the caller resumes (e.g. with a Range request).
  std::uint64_t offset() const noexcept { return offset_; }
  // Appends `piece`. Fails when the blob would grow past its expected size.
  status write(std::string_view piece);
  // Drops what was written and starts again at byte 0 (the source ignored a Range).
  status restart();
  // Verifies size and digest, fsyncs and publishes the blob. On a mismatch the partial file is
  // removed and the error names the digest and what the bytes hashed to.
  status commit();
  // Removes the partial file.
  void discard();

 private:
  friend class image_layout;
  blob_writer() = default;
  void close_fd();

  int fd_ = -1;
  std::filesystem::path partial_;
  std::filesystem::path final_;
  std::optional<digest> expected_;
  std::optional<std::uint64_t> size_;
  std::uint64_t offset_ = 0;
  std::optional<hasher> hasher_;
};

class image_layout {
 public:
  // Opens the layout at `root`: `oci-layout` must hold {"imageLayoutVersion": "1.0.0"}. With
  // `create`, a missing directory, `oci-layout` and `index.json` (no entries) are made first.
  static result<image_layout> open(const std::filesystem::path& root, bool create = false);

  image_layout(image_layout&& other) noexcept;
  image_layout& operator=(image_layout&& other) noexcept;
  image_layout(const image_layout&) = delete;
  image_layout& operator=(const image_layout&) = delete;
  ~image_layout();

  const std::filesystem::path& root() const noexcept { return root_; }

  // Takes an exclusive advisory lock on the layout (flock on `oci-layout`), held until this
  // object goes. Fails at once, saying so, when another process holds it.
  status lock();

  // `<root>/blobs/<alg>/<hex>`
  std::filesystem::path blob_path(const digest& d) const;
  // The blob's file exists (with `size` bytes when given). Does not hash.
  bool has_blob(const digest& d, std::optional<std::uint64_t> size = {}) const;
  // Hashes the blob's file: ok when it exists with the size (when given) and the digest.
  // The error says "missing" or what is wrong, naming the digest.
  status verify_blob(const digest& d, std::optional<std::uint64_t> size = {}) const;

  // Writes a document held in memory (a manifest) as blob `d`, verified and atomic.
  status put_blob(const digest& d, std::string_view bytes);
  // Reads a blob of at most `max_size` bytes (a manifest), verified against its digest.
  result<std::string> read_blob(const digest& d, std::size_t max_size = max_manifest_size) const;
  // Opens a blob for streaming (not verified: the caller hashes what it reads).
  result<blob_file_reader> open_blob(const digest& d) const;
  // Starts (or resumes) a streamed write of blob `d`; `size` is checked when given.
  result<blob_writer> write_blob(const digest& d, std::optional<std::uint64_t> size);

  // The entries of index.json.
  result<std::vector<descriptor>> read_index() const;
  // Replaces index.json (atomic) with an image index of `entries`.
  status write_index(const std::vector<descriptor>& entries) const;

 private:
  explicit image_layout(std::filesystem::path root) : root_(std::move(root)) {}
  std::filesystem::path root_;
  int lock_fd_ = -1;
};

// The tag an index.json entry names (`org.opencontainers.image.ref.name`), if any.
std::optional<std::string> ref_name(const descriptor& entry);
// Points `tag` at `target` in `entries`: every entry already named `tag` is replaced by one
// (target with the annotation added), or the entry is appended.
void set_ref_name(std::vector<descriptor>& entries, const std::string& tag, descriptor target);

// Writes `bytes` to `file` atomically: a temporary file beside it, fsync, rename, fsync of
// the directory.
status write_file_atomic(const std::filesystem::path& file, std::string_view bytes);

}  // namespace registryd::oci
