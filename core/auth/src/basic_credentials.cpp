#include <registryd/auth/basic_credentials.hpp>
#include <registryd/sdk/text.hpp>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <cctype>
#include <string>

namespace registryd::auth {
namespace {

constexpr std::size_t max_header = 4096;

bool is_ows(char c) { return c == ' ' || c == '\t'; }

using sdk::trim;

bool is_base64_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '+' || c == '/';
}

// Standard base64, padded or not. EVP_DecodeBlock alone would accept '=' in the middle, skip
// whitespace and count padding as zero bytes, so the shape is checked here first.
std::optional<std::string> decode_base64(std::string_view in) {
  std::size_t data_len = in.size();
  while (data_len > 0 && in[data_len - 1] == '=') --data_len;
  const std::size_t padding = in.size() - data_len;
  if (data_len == 0 || padding > 2) return std::nullopt;
  for (std::size_t i = 0; i < data_len; ++i) {
    if (!is_base64_char(in[i])) return std::nullopt;
  }
  if (data_len % 4 == 1) return std::nullopt;  // no whole byte in the last group
  const std::size_t missing = (4 - data_len % 4) % 4;
  if (padding != 0 && padding != missing) return std::nullopt;

  std::string padded(in.substr(0, data_len));
  padded.append(missing, '=');
  std::string out(padded.size() / 4 * 3, '\0');
  const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(padded.data()),
                                static_cast<int>(padded.size()));
  OPENSSL_cleanse(padded.data(), padded.size());
  if (n < 0 || static_cast<std::size_t>(n) != out.size()) {
    OPENSSL_cleanse(out.data(), out.size());
    return std::nullopt;
  }
  out.resize(out.size() - missing);  // DecodeBlock counts padding as decoded zero bytes
  return out;
}

}  // namespace

std::optional<basic_credentials> parse_basic_authorization(std::string_view header_value) {
  if (header_value.size() > max_header) return std::nullopt;
  const std::string_view value = trim(header_value);
  constexpr std::string_view scheme = "basic";
  if (value.size() <= scheme.size() || !is_ows(value[scheme.size()])) return std::nullopt;
  for (std::size_t i = 0; i < scheme.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(value[i])) != scheme[i]) return std::nullopt;
  }
  const std::string_view token = trim(value.substr(scheme.size()));
  auto decoded = decode_base64(token);
  if (!decoded) return std::nullopt;

  std::optional<basic_credentials> result;
  const std::size_t colon = decoded->find(':');
  if (colon != std::string::npos && colon > 0) {
    basic_credentials creds{decoded->substr(0, colon), decoded->substr(colon + 1)};
    bool ok = creds.password.find('\0') == std::string::npos;
    for (const char c : creds.username) {
      if (std::iscntrl(static_cast<unsigned char>(c))) ok = false;
    }
    if (ok) result = std::move(creds);
  }
  OPENSSL_cleanse(decoded->data(), decoded->size());
  return result;
}

}  // namespace registryd::auth

namespace registryd::auth {

std::string basic_authorization(std::string_view username, std::string_view password) {
  const std::string raw = std::string(username) + ":" + std::string(password);
  std::string out(4 * ((raw.size() + 2) / 3) + 1, '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(raw.data()),
                                static_cast<int>(raw.size()));
  out.resize(n > 0 ? static_cast<std::size_t>(n) : 0);
  return "Basic " + out;
}

}  // namespace registryd::auth
