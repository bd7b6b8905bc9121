// Mirror bundles: an OCI image layout (layout.hpp) as one tar, optionally split into chunks.
//
// Format (docs/bundles.md):
// - A tar (POSIX pax, ustar headers unless a blob is larger than 8 GiB) holding `oci-layout`,
//   `index.json`, the directories `blobs/` and `blobs/<alg>/`, then every manifest reachable
//   from index.json (an index before its children), then every other blob, each once. Only
//   content reachable from index.json is written.
// - Chunks are plain byte splits of that one tar: `<bundle>.chunk-0000`, `<bundle>.chunk-0001`,
//   ... each `chunk_size` bytes but the last. `cat <bundle>.chunk-* > <bundle>` gives the
//   tar back, which `skopeo copy oci-archive:<bundle>:<tag> ...` reads.
//
// Reading never holds a blob in memory: blobs are streamed from their tar entry. Manifests
// (at most 4 MiB each) are read into memory and verified against their digests when a bundle
// is opened; blobs are verified as they stream.
//
// Thread-safety: a bundle_reader is used by one thread at a time.
#pragma once

#include <registryd/oci/digest.hpp>
#include <registryd/oci/layout.hpp>
#include <registryd/oci/manifest.hpp>
#include <registryd/oci/result.hpp>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace registryd::mirror {

// Bundles are made of the SDK's OCI pieces and answer with its result type.
using oci::descriptor;
using oci::digest;
using oci::image_layout;
using oci::manifest;
using oci::result;
using oci::status;


// More chunks than this are refused: the four-digit names would no longer sort in order.
inline constexpr std::size_t max_bundle_chunks = 10000;

// `<bundle>.chunk-NNNN`
std::filesystem::path chunk_path(const std::filesystem::path& bundle, std::size_t index);

// The files that make up `bundle`, in order: the file itself when it exists, else its chunks
// `<bundle>.chunk-0000...` (a path naming one chunk stands for its whole set). Fails when
// there is neither, or a chunk is missing from the sequence.
result<std::vector<std::filesystem::path>> bundle_files(const std::filesystem::path& bundle);

// Where an index.json entry belongs in a bundle of several repositories. Its
// `org.opencontainers.image.ref.name` says (docs/bundles.md):
// - absent, or a tag: the root repository (a one-repository bundle is the plain layout every
//   OCI tool reads: `skopeo copy oci-archive:NAME.tar:TAG ...`);
// - `<repository>:<tag>` or `<repository>@<digest>`: a repository below the root, named
//   relative to it (`install:v1.60.1`, `modules/ingress@sha256:...`). Both are valid ref
//   names of the image layout spec, so other tools keep reading the bundle.
struct bundle_name {
  std::string repository;          // relative to the root; "" is the root itself
  std::optional<std::string> tag;  // nullopt: kept by digest only
};

// The ref name an entry for manifest `d` gets (nullopt: none, a root entry by digest).
std::optional<std::string> ref_name_of(const bundle_name& name, const digest& d);

// Where `entry` belongs. A ref name that is neither a tag nor one of the forms above (another
// tool's) is kept by digest in the root, and `note` (when given) says so.
bundle_name bundle_name_of(const descriptor& entry, std::string* note = nullptr);

// `repository` relative to `root` ("" when they are the same); nullopt when it is not `root`
// nor below it.
std::optional<std::string> relative_repository(const std::string& root, const std::string& repository);

struct bundle_write_options {
  // Split the tar into chunks of this many bytes (> 0); nullopt: one file.
  std::optional<std::uint64_t> chunk_size;
  // Called after each piece written: bytes of blob content written so far and in total.
  std::function<void(std::uint64_t done, std::uint64_t total)> progress;
};

// The manifests reachable from index entries `roots`, read from `layout` and verified:
// digest -> (bytes, parsed), in the order a parent comes before its children.
struct manifest_set {
  struct entry {
    descriptor of;
    std::string bytes;
    manifest parsed;
  };
  std::vector<entry> manifests;
  // Every blob the image manifests reference, config and layers, each once (foreign layers
  // with urls excluded: registries do not hold them).
  std::vector<descriptor> blobs;

  const entry* find(const digest& d) const;
  // The part of this set reachable from `roots` (entries of this set), blobs included.
  result<manifest_set> subset(const std::vector<descriptor>& roots) const;
};
result<manifest_set> collect_manifests(const image_layout& layout, const std::vector<descriptor>& roots);

// Writes the tar of everything reachable from `layout`'s index.json to `bundle` (or its
// chunks). Written under temporary names and renamed when complete, so a bundle that exists
// is whole; a previous bundle (single file or chunks) of the same name is replaced.
status write_bundle(const image_layout& layout, const std::filesystem::path& bundle,
                    const bundle_write_options& options = {});

// A blob being read from a bundle. read() hashes as it goes and, at the end of the blob, fails
// (-1) instead of returning 0 when the bytes do not match the digest: a consumer that sends
// them on never completes a corrupt blob. error() then says what happened.
class blob_stream {
 public:
  virtual ~blob_stream() = default;
  // Up to `capacity` bytes; 0 at the end of a verified blob; -1 on error or digest mismatch.
  virtual std::ptrdiff_t read(char* buffer, std::size_t capacity) = 0;
  // Back to the first byte (possible for a layout directory, not for a tar); false if not.
  virtual bool rewind() = 0;
  virtual const std::string& error() const = 0;
};

// Reads a bundle: a tar, its chunks, or an image layout directory.
class bundle_reader {
 public:
  // Opens the bundle, reads index.json and every manifest reachable from it (verified).
  static result<bundle_reader> open(const std::filesystem::path& bundle);

  bundle_reader(bundle_reader&&) noexcept;
  bundle_reader& operator=(bundle_reader&&) noexcept;
  ~bundle_reader();

  // "tar", "chunks (N)" or "layout directory"
  std::string kind() const;
  const std::vector<descriptor>& index() const noexcept;
  const manifest_set& content() const noexcept;

  using blob_fn = std::function<status(const descriptor& blob, blob_stream& body)>;
  // Streams each blob of `wanted` once, in the order the bundle stores them, to `fn`. `fn`
  // should read the body to its end (0), which verifies it. Stops at the first error of `fn`.
  // Fails naming the first wanted blob the bundle does not hold.
  status for_each_blob(const std::vector<descriptor>& wanted, const blob_fn& fn);

  struct impl;

 private:
  explicit bundle_reader(std::unique_ptr<impl> p);
  std::unique_ptr<impl> impl_;
};

// What a whole bundle holds, as `registryd mirror verify` reports it.
struct bundle_summary {
  std::string kind;            // bundle_reader::kind()
  std::size_t repositories = 0;  // the root and those below it that hold an entry
  std::size_t tags = 0;        // index.json entries with a tag
  std::size_t manifests = 0;   // manifests reachable from index.json
  std::size_t blobs = 0;       // config and layer blobs, each once
  std::uint64_t bytes = 0;     // of those blobs
};

// Checks a bundle offline: index.json, every manifest reachable from it and every blob they
// reference are there and hash to their digests, in every chunk. The error names the first
// entry that is missing, corrupt or cut short. `progress` gets blob bytes read and in total.
result<bundle_summary> verify_bundle(const std::filesystem::path& bundle,
                                     const std::function<void(std::uint64_t done, std::uint64_t total)>& progress = {});

}  // namespace registryd::mirror
