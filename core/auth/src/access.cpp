#include <registryd/auth/access.hpp>

namespace registryd::auth {

std::optional<access_bits> parse_account_kind(std::string_view kind) noexcept {
  if (kind == "read-only") return access_read_only;
  if (kind == "read-write") return access_read_write;
  if (kind == "mirror-puller") return access_mirror_puller;
  if (kind == "mirror-pusher") return access_mirror_pusher;
  return std::nullopt;
}

access_bits required_access(std::string_view method) noexcept {
  if (method == "GET" || method == "HEAD") return access_pull;
  if (method == "POST" || method == "PUT" || method == "PATCH") return access_push;
  if (method == "DELETE") return access_delete;
  return 0;
}

bool is_allowed(access_bits held, std::string_view method) noexcept {
  const access_bits needed = required_access(method);
  return needed != 0 && (held & needed) == needed;
}

}  // namespace registryd::auth
