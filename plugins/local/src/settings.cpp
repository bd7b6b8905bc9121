#include "settings.hpp"

#include <stdexcept>

namespace registryd::local {
namespace {

using nlohmann::json;

[[noreturn]] void fail(const std::string& path, const std::string& why) {
  throw std::invalid_argument("invalid Local settings: " + path + ": " + why);
}

const json* optional_field(const json& obj, const char* key) {
  const auto it = obj.find(key);
  return it == obj.end() || it->is_null() ? nullptr : &*it;
}

std::string string_field(const json& v, const std::string& path) {
  if (!v.is_string()) fail(path, std::string("must be a string, not ") + v.type_name());
  return v.get<std::string>();
}

std::chrono::seconds seconds_field(const json& v, const std::string& path) {
  if (!v.is_number_integer() || v.get<long long>() < 0) fail(path, "must be a whole number of seconds, 0 or more");
  return std::chrono::seconds(v.get<long long>());
}

}  // namespace

settings parse_settings(const json& doc) {
  if (!doc.is_object()) fail("$", std::string("must be a JSON object, not ") + doc.type_name());
  settings s;
  const json* mode = optional_field(doc, "mode");
  if (mode == nullptr) fail("mode", "is required");
  if (string_field(*mode, "mode") != "Local") {
    fail("mode", "\"" + mode->get<std::string>() + "\" given to the Local plugin");
  }
  if (const json* section = optional_field(doc, "section")) {
    if (!section->is_object() || !section->empty()) fail("section", "Local mode has no settings section");
  }
  const json* host = optional_field(doc, "host");
  if (host == nullptr || !host->is_object()) fail("host", "is required (host.dataDir is the storage root)");
  const json* data_dir = optional_field(*host, "dataDir");
  if (data_dir == nullptr) fail("host.dataDir", "is required");
  s.data_dir = string_field(*data_dir, "host.dataDir");
  if (s.data_dir.empty()) fail("host.dataDir", "must not be empty");
  if (const json* ca = optional_field(*host, "caFile")) s.ca_file = string_field(*ca, "host.caFile");
  if (const json* f = optional_field(*host, "fixedHost")) s.fixed_host = string_field(*f, "host.fixedHost");
  if (const json* g = optional_field(*host, "gcIntervalSeconds")) s.gc_interval = seconds_field(*g, "host.gcIntervalSeconds");
  if (const json* g = optional_field(*host, "gcGraceSeconds")) s.gc_grace = seconds_field(*g, "host.gcGraceSeconds");
  return s;
}

}  // namespace registryd::local
