// The host-managed PKI directory (<state dir>/pki/): a CA and one serving certificate, checked
// at start-up and periodically, re-issued before anything expires. See docs/security.md.
//
// Files:  ca.crt  the CA certificate (PEM), what clients trust
//         ca.key  its private key, mode 0600
//         tls.crt the serving certificate followed by the CA certificate, so that a server
//                 loading this one file sends the whole chain
//         tls.key the serving key, mode 0600
//
// Not safe to run concurrently on the same directory from two threads or processes; the host
// owns its state directory.
#pragma once

#include <registryd/pki/certificates.hpp>
#include <registryd/pki/subject_alt_names.hpp>
#include <registryd/util/result.hpp>

#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

namespace registryd::pki {

inline constexpr const char* ca_cert_file = "ca.crt";
inline constexpr const char* ca_key_file = "ca.key";
inline constexpr const char* serving_cert_file = "tls.crt";
inline constexpr const char* serving_key_file = "tls.key";

struct pki_options {
  std::filesystem::path dir;
  std::chrono::seconds ca_lifetime =
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::years{10});
  std::chrono::seconds serving_lifetime = std::chrono::days{365};
  std::string ca_common_name = "registryd CA";
};

enum class ca_action {
  kept,     // valid and less than two thirds of its life used
  created,  // new key, new certificate: clients must be given the new ca.crt
  renewed,  // same key and subject, new validity: old and new ca.crt both verify everything
};

enum class serving_action {
  kept,
  issued,         // new key and certificate
  chain_updated,  // same leaf, tls.crt rewritten because the CA certificate after it changed
};

// What ensure() did and why; the host logs summary() and reloads TLS when changed().
struct ensure_report {
  ca_action ca = ca_action::kept;
  std::string ca_reason;  // empty when kept
  serving_action serving = serving_action::kept;
  std::string serving_reason;  // empty when kept
  std::vector<std::string> notes;  // things fixed on the side (e.g. key file modes tightened)

  bool changed() const noexcept {
    return ca != ca_action::kept || serving != serving_action::kept;
  }
  std::string summary() const;
};

// Loads what is in `options.dir` and (re)writes what is needed so that afterwards the directory
// holds a valid CA and a serving certificate for exactly `wanted` that chains to it.
//
// The serving certificate is re-issued when it or its key is missing or unparsable, the key does
// not match, it does not chain to the CA, it is expired or not yet valid at `now`, its SANs are
// not exactly `wanted`, or two thirds of its lifetime have passed. The CA is re-created (new
// key) when missing, invalid or expired, which re-issues the serving certificate too; it is
// renewed with the same key and subject when two thirds of its life have passed or it is not yet
// valid (the clock went back). Keys are written before the certificates that need them, each
// file atomically, so a crash at any point leaves files that the next call repairs.
//
// `now` is the clock, injectable for tests. Errors are I/O and OpenSSL failures only; bad file
// contents are repaired, not reported as errors.
util::result<ensure_report> ensure(const pki_options& options, const subject_alt_names& wanted,
                                   clock::time_point now);

}  // namespace registryd::pki
