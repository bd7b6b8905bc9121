#include "local_mode.hpp"

#include <registryd/sdk/containerd.hpp>
#include <registryd/sdk/metrics_text.hpp>

#include <chrono>
#include <sys/stat.h>

namespace registryd::local {
namespace {

constexpr auto scan_interval = std::chrono::seconds(60);

using sdk::metrics_text::counter;
using sdk::metrics_text::gauge;

}  // namespace

local_mode::local_mode(const sdk::host& host, const nlohmann::json& settings_doc)
    : host_(host),
      settings_(parse_settings(settings_doc)),
      replica_(std::make_unique<replica_sync>(host, parse_replica_settings(settings_doc))) {
  host_.info("Local mode: images are stored under " + settings_.data_dir.string());
}

local_mode::~local_mode() { stop(); }

void local_mode::start() {
  blobs_ = std::make_unique<oci::storage::blob_store>(settings_.data_dir);
  repos_ = std::make_unique<oci::storage::repository_store>(*blobs_, settings_.data_dir);
  uploads_ = std::make_unique<oci::storage::upload_store>(*blobs_);
  api_ = std::make_unique<registry_api>(*blobs_, *repos_, *uploads_);
  replica_->start(*repos_);
  {
    std::lock_guard lock(stop_mutex_);
    stopping_ = false;
  }
  scanner_ = every(std::chrono::seconds(0), scan_interval, &local_mode::refresh_stats);
  if (settings_.gc_interval.count() > 0) {
    // The first run waits one interval: a registry that restarts often must not collect on
    // every start, and right after a start nothing has had time to become garbage anyway.
    collector_ = every(settings_.gc_interval, settings_.gc_interval, &local_mode::scheduled_gc);
    host_.info("Local mode: garbage collection every " + std::to_string(settings_.gc_interval.count()) +
               " s, grace " + std::to_string(settings_.gc_grace.count()) + " s");
  } else {
    host_.info("Local mode: online garbage collection is off (host.gcIntervalSeconds 0); `registryd gc` collects");
  }
}

std::thread local_mode::every(std::chrono::seconds first, std::chrono::seconds interval, void (local_mode::*work)()) {
  return std::thread([this, first, interval, work] {
    std::unique_lock lock(stop_mutex_);
    if (stop_cv_.wait_for(lock, first, [this] { return stopping_.load(); })) return;
    while (!stopping_) {
      lock.unlock();
      (this->*work)();
      lock.lock();
      stop_cv_.wait_for(lock, interval, [this] { return stopping_.load(); });
    }
  });
}

oci::storage::gc_report local_mode::collect_garbage() {
  if (!repos_) {
    oci::storage::gc_report none;
    none.errors.push_back("the storage is not open");
    return none;
  }
  oci::storage::gc_options options;
  options.grace = settings_.gc_grace;
  options.should_stop = [this] { return stopping_.load(); };
  auto report = oci::storage::run_gc(*repos_, *uploads_, options);
  if (report.skipped) {
    host_.info("garbage collection skipped: another run (registryd gc?) holds the lock");
  } else {
    host_.info("garbage collection " + std::string(report.stopped ? "stopped early: " : "done: ") + report.summary() +
               " in " + std::to_string(report.duration.count()) + " ms");
  }
  for (const auto& e : report.errors) host_.warn("garbage collection: " + e);
  std::lock_guard lock(stats_mutex_);
  if (report.skipped) {
    ++gc_stats_.skipped;
  } else {
    ++gc_stats_.runs;
    gc_stats_.blobs_deleted += report.blobs.count;
    gc_stats_.bytes_deleted += report.blobs.bytes + report.uploads.bytes + report.temporaries.bytes;
    gc_stats_.errors += report.errors.size();
    gc_stats_.last_run_at = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
    gc_stats_.last_duration = std::chrono::duration<double>(report.duration).count();
  }
  return report;
}

void local_mode::stop() {
  replica_->stop();
  {
    std::lock_guard lock(stop_mutex_);
    stopping_ = true;
  }
  stop_cv_.notify_all();
  if (scanner_.joinable()) scanner_.join();
  if (collector_.joinable()) collector_.join();
}

void local_mode::refresh_stats() {
  if (!blobs_) return;
  storage_stats s;
  blobs_->for_each_blob([&](const oci::storage::blob_info& b) {
    ++s.blobs;
    s.blob_bytes += b.size;
  });
  s.repositories = repos_->repositories().size();
  uploads_->for_each([&](const oci::storage::upload_info& u) {
    ++s.uploads;
    s.upload_bytes += u.size;
  });
  s.scanned_at = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  std::lock_guard lock(stats_mutex_);
  stats_ = s;
}

std::optional<nlohmann::json> local_mode::containerd_config() const {
  // The same description as Proxy mode's, so a node renders identical files in either mode.
  return sdk::containerd::node_balancer_description(settings_.fixed_host, settings_.ca_file, settings_.node_mirror,
                                                    [this](const std::string& why) { host_.warn(why); })
      .to_json();
}

void local_mode::handle(const sdk::request& req, sdk::response& res) {
  if (!api_) {
    res.send_error(503, "UNAVAILABLE", "Local mode storage is not open");
    return;
  }
  if (replica_->handle(req, res)) return;
  api_->handle(req, res);
}

std::string local_mode::health() const {
  if (!api_) return "storage is not open";
  struct ::stat st {};
  if (::stat((settings_.data_dir / "blobs").c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    return "the storage directory " + (settings_.data_dir / "blobs").string() + " is gone";
  }
  return {};
}

void local_mode::metrics(std::string& out) const {
  storage_stats s;
  gc_stats g;
  {
    std::lock_guard lock(stats_mutex_);
    s = stats_;
    g = gc_stats_;
  }
  gauge(out, "registryd_local_blobs", "Blobs in the Local mode store (last scan).", static_cast<double>(s.blobs));
  gauge(out, "registryd_local_blob_bytes", "Bytes of blobs in the Local mode store (last scan).",
        static_cast<double>(s.blob_bytes));
  gauge(out, "registryd_local_repositories", "Repositories in the Local mode store (last scan).",
        static_cast<double>(s.repositories));
  gauge(out, "registryd_local_uploads_in_progress", "Blob upload sessions on disk (last scan).",
        static_cast<double>(s.uploads));
  gauge(out, "registryd_local_upload_bytes", "Bytes received by upload sessions in progress (last scan).",
        static_cast<double>(s.upload_bytes));
  gauge(out, "registryd_local_upload_sessions_open", "Upload sessions open in memory now.",
        uploads_ ? static_cast<double>(uploads_->open_sessions()) : 0.0);
  gauge(out, "registryd_local_storage_scan_timestamp_seconds", "When the storage was last scanned.", s.scanned_at);
  counter(out, "registryd_local_gc_runs_total", "Online garbage collection runs finished.", g.runs);
  counter(out, "registryd_local_gc_skipped_total", "Online garbage collection runs skipped (another run held the lock).",
          g.skipped);
  counter(out, "registryd_local_gc_blobs_deleted_total", "Blobs deleted by online garbage collection.", g.blobs_deleted);
  counter(out, "registryd_local_gc_bytes_deleted_total",
          "Bytes of blobs, uploads and temporaries deleted by online garbage collection.", g.bytes_deleted);
  counter(out, "registryd_local_gc_errors_total", "Errors met by online garbage collection runs.", g.errors);
  gauge(out, "registryd_local_gc_last_run_timestamp_seconds", "When the last online garbage collection run ended.",
        g.last_run_at);
  gauge(out, "registryd_local_gc_last_duration_seconds", "How long the last online garbage collection run took.",
        g.last_duration);
  replica_->metrics(out);
  if (!api_) return;
  const auto& c = api_->counters();
  counter(out, "registryd_local_blobs_pushed_total", "Blobs pushed and verified.", c.blobs_pushed.load());
  counter(out, "registryd_local_blob_bytes_pushed_total", "Bytes of blobs pushed and verified.",
          c.blob_bytes_pushed.load());
  counter(out, "registryd_local_blobs_mounted_total", "Blobs mounted from another repository.",
          c.blobs_mounted.load());
  counter(out, "registryd_local_manifests_pushed_total", "Manifests pushed.", c.manifests_pushed.load());
  counter(out, "registryd_local_digest_mismatches_total", "Pushes refused because the content did not match its digest.",
          c.digest_mismatches.load());
  counter(out, "registryd_local_blob_reads_total", "Blob GET and HEAD requests served.", c.blob_reads.load());
  counter(out, "registryd_local_manifest_reads_total", "Manifest GET and HEAD requests served.",
          c.manifest_reads.load());
}

}  // namespace registryd::local
