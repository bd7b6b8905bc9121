// The records registryd seals itself (record_sealer.cpp), read back by OpenSSL's own client: every
// cipher and version the sealer takes, and the ones it leaves to OpenSSL.
#include "record_sealer.hpp"

#include <catch2/catch.hpp>
#include <openssl/ssl.h>

#include <string>

namespace {

using registryd::frontdoor::check_record_sealing;

struct cipher_case {
  int version;
  const char* cipher;
  bool sealed_here;  // whether the record BIO takes the keys (else OpenSSL seals)
};

}  // namespace

TEST_CASE("records sealed by registryd are read back by an OpenSSL client, in every cipher it takes") {
  const auto c = GENERATE(cipher_case{TLS1_3_VERSION, "TLS_AES_128_GCM_SHA256", true},
                          cipher_case{TLS1_3_VERSION, "TLS_AES_256_GCM_SHA384", true},
                          cipher_case{TLS1_3_VERSION, "TLS_CHACHA20_POLY1305_SHA256", true},
                          cipher_case{TLS1_2_VERSION, "ECDHE-ECDSA-AES128-GCM-SHA256", true},
                          cipher_case{TLS1_2_VERSION, "ECDHE-ECDSA-AES256-GCM-SHA384", true},
                          cipher_case{TLS1_2_VERSION, "ECDHE-ECDSA-CHACHA20-POLY1305", true},
                          // Not sealed here: OpenSSL keeps the keys and the BIO passes its records on.
                          cipher_case{TLS1_3_VERSION, "TLS_AES_128_CCM_SHA256", false},
                          cipher_case{TLS1_2_VERSION, "ECDHE-ECDSA-AES128-SHA256", false});
  INFO(c.cipher);
  bool sealed = !c.sealed_here;
  CHECK(check_record_sealing(c.version, c.cipher, sealed) == "");
  CHECK(sealed == c.sealed_here);
}

TEST_CASE("the start-up check passes on this OpenSSL") {
  std::string why;
  CHECK(registryd::frontdoor::record_sealing_works(why));
  CHECK(why == "");
}
