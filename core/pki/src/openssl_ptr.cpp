#include <registryd/pki/openssl_ptr.hpp>

#include "openssl_util.hpp"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

namespace registryd::pki {

void openssl_deleter::operator()(X509* p) const noexcept { X509_free(p); }
void openssl_deleter::operator()(EVP_PKEY* p) const noexcept { EVP_PKEY_free(p); }
void openssl_deleter::operator()(SSL_CTX* p) const noexcept { SSL_CTX_free(p); }
void openssl_deleter::operator()(SSL* p) const noexcept { SSL_free(p); }

std::string take_openssl_errors() {
  std::string out;
  while (const unsigned long code = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(code, buf, sizeof buf);
    if (!out.empty()) out += "; ";
    out += buf;
  }
  return out;
}

namespace detail {

std::string to_hex(const unsigned char* data, std::size_t size, bool upper) {
  const char* digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
  std::string out;
  out.reserve(size * 2);
  for (std::size_t i = 0; i < size; ++i) {
    out += digits[data[i] >> 4];
    out += digits[data[i] & 0x0f];
  }
  return out;
}

}  // namespace detail
}  // namespace registryd::pki
