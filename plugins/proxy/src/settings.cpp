#include "settings.hpp"

#include <charconv>
#include <cstdlib>
#include <stdexcept>

namespace registryd::proxy {
namespace {

using nlohmann::json;

[[noreturn]] void fail(const std::string& path, const std::string& why) {
  throw std::invalid_argument("invalid Proxy settings: " + path + ": " + why);
}

const json* optional_field(const json& obj, const char* key) {
  const auto it = obj.find(key);
  return it == obj.end() || it->is_null() ? nullptr : &*it;
}

std::string string_field(const json& v, const std::string& path) {
  if (!v.is_string()) fail(path, std::string("must be a string, not ") + v.type_name());
  return v.get<std::string>();
}

std::uint64_t count_field(const json& v, const std::string& path) {
  if (!v.is_number_integer() && !v.is_number_unsigned()) {
    fail(path, std::string("must be a whole number, not ") + v.type_name());
  }
  if (v.is_number_integer() && v.get<std::int64_t>() < 0) fail(path, "must not be negative");
  return v.get<std::uint64_t>();
}

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

settings parse_settings(const json& doc) {
  if (!doc.is_object()) fail("$", std::string("must be a JSON object, not ") + doc.type_name());
  settings s;
  const json* mode = optional_field(doc, "mode");
  if (mode == nullptr) fail("mode", "is required");
  if (string_field(*mode, "mode") != "Proxy") {
    fail("mode", "\"" + mode->get<std::string>() + "\" given to the Proxy plugin");
  }

  const json* section = optional_field(doc, "section");
  if (section == nullptr || !section->is_object()) fail("section", "is required (the proxy section)");
  try {
    s.upstream = oci::client::upstream_from_section(*section);
  } catch (const std::invalid_argument& e) {
    throw std::invalid_argument(std::string("invalid Proxy settings: ") + e.what());
  }
  if (const json* secs = optional_field(*section, "ttlSeconds")) {
    const auto v = count_field(*secs, "section.ttlSeconds");
    if (v == 0) fail("section.ttlSeconds", "must be positive");
    s.ttl = std::chrono::seconds(v);
    s.ttl_text = std::to_string(v) + "s";
  }
  if (const json* text = optional_field(*section, "ttl")) s.ttl_text = string_field(*text, "section.ttl");
  if (const json* v = optional_field(*section, "tagRevalidateSeconds")) {
    s.tag_revalidate = std::chrono::seconds(count_field(*v, "section.tagRevalidateSeconds"));
  }
  if (const json* v = optional_field(*section, "maxCacheBytes")) {
    const auto bytes = count_field(*v, "section.maxCacheBytes");
    if (bytes == 0) fail("section.maxCacheBytes", "must be positive (leave it out for no cap)");
    s.max_cache_bytes = bytes;
  }

  const json* host = optional_field(doc, "host");
  if (host == nullptr || !host->is_object()) fail("host", "is required (host.dataDir is the cache's root)");
  const json* data_dir = optional_field(*host, "dataDir");
  if (data_dir == nullptr) fail("host.dataDir", "is required");
  s.data_dir = string_field(*data_dir, "host.dataDir");
  if (s.data_dir.empty()) fail("host.dataDir", "must not be empty");
  if (const json* ca = optional_field(*host, "caFile")) s.ca_file = string_field(*ca, "host.caFile");
  if (const json* f = optional_field(*host, "fixedHost")) s.fixed_host = string_field(*f, "host.fixedHost");
  if (const json* f = optional_field(*host, "fixedRepository")) {
    s.fixed_repository = string_field(*f, "host.fixedRepository");
    if (s.fixed_repository.empty()) fail("host.fixedRepository", "must not be empty");
  }
  return s;
}

void apply_environment(settings& s, const std::function<const char*(const char*)>& get) {
  if (const char* v = get("REGISTRYD_PROXY_TAG_REVALIDATE_SECONDS"); v != nullptr) {
    s.tag_revalidate = std::chrono::seconds(count_text(v, "REGISTRYD_PROXY_TAG_REVALIDATE_SECONDS"));
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
