#include <registryd/oci/semver.hpp>

#include <algorithm>
#include <cctype>
#include <charconv>

namespace registryd::oci {
namespace {

bool all_digits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(),
                                   [](char c) { return std::isdigit(static_cast<unsigned char>(c)) != 0; });
}

// A numeric part: digits, no leading zero unless it is "0", fits in 64 bits.
std::optional<std::uint64_t> number(std::string_view s) {
  if (!all_digits(s) || (s.size() > 1 && s[0] == '0')) return std::nullopt;
  std::uint64_t v = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return v;
}

bool is_identifier(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '-';
  });
}

std::vector<std::string_view> split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  for (;;) {
    const auto at = s.find(sep);
    out.push_back(s.substr(0, at));
    if (at == std::string_view::npos) return out;
    s.remove_prefix(at + 1);
  }
}

// Pre-release identifiers compare numerically when both are numeric, numeric ones sort before
// alphanumeric ones, others compare as ASCII.
std::weak_ordering compare_identifier(const std::string& a, const std::string& b) {
  const bool an = all_digits(a);
  const bool bn = all_digits(b);
  if (an && bn) {
    if (a.size() != b.size()) return a.size() <=> b.size();  // no leading zeros: longer is larger
    return a.compare(b) <=> 0;
  }
  if (an != bn) return an ? std::weak_ordering::less : std::weak_ordering::greater;
  return a.compare(b) <=> 0;
}

}  // namespace

std::optional<semver> semver::parse(std::string_view text) {
  if (!text.empty() && text.front() == 'v') text.remove_prefix(1);
  semver v;
  if (const auto plus = text.find('+'); plus != std::string_view::npos) {
    const auto build = text.substr(plus + 1);
    for (const auto id : split(build, '.')) {
      if (!is_identifier(id)) return std::nullopt;
    }
    v.build = std::string(build);
    text = text.substr(0, plus);
  }
  if (const auto dash = text.find('-'); dash != std::string_view::npos) {
    for (const auto id : split(text.substr(dash + 1), '.')) {
      if (!is_identifier(id)) return std::nullopt;
      if (all_digits(id) && id.size() > 1 && id[0] == '0') return std::nullopt;
      v.prerelease.emplace_back(id);
    }
    text = text.substr(0, dash);
  }
  const auto parts = split(text, '.');
  if (parts.size() != 3) return std::nullopt;
  const auto major = number(parts[0]);
  const auto minor = number(parts[1]);
  const auto patch = number(parts[2]);
  if (!major || !minor || !patch) return std::nullopt;
  v.major = *major;
  v.minor = *minor;
  v.patch = *patch;
  return v;
}

std::string semver::str() const {
  std::string out = std::to_string(major) + "." + std::to_string(minor) + "." + std::to_string(patch);
  for (std::size_t i = 0; i < prerelease.size(); ++i) out += (i == 0 ? "-" : ".") + prerelease[i];
  if (!build.empty()) out += "+" + build;
  return out;
}

std::weak_ordering operator<=>(const semver& a, const semver& b) {
  if (a.major != b.major) return a.major <=> b.major;
  if (a.minor != b.minor) return a.minor <=> b.minor;
  if (a.patch != b.patch) return a.patch <=> b.patch;
  // A pre-release sorts before its release.
  if (a.prerelease.empty() != b.prerelease.empty()) {
    return a.prerelease.empty() ? std::weak_ordering::greater : std::weak_ordering::less;
  }
  const std::size_t n = std::min(a.prerelease.size(), b.prerelease.size());
  for (std::size_t i = 0; i < n; ++i) {
    const auto c = compare_identifier(a.prerelease[i], b.prerelease[i]);
    if (c != 0) return c;
  }
  return a.prerelease.size() <=> b.prerelease.size();
}

bool is_release_tag(std::string_view tag) {
  if (tag.size() < 6 || tag.front() != 'v') return false;
  const auto v = semver::parse(tag);
  return v && v->is_release() && v->build.empty();
}

std::vector<std::string> newest_releases(const std::vector<std::string>& tags, std::size_t n) {
  std::vector<std::pair<semver, std::string>> releases;
  for (const auto& t : tags) {
    if (!is_release_tag(t)) continue;
    releases.emplace_back(*semver::parse(t), t);
  }
  std::sort(releases.begin(), releases.end(),
            [](const auto& a, const auto& b) { return (a.first <=> b.first) > 0; });
  std::vector<std::string> out;
  for (const auto& [version, tag] : releases) {
    if (out.size() == n) break;
    if (!out.empty() && out.back() == tag) continue;
    out.push_back(tag);
  }
  return out;
}

}  // namespace registryd::oci
