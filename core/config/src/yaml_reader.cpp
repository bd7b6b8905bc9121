#include "yaml_reader.hpp"

#include <registryd/config/suggest.hpp>

#include <yaml-cpp/eventhandler.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdio>
#include <exception>
#include <sstream>
#include <unordered_set>

namespace registryd::config::detail {
namespace {

enum class scalar_kind { null, boolean, integer, number, string };

bool is_digit(char c) { return c >= '0' && c <= '9'; }

bool all_of(std::string_view s, bool (*pred)(char)) {
  return !s.empty() && std::all_of(s.begin(), s.end(), pred);
}

bool is_core_integer(std::string_view s) {
  if (s.starts_with("0o")) {
    return all_of(s.substr(2), [](char c) { return c >= '0' && c <= '7'; });
  }
  if (s.starts_with("0x")) {
    return all_of(s.substr(2),
                  [](char c) { return std::isxdigit(static_cast<unsigned char>(c)) != 0; });
  }
  if (!s.empty() && (s.front() == '-' || s.front() == '+')) s.remove_prefix(1);
  return all_of(s, is_digit);
}

// [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)? and the .inf/.nan spellings.
bool is_core_number(std::string_view s) {
  static const std::unordered_set<std::string_view> special = {".inf",  ".Inf",  ".INF",  "+.inf",
                                                               "+.Inf", "+.INF", "-.inf", "-.Inf",
                                                               "-.INF", ".nan",  ".NaN",  ".NAN"};
  if (special.contains(s)) return true;
  if (!s.empty() && (s.front() == '-' || s.front() == '+')) s.remove_prefix(1);
  std::size_t i = 0;
  std::size_t int_digits = 0;
  while (i < s.size() && is_digit(s[i])) ++i, ++int_digits;
  std::size_t frac_digits = 0;
  bool dot = false;
  if (i < s.size() && s[i] == '.') {
    dot = true;
    ++i;
    while (i < s.size() && is_digit(s[i])) ++i, ++frac_digits;
  }
  if (int_digits == 0 && (!dot || frac_digits == 0)) return false;
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    if (i < s.size() && (s[i] == '-' || s[i] == '+')) ++i;
    std::size_t exp_digits = 0;
    while (i < s.size() && is_digit(s[i])) ++i, ++exp_digits;
    if (exp_digits == 0) return false;
  }
  return i == s.size();
}

scalar_kind resolve_plain(std::string_view s) {
  if (s.empty() || s == "~" || s == "null" || s == "Null" || s == "NULL") return scalar_kind::null;
  if (s == "true" || s == "True" || s == "TRUE" || s == "false" || s == "False" || s == "FALSE") {
    return scalar_kind::boolean;
  }
  if (is_core_integer(s)) return scalar_kind::integer;
  if (is_core_number(s)) return scalar_kind::number;
  return scalar_kind::string;
}

scalar_kind resolve(const YAML::Node& node) {
  if (!node.IsDefined() || node.IsNull()) return scalar_kind::null;
  const std::string& tag = node.Tag();
  if (tag == "?") return resolve_plain(node.Scalar());
  if (tag == "tag:yaml.org,2002:int") return scalar_kind::integer;
  if (tag == "tag:yaml.org,2002:float") return scalar_kind::number;
  if (tag == "tag:yaml.org,2002:bool") return scalar_kind::boolean;
  if (tag == "tag:yaml.org,2002:null") return scalar_kind::null;
  return scalar_kind::string;  // quoted, block, !!str or an application tag
}

std::string position(std::string_view source, const YAML::Mark& mark) {
  if (mark.is_null()) return source.empty() ? std::string("input") : std::string(source);
  const std::string line = std::to_string(mark.line + 1);
  const std::string column = std::to_string(mark.column + 1);
  if (source.empty()) return "line " + line + ", column " + column;
  return std::string(source) + ":" + line + ":" + column;
}

// A first pass over the parser's events, to make LoadAll safe. yaml-cpp 0.7 does not consume
// a stray ',' outside a flow collection: it reports an empty document at the same position
// forever, and LoadAll allocates until the process dies. A document that starts where the
// previous one started is that stall.
class document_scanner final : public YAML::EventHandler {
 public:
  void OnDocumentStart(const YAML::Mark& mark) override {
    if (!starts_.empty() && starts_.back().pos == mark.pos) stalled_ = true;
    starts_.push_back(mark);
  }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
  void OnAlias(const YAML::Mark&, YAML::anchor_t) override {}
  void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t,
                const std::string&) override {}
  void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                       YAML::EmitterStyle::value) override {}
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                  YAML::EmitterStyle::value) override {}
  void OnMapEnd() override {}

  bool stalled() const noexcept { return stalled_; }
  std::size_t documents() const noexcept { return starts_.size(); }
  const YAML::Mark& last_start() const { return starts_.back(); }

 private:
  std::vector<YAML::Mark> starts_;
  bool stalled_ = false;
};

