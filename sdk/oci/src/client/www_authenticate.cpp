#include <registryd/oci/client/www_authenticate.hpp>

#include <registryd/oci/client/message.hpp>

#include <cctype>
#include <cstring>

namespace registryd::oci::client {
namespace {

bool is_tchar(char c) noexcept {
  return std::isalnum(static_cast<unsigned char>(c)) != 0 ||
         std::strchr("!#$%&'*+-.^_`|~", c) != nullptr;
}

bool is_token68_char(char c) noexcept {
  return std::isalnum(static_cast<unsigned char>(c)) != 0 || std::strchr("-._~+/", c) != nullptr;
}

bool is_space(char c) noexcept { return c == ' ' || c == '\t'; }

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

class cursor {
 public:
  explicit cursor(std::string_view text) : t_(text) {}
  bool end() const noexcept { return i_ >= t_.size(); }
  char peek() const noexcept { return end() ? '\0' : t_[i_]; }
  std::size_t pos() const noexcept { return i_; }
  void seek(std::size_t p) noexcept { i_ = p; }
  void skip_spaces() noexcept {
    while (!end() && is_space(t_[i_])) ++i_;
  }
  void skip_spaces_and_commas() noexcept {
    while (!end() && (is_space(t_[i_]) || t_[i_] == ',')) ++i_;
  }
  std::string_view token() noexcept {
    const std::size_t start = i_;
    while (!end() && is_tchar(t_[i_])) ++i_;
    return t_.substr(start, i_ - start);
  }
  // A token68 (RFC 7235) standing alone as the challenge's only item: returns it and moves
  // past it, or returns empty and stays.
  std::string_view token68() noexcept {
    const std::size_t start = i_;
    std::size_t j = i_;
    while (j < t_.size() && is_token68_char(t_[j])) ++j;
    if (j == start) return {};
    while (j < t_.size() && t_[j] == '=') ++j;
    std::size_t k = j;
    while (k < t_.size() && is_space(t_[k])) ++k;
    if (k < t_.size() && t_[k] != ',') return {};
    i_ = j;
    return t_.substr(start, j - start);
  }
  // After the opening quote: the unescaped content; an unterminated string runs to the end.
  std::string quoted() {
    std::string out;
    while (!end()) {
      const char c = t_[i_++];
      if (c == '"') return out;
      if (c == '\\' && !end()) {
        out.push_back(t_[i_++]);
        continue;
      }
      out.push_back(c);
    }
    return out;
  }

 private:
  std::string_view t_;
  std::size_t i_ = 0;
};

// Reads the items after a challenge's scheme until the next challenge's scheme or the end.
void read_params(cursor& in, auth_challenge& challenge) {
  bool first = true;
  for (;;) {
    in.skip_spaces();
    if (in.end()) return;
    if (in.peek() == ',') {
      in.seek(in.pos() + 1);
      first = false;
      continue;
    }
    const std::size_t item_start = in.pos();
    if (first) {
      const auto t68 = in.token68();
      if (!t68.empty()) {
        challenge.token68 = std::string(t68);
        first = false;
        continue;
      }
    }
    first = false;
    const auto name = in.token();
    if (name.empty()) {
      // Not a parameter and not a scheme: skip the garbage up to the next comma.
      while (!in.end() && in.peek() != ',') in.seek(in.pos() + 1);
      continue;
    }
    in.skip_spaces();
    if (in.peek() != '=') {
      // A token without '=': the scheme of the next challenge.
      in.seek(item_start);
      return;
    }
    in.seek(in.pos() + 1);
    in.skip_spaces();
    std::string value;
    if (in.peek() == '"') {
      in.seek(in.pos() + 1);
      value = in.quoted();
    } else {
      value = std::string(in.token());
    }
    challenge.params.emplace(lower(name), std::move(value));
  }
}

}  // namespace

std::optional<std::string> auth_challenge::param(std::string_view name) const {
  const auto it = params.find(std::string(name));
  if (it == params.end()) return std::nullopt;
  return it->second;
}

std::vector<auth_challenge> parse_www_authenticate(std::string_view value) {
  std::vector<auth_challenge> out;
  cursor in(value);
  for (;;) {
    in.skip_spaces_and_commas();
    if (in.end()) break;
    const auto scheme = in.token();
    if (scheme.empty()) {
      // Unreadable: skip to the next list element.
      while (!in.end() && in.peek() != ',') in.seek(in.pos() + 1);
      continue;
    }
    // A scheme must be followed by a space, a comma or the end; "a=b" here is a stray param.
    if (!in.end() && !is_space(in.peek()) && in.peek() != ',') {
      while (!in.end() && in.peek() != ',') in.seek(in.pos() + 1);
      continue;
    }
    auth_challenge challenge;
    challenge.scheme = lower(scheme);
    read_params(in, challenge);
    out.push_back(std::move(challenge));
  }
  return out;
}

std::vector<auth_challenge> parse_www_authenticate(const std::vector<std::string_view>& values) {
  std::vector<auth_challenge> out;
  for (const auto v : values) {
    auto part = parse_www_authenticate(v);
    for (auto& c : part) out.push_back(std::move(c));
  }
  return out;
}

const auth_challenge* find_challenge(const std::vector<auth_challenge>& challenges,
                                     std::string_view scheme) {
  for (const auto& c : challenges) {
    if (iequals(c.scheme, scheme)) return &c;
  }
  return nullptr;
}

}  // namespace registryd::oci::client
