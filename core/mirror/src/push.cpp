// mirror push: for each repository of the bundle (the root and those below it), ask the
// destination which blobs it lacks; send each missing blob once, several at a time, streamed
// from the bundle, and mount it into the other repositories that lack it; then the manifests
// that are children of others, each after its own children; then the tags.
#include "retry.hpp"

#include <registryd/mirror/engine.hpp>
#include <registryd/oci/reference.hpp>
#include <registryd/util/atomic_file.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <functional>
#include <map>
#include <mutex>
#include <set>

namespace registryd::mirror {
namespace {

namespace client = oci::client;

// One repository of the bundle and where it goes.
struct target {
  std::string repository;  // in the destination
  std::vector<std::pair<descriptor, bundle_name>> entries;
  manifest_set content;  // what its entries reach
};

// A blob to stream from the bundle into a target.
struct stream_job {
  std::size_t target = 0;
  descriptor blob;
};

// The chunked uploads a push left open (push_request::upload_journal): key
// "<registry>/<repository>@<digest>" -> the upload's location. Written atomically after each
// change; a missing or unreadable file is an empty journal.
class upload_journal {
 public:
  explicit upload_journal(std::filesystem::path file) : file_(std::move(file)) {
    if (file_.empty()) return;
    std::error_code ec;
    const auto text = util::read_small_file(file_, ec);
    if (ec) return;
    try {
      const auto doc = nlohmann::json::parse(text);
      for (const auto& [key, value] : doc.at("uploads").items()) uploads_[key] = value.get<std::string>();
    } catch (const std::exception&) {
      uploads_.clear();  // damaged: forget it; uploads start over
    }
    for (const auto& [key, location] : uploads_) earlier_.insert(key);
  }

  // The key was in the journal when this push began: an earlier push left it.
  bool from_earlier_push(const std::string& key) const { return earlier_.count(key) != 0; }

  std::optional<std::string> find(const std::string& key) const {
    std::lock_guard lock(m_);
    const auto it = uploads_.find(key);
    return it == uploads_.end() ? std::nullopt : std::optional<std::string>(it->second);
  }
  void put(const std::string& key, const std::string& location) {
    std::lock_guard lock(m_);
    uploads_[key] = location;
    save();
  }
  void drop(const std::string& key) {
    std::lock_guard lock(m_);
    if (uploads_.erase(key) > 0) save();
  }

 private:
  void save() const {
    if (file_.empty()) return;
    nlohmann::json doc = {{"uploads", uploads_}};
    (void)util::write_file_atomic(file_, doc.dump(2) + "\n", std::filesystem::perms(0600));
  }

  std::filesystem::path file_;
  mutable std::mutex m_;
  std::map<std::string, std::string> uploads_;
  std::set<std::string> earlier_;
};

enum class sent { ok, retry, fail };
struct upload_result {
  sent how = sent::ok;
  std::string error;
};

class uploader {
 public:
  uploader(const client::registry_client& d, const push_request& r, progress_sink& p)
      : dest_(d), request_(r), t_(r.transfer), progress_(p), journal_(r.upload_journal) {}

  std::atomic<std::size_t> resumed{0};
  std::atomic<std::size_t> continued{0};

