#include <registryd/oci/base64.hpp>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <cctype>

namespace registryd::oci {
namespace {

bool is_base64_char(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '+' || c == '/'; }

}  // namespace

std::string base64_encode(std::string_view bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(bytes.data()), static_cast<int>(bytes.size()));
  out.resize(static_cast<std::size_t>(n));
  return out;
}

// EVP_DecodeBlock alone would accept '=' in the middle, skip whitespace and count padding as
// zero bytes, so the shape is checked here first.
std::optional<std::string> base64_decode(std::string_view in) {
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
                                reinterpret_cast<const unsigned char*>(padded.data()), static_cast<int>(padded.size()));
  OPENSSL_cleanse(padded.data(), padded.size());
  if (n < 0 || static_cast<std::size_t>(n) != out.size()) {
    OPENSSL_cleanse(out.data(), out.size());
    return std::nullopt;
  }
  out.resize(out.size() - missing);  // DecodeBlock counts padding as decoded zero bytes
  return out;
}

}  // namespace registryd::oci
