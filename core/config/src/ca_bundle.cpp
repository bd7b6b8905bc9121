// The `ca` rule, checked with OpenSSL: the text must be one or more PEM CERTIFICATE blocks
// that parse as X.509, and nothing else that PEM could carry (a private key pasted by mistake
// is refused rather than skipped).
#include <registryd/config/module_config.hpp>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <climits>
#include <memory>
#include <string>

namespace registryd::config {
namespace {

struct bio_deleter {
  void operator()(BIO* b) const noexcept { BIO_free(b); }
};
struct openssl_free {
  void operator()(void* p) const noexcept { OPENSSL_free(p); }
};

std::string ordinal(int n) { return "PEM block " + std::to_string(n); }

}  // namespace

std::optional<std::string> check_ca_bundle(std::string_view pem) {
  if (pem.size() > static_cast<std::size_t>(INT_MAX)) return std::string("is too large");
  if (pem.find("-----BEGIN") == std::string_view::npos) {
    return std::string(
        "must be one or more PEM-encoded X.509 certificates (-----BEGIN CERTIFICATE-----), "
        "found no PEM block");
  }
  ERR_clear_error();
  std::unique_ptr<BIO, bio_deleter> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (!bio) return std::string("cannot be checked: out of memory");

  std::optional<std::string> failure;
  int count = 0;
  for (;;) {
    char* raw_name = nullptr;
    char* raw_header = nullptr;
    unsigned char* raw_data = nullptr;
    long length = 0;
    if (PEM_read_bio(bio.get(), &raw_name, &raw_header, &raw_data, &length) != 1) {
      const unsigned long err = ERR_peek_last_error();
      const bool end_of_input =
          ERR_GET_LIB(err) == ERR_LIB_PEM && ERR_GET_REASON(err) == PEM_R_NO_START_LINE;
      if (!end_of_input) {
        failure = ordinal(count + 1) + " is not valid PEM (bad base64 or a missing END line)";
      }
      break;
    }
    std::unique_ptr<char, openssl_free> name(raw_name);
    std::unique_ptr<char, openssl_free> header(raw_header);
    std::unique_ptr<unsigned char, openssl_free> data(raw_data);
    ++count;
    if (std::string_view(name.get()) != "CERTIFICATE") {
      failure = ordinal(count) + " is " + std::string(name.get()) + ", expected CERTIFICATE";
      break;
    }
    const unsigned char* p = data.get();
    X509* cert = d2i_X509(nullptr, &p, length);
    const bool whole = cert != nullptr && p == data.get() + length;
    X509_free(cert);
    if (!whole) {
      failure = ordinal(count) + " is not a valid X.509 certificate";
      break;
    }
  }
  ERR_clear_error();
  if (failure) return failure;
  if (count == 0) {
    return std::string(
        "must be one or more PEM-encoded X.509 certificates (-----BEGIN CERTIFICATE-----), "
        "found no PEM block");
  }
  return std::nullopt;
}

}  // namespace registryd::config
