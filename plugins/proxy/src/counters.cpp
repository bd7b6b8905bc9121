#include "counters.hpp"

#include <sstream>

namespace registryd::proxy {

void counter(std::string& out, const char* name, const char* help, std::uint64_t value) {
  out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " counter\n" + name + " " +
         std::to_string(value) + "\n";
}

void gauge(std::string& out, const char* name, const char* help, double value) {
  std::ostringstream v;
  v.precision(15);
  v << value;
  out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " gauge\n" + name + " " + v.str() + "\n";
}

void counter2(std::string& out, const char* name, const char* help, const char* label, const char* a,
              std::uint64_t va, const char* b, std::uint64_t vb) {
  out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " counter\n";
  out += std::string(name) + "{" + label + "=\"" + a + "\"} " + std::to_string(va) + "\n";
  out += std::string(name) + "{" + label + "=\"" + b + "\"} " + std::to_string(vb) + "\n";
}

}  // namespace registryd::proxy
