#include "http_message.hpp"

#include <httplib.h>
#include <unistd.h>

namespace registryd::frontdoor {

owned_fd::~owned_fd() {
  if (fd >= 0) ::close(fd);
}

std::string http_request::header(std::string_view name) const {
  for (const auto& [n, v] : headers) {
    if (iequals(n, name)) return v;
  }
  return {};
}

bool http_request::has_header(std::string_view name) const {
  for (const auto& h : headers) {
    if (iequals(h.first, name)) return true;
  }
  return false;
}

std::multimap<std::string, std::string> http_request::params() const {
  httplib::Params out;
  httplib::detail::parse_query_text(query, out);
  return out;
}

std::string http_request::param(std::string_view name) const {
  const auto all = params();
  const auto it = all.find(std::string(name));
  return it == all.end() ? std::string() : it->second;
}

}  // namespace registryd::frontdoor
