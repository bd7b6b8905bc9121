#include "pull_through.hpp"

#include <registryd/oci/cache/upstream_fill.hpp>
#include <registryd/oci/content_negotiation.hpp>
#include <registryd/oci/errors.hpp>
#include <registryd/oci/http.hpp>
#include <registryd/oci/manifest.hpp>
#include <registryd/oci/media_types.hpp>
#include <registryd/oci/reference.hpp>

#include <nlohmann/json.hpp>

#include <thread>


namespace registryd::proxy {
namespace {

using oci::client::error_kind;
using oci::client::upstream_error;

// After the upstream was found unavailable, requests that have something cached serve it at
// once for this long instead of each waiting for the upstream again.
constexpr std::chrono::milliseconds down_window{3000};

using oci::http::header_values;
using oci::http::is_head;

void manifest_unknown(sdk::response& res, const oci::target& r, const std::string& message) {
  res.send_error(404, "MANIFEST_UNKNOWN", message, {{"name", r.name}, {"reference", r.reference}});
}

}  // namespace

bool upstream_unavailable(const upstream_error& e) noexcept {
  switch (e.kind) {
    case error_kind::connect:
    case error_kind::timeout:
    case error_kind::tls:
    case error_kind::io:
      return true;
    case error_kind::http:
      return e.status >= 500 || e.status == 429 || e.status == 408;
    default:
      return false;
  }
}

std::optional<std::string> pull_through::manifest_answer::read() const {
  if (!file) return bytes;
  auto all = file->read_all();
  if (!all) return std::nullopt;
  return std::move(all.value());
}

pull_through::pull_through(const settings& s, sdk::host host, const oci::storage::blob_store& blobs,
                           const oci::storage::repository_store& repos, oci::cache::blob_fills& fills,
                           oci::cache::access_times& access, const oci::client::registry_client& upstream,
                           upstream_health& health, counters& c, clock_fn clock)
    : settings_(s),
      host_(host),
      blobs_(blobs),
      repos_(repos),
      fills_(fills),
      access_(access),
      upstream_(upstream),
      health_(health),
      counters_(c),
      clock_(std::move(clock)),
      mapping_(s.fixed_repository, s.upstream.images_repo.path),
      api_(make_dispatcher()) {}

oci::dispatcher pull_through::make_dispatcher() {
  oci::dispatcher api("Proxy mode is a read-only pull-through cache of " + settings_.upstream.images_repo.str() +
                      "; push to the upstream registry");
  api.read(oci::route_kind::catalog, [this](const sdk::request& req, sdk::response& res, const oci::target&) {
    const std::string body = nlohmann::json{{"repositories", repos_.repositories()}}.dump();
    res.status(200);
    if (is_head(req)) {
      res.header("Content-Type", "application/json");
      res.header("Content-Length", std::to_string(body.size()));
      return;
    }
    res.send("application/json", body);
  });
  // Every other read names a repository, served only below the fixed one.
  using getter = void (pull_through::*)(const sdk::request&, sdk::response&, const oci::target&, const std::string&);
  auto mapped = [this](getter fn) {
    return [this, fn](const sdk::request& req, sdk::response& res, const oci::target& t) {
      const auto upstream_name = mapping_.to_upstream(t.name);
      if (!upstream_name) {
        return res.send_error(404, "NAME_UNKNOWN",
                              "repository " + t.name + " is not known to this registry: Proxy mode serves " +
                                  mapping_.fixed_repository() + " and the repositories below it",
                              {{"name", t.name}});
      }
      (this->*fn)(req, res, t, *upstream_name);
    };
  };
  api.read(oci::route_kind::manifest, mapped(&pull_through::get_manifest));
  api.read(oci::route_kind::blob, mapped(&pull_through::get_blob));
  api.read(oci::route_kind::tags_list, mapped(&pull_through::get_tags));
  api.read(oci::route_kind::referrers, mapped(&pull_through::get_referrers));
  return api;
}

void pull_through::handle(const sdk::request& req, sdk::response& res) { api_.dispatch(req, res); }

// ---- manifests ---------------------------------------------------------------------------------

std::optional<pull_through::manifest_answer> pull_through::open_cached(const std::string& name,
                                                                       const oci::digest& d) const {
  auto opened = repos_.open_manifest(name, d);
  if (!opened) return std::nullopt;
  manifest_answer m{d, opened->record.media_type, std::move(opened->file), {}};
  return m;
}

pull_through::fetch_result pull_through::fetch_manifest(const std::string& name, const std::string& upstream_name,
                                                        const std::string& reference,
                                                        const std::optional<std::string>& tag) {
  ++counters_.upstream_manifest_gets;
  auto got = upstream_.get_manifest(upstream_name, reference);
  if (!got) return std::move(got).error();
  health_.succeeded();
  auto& fetched = *got;
  // By digest the client has checked the bytes already; by tag the digest came from
  // Docker-Content-Digest, and the bytes must have it too before they are cached under it.
  const oci::digest actual = oci::digest_of(fetched.body, fetched.descriptor.digest.algorithm());
  if (actual != fetched.descriptor.digest) {
    return oci::client::make_error(error_kind::protocol,
                                   "the upstream sent manifest bytes with digest " + actual.str() + " for " +
                                       fetched.descriptor.digest.str());
  }
  auto parsed = oci::parse_manifest(fetched.body, fetched.descriptor.media_type);
  manifest_answer m{actual, parsed ? parsed->media_type : fetched.descriptor.media_type, std::nullopt,
                    std::move(fetched.body)};
  if (!parsed) {
    host_.warn("manifest " + name + "@" + actual.str() + " from the upstream is served but not cached: " +
               parsed.error_message());
    return m;
  }
  oci::storage::manifest_put put{.bytes = m.bytes,
                                 .digest = actual,
                                 .media_type = m.media_type,
                                 .subject = std::nullopt,
                                 .referrer_descriptor = nullptr,
                                 .tag = tag};
  auto stored = repos_.put_manifest(name, put);
  if (!stored) {
    host_.warn("manifest " + name + "@" + actual.str() + " could not be cached: " + stored.error_message());
  } else {
    counters_.bytes_cached += m.bytes.size();
    counters_.cache_bytes += m.bytes.size();
    if (on_cache_grew) on_cache_grew();
  }
  return m;
}

pull_through::~pull_through() { shut_down(); }

void pull_through::shut_down() {
  std::list<revalidation_thread> threads;
  {
    std::lock_guard lock(validated_mutex_);
    shutting_down_ = true;
    threads.swap(revalidation_threads_);
  }
  for (auto& t : threads) t.thread.join();
}

std::size_t pull_through::revalidations_running() const {
  std::lock_guard lock(validated_mutex_);
  return revalidating_.size();
}

double pull_through::last_stale_age_seconds() const {
  return static_cast<double>(last_stale_age_ms_.load()) / 1000.0;
}

void pull_through::serve_stale(const std::string& key, const std::string& what, const std::string& why) {
  health_.stale(what, why);
  std::lock_guard lock(validated_mutex_);
  const auto it = validated_.find(key);
  if (it != validated_.end()) {
    last_stale_age_ms_ = std::chrono::duration_cast<std::chrono::milliseconds>(clock_() - it->second).count();
  }
}

std::shared_ptr<pull_through::revalidation> pull_through::revalidate(const oci::target& r,
                                                                     const std::string& upstream_name,
                                                                     const oci::digest& cached) {
  const std::string key = r.name + ":" + r.reference;
  std::lock_guard lock(validated_mutex_);
  if (shutting_down_) return nullptr;
  if (const auto it = revalidating_.find(key); it != revalidating_.end()) return it->second;
  // Threads of revalidations that are done only have to end: join them here, under the lock
  // they no longer take.
  for (auto it = revalidation_threads_.begin(); it != revalidation_threads_.end();) {
    if (it->rv->done) {
      it->thread.join();
      it = revalidation_threads_.erase(it);
    } else {
      ++it;
    }
  }
  auto rv = std::make_shared<revalidation>();
  try {
    std::thread t([this, key, name = r.name, upstream_name, tag = r.reference, cached, rv] {
      try {
        run_revalidation(key, name, upstream_name, tag, cached, *rv);
      } catch (const std::exception& e) {
        host_.warn("revalidating " + key + " failed: " + e.what());
        std::lock_guard l(validated_mutex_);
        rv->failed = std::string("failed: ") + e.what();
      }
      std::lock_guard l(validated_mutex_);
      rv->done = true;
      revalidating_.erase(key);
      rv->finished.notify_all();
    });
    revalidation_threads_.push_back(revalidation_thread{std::move(t), rv});
  } catch (const std::system_error& e) {
    host_.warn("cannot start a revalidation of " + key + ": " + e.what());
    return nullptr;
  }
  revalidating_.emplace(key, rv);
  return rv;
}

void pull_through::run_revalidation(const std::string& key, const std::string& name,
                                    const std::string& upstream_name, const std::string& tag,
                                    const oci::digest& cached, revalidation& rv) {
  std::optional<upstream_error> gone;
  std::optional<std::string> failed;
  ++counters_.upstream_manifest_heads;
  auto head = upstream_.head_manifest(upstream_name, tag);
  if (head) {
    health_.succeeded();
    if (head->digest == cached) {
      ++counters_.tag_revalidations_unchanged;
      mark_validated(key);
    } else {
      ++counters_.tag_revalidations_changed;
      auto f = fetch_manifest(name, upstream_name, head->digest.str(), tag);
      if (const auto* e = std::get_if<upstream_error>(&f)) {
        note_failure(*e);
        failed = "moved the tag to " + head->digest.str() +
                 " but the manifest could not be fetched: " + mapping_.text_to_client(e->str());
      } else if (const auto now = repos_.resolve_tag(name, tag); now && *now == head->digest) {
        mark_validated(key);
      } else {
        failed = "moved the tag to " + head->digest.str() + " but that manifest could not be cached here";
      }
    }
  } else if (head.error().kind == error_kind::http && head.error().status == 404) {
    (void)repos_.delete_tag(name, tag);
    forget_validated(key);
    gone = head.error();
  } else {
    note_failure(head.error());
    failed = "failed: " + mapping_.text_to_client(head.error().str());
  }
  std::lock_guard lock(validated_mutex_);
  rv.gone = std::move(gone);
  rv.failed = std::move(failed);
}

bool pull_through::tag_is_fresh(const std::string& key) const {
  std::lock_guard lock(validated_mutex_);
  const auto it = validated_.find(key);
  return it != validated_.end() && clock_() - it->second < settings_.tag_revalidate;
}

void pull_through::mark_validated(const std::string& key) {
  std::lock_guard lock(validated_mutex_);
  validated_[key] = clock_();
}

void pull_through::forget_validated(const std::string& key) {
  std::lock_guard lock(validated_mutex_);
  validated_.erase(key);
}

std::optional<pull_through::manifest_answer> pull_through::manifest_by_digest(sdk::response& res,
                                                                              const oci::target& r,
                                                                              const std::string& upstream_name,
                                                                              const oci::digest& d) {
  if (auto cached = open_cached(r.name, d)) {
    ++counters_.manifest_hits;
    return cached;
  }
  ++counters_.manifest_misses;
  auto f = fetch_manifest(r.name, upstream_name, d.str(), std::nullopt);
  if (auto* m = std::get_if<manifest_answer>(&f)) return std::move(*m);
  const auto& e = std::get<upstream_error>(f);
  note_failure(e);
  send_upstream_failure(res, e, "manifest " + r.name + "@" + d.str());
  return std::nullopt;
}

std::optional<pull_through::manifest_answer> pull_through::manifest_by_tag(sdk::response& res, const oci::target& r,
                                                                           const std::string& upstream_name) {
  const std::string key = r.name + ":" + r.reference;
  const std::string what = "manifest " + key;
  std::optional<manifest_answer> cached;
  if (auto t = repos_.resolve_tag(r.name, r.reference)) cached = open_cached(r.name, *t);

  if (cached) {
    if (tag_is_fresh(key)) {
      ++counters_.manifest_hits;
      return cached;
    }
    if (health_.down_within(down_window)) {
      serve_stale(key, what, "was unavailable moments ago");
      ++counters_.manifest_hits;
      return cached;
    }
    // One revalidation per tag, in the background; this request waits for it briefly.
    const auto rv = revalidate(r, upstream_name, cached->digest);
    if (!rv) {
      serve_stale(key, what, "is not revalidated while the mode stops");
      ++counters_.manifest_hits;
      return cached;
    }
    std::unique_lock lock(validated_mutex_);
    if (!rv->finished.wait_for(lock, settings_.tag_revalidate_wait, [&] { return rv->done; })) {
      lock.unlock();
      serve_stale(key, what,
                  "is being revalidated and has not answered within " +
                      std::to_string(settings_.tag_revalidate_wait.count()) + " ms");
      ++counters_.manifest_hits;
      return cached;
    }
    const auto gone = rv->gone;
    const auto failed = rv->failed;
    lock.unlock();
    if (gone) {
      send_upstream_failure(res, *gone, what);  // the upstream says the tag is gone: so it is here
      return std::nullopt;
    }
    ++counters_.manifest_hits;
    if (failed) {
      serve_stale(key, what, *failed);
      return cached;
    }
    // Confirmed, or moved and fetched: what the tag names now.
    if (auto t = repos_.resolve_tag(r.name, r.reference)) {
      if (auto now = open_cached(r.name, *t)) return now;
    }
    return cached;
  }

  ++counters_.manifest_misses;
  auto f = fetch_manifest(r.name, upstream_name, r.reference, r.reference);
  if (auto* m = std::get_if<manifest_answer>(&f)) {
    mark_validated(key);
    return std::move(*m);
  }
  const auto& e = std::get<upstream_error>(f);
  note_failure(e);
  send_upstream_failure(res, e, what);
  return std::nullopt;
}

void pull_through::get_manifest(const sdk::request& req, sdk::response& res, const oci::target& r,
                                const std::string& upstream_name) {
  const bool by_tag = r.is_tag();
  std::optional<manifest_answer> m =
      by_tag ? manifest_by_tag(res, r, upstream_name) : manifest_by_digest(res, r, upstream_name, *r.digest);
  if (!m) return;  // answered

  switch (oci::negotiate_manifest(header_values(req, "Accept"), m->media_type, by_tag)) {
    case oci::negotiation::refuse:
      return manifest_unknown(res, r, oci::negotiation_message(m->media_type));
    case oci::negotiation::serve_platform_child: {
      const auto bytes = m->read();
      const auto child = bytes ? oci::default_platform_child(*bytes, m->media_type) : std::nullopt;
      if (!child) return manifest_unknown(res, r, "the manifest list has no linux/amd64 image for this client");
      auto c = manifest_by_digest(res, r, upstream_name, *child);
      if (!c) return;
      m = std::move(c);
      break;
    }
    case oci::negotiation::serve:
      break;
  }
  send_manifest(req, res, std::move(*m));
}

void pull_through::send_manifest(const sdk::request& req, sdk::response& res, manifest_answer m) {
  access_.touch(m.digest, clock_());
  res.status(200);
  res.header("Docker-Content-Digest", m.digest.str());
  res.header("ETag", "\"" + m.digest.str() + "\"");
  const std::uint64_t size = m.size();
  if (is_head(req)) {
    res.header("Content-Type", m.media_type);
    res.header("Content-Length", std::to_string(size));
    return;
  }
  if (m.file) {
    res.send_file(m.media_type, m.file->release(), 0, size);
  } else {
    res.send(m.media_type, m.bytes);
  }
}

// ---- blobs -------------------------------------------------------------------------------------

oci::cache::fetch_fn pull_through::blob_fetch(const std::string& client_name, const std::string& upstream_name,
                                              const oci::digest& d) {
  return [this, client_name, upstream_name, d](oci::cache::fill_sink& sink) -> std::optional<oci::cache::fill_failure> {
    ++counters_.upstream_blob_gets;
    const auto failed = oci::cache::fetch_upstream_blob(sink, upstream_, upstream_name, d);
    if (!failed) {
      health_.succeeded();
      return std::nullopt;
    }
    note_failure(*failed);
    return to_fill_failure(*failed, "blob " + d.str() + " of " + client_name);
  };
}

void pull_through::get_blob(const sdk::request& req, sdk::response& res, const oci::target& r,
                            const std::string& upstream_name) {
  const auto& d = r.digest;
  // Twice at most: a blob evicted between a join that found it published and the open.
  for (int attempt = 0; attempt < 2; ++attempt) {
    auto file = blobs_.open(*d);
    if (file) {
      ++counters_.blob_hits;
      return send_blob_file(req, res, *d, std::move(file.value()));
    }
    if (file.code() != oci::storage::errc::not_found) {
      return res.send_error(500, "UNKNOWN", "cache storage failure: " + file.error_message());
    }
    if (is_head(req)) return head_blob_upstream(res, r, upstream_name, *d);

    auto joined = fills_.join(*d, blob_fetch(r.name, upstream_name, *d));
    if (joined.published) continue;
    ++counters_.blob_misses;
    if (joined.failure) {
      const auto& f = *joined.failure;
      return res.send_error(f.status, f.code, f.message, {{"digest", d->str()}});
    }
    auto reader = std::move(joined.reader);
    const auto size = reader->size();
    std::int64_t length = -1;
    if (size) {
      const auto slice = oci::http::begin_blob_answer(req, res, *d, *size);
      if (!slice) return;  // 304 or 416, answered
      if (slice->length != *size) reader->set_range(slice->offset, slice->length);
      length = static_cast<std::int64_t>(slice->length);
    } else if (!oci::http::begin_unsized_blob_answer(req, res, *d)) {
      return;  // 304, answered
    }
    access_.touch(*d, clock_());
    res.send_stream("application/octet-stream", length, std::make_unique<oci::cache::fill_body>(std::move(reader)));
    return;
  }
  res.send_error(503, "UNAVAILABLE", "blob " + d->str() + " was evicted while it was being fetched; try again");
}

void pull_through::send_blob_file(const sdk::request& req, sdk::response& res, const oci::digest& d,
                                  oci::storage::blob_file file) {
  access_.touch(d, clock_());
  const auto slice = oci::http::begin_blob_answer(req, res, d, file.size());
  if (!slice || is_head(req)) return;  // 304 or 416 answered; HEAD has its headers
  if (slice->length == 0) return res.send("application/octet-stream", "");
  res.send_file("application/octet-stream", file.release(), slice->offset, slice->length);
}

void pull_through::head_blob_upstream(sdk::response& res, const oci::target& r, const std::string& upstream_name,
                                      const oci::digest& d) {
  ++counters_.upstream_blob_heads;
  auto head = upstream_.head_blob(upstream_name, d);
  if (!head) {
    note_failure(head.error());
    return send_upstream_failure(res, head.error(), "blob " + d.str() + " of " + r.name);
  }
  health_.succeeded();
  res.status(200);
  res.header("Docker-Content-Digest", d.str());
  res.header("ETag", "\"" + d.str() + "\"");
  res.header("Content-Type", "application/octet-stream");
  res.header("Content-Length", std::to_string(head->size));
}

// ---- listings ----------------------------------------------------------------------------------

void pull_through::get_tags(const sdk::request& req, sdk::response& res, const oci::target& r,
                            const std::string& upstream_name) {
  std::vector<std::string> tags;
  auto listed = upstream_.list_tags(upstream_name);
  if (listed) {
    health_.succeeded();
    tags = std::move(listed.value());
  } else {
    const auto& e = listed.error();
    note_failure(e);
    auto cached = repos_.tags(r.name);
    if (!upstream_unavailable(e) || !cached) return send_upstream_failure(res, e, "the tag list of " + r.name);
    health_.stale("the tag list of " + r.name, "failed: " + mapping_.text_to_client(e.str()));
    tags = std::move(cached.value());
  }
  const std::string body = nlohmann::json{{"name", r.name}, {"tags", tags}}.dump();
  res.status(200);
  if (is_head(req)) {
    res.header("Content-Type", "application/json");
    res.header("Content-Length", std::to_string(body.size()));
    return;
  }
  res.send("application/json", body);
}

void pull_through::get_referrers(const sdk::request& req, sdk::response& res, const oci::target& r,
                                 const std::string& upstream_name) {
  const auto& d = r.digest;
  const std::string artifact_type(req.query_param("artifactType").value_or(""));
  auto got = upstream_.referrers(upstream_name, *d, artifact_type);
  if (!got) {
    note_failure(got.error());
    return send_upstream_failure(res, got.error(), "the referrers of " + r.name + "@" + d->str());
  }
  health_.succeeded();
  res.status(200);
  if (!artifact_type.empty()) res.header("OCI-Filters-Applied", "artifactType");
  const std::string type = got->descriptor.media_type.empty() ? std::string(oci::media_type::oci_index)
                                                              : got->descriptor.media_type;
  if (is_head(req)) {
    res.header("Content-Type", type);
    res.header("Content-Length", std::to_string(got->body.size()));
    return;
  }
  res.send(type, got->body);
}

// ---- upstream failures -------------------------------------------------------------------------

void pull_through::note_failure(const upstream_error& e) {
  if (upstream_unavailable(e)) {
    health_.failed(mapping_.text_to_client(e.str()));
  } else if (e.kind == error_kind::http) {
    health_.succeeded();  // it answered
  }
}

oci::cache::fill_failure pull_through::to_fill_failure(const upstream_error& e, const std::string& what) const {
  const std::string& upstream = settings_.upstream.options.registry;
  if (e.kind == error_kind::http && e.status == 401) {
    return {503, "UNAVAILABLE",
            "upstream " + upstream + " refused registryd's credentials (" + mapping_.text_to_client(e.str()) +
                "), so " + what + " cannot be fetched; check the username and password of the proxy section"};
  }
  if (e.kind == error_kind::http && !upstream_unavailable(e)) {
    return {e.status, e.code.empty() ? std::string("UNKNOWN") : e.code,
            e.message.empty() ? "upstream " + upstream + " answered " + std::to_string(e.status) + " for " + what
                              : mapping_.text_to_client(e.message)};
  }
  return {503, "UNAVAILABLE",
          "upstream " + upstream + " is unavailable (" + mapping_.text_to_client(e.str()) + ") and " + what +
              " is not in the cache"};
}

void pull_through::send_upstream_failure(sdk::response& res, const upstream_error& e, const std::string& what) {
  const auto f = to_fill_failure(e, what);
  nlohmann::json detail = nullptr;
  if (f.status != 503 && !e.detail.empty()) {
    detail = nlohmann::json::parse(mapping_.text_to_client(e.detail), nullptr, false);
    if (detail.is_discarded()) detail = nullptr;
  }
  res.send_error(f.status, f.code, f.message, detail);
}

}  // namespace registryd::proxy