  // Sends `b` from `body` to `repo`: in one request up to request.chunk_bytes, else in chunks
  // of that size, a chunk cut short resumed from the offset the destination holds. An upload
  // that is not finished is cancelled (it would hold space on the destination until it expires).
  upload_result send(const std::string& repo, const descriptor& b, blob_stream& body) {
    const auto size = static_cast<std::uint64_t>(b.size);
    const bool chunked = size > request_.chunk_bytes;
    const std::string key = dest_.options().registry + "/" + repo + "@" + b.digest.str();
    // A chunked upload an earlier push left half sent goes on from where the destination has it.
    std::optional<client::upload_session> session;
    if (const auto location = chunked ? journal_.find(key) : std::nullopt) {
      client::upload_session earlier{repo, *location, 0};
      if (dest_.refresh_upload(earlier) && earlier.offset <= size) {
        session = std::move(earlier);
        if (journal_.from_earlier_push(key)) ++continued;
        progress_.line("going on with blob " + b.digest.str() + " at byte " + std::to_string(session->offset) +
                       (journal_.from_earlier_push(key) ? ", where an earlier push left it" : ""));
      } else {
        journal_.drop(key);  // expired or gone: start over
      }
    }
    if (!session) {
      auto opened = with_retries(t_, [&] { return dest_.open_upload(repo); });
      if (!opened) return failure("blob " + b.digest.str() + ": ", opened.error(), body);
      session = std::move(*opened);
      if (chunked) journal_.put(key, session->location);
    }
    // A failure that may pass keeps a chunked upload open for the next run; anything else
    // (a refusal, a corrupt bundle, Ctrl-C) cancels it.
    const auto abandon = [&](upload_result r) {
      if (chunked && r.how == sent::retry && !cancelled(t_)) return r;
      (void)dest_.cancel_upload(*session);
      journal_.drop(key);
      return r;
    };
    // The upload cannot go on (the destination lost track of it): cancelled, and the blob
    // starts over in the next round.
    const auto restart = [&](std::string why) {
      (void)dest_.cancel_upload(*session);
      journal_.drop(key);
      return upload_result{sent::retry, std::move(why)};
    };
    const auto read = [&](char* buf, std::size_t cap) -> std::ptrdiff_t {
      if (cancelled(t_)) return -1;
      const auto n = body.read(buf, cap);
      if (n > 0) progress_.add_bytes(static_cast<std::uint64_t>(n));
      return n;
    };
    if (size <= request_.chunk_bytes) {
      client::request_body rb;
      rb.length = size;
      rb.read = read;
      rb.rewind = [&]() -> bool { return body.rewind(); };
      auto r = dest_.finish_upload(*session, b.digest, std::move(rb));
      if (r) return {};
      return abandon(failure("blob " + b.digest.str() + ": ", r.error(), body));
    }
    std::vector<char> buffer(static_cast<std::size_t>(request_.chunk_bytes));
    std::uint64_t position = 0;  // bytes of the blob read from the bundle so far
    for (bool at_end = false; !at_end;) {
      std::size_t filled = 0;
      while (filled < buffer.size()) {
        const auto n = read(buffer.data() + filled, buffer.size() - filled);
        if (n < 0) {
          return abandon({sent::fail, cancelled(t_) ? std::string(interrupted_error)
                                                    : (body.error().empty() ? "blob " + b.digest.str() + " cannot be read"
                                                                            : body.error())});
        }
        if (n == 0) {
          at_end = true;  // and verified: the stream checks the digest before its end
          break;
        }
        filled += static_cast<std::size_t>(n);
      }
      // The chunk is bytes [chunk_start, chunk_start + filled) of the blob; the destination may
      // hold some of it (a resumed upload), and those are not sent again.
      const std::uint64_t chunk_start = position;
      position += filled;
      if (session->offset < chunk_start) {
        return restart("blob " + b.digest.str() + ": the destination's upload went back to byte " +
                       std::to_string(session->offset));
      }
      for (int attempt = 0; session->offset < chunk_start + filled; ++attempt) {
        const auto skip = static_cast<std::size_t>(session->offset - chunk_start);
        auto r = dest_.upload_chunk(*session, std::string_view(buffer.data() + skip, filled - skip));
        if (r) {
          journal_.put(key, session->location);  // the location names the offset on some registries
          break;
        }
        const std::string what = "blob " + b.digest.str() + " at byte " + std::to_string(session->offset) + ": ";
        if (r.error().status == 416) {
          // The destination holds another offset than the one asked for ("0-0" reads as
          // nothing but may be one byte): start the blob over.
          return restart(what + r.error().str());
        }
        if (!r.error().retryable() || attempt + 1 >= t_.retry.attempts || !wait_before_retry(t_, attempt)) {
          return abandon(failure(what, r.error(), body));
        }
        // What arrived of the chunk: go on from there.
        auto st = dest_.refresh_upload(*session);
        if (!st && st.error().retryable()) {
          return abandon({sent::retry, what + r.error().str()});  // kept for a later round or run
        }
        if (!st || session->offset < chunk_start || session->offset > chunk_start + filled) {
          return restart(what + r.error().str() + "; the destination lost the upload");
        }
        journal_.put(key, session->location);
        ++resumed;
        progress_.line("resuming " + what.substr(0, what.size() - 2) + " after: " + r.error().str());
      }
    }
    if (session->offset != size) {
      return abandon({sent::fail, "blob " + b.digest.str() + ": the destination holds " +
                                      std::to_string(session->offset) + " bytes of " + std::to_string(size)});
    }
    auto r = with_retries(t_, [&] { return dest_.finish_upload(*session, b.digest); });
    if (r) {
      journal_.drop(key);
      return {};
    }
    return abandon(failure("blob " + b.digest.str() + ": ", r.error(), body));
  }

