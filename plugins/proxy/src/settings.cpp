#include "settings.hpp"

#include <registryd/sdk/settings_reader.hpp>

#include <charconv>
#include <cstdlib>
#include <stdexcept>

namespace registryd::proxy {
namespace {

std::uint64_t count_text(const char* text, const std::string& name) {
  const std::string_view s(text);
  std::uint64_t value = 0;
  const auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
  if (s.empty() || ec != std::errc() || ptr != s.data() + s.size()) {
    throw std::invalid_argument("invalid Proxy settings: " + name + "=\"" + std::string(s) +
                                "\" is not a whole number");
  }
  return value;
}

}  // namespace

settings parse_settings(const nlohmann::json& doc) {
  const sdk::settings_reader in("Proxy", doc);
  settings s;
  const auto& section = in.object("section", "is required (the proxy section)");
  try {
    s.upstream = oci::client::upstream_from_section(section);
  } catch (const std::invalid_argument& e) {
    throw std::invalid_argument(std::string("invalid Proxy settings: ") + e.what());
  }
  if (const auto v = in.positive("section.ttlSeconds")) {
    s.ttl = std::chrono::seconds(static_cast<std::chrono::seconds::rep>(*v));
    s.ttl_text = std::to_string(*v) + "s";
  }
  if (auto v = in.string("section.ttl")) s.ttl_text = *v;
  if (const auto v = in.seconds("section.tagRevalidateSeconds")) s.tag_revalidate = *v;
  if (const auto v = in.count("section.tagRevalidateWaitMilliseconds")) {
    s.tag_revalidate_wait = std::chrono::milliseconds(*v);
  }
  if (const auto v = in.positive("section.upstreamAnswerTimeoutMilliseconds")) {
    s.upstream_answer_timeout = std::chrono::milliseconds(*v);
  }
  if (const auto v = in.positive("section.maxCacheBytes", "leave it out for no cap")) s.max_cache_bytes = *v;

  in.object("host", "is required (host.dataDir is the cache's root)");
  s.data_dir = in.required_string("host.dataDir");
  if (auto v = in.string("host.caFile")) s.ca_file = *v;
  if (auto v = in.string("host.fixedHost")) s.fixed_host = *v;
  if (auto v = in.string("host.fixedRepository")) {
    if (v->empty()) in.fail("host.fixedRepository", "must not be empty");
    s.fixed_repository = *v;
  }
  return s;
}

void apply_environment(settings& s, const std::function<const char*(const char*)>& get) {
  if (const char* v = get("REGISTRYD_PROXY_TAG_REVALIDATE_SECONDS"); v != nullptr) {
    s.tag_revalidate = std::chrono::seconds(count_text(v, "REGISTRYD_PROXY_TAG_REVALIDATE_SECONDS"));
  }
  if (const char* v = get("REGISTRYD_PROXY_TAG_REVALIDATE_WAIT_MS"); v != nullptr) {
    s.tag_revalidate_wait = std::chrono::milliseconds(count_text(v, "REGISTRYD_PROXY_TAG_REVALIDATE_WAIT_MS"));
  }
  if (const char* v = get("REGISTRYD_PROXY_UPSTREAM_ANSWER_TIMEOUT_MS"); v != nullptr) {
    const auto ms = count_text(v, "REGISTRYD_PROXY_UPSTREAM_ANSWER_TIMEOUT_MS");
    if (ms == 0) {
      throw std::invalid_argument(
          "invalid Proxy settings: REGISTRYD_PROXY_UPSTREAM_ANSWER_TIMEOUT_MS=\"0\" must be more than 0");
    }
    s.upstream_answer_timeout = std::chrono::milliseconds(ms);
  }
  if (const char* v = get("REGISTRYD_PROXY_MAX_CACHE_BYTES"); v != nullptr) {
    const auto bytes = count_text(v, "REGISTRYD_PROXY_MAX_CACHE_BYTES");
    if (bytes == 0) {
      s.max_cache_bytes.reset();  // 0: no cap
    } else {
      s.max_cache_bytes = bytes;
    }
  }
}

}  // namespace registryd::proxy
