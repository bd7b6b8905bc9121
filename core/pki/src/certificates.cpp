#include <registryd/pki/certificates.hpp>
#include <registryd/pki/token_signer.hpp>

#include "openssl_util.hpp"

#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>

#include <arpa/inet.h>

#include <ctime>

namespace registryd::pki {

using detail::openssl_failure;

namespace {

// Refuses to prompt on the terminal for the password of an encrypted PEM key: our keys are
// never encrypted, and a server must not block on stdin.
int no_password(char*, int, int, void*) { return 0; }

clock::time_point from_asn1_time(const ASN1_TIME* t) {
  std::tm tm{};
  if (t == nullptr || ASN1_TIME_to_tm(t, &tm) != 1) {
    ERR_clear_error();
    return {};
  }
  return clock::from_time_t(::timegm(&tm));
}

util::status set_validity(X509* cert, const validity& v) {
  if (ASN1_TIME_set(X509_getm_notBefore(cert), clock::to_time_t(v.not_before)) == nullptr ||
      ASN1_TIME_set(X509_getm_notAfter(cert), clock::to_time_t(v.not_after)) == nullptr) {
    return openssl_failure("setting the validity period");
  }
  return util::ok();
}

// A positive 159-bit random serial (RFC 5280 allows up to 20 octets; the top bit stays clear so
// the DER integer needs no sign octet, the next one is set so the serial is never short).
util::status set_random_serial(X509* cert) {
  unsigned char bytes[20];
  if (RAND_bytes(bytes, sizeof bytes) != 1) return openssl_failure("generating a serial number");
  bytes[0] = static_cast<unsigned char>((bytes[0] & 0x7f) | 0x40);
  detail::bignum_ptr bn(BN_bin2bn(bytes, sizeof bytes, nullptr));
  if (!bn) return openssl_failure("generating a serial number");
  detail::asn1_integer_ptr serial(BN_to_ASN1_INTEGER(bn.get(), nullptr));
  if (!serial || X509_set_serialNumber(cert, serial.get()) != 1) {
    return openssl_failure("setting the serial number");
  }
  return util::ok();
}

util::status add_extension(X509* cert, X509* issuer, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  detail::x509_extension_ptr ext(X509V3_EXT_nconf_nid(nullptr, &ctx, nid, value));
  if (!ext || X509_add_ext(cert, ext.get(), -1) != 1) {
    return openssl_failure(std::string("adding extension ") + OBJ_nid2sn(nid) + "=" + value);
  }
  return util::ok();
}

util::status add_san_extension(X509* cert, const subject_alt_names& sans) {
  detail::general_names_ptr names(sk_GENERAL_NAME_new_null());
  if (!names) return openssl_failure("building subjectAltName");
  auto push = [&](int type, ASN1_STRING* value) -> bool {
    if (value == nullptr) return false;
    detail::general_name_ptr name(GENERAL_NAME_new());
    if (!name) {
      ASN1_STRING_free(value);
      return false;
    }
    GENERAL_NAME_set0_value(name.get(), type, value);
    if (sk_GENERAL_NAME_push(names.get(), name.get()) == 0) return false;
    name.release();  // owned by the stack now
    return true;
  };
  for (const auto& dns : sans.dns) {
    ASN1_IA5STRING* s = ASN1_IA5STRING_new();
    if (s != nullptr && ASN1_STRING_set(s, dns.data(), static_cast<int>(dns.size())) != 1) {
      ASN1_STRING_free(s);
      s = nullptr;
    }
    if (!push(GEN_DNS, s)) return openssl_failure("adding DNS name " + dns);
  }
  for (const auto& ip : sans.ips) {
    if (!push(GEN_IPADD, a2i_IPADDRESS(ip.c_str()))) return openssl_failure("adding IP " + ip);
  }
  if (X509_add1_ext_i2d(cert, NID_subject_alt_name, names.get(), 0, X509V3_ADD_DEFAULT) != 1) {
    return openssl_failure("adding subjectAltName");
  }
  return util::ok();
}

// Version, serial, validity, names and public key: what every certificate we make has.
util::result<x509_ptr> new_certificate(EVP_PKEY* subject_key, const X509_NAME* subject,
                                       const X509_NAME* issuer, const validity& v) {
  x509_ptr cert(X509_new());
  if (!cert) return openssl_failure("allocating a certificate");
  if (X509_set_version(cert.get(), X509_VERSION_3) != 1 ||
      X509_set_subject_name(cert.get(), subject) != 1 ||
      X509_set_issuer_name(cert.get(), issuer) != 1 ||
      X509_set_pubkey(cert.get(), subject_key) != 1) {
    return openssl_failure("filling in a certificate");
  }
  if (auto st = set_random_serial(cert.get()); !st) return util::error{st.error_message()};
  if (auto st = set_validity(cert.get(), v); !st) return util::error{st.error_message()};
  return cert;
}

util::result<x509_ptr> make_ca(EVP_PKEY* key, const X509_NAME* subject, const validity& v) {
  auto cert = new_certificate(key, subject, subject, v);
  if (!cert) return cert;
  X509* c = cert->get();
  for (auto [nid, value] : {std::pair{NID_basic_constraints, "critical,CA:TRUE"},
                            std::pair{NID_key_usage, "critical,keyCertSign,cRLSign"},
                            std::pair{NID_subject_key_identifier, "hash"},
                            std::pair{NID_authority_key_identifier, "keyid:always"}}) {
    if (auto st = add_extension(c, c, nid, value); !st) return util::error{st.error_message()};
  }
  if (X509_sign(c, key, EVP_sha256()) <= 0) return openssl_failure("signing the CA certificate");
  return cert;
}

}  // namespace

util::result<pkey_ptr> generate_p256_key() {
  pkey_ptr key(EVP_EC_gen("P-256"));
  if (!key) return openssl_failure("generating a P-256 key");
  return key;
}

namespace {

// "O=<organization>, CN=<cn>"; null when OpenSSL fails.
detail::x509_name_ptr registryd_name(const std::string& cn, const char* organization = "registryd") {
  detail::x509_name_ptr name(X509_NAME_new());
  if (!name ||
      X509_NAME_add_entry_by_txt(name.get(), "O", MBSTRING_UTF8,
                                 reinterpret_cast<const unsigned char*>(organization), -1, -1,
                                 0) != 1 ||
      X509_NAME_add_entry_by_txt(name.get(), "CN", MBSTRING_UTF8,
                                 reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1,
                                 0) != 1) {
    return nullptr;
  }
  return name;
}

}  // namespace

util::result<x509_ptr> issue_ca_certificate(EVP_PKEY* key, std::string_view common_name,
                                            const validity& v) {
  const auto name = registryd_name(std::string(common_name));
  if (!name) return openssl_failure("building the CA name");
  return make_ca(key, name.get(), v);
}

util::result<x509_ptr> renew_ca_certificate(X509* old_ca, EVP_PKEY* key, const validity& v) {
  if (!key_matches(old_ca, key)) return util::error{"the key does not belong to the CA"};
  return make_ca(key, X509_get_subject_name(old_ca), v);
}

util::result<x509_ptr> issue_serving_certificate(EVP_PKEY* leaf_key, const subject_alt_names& sans,
                                                 X509* ca, EVP_PKEY* ca_key, const validity& v) {
  if (sans.empty()) return util::error{"a serving certificate needs at least one name"};
  const std::string cn = sans.dns.empty() ? *sans.ips.begin() : *sans.dns.begin();
  const auto name = registryd_name(cn);
  if (!name) return openssl_failure("building the serving certificate name");
  auto cert = new_certificate(leaf_key, name.get(), X509_get_subject_name(ca), v);
  if (!cert) return cert;
  X509* c = cert->get();
  for (auto [nid, value] : {std::pair{NID_basic_constraints, "critical,CA:FALSE"},
                            std::pair{NID_key_usage, "critical,digitalSignature"},
                            std::pair{NID_ext_key_usage, "serverAuth"},
                            std::pair{NID_subject_key_identifier, "hash"},
                            std::pair{NID_authority_key_identifier, "keyid:always"}}) {
    if (auto st = add_extension(c, ca, nid, value); !st) return util::error{st.error_message()};
  }
  if (auto st = add_san_extension(c, sans); !st) return util::error{st.error_message()};
  if (X509_sign(c, ca_key, EVP_sha256()) <= 0) {
    return openssl_failure("signing the serving certificate");
  }
  return cert;
}

util::result<x509_ptr> issue_token_signer_certificate(EVP_PKEY* key, X509* ca, EVP_PKEY* ca_key,
                                                      const validity& v) {
  const auto name = registryd_name(std::string(token_signer_common_name));
  if (!name) return openssl_failure("building the token signer name");
  auto cert = new_certificate(key, name.get(), X509_get_subject_name(ca), v);
  if (!cert) return cert;
  X509* c = cert->get();
  // No extendedKeyUsage: token verifiers (distribution's among them) accept any, and without
  // serverAuth the certificate cannot pose as a TLS server.
  for (auto [nid, value] : {std::pair{NID_basic_constraints, "critical,CA:FALSE"},
                            std::pair{NID_key_usage, "critical,digitalSignature"},
                            std::pair{NID_subject_key_identifier, "hash"},
                            std::pair{NID_authority_key_identifier, "keyid:always"}}) {
    if (auto st = add_extension(c, ca, nid, value); !st) return util::error{st.error_message()};
  }
  if (X509_sign(c, ca_key, EVP_sha256()) <= 0) {
    return openssl_failure("signing the token signer certificate");
  }
  return cert;
}

util::result<x509_ptr> issue_node_certificate(EVP_PKEY* key, std::string_view node_name, X509* ca,
                                              EVP_PKEY* ca_key, const validity& v) {
  const std::string organization(node_organization);
  const auto name = registryd_name(std::string(node_name), organization.c_str());
  if (!name) return openssl_failure("building the node certificate name");
  auto cert = new_certificate(key, name.get(), X509_get_subject_name(ca), v);
  if (!cert) return cert;
  X509* c = cert->get();
  // clientAuth only: a node's certificate can never pose as a master.
  for (auto [nid, value] : {std::pair{NID_basic_constraints, "critical,CA:FALSE"},
                            std::pair{NID_key_usage, "critical,digitalSignature"},
                            std::pair{NID_ext_key_usage, "clientAuth"},
                            std::pair{NID_subject_key_identifier, "hash"},
                            std::pair{NID_authority_key_identifier, "keyid:always"}}) {
    if (auto st = add_extension(c, ca, nid, value); !st) return util::error{st.error_message()};
  }
  if (X509_sign(c, ca_key, EVP_sha256()) <= 0) return openssl_failure("signing the node certificate");
  return cert;
}

validity validity_of(const X509* cert) {
  return {from_asn1_time(X509_get0_notBefore(cert)), from_asn1_time(X509_get0_notAfter(cert))};
}

subject_alt_names sans_of(const X509* cert) {
  subject_alt_names out;
  detail::general_names_ptr names(static_cast<GENERAL_NAMES*>(
      X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr)));
  ERR_clear_error();
  if (!names) return out;
  for (int i = 0; i < sk_GENERAL_NAME_num(names.get()); ++i) {
    const GENERAL_NAME* g = sk_GENERAL_NAME_value(names.get(), i);
    if (g->type == GEN_DNS) {
      const ASN1_STRING* s = g->d.dNSName;
      out.dns.emplace(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                      static_cast<std::size_t>(ASN1_STRING_length(s)));
    } else if (g->type == GEN_IPADD) {
      const ASN1_STRING* s = g->d.iPAddress;
      const int len = ASN1_STRING_length(s);
      char text[INET6_ADDRSTRLEN];
      const int family = len == 4 ? AF_INET : len == 16 ? AF_INET6 : 0;
      if (family != 0 && ::inet_ntop(family, ASN1_STRING_get0_data(s), text, sizeof text)) {
        out.ips.emplace(text);
      }
    }
  }
  return out;
}

