// What a user may do on the registry API: the REGISTRYD_ACCESS_* bits plugins receive, plus
// host-only bits, and the account kinds of the users file (FACTS.md section 4).
#pragma once

#include <registryd/plugin_abi.h>

#include <cstdint>
#include <optional>
#include <string_view>

namespace registryd::auth {

using access_bits = std::uint32_t;

inline constexpr access_bits access_pull = REGISTRYD_ACCESS_PULL;
inline constexpr access_bits access_push = REGISTRYD_ACCESS_PUSH;
inline constexpr access_bits access_delete = REGISTRYD_ACCESS_DELETE;
// Host-only: may list the repositories (/v2/_catalog, token scope registry:catalog:*). The
// host decides it before routing; plugins never see this bit (plugin_access masks it off).
inline constexpr access_bits access_catalog = 1u << 16;

// The bits of `held` that plugins know (REGISTRYD_ACCESS_*).
constexpr access_bits plugin_access(access_bits held) noexcept {
  return held & (access_pull | access_push | access_delete);
}

// The account kinds of the users file.
inline constexpr access_bits access_read_only = access_pull;
inline constexpr access_bits access_read_write =
    access_pull | access_push | access_delete | access_catalog;
// Replica sync between Local mode masters: list and copy, never delete.
inline constexpr access_bits access_mirror_puller = access_pull | access_catalog;
inline constexpr access_bits access_mirror_pusher = access_pull | access_push | access_catalog;

// "read-only", "read-write", "mirror-puller" or "mirror-pusher" as in the users file; nullopt
// for anything else (case-sensitive).
std::optional<access_bits> parse_account_kind(std::string_view kind) noexcept;

// The access a request with this HTTP method needs on a repository: GET and HEAD pull; POST,
// PUT and PATCH push; DELETE deletes. 0 for any other method (the registry API has no use for
// them). Methods are case-sensitive (RFC 9110).
access_bits required_access(std::string_view method) noexcept;

// True when `held` covers what `method` needs; false for methods the API does not use. An
// authenticated user who is refused here gets 403 (DENIED), not 401.
bool is_allowed(access_bits held, std::string_view method) noexcept;

}  // namespace registryd::auth
