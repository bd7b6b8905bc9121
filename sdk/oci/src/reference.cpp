#include <registryd/oci/reference.hpp>

namespace registryd::oci {
namespace {

bool is_lower_alnum(char c) noexcept { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }

// One path component: alnum runs joined by '.', '_', '__' or one or more '-'.
bool is_valid_component(std::string_view c) noexcept {
  if (c.empty() || !is_lower_alnum(c.front()) || !is_lower_alnum(c.back())) return false;
  std::size_t i = 0;
  while (i < c.size()) {
    if (is_lower_alnum(c[i])) {
      ++i;
      continue;
    }
    // A separator run, followed by an alnum (guaranteed since the last char is alnum).
    const std::size_t start = i;
    while (i < c.size() && !is_lower_alnum(c[i])) ++i;
    const std::string_view sep = c.substr(start, i - start);
    const bool dashes = sep.find_first_not_of('-') == std::string_view::npos;
    if (!(sep == "." || sep == "_" || sep == "__" || dashes)) return false;
  }
  return true;
}

bool is_registry_component(std::string_view c) noexcept {
  return c.find('.') != std::string_view::npos || c.find(':') != std::string_view::npos ||
         c == "localhost";
}

bool fail(std::string* error, std::string message) {
  if (error != nullptr) *error = std::move(message);
  return false;
}

}  // namespace

bool is_valid_repository_name(std::string_view name) noexcept {
  if (name.empty() || name.size() > max_repository_name) return false;
  while (true) {
    const auto slash = name.find('/');
    if (!is_valid_component(name.substr(0, slash))) return false;
    if (slash == std::string_view::npos) return true;
    name.remove_prefix(slash + 1);
  }
}

bool is_valid_tag(std::string_view tag) noexcept {
  if (tag.empty() || tag.size() > 128) return false;
  for (std::size_t i = 0; i < tag.size(); ++i) {
    const char c = tag[i];
    const bool word = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
    if (!(word || (i > 0 && (c == '.' || c == '-')))) return false;
  }
  return true;
}

std::string image_reference::str() const {
  std::string s = registry + "/" + repository;
  if (tag) s += ":" + *tag;
  if (digest) s += "@" + digest->str();
  return s;
}

std::string image_reference::manifest_reference() const {
  if (digest) return digest->str();
  return tag.value_or("latest");
}

std::optional<image_reference> image_reference::parse(std::string_view text, std::string* error) {
  image_reference ref;
  std::string_view rest = text;
  if (const auto at = rest.find('@'); at != std::string_view::npos) {
    ref.digest = digest::parse(rest.substr(at + 1));
    if (!ref.digest) {
      fail(error, "invalid digest \"" + std::string(rest.substr(at + 1)) + "\"");
      return std::nullopt;
    }
    rest = rest.substr(0, at);
  }
  const auto slash = rest.find('/');
  if (slash == std::string_view::npos || !is_registry_component(rest.substr(0, slash))) {
    fail(error, "\"" + std::string(text) + "\" does not name a registry (host[:port]/repository)");
    return std::nullopt;
  }
  ref.registry = std::string(rest.substr(0, slash));
  rest = rest.substr(slash + 1);
  // A ':' after the last '/' starts the tag (a ':' before it belongs to the registry port).
  if (const auto colon = rest.rfind(':'); colon != std::string_view::npos &&
                                          rest.find('/', colon) == std::string_view::npos) {
    const std::string_view tag = rest.substr(colon + 1);
    if (!is_valid_tag(tag)) {
      fail(error, "invalid tag \"" + std::string(tag) + "\"");
      return std::nullopt;
    }
    ref.tag = std::string(tag);
    rest = rest.substr(0, colon);
  }
  if (!is_valid_repository_name(rest)) {
    fail(error, "invalid repository name \"" + std::string(rest) + "\"");
    return std::nullopt;
  }
  ref.repository = std::string(rest);
  if (!ref.tag && !ref.digest) ref.tag = "latest";
  return ref;
}

std::optional<repository_location> repository_location::parse(std::string_view text) {
  if (text.empty()) return std::nullopt;
  const auto slash = text.find('/');
  repository_location loc;
  loc.registry = std::string(text.substr(0, slash));
  if (slash != std::string_view::npos) loc.path = std::string(text.substr(slash + 1));
  // imagesRepo allows upper case (FACTS.md section 1), so only empty components are refused.
  if (loc.registry.empty() || loc.path.find("//") != std::string::npos ||
      (!loc.path.empty() && (loc.path.front() == '/' || loc.path.back() == '/'))) {
    return std::nullopt;
  }
  return loc;
}

}  // namespace registryd::oci
