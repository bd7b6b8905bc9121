// Reads a plugin's settings document (docs/plugin-authors.md, "The settings document") with
// the field path and the reason in every error, the way the host reports ModuleConfig errors:
//   invalid Proxy settings: section.ttlSeconds: must be a whole number, not string
// Each failure throws std::invalid_argument, which the plugin boundary turns into
// INVALID_ARGUMENT with that message. Absent and null fields read as not given.
//
// Header-only, so an out-of-tree plugin needs nothing but the SDK's headers.
//
// Thread-safety: a reader is used by one thread; it only reads the document.
#pragma once

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

namespace registryd::sdk {

class settings_reader {
 public:
  // Checks that `doc` is an object whose "mode" is `mode`.
  settings_reader(std::string_view mode, const nlohmann::json& doc) : mode_(mode), doc_(doc) {
    if (!doc.is_object()) fail("$", std::string("must be a JSON object, not ") + doc.type_name());
    const std::string given = required_string("mode");
    if (given != mode_) fail("mode", "\"" + given + "\" given to the " + mode_ + " plugin");
  }

  struct any_mode_t {};
  static constexpr any_mode_t any_mode{};
  // For a plugin that serves behind whichever mode is configured (`serve --plugin`): checks
  // only that `doc` is an object with a "mode" string; errors name `plugin`.
  settings_reader(std::string_view plugin, const nlohmann::json& doc, any_mode_t) : mode_(plugin), doc_(doc) {
    if (!doc.is_object()) fail("$", std::string("must be a JSON object, not ") + doc.type_name());
    (void)required_string("mode");
  }

  [[noreturn]] void fail(std::string_view path, std::string_view why) const {
    throw std::invalid_argument("invalid " + mode_ + " settings: " + std::string(path) + ": " + std::string(why));
  }

  const nlohmann::json& document() const noexcept { return doc_; }

  // The value at a dotted path ("host.dataDir"); nullptr when it, or an object on the way, is
  // absent or null. A non-object on the way fails.
  const nlohmann::json* find(std::string_view path) const {
    const nlohmann::json* at = &doc_;
    std::size_t start = 0;
    for (;;) {
      const auto dot = path.find('.', start);
      const std::string key(path.substr(start, dot == std::string_view::npos ? dot : dot - start));
      if (!at->is_object()) fail(path.substr(0, start == 0 ? 0 : start - 1), "must be an object");
      const auto it = at->find(key);
      if (it == at->end() || it->is_null()) return nullptr;
      at = &*it;
      if (dot == std::string_view::npos) return at;
      start = dot + 1;
    }
  }

  // An object that must be there; `why` says what it is for in the error.
  const nlohmann::json& object(std::string_view path, std::string_view why = "is required") const {
    const nlohmann::json* v = find(path);
    if (v == nullptr) fail(path, why);
    if (!v->is_object()) fail(path, std::string("must be an object, not ") + v->type_name());
    return *v;
  }
  // An object or nothing.
  const nlohmann::json* optional_object(std::string_view path) const {
    const nlohmann::json* v = find(path);
    if (v != nullptr && !v->is_object()) fail(path, std::string("must be an object, not ") + v->type_name());
    return v;
  }

  std::optional<std::string> string(std::string_view path) const {
    const nlohmann::json* v = find(path);
    if (v == nullptr) return std::nullopt;
    if (!v->is_string()) fail(path, std::string("must be a string, not ") + v->type_name());
    return v->get<std::string>();
  }
  // A string that must be there and not be empty.
  std::string required_string(std::string_view path) const {
    auto s = string(path);
    if (!s) fail(path, "is required");
    if (s->empty()) fail(path, "must not be empty");
    return *s;
  }
  // A string from a fixed list.
  std::optional<std::string> one_of(std::string_view path, std::initializer_list<std::string_view> allowed) const {
    auto s = string(path);
    if (!s) return s;
    for (const auto a : allowed) {
      if (*s == a) return s;
    }
    std::string list;
    for (const auto a : allowed) list += (list.empty() ? "" : ", ") + std::string(a);
    fail(path, "\"" + *s + "\" is not one of " + list);
  }

  std::optional<bool> boolean(std::string_view path) const {
    const nlohmann::json* v = find(path);
    if (v == nullptr) return std::nullopt;
    if (!v->is_boolean()) fail(path, std::string("must be a boolean, not ") + v->type_name());
    return v->get<bool>();
  }

  // A whole number, 0 or more.
  std::optional<std::uint64_t> count(std::string_view path) const {
    const nlohmann::json* v = find(path);
    if (v == nullptr) return std::nullopt;
    if (!v->is_number_integer()) fail(path, std::string("must be a whole number, not ") + v->type_name());
    if (!v->is_number_unsigned() && v->get<std::int64_t>() < 0) fail(path, "must not be negative");
    return v->get<std::uint64_t>();
  }
  // A whole number that must be more than 0; `zero_hint` is added to the error.
  std::optional<std::uint64_t> positive(std::string_view path, std::string_view zero_hint = "") const {
    const auto n = count(path);
    if (n && *n == 0) fail(path, zero_hint.empty() ? std::string("must be positive") : "must be positive (" + std::string(zero_hint) + ")");
    return n;
  }
  std::optional<std::chrono::seconds> seconds(std::string_view path) const {
    const auto n = count(path);
    if (!n) return std::nullopt;
    return std::chrono::seconds(static_cast<std::chrono::seconds::rep>(*n));
  }

 private:
  std::string mode_;
  const nlohmann::json& doc_;
};

}  // namespace registryd::sdk
