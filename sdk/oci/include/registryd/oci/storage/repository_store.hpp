// Repositories over the blob store: which blobs a repository may serve (links), its manifest
// revisions, its tags, and the referrers of each subject. Layout under the store root
// (docs/storage.md); a repository name's slashes are directory levels, and no name
// component can start with '_' or '.', so the markers below never collide with a name:
//
//   <root>/repositories/<name>/_layers/<alg>/<hex>                  empty: blob linked
//   <root>/repositories/<name>/_manifests/revisions/<alg>/<hex>     JSON: mediaType, size, subject
//   <root>/repositories/<name>/_manifests/tags/<tag>                the tagged digest, as text
//   <root>/repositories/<name>/_referrers/<alg>/<subject hex>/<alg>-<hex>
//                                                                  JSON: the referrer's descriptor
//
// Manifests are blobs too (their bytes live in the blob store); a revision says the
// repository holds one and with which media type it was pushed. Every file is written
// atomically (temporary, fsync, rename, fsync of the directory) or created durably, so when
// a call returns success its effect survives a crash, and a crash never leaves a torn file.
// Each call publishes or touches the blob BEFORE writing the link that makes it reachable
// (the GC rule in blob_store.hpp).
//
// Names and tags are validated here too (errc::invalid), so a name can never escape the root.
//
// Thread-safety: safe from any number of threads and processes. Each call is atomic on its
// own (one rename, create or unlink decides it); sequences are not transactions: a tag moved
// by one request while another deletes the manifest ends with whichever came last.
#pragma once

#include <registryd/oci/digest.hpp>
#include <registryd/oci/storage/blob_store.hpp>
#include <registryd/oci/storage/store_result.hpp>

#include <nlohmann/json.hpp>

#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace registryd::oci::storage {

// A manifest revision of one repository.
struct manifest_record {
  oci::digest digest;
  std::string media_type;            // as pushed (the document's mediaType or Content-Type)
  std::uint64_t size = 0;
  std::optional<oci::digest> subject;  // the manifest's subject, when it has one
  time_point mtime{};
};

// An open manifest: its bytes (a published blob) and its revision.
struct manifest_file {
  blob_file file;
  manifest_record record;
};

struct tag_record {
  std::string tag;
  oci::digest digest;
  time_point mtime{};
};

struct link_record {
  oci::digest digest;
  time_point mtime{};
};

// What put_manifest stores.
struct manifest_put {
  std::string_view bytes;           // the exact bytes pushed (their digest is the identity)
  oci::digest digest;               // the digest they must have (sha256 or sha512)
  std::string media_type;           // served back as Content-Type
  std::optional<oci::digest> subject;
  // The descriptor listed by the referrers API under `subject` (mediaType, digest, size,
  // artifactType, annotations); ignored without a subject.
  nlohmann::json referrer_descriptor;
  std::optional<std::string> tag;   // also point this tag at the manifest
};

class repository_store {
 public:
  // `blobs` must outlive this store. Directories are created as needed.
  repository_store(const blob_store& blobs, std::filesystem::path root);

  const blob_store& blobs() const noexcept { return blobs_; }

  // A repository exists once anything (a blob link, a manifest) was stored in it.
  bool exists(std::string_view name) const;

  // ---- blob links ------------------------------------------------------------------------
  // Links a published blob into `name` (touching it first); errc::not_found when the blob is
  // not in the blob store.
  store_status link_blob(std::string_view name, const digest& d) const;
  // The blob's size when `name` links it and the blob store has it.
  std::optional<std::uint64_t> stat_blob(std::string_view name, const digest& d) const;
  // Opens a blob `name` links; errc::not_found when unlinked or gone.
  store_result<blob_file> open_blob(std::string_view name, const digest& d) const;
  // Removes the link (the blob stays for other repositories; GC reclaims it when no one
  // links it). errc::not_found when it was not linked.
  store_status unlink_blob(std::string_view name, const digest& d) const;

  // ---- manifests -------------------------------------------------------------------------
  // Stores the bytes as a blob (verified against put.digest: errc::digest_mismatch), then the
  // revision, then the referrer entry under the subject, then the tag. Checking that what the
  // manifest references exists is the caller's business (it knows the manifest format).
  store_result<manifest_record> put_manifest(std::string_view name, const manifest_put& put) const;
  // The revision, when `name` holds the manifest and its bytes are in the blob store.
  store_result<manifest_record> stat_manifest(std::string_view name, const digest& d) const;
  bool has_manifest(std::string_view name, const digest& d) const { return stat_manifest(name, d).ok(); }
  // Opens the manifest's bytes, with its revision.
  store_result<manifest_file> open_manifest(std::string_view name, const digest& d) const;
  // Removes the revision, every tag of `name` that points at it and its referrer entry. The
  // returned list names the tags removed. errc::not_found when `name` has no such revision.
  store_result<std::vector<std::string>> delete_manifest(std::string_view name, const digest& d) const;
  // Garbage collection's delete, safe against a push of the same manifest at the same time.
  // The revision is moved aside first, then `in_use` is asked, with the mtime of what was
  // moved: true puts it back (unless a push has written a new one meanwhile), false deletes
  // it and then the referrer entry, unless a push has stored the manifest again by then.
  // Tags are never touched: a manifest a tag names is in use. A push that stored the manifest
  // before the move shows in `in_use` (a fresh revision or content mtime, a tag); one after it
  // writes a revision of its own. errc::not_found when there was no revision to move.
  enum class retired { deleted, kept };
  store_result<retired> retire_manifest(std::string_view name, const digest& d,
                                        const std::function<bool(time_point revision_mtime)>& in_use) const;

  // ---- tags ------------------------------------------------------------------------------
  store_result<digest> resolve_tag(std::string_view name, std::string_view tag) const;
  // Points `tag` at a manifest `name` holds (errc::not_found otherwise), atomically.
  store_status set_tag(std::string_view name, std::string_view tag, const digest& d) const;
  // errc::not_found when there is no such tag.
  store_status delete_tag(std::string_view name, std::string_view tag) const;
  // The tags, sorted; errc::not_found when the repository does not exist.
  store_result<std::vector<std::string>> tags(std::string_view name) const;

  // ---- referrers -------------------------------------------------------------------------
  // The descriptors of the manifests in `name` whose subject is `subject`, ordered by digest.
  // Entries whose revision is gone are skipped (and cleaned up).
  std::vector<nlohmann::json> referrers(std::string_view name, const digest& subject) const;

  // ---- enumeration (catalog, GC, fsck, replica sync) --------------------------------------
  // Every repository name, sorted.
  std::vector<std::string> repositories() const;
  void for_each_tag(std::string_view name, const std::function<void(const tag_record&)>& fn) const;
  void for_each_manifest(std::string_view name, const std::function<void(const manifest_record&)>& fn) const;
  void for_each_blob_link(std::string_view name, const std::function<void(const link_record&)>& fn) const;
  // (subject, referrer descriptor) pairs as stored.
  void for_each_referrer(std::string_view name,
                         const std::function<void(const digest& subject, const nlohmann::json& descriptor)>& fn) const;

  // The directory of a repository (for tools that report paths).
  std::filesystem::path repository_path(std::string_view name) const;

 private:
  std::filesystem::path layer_link(std::string_view name, const digest& d) const;
  std::filesystem::path revision_path(std::string_view name, const digest& d) const;
  std::filesystem::path tag_path(std::string_view name, std::string_view tag) const;
  std::filesystem::path referrer_path(std::string_view name, const digest& subject, const digest& d) const;

  const blob_store& blobs_;
  std::filesystem::path root_;
};

}  // namespace registryd::oci::storage
