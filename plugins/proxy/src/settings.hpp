// The Proxy mode's view of the settings document (docs/plugin-authors.md, docs/proxy-mode.md).
#pragma once

#include <registryd/oci/client/options.hpp>

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>

namespace registryd::proxy {

// How often a cached tag is asked about upstream (HEAD), at most. The ModuleConfig has no key
// for it; section.tagRevalidateSeconds or REGISTRYD_PROXY_TAG_REVALIDATE_SECONDS change it.
inline constexpr std::chrono::seconds default_tag_revalidate{30};
// How long a request for a tag whose revalidation is due waits for it before it is answered
// from the cache (stale, counted). One revalidation per tag runs in the background meanwhile, so
// a healthy upstream's answer is seen at once and a stalled one costs this much, shared.
// section.tagRevalidateWaitMilliseconds or REGISTRYD_PROXY_TAG_REVALIDATE_WAIT_MS; 0: at once.
inline constexpr std::chrono::milliseconds default_tag_revalidate_wait{500};
// The longest wait for the head of an upstream answer (time to first byte): an upstream that
// accepts connections and says nothing fails a request after this, not after the 30 s that a
// body may pause between pieces. section.upstreamAnswerTimeoutMilliseconds or
// REGISTRYD_PROXY_UPSTREAM_ANSWER_TIMEOUT_MS.
inline constexpr std::chrono::milliseconds default_upstream_answer_timeout{2000};
// The ModuleConfig's default ttl (168h), for a document that leaves it out.
inline constexpr std::chrono::seconds default_ttl{168 * 3600};

struct settings {
  oci::client::upstream_settings upstream;  // imagesRepo split, and how to reach it
  std::chrono::seconds ttl = default_ttl;    // section.ttlSeconds
  std::string ttl_text = "168h";             // section.ttl, for messages
  std::chrono::seconds tag_revalidate = default_tag_revalidate;
  std::chrono::milliseconds tag_revalidate_wait = default_tag_revalidate_wait;
  std::chrono::milliseconds upstream_answer_timeout = default_upstream_answer_timeout;
  std::optional<std::uint64_t> max_cache_bytes;  // section.maxCacheBytes: LRU cap; none by default
  std::filesystem::path data_dir;                // host.dataDir
  std::optional<std::filesystem::path> ca_file;  // host.caFile: the registry CA (PEM)
  std::string fixed_host = "registry.d8-system.svc:5001";
  std::string fixed_repository = "system/deckhouse";

  // <dataDir>/proxy: the cache's store root, apart from what Local mode keeps in dataDir.
  std::filesystem::path cache_root() const { return data_dir / "proxy"; }
};

// Parses and checks the document. Throws std::invalid_argument naming the offending field,
// e.g. `invalid Proxy settings: section.imagesRepo is required`.
settings parse_settings(const nlohmann::json& doc);

// Applies REGISTRYD_PROXY_TAG_REVALIDATE_SECONDS, REGISTRYD_PROXY_TAG_REVALIDATE_WAIT_MS,
// REGISTRYD_PROXY_UPSTREAM_ANSWER_TIMEOUT_MS and REGISTRYD_PROXY_MAX_CACHE_BYTES when set
// (read through `get`, std::getenv by default). Throws std::invalid_argument for a value that
// is not a number.
void apply_environment(settings& s,
                       const std::function<const char*(const char*)>& get = [](const char* n) {
                         return static_cast<const char*>(std::getenv(n));
                       });

}  // namespace registryd::proxy
