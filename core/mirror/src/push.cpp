// mirror push: the blobs the destination lacks, streamed from the bundle; then the manifests
// that are children of others, each after its own children; then the tags.
#include "retry.hpp"

#include <registryd/mirror/engine.hpp>
#include <registryd/oci/reference.hpp>

#include <functional>
#include <set>

namespace registryd::mirror {
namespace {

namespace client = oci::client;

}  // namespace

util::result<push_summary> push(const client::registry_client& destination, const push_request& request,
                                progress_sink& progress) {
  auto reader = bundle_reader::open(request.bundle);
  if (!reader) return util::error{reader.error_message()};
  const std::string& repo = request.repository;
  const std::string& registry = destination.options().registry;
  const auto& content = reader->content();
  progress.line(request.bundle.string() + " (" + reader->kind() + "): " + std::to_string(reader->index().size()) +
                " index entries, " + std::to_string(content.manifests.size()) + " manifests, " +
                std::to_string(content.blobs.size()) + " blobs");
  push_summary summary;
  summary.blobs = content.blobs.size();
  summary.manifests = content.manifests.size();

  // Which blobs the destination lacks.
  std::uint64_t total = 0;
  for (const auto& b : content.blobs) total += static_cast<std::uint64_t>(b.size);
  progress.begin("push", total, content.blobs.size());
  std::vector<descriptor> missing;
  for (const auto& b : content.blobs) {
    auto exists = with_retries(request.retry, [&] { return destination.blob_exists(repo, b.digest); });
    if (!exists) {
      progress.end();
      return util::error{"asking " + registry + " for blob " + b.digest.str() + ": " + exists.error().str()};
    }
    if (*exists) {
      progress.add_bytes(static_cast<std::uint64_t>(b.size));
      progress.item("already there", b.digest, static_cast<std::uint64_t>(b.size));
      ++summary.blobs_skipped;
    } else {
      missing.push_back(b);
    }
  }

  // Send them, streamed from the bundle; retry the ones a failure that may pass interrupted.
  for (int round = 0; !missing.empty(); ++round) {
    std::vector<descriptor> failed;
    std::string last_error;
    auto st = reader->for_each_blob(missing, [&](const descriptor& b, blob_stream& body) -> status {
      client::request_body rb;
      rb.length = static_cast<std::uint64_t>(b.size);
      rb.read = [&](char* buf, std::size_t cap) -> std::ptrdiff_t {
        const auto n = body.read(buf, cap);
        if (n > 0) progress.add_bytes(static_cast<std::uint64_t>(n));
        return n;
      };
      rb.rewind = [&]() -> bool { return body.rewind(); };
      auto r = destination.push_blob(repo, b.digest, std::move(rb));
      if (r) {
        progress.item("pushed", b.digest, static_cast<std::uint64_t>(b.size));
        summary.bytes_sent += static_cast<std::uint64_t>(b.size);
        return oci::ok();
      }
      if (!body.error().empty()) return oci::error{body.error()};  // the bundle is at fault
      last_error = "blob " + b.digest.str() + ": " + r.error().str();
      if (!r.error().retryable()) return oci::error{last_error};
      progress.line("will retry: " + last_error);
      failed.push_back(b);
      return oci::ok();
    });
    if (!st) {
      progress.end();
      return util::error{st.error_message()};
    }
    if (!failed.empty() && round + 1 >= request.retry.attempts) {
      progress.end();
      return util::error{last_error};
    }
    if (!failed.empty()) wait_before_retry(request.retry, round);
    missing = std::move(failed);
  }
  progress.end();

  // Manifests that are children of others go first, by digest, each after its own children (a
  // depth-first post-order: an image can be both a tag and a child of a tagged index); then
  // the tags, whose children are all there by then.
  const auto& ms = content.manifests;
  std::set<digest> children;
  for (const auto& m : ms) {
    for (const auto& ch : m.parsed.children()) children.insert(ch.digest);
  }
  std::set<digest> placed;
  std::string manifest_error;
  std::function<bool(const manifest_set::entry&)> place = [&](const manifest_set::entry& m) -> bool {
    if (!placed.insert(m.of.digest).second) return true;
    for (const auto& ch : m.parsed.children()) {
      const auto* child = content.find(ch.digest);
      if (child != nullptr && !place(*child)) return false;
    }
    if (children.count(m.of.digest) == 0) return true;  // a top-level manifest: pushed by its tag
    if (destination.head_manifest(repo, m.of.digest.str())) return true;
    auto r = with_retries(request.retry, [&] {
      return destination.push_manifest(repo, m.of.digest.str(), m.parsed.media_type, m.bytes);
    });
    if (!r) {
      manifest_error = "manifest " + m.of.digest.str() + ": " + r.error().str();
      return false;
    }
    return true;
  };
  for (const auto& m : ms) {
    if (!place(m)) return util::error{manifest_error};
  }
  for (const auto& e : reader->index()) {
    const auto* m = content.find(e.digest);
    if (m == nullptr) continue;  // cannot happen: the reader resolved every entry
    const auto tag = oci::ref_name(e);
    const bool tagged = tag && oci::is_valid_tag(*tag);
    const std::string reference = tagged ? *tag : e.digest.str();
    if (tag && !tagged) {
      progress.line("index entry " + e.digest.str() + " is named '" + *tag + "', not a tag: pushed by digest");
    }
    auto r = with_retries(request.retry, [&] {
      return destination.push_manifest(repo, reference, m->parsed.media_type, m->bytes);
    });
    if (!r) return util::error{"manifest " + reference + " (" + e.digest.str() + "): " + r.error().str()};
    if (*r != e.digest) {
      return util::error{registry + " stored " + reference + " as " + r->str() + ", not " + e.digest.str()};
    }
    progress.line(repo + ":" + reference + " -> " + e.digest.str());
    if (tagged) ++summary.tags;
  }
  return summary;
}

}  // namespace registryd::mirror
