#pragma once
// The write side of a TLS connection whose records registryd seals itself: OpenSSL runs the
// handshake, the reads, alerts and key updates; at the end of the handshake it hands the write
// keys to this BIO, as it hands them to a kernel-TLS socket, and from then on gives it plain
// text, which the BIO seals straight into the connection's gathered buffer or its socket.
// docs/frontdoor.md, "TLS records sealed by registryd".

#include <openssl/bio.h>
#include <openssl/ssl.h>

#include <cstddef>
#include <memory>
#include <optional>
#include <string>

namespace registryd::frontdoor {

// Bytes written once and then read: grows without zeroing what it adds (sealing writes every
// byte of a record; zeroing 256 KiB per write first would cost as much as a copy).
class byte_buffer {
 public:
  const char* data() const noexcept { return bytes_.get(); }
  std::size_t size() const noexcept { return size_; }
  bool empty() const noexcept { return size_ == 0; }
  void clear() noexcept { size_ = 0; }
  // Room for `n` more bytes at the end, counted in size(): the caller fills all of it.
  char* extend(std::size_t n);
  void append(const char* p, std::size_t n);
  // Gives the memory back.
  void release() noexcept {
    bytes_.reset();
    size_ = capacity_ = 0;
  }

 private:
  std::unique_ptr<char[]> bytes_;
  std::size_t size_ = 0;
  std::size_t capacity_ = 0;
};

// A write BIO on the socket `fd` (not closed with the BIO). Before the write keys arrive, what
// OpenSSL writes (the handshake) goes to the socket as it is; after, every write is sealed into
// records here. A cipher the BIO does not seal (anything but AES-GCM and ChaCha20-Poly1305) is
// refused when OpenSSL offers its keys, and OpenSSL seals that connection's records itself.
// nullptr when out of memory. The SSL needs SSL_OP_ENABLE_KTLS to offer the keys.
BIO* new_record_bio(int fd);

// OpenSSL 3.0 does not hand over the new write keys of a TLS 1.3 key update (to the kernel or
// to this BIO): it logs the new traffic secret, and this installs the key-log callback on the
// server context that derives the keys from it. Without it a client that asks for a key update
// could not read what follows. Set on every context whose connections use record BIOs.
void record_bio_follow_key_updates(SSL_CTX* ctx) noexcept;

// Where the BIO's writes go: appended to `out` while it is set, else to the socket. False (and
// nothing set) when `bio` is not a record BIO.
bool record_bio_gather(BIO* bio, byte_buffer* out) noexcept;

// Whether this is such a BIO and it holds write keys (it seals what it is given).
bool record_bio_seals(BIO* bio) noexcept;

// Where a record keeps its plain text: `before` bytes (the header, and TLS 1.2's explicit nonce)
// ahead of it and `after` bytes (TLS 1.3's inner type, the tag) behind it.
struct record_layout {
  static constexpr std::size_t max_plain = 16384;  // a record's plain text, at most (RFC 8446 5.1)
  std::size_t before = 0;
  std::size_t after = 0;
  // A record of max_plain bytes of plain text.
  std::size_t slot() const noexcept { return before + max_plain + after; }
};

// The layout of the records `bio` seals, when records may be sealed in place now: it is a record
// BIO, holds write keys, and has nothing waiting for the socket. Else nullopt, and records are
// sealed by writing to the SSL.
std::optional<record_layout> record_bio_layout(BIO* bio) noexcept;

// Seals one application-data record in place: its `n` plain bytes (at most max_plain) are at
// `record + before`; the header is written ahead of them and the rest behind, with the BIO's
// keys and next sequence number. Returns the record's size, 0 if it could not be sealed (the
// connection can then only be closed). The caller sends the records in the order sealed, before
// anything else is written to the SSL.
std::size_t record_bio_seal_in_place(BIO* bio, unsigned char* record, std::size_t n) noexcept;

// A check of the above against this OpenSSL: a handshake at `version` (TLS1_2_VERSION or
// TLS1_3_VERSION) with `cipher` (OpenSSL's name; "" for its choice) on a socket pair, the
// server's write side a record BIO with a small socket buffer, an OpenSSL client on the other
// end. The server writes 1 MiB to the socket, 300 KiB gathered and 4 records sealed in place,
// answers a key update (TLS 1.3), seals 2 more records in place and closes with close_notify;
// the client must read all of it back. "" when it did, else
// what failed. `sealed` says whether the BIO took the keys (not for a cipher sealed by OpenSSL).
std::string check_record_sealing(int version, const std::string& cipher, bool& sealed);

// Whether this OpenSSL hands its write keys to the BIO and the records sealed here are read back,
// in TLS 1.3 and 1.2 (check_record_sealing with OpenSSL's choice of cipher). False with the
// reason in `why` when not: OpenSSL then seals every record itself.
bool record_sealing_works(std::string& why);

}  // namespace registryd::frontdoor
