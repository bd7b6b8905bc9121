#include <registryd/pki/tls_identity.hpp>

#include <registryd/pki/pki_directory.hpp>
#include <registryd/util/atomic_file.hpp>

#include "openssl_util.hpp"

#include <openssl/err.h>
#include <openssl/ssl.h>

namespace registryd::pki {
namespace fs = std::filesystem;

namespace {

util::result<std::string> read(const fs::path& path) {
  std::error_code ec;
  std::string text = util::read_small_file(path, ec);
  if (ec) return util::error{path.string() + ": " + ec.message()};
  return text;
}

std::string sha256_hex(std::string_view data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_Digest(data.data(), data.size(), md, &len, EVP_sha256(), nullptr) != 1) {
    ERR_clear_error();
    return {};
  }
  return detail::to_hex(md, len);
}

}  // namespace

util::result<std::shared_ptr<const tls_identity>> load_tls_identity(const fs::path& pki_dir) {
  auto cert_text = read(pki_dir / serving_cert_file);
  if (!cert_text) return util::error{cert_text.error_message()};
  auto key_text = read(pki_dir / serving_key_file);
  if (!key_text) return util::error{key_text.error_message()};
  auto certs = certificates_from_pem(*cert_text);
  if (!certs) return util::error{(pki_dir / serving_cert_file).string() + ": " + certs.error_message()};
  auto key = private_key_from_pem(*key_text);
  if (!key) return util::error{(pki_dir / serving_key_file).string() + ": " + key.error_message()};

  auto id = std::make_shared<tls_identity>();
  id->leaf = std::move(certs->front());
  for (std::size_t i = 1; i < certs->size(); ++i) id->chain.push_back(std::move((*certs)[i]));
  id->key = std::move(*key);
  if (!key_matches(id->leaf.get(), id->key.get())) {
    return util::error{(pki_dir / serving_key_file).string() + " does not belong to " +
                       (pki_dir / serving_cert_file).string()};
  }
  id->leaf_fingerprint = sha256_fingerprint(id->leaf.get());
  std::string all = id->leaf_fingerprint;
  for (const auto& c : id->chain) all += ":" + sha256_fingerprint(c.get());
  id->chain_fingerprint = sha256_hex(all);
  id->serial = serial_hex(id->leaf.get());
  id->not_after = validity_of(id->leaf.get()).not_after;
  return std::shared_ptr<const tls_identity>(std::move(id));
}

util::result<std::string> ca_pem(const fs::path& pki_dir) {
  auto text = read(pki_dir / ca_cert_file);
  if (!text) return util::error{text.error_message()};
  auto certs = certificates_from_pem(*text);
  if (!certs) return util::error{(pki_dir / ca_cert_file).string() + ": " + certs.error_message()};
  return to_pem(certs->front().get());
}

util::status install_identity(SSL* ssl, const tls_identity& identity) {
  if (SSL_use_certificate(ssl, identity.leaf.get()) != 1 || SSL_clear_chain_certs(ssl) != 1) {
    return detail::openssl_failure("installing the serving certificate");
  }
  for (const auto& c : identity.chain) {
    if (SSL_add1_chain_cert(ssl, c.get()) != 1) return detail::openssl_failure("adding the chain");
  }
  if (SSL_use_PrivateKey(ssl, identity.key.get()) != 1 || SSL_check_private_key(ssl) != 1) {
    return detail::openssl_failure("installing the serving key");
  }
  return util::ok();
}

util::status install_identity(SSL_CTX* ctx, const tls_identity& identity) {
  if (SSL_CTX_use_certificate(ctx, identity.leaf.get()) != 1 ||
      SSL_CTX_clear_chain_certs(ctx) != 1) {
    return detail::openssl_failure("installing the serving certificate");
  }
  for (const auto& c : identity.chain) {
    if (SSL_CTX_add1_chain_cert(ctx, c.get()) != 1) {
      return detail::openssl_failure("adding the chain");
    }
  }
  if (SSL_CTX_use_PrivateKey(ctx, identity.key.get()) != 1 || SSL_CTX_check_private_key(ctx) != 1) {
    return detail::openssl_failure("installing the serving key");
  }
  return util::ok();
}

}  // namespace registryd::pki