bool key_matches(const X509* cert, const EVP_PKEY* key) {
  const EVP_PKEY* pub = X509_get0_pubkey(cert);
  const bool same = pub != nullptr && key != nullptr && EVP_PKEY_eq(pub, key) == 1;
  ERR_clear_error();
  return same;
}

util::status check_self_signed_ca(X509* cert) {
  if (X509_check_ca(cert) != 1) return util::error{"not a CA certificate (CA:TRUE missing)"};
  if (X509_NAME_cmp(X509_get_subject_name(cert), X509_get_issuer_name(cert)) != 0) {
    return util::error{"not self-signed (issuer differs from subject)"};
  }
  EVP_PKEY* pub = X509_get0_pubkey(cert);
  if (pub == nullptr || X509_verify(cert, pub) != 1) {
    ERR_clear_error();
    return util::error{"its self-signature does not verify"};
  }
  return util::ok();
}

util::status verify_issued_by(X509* leaf, X509* ca) {
  detail::x509_store_ptr store(X509_STORE_new());
  detail::x509_store_ctx_ptr ctx(X509_STORE_CTX_new());
  if (!store || !ctx || X509_STORE_add_cert(store.get(), ca) != 1 ||
      X509_STORE_CTX_init(ctx.get(), store.get(), leaf, nullptr) != 1) {
    return openssl_failure("setting up certificate verification");
  }
  X509_STORE_CTX_set_flags(ctx.get(), X509_V_FLAG_NO_CHECK_TIME);
  X509_STORE_CTX_set_purpose(ctx.get(), X509_PURPOSE_SSL_SERVER);
  if (X509_verify_cert(ctx.get()) != 1) {
    const int err = X509_STORE_CTX_get_error(ctx.get());
    ERR_clear_error();
    return util::error{X509_verify_cert_error_string(err)};
  }
  return util::ok();
}

