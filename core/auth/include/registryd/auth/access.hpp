// What a user may do on the registry API, as the REGISTRYD_ACCESS_* bits plugins receive.
#pragma once

#include <registryd/plugin_abi.h>

#include <cstdint>
#include <string_view>

namespace registryd::auth {

using access_bits = std::uint32_t;

inline constexpr access_bits access_pull = REGISTRYD_ACCESS_PULL;
inline constexpr access_bits access_push = REGISTRYD_ACCESS_PUSH;
inline constexpr access_bits access_delete = REGISTRYD_ACCESS_DELETE;

// The two account kinds of the users file.
inline constexpr access_bits access_read_only = access_pull;
inline constexpr access_bits access_read_write = access_pull | access_push | access_delete;

// The access a request with this HTTP method needs on /v2/: GET and HEAD pull; POST, PUT and
// PATCH push; DELETE deletes. 0 for any other method (the registry API has no use for them).
// Methods are case-sensitive (RFC 9110).
access_bits required_access(std::string_view method) noexcept;

// True when `held` covers what `method` needs; false for methods the API does not use. An
// authenticated user who is refused here gets 403 (DENIED), not 401.
bool is_allowed(access_bits held, std::string_view method) noexcept;

}  // namespace registryd::auth
