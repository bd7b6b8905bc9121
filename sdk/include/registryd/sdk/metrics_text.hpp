// Writing a plugin's metrics in the Prometheus text exposition format, for mode_plugin::metrics
// (docs/plugin-authors.md). Header-only; pure functions.
#pragma once

#include <cstdint>
#include <sstream>
#include <string>
#include <string_view>

namespace registryd::sdk::metrics_text {

// A label value as the format wants it: backslash, double quote and line feed escaped.
inline std::string label_value(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (const char c : v) {
    if (c == '\\') out += "\\\\";
    else if (c == '"') out += "\\\"";
    else if (c == '\n') out += "\\n";
    else out.push_back(c);
  }
  return out;
}

// Appends a family of one unlabelled sample: `# HELP`, `# TYPE <type>`, `<name> <value>`.
inline void family(std::string& out, const char* name, const char* help, const char* type, const std::string& value) {
  out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n" + name + " " + value + "\n";
}

inline void counter(std::string& out, const char* name, const char* help, std::uint64_t value) {
  family(out, name, help, "counter", std::to_string(value));
}

// 15 significant digits: enough for unix timestamps with fractions and for byte counts.
inline void gauge(std::string& out, const char* name, const char* help, double value) {
  std::ostringstream v;
  v.precision(15);
  v << value;
  family(out, name, help, "gauge", v.str());
}

}  // namespace registryd::sdk::metrics_text
