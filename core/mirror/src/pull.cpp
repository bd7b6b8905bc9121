// mirror pull: for each repository, its tags' manifests first (small, and they say how much
// there is to download), then every blob once, several at a time, each verified before it is
// published in the layout; then index.json, then the tar.
#include "retry.hpp"

#include <registryd/mirror/engine.hpp>
#include <registryd/oci/layout.hpp>
#include <registryd/oci/manifest.hpp>
#include <registryd/oci/media_types.hpp>
#include <registryd/oci/reference.hpp>
#include <registryd/oci/semver.hpp>

#include <algorithm>
#include <map>
#include <set>

namespace registryd::mirror {
namespace {

namespace fs = std::filesystem;
namespace client = oci::client;

// A blob to fetch and the repository to fetch it from (the first that referenced it).
struct wanted_blob {
  std::string repository;
  descriptor blob;
};

class puller {
 public:
  // `layout` is null in a dry run without a work dir; in a dry run nothing is written to it.
  puller(const client::registry_client& c, image_layout* layout, const transfer_options& t)
      : client_(c), layout_(layout), transfer_(t) {}

  // Fetches the manifest `reference` of `repo` and every manifest under it into the layout;
  // the descriptor of the top one. `absent` is set when the source has no such manifest.
  std::optional<descriptor> fetch_tree(const std::string& repo, const std::string& reference, std::string& err,
                                       bool& absent) {
    absent = false;
    auto got = with_retries(transfer_, [&] { return client_.get_manifest(repo, reference); });
    if (!got) {
      absent = got.error().status == 404;
      err = "manifest " + reference + " of " + repo + ": " + got.error().str();
      return std::nullopt;
    }
    descriptor top(got->descriptor.media_type, got->descriptor.digest, static_cast<std::int64_t>(got->body.size()));
    auto parsed = oci::parse_manifest(got->body, got->descriptor.media_type);
    if (!parsed) {
      err = "manifest " + reference + " of " + repo + " (" + top.digest.str() + "): " + parsed.error_message();
      return std::nullopt;
    }
    top.media_type = parsed->media_type;
    if (!store(top, got->body, err)) return std::nullopt;
    if (!walk(repo, *parsed, 0, err)) return std::nullopt;
    return top;
  }

  // Blobs referenced by what fetch_tree saw, each once.
  const std::vector<wanted_blob>& blobs() const { return blobs_; }
  // Child manifests fetch_tree saw (the tops not included, unless a top is also a child).
  const std::set<digest>& children() const { return seen_manifests_; }

  // The blob is in the layout already (verified unless in a dry run).
  bool present(const descriptor& b) const {
    const auto size = static_cast<std::uint64_t>(b.size);
    if (layout_ == nullptr || !layout_->has_blob(b.digest, size)) return false;
    return transfer_.dry_run || layout_->verify_blob(b.digest, size);
  }

  // Downloads `b` from `repo` into the layout unless it is there and verified (then
  // `was_present` is set). The error message, or "".
  std::string fetch_blob(const std::string& repo, const descriptor& b, progress_sink& bar, bool& was_present) {
    const auto size = static_cast<std::uint64_t>(b.size);
    was_present = present(b);
    if (was_present) {
      bar.add_bytes(size);
      bar.item("already in the layout", b.digest, size);
      return {};
    }
    std::error_code ec;
    fs::remove(layout_->blob_path(b.digest), ec);  // corrupt on disk, if there: fetch again
    std::uint64_t accounted = 0;  // bytes of this blob the bar has seen, across attempts
    for (int attempt = 0;; ++attempt) {
      if (cancelled(transfer_)) return std::string(interrupted_error);
      auto w = layout_->write_blob(b.digest, size);
      if (!w) return w.error_message();
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
          return {};
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
        if (cancelled(transfer_)) {
          write_error = std::string(interrupted_error);  // the partial file stays: a re-run resumes it
          return false;
        }
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
      auto r = client_.get_blob(repo, b.digest, h, opts);
      if (r) {
        auto st = w->commit();
        if (st) {
          bar.item(ranged ? "pulled (resumed at byte " + std::to_string(resumed) + ")" : "pulled", b.digest, size);
          return {};
        }
        std::string err = st.error_message() + " (from " + client_.options().registry + ")";
        if (attempt + 1 < transfer_.retry.attempts) {
          bar.line("retrying: " + err);
          continue;
        }
        return err;
      }
      if (!write_error.empty()) return write_error;
      std::string err = "blob " + b.digest.str() + " of " + repo + ": " + r.error().str();
      if (!r.error().retryable() || attempt + 1 >= transfer_.retry.attempts) return err;
      bar.line("retrying in " + std::to_string(backoff_of(transfer_.retry, attempt).count()) + " ms: " + err);
      if (!wait_before_retry(transfer_, attempt)) return std::string(interrupted_error);
    }
  }

