// The names a serving certificate is valid for, split into DNS names and IP addresses.
#pragma once

#include <registryd/util/result.hpp>

#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace registryd::pki {

struct subject_alt_names {
  std::set<std::string> dns;  // lower case, no trailing dot; "*.example.com" allowed
  std::set<std::string> ips;  // canonical text (inet_ntop), IPv4 or IPv6

  bool operator==(const subject_alt_names&) const = default;
  bool empty() const noexcept { return dns.empty() && ips.empty(); }
  // "DNS:localhost, IP:127.0.0.1" — for log lines and error messages.
  std::string to_string() const;
};

// Adds one name, deciding whether it is an IP address or a DNS name. Fails on anything that is
// neither (empty, spaces, underscores, a label longer than 63 characters, ...).
util::status add_name(subject_alt_names& names, std::string_view name);

// The names every serving certificate carries (FACTS.md section 5): 127.0.0.1, localhost,
// registry.d8-system.svc and the node's IP, plus the operator's extra names (DNS or IP).
// `node_ip` may be empty (a host without a known address yet). Errors name the bad entry.
util::result<subject_alt_names> serving_names(std::string_view node_ip,
                                              const std::vector<std::string>& extra_names);

}  // namespace registryd::pki
