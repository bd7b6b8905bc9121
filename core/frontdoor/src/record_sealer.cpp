#include "record_sealer.hpp"

#include <linux/tls.h>
#include <openssl/err.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <registryd/pki/certificates.hpp>

#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <array>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string_view>

namespace registryd::frontdoor {

char* byte_buffer::extend(std::size_t n) {
  if (size_ + n > capacity_) {
    const std::size_t capacity = std::max(size_ + n, capacity_ * 2);
    auto bigger = std::make_unique_for_overwrite<char[]>(capacity);
    if (size_ > 0) std::memcpy(bigger.get(), bytes_.get(), size_);
    bytes_ = std::move(bigger);
    capacity_ = capacity;
  }
  char* at = bytes_.get() + size_;
  size_ += n;
  return at;
}

void byte_buffer::append(const char* p, std::size_t n) {
  if (n > 0) std::memcpy(extend(n), p, n);
}

namespace {

// OpenSSL's BIO controls for kernel TLS, in its internal header (include/internal/bio.h) and
// listed in a comment of the public one: the write keys offered (the argument is Linux's
// tls12_crypto_info_* for the cipher, `num` non-zero for the write side), and the record type of the
// next write when it is not application data.
constexpr int ctrl_set_keys = 72;
constexpr int ctrl_next_record_type = 74;
constexpr int ctrl_clear_record_type = 75;

constexpr unsigned char application_data = 23;
constexpr std::size_t max_plain = record_layout::max_plain;
constexpr std::size_t tag_size = 16;

// HKDF-Expand-Label(secret, label, "", out_size) of RFC 8446 7.1.
bool expand_label(const EVP_MD* md, const unsigned char* secret, std::size_t secret_size, std::string_view label,
                  unsigned char* out, std::size_t out_size) {
  std::array<unsigned char, 2 + 1 + 32 + 1> info{};
  const std::string full = "tls13 " + std::string(label);
  if (full.size() > 32) return false;
  std::size_t n = 0;
  info[n++] = static_cast<unsigned char>(out_size >> 8);
  info[n++] = static_cast<unsigned char>(out_size);
  info[n++] = static_cast<unsigned char>(full.size());
  std::memcpy(info.data() + n, full.data(), full.size());
  n += full.size();
  info[n++] = 0;  // no context
  EVP_KDF* kdf = EVP_KDF_fetch(nullptr, "HKDF", nullptr);
  EVP_KDF_CTX* kctx = kdf != nullptr ? EVP_KDF_CTX_new(kdf) : nullptr;
  int mode = EVP_KDF_HKDF_MODE_EXPAND_ONLY;
  const OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string("digest", const_cast<char*>(EVP_MD_get0_name(md)), 0),
      OSSL_PARAM_construct_int("mode", &mode),
      OSSL_PARAM_construct_octet_string("key", const_cast<unsigned char*>(secret), secret_size),
      OSSL_PARAM_construct_octet_string("info", info.data(), n),
      OSSL_PARAM_construct_end(),
  };
  const bool ok = kctx != nullptr && EVP_KDF_derive(kctx, out, out_size, params) == 1;
  EVP_KDF_CTX_free(kctx);
  EVP_KDF_free(kdf);
  return ok;
}

// One connection's write keys and where the next record's nonce and sequence number stand.
class write_keys {
 public:
  write_keys() = default;
  write_keys(const write_keys&) = delete;
  write_keys& operator=(const write_keys&) = delete;
  ~write_keys() { EVP_CIPHER_CTX_free(ctx_); }

