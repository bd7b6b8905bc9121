#include "packages_proxy.hpp"

#include <registryd/oci/cache/upstream_fill.hpp>
#include <registryd/oci/content_negotiation.hpp>
#include <registryd/oci/http.hpp>
#include <registryd/oci/reference.hpp>
#include <registryd/sdk/metrics_text.hpp>

#include <sys/stat.h>

namespace registryd::packages {
namespace {

using oci::http::is_head;
using sdk::metrics_text::counter;
using sdk::metrics_text::gauge;

// How much the background pass re-hashes per round (a minute), so a large cache is checked
// steadily rather than in one burst that competes with clients for the disk.
constexpr std::uint64_t verify_budget_per_round = 512ULL << 20;
constexpr std::chrono::seconds background_round{60};
// Bound on the clients kept for repositories (each holds a small connection pool).
constexpr std::size_t max_clients = 64;

// FACTS.md's headers of a package: Content-Disposition here, the rest through
// begin_blob_answer (ETag and 304 by the digest asked for; no Docker-Content-Digest, since the
// body is a layer of that image, not the image).
oci::http::answer_headers package_headers(sdk::response& res, const oci::digest& package) {
  res.header("Content-Disposition", "attachment; filename=" + package.str() + ".tar.gz");
  oci::http::answer_headers h;
  h.content_type = "application/x-gzip";
  h.cache_control = "public, max-age=31536000";
  h.content_digest = false;
  return h;
}

time_point now() { return std::chrono::system_clock::now(); }

void send_text(sdk::response& res, int status, const std::string& text) {
  res.status(status);
  res.send("text/plain; charset=utf-8", text + "\n");
}

refusal upstream_refusal(const oci::client::upstream_error& e, const std::string& what) {
  if (e.kind == oci::client::error_kind::http && e.status == 404) return {404, what + " not found"};
  return {502, "cannot fetch " + what + ": " + e.str()};
}

oci::client::client_options with_timeouts(oci::client::client_options o) {
  // A silent upstream fails an uncached request in seconds, not after the default 5 s connect.
  o.connect_timeout = std::chrono::milliseconds(2000);
  if (o.user_agent == "registryd") o.user_agent = "registryd-packages-proxy";
  return o;
}

std::string join_path(std::string base, const std::optional<std::string>& path) {
  if (!path || path->empty()) return base;
  std::string p = *path;
  while (!p.empty() && p.front() == '/') p.erase(0, 1);
  while (!p.empty() && p.back() == '/') p.pop_back();
  if (p.empty()) return base;
  return base.empty() ? p : base + "/" + p;
}

}  // namespace

packages_proxy::packages_proxy(const sdk::host& host, const nlohmann::json& settings_doc)
    : host_(host), settings_(parse_settings(settings_doc)), sources_(settings_.module_sources_dir) {
  // Throws std::invalid_argument for an unreadable `ca`: a settings error, reported at create.
  if (settings_.upstream) {
    default_client_ = std::make_shared<const oci::client::registry_client>(with_timeouts(settings_.upstream->options));
  }
  std::string from = settings_.local_store ? "the Local store under " + settings_.local_store->string()
                     : settings_.upstream ? settings_.upstream->images_repo.str()
                                          : std::string("no default repository (the mode has none)");
  host_.info("packages proxy: default repository " + from + "; cache " + settings_.cache_root.string() + ", " +
             std::to_string(settings_.max_cache_bytes) + " bytes, evicting past " + std::to_string(settings_.evict_at()) +
             (settings_.module_sources_dir ? "; ModuleSources from " + settings_.module_sources_dir->string() : ""));
}

packages_proxy::~packages_proxy() { stop(); }

void packages_proxy::start() {
  cache_ = std::make_unique<package_cache>(settings_.cache_root, settings_.max_cache_bytes, settings_.evict_at(),
                                           counters_, [this](std::string_view m) { host_.warn(m); });
  cache_->load(now());
  oci::cache::fill_options fo;
  fo.on_published = [this](const oci::digest& d, std::uint64_t size) {
    counters_.upstream_bytes += size;
    cache_->published(d, now());
  };
  fo.on_failed = [this](const oci::digest& d, const oci::cache::fill_failure& why) {
    ++counters_.fills_failed;
    host_.warn("packages proxy: fetching " + d.str() + " failed: " + why.message);
  };
  fills_ = std::make_unique<oci::cache::blob_fills>(cache_->store(), fo);
  if (settings_.local_store) {
    local_blobs_ = std::make_unique<oci::storage::blob_store>(*settings_.local_store);
    local_repos_ = std::make_unique<oci::storage::repository_store>(*local_blobs_, *settings_.local_store);
  }
  refresh_sources();
  {
    std::lock_guard lock(wake_mutex_);
    stopping_ = false;
  }
  thread_ = std::thread([this] { background_loop(); });
}

void packages_proxy::stop() {
  {
    std::lock_guard lock(wake_mutex_);
    stopping_ = true;
  }
  wake_cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  if (fills_) fills_->shutdown();
  if (cache_ && !cache_->save()) host_.warn("packages proxy: cannot save the cache index");
}

void packages_proxy::background_loop() {
  std::unique_lock lock(wake_mutex_);
  auto next_verify = std::chrono::steady_clock::now();
  while (!stopping_) {
    wake_cv_.wait_for(lock, std::min<std::chrono::steady_clock::duration>(settings_.sources_poll, background_round),
                      [this] { return stopping_; });
    if (stopping_) break;
    lock.unlock();
    try {
      refresh_sources();
      if (std::chrono::steady_clock::now() >= next_verify) {
        next_verify = std::chrono::steady_clock::now() + background_round;
        cache_->verify_some(settings_.verify_interval, verify_budget_per_round, now(), [this] {
          std::lock_guard l(wake_mutex_);
          return stopping_;
        });
        // Entries that readers pinned when the last fill came in may be free to go now.
        if (cache_->bytes() > cache_->evict_at()) cache_->evict(now());
        if (!cache_->save()) host_.warn("packages proxy: cannot save the cache index");
        fills_->sweep_temps(std::chrono::system_clock::now());
      }
    } catch (const std::exception& e) {
      host_.error(std::string("packages proxy background pass failed: ") + e.what());
    }
    lock.lock();
  }
}

bool packages_proxy::refresh_sources() {
  if (!sources_.refresh()) return false;
  for (const auto& e : sources_.errors()) host_.warn("packages proxy: ModuleSource skipped: " + e);
  host_.info("packages proxy: " + std::to_string(sources_.size()) + " ModuleSource(s) in use");
  std::lock_guard lock(clients_mutex_);
  clients_.clear();  // credentials or CAs may have changed
  return true;
}

std::shared_ptr<const oci::client::registry_client> packages_proxy::client_for(
    const std::string& key, const oci::client::client_options& options) {
  std::lock_guard lock(clients_mutex_);
  if (const auto it = clients_.find(key); it != clients_.end()) return it->second;
  if (clients_.size() >= max_clients) clients_.clear();
  auto client = std::make_shared<const oci::client::registry_client>(with_timeouts(options));
  clients_.emplace(key, client);
  return client;
}

packages_proxy::sourced packages_proxy::source_for(const std::optional<std::string>& repository,
                                                   const std::optional<std::string>& path) {
  if (!repository || repository->empty()) {
    if (settings_.local_store) {
      const std::string name = join_path(settings_.fixed_repository, path);
      return source{name, "the Local store's " + name, nullptr};
    }
    if (!default_client_) {
      return refusal{404, "no default repository: the registry mode in force (" + settings_.mode +
                              ") has none; name one with repository="};
    }
    const std::string name = join_path(settings_.upstream->images_repo.path, path);
    return source{name, settings_.upstream->images_repo.registry + "/" + name, default_client_};
  }
  const std::string full = join_path(*repository, path);
  const auto location = oci::repository_location::parse(full);
  if (!location || location->registry.empty() || location->path.empty()) {
    return refusal{400, "invalid repository \"" + full + "\": want host[:port]/path"};
  }
  if (auto s = sources_.match(*location)) {
    try {
      return source{location->path, full, client_for("source " + s->repo.str(), s->client)};
    } catch (const std::invalid_argument& e) {
      return refusal{502, "ModuleSource " + s->name + " is not usable: " + e.what()};
    }
  }
  if (settings_.upstream && location->registry == settings_.upstream->images_repo.registry) {
    // The platform's own registry, another path in it: its credentials apply.
    return source{location->path, full, default_client_};
  }
  // Fetching from any address a client names would make the proxy a way into every network
  // the host can reach; only the platform's registry and the ModuleSources' are served.
  return refusal{403, "repository " + full + " is neither the platform's registry nor a ModuleSource's"};
}

std::variant<std::string, refusal> packages_proxy::manifest_bytes(const source& src, const oci::digest& d) {
  const std::string what = "package " + src.display + "@" + d.str();
  if (!src.upstream) {
    auto m = local_repos_->open_manifest(src.name, d);
    if (!m) {
      if (m.code() == oci::storage::errc::not_found) return refusal{404, what + " not found"};
      return refusal{500, "cannot read " + what + ": " + m.error_message()};
    }
    auto bytes = m->file.read_all();
    if (!bytes) return refusal{500, "cannot read " + what + ": " + bytes.error_message()};
    return std::move(bytes.value());
  }
  if (auto cached = cache_->open(d, now()); cached && cached->size() <= oci::max_manifest_size) {
    if (auto bytes = cached->read_all()) return std::move(bytes.value());
  }
  ++counters_.upstream_fetches;
  auto got = src.upstream->get_manifest(src.name, d.str());
  if (!got) return upstream_refusal(got.error(), what);
  // The client verified the body against the digest it was asked by.
  if (auto failed = cache_->put(got->body, d, now())) {
    host_.warn("packages proxy: cannot cache manifest " + d.str() + ": " + *failed);
  }
  return std::move(got->body);
}

std::variant<oci::descriptor, refusal> packages_proxy::package_layer(const source& src, const oci::digest& d) {
  oci::digest current = d;
  for (int depth = 0; depth < 2; ++depth) {
    auto bytes = manifest_bytes(src, current);
    if (auto* r = std::get_if<refusal>(&bytes)) return std::move(*r);
    const auto& text = std::get<std::string>(bytes);
    auto m = oci::parse_manifest(text);
    if (!m) return refusal{502, "manifest " + current.str() + " of " + src.display + " is not valid: " + m.error_message()};
    if (m->is_index()) {
      const auto child = oci::default_platform_child(text, m->media_type);
      if (!child) return refusal{404, "index " + current.str() + " of " + src.display + " has no linux/amd64 image"};
      current = *child;
      continue;
    }
    if (m->layers.empty()) return refusal{404, "image " + current.str() + " of " + src.display + " has no layers"};
    return m->layers.back();
  }
  return refusal{404, "index " + d.str() + " of " + src.display + " leads to another index"};
}

void packages_proxy::handle(const sdk::request& req, sdk::response& res) {
  if (req.path() != "/package") return send_text(res, 404, "404 page not found");
  if (req.method() != "GET" && req.method() != "HEAD") {
    res.header("Allow", "GET, HEAD");
    return send_text(res, 405, "method not allowed");
  }
  if (!cache_) return send_text(res, 503, "the packages cache is not open");
  const auto digest_text = oci::http::query_value(req, "digest");
  if (!digest_text || digest_text->empty()) return send_text(res, 400, "missing required query parameter \"digest\"");
  const auto d = oci::digest::parse(*digest_text);
  if (!d) return send_text(res, 400, "invalid digest \"" + *digest_text + "\"");

  auto src = source_for(oci::http::query_value(req, "repository"), oci::http::query_value(req, "path"));
  if (auto* r = std::get_if<refusal>(&src)) return send_text(res, r->status, r->text);
  const auto& s = std::get<source>(src);
  if (!oci::is_valid_repository_name(s.name)) {
    return send_text(res, 400, "invalid repository \"" + s.display + "\": not a repository name");
  }
  auto layer = package_layer(s, *d);
  if (auto* r = std::get_if<refusal>(&layer)) return send_text(res, r->status, r->text);
  serve(req, res, s, *d, std::get<oci::descriptor>(layer));
}

void packages_proxy::answer_file(const sdk::request& req, sdk::response& res, const oci::digest& package,
                                 oci::storage::blob_file file) {
  const auto h = package_headers(res, package);
  const auto slice = oci::http::begin_blob_answer(req, res, package, file.size(), h);
  if (!slice || is_head(req)) return;
  if (slice->length == 0) return res.send(h.content_type, "");
  res.send_file(h.content_type, file.release(), slice->offset, slice->length);
}

oci::cache::fetch_fn packages_proxy::fetch(const source& src, const oci::digest& blob) {
  return [this, src, blob](oci::cache::fill_sink& sink) -> std::optional<oci::cache::fill_failure> {
    ++counters_.upstream_fetches;
    const auto failed = oci::cache::fetch_upstream_blob(sink, *src.upstream, src.name, blob);
    if (!failed) return std::nullopt;
    const auto r = upstream_refusal(*failed, "layer " + blob.str() + " of " + src.display);
    return oci::cache::fill_failure{r.status, r.status == 404 ? "BLOB_UNKNOWN" : "UNAVAILABLE", r.text};
  };
}

void packages_proxy::serve(const sdk::request& req, sdk::response& res, const source& src, const oci::digest& package,
                           const oci::descriptor& layer) {
  if (!src.upstream) {
    auto file = local_blobs_->open(layer.digest);
    if (!file) return send_text(res, 404, "layer " + layer.digest.str() + " of " + src.display + " is not in the store");
    ++counters_.hits;
    return answer_file(req, res, package, std::move(file.value()));
  }
  // Twice at most: an entry evicted between a join that found it published and the open.
  for (int attempt = 0; attempt < 2; ++attempt) {
    if (auto file = cache_->open(layer.digest, now())) {
      ++counters_.hits;
      return answer_file(req, res, package, std::move(*file));
    }
    // Nothing to fetch for a HEAD or a client that has the package: the manifest gave the size.
    if (is_head(req) || oci::http::not_modified(req, package)) {
      const auto h = package_headers(res, package);
      (void)oci::http::begin_blob_answer(req, res, package, static_cast<std::uint64_t>(layer.size), h);
      return;
    }
    auto joined = fills_->join(layer.digest, fetch(src, layer.digest));
    if (joined.published) continue;
    ++counters_.misses;
    if (joined.failure) return send_text(res, joined.failure->status, joined.failure->message);
    auto reader = std::move(joined.reader);
    const auto size = reader->size();
    const auto h = package_headers(res, package);
    std::int64_t length = -1;
    if (size) {
      const auto slice = oci::http::begin_blob_answer(req, res, package, *size, h);
      if (!slice || is_head(req)) return;  // 304 or 416 answered; HEAD has its headers
      if (slice->length != *size) reader->set_range(slice->offset, slice->length);
      length = static_cast<std::int64_t>(slice->length);
    } else if (!oci::http::begin_unsized_blob_answer(req, res, package)) {
      return;
    }
    res.send_stream(h.content_type, length, std::make_unique<oci::cache::fill_body>(std::move(reader)));
    return;
  }
  send_text(res, 503, "layer " + layer.digest.str() + " was evicted while it was being fetched; try again");
}

std::string packages_proxy::health() const {
  if (!cache_) return "the packages cache is not open";
  struct ::stat st {};
  const auto dir = settings_.cache_root / "blobs";
  if (::stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) return "the cache directory " + dir.string() + " is gone";
  return {};
}

void packages_proxy::metrics(std::string& out) const {
  const auto& c = counters_;
  gauge(out, "registry_packages_proxy_cache_size", "Bytes the packages cache holds.",
        static_cast<double>(cache_ ? cache_->bytes() : 0));
  gauge(out, "registry_packages_proxy_cache_entries", "Entries (layers and manifests) the packages cache holds.",
        static_cast<double>(cache_ ? cache_->entries() : 0));
  gauge(out, "registry_packages_proxy_cache_max_bytes", "The packages cache's cap.",
        static_cast<double>(settings_.max_cache_bytes));
  counter(out, "registry_packages_proxy_cache_hits_total", "Packages served from the cache (or the Local store).",
          c.hits.load());
  counter(out, "registry_packages_proxy_cache_misses_total", "Packages that were not cached and were fetched.",
          c.misses.load());
  counter(out, "registry_packages_proxy_evictions_total", "Entries evicted to keep the cache under its threshold.",
          c.evictions.load());
  counter(out, "registry_packages_proxy_evicted_bytes_total", "Bytes evicted.", c.evicted_bytes.load());
  counter(out, "registry_packages_proxy_corrupted_total",
          "Entries whose content no longer matched their digest; dropped and fetched again.", c.corrupted.load());
  counter(out, "registry_packages_proxy_verified_total", "Entries re-hashed and found intact.", c.verified.load());
  counter(out, "registry_packages_proxy_upstream_requests_total",
          "Manifest and layer GETs sent upstream (concurrent misses of one layer share one).",
          c.upstream_fetches.load());
  counter(out, "registry_packages_proxy_upstream_bytes_total", "Verified layer bytes fetched into the cache.",
          c.upstream_bytes.load());
  counter(out, "registry_packages_proxy_fill_failures_total", "Layer fetches that failed; nothing was cached.",
          c.fills_failed.load());
  counter(out, "registry_packages_proxy_coalesced_requests_total",
          "Requests that joined a layer fetch already in flight.", fills_ ? fills_->joins_coalesced() : 0);
  gauge(out, "registry_packages_proxy_fills_in_progress", "Layer fetches in flight now.",
        static_cast<double>(fills_ ? fills_->in_flight() : 0));
}

}  // namespace registryd::packages
