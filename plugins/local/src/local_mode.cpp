#include "local_mode.hpp"

#include <registryd/oci/containerd_description.hpp>

#include <chrono>
#include <fstream>
#include <sstream>
#include <sys/stat.h>

namespace registryd::local {
namespace {

constexpr auto scan_interval = std::chrono::seconds(60);

std::optional<std::string> read_text(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) return std::nullopt;
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

void gauge(std::string& out, const char* name, const char* help, double value) {
  out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " gauge\n" + name + " ";
  std::ostringstream v;
  v.precision(15);
  v << value;
  out += v.str() + "\n";
}

void counter(std::string& out, const char* name, const char* help, std::uint64_t value) {
  out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " counter\n" + name + " " +
         std::to_string(value) + "\n";
}

}  // namespace

nlohmann::json describe_containerd(const settings& s, const std::optional<std::string>& ca_pem) {
  // The same description as Proxy mode's, so a node renders identical files in either mode.
  return oci::node_balancer_description(s.fixed_host, ca_pem, s.node_mirror);
}

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
  scanner_ = std::thread([this] {
    std::unique_lock lock(stop_mutex_);
    while (!stopping_) {
      lock.unlock();
      refresh_stats();
      lock.lock();
      stop_cv_.wait_for(lock, scan_interval, [this] { return stopping_; });
    }
  });
}

void local_mode::stop() {
  replica_->stop();
  {
    std::lock_guard lock(stop_mutex_);
    stopping_ = true;
  }
  stop_cv_.notify_all();
  if (scanner_.joinable()) scanner_.join();
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
  std::optional<std::string> ca;
  if (settings_.ca_file) {
    ca = read_text(*settings_.ca_file);
    if (!ca) {
      host_.warn("the registry CA " + settings_.ca_file->string() +
                 " cannot be read: the containerd description names no CA");
    }
  }
  return describe_containerd(settings_, ca);
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
  {
    std::lock_guard lock(stats_mutex_);
    s = stats_;
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
