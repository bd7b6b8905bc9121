#include <registryd/config/address.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <algorithm>
#include <charconv>

namespace registryd::config {
namespace {

bool is_ipv4(std::string_view text) {
  in_addr addr{};
  return inet_pton(AF_INET, std::string(text).c_str(), &addr) == 1;
}

bool is_ipv6(std::string_view text) {
  in6_addr addr{};
  return inet_pton(AF_INET6, std::string(text).c_str(), &addr) == 1;
}

std::string quote(std::string_view text) { return "\"" + std::string(text) + "\""; }

util::error bad_form(std::string_view text) {
  return util::error{"must be host:port (e.g. 127.0.0.1:5001 or [::1]:5001), got " + quote(text)};
}

}  // namespace

bool is_ip_address(std::string_view text) {
  if (text.empty() || text.size() > 45) return false;
  return is_ipv4(text) || is_ipv6(text);
}

bool is_unspecified_ip(std::string_view text) {
  in_addr v4{};
  if (inet_pton(AF_INET, std::string(text).c_str(), &v4) == 1) return v4.s_addr == INADDR_ANY;
  in6_addr v6{};
  if (inet_pton(AF_INET6, std::string(text).c_str(), &v6) == 1) {
    return IN6_IS_ADDR_UNSPECIFIED(&v6);
  }
  return false;
}

bool is_dns_name(std::string_view text) {
  if (text.empty() || text.size() > 253) return false;
  bool all_numeric = true;
  std::size_t start = 0;
  while (start <= text.size()) {
    std::size_t end = text.find('.', start);
    if (end == std::string_view::npos) end = text.size();
    const std::string_view label = text.substr(start, end - start);
    if (label.empty() || label.size() > 63) return false;
    if (label.front() == '-' || label.back() == '-') return false;
    for (const char c : label) {
      const bool digit = c >= '0' && c <= '9';
      const bool letter = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
      if (!digit && !letter && c != '-') return false;
      if (!digit) all_numeric = false;
    }
    start = end + 1;
  }
  return !all_numeric;
}

util::result<host_port> parse_host_port(std::string_view text) {
  std::string_view host;
  std::string_view port;
  if (text.starts_with('[')) {
    const std::size_t close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      return bad_form(text);
    }
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
    if (!is_ipv6(host)) {
      return util::error{"host " + quote(host) + " in brackets must be an IPv6 address"};
    }
  } else {
    const std::size_t colon = text.rfind(':');
    if (colon == std::string_view::npos) return bad_form(text);
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
    if (host.find(':') != std::string_view::npos) {
      return util::error{"an IPv6 host must be in brackets (e.g. [::1]:5001), got " + quote(text)};
    }
    if (host.empty()) {
      return util::error{
          "the host is missing (write 0.0.0.0:PORT to listen on every address), got " +
          quote(text)};
    }
    if (!is_ipv4(host) && !is_dns_name(host)) {
      return util::error{"host " + quote(host) + " is neither an IP address nor a DNS name"};
    }
  }
  unsigned value = 0;
  const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  const bool digits_only = !port.empty() && std::all_of(port.begin(), port.end(), [](char c) {
    return c >= '0' && c <= '9';
  });
  if (!digits_only || ec != std::errc() || end != port.data() + port.size() || value > 65535) {
    return util::error{"port must be a number from 0 to 65535, got " + quote(port)};
  }
  return host_port{std::string(host), static_cast<std::uint16_t>(value)};
}

}  // namespace registryd::config
