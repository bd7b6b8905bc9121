#include "replica/sync_engine.hpp"

#include <registryd/oci/manifest.hpp>

#include <sstream>

namespace registryd::local::replica {
namespace {

// Nested indexes deeper than this are refused (the image spec allows nesting; nothing real
// goes beyond two levels).
constexpr int max_index_depth = 8;

double unix_seconds_now() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::string quote_label(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

std::string human_bytes(std::uint64_t b) {
  std::ostringstream s;
  s.precision(3);
  if (b >= (1ull << 30)) {
    s << static_cast<double>(b) / static_cast<double>(1ull << 30) << " GiB";
  } else if (b >= (1ull << 20)) {
    s << static_cast<double>(b) / static_cast<double>(1ull << 20) << " MiB";
  } else if (b >= 1024) {
    s << static_cast<double>(b) / 1024.0 << " KiB";
  } else {
    s << b << " B";
  }
  return s.str();
}

}  // namespace

// One round with one peer: the peer's state, the plan, and applying it in the safe order.
class sync_engine::round {
 public:
  round(sync_engine& engine, peer_source& peer) : e_(engine), peer_(peer) {}

  round_report run() {
    auto peer_state = peer_.fetch_state();
    if (!peer_state) {
      fail(peer_.name() + ": " + peer_state.error().str());
      return std::move(report_);
    }
    report_.reached = true;
    const replica_state mine = e_.local_.observe();
    const sync_plan plan = plan_sync(mine, *peer_state);
    for (const repository_plan& rp : plan.repositories) {
      const auto it = peer_state->repositories.find(rp.repository);
      apply(rp, it->second);
    }
    return std::move(report_);
  }

 private:
  void fail(std::string message) {
    if (report_.failures++ == 0) report_.first_failure = std::move(message);
  }

  const storage::repository_store& repos() const { return e_.local_.repositories(); }
  const storage::blob_store& blobs() const { return repos().blobs(); }

  void apply(const repository_plan& rp, const repository_state& theirs) {
    const std::string& repo = rp.repository;
    for (const auto& t : rp.adopt_tag_tombstones) {
      e_.local_.adopt_tag_tombstone(repo, t.tag, tag_tombstone{t.digest, t.time});
      ++report_.tombstones_adopted;
    }
    for (const auto& m : rp.adopt_manifest_tombstones) {
      e_.local_.adopt_manifest_tombstone(repo, m.digest, m.time);
      ++report_.tombstones_adopted;
    }
    for (const auto& t : rp.delete_tags) {
      auto st = e_.local_.delete_tag(repo, t.tag, t.digest, tag_tombstone{t.digest, t.time});
      if (!st) {
        fail("delete tag " + repo + ":" + t.tag + ": " + st.error_message());
        continue;
      }
      ++report_.tags_deleted;
    }
    for (const auto& m : rp.delete_manifests) {
      auto st = e_.local_.delete_manifest(repo, m.digest, m.time);
      if (!st) {
        fail("delete manifest " + repo + "@" + m.digest.str() + ": " + st.error_message());
        continue;
      }
      ++report_.manifests_deleted;
    }
    for (const auto& m : rp.copy_manifests) (void)ensure_manifest(repo, m.digest, m.time, theirs, 0);
    for (const auto& t : rp.set_tags) {
      if (!repos().has_manifest(repo, t.digest)) {
        fail("tag " + repo + ":" + t.tag + " not set: its manifest " + t.digest.str() + " could not be copied");
        continue;
      }
      auto st = e_.local_.set_tag(repo, t.tag, t.digest, t.time);
      if (!st) {
        fail("set tag " + repo + ":" + t.tag + ": " + st.error_message());
        continue;
      }
      ++report_.tags_set;
    }
  }