 private:
  upload_result failure(const std::string& what, const client::upstream_error& e, const blob_stream& body) const {
    if (!body.error().empty()) return {sent::fail, body.error()};  // the bundle is at fault
    if (cancelled(t_)) return {sent::fail, std::string(interrupted_error)};
    return {e.retryable() ? sent::retry : sent::fail, what + e.str()};
  }

  const client::registry_client& dest_;
  const push_request& request_;
  const transfer_options& t_;
  progress_sink& progress_;
  upload_journal journal_;
};

// Splits `jobs` into at most `n` groups of about equal bytes (largest first, each to the
// lightest group).
std::vector<std::vector<stream_job>> balance(std::vector<stream_job> jobs, std::size_t n) {
  std::sort(jobs.begin(), jobs.end(), [](const stream_job& a, const stream_job& b) { return a.blob.size > b.blob.size; });
  std::vector<std::vector<stream_job>> groups(std::max<std::size_t>(1, std::min(n, jobs.size())));
  std::vector<std::uint64_t> load(groups.size(), 0);
  for (auto& j : jobs) {
    const auto k = static_cast<std::size_t>(std::min_element(load.begin(), load.end()) - load.begin());
    load[k] += static_cast<std::uint64_t>(j.blob.size);
    groups[k].push_back(std::move(j));
  }
  return groups;
}

}  // namespace

util::result<push_summary> push(const client::registry_client& destination, const push_request& request,
                                progress_sink& unlocked_progress) {
  const transfer_options& t = request.transfer;
  if (request.chunk_bytes == 0) return util::error{"the upload chunk size must be more than 0"};
  auto reader = bundle_reader::open(request.bundle);
  if (!reader) return util::error{reader.error_message()};
  locked_progress progress(unlocked_progress);
  const std::string& registry = destination.options().registry;
  const auto& content = reader->content();

  // The bundle's repositories, each with what its entries reach.
  std::vector<target> targets;
  std::map<std::string, std::size_t> by_name;
  for (const auto& e : reader->index()) {
    std::string note;
    auto name = bundle_name_of(e, &note);
    if (!note.empty()) progress.line(note);
    auto [it, added] = by_name.emplace(name.repository, targets.size());
    if (added) {
      target tg;
      tg.repository = request.repository + (name.repository.empty() ? "" : "/" + name.repository);
      if (!oci::is_valid_repository_name(tg.repository)) {
        return util::error{"'" + tg.repository + "' (for " + (name.repository.empty() ? "the bundle's root" : name.repository) +
                           ") is not a valid repository name"};
      }
      targets.push_back(std::move(tg));
    }
    targets[it->second].entries.emplace_back(e, std::move(name));
  }
  for (auto& tg : targets) {
    std::vector<descriptor> roots;
    for (const auto& [e, name] : tg.entries) roots.push_back(e);
    auto sub = content.subset(roots);
    if (!sub) return util::error{sub.error_message()};
    tg.content = std::move(*sub);
  }
  progress.line(request.bundle.string() + " (" + reader->kind() + "): " + std::to_string(targets.size()) +
                " repositor" + (targets.size() == 1 ? "y, " : "ies, ") + std::to_string(reader->index().size()) +
                " index entries, " + std::to_string(content.manifests.size()) + " manifests, " +
                std::to_string(content.blobs.size()) + " blobs");
  push_summary summary;
  summary.repositories = targets.size();
  summary.blobs = content.blobs.size();
  summary.manifests = content.manifests.size();

  // Which repositories lack which blobs, asked `parallel` at a time.
  struct question {
    std::size_t target;
    descriptor blob;
    bool has = false;
  };
  std::vector<question> questions;
  for (std::size_t k = 0; k < targets.size(); ++k) {
    for (const auto& b : targets[k].content.blobs) questions.push_back({k, b});
  }
  auto err = run_parallel(t, questions.size(), [&](std::size_t i) -> std::string {
    auto& q = questions[i];
    auto exists = with_retries(t, [&] { return destination.blob_exists(targets[q.target].repository, q.blob.digest); });
    if (!exists) {
      return "asking " + registry + " for blob " + q.blob.digest.str() + " in " + targets[q.target].repository + ": " +
             exists.error().str();
    }
    q.has = *exists;
    return {};
  });
  if (!err.empty()) return util::error{err};

  // Each blob a repository lacks: streamed to the first that lacks it when none has it, mounted
  // from one that has it into the others.
  struct mount_job {
    std::size_t target;
    descriptor blob;
    std::size_t from;
  };
  std::vector<stream_job> streams;
  std::vector<mount_job> mounts;
  std::uint64_t total = 0, skipped_bytes = 0;
  std::vector<const descriptor*> skipped;
  std::map<digest, std::vector<const question*>> asked;
  for (const auto& q : questions) asked[q.blob.digest].push_back(&q);
  for (const auto& b : content.blobs) {
    std::vector<std::size_t> holders, lackers;
    for (const auto* q : asked[b.digest]) (q->has ? holders : lackers).push_back(q->target);
    const auto size = static_cast<std::uint64_t>(b.size);
    total += size * std::max<std::size_t>(1, lackers.size());
    if (lackers.empty()) {
      skipped.push_back(&b);
      skipped_bytes += size;
      continue;
    }
    std::size_t from = 0;
    if (holders.empty()) {
      streams.push_back({lackers.front(), b});
      from = lackers.front();
      lackers.erase(lackers.begin());
    } else {
      from = holders.front();
    }
    for (const auto k : lackers) mounts.push_back({k, b, from});
  }
  summary.blobs_skipped = skipped.size();
  if (t.dry_run) {
    for (const auto& s : streams) summary.bytes_sent += static_cast<std::uint64_t>(s.blob.size);
    summary.blobs_mounted = mounts.size();
    for (const auto& tg : targets) {
      for (const auto& [e, name] : tg.entries) summary.tags += name.tag ? 1 : 0;
    }
    return summary;
  }

  progress.begin("push", total, skipped.size() + streams.size() + mounts.size());
  for (const auto* b : skipped) {
    progress.add_bytes(static_cast<std::uint64_t>(b->size));
    progress.item("already there", b->digest, static_cast<std::uint64_t>(b->size));
  }

  // Streams `jobs` from the bundle, one reader per worker; retries those a failure that may
  // pass interrupted, in rounds. A digest streamed twice (to two repositories) waits for the
  // next round: a tar is read once per round.
  uploader up(destination, request, progress);
  std::mutex sent_mutex;
  const auto stream_all = [&](std::vector<stream_job> jobs) -> std::string {
    for (int round = 0; !jobs.empty(); ++round) {
      std::vector<stream_job> now, later, failed;
      std::set<digest> taken;
      for (auto& j : jobs) (taken.insert(j.blob.digest).second ? now : later).push_back(std::move(j));
      const auto groups = balance(std::move(now), t.parallel);
      std::string last_error;
      auto e = run_parallel(t, groups.size(), [&](std::size_t g) -> std::string {
        auto own = bundle_reader::open(request.bundle);
        if (!own) return own.error_message();
        std::map<digest, std::size_t> to;
        std::vector<descriptor> wanted;
        for (const auto& j : groups[g]) {
          to[j.blob.digest] = j.target;
          wanted.push_back(j.blob);
        }
        auto st = own->for_each_blob(wanted, [&](const descriptor& b, blob_stream& body) -> status {
          const auto k = to.at(b.digest);
          auto r = up.send(targets[k].repository, b, body);
          std::lock_guard lock(sent_mutex);
          if (r.how == sent::ok) {
            progress.item("pushed", b.digest, static_cast<std::uint64_t>(b.size));
            summary.bytes_sent += static_cast<std::uint64_t>(b.size);
            return oci::ok();
          }
          if (r.how == sent::fail) return oci::error{r.error};
          progress.line("will retry: " + r.error);
          last_error = r.error;
          failed.push_back({k, b});
          return oci::ok();
        });
        return st ? std::string() : st.error_message();
      });
      if (!e.empty()) return e;
      if (!failed.empty() && round + 1 >= t.retry.attempts) return last_error;
      if (!failed.empty() && !wait_before_retry(t, round)) return std::string(interrupted_error);
      jobs = std::move(failed);
      jobs.insert(jobs.end(), std::make_move_iterator(later.begin()), std::make_move_iterator(later.end()));
    }
    return {};
  };
  err = stream_all(std::move(streams));
  if (err.empty()) {
    std::vector<stream_job> unmounted;  // a destination that does not mount: send those too
    for (const auto& m : mounts) {
      if (cancelled(t)) {
        err = std::string(interrupted_error);
        break;
      }
      auto r = with_retries(t, [&] {
        return destination.mount_blob(targets[m.target].repository, m.blob.digest, targets[m.from].repository);
      });
      if (r && *r) {
        progress.add_bytes(static_cast<std::uint64_t>(m.blob.size));
        progress.item("mounted from " + targets[m.from].repository, m.blob.digest, static_cast<std::uint64_t>(m.blob.size));
        ++summary.blobs_mounted;
      } else {
        unmounted.push_back({m.target, m.blob});
      }
    }
    if (err.empty()) err = stream_all(std::move(unmounted));
  }
  progress.end();
  summary.resumed = up.resumed;
  summary.uploads_continued = up.continued;
  if (!err.empty()) return util::error{err};

  // Per repository: manifests that are children of others go first, by digest, each after its
  // own children (a depth-first post-order: an image can be both a tag and a child of a tagged
  // index); then the entries, whose children are all there by then.
  for (const auto& tg : targets) {
    const auto& ms = tg.content.manifests;
    const std::string& repo = tg.repository;
    std::set<digest> children;
    for (const auto& m : ms) {
      for (const auto& ch : m.parsed.children()) children.insert(ch.digest);
    }
    std::set<digest> placed;
    std::string manifest_error;
    std::function<bool(const manifest_set::entry&)> place = [&](const manifest_set::entry& m) -> bool {
      if (!placed.insert(m.of.digest).second) return true;
      for (const auto& ch : m.parsed.children()) {
        const auto* child = tg.content.find(ch.digest);
        if (child != nullptr && !place(*child)) return false;
      }
      if (children.count(m.of.digest) == 0) return true;  // a top-level manifest: pushed by its entry
      if (destination.head_manifest(repo, m.of.digest.str())) return true;
      auto r = with_retries(t, [&] {
        return destination.push_manifest(repo, m.of.digest.str(), m.parsed.media_type, m.bytes);
      });
      if (!r) {
        manifest_error = "manifest " + m.of.digest.str() + " in " + repo + ": " + r.error().str();
        return false;
      }
      return true;
    };
    for (const auto& m : ms) {
      if (!place(m)) return util::error{manifest_error};
    }
    for (const auto& [e, name] : tg.entries) {
      const auto* m = tg.content.find(e.digest);
      if (m == nullptr) continue;  // cannot happen: subset() resolved every entry
      const std::string reference = name.tag ? *name.tag : e.digest.str();
      auto r = with_retries(t, [&] {
        return destination.push_manifest(repo, reference, m->parsed.media_type, m->bytes);
      });
      if (!r) return util::error{"manifest " + repo + ":" + reference + " (" + e.digest.str() + "): " + r.error().str()};
      if (*r != e.digest) {
        return util::error{registry + " stored " + repo + ":" + reference + " as " + r->str() + ", not " + e.digest.str()};
      }
      progress.line(repo + (name.tag ? ":" : "@") + reference + " -> " + e.digest.str());
      if (name.tag) ++summary.tags;
    }
  }
  return summary;
}

}  // namespace registryd::mirror
