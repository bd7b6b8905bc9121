#include <registryd/pki/pki_directory.hpp>

#include <registryd/util/atomic_file.hpp>

#include <openssl/x509.h>

#include <ctime>
#include <system_error>

namespace registryd::pki {
namespace fs = std::filesystem;

namespace {

// New certificates start a little in the past so that a peer whose clock is slightly behind
// ours does not reject them as "not yet valid".
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

clock::time_point renewal_point(const validity& v) {
  return v.not_before + (v.not_after - v.not_before) * 2 / 3;
}

// A file's text. A missing file is a finding ("" returned and `problem` set); any other read
// failure is an error, because replacing what we merely cannot read would destroy a good CA.
util::result<std::string> read_if_present(const fs::path& path, std::string& problem) {
  std::error_code ec;
  if (!fs::exists(path, ec) && !ec) {
    problem = path.filename().string() + " is missing";
    return std::string();
  }
  std::string text = util::read_small_file(path, ec);
  if (ec) return util::error{"reading " + path.string() + ": " + ec.message()};
  return text;
}

util::status write(const fs::path& path, const std::string& content, fs::perms mode) {
  if (content.empty()) return util::error{"encoding " + path.filename().string() + " failed"};
  if (auto ec = util::write_file_atomic(path, content, mode)) {
    return util::error{"writing " + path.string() + ": " + ec.message()};
  }
  return util::ok();
}

struct loaded {
  x509_ptr cert;
  std::vector<x509_ptr> rest;  // certificates after the first one in the file
  pkey_ptr key;
  std::string problem;  // why it cannot be used as it is; "" when it loaded
};

// Loads a certificate file and its key file; only I/O errors are errors.
util::result<loaded> load_pair(const fs::path& dir, const char* cert_file, const char* key_file) {
  loaded out;
  auto key_text = read_if_present(dir / key_file, out.problem);
  if (!key_text) return util::error{key_text.error_message()};
  if (!out.problem.empty()) return out;
  auto cert_text = read_if_present(dir / cert_file, out.problem);
  if (!cert_text) return util::error{cert_text.error_message()};
  if (!out.problem.empty()) return out;

  auto key = private_key_from_pem(*key_text);
  if (!key) {
    out.problem = std::string(key_file) + " holds no usable private key";
    return out;
  }
  auto certs = certificates_from_pem(*cert_text);
  if (!certs) {
    out.problem = std::string(cert_file) + " is not a readable certificate (" +
                  certs.error_message() + ")";
    return out;
  }
  out.key = std::move(*key);
  out.cert = std::move(certs->front());
  for (std::size_t i = 1; i < certs->size(); ++i) out.rest.push_back(std::move((*certs)[i]));
  if (!key_matches(out.cert.get(), out.key.get())) {
    out.problem = std::string(key_file) + " does not belong to " + cert_file;
  }
  return out;
}

// Keys we keep must not stay readable by others, whoever copied them in.
void tighten_key_mode(const fs::path& path, ensure_report& report) {
  std::error_code ec;
  const auto st = fs::status(path, ec);
  if (ec || !fs::is_regular_file(st)) return;
  if ((st.permissions() & (fs::perms::group_all | fs::perms::others_all)) == fs::perms::none) {
    return;
  }
  fs::permissions(path, key_mode, ec);
  if (!ec) report.notes.push_back("tightened " + path.filename().string() + " to mode 0600");
}

// Why the serving pair cannot stay, or "" when it can.
std::string serving_problem(const loaded& serving, X509* ca, const subject_alt_names& wanted,
                            clock::time_point now) {
  if (!serving.problem.empty()) return serving.problem;
  if (auto st = verify_issued_by(serving.cert.get(), ca); !st) {
    return std::string(serving_cert_file) + " does not chain to " + ca_cert_file + " (" +
           st.error_message() + ")";
  }
  const validity v = validity_of(serving.cert.get());
  if (now >= v.not_after) return std::string(serving_cert_file) + " expired on " + format_time(v.not_after);
  if (now < v.not_before) {
    return std::string(serving_cert_file) + " is not valid until " + format_time(v.not_before);
  }
  if (const auto have = sans_of(serving.cert.get()); have != wanted) {
    return "the names differ: wanted " + wanted.to_string() + ", " + serving_cert_file + " has " +
           have.to_string();
  }
  if (now >= renewal_point(v)) {
    return "two thirds of its lifetime passed on " + format_time(renewal_point(v)) +
           " (it expires on " + format_time(v.not_after) + ")";
  }
  return {};
}

bool chain_is(const std::vector<x509_ptr>& rest, const X509* ca) {
  return rest.size() == 1 && X509_cmp(rest.front().get(), ca) == 0;
}

}  // namespace

std::string ensure_report::summary() const {
  std::string out;
  switch (ca) {
    case ca_action::kept: out = "CA kept"; break;
    case ca_action::created: out = "CA created (" + ca_reason + ")"; break;
    case ca_action::renewed: out = "CA renewed with the same key (" + ca_reason + ")"; break;
  }
  switch (serving) {
    case serving_action::kept: out += "; serving certificate kept"; break;
    case serving_action::issued: out += "; serving certificate issued (" + serving_reason + ")"; break;
    case serving_action::chain_updated:
      out += "; serving chain updated (" + serving_reason + ")";
      break;
  }
  for (const auto& n : notes) out += "; " + n;
  return out;
}

util::result<ensure_report> ensure(const pki_options& options, const subject_alt_names& wanted,
                                   clock::time_point now) {
  if (wanted.empty()) return util::error{"no names for the serving certificate"};
  const fs::path& dir = options.dir;
  std::error_code ec;
  if (fs::create_directories(dir, ec)) fs::permissions(dir, fs::perms::owner_all, ec);
  if (ec) return util::error{"creating " + dir.string() + ": " + ec.message()};

  ensure_report report;
  tighten_key_mode(dir / ca_key_file, report);
  tighten_key_mode(dir / serving_key_file, report);

  // --- the CA ---
  auto ca_loaded = load_pair(dir, ca_cert_file, ca_key_file);
  if (!ca_loaded) return util::error{ca_loaded.error_message()};
  loaded ca = std::move(*ca_loaded);
  if (ca.problem.empty()) {
    if (auto st = check_self_signed_ca(ca.cert.get()); !st) {
      ca.problem = std::string(ca_cert_file) + " is not a usable CA: " + st.error_message();
    }
  }
  if (!ca.problem.empty()) {
    report.ca = ca_action::created;
    report.ca_reason = ca.problem;
  } else {
    const validity v = validity_of(ca.cert.get());
    if (now >= v.not_after) {
      report.ca = ca_action::created;
      report.ca_reason = std::string(ca_cert_file) + " expired on " + format_time(v.not_after);
    } else if (now < v.not_before) {
      report.ca = ca_action::renewed;
      report.ca_reason = std::string(ca_cert_file) + " is not valid until " +
                         format_time(v.not_before) + " (did the clock go back?)";
    } else if (now >= renewal_point(v)) {
      report.ca = ca_action::renewed;
      report.ca_reason = "two thirds of its lifetime passed on " + format_time(renewal_point(v)) +
                         " (it expires on " + format_time(v.not_after) + ")";
    }
  }
  const validity ca_validity{now - backdate, now + options.ca_lifetime};
  if (report.ca == ca_action::created) {
    auto key = generate_p256_key();
    if (!key) return util::error{key.error_message()};
    auto cert = issue_ca_certificate(key->get(), options.ca_common_name, ca_validity);
    if (!cert) return util::error{cert.error_message()};
    ca.key = std::move(*key);
    ca.cert = std::move(*cert);
    if (auto st = write(dir / ca_key_file, to_pem(ca.key.get()), key_mode); !st) {
      return util::error{st.error_message()};
    }
  } else if (report.ca == ca_action::renewed) {
    auto cert = renew_ca_certificate(ca.cert.get(), ca.key.get(), ca_validity);
    if (!cert) return util::error{cert.error_message()};
    ca.cert = std::move(*cert);
  }
  if (report.ca != ca_action::kept) {
    if (auto st = write(dir / ca_cert_file, to_pem(ca.cert.get()), cert_mode); !st) {
      return util::error{st.error_message()};
    }
  }

  // --- the serving certificate ---
  auto serving_loaded = load_pair(dir, serving_cert_file, serving_key_file);
  if (!serving_loaded) return util::error{serving_loaded.error_message()};
  loaded serving = std::move(*serving_loaded);
  std::string problem = report.ca == ca_action::created
                            ? "the CA was re-created"
                            : serving_problem(serving, ca.cert.get(), wanted, now);
  if (!problem.empty()) {
    report.serving = serving_action::issued;
    report.serving_reason = std::move(problem);
    // Never outlive the CA: a chain is only as valid as its shortest-lived link.
    const clock::time_point ca_end = validity_of(ca.cert.get()).not_after;
    const validity v{now - backdate, std::min(now + options.serving_lifetime, ca_end)};
    auto key = generate_p256_key();
    if (!key) return util::error{key.error_message()};
    auto cert = issue_serving_certificate(key->get(), wanted, ca.cert.get(), ca.key.get(), v);
    if (!cert) return util::error{cert.error_message()};
    serving.key = std::move(*key);
    serving.cert = std::move(*cert);
    if (auto st = write(dir / serving_key_file, to_pem(serving.key.get()), key_mode); !st) {
      return util::error{st.error_message()};
    }
  } else if (!chain_is(serving.rest, ca.cert.get())) {
    report.serving = serving_action::chain_updated;
    report.serving_reason = std::string("the CA certificate after the leaf in ") +
                            serving_cert_file + " is not the current " + ca_cert_file;
  }
  if (report.serving != serving_action::kept) {
    const std::string leaf_pem = to_pem(serving.cert.get());
    const std::string ca_text = to_pem(ca.cert.get());
    if (leaf_pem.empty() || ca_text.empty()) return util::error{"encoding tls.crt failed"};
    if (auto st = write(dir / serving_cert_file, leaf_pem + ca_text, cert_mode); !st) {
      return util::error{st.error_message()};
    }
  }
  return report;
}

}  // namespace registryd::pki