  // Takes the keys OpenSSL offers (Linux's crypto_info for the cipher). False for a cipher or
  // version not sealed here.
  bool take(const void* offered) {
    tls_crypto_info info{};
    std::memcpy(&info, offered, sizeof info);
    if (info.version != TLS_1_2_VERSION && info.version != TLS_1_3_VERSION) return false;
    tls13_ = info.version == TLS_1_3_VERSION;
    switch (info.cipher_type) {
      case TLS_CIPHER_AES_GCM_128:
        return take_gcm(*static_cast<const tls12_crypto_info_aes_gcm_128*>(offered), EVP_aes_128_gcm());
      case TLS_CIPHER_AES_GCM_256:
        return take_gcm(*static_cast<const tls12_crypto_info_aes_gcm_256*>(offered), EVP_aes_256_gcm());
      case TLS_CIPHER_CHACHA20_POLY1305: {
        const auto& k = *static_cast<const tls12_crypto_info_chacha20_poly1305*>(offered);
        std::memcpy(iv_.data(), k.iv, sizeof k.iv);
        explicit_nonce_ = false;
        return start(EVP_chacha20_poly1305(), k.key, k.rec_seq);
      }
      default:
        return false;
    }
  }

  // TLS 1.3's key update (RFC 8446 7.2): the keys and IV from the next traffic secret, which
  // OpenSSL logs as it moves to it, and the sequence number back to 0.
  bool update(const EVP_MD* md, const unsigned char* secret, std::size_t secret_size) {
    if (!tls13_ || ctx_ == nullptr || md == nullptr) return false;
    std::array<unsigned char, 32> key{};
    const auto key_size = static_cast<std::size_t>(EVP_CIPHER_CTX_get_key_length(ctx_));
    if (key_size > key.size() || !expand_label(md, secret, secret_size, "key", key.data(), key_size) ||
        !expand_label(md, secret, secret_size, "iv", iv_.data(), iv_.size()) ||
        EVP_EncryptInit_ex(ctx_, nullptr, nullptr, key.data(), nullptr) != 1) {
      return false;
    }
    seq_ = 0;
    return true;
  }

  // Seals `plain` (any length; one record per 16 KiB) as records of `type`, appended to `out`.
  bool seal(const unsigned char* plain, std::size_t len, unsigned char type, byte_buffer& out) {
    do {
      const std::size_t n = std::min(len, max_plain);
      if (!seal_one(plain, n, type, out)) return false;
      plain += n;
      len -= n;
    } while (len > 0);
    return true;
  }

  // Where a record's plain text sits in it: header (and TLS 1.2's explicit nonce) before it,
  // TLS 1.3's inner type and the tag after it.
  record_layout layout() const noexcept {
    return {std::size_t{5} + (explicit_nonce_ ? 8 : 0), std::size_t{tls13_ ? 1U : 0U} + tag_size};
  }

  // Seals the record at `r` (layout().before + n + layout().after bytes) from `plain`: n bytes
  // elsewhere, or exactly at r + layout().before (sealed in place; EVP's AEAD ciphers encrypt
  // in place when the output is the input).
  bool seal_at(unsigned char* r, const unsigned char* plain, std::size_t n, unsigned char type) {
    const record_layout shape = layout();
    const std::size_t body = shape.before - 5 + n + shape.after;
    // The header: TLS 1.3 hides the type inside and shows application data (RFC 8446 5.2).
    r[0] = tls13_ ? application_data : type;
    r[1] = 3;
    r[2] = 3;
    r[3] = static_cast<unsigned char>(body >> 8);
    r[4] = static_cast<unsigned char>(body);
    std::array<unsigned char, 12> nonce = iv_;
    std::array<unsigned char, 13> aad{};
    std::size_t aad_size = 5;
    unsigned char* sealed = r + 5;
    if (explicit_nonce_) {
      // TLS 1.2 AES-GCM (RFC 5288 3): the nonce's last 8 bytes go in the clear before the cipher
      // text, and count up per record from what OpenSSL handed over.
      std::memcpy(sealed, iv_.data() + 4, 8);
      sealed += 8;
      for (int i = 11; i >= 4 && ++iv_[static_cast<std::size_t>(i)] == 0; --i) {
      }
    } else {
      // TLS 1.3 and ChaCha20-Poly1305: the static IV xor the sequence number (RFC 8446 5.3).
      for (int i = 0; i < 8; ++i) nonce[static_cast<std::size_t>(11 - i)] ^= static_cast<unsigned char>(seq_ >> (8 * i));
    }
    if (tls13_) {
      std::memcpy(aad.data(), r, 5);
    } else {
      // TLS 1.2: sequence number, type, version, plain length (RFC 5246 6.2.3.3).
      for (int i = 0; i < 8; ++i) aad[static_cast<std::size_t>(7 - i)] = static_cast<unsigned char>(seq_ >> (8 * i));
      aad[8] = type;
      aad[9] = 3;
      aad[10] = 3;
      aad[11] = static_cast<unsigned char>(n >> 8);
      aad[12] = static_cast<unsigned char>(n);
      aad_size = 13;
    }
    ++seq_;
    int l = 0;
    if (EVP_EncryptInit_ex(ctx_, nullptr, nullptr, nullptr, nonce.data()) != 1 ||
        EVP_EncryptUpdate(ctx_, nullptr, &l, aad.data(), static_cast<int>(aad_size)) != 1 ||
        (n > 0 && EVP_EncryptUpdate(ctx_, sealed, &l, plain, static_cast<int>(n)) != 1) ||
        (tls13_ && EVP_EncryptUpdate(ctx_, sealed + n, &l, &type, 1) != 1) ||
        EVP_EncryptFinal_ex(ctx_, sealed + n, &l) != 1 ||
        EVP_CIPHER_CTX_ctrl(ctx_, EVP_CTRL_AEAD_GET_TAG, tag_size, sealed + n + (tls13_ ? 1 : 0)) != 1) {
      return false;
    }
    return true;
  }