std::string sha256_fingerprint(const X509* cert) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (X509_digest(cert, EVP_sha256(), md, &len) != 1) {
    ERR_clear_error();
    return {};
  }
  return detail::to_hex(md, len);
}

std::string serial_hex(const X509* cert) {
  detail::bignum_ptr bn(ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), nullptr));
  if (!bn) {
    ERR_clear_error();
    return {};
  }
  char* hex = BN_bn2hex(bn.get());
  std::string out = hex != nullptr ? hex : "";
  OPENSSL_free(hex);
  return out;
}

namespace {
std::string bio_text(BIO* bio) {
  char* data = nullptr;
  const long len = BIO_get_mem_data(bio, &data);
  return len > 0 ? std::string(data, static_cast<std::size_t>(len)) : std::string();
}
}  // namespace

std::string to_pem(const X509* cert) {
  detail::bio_ptr bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_X509(bio.get(), cert) != 1) {
    ERR_clear_error();
    return {};
  }
  return bio_text(bio.get());
}

std::string to_pem(const EVP_PKEY* key) {
  detail::bio_ptr bio(BIO_new(BIO_s_mem()));
  if (!bio ||
      PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    ERR_clear_error();
    return {};
  }
  return bio_text(bio.get());
}

util::result<std::vector<x509_ptr>> certificates_from_pem(std::string_view pem) {
  detail::bio_ptr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (!bio) return openssl_failure("reading PEM");
  std::vector<x509_ptr> certs;
  while (true) {
    x509_ptr cert(PEM_read_bio_X509(bio.get(), nullptr, no_password, nullptr));
    if (!cert) break;
    certs.push_back(std::move(cert));
  }
  // Running out of input shows up as "no start line"; anything else means a damaged block.
  const unsigned long last = ERR_peek_last_error();
  const bool clean_end = ERR_GET_LIB(last) == ERR_LIB_PEM && ERR_GET_REASON(last) == PEM_R_NO_START_LINE;
  if (!clean_end) return openssl_failure("damaged certificate in PEM");
  ERR_clear_error();
  if (certs.empty()) return util::error{"no certificate in PEM"};
  return certs;
}

