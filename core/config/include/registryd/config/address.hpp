// Network address rules shared by the host settings and whoever binds or dials them.
#pragma once

#include <registryd/util/result.hpp>

#include <cstdint>
#include <string>
#include <string_view>

namespace registryd::config {

struct host_port {
  std::string host;  // an IP address (IPv6 without brackets) or a DNS name
  std::uint16_t port = 0;

  friend bool operator==(const host_port&, const host_port&) = default;
};

// "host:port" with host an IPv4 address, a bracketed IPv6 address ("[::1]:5001") or a DNS
// name, and port a decimal number from 0 to 65535 (0: any free port).
util::result<host_port> parse_host_port(std::string_view text);

// A literal IPv4 or IPv6 address (no brackets, no zone).
bool is_ip_address(std::string_view text);
// 0.0.0.0 or ::, which name no particular host.
bool is_unspecified_ip(std::string_view text);
// A DNS name: dot-separated labels of letters, digits and '-', each 1-63 characters, not
// starting or ending with '-', at most 253 characters in all; a name whose labels are all
// numeric is rejected (it would be a mistyped IPv4 address).
bool is_dns_name(std::string_view text);

}  // namespace registryd::config
