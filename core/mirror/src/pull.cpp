// mirror pull: manifests first (small, and they say how much there is to download), then the
// blobs, each verified before it is published in the layout, then index.json, then the tar.
#include "retry.hpp"

#include <registryd/mirror/engine.hpp>
#include <registryd/oci/layout.hpp>
#include <registryd/oci/manifest.hpp>
#include <registryd/oci/media_types.hpp>
#include <registryd/oci/reference.hpp>
#include <registryd/oci/semver.hpp>

#include <algorithm>
#include <set>

namespace registryd::mirror {
namespace {

namespace fs = std::filesystem;
namespace client = oci::client;

class puller {
 public:
  puller(const client::registry_client& c, std::string repository, image_layout& layout, const retry_policy& retry)
      : client_(c), repository_(std::move(repository)), layout_(layout), retry_(retry) {}

  // Fetches the manifest `reference` and every manifest under it into the layout; the
  // descriptor of the top one.
  std::optional<descriptor> fetch_tree(const std::string& reference, std::string& err) {
    auto got = with_retries(retry_, [&] { return client_.get_manifest(repository_, reference); });
    if (!got) {
      err = "manifest " + reference + " of " + repository_ + ": " + got.error().str();
      return std::nullopt;
    }
    descriptor top(got->descriptor.media_type, got->descriptor.digest, static_cast<std::int64_t>(got->body.size()));
    auto parsed = oci::parse_manifest(got->body, got->descriptor.media_type);
    if (!parsed) {
      err = "manifest " + reference + " of " + repository_ + " (" + top.digest.str() + "): " + parsed.error_message();
      return std::nullopt;
    }
    top.media_type = parsed->media_type;
    if (!store(top, got->body, err)) return std::nullopt;
    if (!walk(*parsed, 0, err)) return std::nullopt;
    return top;
  }

  // Blobs referenced by what fetch_tree saw, each once.
  const std::vector<descriptor>& blobs() const { return blobs_; }
  // Child manifests fetch_tree saw (the tops not included, unless a top is also a child).
  const std::set<digest>& children() const { return seen_manifests_; }

  // Downloads `b` into the layout unless it is there and verified.
  bool fetch_blob(const descriptor& b, progress_sink& bar, std::string& err) {
    const auto size = static_cast<std::uint64_t>(b.size);
    if (layout_.has_blob(b.digest, size)) {
      if (layout_.verify_blob(b.digest, size)) {
        bar.add_bytes(size);
        bar.item("already in the layout", b.digest, size);
        return true;
      }
      std::error_code ec;
      fs::remove(layout_.blob_path(b.digest), ec);  // corrupt on disk: fetch again
    }
    std::uint64_t accounted = 0;  // bytes of this blob the bar has seen, across attempts
    for (int attempt = 0;; ++attempt) {
      auto w = layout_.write_blob(b.digest, size);
      if (!w) {
        err = w.error_message();
        return false;
      }
      const std::uint64_t resumed = w->offset();
      if (resumed > accounted) bar.add_bytes(resumed - accounted);
      accounted = std::max(accounted, resumed);
      std::uint64_t position = resumed;
      bool ranged = false;
      std::string write_error;
      client::blob_read_options opts;
      opts.verify = false;  // the layout's writer verifies
      if (resumed > 0 && resumed < size) opts.range = client::byte_range{resumed, std::nullopt};
      if (resumed == size) {
        if (w->commit()) {
          bar.item("pulled", b.digest, size);
          return true;
        }
        continue;  // the partial file was complete but wrong: it was removed; fetch it whole
      }
      client::response_handler h;
      h.on_head = [&](const client::response_head& head) {
        ranged = head.status == 206;
        if (head.status == 200 && w->offset() > 0) {
          // The source ignored the Range: start over.
          position = 0;
          if (auto st = w->restart(); !st) {
            write_error = st.error_message();
            return false;
          }
        }
        return true;
      };
      h.on_body = [&](std::string_view piece) {
        if (auto st = w->write(piece); !st) {
          write_error = st.error_message();
          return false;
        }
        position += piece.size();
        if (position > accounted) {
          bar.add_bytes(position - accounted);
          accounted = position;
        }
        return true;
      };
      auto r = client_.get_blob(repository_, b.digest, h, opts);
      if (r) {
        auto st = w->commit();
        if (st) {
          bar.item(ranged ? "pulled (resumed at byte " + std::to_string(resumed) + ")" : "pulled", b.digest, size);
          return true;
        }
        err = st.error_message() + " (from " + client_.options().registry + ")";
        if (attempt + 1 < retry_.attempts) {
          bar.line("retrying: " + err);
          continue;
        }
        return false;
      }
      if (!write_error.empty()) {
        err = write_error;
        return false;
      }
      err = "blob " + b.digest.str() + ": " + r.error().str();
      if (!r.error().retryable() || attempt + 1 >= retry_.attempts) return false;
      bar.line("retrying in " + std::to_string(backoff_of(retry_, attempt).count()) + " ms: " + err);
      wait_before_retry(retry_, attempt);
    }
  }

