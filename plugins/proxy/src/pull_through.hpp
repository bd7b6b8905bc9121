// The registry API of the Proxy mode: a read-only, pull-through cache of the upstream
// imagesRepo under the fixed repository (system/deckhouse and below). docs/proxy-mode.md.
//
// - Blobs and manifests by digest: served from the cache once there; a miss is fetched,
//   verified against its digest, stored, and served (blobs stream to the client while they are
//   written: oci::cache::blob_fills coalesces concurrent misses into one upstream GET).
// - Tags: revalidated upstream with HEAD at most once per settings::tag_revalidate; the same
//   digest serves the cached manifest, another one is fetched by digest. A revalidation runs in
//   the background, one per tag; requests for the tag wait for it at most
//   settings::tag_revalidate_wait and are then answered from the cache (stale, counted).
// - Upstream unavailable (unreachable, 5xx, 429): cached content is served stale (counted,
//   logged); anything not cached fails with 503 UNAVAILABLE naming the upstream, at once when
//   it is refused and after settings::upstream_answer_timeout when it says nothing.
// - Push and delete: 405 UNSUPPORTED. Other repositories: 404 NAME_UNKNOWN.
//
// Thread-safety: handle() runs concurrently on many threads; state is in the stores, the
// fills, the access times, atomics and mutex-guarded maps. Revalidations run on threads of
// their own, which shut_down() waits for.
#pragma once

#include "counters.hpp"
#include "settings.hpp"
#include "upstream_health.hpp"

#include <registryd/oci/cache/blob_fill.hpp>
#include <registryd/oci/cache/eviction.hpp>
#include <registryd/oci/client/registry_client.hpp>
#include <registryd/oci/path_mapping.hpp>
#include <registryd/oci/dispatcher.hpp>
#include <registryd/oci/storage/blob_store.hpp>
#include <registryd/oci/storage/repository_store.hpp>
#include <registryd/sdk/plugin.hpp>

#include <atomic>
#include <condition_variable>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <variant>

namespace registryd::proxy {

class pull_through {
 public:
  // Everything must outlive this object; `fills` must be shut down before it is destroyed
  // (fills run code of this object on their threads).
  pull_through(const settings& s, sdk::host host, const oci::storage::blob_store& blobs,
               const oci::storage::repository_store& repos, oci::cache::blob_fills& fills,
               oci::cache::access_times& access, const oci::client::registry_client& upstream,
               upstream_health& health, counters& c, clock_fn clock);

  // Its dispatcher's handlers hold `this`: neither copied nor moved.
  pull_through(const pull_through&) = delete;
  pull_through& operator=(const pull_through&) = delete;
  ~pull_through();

  // Starts no more revalidations and waits for those running (each is bounded by the
  // upstream client's timeouts).
  void shut_down();
  // Tag revalidations running now.
  std::size_t revalidations_running() const;
  // How old the upstream's last word on the tag was when a cached copy was last served stale,
  // in seconds (0 before any stale serve).
  double last_stale_age_seconds() const;

  void handle(const sdk::request& req, sdk::response& res);

  const oci::path_mapping& mapping() const noexcept { return mapping_; }

  // Called after a fill or a manifest added bytes to the cache (the mode wakes its evictor
  // when a size cap is passed).
  std::function<void()> on_cache_grew;

 private:
  // A manifest to answer with: cached (an open file) or fetched just now (its bytes).
  struct manifest_answer {
    oci::digest digest;
    std::string media_type;
    std::optional<oci::storage::blob_file> file;
    std::string bytes;
    std::uint64_t size() const { return file ? file->size() : bytes.size(); }
    // The document's bytes (read from the file when cached; manifests are small).
    std::optional<std::string> read() const;
  };
  using fetch_result = std::variant<manifest_answer, oci::client::upstream_error>;

  oci::dispatcher make_dispatcher();

