// Helpers for the auth tests: the shared ones, and hashes made by the real htpasswd.
#pragma once

#include <test_support.hpp>

#include <string>

namespace auth_test {

using namespace registryd::test;

// A bcrypt hash made by Apache's htpasswd, the tool the docs tell operators to use.
// Cost 4 keeps the tests fast.
inline std::string htpasswd_hash(const std::string& user, const std::string& password) {
  std::string line = output_of("htpasswd -nbBC 4 '" + user + "' '" + password + "'");
  while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.pop_back();
  const auto colon = line.find(':');
  REQUIRE(colon != std::string::npos);
  REQUIRE(line.substr(0, colon) == user);
  return line.substr(colon + 1);
}

}  // namespace auth_test
