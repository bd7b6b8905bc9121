#include <registryd/oci/digest.hpp>

#include <openssl/evp.h>

#include <array>
#include <cerrno>
#include <fcntl.h>
#include <stdexcept>
#include <unistd.h>
#include <vector>

namespace registryd::oci {
namespace {

constexpr std::size_t hex_length(digest_algorithm a) noexcept {
  return a == digest_algorithm::sha256 ? 64 : 128;
}

const EVP_MD* evp_of(digest_algorithm a) noexcept {
  return a == digest_algorithm::sha256 ? EVP_sha256() : EVP_sha512();
}

bool is_lower_hex(std::string_view s) noexcept {
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

}  // namespace

std::string_view to_string(digest_algorithm algorithm) noexcept {
  return algorithm == digest_algorithm::sha256 ? "sha256" : "sha512";
}

std::optional<digest> digest::parse(std::string_view text) {
  const auto colon = text.find(':');
  if (colon == std::string_view::npos) return std::nullopt;
  const std::string_view name = text.substr(0, colon);
  const std::string_view encoded = text.substr(colon + 1);
  digest_algorithm algorithm;
  if (name == "sha256") {
    algorithm = digest_algorithm::sha256;
  } else if (name == "sha512") {
    algorithm = digest_algorithm::sha512;
  } else {
    return std::nullopt;
  }
  if (encoded.size() != hex_length(algorithm) || !is_lower_hex(encoded)) return std::nullopt;
  return digest(algorithm, std::string(text));
}

std::string_view digest::hex() const noexcept {
  return std::string_view(text_).substr(algorithm_name().size() + 1);
}

struct hasher::context {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  ~context() { EVP_MD_CTX_free(ctx); }
};

hasher::hasher(digest_algorithm algorithm)
    : algorithm_(algorithm), context_(std::make_unique<context>()) {
  if (context_->ctx == nullptr || EVP_DigestInit_ex(context_->ctx, evp_of(algorithm), nullptr) != 1) {
    throw std::runtime_error("cannot initialise the digest context");
  }
}

hasher::hasher(hasher&&) noexcept = default;
hasher& hasher::operator=(hasher&&) noexcept = default;
hasher::~hasher() = default;

void hasher::update(std::string_view bytes) {
  if (bytes.empty()) return;
  if (EVP_DigestUpdate(context_->ctx, bytes.data(), bytes.size()) != 1) {
    throw std::runtime_error("digest update failed");
  }
}

digest hasher::current() const {
  // Finalising consumes an EVP context, so finish a copy and keep feeding the original.
  context copy;
  std::array<unsigned char, EVP_MAX_MD_SIZE> md{};
  unsigned int size = 0;
  if (copy.ctx == nullptr || EVP_MD_CTX_copy_ex(copy.ctx, context_->ctx) != 1 ||
      EVP_DigestFinal_ex(copy.ctx, md.data(), &size) != 1) {
    throw std::runtime_error("digest finalisation failed");
  }
  static constexpr char hex_digits[] = "0123456789abcdef";
  std::string text(to_string(algorithm_));
  text.reserve(text.size() + 1 + 2 * size);
  text.push_back(':');
  for (unsigned int i = 0; i < size; ++i) {
    text.push_back(hex_digits[md[i] >> 4]);
    text.push_back(hex_digits[md[i] & 0x0f]);
  }
  return digest(algorithm_, std::move(text));
}

digest digest_of(std::string_view bytes, digest_algorithm algorithm) {
  hasher h(algorithm);
  h.update(bytes);
  return h.current();
}

std::optional<digest> digest_of_file(const std::filesystem::path& file, digest_algorithm algorithm) {
  const int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  hasher h(algorithm);
  std::vector<char> buffer(256 * 1024);
  bool ok = true;
  for (;;) {
    const ssize_t n = ::read(fd, buffer.data(), buffer.size());
    if (n == 0) break;
    if (n < 0) {
      if (errno == EINTR) continue;
      ok = false;
      break;
    }
    h.update(buffer.data(), static_cast<std::size_t>(n));
  }
  ::close(fd);
  if (!ok) return std::nullopt;
  return h.current();
}

}  // namespace registryd::oci
