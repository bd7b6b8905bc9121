#include "pem.hpp"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <memory>

namespace registryd::containerd {
namespace {

struct bio_free {
  void operator()(BIO* b) const noexcept { BIO_free(b); }
};
struct x509_free {
  void operator()(X509* x) const noexcept { X509_free(x); }
};
using bio_ptr = std::unique_ptr<BIO, bio_free>;
using x509_ptr = std::unique_ptr<X509, x509_free>;

std::string openssl_reason() {
  const unsigned long code = ERR_peek_last_error();
  ERR_clear_error();
  if (code == 0) return "unreadable";
  const char* reason = ERR_reason_error_string(code);
  return reason != nullptr ? reason : "unreadable";
}

}  // namespace

util::result<std::string> canonical_pem_certificates(std::string_view pem) {
  ERR_clear_error();
  bio_ptr in(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  bio_ptr out(BIO_new(BIO_s_mem()));
  if (!in || !out) return util::error{"out of memory"};

  int count = 0;
  for (;;) {
    x509_ptr cert(PEM_read_bio_X509(in.get(), nullptr, nullptr, nullptr));
    if (!cert) {
      // The end of the input shows up as "no start line"; anything else is a broken block.
      const unsigned long code = ERR_peek_last_error();
      if (ERR_GET_LIB(code) == ERR_LIB_PEM && ERR_GET_REASON(code) == PEM_R_NO_START_LINE) {
        ERR_clear_error();
        break;
      }
      return util::error{"certificate " + std::to_string(count + 1) +
                         " is not a valid PEM certificate (" + openssl_reason() + ")"};
    }
    if (PEM_write_bio_X509(out.get(), cert.get()) != 1) {
      return util::error{"cannot encode certificate (" + openssl_reason() + ")"};
    }
    ++count;
  }
  if (count == 0) return util::error{"holds no PEM certificate (-----BEGIN CERTIFICATE-----)"};

  char* data = nullptr;
  const long size = BIO_get_mem_data(out.get(), &data);
  return std::string(data, static_cast<std::size_t>(size));
}

}  // namespace registryd::containerd
