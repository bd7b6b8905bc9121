#include <registryd/pki/token_signer.hpp>

#include <registryd/pki/pki_directory.hpp>
#include <registryd/util/atomic_file.hpp>

#include "openssl_util.hpp"

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include <ctime>

namespace registryd::pki {
namespace fs = std::filesystem;

namespace {

// As for serving certificates: a peer whose clock is a little behind still accepts it.
constexpr std::chrono::minutes backdate{5};
constexpr fs::perms key_mode = fs::perms::owner_read | fs::perms::owner_write;
constexpr fs::perms cert_mode = key_mode | fs::perms::group_read | fs::perms::others_read;

std::string format_time(clock::time_point t) {
  const std::time_t tt = clock::to_time_t(t);
  std::tm tm{};
  ::gmtime_r(&tt, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

// The file's text, or "" with `missing` set when it does not exist. Other read failures are
// errors: what we cannot read we must not replace.
util::result<std::string> read_file(const fs::path& path, bool& missing) {
  std::error_code ec;
  missing = !fs::exists(path, ec) && !ec;
  if (missing) return std::string();
  std::string text = util::read_small_file(path, ec);
  if (ec) return util::error{"reading " + path.string() + ": " + ec.message()};
  return text;
}

std::string common_name_of(X509* cert) {
  const X509_NAME* name = X509_get_subject_name(cert);
  const int i = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
  if (i < 0) return {};
  const ASN1_STRING* s = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, i));
  return {reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
          static_cast<std::size_t>(ASN1_STRING_length(s))};
}

// Why the pair in `dir` cannot stay, or "" when it can.
util::result<std::string> problem_with_current(const fs::path& dir, X509* ca,
                                               clock::time_point now) {
  bool key_missing = false;
  bool cert_missing = false;
  auto key_text = read_file(dir / token_key_file, key_missing);
  if (!key_text) return util::error{key_text.error_message()};
  auto cert_text = read_file(dir / token_cert_file, cert_missing);
  if (!cert_text) return util::error{cert_text.error_message()};
  if (key_missing) return std::string(token_key_file) + " is missing";
  if (cert_missing) return std::string(token_cert_file) + " is missing";
  auto key = private_key_from_pem(*key_text);
  if (!key) return std::string(token_key_file) + " holds no usable private key";
  auto certs = certificates_from_pem(*cert_text);
  if (!certs) return std::string(token_cert_file) + " is not a readable certificate";
  X509* cert = certs->front().get();
  if (!key_matches(cert, key->get())) {
    return std::string(token_key_file) + " does not belong to " + token_cert_file;
  }
  if (auto st = verify_token_signer(cert, ca, now); !st) return st.error_message();
  const validity v = validity_of(cert);
  const auto renewal = v.not_before + (v.not_after - v.not_before) * 2 / 3;
  if (now >= renewal) {
    return "two thirds of its lifetime passed on " + format_time(renewal) + " (it expires on " +
           format_time(v.not_after) + ")";
  }
  return std::string();
}

}  // namespace

std::string token_signer_report::summary() const {
  return issued ? "token signer issued (" + reason + ")" : "token signer kept";
}

util::status verify_token_signer(X509* cert, X509* ca, clock::time_point now) {
  if (common_name_of(cert) != token_signer_common_name) {
    return util::error{std::string(token_cert_file) + " is not a token signer (CN is not \"" +
                       std::string(token_signer_common_name) + "\")"};
  }
  if (X509_check_ca(cert) != 0) return util::error{"a token signer must not be a CA"};
  if ((X509_get_key_usage(cert) & KU_DIGITAL_SIGNATURE) == 0) {
    return util::error{"the token signer's key usage does not allow signatures"};
  }
  ERR_clear_error();
  detail::x509_store_ptr store(X509_STORE_new());
  detail::x509_store_ctx_ptr ctx(X509_STORE_CTX_new());
  if (!store || !ctx || X509_STORE_add_cert(store.get(), ca) != 1 ||
      X509_STORE_CTX_init(ctx.get(), store.get(), cert, nullptr) != 1) {
    return detail::openssl_failure("setting up certificate verification");
  }
  X509_STORE_CTX_set_time(ctx.get(), 0, clock::to_time_t(now));
  if (X509_verify_cert(ctx.get()) != 1) {
    const int err = X509_STORE_CTX_get_error(ctx.get());
    ERR_clear_error();
    return util::error{std::string("the token signer does not verify against ") + ca_cert_file +
                       " (" + X509_verify_cert_error_string(err) + ")"};
  }
  return util::ok();
}

util::result<token_signer_report> ensure_token_signer(const fs::path& dir, clock::time_point now,
                                                      std::chrono::seconds lifetime) {
  std::error_code ec;
  const std::string ca_text = util::read_small_file(dir / ca_cert_file, ec);
  if (ec) return util::error{"reading " + (dir / ca_cert_file).string() + ": " + ec.message()};
  const std::string ca_key_text = util::read_small_file(dir / ca_key_file, ec);
  if (ec) return util::error{"reading " + (dir / ca_key_file).string() + ": " + ec.message()};
  auto ca_certs = certificates_from_pem(ca_text);
  if (!ca_certs) return util::error{std::string(ca_cert_file) + ": " + ca_certs.error_message()};
  auto ca_key = private_key_from_pem(ca_key_text);
  if (!ca_key) return util::error{std::string(ca_key_file) + ": " + ca_key.error_message()};
  X509* ca = ca_certs->front().get();

  // Copied-in keys with loose modes are tightened, as ensure() does for the others.
  if (fs::exists(dir / token_key_file, ec)) fs::permissions(dir / token_key_file, key_mode, ec);

  auto problem = problem_with_current(dir, ca, now);
  if (!problem) return util::error{problem.error_message()};
  token_signer_report report;
  if (problem->empty()) return report;

  report.issued = true;
  report.reason = std::move(*problem);
  const clock::time_point ca_end = validity_of(ca).not_after;
  const validity v{now - backdate, std::min(now + lifetime, ca_end)};
  auto key = generate_p256_key();
  if (!key) return util::error{key.error_message()};
  auto cert = issue_token_signer_certificate(key->get(), ca, ca_key->get(), v);
  if (!cert) return util::error{cert.error_message()};
  const std::string key_pem = to_pem(key->get());
  const std::string cert_pem = to_pem(cert->get());
  if (key_pem.empty() || cert_pem.empty()) return util::error{"encoding the token signer failed"};
  if (auto wec = util::write_file_atomic(dir / token_key_file, key_pem, key_mode)) {
    return util::error{"writing " + (dir / token_key_file).string() + ": " + wec.message()};
  }
  if (auto wec = util::write_file_atomic(dir / token_cert_file, cert_pem, cert_mode)) {
    return util::error{"writing " + (dir / token_cert_file).string() + ": " + wec.message()};
  }
  return report;
}

}  // namespace registryd::pki
