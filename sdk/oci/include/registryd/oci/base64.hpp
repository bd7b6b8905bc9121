// Standard base64 (RFC 4648 section 4), as HTTP Basic credentials and docker config files
// (`auths.<host>.auth`, a ModuleSource's `dockerCfg`) carry it.
//
// Thread-safety: pure functions.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace registryd::oci {

// Padded base64 of `bytes`.
std::string base64_encode(std::string_view bytes);

// The bytes of standard base64 text, padded or not; nullopt for anything else (characters
// outside the alphabet, whitespace, '=' anywhere but at the end, a lone last character, or
// padding that does not fit). Intermediate copies are wiped: the text is often a secret.
std::optional<std::string> base64_decode(std::string_view text);

}  // namespace registryd::oci
