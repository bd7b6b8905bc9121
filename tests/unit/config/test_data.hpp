// Shared test data: throwaway self-signed certificates (P-256, no private key kept) and
// builders for ModuleConfig documents.
#pragma once

#include <registryd/config/errors.hpp>

#include <catch2/catch.hpp>

#include <string>
#include <string_view>
#include <vector>

namespace registryd::config::test {

inline constexpr std::string_view cert_a = R"(-----BEGIN CERTIFICATE-----
MIIBkzCCATmgAwIBAgIUILHwOQszpTSARHEoGdY3NxfrRFowCgYIKoZIzj0EAwIw
HjEcMBoGA1UEAwwTcmVnaXN0cnlkIHRlc3QgQ0EgYTAgFw0yNjExMjIwMjQ4MjJa
GA8yMTI2MTAyOTAyNDgyMlowHjEcMBoGA1UEAwwTcmVnaXN0cnlkIHRlc3QgQ0Eg
YTBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABAQQ2RBV9wxYKEqnpjRiXhYHEMz6
dwtbQmMmM5ldX0V8U1aQrYSDzBetHmglUiAJ791z1MqUtt789rV+fGH6rQajUzBR
MB0GA1UdDgQWBBRtpjz5cXfXR1r7wiRFlj2wWQoX5TAfBgNVHSMEGDAWgBRtpjz5
cXfXR1r7wiRFlj2wWQoX5TAPBgNVHRMBAf8EBTADAQH/MAoGCCqGSM49BAMCA0gA
MEUCIEq+HfGZHwsEiMZ3dID1UqasRVW3UX6Tvu9Wk6T3Dj4zAiEA2tyPke+vki5x
JCw2dr6Z3sxi1THgpprHrEQLFPMtulA=
-----END CERTIFICATE-----
)";

inline constexpr std::string_view cert_b = R"(-----BEGIN CERTIFICATE-----
MIIBlDCCATmgAwIBAgIUalZDdnsiBbmtH2IiUiAzc35Xvg4wCgYIKoZIzj0EAwIw
HjEcMBoGA1UEAwwTcmVnaXN0cnlkIHRlc3QgQ0EgYjAgFw0yNjExMjIwMjQ4MjJa
GA8yMTI2MTAyOTAyNDgyMlowHjEcMBoGA1UEAwwTcmVnaXN0cnlkIHRlc3QgQ0Eg
YjBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABE2A/thxUV+16pFmlt8NsHaplGvf
3wYExAam7D2NXew/L3Ov4PkxmLVCF1nPU5KNFYb9LKgBWYQLrTWyS53HFnqjUzBR
MB0GA1UdDgQWBBR7g7kG5+fN6EXcaMUWNOXT3dnGyjAfBgNVHSMEGDAWgBR7g7kG
5+fN6EXcaMUWNOXT3dnGyjAPBgNVHRMBAf8EBTADAQH/MAoGCCqGSM49BAMCA0kA
MEYCIQDkEFX0D0m+zJ/2SSzw2dNN3gt2z7q4mq+rH9qZkaLUOAIhANAcHpHB4tPK
TtvjVeA9r72/Gup+BAHSn7s5uH7ZK7t+
-----END CERTIFICATE-----
)";

inline constexpr std::string_view public_key = R"(-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEBBDZEFX3DFgoSqemNGJeFgcQzPp3
C1tCYyYzmV1fRXxTVpCthIPMF60eaCVSIAnv3XPUypS23vz2tX58YfqtBg==
-----END PUBLIC KEY-----
)";

// A CERTIFICATE block whose base64 decodes to text, not DER.
inline constexpr std::string_view not_a_certificate = R"(-----BEGIN CERTIFICATE-----
ZGVmaW5pdGVseSBub3QgYSBjZXJ0aWZpY2F0ZQ==
-----END CERTIFICATE-----
)";

// Indents every line of `text` by `spaces`.
inline std::string indent(std::string_view text, int spaces) {
  std::string out;
  const std::string pad(static_cast<std::size_t>(spaces), ' ');
  std::size_t start = 0;
  while (start < text.size()) {
    std::size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    out += pad;
    out += text.substr(start, end - start);
    out += '\n';
    start = end + 1;
  }
  return out;
}

inline const std::string module_config_header =
    "apiVersion: deckhouse.io/v1alpha1\n"
    "kind: ModuleConfig\n"
    "metadata:\n"
    "  name: deckhouse\n"
    "spec:\n"
    "  version: 1\n"
    "  settings:\n";

// A deckhouse ModuleConfig whose spec.settings.registry is `registry` (YAML, unindented).
inline std::string with_registry(std::string_view registry) {
  return module_config_header + "    registry:\n" + indent(registry, 6);
}

// "<path>: <reason>" of every error, for readable failure output.
inline std::vector<std::string> messages(const field_errors& errors) {
  std::vector<std::string> out;
  for (const auto& e : errors) out.push_back(e.to_string());
  return out;
}

// Whether `errors` holds exactly the error `path`: `reason`.
inline bool has_error(const field_errors& errors, std::string_view path, std::string_view reason) {
  for (const auto& e : errors) {
    if (e.path == path && e.reason == reason) return true;
  }
  return false;
}

// Whether `errors` holds an error at `path` whose reason contains `part`.
inline bool has_error_containing(const field_errors& errors, std::string_view path,
                                 std::string_view part) {
  for (const auto& e : errors) {
    if (e.path == path && e.reason.find(part) != std::string::npos) return true;
  }
  return false;
}

}  // namespace registryd::config::test
