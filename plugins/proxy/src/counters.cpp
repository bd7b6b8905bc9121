#include "counters.hpp"

namespace registryd::proxy {

void counter2(std::string& out, const char* name, const char* help, const char* label, const char* a,
              std::uint64_t va, const char* b, std::uint64_t vb) {
  out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " counter\n";
  out += std::string(name) + "{" + label + "=\"" + a + "\"} " + std::to_string(va) + "\n";
  out += std::string(name) + "{" + label + "=\"" + b + "\"} " + std::to_string(vb) + "\n";
}

}  // namespace registryd::proxy
