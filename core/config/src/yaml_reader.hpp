// Private: reading untrusted YAML into checked values. yaml-cpp throws on a wrong type and
// silently keeps duplicate keys; these helpers check instead and record a field_error, so one
// pass over a document finds every problem in it.
#pragma once

#include <registryd/config/errors.hpp>

#include <yaml-cpp/yaml.h>

#include <cstddef>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace registryd::config::detail {

std::string child_path(std::string_view parent, std::string_view key);
std::string item_path(std::string_view parent, std::size_t index);

// Loads a single-document YAML text. On a syntax error (or more than one document) records
// the error and returns nullopt; an empty text gives a Null node.
std::optional<YAML::Node> load_document(std::string_view text, std::string_view source,
                                        field_errors& errors);

// Absent or null. Like the Kubernetes API server, which prunes nulls before it applies
// defaults, a `key:` with no value counts as not set.
bool is_absent(const YAML::Node& node);

// The YAML 1.2 core-schema type of a node, for messages: "a map", "a list", "a string",
// "an integer", "a number", "a boolean", "null".
std::string kind_of(const YAML::Node& node);

// The keys of one map, read once: duplicates are errors, and after the caller has taken the
// keys it knows, reject_unknown() reports the rest (additionalProperties: false).
class map_reader {
 public:
  // `node` must be a map.
  map_reader(const YAML::Node& node, std::string path, field_errors& errors);

  // The value under `key`, or an invalid node when absent; either way the key is known.
  YAML::Node take(std::string_view key);
  const std::string& path() const noexcept { return path_; }
  // Records "unknown field" for each key nobody took, with the known key it was likely meant
  // to be ("did you mean ttl?").
  void reject_unknown();

 private:
  struct entry {
    std::string key;
    YAML::Node value;
    bool known = false;
  };
  std::string path_;
  field_errors& errors_;
  std::vector<entry> entries_;
  std::vector<std::string> asked_;  // every key take() was asked for: the known ones
};

// A map at `path`, or an error "must be a map, got ...". Absent nodes are not checked here.
bool expect_map(const YAML::Node& node, const std::string& path, field_errors& errors);

// The readers return nullopt for an absent value (no error) and for a value of the wrong type
// (error recorded). Scalars are typed by the YAML 1.2 core schema, as Kubernetes does, so
// `password: 12345` is an integer, not a string: quote it.
std::optional<std::string> read_string(const YAML::Node& node, const std::string& path,
                                       field_errors& errors);
// Like read_string, and an empty string is an error "must not be empty".
std::optional<std::string> read_non_empty_string(const YAML::Node& node, const std::string& path,
                                                 field_errors& errors);
std::optional<long long> read_integer(const YAML::Node& node, const std::string& path,
                                      field_errors& errors);
// One of `values`, case-sensitive; returns its index.
std::optional<std::size_t> read_enum(const YAML::Node& node, const std::string& path,
                                     std::span<const std::string_view> values,
                                     field_errors& errors);
// A list of non-empty strings, each also passing `check` (which returns the reason when an
// item breaks its rule); item errors carry `path[i]`. Every item is checked.
std::optional<std::vector<std::string>> read_string_list(
    const YAML::Node& node, const std::string& path, field_errors& errors,
    const std::function<std::optional<std::string>(const std::string&)>& check = {});

// `"text"` with quotes and control characters escaped, for echoing a value in a reason.
std::string quoted(std::string_view text);

}  // namespace registryd::config::detail
