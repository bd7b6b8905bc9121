#include <registryd/pki/subject_alt_names.hpp>

#include <arpa/inet.h>

#include <algorithm>
#include <cctype>

namespace registryd::pki {
namespace {

// Canonical text of an IP address, or "" when `text` is not one.
std::string canonical_ip(const std::string& text) {
  unsigned char buf[16];
  char out[INET6_ADDRSTRLEN];
  if (::inet_pton(AF_INET, text.c_str(), buf) == 1) {
    return ::inet_ntop(AF_INET, buf, out, sizeof out) ? out : "";
  }
  if (::inet_pton(AF_INET6, text.c_str(), buf) == 1) {
    return ::inet_ntop(AF_INET6, buf, out, sizeof out) ? out : "";
  }
  return {};
}

// RFC 1123 host names, optionally with one leading wildcard label. Returns the reason it is not
// one, or "" when it is.
std::string dns_name_problem(std::string_view name) {
  if (name.size() > 253) return "longer than 253 characters";
  if (name.starts_with("*.")) name.remove_prefix(2);
  if (name.empty()) return "empty";
  std::size_t start = 0;
  while (start <= name.size()) {
    const std::size_t dot = std::min(name.find('.', start), name.size());
    const std::string_view label = name.substr(start, dot - start);
    if (label.empty()) return "has an empty label";
    if (label.size() > 63) return "has a label longer than 63 characters";
    if (label.front() == '-' || label.back() == '-') return "has a label starting or ending with '-'";
    for (const char c : label) {
      if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-') {
        return std::string("contains '") + c + "', which is not allowed in a DNS name";
      }
    }
    start = dot + 1;
  }
  return {};
}

}  // namespace

std::string subject_alt_names::to_string() const {
  std::string out;
  for (const auto& d : dns) out += (out.empty() ? "" : ", ") + ("DNS:" + d);
  for (const auto& i : ips) out += (out.empty() ? "" : ", ") + ("IP:" + i);
  return out.empty() ? "(none)" : out;
}

util::status add_name(subject_alt_names& names, std::string_view name) {
  std::string text(name);
  if (text.empty()) return util::error{"empty name"};
  if (auto ip = canonical_ip(text); !ip.empty()) {
    names.ips.insert(std::move(ip));
    return util::ok();
  }
  std::transform(text.begin(), text.end(), text.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (text.size() > 1 && text.back() == '.') text.pop_back();  // absolute form, same name
  if (auto problem = dns_name_problem(text); !problem.empty()) {
    return util::error{"\"" + std::string(name) + "\" is neither an IP address nor a DNS name: " +
                       problem};
  }
  names.dns.insert(std::move(text));
  return util::ok();
}

util::result<subject_alt_names> serving_names(std::string_view node_ip,
                                              const std::vector<std::string>& extra_names) {
  subject_alt_names names;
  names.ips.insert("127.0.0.1");
  names.dns.insert("localhost");
  names.dns.insert("registry.d8-system.svc");
  if (!node_ip.empty()) {
    const std::string ip = canonical_ip(std::string(node_ip));
    if (ip.empty()) return util::error{"node IP \"" + std::string(node_ip) + "\" is not an IP address"};
    names.ips.insert(ip);
  }
  for (std::size_t i = 0; i < extra_names.size(); ++i) {
    if (auto st = add_name(names, extra_names[i]); !st) {
      return util::error{"extra name [" + std::to_string(i) + "]: " + st.error_message()};
    }
  }
  return names;
}

}  // namespace registryd::pki