 private:
  // AES-GCM: the 12-byte nonce is the 4-byte salt and 8 bytes OpenSSL counted to.
  template <class Info>
  bool take_gcm(const Info& k, const EVP_CIPHER* cipher) {
    std::memcpy(iv_.data(), k.salt, sizeof k.salt);
    std::memcpy(iv_.data() + sizeof k.salt, k.iv, sizeof k.iv);
    explicit_nonce_ = !tls13_;
    return start(cipher, k.key, k.rec_seq);
  }

  // Keys the cipher and takes the record sequence number (8 bytes, big-endian).
  bool start(const EVP_CIPHER* cipher, const unsigned char* key, const unsigned char* seq) {
    seq_ = 0;
    for (int i = 0; i < 8; ++i) seq_ = (seq_ << 8) | seq[i];
    if (ctx_ == nullptr) ctx_ = EVP_CIPHER_CTX_new();
    return ctx_ != nullptr && EVP_EncryptInit_ex(ctx_, cipher, nullptr, key, nullptr) == 1;
  }

  bool seal_one(const unsigned char* plain, std::size_t n, unsigned char type, byte_buffer& out) {
    const record_layout l = layout();
    return seal_at(reinterpret_cast<unsigned char*>(out.extend(l.before + n + l.after)), plain, n, type);
  }

  EVP_CIPHER_CTX* ctx_ = nullptr;
  std::array<unsigned char, 12> iv_{};
  std::uint64_t seq_ = 0;
  bool tls13_ = false;
  bool explicit_nonce_ = false;
};

struct record_bio_state {
  int fd = -1;
  std::optional<write_keys> keys;
  bool keys_failed = false;       // a key update could not be followed
  byte_buffer* gather = nullptr;  // where writes go while set
  unsigned char next_type = application_data;
  // Records sealed for the socket that it has not taken all of, and the plain bytes they hold:
  // OpenSSL retries the same write, which is done once they are sent.
  byte_buffer pending;
  std::size_t pending_sent = 0;
  std::size_t pending_plain = 0;
};

// Sends what is pending. 1 when all of it is sent, -1 (retry set when the socket is full) else.
int send_pending(BIO* b, record_bio_state& s) {
  while (s.pending_sent < s.pending.size()) {
    const ssize_t n = ::send(s.fd, s.pending.data() + s.pending_sent, s.pending.size() - s.pending_sent, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) BIO_set_retry_write(b);
      return -1;
    }
    s.pending_sent += static_cast<std::size_t>(n);
  }
  // Writes to the socket are the rare short ones (session tickets, a refusal, close_notify):
  // an idle connection keeps no buffer for them.
  s.pending.release();
  s.pending_sent = 0;
  return 1;
}

