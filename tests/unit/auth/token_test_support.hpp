// A host PKI directory (CA, serving certificate, token signer) made by the real code, for the
// token tests.
#pragma once

#include "auth_test_support.hpp"

#include <registryd/auth/token_authority.hpp>
#include <registryd/pki/pki_directory.hpp>
#include <registryd/pki/token_signer.hpp>

#include <chrono>
#include <memory>

namespace auth_test {

// `dir` gets ca.crt/ca.key, tls.crt/tls.key and token.crt/token.key.
inline void make_pki(const fs::path& dir) {
  const auto now = std::chrono::system_clock::now();
  auto names = registryd::pki::serving_names("127.0.0.1", {});
  REQUIRE(names.ok());
  registryd::pki::pki_options options;
  options.dir = dir;
  REQUIRE(registryd::pki::ensure(options, *names, now).ok());
  REQUIRE(registryd::pki::ensure_token_signer(dir, now).ok());
}

inline std::shared_ptr<const registryd::auth::token_authority> authority_in(
    const fs::path& dir, registryd::auth::token_settings settings = {}) {
  auto a = registryd::auth::token_authority::load(dir, std::move(settings));
  INFO((a.ok() ? "" : a.error_message()));
  REQUIRE(a.ok());
  return *a;
}

}  // namespace auth_test
