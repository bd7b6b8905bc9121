#include "url.hpp"

#include <cctype>
#include <charconv>

namespace registryd::oci::client::detail {
namespace {

int default_port(std::string_view scheme) { return scheme == "https" ? 443 : 80; }

}  // namespace

std::string url::origin() const { return scheme + "://" + host + ":" + std::to_string(port); }

std::string url::authority() const {
  if (port == default_port(scheme)) return host;
  return host + ":" + std::to_string(port);
}

std::optional<url> parse_url(std::string_view text) {
  url out;
  const auto sep = text.find("://");
  if (sep == std::string_view::npos) return std::nullopt;
  std::string scheme(text.substr(0, sep));
  for (auto& c : scheme) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (scheme != "http" && scheme != "https") return std::nullopt;
  out.scheme = scheme;
  text.remove_prefix(sep + 3);
  const auto hash = text.find('#');
  if (hash != std::string_view::npos) text = text.substr(0, hash);
  const auto path_start = text.find_first_of("/?");
  std::string_view authority = text.substr(0, path_start);
  std::string_view rest = path_start == std::string_view::npos ? std::string_view{} : text.substr(path_start);
  if (authority.empty() || authority.find('@') != std::string_view::npos) return std::nullopt;

  std::string_view host = authority;
  std::string_view port;
  if (authority.front() == '[') {
    const auto close = authority.find(']');
    if (close == std::string_view::npos) return std::nullopt;
    host = authority.substr(0, close + 1);
    const auto after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return std::nullopt;
      port = after.substr(1);
    }
  } else {
    const auto colon = authority.rfind(':');
    if (colon != std::string_view::npos) {
      host = authority.substr(0, colon);
      port = authority.substr(colon + 1);
    }
  }
  if (host.empty()) return std::nullopt;
  out.host = std::string(host);
  for (auto& c : out.host) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  out.port = default_port(out.scheme);
  if (!port.empty()) {
    int p = 0;
    const auto [ptr, ec] = std::from_chars(port.data(), port.data() + port.size(), p);
    if (ec != std::errc() || ptr != port.data() + port.size() || p <= 0 || p > 65535) return std::nullopt;
    out.port = p;
  }
  out.target = rest.empty() ? "/" : std::string(rest);
  if (out.target.front() == '?') out.target.insert(0, "/");
  return out;
}

std::optional<url> resolve_url(const url& base, std::string_view reference) {
  if (reference.empty()) return std::nullopt;
  if (reference.find("://") != std::string_view::npos) return parse_url(reference);
  if (reference.size() >= 2 && reference[0] == '/' && reference[1] == '/') {
    return parse_url(base.scheme + ":" + std::string(reference));
  }
  url out = base;
  if (reference.front() == '/') {
    out.target = std::string(reference);
  } else if (reference.front() == '?') {
    out.target = base.target.substr(0, base.target.find('?')) + std::string(reference);
  } else {
    const std::string path = base.target.substr(0, base.target.find('?'));
    out.target = path.substr(0, path.rfind('/') + 1) + std::string(reference);
  }
  const auto hash = out.target.find('#');
  if (hash != std::string::npos) out.target.resize(hash);
  return out;
}

std::string encode_query_value(std::string_view value) {
  static constexpr char hex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(value.size());
  for (const char ch : value) {
    const auto c = static_cast<unsigned char>(ch);
    if (std::isalnum(c) != 0 || c == '-' || c == '.' || c == '_' || c == '~') {
      out.push_back(ch);
    } else {
      out.push_back('%');
      out.push_back(hex[c >> 4]);
      out.push_back(hex[c & 15]);
    }
  }
  return out;
}

}  // namespace registryd::oci::client::detail
