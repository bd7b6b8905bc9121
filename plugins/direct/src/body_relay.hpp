// What the host pulls from when an upstream answer body streams through Direct mode: the
// bytes of a client::response_stream (the SDK's bounded producer/consumer bridge between the
// upstream client and a puller), optionally verified against the digest the client asked for.
//
// Verification: every chunk is hashed as it arrives, and the latest chunk is held back until
// the next one has arrived or the end was verified. Bytes that do not hash to the digest
// therefore never reach the client whole: read() throws, the host closes the connection, and
// the client sees a short body. The hold-back is one chunk (at most the host's read size), so
// memory stays bounded whatever the size of the blob.
//
// Thread-safety: one reader thread, as sdk::body_source.
#pragma once

#include <registryd/oci/digest.hpp>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace registryd::direct {

class body_relay {
 public:
  // Fills up to `capacity` bytes; returns the count, 0 at the end, -1 on failure.
  using pull_fn = std::function<std::ptrdiff_t(char* buffer, std::size_t capacity)>;
  // Why the last pull failed, for the exception's message.
  using why_fn = std::function<std::string()>;

  // `min_fill`: a read gathers at least this many bytes (or what is left) before it returns.
  // The upstream arrives in pieces as each socket read gave them (often a TLS record); passing each on
  // alone would cost the host a socket write (and a TLS record) per piece.
  body_relay(pull_fn pull, why_fn why, std::optional<oci::digest> verify, std::size_t min_fill = 128 * 1024);

  // Copies up to `capacity` bytes into `buffer`; returns the count, 0 at the end of a complete
  // (and, with verification, matching) body. Throws std::runtime_error when the body broke
  // off or does not match.
  std::size_t read(char* buffer, std::size_t capacity);

  // Bytes handed out so far.
  std::uint64_t delivered() const noexcept { return delivered_; }
  // True once read() returned 0.
  bool complete() const noexcept { return complete_; }

 private:
  // pull_ repeated until `capacity` is at least min(capacity, min_fill_) full or the source
  // ended (0) or failed (-1, remembered when some bytes came before it).
  std::ptrdiff_t fill(char* buffer, std::size_t capacity);

  pull_fn pull_;
  why_fn why_;
  std::optional<oci::digest> verify_;
  std::optional<oci::hasher> hash_;
  std::string held_;           // hashed bytes not yet handed out
  std::string scratch_;        // where the next chunk is pulled into
  std::size_t offset_ = 0;     // of held_, handed out
  std::size_t last_chunk_ = 0; // the tail of held_ that must wait for the next chunk
  std::size_t min_fill_;
  bool source_failed_ = false; // a pull failed after fill() had bytes to return
  bool ended_ = false;         // the pull reached the end (and it verified)
  bool complete_ = false;
  std::uint64_t delivered_ = 0;
};

}  // namespace registryd::direct
