// Building blocks: key generation, issuing and inspecting certificates, PEM in and out.
// ensure() in pki_directory.hpp is what the host calls; these are public so that tests and tools
// (a future `registryd pki` command) can make and check certificates the same way.
#pragma once

#include <registryd/pki/openssl_ptr.hpp>
#include <registryd/pki/subject_alt_names.hpp>
#include <registryd/util/result.hpp>

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

namespace registryd::pki {

using clock = std::chrono::system_clock;

struct validity {
  clock::time_point not_before;
  clock::time_point not_after;
};

// A fresh ECDSA key on the P-256 curve.
util::result<pkey_ptr> generate_p256_key();

// A self-signed CA certificate for `key`: basicConstraints critical CA:TRUE, keyUsage critical
// keyCertSign+cRLSign, subject and authority key identifiers, a random serial.
util::result<x509_ptr> issue_ca_certificate(EVP_PKEY* key, std::string_view common_name,
                                            const validity& v);

// The same CA again with a new validity and serial: same key, same subject, same subject key
// identifier. Everything `old_ca` signed chains to the renewed certificate and vice versa.
util::result<x509_ptr> renew_ca_certificate(X509* old_ca, EVP_PKEY* key, const validity& v);

// A serving certificate for `leaf_key`, signed by `ca`/`ca_key`: the given SANs, basicConstraints
// CA:FALSE, keyUsage digitalSignature, extendedKeyUsage serverAuth, authority key identifier,
// a random serial. The CN is the first DNS name (informational only, clients use the SANs).
util::result<x509_ptr> issue_serving_certificate(EVP_PKEY* leaf_key, const subject_alt_names& sans,
                                                 X509* ca, EVP_PKEY* ca_key, const validity& v);

// The organization of node agents' certificates: a verified client certificate whose subject
// is "/O=registryd-node/CN=<node>" is that node (docs/cluster.md).
inline constexpr std::string_view node_organization = "registryd-node";

// A node agent's client certificate for `key`, signed by `ca`/`ca_key`: subject
// O=registryd-node, CN=<node_name>; CA:FALSE, digitalSignature, extendedKeyUsage clientAuth
// only, key identifiers, a random serial.
util::result<x509_ptr> issue_node_certificate(EVP_PKEY* key, std::string_view node_name, X509* ca,
                                              EVP_PKEY* ca_key, const validity& v);
// A PEM certificate request (PKCS#10) for `key`, subject O=registryd, CN=<common_name>.
util::result<std::string> make_csr_pem(EVP_PKEY* key, std::string_view common_name);
// The public key of a PEM certificate request whose self-signature verifies (its holder has
// the private key); an error naming what is wrong otherwise.
util::result<pkey_ptr> public_key_of_csr(std::string_view csr_pem);

// --- inspection -------------------------------------------------------------------------------
validity validity_of(const X509* cert);
subject_alt_names sans_of(const X509* cert);
// True when `key`'s public half is the one `cert` certifies.
bool key_matches(const X509* cert, const EVP_PKEY* key);
// A self-signed certificate with CA:TRUE whose signature verifies with its own public key.
util::status check_self_signed_ca(X509* cert);
// Verifies that `leaf` chains to `ca` for TLS server use, ignoring validity periods (the caller
// checks time itself so that it can tell "expired" from "signed by someone else").
util::status verify_issued_by(X509* leaf, X509* ca);
// Lower-case hex SHA-256 of the DER encoding (what `openssl x509 -fingerprint -sha256` prints,
// without the colons).
std::string sha256_fingerprint(const X509* cert);
// Upper-case hex serial number.
std::string serial_hex(const X509* cert);

// --- PEM --------------------------------------------------------------------------------------
std::string to_pem(const X509* cert);
// Unencrypted PKCS#8 ("BEGIN PRIVATE KEY").
std::string to_pem(const EVP_PKEY* key);
// Every certificate in `pem`, in order; an error when there is none or one is damaged.
util::result<std::vector<x509_ptr>> certificates_from_pem(std::string_view pem);
util::result<pkey_ptr> private_key_from_pem(std::string_view pem);

}  // namespace registryd::pki
