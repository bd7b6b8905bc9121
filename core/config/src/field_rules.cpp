// The single-field rules of the registry settings that are more than a type: the imagesRepo
// pattern and the ttl syntax. Hand-written matchers rather than std::regex: the input is
// untrusted and std::regex recurses per character.
#include <registryd/config/module_config.hpp>

#include "yaml_reader.hpp"

#include <charconv>
#include <cstdint>
#include <limits>

namespace registryd::config {
namespace {

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_alnum(char c) { return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool is_host_char(char c) { return is_alnum(c) || c == '.' || c == '-'; }
bool is_path_char(char c) { return is_host_char(c) || c == '_'; }

// The platform's own patterns (the module's OpenAPI schema), which these matchers implement;
// errors say them in words:
//   imagesRepo  ^[0-9a-zA-Z\.\-]+(\:[0-9]{1,5})?(\/[0-9a-zA-Z\.\-\_]+)*$
//   ttl         ^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$
std::string pattern_error(std::string_view repo) {
  return "must be host[:port][/path], like registry.example.com:5000/deckhouse/ee: a host of "
         "letters, digits, '.' and '-', an optional port of up to 5 digits, then path segments of "
         "letters, digits, '.', '-' and '_' (no scheme, no trailing '/', no tag); got " +
         detail::quoted(repo);
}

}  // namespace

std::optional<std::string> check_images_repo(std::string_view repo) {
  if (repo.empty()) return std::string("must not be empty");
  if (repo.find("://") != std::string_view::npos) {
    return "must not include a scheme (set scheme: HTTP or HTTPS instead), got " +
           detail::quoted(repo);
  }
  std::size_t i = 0;
  while (i < repo.size() && is_host_char(repo[i])) ++i;
  if (i == 0) return pattern_error(repo);
  if (i < repo.size() && repo[i] == ':') {
    const std::size_t start = ++i;
    while (i < repo.size() && is_digit(repo[i])) ++i;
    const std::size_t digits = i - start;
    if (digits == 0 || digits > 5) return pattern_error(repo);
    unsigned port = 0;
    std::from_chars(repo.data() + start, repo.data() + i, port);
    if (port > 65535) {
      return "port must be at most 65535, got " + std::string(repo.substr(start, digits));
    }
  }
  while (i < repo.size()) {
    if (repo[i] != '/') return pattern_error(repo);
    const std::size_t start = ++i;
    while (i < repo.size() && is_path_char(repo[i])) ++i;
    if (i == start) return pattern_error(repo);
  }
  return std::nullopt;
}

util::result<std::chrono::seconds> parse_duration(std::string_view text) {
  if (text.empty()) return util::error{"must not be empty"};
  const auto syntax_error = [&] {
    return util::error{"must be a duration like 72h, 1h30m or 300s: whole numbers each followed by "
                       "h, m or s, in that order, each unit at most once; got " +
                       detail::quoted(text)};
  };
  constexpr std::string_view units = "hms";
  constexpr std::int64_t unit_seconds[] = {3600, 60, 1};
  std::size_t next_unit = 0;  // units appear at most once each, in the order h, m, s
  std::int64_t total = 0;
  std::size_t i = 0;
  while (i < text.size()) {
    const std::size_t start = i;
    while (i < text.size() && is_digit(text[i])) ++i;
    if (i == start || i == text.size()) return syntax_error();
    const std::size_t unit = units.find(text[i]);
    if (unit == std::string_view::npos || unit < next_unit) return syntax_error();
    std::int64_t amount = 0;
    const auto [end, ec] = std::from_chars(text.data() + start, text.data() + i, amount);
    (void)end;
    std::int64_t seconds = 0;
    if (ec != std::errc() || __builtin_mul_overflow(amount, unit_seconds[unit], &seconds) ||
        __builtin_add_overflow(total, seconds, &total)) {
      return util::error{"is too large, got " + detail::quoted(text)};
    }
    next_unit = unit + 1;
    ++i;
  }
  return std::chrono::seconds(total);
}

}  // namespace registryd::config
