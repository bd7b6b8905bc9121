#include <registryd/oci/content_negotiation.hpp>

#include <registryd/oci/manifest.hpp>
#include <registryd/oci/media_types.hpp>
#include <registryd/sdk/text.hpp>

#include <cctype>
#include <cstdlib>

namespace registryd::oci {
namespace {

using sdk::trim;

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// RFC 9110 qvalue: 0, 0.x.., 1, 1.0..; anything else makes the entry malformed.
bool parse_quality(std::string_view text, double& out) {
  text = trim(text);
  if (text.size() >= 2 && text.front() == '"' && text.back() == '"') {
    text = text.substr(1, text.size() - 2);
  }
  if (text.empty() || text.size() > 5) return false;
  if (text[0] != '0' && text[0] != '1') return false;
  for (std::size_t i = 1; i < text.size(); ++i) {
    if (i == 1 ? text[i] != '.' : std::isdigit(static_cast<unsigned char>(text[i])) == 0) {
      return false;
    }
  }
  out = std::strtod(std::string(text).c_str(), nullptr);
  return out >= 0.0 && out <= 1.0;
}

// 3 for an exact match, 2 for type/*, 1 for */*, 0 for none.
int specificity(std::string_view pattern, std::string_view type) {
  if (pattern == type) return 3;
  if (pattern == "*/*") return 1;
  if (pattern.size() >= 2 && pattern.substr(pattern.size() - 2) == "/*") {
    const auto prefix = pattern.substr(0, pattern.size() - 1);  // "type/"
    if (type.substr(0, prefix.size()) == prefix) return 2;
  }
  return 0;
}

}  // namespace

std::vector<accept_entry> parse_accept(std::string_view accept) {
  std::vector<accept_entry> out;
  while (!accept.empty()) {
    const auto comma = accept.find(',');
    std::string_view item = accept.substr(0, comma);
    accept = comma == std::string_view::npos ? std::string_view{} : accept.substr(comma + 1);

    const auto semicolon = item.find(';');
    const std::string_view type = trim(item.substr(0, semicolon));
    const auto slash = type.find('/');
    if (type.empty() || slash == std::string_view::npos || slash == 0 ||
        slash + 1 == type.size() || type.find_first_of(" \t") != std::string_view::npos) {
      continue;
    }
    accept_entry entry{.media_type = lower(type), .quality = 1.0};
    bool ok = true;
    std::string_view params =
        semicolon == std::string_view::npos ? std::string_view{} : item.substr(semicolon + 1);
    while (!params.empty()) {
      const auto next = params.find(';');
      const std::string_view param = trim(params.substr(0, next));
      params = next == std::string_view::npos ? std::string_view{} : params.substr(next + 1);
      const auto eq = param.find('=');
      if (eq == std::string_view::npos) continue;
      if (lower(trim(param.substr(0, eq))) == "q" &&
          !parse_quality(param.substr(eq + 1), entry.quality)) {
        ok = false;
      }
    }
    if (ok) out.push_back(std::move(entry));
  }
  return out;
}

bool accepts(std::string_view accept, std::string_view media_type) {
  if (trim(accept).empty()) return true;
  const std::string type = lower(media_type);
  int best = 0;
  double quality = 0.0;
  for (const auto& e : parse_accept(accept)) {
    const int s = specificity(e.media_type, type);
    if (s > best || (s == best && s > 0 && e.quality > quality)) {
      best = s;
      quality = e.quality;
    }
  }
  return best > 0 && quality > 0.0;
}

negotiation negotiate_manifest(std::string_view accept, std::string_view stored_media_type,
                               bool by_tag) {
  if (stored_media_type == media_type::oci_manifest || stored_media_type == media_type::oci_index) {
    return accepts(accept, stored_media_type) ? negotiation::serve : negotiation::refuse;
  }
  if (stored_media_type == media_type::docker_manifest_list) {
    if (by_tag && !accepts(accept, stored_media_type)) return negotiation::serve_platform_child;
    return negotiation::serve;
  }
  return negotiation::serve;
}

std::string negotiation_message(std::string_view stored_media_type) {
  if (stored_media_type == media_type::oci_index) {
    return "OCI index found, but accept header does not support OCI indexes";
  }
  if (stored_media_type == media_type::oci_manifest) {
    return "OCI manifest found, but accept header does not support OCI manifests";
  }
  return "manifest of type " + std::string(stored_media_type) +
         " found, but accept header does not support it";
}

std::optional<digest> default_platform_child(const std::string& bytes, std::string_view media_type) {
  auto m = parse_manifest(bytes, media_type);
  if (!m) return std::nullopt;
  for (const auto& c : m->children()) {
    if (c.platform.is_object() && c.platform.value("architecture", "") == "amd64" &&
        c.platform.value("os", "") == "linux") {
      return c.digest;
    }
  }
  return std::nullopt;
}

}  // namespace registryd::oci