  // Copies a manifest and everything under it unless it is here already. True when it is
  // here afterwards.
  bool ensure_manifest(const std::string& repo, const oci::digest& d, unix_ns time, const repository_state& theirs,
                       int depth) {
    if (repos().has_manifest(repo, d)) return true;
    const std::string where = repo + "@" + d.str();
    if (depth > max_index_depth) {
      fail(where + ": indexes nested deeper than " + std::to_string(max_index_depth));
      return false;
    }
    auto fetched = peer_.fetch_manifest(repo, d);
    if (!fetched) {
      fail("manifest " + where + ": " + fetched.error().str());
      return false;
    }
    const std::string& body = fetched->body;
    if (oci::digest_of(body, d.algorithm()) != d) {
      fail("manifest " + where + ": the peer sent bytes with another digest");
      return false;
    }
    auto parsed = oci::parse_manifest(body, fetched->descriptor.media_type);
    if (!parsed) {
      fail("manifest " + where + ": " + parsed.error_message());
      return false;
    }
    const oci::manifest& m = *parsed;
    bool complete = true;
    for (const auto& child : m.children()) {
      const auto t = theirs.manifests.find(child.digest);
      complete &= ensure_manifest(repo, child.digest, t == theirs.manifests.end() ? time : t->second, theirs, depth + 1);
    }
    for (const auto& b : m.blobs()) {
      // A foreign layer (it names its URLs) need not be in any registry.
      complete &= ensure_blob(repo, b.digest, !b.urls.empty());
    }
    if (!complete) return false;

    storage::manifest_put put{.bytes = body,
                              .digest = d,
                              .media_type = m.media_type,
                              .subject = std::nullopt,
                              .referrer_descriptor = nullptr,
                              .tag = std::nullopt};
    if (m.subject) {
      // The same referrer entry the API writes on a push.
      put.subject = m.subject->digest;
      oci::descriptor self(m.media_type, d, static_cast<std::int64_t>(body.size()));
      self.artifact_type = m.artifact_type();
      self.annotations = m.annotations;
      put.referrer_descriptor = self.to_json();
    }
    auto stored = e_.local_.put_manifest(repo, put, time);
    if (!stored) {
      fail("store manifest " + where + ": " + stored.error_message());
      return false;
    }
    ++report_.manifests_copied;
    return true;
  }

  bool link(const std::string& repo, const oci::digest& d) {
    auto st = repos().link_blob(repo, d);
    if (!st) {
      fail("link blob " + repo + "@" + d.str() + ": " + st.error_message());
      return false;
    }
    return true;
  }

  bool ensure_blob(const std::string& repo, const oci::digest& d, bool foreign) {
    if (repos().stat_blob(repo, d)) return true;
    for (;;) {
      if (blobs().exists(d)) {
        if (!link(repo, d)) return false;
        ++report_.blobs_linked;
        return true;
      }
      std::shared_ptr<inflight_copy> mine;
      {
        std::unique_lock lock(e_.inflight_mutex_);
        const auto it = e_.inflight_.find(d);
        if (it != e_.inflight_.end()) {
          // Another peer's thread is copying it: wait, then link what it published (or copy
          // it ourselves when that copy failed).
          const auto theirs = it->second;
          ++e_.coalesced_;
          e_.inflight_cv_.wait(lock, [&] { return theirs->done; });
          continue;
        }
        mine = std::make_shared<inflight_copy>();
        e_.inflight_.emplace(d, mine);
      }
      struct finish {
        sync_engine& e;
        const oci::digest& d;
        std::shared_ptr<inflight_copy>& c;
        ~finish() {
          {
            std::lock_guard lock(e.inflight_mutex_);
            c->done = true;
            e.inflight_.erase(d);
          }
          e.inflight_cv_.notify_all();
        }
      } done_at_exit{e_, d, mine};
      if (blobs().exists(d)) continue;  // published between the check and the claim
      return copy_blob(repo, d, foreign);
    }
  }

  bool copy_blob(const std::string& repo, const oci::digest& d, bool foreign) {
    const std::string where = repo + "@" + d.str();
    auto writer = blobs().create_writer(d.algorithm());
    if (!writer) {
      fail("blob " + where + ": " + writer.error_message());
      return false;
    }
    std::string write_error;
    auto got = peer_.fetch_blob(repo, d, [&](std::string_view piece) {
      auto st = writer->append(piece);
      if (!st) write_error = st.error_message();
      return st.ok();
    });
    if (!got) {
      writer->abort();
      if (foreign && got.error().kind == client::error_kind::http && got.error().status == 404) return true;
      fail("blob " + where + ": " + (write_error.empty() ? got.error().str() : write_error));
      return false;
    }
    auto published = writer->commit(d);
    if (!published) {
      fail("blob " + where + ": " + published.error_message());
      return false;
    }
    if (!link(repo, d)) return false;
    ++report_.blobs_copied;
    report_.blob_bytes_copied += published->size;
    return true;
  }