 private:
  bool store(const descriptor& d, const std::string& bytes, std::string& err) {
    if (transfer_.dry_run) return true;
    if (layout_->has_blob(d.digest, bytes.size()) && layout_->verify_blob(d.digest, bytes.size())) return true;
    auto st = layout_->put_blob(d.digest, bytes);  // replaces a damaged copy
    if (!st) {
      err = st.error_message();
      return false;
    }
    return true;
  }

  bool walk(const std::string& repo, const manifest& m, int depth, std::string& err) {
    if (depth > 8) {
      err = "manifests nested too deep in " + repo;
      return false;
    }
    for (const auto& b : m.blobs()) {
      if (!b.urls.empty() && oci::is_non_distributable_media_type(b.media_type)) continue;
      if (seen_blobs_.insert(b.digest).second) blobs_.push_back({repo, b});
    }
    for (const auto& child : m.children()) {
      if (!seen_manifests_.insert(child.digest).second) continue;
      std::optional<std::string> local;
      if (layout_ != nullptr) {
        if (auto read = layout_->read_blob(child.digest)) local = std::move(*read);
      }
      std::string bytes;
      if (local) {
        bytes = std::move(*local);
      } else {
        auto got = with_retries(transfer_, [&] { return client_.get_manifest(repo, child.digest.str()); });
        if (!got) {
          err = "manifest " + child.digest.str() + " of " + repo + ": " + got.error().str();
          return false;
        }
        bytes = std::move(got->body);
        if (!store(child, bytes, err)) return false;
      }
      auto parsed = oci::parse_manifest(bytes, child.media_type);
      if (!parsed) {
        err = "manifest " + child.digest.str() + " of " + repo + ": " + parsed.error_message();
        return false;
      }
      if (!walk(repo, *parsed, depth + 1, err)) return false;
    }
    return true;
  }

  const client::registry_client& client_;
  image_layout* layout_;
  const transfer_options& transfer_;
  std::vector<wanted_blob> blobs_;
  std::set<digest> seen_blobs_;
  std::set<digest> seen_manifests_;
};

// The tags a selection names, listed from the source when it asks for all or the releases.
util::result<std::vector<std::string>> resolve_tags(const client::registry_client& source,
                                                    const repository_selection& r, const transfer_options& t,
                                                    progress_sink& progress) {
  const auto& what = r.what;
  // Named tags and digests go together (`repo:tag@digest` pulls both); listing goes alone.
  const int choices = ((!what.tags.empty() || !what.digests.empty()) ? 1 : 0) + (what.all ? 1 : 0) +
                      (what.releases > 0 ? 1 : 0);
  if (choices != 1) {
    return util::error{r.repository + ": choose exactly one of named tags (and digests), all tags, or the N newest releases"};
  }
  for (const auto& tag : what.tags) {
    if (!oci::is_valid_tag(tag)) return util::error{"'" + tag + "' is not a valid tag"};
  }
  if (!what.all && what.releases == 0) return what.tags;
  auto listed = with_retries(t, [&] { return source.list_tags(r.repository); });
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
    progress.line(r.repository + ": only " + std::to_string(tags.size()) + " release tags, fewer than " +
                  std::to_string(what.releases));
  }
  return tags;
}

// A manifest the bundle's index will name.
struct top_entry {
  bundle_name name;
  descriptor manifest;
};

}  // namespace