int record_write(BIO* b, const char* data, int len) {
  BIO_clear_retry_flags(b);
  auto& s = *static_cast<record_bio_state*>(BIO_get_data(b));
  const auto size = static_cast<std::size_t>(std::max(len, 0));
  const auto* plain = reinterpret_cast<const unsigned char*>(data);
  try {
    if (!s.keys) {
      // The handshake, or a connection whose records OpenSSL seals: the bytes as they are.
      if (s.gather != nullptr) {
        s.gather->append(data, size);
        return len;
      }
      const ssize_t n = ::send(s.fd, data, size, MSG_NOSIGNAL);
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) BIO_set_retry_write(b);
      return static_cast<int>(n);
    }
    if (s.keys_failed) return -1;
    const unsigned char type = std::exchange(s.next_type, application_data);
    if (s.gather != nullptr) return s.keys->seal(plain, size, type, *s.gather) ? len : -1;
    if (s.pending.empty()) {
      if (!s.keys->seal(plain, size, type, s.pending)) return -1;
      s.pending_plain = size;
    }
    // Else this is OpenSSL's retry of the write whose records are pending.
    if (send_pending(b, s) < 0) return -1;
    return static_cast<int>(s.pending_plain);
  } catch (...) {  // out of memory; no exception may cross OpenSSL's C frames
    return -1;
  }
}

long record_ctrl(BIO* b, int cmd, long num, void* ptr) {
  auto& s = *static_cast<record_bio_state*>(BIO_get_data(b));
  switch (cmd) {
    case ctrl_set_keys:
      if (num == 0 || ptr == nullptr) return 0;  // only the write side (num: SSL3_CC_WRITE)
      if (!s.keys) s.keys.emplace();
      if (!s.keys->take(ptr)) {
        s.keys.reset();
        return 0;
      }
      return 1;
    case BIO_CTRL_GET_KTLS_SEND:
      return s.keys ? 1 : 0;
    case ctrl_next_record_type:
      s.next_type = static_cast<unsigned char>(num);
      return 1;
    case ctrl_clear_record_type:
      s.next_type = application_data;
      return 1;
    case BIO_CTRL_FLUSH:
      BIO_clear_retry_flags(b);
      return s.pending.empty() ? 1 : send_pending(b, s);
    case BIO_CTRL_WPENDING:
      return static_cast<long>(s.pending.size() - s.pending_sent);
    default:
      return 0;
  }
}

// The BIO type of record BIOs, made once.
int record_bio_type() {
  static const int type = BIO_get_new_index() | BIO_TYPE_SOURCE_SINK;
  return type;
}

BIO_METHOD* record_bio_method() {
  static BIO_METHOD* const method = [] {
    BIO_METHOD* m = BIO_meth_new(record_bio_type(), "registryd records");
    if (m == nullptr) return m;
    BIO_meth_set_write(m, record_write);
    BIO_meth_set_ctrl(m, record_ctrl);
    BIO_meth_set_create(m, [](BIO* b) -> int {
      BIO_set_init(b, 1);
      return 1;
    });
    BIO_meth_set_destroy(m, [](BIO* b) -> int {
      delete static_cast<record_bio_state*>(BIO_get_data(b));
      BIO_set_data(b, nullptr);
      return 1;
    });
    return m;
  }();
  return method;
}

record_bio_state* state_of(BIO* bio) noexcept {
  if (bio == nullptr || record_bio_method() == nullptr || BIO_method_type(bio) != record_bio_type()) {
    return nullptr;
  }
  return static_cast<record_bio_state*>(BIO_get_data(bio));
}

}  // namespace

BIO* new_record_bio(int fd) {
  if (record_bio_method() == nullptr) return nullptr;
  BIO* b = BIO_new(record_bio_method());
  if (b == nullptr) return nullptr;
  auto* s = new (std::nothrow) record_bio_state;
  if (s == nullptr) {
    BIO_free(b);
    return nullptr;
  }
  s->fd = fd;
  BIO_set_data(b, s);
  return b;
}

