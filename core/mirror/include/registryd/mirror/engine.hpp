// The mirror engine behind `registryd mirror pull|push` (docs/bundles.md): copies images of one
// or several repositories from any registry into a bundle, and a bundle into any registry. The CLI parses
// flags and draws the terminal bar; everything that talks to registries and bundles is here.
//
// Both directions are resumable and never hold a blob in memory:
// - pull downloads into an image layout directory first (`<BUNDLE>.work/` for a tar bundle)
//   whose blobs are published only when verified; a partial blob file continues with a Range
//   request, and a re-run skips what is there (verified again);
// - push asks the destination for every blob (HEAD) and streams only what it lacks from the
//   bundle, verified as it is read; then manifests, children before parents, then the tags.
// Failures that may pass (connection errors, 5xx, 429) are retried `attempts` times with an
// exponential backoff.
//
// Thread-safety: one call at a time per progress object; the engine calls the progress sink
// from one thread at a time (it serializes its workers); the client is thread-safe.
#pragma once

#include <registryd/mirror/bundle.hpp>
#include <registryd/oci/client/registry_client.hpp>
#include <registryd/util/result.hpp>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace registryd::mirror {

// Where the engine reports what it does. The CLI draws a bar; tests record.
class progress_sink {
 public:
  virtual ~progress_sink() = default;
  // A phase starts: `verb` ("pull", "push", "write"), the bytes it will move, the blobs.
  virtual void begin(std::string_view verb, std::uint64_t total_bytes, std::size_t total_items) = 0;
  virtual void add_bytes(std::uint64_t n) = 0;
  // A blob is done: `how` says how ("pulled", "already there", "pushed").
  virtual void item(std::string_view how, const oci::digest& d, std::uint64_t size) = 0;
  // A line worth keeping (a tag resolved, a retry).
  virtual void line(std::string_view text) = 0;
  // The phase ended (also on failure).
  virtual void end() = 0;
};

// Retries of failures that may pass.
struct retry_policy {
  int attempts = 4;
  std::chrono::milliseconds backoff{1000};  // doubled after each failed attempt
};

// What pull and push share: how hard to try, how many blobs at once, whether to change
// anything, and the flag that stops them.
struct transfer_options {
  retry_policy retry;
  // Blobs moved at once (a setting of the CLI, --parallel, default 4). At least 1.
  std::size_t parallel = 4;
  // Look only: resolve tags, read manifests, ask what the other side has; write nothing.
  bool dry_run = false;
  // Set (from a signal handler) to stop: transfers in flight end at their next piece,
  // uploads opened are cancelled, and the call fails with `interrupted_error`.
  const std::atomic<bool>* cancel = nullptr;
};

// The error text of a call that `transfer_options::cancel` stopped.
inline constexpr std::string_view interrupted_error = "interrupted";

// Which tags of the source to pull: named tags and/or a digest, or all tags, or the newest
// releases.
struct tag_selection {
  std::vector<std::string> tags;
  bool all = false;
  std::size_t releases = 0;  // the N newest vX.Y.Z tags by semver
  std::vector<oci::digest> digests;
};

// One repository of the source and the tags wanted from it.
struct repository_selection {
  std::string repository;  // in the source registry
  tag_selection what;
};

struct pull_request {
  // Every repository goes into the one bundle, named relative to `root` (see bundle.hpp,
  // bundle_name): with one repository, `root` is that repository and the bundle is the plain
  // single-repository layout skopeo reads.
  std::vector<repository_selection> repositories;
  std::string root;
  std::filesystem::path bundle;    // NAME.tar (a tar, in chunks when chunk_size) or a directory
  std::optional<std::uint64_t> chunk_size;
  bool keep_work_dir = false;      // keep NAME.tar.work/ after the tar is written
  // A tag the source does not have is named and skipped instead of failing the pull.
  bool keep_going = false;
  transfer_options transfer;
};

struct pull_summary {
  std::size_t repositories = 0;
  std::size_t tags = 0;
  std::size_t manifests = 0;  // every manifest in the bundle, tagged ones included
  std::size_t blobs = 0;
  std::uint64_t bytes = 0;    // of blobs
  std::size_t blobs_present = 0;   // already in the work dir (a resumed pull), not fetched
  std::uint64_t bytes_to_fetch = 0;  // of the blobs that were (or, dry run, would be) fetched
  std::size_t chunks = 0;     // tar files written (0 for a directory or a dry run)
  std::vector<std::string> missing;  // repository:tag the source lacks, skipped (keep_going)
  std::filesystem::path work_dir;  // where what was pulled is kept (for "run again" hints)
};

// Pulls into `request.bundle`. The error says what failed; what was pulled stays in the work
// dir, and the same request resumes it.
util::result<pull_summary> pull(const oci::client::registry_client& source, const pull_request& request,
                                progress_sink& progress);

struct push_request {
  std::filesystem::path bundle;  // NAME.tar, NAME.tar.chunk-0000 or a layout directory
  // Where the bundle's root repository goes in the destination registry; its other
  // repositories go below it (`<repository>/<name in the bundle>`).
  std::string repository;
  transfer_options transfer;
  // Blobs larger than this go up in chunks of this size, each resumed from the offset the
  // destination holds when a connection breaks; smaller ones in one request.
  std::uint64_t chunk_bytes = 16ULL << 20;
  // Where chunked uploads still open are remembered (a small JSON file; empty: nowhere). A push
  // that fails with uploads half sent leaves them there, and the next push of the same blob to
  // the same repository goes on from the offset the destination holds. Ctrl-C cancels instead.
  std::filesystem::path upload_journal = {};
};

struct push_summary {
  std::size_t repositories = 0;
  std::size_t tags = 0;
  std::size_t manifests = 0;
  std::size_t blobs = 0;          // in the bundle
  std::size_t blobs_skipped = 0;  // the destination had them
  std::size_t blobs_mounted = 0;  // copied inside the destination from another repository
  std::uint64_t bytes_sent = 0;   // (dry run: that would be sent)
  std::size_t resumed = 0;        // chunks resumed after a broken connection
  std::size_t uploads_continued = 0;  // half-sent blobs of an earlier push gone on with
};

util::result<push_summary> push(const oci::client::registry_client& destination, const push_request& request,
                                progress_sink& progress);

}  // namespace registryd::mirror