util::result<pkey_ptr> private_key_from_pem(std::string_view pem) {
  detail::bio_ptr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (!bio) return openssl_failure("reading PEM");
  pkey_ptr key(PEM_read_bio_PrivateKey(bio.get(), nullptr, no_password, nullptr));
  if (!key) return openssl_failure("no usable private key in PEM");
  return key;
}

util::result<std::string> make_csr_pem(EVP_PKEY* key, std::string_view common_name) {
  std::unique_ptr<X509_REQ, decltype(&X509_REQ_free)> req(X509_REQ_new(), &X509_REQ_free);
  const auto name = registryd_name(std::string(common_name));
  if (!req || !name || X509_REQ_set_version(req.get(), 0) != 1 ||
      X509_REQ_set_subject_name(req.get(), name.get()) != 1 || X509_REQ_set_pubkey(req.get(), key) != 1 ||
      X509_REQ_sign(req.get(), key, EVP_sha256()) <= 0) {
    return openssl_failure("making a certificate request");
  }
  detail::bio_ptr bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_X509_REQ(bio.get(), req.get()) != 1) return openssl_failure("writing a certificate request");
  return bio_text(bio.get());
}

util::result<pkey_ptr> public_key_of_csr(std::string_view csr_pem) {
  detail::bio_ptr bio(BIO_new_mem_buf(csr_pem.data(), static_cast<int>(csr_pem.size())));
  std::unique_ptr<X509_REQ, decltype(&X509_REQ_free)> req(
      bio ? PEM_read_bio_X509_REQ(bio.get(), nullptr, no_password, nullptr) : nullptr, &X509_REQ_free);
  ERR_clear_error();
  if (!req) return util::error{"not a PEM certificate request"};
  pkey_ptr key(X509_REQ_get_pubkey(req.get()));
  if (!key) return util::error{"the certificate request has no usable public key"};
  // Proof that the sender holds the private key.
  if (X509_REQ_verify(req.get(), key.get()) != 1) {
    ERR_clear_error();
    return util::error{"the certificate request's signature does not verify"};
  }
  return key;
}

}  // namespace registryd::pki