 private:
  bool store(const descriptor& d, const std::string& bytes, std::string& err) {
    if (layout_.has_blob(d.digest, bytes.size()) && layout_.verify_blob(d.digest, bytes.size())) return true;
    auto st = layout_.put_blob(d.digest, bytes);  // replaces a damaged copy
    if (!st) {
      err = st.error_message();
      return false;
    }
    return true;
  }

  bool walk(const manifest& m, int depth, std::string& err) {
    if (depth > 8) {
      err = "manifests nested too deep in " + repository_;
      return false;
    }
    for (const auto& b : m.blobs()) {
      if (!b.urls.empty() && oci::is_non_distributable_media_type(b.media_type)) continue;
      if (seen_blobs_.insert(b.digest).second) blobs_.push_back(b);
    }
    for (const auto& child : m.children()) {
      if (!seen_manifests_.insert(child.digest).second) continue;
      std::string bytes;
      if (auto local = layout_.read_blob(child.digest); local) {
        bytes = std::move(*local);
      } else {
        auto got = with_retries(retry_, [&] { return client_.get_manifest(repository_, child.digest.str()); });
        if (!got) {
          err = "manifest " + child.digest.str() + " of " + repository_ + ": " + got.error().str();
          return false;
        }
        bytes = std::move(got->body);
        if (!store(child, bytes, err)) return false;
      }
      auto parsed = oci::parse_manifest(bytes, child.media_type);
      if (!parsed) {
        err = "manifest " + child.digest.str() + " of " + repository_ + ": " + parsed.error_message();
        return false;
      }
      if (!walk(*parsed, depth + 1, err)) return false;
    }
    return true;
  }