void record_bio_follow_key_updates(SSL_CTX* ctx) noexcept {
  SSL_CTX_set_keylog_callback(ctx, [](const SSL* ssl, const char* line) {
    // "SERVER_TRAFFIC_SECRET_N <client random> <secret in hex>": the server's next write secret.
    static constexpr std::string_view next_secret = "SERVER_TRAFFIC_SECRET_N ";
    const std::string_view text(line);
    auto* s = state_of(SSL_get_wbio(ssl));
    if (s == nullptr || !s->keys || !text.starts_with(next_secret)) return;
    const auto space = text.find(' ', next_secret.size());
    if (space == std::string_view::npos) return;
    const std::string_view hex = text.substr(space + 1);
    std::array<unsigned char, EVP_MAX_MD_SIZE> secret{};
    std::size_t n = 0;
    if (hex.size() > 2 * secret.size() ||
        OPENSSL_hexstr2buf_ex(secret.data(), secret.size(), &n, std::string(hex).c_str(), '\0') != 1 ||
        !s->keys->update(SSL_CIPHER_get_handshake_digest(SSL_get_current_cipher(ssl)), secret.data(), n)) {
      s->keys_failed = true;  // every later write fails: the client would not read it
    }
    OPENSSL_cleanse(secret.data(), secret.size());
  });
}

bool record_bio_gather(BIO* bio, byte_buffer* out) noexcept {
  auto* s = state_of(bio);
  if (s != nullptr) s->gather = out;
  return s != nullptr;
}

bool record_bio_seals(BIO* bio) noexcept {
  const auto* s = state_of(bio);
  return s != nullptr && s->keys.has_value();
}

std::optional<record_layout> record_bio_layout(BIO* bio) noexcept {
  const auto* s = state_of(bio);
  if (s == nullptr || !s->keys || s->keys_failed || !s->pending.empty()) return std::nullopt;
  return s->keys->layout();
}

std::size_t record_bio_seal_in_place(BIO* bio, unsigned char* record, std::size_t n) noexcept {
  auto* s = state_of(bio);
  if (s == nullptr || !s->keys || s->keys_failed || n > max_plain) return 0;
  const record_layout l = s->keys->layout();
  return s->keys->seal_at(record, record + l.before, n, application_data) ? l.before + n + l.after : 0;
}

namespace {

struct ssl_pair {
  int fds[2] = {-1, -1};
  SSL_CTX* server_ctx = SSL_CTX_new(TLS_server_method());
  SSL_CTX* client_ctx = SSL_CTX_new(TLS_client_method());
  SSL* server = nullptr;
  SSL* client = nullptr;
  BIO* records = nullptr;  // the server's write BIO
  ssl_pair() = default;
  ssl_pair(const ssl_pair&) = delete;
  ssl_pair& operator=(const ssl_pair&) = delete;
  ~ssl_pair() {
    SSL_free(server);
    SSL_free(client);
    SSL_CTX_free(server_ctx);
    SSL_CTX_free(client_ctx);
    for (const int fd : fds) {
      if (fd >= 0) ::close(fd);
    }
    ERR_clear_error();
  }

  // Moves `data` from `from` to `to` (reading into `got`), both sides non-blocking, until all is
  // read. `write` writes some of what is left (like SSL_write_ex) and returns 1, else 0.
  template <class Write>
  bool move(SSL* to, std::size_t size, std::string& got, Write write) {
    std::size_t sent = 0;
    got.clear();
    char buffer[16384];
    for (int idle = 0; got.size() < size && idle < 1000;) {
      bool moved = false;
      std::size_t n = 0;
      if (sent < size && write(sent, n) == 1) {
        sent += n;
        moved = n > 0;
      }
      while (SSL_read_ex(to, buffer, sizeof buffer, &n) == 1) {
        got.append(buffer, n);
        moved = true;
      }
      idle = moved ? 0 : idle + 1;
    }
    return got.size() == size;
  }
};

std::string pattern(std::size_t n) {
  std::string s(n, '\0');
  for (std::size_t i = 0; i < n; ++i) s[i] = static_cast<char>((i * 7 + i / 4096) % 251);
  return s;
}

}  // namespace

