// HTTP basic authentication (RFC 7617) on the wire.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace registryd::auth {

// The WWW-Authenticate value sent with a 401.
inline constexpr std::string_view basic_challenge = "Basic realm=\"registryd\"";

struct basic_credentials {
  std::string username;
  std::string password;
};

// Parses an Authorization header value "Basic <base64(user:password)>". The scheme is
// case-insensitive; padding may be present or left off. Returns nullopt for anything else:
// another scheme, bad base64, no ':', an empty user name, control characters in the user name,
// a NUL in the password, or a value longer than 4 KiB.
std::optional<basic_credentials> parse_basic_authorization(std::string_view header_value);

// The Authorization header value for these credentials ("Basic <base64(user:password)>"):
// the front door turns an OAuth2 password grant into the same check as basic auth.
std::string basic_authorization(std::string_view username, std::string_view password);

}  // namespace registryd::auth
