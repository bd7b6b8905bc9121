#include "proxy_mode.hpp"

#include <registryd/sdk/containerd.hpp>

#include <sys/stat.h>

namespace registryd::proxy {
namespace {

settings from_document(const nlohmann::json& doc, bool environment) {
  settings s = parse_settings(doc);
  if (environment) apply_environment(s);
  return s;
}

oci::client::client_options upstream_options(const settings& s) {
  auto o = s.upstream.options;
  // A closed port is refused at once anyway; this bounds a silent one (FACTS.md: the node
  // balancer's own connect timeout is 1 s), so an uncached pull fails quickly, not after 5 s.
  o.connect_timeout = std::chrono::milliseconds(2000);
  // And a silent one that accepted the connection: a request fails after this, not after the
  // read timeout a body may pause for (docs/proxy-mode.md, "A stalled upstream").
  o.answer_timeout = s.upstream_answer_timeout;
  o.user_agent = "registryd-proxy";
  return o;
}

}  // namespace

proxy_mode::proxy_mode(const sdk::host& host, const nlohmann::json& settings_doc)
    : proxy_mode(host, from_document(settings_doc, true), [] { return std::chrono::system_clock::now(); }, true) {}

proxy_mode::proxy_mode(const sdk::host& host, const nlohmann::json& settings_doc, clock_fn clock, bool evictor_thread)
    : proxy_mode(host, from_document(settings_doc, false), std::move(clock), evictor_thread) {}

proxy_mode::proxy_mode(const sdk::host& host, settings s, clock_fn clock, bool evictor_thread)
    : host_(host), settings_(std::move(s)), clock_(std::move(clock)), evictor_thread_enabled_(evictor_thread) {
  // Throws std::invalid_argument for an unreadable `ca`: a settings error, reported at create.
  upstream_ = std::make_unique<oci::client::registry_client>(upstream_options(settings_));
  health_ = std::make_unique<upstream_health>(host_, settings_.upstream.images_repo.str(), clock_, counters_);
  host_.info("Proxy mode: a pull-through cache of " + settings_.upstream.images_repo.str() + " (" +
             (settings_.upstream.options.url_scheme == oci::client::scheme::http ? "HTTP" : "HTTPS") +
             ") for " + settings_.fixed_repository + ", under " + settings_.cache_root().string() + "; ttl " +
             settings_.ttl_text + ", tags revalidated every " + std::to_string(settings_.tag_revalidate.count()) +
             " s" +
             (settings_.max_cache_bytes ? ", size cap " + std::to_string(*settings_.max_cache_bytes) + " bytes"
                                        : std::string()));
}

proxy_mode::~proxy_mode() { stop(); }

void proxy_mode::start() {
  blobs_ = std::make_unique<oci::storage::blob_store>(settings_.cache_root());
  repos_ = std::make_unique<oci::storage::repository_store>(*blobs_, settings_.cache_root());
  access_ = std::make_unique<oci::cache::access_times>(settings_.cache_root() / "access-times");
  access_->load();

  oci::cache::fill_options fo;
  fo.on_published = [this](const oci::digest&, std::uint64_t size) {
    counters_.bytes_cached += size;
    counters_.cache_bytes += size;
    ++counters_.cache_blobs;
    wake_evictor();
  };
  fo.on_failed = [this](const oci::digest& d, const oci::cache::fill_failure& why) {
    ++counters_.fills_failed;
    host_.warn("fetching " + d.str() + " into the cache failed: " + why.message);
  };
  fills_ = std::make_unique<oci::cache::blob_fills>(*blobs_, fo);
  api_ = std::make_unique<pull_through>(settings_, host_, *blobs_, *repos_, *fills_, *access_, *upstream_, *health_,
                                        counters_, clock_);
  api_->on_cache_grew = [this] { wake_evictor(); };

  oci::cache::eviction_policy policy;
  policy.ttl = settings_.ttl;
  policy.max_bytes = settings_.max_cache_bytes;
  evictor_ = std::make_unique<evictor>(*blobs_, *repos_, *access_, *fills_, policy, counters_, host_, clock_);

  {
    std::lock_guard lock(wake_mutex_);
    stopping_ = false;
    wake_ = true;  // a first pass at once
  }
  if (evictor_thread_enabled_) {
    evictor_thread_ = std::thread([this] {
      std::unique_lock lock(wake_mutex_);
      while (!stopping_) {
        wake_cv_.wait_for(lock, eviction_interval, [this] { return stopping_ || wake_; });
        if (stopping_) break;
        wake_ = false;
        lock.unlock();
        try {
          evict_now();
        } catch (const std::exception& e) {
          host_.error(std::string("cache eviction failed: ") + e.what());
        }
        lock.lock();
      }
    });
  }
}

void proxy_mode::wake_evictor() {
  if (!settings_.max_cache_bytes || counters_.cache_bytes.load() <= *settings_.max_cache_bytes) return;
  {
    std::lock_guard lock(wake_mutex_);
    wake_ = true;
  }
  wake_cv_.notify_all();
}

eviction_report proxy_mode::evict_now() {
  std::lock_guard lock(evictor_mutex_);
  if (!evictor_) return {};
  return evictor_->run_pass();
}

void proxy_mode::stop() {
  {
    std::lock_guard lock(wake_mutex_);
    stopping_ = true;
  }
  wake_cv_.notify_all();
  if (evictor_thread_.joinable()) evictor_thread_.join();
  if (api_) api_->shut_down();  // tag revalidations in flight end within the client's timeouts
  // Fills run code of api_ on their threads: they end before anything they use.
  if (fills_) fills_->shutdown();
  if (access_) {
    if (auto st = access_->save(); !st) host_.warn("cannot save the cache's access times: " + st.error_message());
  }
}

std::optional<nlohmann::json> proxy_mode::containerd_config() const {
  return sdk::containerd::node_balancer_description(settings_.fixed_host, settings_.ca_file,
                                                    sdk::containerd::node_balancer_url,
                                                    [this](const std::string& why) { host_.warn(why); })
      .to_json();
}

void proxy_mode::handle(const sdk::request& req, sdk::response& res) {
  if (!api_) {
    res.send_error(503, "UNAVAILABLE", "the Proxy mode cache is not open");
    return;
  }
  api_->handle(req, res);
}

std::string proxy_mode::health() const {
  if (!api_) return "the cache is not open";
  struct ::stat st {};
  const auto dir = settings_.cache_root() / "blobs";
  if (::stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) return "the cache directory " + dir.string() + " is gone";
  return {};
}

void proxy_mode::metrics(std::string& out) const {
  const counters& c = counters_;
  counter2(out, "registryd_proxy_cache_hits_total", "Requests answered from the cache.", "kind", "blob",
           c.blob_hits.load(), "manifest", c.manifest_hits.load());
  counter2(out, "registryd_proxy_cache_misses_total", "Requests for content the cache did not hold.", "kind", "blob",
           c.blob_misses.load(), "manifest", c.manifest_misses.load());
  counter(out, "registryd_proxy_upstream_blob_fetches_total",
          "Blob GET requests sent to the upstream (concurrent misses of one blob share one).",
          c.upstream_blob_gets.load());
  counter(out, "registryd_proxy_upstream_manifest_fetches_total", "Manifest GET requests sent to the upstream.",
          c.upstream_manifest_gets.load());
  counter2(out, "registryd_proxy_upstream_heads_total", "HEAD requests sent to the upstream.", "kind", "blob",
           c.upstream_blob_heads.load(), "manifest", c.upstream_manifest_heads.load());
  counter(out, "registryd_proxy_coalesced_requests_total",
          "Blob requests that joined a fetch already in flight instead of starting one.",
          fills_ ? fills_->joins_coalesced() : 0);
  gauge(out, "registryd_proxy_fills_in_progress", "Blob fetches into the cache in flight now.",
        static_cast<double>(fills_in_flight()));
  counter(out, "registryd_proxy_fill_failures_total",
          "Blob fetches that failed (upstream broke off, digest mismatch, disk); nothing was published.",
          c.fills_failed.load());
  counter(out, "registryd_proxy_bytes_cached_total", "Verified bytes written into the cache (blobs and manifests).",
          c.bytes_cached.load());
  gauge(out, "registryd_proxy_cache_bytes", "Bytes the cache holds (last eviction pass, plus what was added since).",
        static_cast<double>(c.cache_bytes.load()));
  gauge(out, "registryd_proxy_cache_blobs", "Blobs the cache holds, manifests included (last eviction pass, plus since).",
        static_cast<double>(c.cache_blobs.load()));
  counter2(out, "registryd_proxy_evictions_total", "Blobs evicted from the cache.", "reason", "ttl",
           c.evictions_ttl.load(), "size", c.evictions_size.load());
  counter(out, "registryd_proxy_evicted_bytes_total", "Bytes evicted from the cache.", c.evicted_bytes.load());
  gauge(out, "registryd_proxy_last_eviction_timestamp_seconds", "When the last eviction pass ran (unix seconds).",
        static_cast<double>(c.last_eviction_pass.load()));
  counter2(out, "registryd_proxy_tag_revalidations_total", "Cached tags revalidated upstream with HEAD.", "result",
           "unchanged", c.tag_revalidations_unchanged.load(), "changed", c.tag_revalidations_changed.load());
  counter(out, "registryd_proxy_stale_serves_total",
          "Cached content served unconfirmed: the upstream was unavailable, or slower than the revalidation wait.",
          c.stale_serves.load());
  gauge(out, "registryd_proxy_tag_revalidations_in_progress", "Background tag revalidations in flight now.",
        api_ ? static_cast<double>(api_->revalidations_running()) : 0.0);
  gauge(out, "registryd_proxy_last_stale_serve_age_seconds",
        "How old the upstream's last confirmation of a tag was when its cached copy was last served stale.",
        api_ ? api_->last_stale_age_seconds() : 0.0);
  counter(out, "registryd_proxy_upstream_failures_total",
          "Exchanges that found the upstream unavailable (unreachable, 5xx, 429).", c.upstream_failures.load());
  gauge(out, "registryd_proxy_upstream_up", "1 when the last exchange with the upstream got an answer, else 0.",
        health_ && health_->up() ? 1.0 : 0.0);
  gauge(out, "registryd_proxy_ttl_seconds", "Cached content not pulled for this long is evicted.",
        static_cast<double>(settings_.ttl.count()));
  gauge(out, "registryd_proxy_max_cache_bytes", "The cache's size cap (0: none).",
        static_cast<double>(settings_.max_cache_bytes.value_or(0)));
}

}  // namespace registryd::proxy
