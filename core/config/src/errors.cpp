#include <registryd/config/errors.hpp>

namespace registryd::config {

std::string field_error::to_string() const {
  if (path.empty()) return reason;
  return path + ": " + reason;
}

std::string to_string(const field_errors& errors) {
  std::string out;
  for (const auto& e : errors) {
    if (!out.empty()) out += '\n';
    out += e.to_string();
  }
  return out;
}

}  // namespace registryd::config