std::string check_record_sealing(int version, const std::string& cipher, bool& sealed) {
  sealed = false;
  auto key = pki::generate_p256_key();
  if (!key.ok()) return "cannot make a key: " + key.error().message;
  const auto now = pki::clock::now();
  const pki::validity hour{now - std::chrono::minutes(1), now + std::chrono::hours(1)};
  auto ca = pki::issue_ca_certificate(key->get(), "registryd record check", hour);
  if (!ca.ok()) return "cannot make a certificate: " + ca.error().message;
  auto cert = pki::issue_serving_certificate(key->get(), {{}, {"127.0.0.1"}}, ca->get(), key->get(), hour);
  if (!cert.ok()) return "cannot make a certificate: " + cert.error().message;
  ssl_pair p;
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, p.fds) != 0) return "no socket pair";
  // A small send buffer, so that sealed records are sent in parts and OpenSSL retries.
  const int small = 8192;
  ::setsockopt(p.fds[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
  const bool tls13 = version == TLS1_3_VERSION;
  if (p.server_ctx != nullptr) record_bio_follow_key_updates(p.server_ctx);
  if (p.server_ctx == nullptr || p.client_ctx == nullptr || SSL_CTX_use_certificate(p.server_ctx, cert->get()) != 1 ||
      SSL_CTX_use_PrivateKey(p.server_ctx, key->get()) != 1 ||

      SSL_CTX_set_min_proto_version(p.client_ctx, version) != 1 ||
      SSL_CTX_set_max_proto_version(p.client_ctx, version) != 1 ||
      (!cipher.empty() && tls13 && (SSL_CTX_set_ciphersuites(p.server_ctx, cipher.c_str()) != 1 ||
                                    SSL_CTX_set_ciphersuites(p.client_ctx, cipher.c_str()) != 1)) ||
      (!cipher.empty() && !tls13 && SSL_CTX_set_cipher_list(p.client_ctx, cipher.c_str()) != 1) ||
      (p.server = SSL_new(p.server_ctx)) == nullptr || (p.client = SSL_new(p.client_ctx)) == nullptr) {
    return "cannot set up OpenSSL for " + cipher;
  }
  BIO* rbio = BIO_new(BIO_s_socket());
  p.records = new_record_bio(p.fds[0]);
  if (rbio == nullptr || p.records == nullptr) {
    BIO_free(rbio);
    BIO_free(p.records);
    return "out of memory";
  }
  BIO_set_fd(rbio, p.fds[0], BIO_NOCLOSE);
  SSL_set_bio(p.server, rbio, p.records);
  SSL_set_options(p.server, SSL_OP_ENABLE_KTLS);
  SSL_set_accept_state(p.server);
  SSL_set_fd(p.client, p.fds[1]);
  SSL_set_connect_state(p.client);
  bool server_done = false;
  bool client_done = false;
  for (int round = 0; round < 1000 && !(server_done && client_done); ++round) {
    if (!server_done) server_done = SSL_do_handshake(p.server) == 1;
    if (!client_done) client_done = SSL_do_handshake(p.client) == 1;
  }
  if (!server_done || !client_done) return "the handshake did not finish";
  sealed = record_bio_seals(p.records);
  std::string got;
  // Written to the socket, a record at a time, in parts where the socket is full.
  const std::string big = pattern(1024 * 1024 + 5);
  if (!p.move(p.client, big.size(), got,
              [&](std::size_t at, std::size_t& n) { return SSL_write_ex(p.server, big.data() + at, big.size() - at, &n); }) ||
      got != big) {
    return "the client did not read what was written to the socket";
  }
  // Gathered, then sent as one buffer.
  const std::string gathered_text = pattern(300 * 1024);
  byte_buffer out;
  record_bio_gather(p.records, &out);
  std::size_t n = 0;
  const bool encrypted = SSL_write_ex(p.server, gathered_text.data(), gathered_text.size(), &n) == 1 &&
                         n == gathered_text.size();
  record_bio_gather(p.records, nullptr);
  if (!encrypted) return "could not gather records";
  // Records sealed already, sent as they are; the client must read `text` from them.
  const auto send_sealed = [&](const char* records, std::size_t size, const std::string& text) {
    std::size_t at = 0;
    return p.move(p.client, text.size(), got,
                  [&](std::size_t, std::size_t& moved) {
                    const ssize_t w = ::send(p.fds[0], records + at, size - at, MSG_NOSIGNAL);
                    at += w > 0 ? static_cast<std::size_t>(w) : 0;
                    moved = 0;
                    return 0;
                  }) &&
           got == text;
  };
  if (!send_sealed(out.data(), out.size(), gathered_text)) return "the client did not read the gathered records";
  // Sealed in place, as a file is sent: full records and a short last one, back to back.
  const auto seal_in_place = [&](const std::string& text) {
    const auto layout = record_bio_layout(p.records);
    if (!sealed) return !layout.has_value();  // OpenSSL seals: nothing to seal in place
    if (!layout) return false;
    std::string records((text.size() / max_plain + 1) * layout->slot(), '\0');
    std::size_t end = 0;
    for (std::size_t at = 0; at < text.size(); at += max_plain) {
      const std::size_t piece = std::min(max_plain, text.size() - at);
      std::memcpy(records.data() + end + layout->before, text.data() + at, piece);
      const std::size_t size = record_bio_seal_in_place(p.records, reinterpret_cast<unsigned char*>(records.data() + end), piece);
      if (size != layout->before + piece + layout->after) return false;
      end += size;
    }
    return send_sealed(records.data(), end, text);
  };
  if (!seal_in_place(pattern(3 * max_plain + 1000))) return "the client did not read records sealed in place";
  // The client asks for a key update (TLS 1.3): the server's KeyUpdate, sealed with its old
  // keys, then what follows under the new ones.
  static constexpr char ask[] = "update";
  if (tls13 && SSL_key_update(p.client, SSL_KEY_UPDATE_REQUESTED) != 1) return "the client cannot ask for a key update";
  if (!p.move(p.server, sizeof ask, got, [&](std::size_t, std::size_t& w) { return SSL_write_ex(p.client, ask, sizeof ask, &w); })) {
    return "the server could not read the client";
  }
  const std::string after = pattern(40000);
  if (!p.move(p.client, after.size(), got,
              [&](std::size_t a, std::size_t& w) { return SSL_write_ex(p.server, after.data() + a, after.size() - a, &w); }) ||
      got != after) {
    return "the client did not read what followed a key update";
  }
  if (!seal_in_place(pattern(max_plain + 7))) return "the client did not read records sealed in place after a key update";
  // close_notify, sealed as an alert.
  char byte = 0;
  for (int round = 0; round < 1000; ++round) {
    if (SSL_shutdown(p.server) < 0) return "the server could not send close_notify";
    const int r = SSL_read_ex(p.client, &byte, 1, &n);
    if (r == 1) return "the client read data after the last write";
    const int e = SSL_get_error(p.client, r);
    if (e == SSL_ERROR_ZERO_RETURN) return {};
    if (e != SSL_ERROR_WANT_READ) return "the client did not read a close_notify";
  }
  return "the client did not read a close_notify";
}

bool record_sealing_works(std::string& why) {
  for (const int version : {TLS1_3_VERSION, TLS1_2_VERSION}) {
    bool sealed = false;
    auto failed = check_record_sealing(version, "", sealed);
    if (failed.empty() && !sealed) failed = "OpenSSL did not hand over the write keys";
    if (!failed.empty()) {
      why = (version == TLS1_3_VERSION ? "TLS 1.3: " : "TLS 1.2: ") + failed;
      return false;
    }
  }
  return true;
}

}  // namespace registryd::frontdoor
