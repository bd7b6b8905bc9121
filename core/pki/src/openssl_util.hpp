// Private helpers: owning pointers for OpenSSL objects that stay inside this component.
#pragma once

#include <registryd/pki/openssl_ptr.hpp>
#include <registryd/util/result.hpp>

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <memory>
#include <string>
#include <string_view>

namespace registryd::pki::detail {

template <auto Free>
struct free_with {
  template <typename T>
  void operator()(T* p) const noexcept {
    Free(p);
  }
};

using bio_ptr = std::unique_ptr<BIO, free_with<BIO_free_all>>;
using bignum_ptr = std::unique_ptr<BIGNUM, free_with<BN_free>>;
using asn1_integer_ptr = std::unique_ptr<ASN1_INTEGER, free_with<ASN1_INTEGER_free>>;
using general_names_ptr = std::unique_ptr<GENERAL_NAMES, free_with<GENERAL_NAMES_free>>;
using general_name_ptr = std::unique_ptr<GENERAL_NAME, free_with<GENERAL_NAME_free>>;
using x509_extension_ptr = std::unique_ptr<X509_EXTENSION, free_with<X509_EXTENSION_free>>;
using x509_name_ptr = std::unique_ptr<X509_NAME, free_with<X509_NAME_free>>;
using x509_store_ptr = std::unique_ptr<X509_STORE, free_with<X509_STORE_free>>;
using x509_store_ctx_ptr = std::unique_ptr<X509_STORE_CTX, free_with<X509_STORE_CTX_free>>;
using md_ctx_ptr = std::unique_ptr<EVP_MD_CTX, free_with<EVP_MD_CTX_free>>;

// An error value "<what>: <openssl errors>", draining the queue.
inline util::error openssl_failure(std::string_view what) {
  std::string msg(what);
  if (auto details = take_openssl_errors(); !details.empty()) msg += ": " + details;
  return util::error{std::move(msg)};
}

std::string to_hex(const unsigned char* data, std::size_t size, bool upper = false);

}  // namespace registryd::pki::detail