util::result<pull_summary> pull(const client::registry_client& source, const pull_request& request,
                                progress_sink& unlocked_progress) {
  const fs::path& bundle = request.bundle;
  const transfer_options& t = request.transfer;
  const bool as_tar = bundle.extension() == ".tar";
  if (request.chunk_size && !as_tar) return util::error{"chunks need a tar bundle (a name ending in .tar)"};
  if (request.chunk_size && *request.chunk_size == 0) return util::error{"the chunk size must be more than 0"};
  if (request.repositories.empty()) return util::error{"no repository to pull"};
  locked_progress progress(unlocked_progress);
  pull_summary summary;
  summary.work_dir = as_tar ? fs::path(bundle.string() + ".work") : bundle;

  std::vector<std::pair<std::string, std::vector<std::string>>> tags;  // relative name -> tags
  std::set<std::string> names;
  for (const auto& r : request.repositories) {
    const auto rel = relative_repository(request.root, r.repository);
    if (!rel) return util::error{r.repository + " is not " + request.root + " nor below it"};
    if (!names.insert(*rel).second) return util::error{r.repository + " is named twice"};
    auto resolved = resolve_tags(source, r, t, progress);
    if (!resolved) return util::error{resolved.error_message()};
    tags.emplace_back(*rel, std::move(*resolved));
  }

  std::optional<image_layout> layout;
  std::error_code ec;
  if (!t.dry_run || fs::exists(summary.work_dir / "oci-layout", ec)) {
    auto opened = image_layout::open(summary.work_dir, !t.dry_run);
    if (!opened) return util::error{opened.error_message()};
    layout = std::move(*opened);
    if (!t.dry_run) {
      if (auto st = layout->lock(); !st) return util::error{st.error_message()};
    }
  }
  std::vector<descriptor> index;
  if (layout) {
    auto read = layout->read_index();
    if (!read) return util::error{read.error_message()};
    index = std::move(*read);
  }

  puller p(source, layout ? &*layout : nullptr, t);
  std::vector<top_entry> tops;
  std::string err;
  for (std::size_t i = 0; i < request.repositories.size(); ++i) {
    const auto& repo = request.repositories[i].repository;
    const auto& rel = tags[i].first;
    std::vector<std::pair<std::optional<std::string>, std::string>> refs;  // tag (none: digest), reference
    std::set<std::string> named;  // a tag or digest asked for twice is pulled and counted once
    for (const auto& d : request.repositories[i].what.digests) {
      if (named.insert(d.str()).second) refs.emplace_back(std::nullopt, d.str());
    }
    for (const auto& tag : tags[i].second) {
      if (named.insert(tag).second) refs.emplace_back(tag, tag);
    }
    for (const auto& [tag, reference] : refs) {
      if (cancelled(t)) return util::error{std::string(interrupted_error)};
      bool absent = false;
      auto d = p.fetch_tree(repo, reference, err, absent);
      if (!d && absent && request.keep_going) {
        summary.missing.push_back(repo + (tag ? ":" : "@") + reference);
        progress.line(repo + (tag ? ":" : "@") + reference + " is not in the source: skipped (--keep-going)");
        continue;
      }
      if (!d && absent) return util::error{err + " (--keep-going skips what the source lacks)"};
      if (!d) return util::error{err};
      if (tag) progress.line(repo + ":" + *tag + " is " + d->digest.str() + " (" + d->media_type + ")");
      tops.push_back({bundle_name{rel, tag}, *d});
    }
  }
  if (tops.empty()) return util::error{"nothing to pull: the source has none of the tags asked for"};

  std::vector<const wanted_blob*> to_fetch;
  for (const auto& b : p.blobs()) {
    summary.bytes += static_cast<std::uint64_t>(b.blob.size);
    if (t.dry_run && p.present(b.blob)) {
      ++summary.blobs_present;
      continue;
    }
    to_fetch.push_back(&b);
  }
  summary.blobs = p.blobs().size();
  std::set<digest> manifests = p.children();
  for (const auto& top : tops) manifests.insert(top.manifest.digest);
  summary.manifests = manifests.size();
  std::set<std::string> pulled_from;
  for (const auto& top : tops) {
    summary.tags += top.name.tag ? 1 : 0;
    pulled_from.insert(top.name.repository);
  }
  summary.repositories = pulled_from.size();
  if (t.dry_run) {
    for (const auto* b : to_fetch) summary.bytes_to_fetch += static_cast<std::uint64_t>(b->blob.size);
    return summary;
  }

  // Every blob once, `parallel` at a time.
  progress.begin("pull", summary.bytes, to_fetch.size());
  std::atomic<std::size_t> present{0};
  std::atomic<std::uint64_t> fetched_bytes{0};
  err = run_parallel(t, to_fetch.size(), [&](std::size_t i) {
    const auto& w = *to_fetch[i];
    bool was_there = false;
    auto e = p.fetch_blob(w.repository, w.blob, progress, was_there);
    if (e.empty() && was_there) ++present;
    if (e.empty() && !was_there) fetched_bytes += static_cast<std::uint64_t>(w.blob.size);
    return e;
  });
  progress.end();
  if (!err.empty()) return util::error{err};
  summary.blobs_present = present;
  summary.bytes_to_fetch = fetched_bytes;

  for (const auto& top : tops) {
    const auto ref = ref_name_of(top.name, top.manifest.digest);
    if (!ref) {
      const bool there = std::any_of(index.begin(), index.end(), [&](const descriptor& e) {
        return e.digest == top.manifest.digest && !oci::ref_name(e);
      });
      if (!there) index.push_back(top.manifest);
    } else {
      oci::set_ref_name(index, *ref, top.manifest);
    }
  }
  if (auto st = layout->write_index(index); !st) return util::error{st.error_message()};

  if (as_tar) {
    bundle_write_options w;
    w.chunk_size = request.chunk_size;
    auto content = collect_manifests(*layout, index);
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
      layout.reset();  // the lock goes with it
      fs::remove_all(summary.work_dir, ec);
    }
    auto files = bundle_files(bundle);
    summary.chunks = files ? files->size() : 1;
  }
  return summary;
}

}  // namespace registryd::mirror