// Documents beyond one are refused anyway; this only bounds the scan.
constexpr std::size_t max_scanned_documents = 1000;

std::string key_text(const YAML::Node& key) {
  if (key.IsScalar()) return key.Scalar();
  return "<" + kind_of(key) + " as a key>";
}

void type_error(const YAML::Node& node, const std::string& path, std::string_view expected,
                field_errors& errors) {
  std::string reason = "must be " + std::string(expected) + ", got " + kind_of(node);
  if (expected == "a string" && node.IsScalar()) {
    reason += " (quote the value to use it as text)";
  }
  errors.push_back({path, std::move(reason)});
}

}  // namespace

std::string child_path(std::string_view parent, std::string_view key) {
  if (parent.empty()) return std::string(key);
  std::string out(parent);
  out += '.';
  out += key;
  return out;
}

std::string item_path(std::string_view parent, std::size_t index) {
  return std::string(parent) + "[" + std::to_string(index) + "]";
}

std::optional<YAML::Node> load_document(std::string_view text, std::string_view source,
                                        field_errors& errors) {
  std::vector<YAML::Node> docs;
  try {
    const std::string input(text);
    {
      std::istringstream in(input);
      YAML::Parser parser(in);
      document_scanner scanner;
      while (!scanner.stalled() && scanner.documents() < max_scanned_documents &&
             parser.HandleNextDocument(scanner)) {
      }
      if (scanner.stalled()) {
        const YAML::Mark& at = scanner.last_start();
        std::string what = "unexpected content";
        if (at.pos >= 0 && static_cast<std::size_t>(at.pos) < input.size()) {
          what = "unexpected '" + std::string(1, input[static_cast<std::size_t>(at.pos)]) + "'";
        }
        errors.push_back({position(source, at), "YAML syntax error: " + what});
        return std::nullopt;
      }
      if (scanner.documents() >= max_scanned_documents) {
        errors.push_back({position(source, YAML::Mark::null_mark()),
                          "must hold one YAML document, found more than " +
                              std::to_string(max_scanned_documents)});
        return std::nullopt;
      }
    }
    docs = YAML::LoadAll(input);
  } catch (const YAML::Exception& e) {
    errors.push_back({position(source, e.mark), "YAML syntax error: " + e.msg});
    return std::nullopt;
  } catch (const std::exception& e) {
    errors.push_back(
        {position(source, YAML::Mark::null_mark()), std::string("cannot read YAML: ") + e.what()});
    return std::nullopt;
  }
  // A trailing `---` yields an empty document; only documents with content count.
  std::erase_if(docs, [](const YAML::Node& d) { return d.IsNull(); });
  if (docs.size() > 1) {
    errors.push_back({position(source, docs[1].Mark()),
                      "must hold one YAML document, found " + std::to_string(docs.size())});
    return std::nullopt;
  }
  if (docs.empty()) return YAML::Node(YAML::NodeType::Null);
  return docs.front();
}

bool is_absent(const YAML::Node& node) { return !node.IsDefined() || node.IsNull(); }

std::string kind_of(const YAML::Node& node) {
  if (!node.IsDefined() || node.IsNull()) return "null";
  if (node.IsMap()) return "a map";
  if (node.IsSequence()) return "a list";
  switch (resolve(node)) {
    case scalar_kind::null:
      return "null";
    case scalar_kind::boolean:
      return "a boolean";
    case scalar_kind::integer:
      return "an integer";
    case scalar_kind::number:
      return "a number";
    case scalar_kind::string:
      break;
  }
  return "a string";
}

map_reader::map_reader(const YAML::Node& node, std::string path, field_errors& errors)
    : path_(std::move(path)), errors_(errors) {
  for (auto it = node.begin(); it != node.end(); ++it) {
    std::string key = key_text(it->first);
    const bool duplicate =
        std::any_of(entries_.begin(), entries_.end(), [&](const entry& e) { return e.key == key; });
    if (duplicate) {
      errors_.push_back({child_path(path_, key), "duplicate key"});
      continue;  // the first occurrence wins, like yaml-cpp's own lookup
    }
    entries_.push_back({std::move(key), it->second, false});
  }
}

