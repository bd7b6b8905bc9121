#include <registryd/auth/basic_credentials.hpp>
#include <registryd/oci/base64.hpp>
#include <registryd/sdk/text.hpp>

#include <openssl/crypto.h>

#include <cctype>
#include <string>

namespace registryd::auth {
namespace {

constexpr std::size_t max_header = 4096;

bool is_ows(char c) { return c == ' ' || c == '\t'; }

using sdk::trim;

}  // namespace

std::optional<basic_credentials> parse_basic_authorization(std::string_view header_value) {
  if (header_value.size() > max_header) return std::nullopt;
  const std::string_view value = trim(header_value);
  constexpr std::string_view scheme = "basic";
  if (value.size() <= scheme.size() || !is_ows(value[scheme.size()])) return std::nullopt;
  for (std::size_t i = 0; i < scheme.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(value[i])) != scheme[i]) return std::nullopt;
  }
  const std::string_view token = trim(value.substr(scheme.size()));
  auto decoded = oci::base64_decode(token);
  if (!decoded) return std::nullopt;

  std::optional<basic_credentials> result;
  const std::size_t colon = decoded->find(':');
  if (colon != std::string::npos && colon > 0) {
    basic_credentials creds{decoded->substr(0, colon), decoded->substr(colon + 1)};
    bool ok = creds.password.find('\0') == std::string::npos;
    for (const char c : creds.username) {
      if (std::iscntrl(static_cast<unsigned char>(c))) ok = false;
    }
    if (ok) result = std::move(creds);
  }
  OPENSSL_cleanse(decoded->data(), decoded->size());
  return result;
}

}  // namespace registryd::auth

namespace registryd::auth {

std::string basic_authorization(std::string_view username, std::string_view password) {
  return "Basic " + oci::base64_encode(std::string(username) + ":" + std::string(password));
}

}  // namespace registryd::auth
