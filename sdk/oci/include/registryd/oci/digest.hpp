// Content digests as the OCI image spec defines them (`algorithm:encoded`), and a streaming
// hasher. Only the registered algorithms are accepted: sha256 (64 lowercase hex) and sha512
// (128 lowercase hex); anything else is not a digest registryd can verify.
//
// Thread-safety: `digest` is an immutable value. A `hasher` is used by one thread at a time.
#pragma once

#include <compare>
#include <cstddef>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace registryd::oci {

enum class digest_algorithm { sha256, sha512 };

// "sha256" | "sha512"
std::string_view to_string(digest_algorithm algorithm) noexcept;

class digest {
 public:
  // Parses `sha256:<64 hex>` or `sha512:<128 hex>` (lowercase hex, as the spec requires).
  // nullopt for anything else, including unknown algorithms.
  static std::optional<digest> parse(std::string_view text);

  digest_algorithm algorithm() const noexcept { return algorithm_; }
  std::string_view algorithm_name() const noexcept { return to_string(algorithm_); }
  // The encoded part, after the colon.
  std::string_view hex() const noexcept;
  // The whole text, `algorithm:hex`.
  const std::string& str() const noexcept { return text_; }

  friend bool operator==(const digest& a, const digest& b) noexcept { return a.text_ == b.text_; }
  friend std::strong_ordering operator<=>(const digest& a, const digest& b) noexcept {
    return a.text_ <=> b.text_;
  }

 private:
  digest(digest_algorithm algorithm, std::string text)
      : algorithm_(algorithm), text_(std::move(text)) {}
  friend class hasher;

  digest_algorithm algorithm_;
  std::string text_;
};

// Hashes a stream of bytes fed in pieces. Move-only.
class hasher {
 public:
  explicit hasher(digest_algorithm algorithm = digest_algorithm::sha256);
  hasher(hasher&&) noexcept;
  hasher& operator=(hasher&&) noexcept;
  hasher(const hasher&) = delete;
  hasher& operator=(const hasher&) = delete;
  ~hasher();

  digest_algorithm algorithm() const noexcept { return algorithm_; }
  void update(std::string_view bytes);
  void update(const void* data, std::size_t size) {
    update(std::string_view(static_cast<const char*>(data), size));
  }
  // The digest of everything fed so far; the hasher may go on being fed afterwards.
  digest current() const;

 private:
  struct context;
  digest_algorithm algorithm_;
  std::unique_ptr<context> context_;
};

// The digest of a byte string held in memory (manifests, small documents).
digest digest_of(std::string_view bytes, digest_algorithm algorithm = digest_algorithm::sha256);

// The digest of a file, read in bounded chunks; nullopt when it cannot be read.
std::optional<digest> digest_of_file(const std::filesystem::path& file,
                                     digest_algorithm algorithm = digest_algorithm::sha256);

}  // namespace registryd::oci

template <>
struct std::hash<registryd::oci::digest> {
  std::size_t operator()(const registryd::oci::digest& d) const noexcept {
    return std::hash<std::string>{}(d.str());
  }
};