YAML::Node map_reader::take(std::string_view key) {
  asked_.emplace_back(key);
  for (entry& e : entries_) {
    if (e.key == key) {
      e.known = true;
      return e.value;
    }
  }
  return YAML::Node();
}

void map_reader::reject_unknown() {
  for (const entry& e : entries_) {
    if (e.known) continue;
    const auto meant = closest(e.key, asked_);
    errors_.push_back({child_path(path_, e.key), meant ? "unknown field; did you mean " + *meant + "?" : "unknown field"});
  }
}

bool expect_map(const YAML::Node& node, const std::string& path, field_errors& errors) {
  if (node.IsMap()) return true;
  type_error(node, path, "a map", errors);
  return false;
}

std::optional<std::string> read_string(const YAML::Node& node, const std::string& path,
                                       field_errors& errors) {
  if (is_absent(node)) return std::nullopt;
  if (!node.IsScalar() || resolve(node) != scalar_kind::string) {
    type_error(node, path, "a string", errors);
    return std::nullopt;
  }
  return node.Scalar();
}

std::optional<std::string> read_non_empty_string(const YAML::Node& node, const std::string& path,
                                                 field_errors& errors) {
  auto value = read_string(node, path, errors);
  if (value && value->empty()) {
    errors.push_back({path, "must not be empty"});
    return std::nullopt;
  }
  return value;
}

std::optional<long long> read_integer(const YAML::Node& node, const std::string& path,
                                      field_errors& errors) {
  if (is_absent(node)) return std::nullopt;
  if (!node.IsScalar() || resolve(node) != scalar_kind::integer) {
    type_error(node, path, "an integer", errors);
    return std::nullopt;
  }
  std::string_view text = node.Scalar();
  if (text.starts_with('+')) text.remove_prefix(1);
  long long value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec == std::errc::result_out_of_range) {
    errors.push_back({path, "is out of range, got " + std::string(node.Scalar())});
    return std::nullopt;
  }
  if (ec != std::errc() || end != text.data() + text.size()) {
    errors.push_back({path, "must be a decimal integer, got " + std::string(node.Scalar())});
    return std::nullopt;
  }
  return value;
}

std::optional<std::size_t> read_enum(const YAML::Node& node, const std::string& path,
                                     std::span<const std::string_view> values,
                                     field_errors& errors) {
  const auto text = read_string(node, path, errors);
  if (!text) return std::nullopt;
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (*text == values[i]) return i;
  }
  std::string reason = "must be one of ";
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (i > 0) reason += ", ";
    reason += values[i];
  }
  reason += ", got " + quoted(*text);
  const auto lower = [](std::string_view s) {
    std::string out(s);
    for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
  };
  bool case_only = false;
  for (const auto v : values) {
    if (lower(v) == lower(*text)) {
      reason += " (values are case-sensitive: write " + std::string(v) + ")";
      case_only = true;
      break;
    }
  }
  if (!case_only) {
    if (const auto meant = closest(*text, std::vector<std::string>(values.begin(), values.end()))) {
      reason += "; did you mean " + *meant + "?";
    }
  }
  errors.push_back({path, std::move(reason)});
  return std::nullopt;
}

std::optional<std::vector<std::string>> read_string_list(
    const YAML::Node& node, const std::string& path, field_errors& errors,
    const std::function<std::optional<std::string>(const std::string&)>& check) {
  if (is_absent(node)) return std::nullopt;
  if (!node.IsSequence()) {
    type_error(node, path, "a list", errors);
    return std::nullopt;
  }
  std::vector<std::string> out;
  bool good = true;
  std::size_t index = 0;
  for (const auto& item : node) {
    const std::string p = item_path(path, index++);
    if (is_absent(item)) {
      errors.push_back({p, "must be a string, got null"});
      good = false;
      continue;
    }
    auto value = read_non_empty_string(item, p, errors);
    if (!value) {
      good = false;
      continue;
    }
    if (check) {
      if (auto why = check(*value)) {
        errors.push_back({p, std::move(*why)});
        good = false;
        continue;
      }
    }
    out.push_back(std::move(*value));
  }
  if (!good) return std::nullopt;
  return out;
}

std::string quoted(std::string_view text) {
  std::string out = "\"";
  for (const char c : text) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\x%02x",
                        static_cast<unsigned>(static_cast<unsigned char>(c)));
          out += buf;
        } else {
          out += c;
        }
    }
  }
  out += '"';
  return out;
}

}  // namespace registryd::config::detail