  // ---- manifests ----
  void get_manifest(const sdk::request& req, sdk::response& res, const oci::target& r,
                    const std::string& upstream_name);
  // The tag's manifest: cached and fresh, revalidated, fetched, or stale. Answers errors
  // itself and returns nullopt then.
  std::optional<manifest_answer> manifest_by_tag(sdk::response& res, const oci::target& r,
                                                 const std::string& upstream_name);
  std::optional<manifest_answer> manifest_by_digest(sdk::response& res, const oci::target& r,
                                                    const std::string& upstream_name, const oci::digest& d);
  std::optional<manifest_answer> open_cached(const std::string& name, const oci::digest& d) const;
  // GET upstream, verify, store (and tag), return the bytes.
  fetch_result fetch_manifest(const std::string& name, const std::string& upstream_name,
                              const std::string& reference, const std::optional<std::string>& tag);
  void send_manifest(const sdk::request& req, sdk::response& res, manifest_answer m);
  // One background revalidation of a cached tag; requests for the tag share it.
  struct revalidation {
    bool done = false;
    // Set when the upstream said the tag is gone (the tag was deleted here too).
    std::optional<oci::client::upstream_error> gone;
    // Set when it could not be done (why, for the stale serve's log line).
    std::optional<std::string> failed;
    std::condition_variable finished;
  };
  // The tag's running revalidation, started if there is none (nullptr when shutting down).
  std::shared_ptr<revalidation> revalidate(const oci::target& r, const std::string& upstream_name,
                                           const oci::digest& cached);
  // The body of a revalidation thread: HEAD upstream, fetch a moved tag, forget a gone one.
  void run_revalidation(const std::string& key, const std::string& name, const std::string& upstream_name,
                        const std::string& tag, const oci::digest& cached, revalidation& rv);
  // Serves `cached` although the upstream has not confirmed it lately: counted and logged.
  void serve_stale(const std::string& key, const std::string& what, const std::string& why);
  bool tag_is_fresh(const std::string& key) const;
  void mark_validated(const std::string& key);
  void forget_validated(const std::string& key);

  // ---- blobs ----
  void get_blob(const sdk::request& req, sdk::response& res, const oci::target& r,
                const std::string& upstream_name);
  void send_blob_file(const sdk::request& req, sdk::response& res, const oci::digest& d,
                      oci::storage::blob_file file);
  void head_blob_upstream(sdk::response& res, const oci::target& r, const std::string& upstream_name,
                          const oci::digest& d);
  oci::cache::fetch_fn blob_fetch(const std::string& client_name, const std::string& upstream_name,
                                  const oci::digest& d);

  // ---- listings ----
  void get_tags(const sdk::request& req, sdk::response& res, const oci::target& r, const std::string& upstream_name);
  void get_referrers(const sdk::request& req, sdk::response& res, const oci::target& r,
                     const std::string& upstream_name);

  // ---- upstream failures ----
  // Records the failure in the health state when it means the upstream is unavailable.
  void note_failure(const oci::client::upstream_error& e);
  // The answer for a request that could not be served from the cache: the upstream's own
  // 4xx (its text in client-side names), or 503 UNAVAILABLE naming the upstream and the cause.
  void send_upstream_failure(sdk::response& res, const oci::client::upstream_error& e, const std::string& what);
  oci::cache::fill_failure to_fill_failure(const oci::client::upstream_error& e, const std::string& what) const;

  const settings& settings_;
  sdk::host host_;
  const oci::storage::blob_store& blobs_;
  const oci::storage::repository_store& repos_;
  oci::cache::blob_fills& fills_;
  oci::cache::access_times& access_;
  const oci::client::registry_client& upstream_;
  upstream_health& health_;
  counters& counters_;
  clock_fn clock_;
  oci::path_mapping mapping_;
  oci::dispatcher api_;  // last: its handlers use the members above

  mutable std::mutex validated_mutex_;
  // "<name>:<tag>" -> when the upstream last confirmed (or gave) the cached digest.
  std::unordered_map<std::string, std::chrono::system_clock::time_point> validated_;
  // Guarded by validated_mutex_: the revalidations running, by "<name>:<tag>", their threads
  // (joined once done, the last ones by shut_down(): no thread may run this plugin's code after
  // it is unloaded) and whether new ones may start.
  std::unordered_map<std::string, std::shared_ptr<revalidation>> revalidating_;
  struct revalidation_thread {
    std::thread thread;
    std::shared_ptr<revalidation> rv;
  };
  std::list<revalidation_thread> revalidation_threads_;
  bool shutting_down_ = false;
  std::atomic<std::int64_t> last_stale_age_ms_{0};
};

// True when the failure means the upstream is unavailable: unreachable, timed out, broken off,
// TLS failed, or answered 5xx, 408 or 429.
bool upstream_unavailable(const oci::client::upstream_error& e) noexcept;

}  // namespace registryd::proxy