  const client::registry_client& client_;
  std::string repository_;
  image_layout& layout_;
  const retry_policy& retry_;
  std::vector<descriptor> blobs_;
  std::set<digest> seen_blobs_;
  std::set<digest> seen_manifests_;
};

// The tags a selection names, listed from the source when it asks for all or the releases.
util::result<std::vector<std::string>> resolve_tags(const client::registry_client& source, const pull_request& r,
                                                    progress_sink& progress) {
  const auto& what = r.what;
  // Named tags and a digest go together (`repo:tag@digest` pulls both); listing goes alone.
  const int choices = ((!what.tags.empty() || what.digest) ? 1 : 0) + (what.all ? 1 : 0) + (what.releases > 0 ? 1 : 0);
  if (choices != 1) return util::error{"choose exactly one of named tags (and digests), all tags, or the N newest releases"};
  for (const auto& t : what.tags) {
    if (!oci::is_valid_tag(t)) return util::error{"'" + t + "' is not a valid tag"};
  }
  if (!what.all && what.releases == 0) return what.tags;
  auto listed = with_retries(r.retry, [&] { return source.list_tags(r.repository); });
  if (!listed) {
    return util::error{"cannot list the tags of " + source.options().registry + "/" + r.repository + ": " +
                       listed.error().str()};
  }
  auto tags = what.all ? *listed : oci::newest_releases(*listed, what.releases);
  if (tags.empty()) {
    return util::error{source.options().registry + "/" + r.repository + " has no " +
                       (what.all ? "tags" : "release tags (vX.Y.Z)")};
  }
  if (what.releases > 0 && tags.size() < what.releases) {
    progress.line("only " + std::to_string(tags.size()) + " release tags, fewer than " + std::to_string(what.releases));
  }
  return tags;
}

}  // namespace

util::result<pull_summary> pull(const client::registry_client& source, const pull_request& request,
                                progress_sink& progress) {
  const fs::path& bundle = request.bundle;
  const bool as_tar = bundle.extension() == ".tar";
  if (request.chunk_size && !as_tar) return util::error{"chunks need a tar bundle (a name ending in .tar)"};
  if (request.chunk_size && *request.chunk_size == 0) return util::error{"the chunk size must be more than 0"};
  pull_summary summary;
  summary.work_dir = as_tar ? fs::path(bundle.string() + ".work") : bundle;

  auto tags = resolve_tags(source, request, progress);
  if (!tags) return util::error{tags.error_message()};

  auto layout = image_layout::open(summary.work_dir, true);
  if (!layout) return util::error{layout.error_message()};
  if (auto st = layout->lock(); !st) return util::error{st.error_message()};
  auto index = layout->read_index();
  if (!index) return util::error{index.error_message()};

  puller p(source, request.repository, *layout, request.retry);
  std::vector<std::pair<std::string, descriptor>> tops;  // tag ("" for a digest) -> manifest
  std::string err;
  if (request.what.digest) {
    auto d = p.fetch_tree(request.what.digest->str(), err);
    if (!d) return util::error{err};
    tops.emplace_back("", *d);
  }
  for (const auto& tag : *tags) {
    auto d = p.fetch_tree(tag, err);
    if (!d) return util::error{err};
    progress.line(request.repository + ":" + tag + " is " + d->digest.str() + " (" + d->media_type + ")");
    tops.emplace_back(tag, *d);
  }

  for (const auto& b : p.blobs()) summary.bytes += static_cast<std::uint64_t>(b.size);
  progress.begin("pull", summary.bytes, p.blobs().size());
  for (const auto& b : p.blobs()) {
    if (!p.fetch_blob(b, progress, err)) {
      progress.end();
      return util::error{err};
    }
  }
  progress.end();

  for (const auto& [tag, d] : tops) {
    if (tag.empty()) {
      const bool present = std::any_of(index->begin(), index->end(),
                                       [&](const descriptor& e) { return e.digest == d.digest && !oci::ref_name(e); });
      if (!present) index->push_back(d);
    } else {
      oci::set_ref_name(*index, tag, d);
    }
  }
  if (auto st = layout->write_index(*index); !st) return util::error{st.error_message()};
  // Every manifest once, however many tags name it and whichever index holds it: the count
  // push reports for the same bundle.
  std::set<digest> manifests = p.children();
  for (const auto& [tag, d] : tops) manifests.insert(d.digest);
  summary.tags = tags->size();
  summary.manifests = manifests.size();
  summary.blobs = p.blobs().size();

  if (as_tar) {
    bundle_write_options w;
    w.chunk_size = request.chunk_size;
    auto content = collect_manifests(*layout, *index);
    std::uint64_t bundle_total = 0;
    if (content) {
      for (const auto& b : content->blobs) bundle_total += static_cast<std::uint64_t>(b.size);
    }
    progress.begin("write", bundle_total, 0);  // bytes only: the tar is one stream
    std::uint64_t last = 0;
    w.progress = [&](std::uint64_t done, std::uint64_t) {
      progress.add_bytes(done - last);
      last = done;
    };
    auto st = write_bundle(*layout, bundle, w);
    progress.end();
    if (!st) return util::error{"writing " + bundle.string() + ": " + st.error_message()};
    if (!request.keep_work_dir) {
      std::error_code ec;
      fs::remove_all(summary.work_dir, ec);
    }
    auto files = bundle_files(bundle);
    summary.chunks = files ? files->size() : 1;
  }
  return summary;
}

}  // namespace registryd::mirror