  sync_engine& e_;
  peer_source& peer_;
  round_report report_;
};

sync_engine::sync_engine(local_replica& local, std::vector<std::unique_ptr<peer_source>> peers,
                         engine_options options)
    : local_(local),
      peers_(std::move(peers)),
      options_(std::move(options)),
      conditions_(peers_.size(), peer_condition::unknown),
      round_mutexes_(peers_.size()) {
  for (std::size_t i = 0; i < peers_.size(); ++i) stats_.push_back(std::make_unique<peer_stats>());
}

sync_engine::~sync_engine() { stop(); }

void sync_engine::log(log_level level, const std::string& message) const {
  if (options_.log) options_.log(level, message);
}

void sync_engine::start() {
  {
    std::lock_guard lock(wake_mutex_);
    stopping_ = false;
  }
  for (std::size_t i = 0; i < peers_.size(); ++i) threads_.emplace_back([this, i] { run_peer(i); });
}

void sync_engine::stop() {
  {
    std::lock_guard lock(wake_mutex_);
    stopping_ = true;
  }
  wake_cv_.notify_all();
  for (auto& t : threads_) {
    if (t.joinable()) t.join();
  }
  threads_.clear();
}

void sync_engine::wake() {
  {
    std::lock_guard lock(wake_mutex_);
    ++wake_generation_;
  }
  wake_cv_.notify_all();
}

void sync_engine::run_peer(std::size_t i) {
  std::unique_lock lock(wake_mutex_);
  while (!stopping_) {
    const std::uint64_t generation = wake_generation_;
    lock.unlock();
    (void)sync_with(i);
    lock.lock();
    wake_cv_.wait_for(lock, options_.interval, [&] { return stopping_ || wake_generation_ != generation; });
  }
}

round_report sync_engine::sync_with(std::size_t i) {
  std::lock_guard one_at_a_time(round_mutexes_.at(i));
  const auto started = std::chrono::steady_clock::now();
  round_report r = round(*this, *peers_[i]).run();
  peer_stats& s = *stats_[i];
  ++s.rounds;
  if (!r.ok()) ++s.failed_rounds;
  s.errors += r.failures;
  s.manifests_copied += r.manifests_copied;
  s.blobs_copied += r.blobs_copied;
  s.blob_bytes_copied += r.blob_bytes_copied;
  s.blobs_linked += r.blobs_linked;
  s.tags_set += r.tags_set;
  s.tags_deleted += r.tags_deleted;
  s.manifests_deleted += r.manifests_deleted;
  s.up = r.reached ? 1 : 0;
  if (r.ok()) s.last_success = unix_seconds_now();
  s.last_round_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  report_condition(i, r);
  return r;
}

void sync_engine::report_condition(std::size_t i, const round_report& r) {
  const std::string& name = peers_[i]->name();
  if (r.changed_anything()) {
    log(log_level::info, "replica sync from " + name + ": " + std::to_string(r.manifests_copied) + " manifests, " +
                             std::to_string(r.blobs_copied) + " blobs (" + human_bytes(r.blob_bytes_copied) +
                             ") copied, " + std::to_string(r.blobs_linked) + " blobs linked, " +
                             std::to_string(r.tags_set) + " tags set, " + std::to_string(r.tags_deleted) +
                             " tags and " + std::to_string(r.manifests_deleted) + " manifests deleted");
  }
  const peer_condition now = !r.reached ? peer_condition::unreachable
                             : r.failures > 0 ? peer_condition::failing
                                              : peer_condition::in_step;
  peer_condition& before = conditions_[i];
  if (now == before) return;
  switch (now) {
    case peer_condition::unreachable:
      log(log_level::warn, "replica peer " + name + " cannot be reached; retrying every " +
                               std::to_string(options_.interval.count()) + " ms: " + r.first_failure);
      break;
    case peer_condition::failing:
      log(log_level::warn, "replica sync from " + name + " is incomplete (" + std::to_string(r.failures) +
                               " failures; first: " + r.first_failure + "); retrying every round");
      break;
    case peer_condition::in_step:
      log(log_level::info, before == peer_condition::unknown ? "replica sync from " + name + " is in step"
                                                             : "replica sync from " + name + " works again");
      break;
    case peer_condition::unknown:
      break;
  }
  before = now;
}

void sync_engine::metrics(std::string& out) const {
  auto family = [&](const char* name, const char* type, const char* help, auto value_of) {
    out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
    for (std::size_t i = 0; i < peers_.size(); ++i) {
      std::ostringstream v;
      v.precision(15);
      v << value_of(*stats_[i]);
      out += std::string(name) + "{peer=\"" + quote_label(peers_[i]->name()) + "\"} " + v.str() + "\n";
    }
  };
  family("registryd_replica_sync_rounds_total", "counter", "Sync rounds run with the peer.",
         [](const peer_stats& s) { return s.rounds.load(); });
  family("registryd_replica_sync_failed_rounds_total", "counter",
         "Rounds that could not reach the peer or left something uncopied.",
         [](const peer_stats& s) { return s.failed_rounds.load(); });
  family("registryd_replica_sync_errors_total", "counter", "Failed steps (a manifest, a blob, a tag) and unreachable rounds.",
         [](const peer_stats& s) { return s.errors.load(); });
  family("registryd_replica_manifests_copied_total", "counter", "Manifests copied from the peer.",
         [](const peer_stats& s) { return s.manifests_copied.load(); });
  family("registryd_replica_blobs_copied_total", "counter", "Blobs copied from the peer (each at most once).",
         [](const peer_stats& s) { return s.blobs_copied.load(); });
  family("registryd_replica_blob_bytes_copied_total", "counter", "Bytes of blobs copied from the peer.",
         [](const peer_stats& s) { return s.blob_bytes_copied.load(); });
  family("registryd_replica_blobs_linked_total", "counter",
         "Blobs a copied manifest needed that were here already: linked, not copied.",
         [](const peer_stats& s) { return s.blobs_linked.load(); });
  family("registryd_replica_tags_set_total", "counter", "Tags set to the peer's newer value.",
         [](const peer_stats& s) { return s.tags_set.load(); });
  family("registryd_replica_tags_deleted_total", "counter", "Tags deleted after the peer's newer delete.",
         [](const peer_stats& s) { return s.tags_deleted.load(); });
  family("registryd_replica_manifests_deleted_total", "counter", "Manifests deleted after the peer's newer delete.",
         [](const peer_stats& s) { return s.manifests_deleted.load(); });
  family("registryd_replica_peer_up", "gauge", "1 when the last round read the peer's state.",
         [](const peer_stats& s) { return s.up.load(); });
  family("registryd_replica_last_success_timestamp_seconds", "gauge",
         "When a round with the peer last completed with nothing left to copy (0: never).",
         [](const peer_stats& s) { return s.last_success.load(); });
  family("registryd_replica_last_round_duration_seconds", "gauge", "How long the last round with the peer took.",
         [](const peer_stats& s) { return s.last_round_seconds.load(); });
  out += "# HELP registryd_replica_blob_copies_coalesced_total Blob copies that waited for the same blob's copy "
         "from another peer instead of copying it again.\n# TYPE registryd_replica_blob_copies_coalesced_total "
         "counter\nregistryd_replica_blob_copies_coalesced_total " +
         std::to_string(coalesced_.load()) + "\n";
  out += "# HELP registryd_replica_tombstones Deleted tags and manifests remembered for replica sync.\n"
         "# TYPE registryd_replica_tombstones gauge\nregistryd_replica_tombstones " +
         std::to_string(local_.tombstones()) + "\n";
}

}  // namespace registryd::local::replica
