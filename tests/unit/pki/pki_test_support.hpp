// The PKI tests use the shared test helpers (scratch dirs, running openssl).
#pragma once

#include <test_support.hpp>

namespace pki_test {
using namespace registryd::test;
}  // namespace pki_test
