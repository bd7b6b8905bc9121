// Validation errors as values. A config is checked completely before anyone sees it, and every
// violated rule is reported at once: an operator fixing a ModuleConfig should not have to run
// the host once per typo.
#pragma once

#include <registryd/util/result.hpp>

#include <string>
#include <utility>
#include <variant>
#include <vector>

namespace registryd::config {

// One violated rule. `path` says where: a field path (`spec.settings.registry.proxy.ttl`,
// `masters[1]`), or for a YAML syntax error a position (`line 3, column 5`, or
// `<file>:3:5` when read from a file). `reason` names the rule (`must be at least 5m, got 2m`).
struct field_error {
  std::string path;
  std::string reason;

  // "<path>: <reason>", or just the reason when there is no path.
  std::string to_string() const;

  friend bool operator==(const field_error&, const field_error&) = default;
};

using field_errors = std::vector<field_error>;

// One error per line, in the order they were found, no trailing newline.
std::string to_string(const field_errors& errors);

// A validated value or the non-empty list of everything wrong with the input.
template <typename T>
class [[nodiscard]] checked : public registryd::result<T, field_errors> {
 public:
  using registryd::result<T, field_errors>::result;

  // Empty when ok().
  const field_errors& errors() const {
    static const field_errors none;
    return this->ok() ? none : this->error();
  }
  // All errors, one per line.
  std::string error_message() const { return to_string(errors()); }

  // For callers that only need a message (the CLI, the reload loop).
  util::result<T> to_result() && {
    if (this->ok()) return std::move(*this).value();
    return util::error{error_message()};
  }
};

}  // namespace registryd::config
