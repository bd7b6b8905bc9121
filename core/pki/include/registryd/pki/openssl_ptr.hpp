// Owning pointers for the OpenSSL objects that cross this component's API. Every OpenSSL
// object the component hands out is one of these, so nothing leaks on an early return.
#pragma once

#include <openssl/types.h>

#include <memory>
#include <string>

namespace registryd::pki {

struct openssl_deleter {
  void operator()(X509* p) const noexcept;
  void operator()(EVP_PKEY* p) const noexcept;
  void operator()(SSL_CTX* p) const noexcept;
  void operator()(SSL* p) const noexcept;
};

using x509_ptr = std::unique_ptr<X509, openssl_deleter>;
using pkey_ptr = std::unique_ptr<EVP_PKEY, openssl_deleter>;
using ssl_ctx_ptr = std::unique_ptr<SSL_CTX, openssl_deleter>;
using ssl_ptr = std::unique_ptr<SSL, openssl_deleter>;

// Drains this thread's OpenSSL error queue into one line ("" when it was empty). Called after
// every failed OpenSSL call so that a stale error never shows up in an unrelated message.
std::string take_openssl_errors();

}  // namespace registryd::pki
