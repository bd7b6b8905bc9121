#include "http_server.hpp"
#include "record_sealer.hpp"
#include "worker_pool.hpp"

#include <registryd/pki/certificates.hpp>
#include <registryd/sdk/admission.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/compose.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/read_size.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/status.hpp>
#include <httplib.h>
#include <prometheus/counter.h>
#include <prometheus/gauge.h>

#include <poll.h>
#include <sys/sendfile.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <csignal>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <future>
#include <limits>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

namespace registryd::frontdoor {
namespace {

namespace net = boost::asio;
namespace http = boost::beast::http;

// The one-line subject of the client's certificate when it verified ("" otherwise). Listeners
// that do not ask for client certificates never get one.
// Its serial number in hex (pki::serial_hex), under the same condition.
std::string verified_peer_serial(SSL* ssl) {
  X509* peer = SSL_get0_peer_certificate(ssl);
  if (peer == nullptr || SSL_get_verify_result(ssl) != X509_V_OK) return {};
  return pki::serial_hex(peer);
}

// Whether the peer has closed its side of the connection (or it failed): poll's POLLRDHUP, which
// a close_notify or request bytes still unread do not hide. Go's and nginx's servers likewise
// take a client's FIN as the end of its request.
bool peer_closed(int fd) {
  pollfd p{fd, POLLRDHUP, 0};
  return ::poll(&p, 1, 0) == 1 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR)) != 0;
}

std::string verified_peer_subject(SSL* ssl) {
  X509* peer = SSL_get0_peer_certificate(ssl);
  if (peer == nullptr || SSL_get_verify_result(ssl) != X509_V_OK) return {};
  char buffer[512];
  if (X509_NAME_oneline(X509_get_subject_name(peer), buffer, sizeof buffer) == nullptr) return "(unnamed)";
  return buffer;
}
using tcp = net::ip::tcp;
using error_code = boost::system::error_code;
using steady = std::chrono::steady_clock;

// Whether the kernel can seal TLS records: a loopback TCP connection takes the "tls" upper layer
// protocol (which loads the kernel's tls module where it may). Asked once, at start.
bool kernel_offers_tls() {
  error_code ec;
  net::io_context io;
  tcp::acceptor listener(io);
  tcp::socket client(io);
  listener.open(tcp::v4(), ec);
  if (!ec) listener.bind(tcp::endpoint(net::ip::address_v4::loopback(), 0), ec);
  if (!ec) listener.listen(1, ec);
  if (!ec) client.connect(listener.local_endpoint(), ec);
  if (ec) return false;
  static constexpr char ulp[] = "tls";
  return ::setsockopt(client.native_handle(), IPPROTO_TCP, TCP_ULP, ulp, sizeof ulp - 1) == 0;
}

// A TLS connection: OpenSSL reads and writes the socket itself, through a socket BIO (or, on
// the write side, a record BIO: record_sealer.hpp), and Asio only says when the socket is ready
// (Asio's ssl::stream runs OpenSSL over a memory BIO pair instead, which keeps kernel TLS and
// SSL_sendfile out: docs/frontdoor.md, "TLS and zero-copy"). Where the kernel offers TLS
// offload and the context enables it, OpenSSL hands the keys to the kernel at the end of the
// handshake (`kernel_sends()`): writes are then sealed by the kernel and files go out with
// SSL_sendfile. Otherwise it hands them to the record BIO (`registryd_seals()`), or keeps them,
// and bodies are sealed into `gathered` (encrypt_to) and sent in few large writes. An AsyncReadStream and AsyncWriteStream
// for Beast and Asio's composed operations; one read and one write may be pending at once.
class tls_stream {
 public:
  using executor_type = tcp::socket::executor_type;

  // `seal_here`: where the kernel does not seal records, registryd seals them (record_sealer):
  // the write side is a record BIO, which OpenSSL hands the write keys to at the end of the
  // handshake. Else both sides are a socket BIO, which hands them to the kernel where the
  // context enables kernel TLS.
  tls_stream(tcp::socket socket, net::ssl::context& context, bool seal_here)
      : socket_(std::move(socket)), ssl_(SSL_new(context.native_handle())) {
    if (ssl_ == nullptr) throw std::runtime_error("cannot make a TLS connection: out of memory");
    const int fd = static_cast<int>(socket_.native_handle());
    BIO* read_bio = nullptr;
    BIO* write_bio = nullptr;
    if (seal_here) {
      // A plain socket BIO to read (BIO_new_socket would also ask the kernel for its TLS layer).
      read_bio = BIO_new(BIO_s_socket());
      if (read_bio != nullptr) BIO_set_fd(read_bio, fd, BIO_NOCLOSE);
      write_bio = new_record_bio(fd);
      SSL_set_options(ssl_, SSL_OP_ENABLE_KTLS);  // OpenSSL offers write keys only with it
    } else {
      read_bio = BIO_new_socket(fd, BIO_NOCLOSE);
      write_bio = read_bio;  // SSL_set_bio takes one reference for both
    }
    if (read_bio == nullptr || write_bio == nullptr) {
      BIO_free(read_bio);
      if (write_bio != read_bio) BIO_free(write_bio);
      SSL_free(ssl_);
      throw std::runtime_error("cannot make a TLS connection: out of memory");
    }
    SSL_set_bio(ssl_, read_bio, write_bio);
    SSL_set_accept_state(ssl_);
    SSL_set_mode(ssl_, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  }
  ~tls_stream() { SSL_free(ssl_); }
  tls_stream(const tls_stream&) = delete;
  tls_stream& operator=(const tls_stream&) = delete;

  executor_type get_executor() noexcept { return socket_.get_executor(); }
  tcp::socket& socket() noexcept { return socket_; }
  SSL* native_handle() noexcept { return ssl_; }

  // Whether the kernel seals what is written (kernel TLS took the write keys).
  bool kernel_sends() const noexcept {
    BIO* b = SSL_get_wbio(ssl_);
    return BIO_method_type(b) == BIO_TYPE_SOCKET && BIO_get_ktls_send(b);
  }
  // Whether registryd seals what is written (the record BIO took the write keys).
  bool registryd_seals() const noexcept { return record_bio_seals(SSL_get_wbio(ssl_)); }
  // Where records sealed in place keep their plain text, when they may be now (registryd seals
  // this connection's records and nothing waits to be sent).
  std::optional<record_layout> sealing_layout() const noexcept { return record_bio_layout(SSL_get_wbio(ssl_)); }
  // Seals the record at `record` in place (record_bio_seal_in_place): its size, 0 on failure.
  std::size_t seal_in_place(char* record, std::size_t n) noexcept {
    return record_bio_seal_in_place(SSL_get_wbio(ssl_), reinterpret_cast<unsigned char*>(record), n);
  }

  template <class Token>
  auto async_handshake(net::ssl::stream_base::handshake_type, Token&& token) {
    return async_ssl([](SSL* ssl, std::size_t&) { return SSL_do_handshake(ssl); }, std::forward<Token>(token));
  }
  // Sends close_notify and waits for the client's (or its close).
  template <class Token>
  auto async_shutdown(Token&& token) {
    return async_ssl(
        [](SSL* ssl, std::size_t&) {
          const int r = SSL_shutdown(ssl);
          return r == 0 ? SSL_shutdown(ssl) : r;  // 0: ours is sent; the second call reads theirs
        },
        std::forward<Token>(token));
  }
  template <class Buffers, class Token>
  auto async_read_some(const Buffers& buffers, Token&& token) {
    const net::mutable_buffer b = first_buffer<net::mutable_buffer>(buffers);
    return async_ssl([b](SSL* ssl, std::size_t& n) { return b.size() == 0 ? 1 : SSL_read_ex(ssl, b.data(), b.size(), &n); },
                     std::forward<Token>(token));
  }
  template <class Buffers, class Token>
  auto async_write_some(const Buffers& buffers, Token&& token) {
    const net::const_buffer b = first_buffer<net::const_buffer>(buffers);
    return async_ssl([b](SSL* ssl, std::size_t& n) { return b.size() == 0 ? 1 : SSL_write_ex(ssl, b.data(), b.size(), &n); },
                     std::forward<Token>(token));
  }

  // Sealed records waiting for one write (encrypt_to appends to it).
  byte_buffer& gathered() noexcept { return gathered_; }
  // Gives the buffer's memory back: an idle connection keeps none.
  void release() noexcept { gathered_.release(); }

 private:
  template <class Buffer, class Buffers>
  static Buffer first_buffer(const Buffers& buffers) {
    for (auto it = net::buffer_sequence_begin(buffers); it != net::buffer_sequence_end(buffers); ++it) {
      const Buffer b(*it);
      if (b.size() > 0) return b;
    }
    return Buffer();
  }

  // The error an OpenSSL call that returned `r` ended with. A close without close_notify is
  // stream_truncated, a close_notify eof, as with Asio's stream.
  error_code error_of(int r) const {
    const int e = SSL_get_error(ssl_, r);
    if (e == SSL_ERROR_ZERO_RETURN) return net::error::eof;
    const unsigned long code = ERR_peek_last_error();
    if (e == SSL_ERROR_SSL && ERR_GET_REASON(code) == SSL_R_UNEXPECTED_EOF_WHILE_READING) {
      ERR_clear_error();
      return net::ssl::error::stream_truncated;
    }
    if (e == SSL_ERROR_SYSCALL && code == 0) {
      const int saved = errno;
      return saved == 0 ? error_code(net::ssl::error::stream_truncated)
                        : error_code(saved, boost::system::system_category());
    }
    ERR_clear_error();
    return error_code(static_cast<int>(code), net::error::get_ssl_category());
  }

  // Runs `op` (an OpenSSL call: 1 when done, with the bytes moved in its second argument) until
  // it is done or fails, waiting for the socket between tries as OpenSSL asks.
  //
  // An operation OpenSSL finishes at once completes on the caller's stack, and the caller (a
  // coroutine, or a Beast read loop) then starts its next operation from inside that completion.
  // A run of such operations nests one stack level each: a client that sends a 64 KiB head as
  // 65,536 one-byte records, in one burst, would make the reads of that head nest 65,536 deep
  // and overflow the I/O thread's stack. So past max_nested completions on one thread's stack,
  // the completion is posted to the connection's executor instead, which starts a fresh stack.
  template <class Op, class Token>
  auto async_ssl(Op op, Token&& token) {
    return net::async_compose<Token, void(error_code, std::size_t)>(
        [this, op, deferred = false, result = error_code{}, moved = std::size_t{0}](
            auto& self, error_code ec = {}) mutable {
          if (deferred) {
            finish(self, result, moved);  // posted below: runs on a fresh stack
            return;
          }
          if (ec) {
            finish(self, ec, 0);  // the wait failed: cancelled by a deadline, or the socket closed
            return;
          }
          ERR_clear_error();
          errno = 0;
          std::size_t n = 0;
          const int r = op(ssl_, n);
          if (r != 1) {
            switch (SSL_get_error(ssl_, r)) {
              case SSL_ERROR_WANT_READ:
                socket_.async_wait(tcp::socket::wait_read, std::move(self));
                return;
              case SSL_ERROR_WANT_WRITE:
                socket_.async_wait(tcp::socket::wait_write, std::move(self));
                return;
              default:
                ec = error_of(r);
                n = 0;
                break;
            }
          }
          if (nested_completions >= max_nested) {
            deferred = true;
            result = ec;
            moved = n;
            net::post(socket_.get_executor(), std::move(self));
            return;
          }
          finish(self, ec, n);
        },
        token, socket_);
  }

  // Completes `self`, counting it as one more level on this thread's stack while the caller's
  // continuation runs. Touches nothing of the stream: the completion may end the connection.
  template <class Self>
  static void finish(Self& self, error_code ec, std::size_t n) {
    ++nested_completions;
    self.complete(ec, n);
    --nested_completions;
  }

  static constexpr int max_nested = 16;
  static thread_local int nested_completions;

  tcp::socket socket_;
  SSL* ssl_;
  byte_buffer gathered_;
};

thread_local int tls_stream::nested_completions = 0;

// An OpenSSL BIO that appends what is written to it to a byte_buffer (its data pointer): where
// a kernel-TLS socket BIO is the write side but the kernel did not take a connection's cipher.
BIO_METHOD* append_bio_method() {
  static BIO_METHOD* const method = [] {
    BIO_METHOD* m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "registryd append");
    if (m == nullptr) return m;
    BIO_meth_set_write(m, [](BIO* b, const char* data, int len) -> int {
      if (len <= 0) return 0;
      try {
        static_cast<byte_buffer*>(BIO_get_data(b))->append(data, static_cast<std::size_t>(len));
      } catch (...) {  // no exception may cross OpenSSL's C frames
        return -1;
      }
      return len;
    });
    BIO_meth_set_ctrl(m, [](BIO*, int cmd, long, void*) -> long { return cmd == BIO_CTRL_FLUSH ? 1 : 0; });
    BIO_meth_set_create(m, [](BIO* b) -> int {
      BIO_set_init(b, 1);
      return 1;
    });
    return m;
  }();
  return method;
}

// Encrypts `plain` as TLS records appended to `out`, on a connection whose handshake is done and
// whose records the kernel does not seal. A record BIO (registryd seals) is told to gather into
// `out`; a socket BIO (OpenSSL seals) is swapped, for the length of the call, for one that
// appends to `out`, and put back after. Either way no socket write per record and no copy
// through a memory BIO pair. Nothing else writes to the SSL meanwhile, so the order of records
// holds.
bool encrypt_to(SSL* ssl, std::string_view plain, byte_buffer& out) {
  BIO* write_bio = SSL_get_wbio(ssl);
  const bool record_bio = record_bio_gather(write_bio, &out);
  if (!record_bio) {
    BIO* sink = append_bio_method() != nullptr ? BIO_new(append_bio_method()) : nullptr;
    if (sink == nullptr) return false;
    BIO_set_data(sink, &out);
    BIO_up_ref(write_bio);   // SSL_set0_wbio releases the SSL's reference to it
    SSL_set0_wbio(ssl, sink);  // the SSL owns `sink` now
  }
  bool ok = true;
  while (!plain.empty()) {
    std::size_t n = 0;
    if (SSL_write_ex(ssl, plain.data(), plain.size(), &n) != 1) {
      ERR_clear_error();
      ok = false;
      break;
    }
    plain.remove_prefix(n);
  }
  if (record_bio) {
    record_bio_gather(write_bio, nullptr);
  } else {
    SSL_set0_wbio(ssl, write_bio);  // frees `sink`
  }
  return ok;
}
// Beast's parser adds a chunked body's trailer fields to the request's fields, where they would
// live until the request ends. RFC 9110 (6.5.1) forbids merging a trailer field into the header
// section unless its definition says how, and registryd serves no field that does: trailer
// fields are counted and dropped, and more of them than a head may have fields is refused
// (431, through note_body_error). The head's fields are kept as Beast keeps them.
class request_parser final : public http::request_parser<http::buffer_body> {
 public:
  explicit request_parser(std::size_t max_trailer_fields) : max_trailer_fields_(max_trailer_fields) {}

 private:
  void on_field_impl(http::field name, boost::beast::string_view name_string, boost::beast::string_view value,
                     error_code& ec) override {
    if (!is_header_done()) {
      get().insert(name, name_string, value);
    } else if (++trailer_fields_ > max_trailer_fields_) {
      ec = http::error::header_limit;
    }
  }

  std::size_t max_trailer_fields_;
  std::size_t trailer_fields_ = 0;
};

// Room kept in the read buffer while a body is read: what one read from the socket may take.
constexpr std::size_t body_read_size = 64 * 1024;
// A body of at most this size (and the first this many bytes of a chunked one) is read by the
// I/O thread before its request takes a worker: a client that sends part of a small body and
// stops holds a connection, never a worker (docs/frontdoor.md, "Shape").
constexpr std::size_t body_read_ahead = 64 * 1024;
// What a body read ahead takes from http_body_read_ahead_budget_bytes before any of it arrived;
// then twice what arrived, up to body_read_ahead.
constexpr std::size_t read_ahead_first = 4 * 1024;
// An answer's buffer (a streamed answer's pieces, a file answer's slices) is this large at
// least. Anything larger comes out of a budget of the listener's, so that a client that reads
// slowly or not at all costs 64 KiB a connection once the budget is spent, not 512 KiB or 1 MiB
// (docs/frontdoor.md, "Slow readers"). A file answer's buffer starts here (4 TLS records) and
// doubles, up to the sizes below, after each offer the client's socket took whole.
constexpr std::size_t first_answer_piece = 64 * 1024;
// Bytes moved per piece of a body, in and out: a streamed answer's first piece while half the
// listener's stream_buffer_budget has room for it (first_answer_piece past that).
constexpr std::size_t piece_size = 256 * 1024;
// A streamed response's buffer starts at piece_size and doubles up to this while each read
// fills it, so a source that has bytes ready (a cache fill running ahead of its client) is
// passed on in fewer, larger pieces. Every piece costs a hand-off to a worker and back, two
// thread wake-ups; at 256 KiB those wake-ups were most of the scheduling cost of a cold 256 MiB
// pull (docs/frontdoor.md). A source that gives less per read (an upstream read through
// Direct) keeps the small buffer.
constexpr std::size_t stream_piece_max = 1024 * 1024;
// Plain text encrypted per gathered TLS write: 16 records.
constexpr std::size_t tls_gather_size = 256 * 1024;
// A file is sent in slices of this size, each a chance for the connection's other I/O thread
// work to run: one large blob must not hold an I/O thread for its whole length.
constexpr std::size_t file_slice = 1024 * 1024;
// A file sent through user space is read in slices of up to this size: small enough that the
// slice is still in the CPU's cache when it is encrypted or copied to the socket.
constexpr std::size_t read_slice = 256 * 1024;
// A file whose TLS records registryd seals in place is read up to this many records at a time:
// 512 KiB of plain text, in one buffer per connection sending a file (what the read slice and
// the gathered records took before). 16 records cost more CPU per GiB at 16 clients, 64 no less
// than 32 (bench/results/2026-12-06-hand-sealing-in-place.md).
constexpr std::size_t sealed_slice_records = 32;
// How long a closing connection waits for the client's close (TLS close_notify, lingering).
constexpr auto closing_time = std::chrono::milliseconds(1000);
// How much a lingering close reads and drops, at most.
constexpr std::size_t linger_bytes = 1024 * 1024;

// The Date header's value, made once a second per thread.
std::string_view http_date() {
  thread_local std::time_t made = 0;
  thread_local char text[64];
  const std::time_t now = std::time(nullptr);
  if (now != made) {
    std::tm tm{};
    ::gmtime_r(&now, &tm);
    std::strftime(text, sizeof text, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    made = now;
  }
  return text;
}

std::string_view sv(boost::beast::string_view s) noexcept { return {s.data(), s.size()}; }

std::string trimmed(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return std::string(s);
}

prometheus::Gauge& unlabelled_gauge(prometheus::Registry& metrics, const char* name, const char* help) {
  return prometheus::BuildGauge().Name(name).Help(help).Register(metrics).Add({});
}

// A buffer that is written before it is read: allocated, never zeroed (a zeroed 1 MiB per
// answer cost more than the answer).
struct raw_buffer {
  explicit raw_buffer(std::size_t n) : bytes(std::make_unique_for_overwrite<char[]>(n)), size(n) {}
  char* data() const noexcept { return bytes.get(); }
  std::unique_ptr<char[]> bytes;
  std::size_t size;
};

// A request the transport answers itself, then closes: the status, the metric label and why.
struct refusal {
  unsigned status = 0;
  std::string_view reason;
  std::string why;
};

// The members of an Expect field value (a list, RFC 9110 10.1.1): whether one is 100-continue
// and whether one is anything else. Empty members count as neither.
struct expectations {
  bool of_continue = false;
  bool other = false;
};
expectations expectations_in(std::string_view value) {
  expectations e;
  while (!value.empty()) {
    const auto comma = value.find(',');
    const std::string member = trimmed(value.substr(0, comma));
    if (iequals(member, "100-continue")) {
      e.of_continue = true;
    } else if (!member.empty()) {
      e.other = true;
    }
    value = comma == std::string_view::npos ? std::string_view() : value.substr(comma + 1);
  }
  return e;
}

bool all_digits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

bool is_hex(char c) { return std::isxdigit(static_cast<unsigned char>(c)) != 0; }

// RFC 3986's `host [ ":" port ]`, what a Host field or an absolute target's authority holds: an
// IP literal in brackets, or a name of unreserved characters, sub-delims and %XX escapes. No
// user information, no path, no spaces. An empty value passes (RFC 9112 3.2 allows an empty
// Host for a target without an authority).
bool valid_authority(std::string_view a) {
  std::string_view port;
  if (!a.empty() && a.front() == '[') {
    const auto close = a.find(']');
    if (close == std::string_view::npos || close == 1) return false;
    const auto literal = a.substr(1, close - 1);
    if (!std::all_of(literal.begin(), literal.end(), [](char c) { return is_hex(c) || c == ':' || c == '.'; })) {
      return false;
    }
    const auto rest = a.substr(close + 1);
    if (!rest.empty() && rest.front() != ':') return false;
    port = rest.empty() ? rest : rest.substr(1);
  } else {
    const auto colon = a.find(':');
    const auto name = a.substr(0, colon);
    for (std::size_t i = 0; i < name.size(); ++i) {
      const char c = name[i];
      if (c == '%') {
        if (i + 2 >= name.size() || !is_hex(name[i + 1]) || !is_hex(name[i + 2])) return false;
        i += 2;
      } else if (!std::isalnum(static_cast<unsigned char>(c)) && std::string_view("-._~!$&'()*+,;=").find(c) == std::string_view::npos) {
        return false;
      }
    }
    // An empty host is allowed only as the whole value (RFC 9112 3.2); before a port it is not
    // a host (RFC 9110 4.2.1).
    if (name.empty() && colon != std::string_view::npos) return false;
    port = colon == std::string_view::npos ? std::string_view() : a.substr(colon + 1);
  }
  if (port.size() > 5 || !std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; })) return false;
  return port.empty() || std::stoul(std::string(port)) <= 65535;
}

// A request target in absolute form (RFC 9112 3.2.2), "http://host:port/path?query": its
// authority and the target in origin form. nullopt for any other form.
struct absolute_target {
  std::string_view authority;
  std::string origin;
};
std::optional<absolute_target> absolute_form(std::string_view target) {
  const auto sep = target.find("://");
  if (sep == std::string_view::npos) return std::nullopt;
  const auto scheme = target.substr(0, sep);
  if (!iequals(scheme, "http") && !iequals(scheme, "https")) return std::nullopt;
  const auto rest = target.substr(sep + 3);
  const auto end = rest.find_first_of("/?#");
  absolute_target t{rest.substr(0, end), end == std::string_view::npos ? "/" : std::string(rest.substr(end))};
  if (t.origin.front() != '/') t.origin.insert(0, "/");
  return t;
}

// Whether a request line Beast refused for its version names a well-formed version other than
// 1.0 and 1.1 ("HTTP/2.0"): that is a 505, anything else malformed a 400.
bool names_other_version(std::string_view head) {
  const auto end = head.find('\n');
  if (end == std::string_view::npos || end == 0 || head[end - 1] != '\r') return false;  // a bare LF
  const auto line = head.substr(0, end - 1);
  const auto v = line.substr(line.rfind(' ') + 1);  // the whole line if it has no space
  return v.size() == 8 && v.starts_with("HTTP/") && std::isdigit(static_cast<unsigned char>(v[5])) != 0 &&
         v[6] == '.' && std::isdigit(static_cast<unsigned char>(v[7])) != 0 && v != "HTTP/1.0" && v != "HTTP/1.1";
}

// The text a refusal carries: "431 Request Header Fields Too Large: <why>".
std::string refusal_body(unsigned status, std::string_view why) {
  return std::to_string(status) + " " + std::string(sv(http::obsolete_reason(http::int_to_status(status)))) +
         ": " + std::string(why) + "\n";
}

// A canned answer for refusals: a short text body and a close.
std::string refusal_text(unsigned status, std::string_view why, std::string_view extra_headers = {}) {
  const std::string body = refusal_body(status, why);
  return "HTTP/1.1 " + std::to_string(status) + " " +
         std::string(sv(http::obsolete_reason(http::int_to_status(status)))) + "\r\nDate: " +
         std::string(http_date()) + "\r\nContent-Type: text/plain\r\nContent-Length: " +
         std::to_string(body.size()) + "\r\n" + std::string(extra_headers) +
         "Connection: close\r\n\r\n" + body;
}

// Bytes that buffers of one kind hold all together, under a bound (a transport setting), shown
// in a gauge.
class byte_budget {
 public:
  byte_budget(std::size_t limit, prometheus::Gauge& gauge) : limit_(limit), gauge_(gauge) {}
  // Takes `n` bytes; false, taking nothing, when that would pass the bound.
  bool take(std::size_t n) {
    std::size_t held = held_.load(std::memory_order_relaxed);
    do {
      if (held + n > limit_) return false;
    } while (!held_.compare_exchange_weak(held, held + n, std::memory_order_relaxed));
    gauge_.Increment(static_cast<double>(n));
    return true;
  }
  void give(std::size_t n) {
    held_.fetch_sub(n, std::memory_order_relaxed);
    gauge_.Decrement(static_cast<double>(n));
  }

 private:
  std::size_t limit_;
  prometheus::Gauge& gauge_;
  std::atomic<std::size_t> held_{0};
};

// Bytes taken from a byte_budget, given back when the share is destroyed.
class budget_share {
 public:
  budget_share() = default;
  budget_share(byte_budget& budget, std::size_t bytes) : budget_(&budget), bytes_(bytes) {}
  budget_share(budget_share&& o) noexcept : budget_(std::exchange(o.budget_, nullptr)), bytes_(o.bytes_) {}
  budget_share& operator=(budget_share&& o) noexcept {
    if (this != &o) {
      release();
      budget_ = std::exchange(o.budget_, nullptr);
      bytes_ = o.bytes_;
    }
    return *this;
  }
  ~budget_share() { release(); }

  // Takes `n` more bytes from the budget this share is of; false, taking nothing, past its bound.
  bool take_more(std::size_t n) {
    if (budget_ == nullptr || !budget_->take(n)) return false;
    bytes_ += n;
    return true;
  }

 private:
  void release() {
    if (budget_ != nullptr) budget_->give(bytes_);
    budget_ = nullptr;
  }
  byte_budget* budget_ = nullptr;
  std::size_t bytes_ = 0;
};

}  // namespace

struct http_server::impl : std::enable_shared_from_this<impl> {
  impl(server_options o, http_handler h, exchange_observer obs, std::shared_ptr<spdlog::logger> l,
       prometheus::Registry& metrics);

  server_options opts;
  http_handler handler;
  exchange_observer observer;
  std::shared_ptr<spdlog::logger> logger;

  // One io_context per I/O thread, each run by that thread alone: a connection lives on one of
  // them, so its handlers never run concurrently and need no strand. One context shared by every
  // thread, a strand per connection, balanced better but is not safe with Boost 1.74's
  // coroutines (docs/frontdoor.md, "Threads: why one io_context per thread").
  std::vector<std::unique_ptr<net::io_context>> ios;
  std::size_t next_io = 0;  // round robin, touched by the accepting thread only
  std::optional<net::ssl::context> tls;
  bool kernel_tls = false;  // SSL_OP_ENABLE_KTLS is set: the kernel offers TLS offload
  // Where the kernel does not seal records, registryd does (record_sealer; `http_tls_sealer`,
  // and the check at start passed).
  bool seal_here = false;
  std::optional<tcp::acceptor> acceptor;
  std::unique_ptr<worker_pool> workers;
  std::vector<std::thread> io_threads;
  std::atomic<bool> stopping{false};
  std::atomic<bool> io_stopped{false};
  int bound_port = 0;

  // Open connections, in all and per client address (http_max_connections, ..._per_client).
  sdk::admission connections;
  std::atomic<std::size_t> queued{0};

  prometheus::Gauge& open_gauge;
  prometheus::Gauge& in_flight_gauge;
  prometheus::Gauge& queued_gauge;
  prometheus::Gauge& parked_gauge;
  // Bytes held by streamed answers' buffers beyond their first 64 KiB (transport's
  // stream_buffer_budget: half for first pieces of 256 KiB, half for buffers grown past them,
  // both shown in one gauge), by file answers' buffers beyond their first 64 KiB
  // (file_buffer_budget), and by bodies read before their requests took a worker
  // (read_ahead_budget).
  prometheus::Gauge& stream_buffer_gauge;
  byte_budget stream_first;
  byte_budget stream_grown;
  byte_budget file_grown;
  byte_budget read_ahead;
  prometheus::Counter& accepted;
  prometheus::Family<prometheus::Counter>& closed_family;
  prometheus::Family<prometheus::Counter>& refused_family;
  // TLS handshakes done, by who seals the connection's records: the kernel (kernel TLS took the
  // write keys), registryd (its record BIO took them) or OpenSSL.
  prometheus::Family<prometheus::Counter>& handshakes_family;
  prometheus::Counter& sealed_by_kernel;
  prometheus::Counter& sealed_by_registryd;
  prometheus::Counter& sealed_by_openssl;

  void count_closed(std::string_view reason) { closed_family.Add({{"reason", std::string(reason)}}).Increment(); }
  void count_refused(std::string_view reason) { refused_family.Add({{"reason", std::string(reason)}}).Increment(); }

  void accept();
  void on_accepted(tcp::socket socket);
  template <class Connection>
  void start(std::shared_ptr<Connection> c);
};

namespace {

// Runs `fn` on the worker pool, in `client`'s lane, and resumes the calling coroutine on its
// own executor with the result. The coroutine's frame outlives the call, so `fn` may refer to
// it. The pool's tasks are copyable functions; Asio's handler is not: both are held in one
// shared state.
template <typename T, typename F>
net::awaitable<T> on_worker(worker_pool& pool, const std::string& client, F fn) {
  auto ex = co_await net::this_coro::executor;
  co_return co_await net::async_initiate<const net::use_awaitable_t<>&, void(T)>(
      [&pool, &client, ex](auto handler, F f) {
        using handler_type = decltype(handler);
        struct call {
          handler_type handler;
          F f;
        };
        auto state = std::make_shared<call>(call{std::move(handler), std::move(f)});
        pool.submit(client, [state, ex] {
          T result = state->f();
          net::post(ex, [state, result = std::move(result)]() mutable { std::move(state->handler)(std::move(result)); });
        });
      },
      net::use_awaitable, std::move(fn));
}

template <class Stream>
constexpr bool is_tls = std::is_same_v<Stream, tls_stream>;

// Asio's composed writes offer each send() at most 64 KiB (its default_max_transfer_size). This
// condition offers everything left, and the kernel takes what fits under the socket's bound on
// unsent bytes (http_tcp_notsent_lowat_bytes). docs/frontdoor.md ("Writes") says why.
struct whole_piece {
  std::size_t operator()(const error_code& ec, std::size_t) const noexcept {
    return ec ? 0 : std::numeric_limits<std::size_t>::max();
  }
};

template <class Stream>
class body_pipe;

template <class Stream>
class connection : public std::enable_shared_from_this<connection<Stream>> {
 public:
  template <class... Args>
  connection(std::shared_ptr<http_server::impl> server, std::string client, sdk::admission::ticket place,
             Args&&... stream_args)
      : server_(std::move(server)),
        client_(std::move(client)),
        place_(std::move(place)),
        stream_(std::forward<Args>(stream_args)...),
        timer_(stream_.get_executor()) {
    // Beast parses a chunk's size line (with its extensions) and the trailer section only when
    // each is whole in this buffer, and its parser sets no limit on either: without a bound, one
    // client sending an endless chunk extension or trailer grows the buffer without end. Bounded
    // by the head limit plus room for one body read, the buffer overflows instead (431).
    buffer_.max_size(server_->opts.transport.max_header_bytes + body_read_size);
  }

  ~connection() { server_->open_gauge.Decrement(); }

  net::awaitable<void> run(std::shared_ptr<connection> self);

  // --- used by the body pipe, on the connection's I/O thread ----------------------------------
  Stream& stream() { return stream_; }
  const transport_options& transport() const { return server_->opts.transport; }
  http_server::impl& server() { return *server_; }

  // Every wait on the client runs under a deadline. When it passes, the pending operation is
  // cancelled (the coroutine may still answer 408) and timed_out_ says why.
  void set_deadline(std::chrono::milliseconds d) { set_deadline_at(steady::now() + d); }
  void set_deadline_at(steady::time_point at) {
    deadline_ = at;
    timed_out_ = false;
    if (!watching_) {
      watching_ = true;
      timer_.expires_at(deadline_);
      timer_.async_wait([self = this->shared_from_this()](error_code) { self->on_timer(); });
    } else if (deadline_ < timer_.expiry()) {
      timer_.expires_at(deadline_);  // wakes on_timer, which waits again
    }
  }
  void clear_deadline() { deadline_ = steady::time_point::max(); }
  // Ends the wait under way at once, as if its deadline had passed (a body that stalled while
  // other requests wait for a worker).
  void expire_deadline() {
    if (deadline_ != steady::time_point::max()) set_deadline(std::chrono::milliseconds(0));
  }
  bool timed_out() const { return timed_out_; }
  // A read of the body failed (the client stopped sending, left, or broke the framing): the
  // request's answer says so if it can (408 for a body that stopped arriving), and the connection
  // closes without reading the rest.
  void note_body_failed(const error_code& ec) {
    body_failed_ = true;
    body_stalled_ = timed_out_;
    if (timed_out_) {
      server_->count_closed("body_timeout");
      framing_refusal_ = refusal{408, "body_timeout", "the request body stopped arriving"};
    } else {
      note_body_error(ec);
    }
  }
  // A body whose chunked framing broke, or whose chunk line or trailer section did not fit the
  // read buffer (the head limit plus one body read): the request is answered 400 or 431
  // whatever its handler said, and the connection closes.
  void note_body_error(const error_code& ec) {
    if (ec == http::error::buffer_overflow) {
      framing_refusal_ = refusal{431, "header_bytes",
                                      "a chunk line or the trailer section does not fit the " +
                                          std::to_string(buffer_.max_size()) + "-byte read buffer"};
    } else if (ec == http::error::header_limit) {  // only request_parser's trailer count sets it here
      framing_refusal_ = refusal{431, "header_count",
                                      "more than " + std::to_string(transport().max_header_count) +
                                          " trailer fields"};
    } else if (ec == http::error::partial_message) {
      // The client closed before its body ended: nobody to answer.
    } else if (ec.category() == http::make_error_code(http::error::bad_chunk).category()) {
      framing_refusal_ = refusal{400, "bad_request", "malformed chunked body"};
    }
  }

 private:
  tcp::socket& socket() {
    if constexpr (is_tls<Stream>) {
      return stream_.socket();
    } else {
      return stream_;
    }
  }

  void on_timer() {
    if (finished_) {
      watching_ = false;
      return;
    }
    const auto now = steady::now();
    if (deadline_ <= now) {
      timed_out_ = true;
      deadline_ = steady::time_point::max();
      error_code ignored;
      socket().cancel(ignored);
    }
    if (deadline_ == steady::time_point::max()) {
      // Nothing to watch until the next deadline; a long sleep that set_deadline shortens.
      timer_.expires_after(std::chrono::hours(24));
    } else {
      timer_.expires_at(deadline_);
    }
    timer_.async_wait([self = this->shared_from_this()](error_code) { self->on_timer(); });
  }

  // Writes all of `from` to `to` (the socket, or the TLS stream), offering it whole to each send.
  template <class To>
  static net::awaitable<std::size_t> write(To& to, net::const_buffer from, error_code& ec) {
    return net::async_write(to, from, whole_piece{}, net::redirect_error(net::use_awaitable, ec));
  }

  // Writes all of `from` to the socket: what it takes now, then the rest as it drains. Sets
  // socket_filled_ when the socket was full before the end.
  net::awaitable<std::size_t> offer(net::const_buffer from, error_code& ec) {
    const std::size_t now = socket().write_some(from, ec);  // the socket is non-blocking
    if (ec == net::error::would_block || ec == net::error::try_again || ec == net::error::interrupted) ec = {};
    if (ec) co_return now;
    if (now == from.size()) {
      // Through the connection's executor, as Asio completes a write it finished at once: a
      // client whose socket takes every slice of a large file at once must not keep the I/O
      // thread from its other connections until the file ends.
      co_await net::post(co_await net::this_coro::executor, net::use_awaitable);
      co_return now;
    }
    socket_filled_ = true;
    co_return now + co_await write(socket(), from + now, ec);
  }

  // Sends bytes the socket takes as they are (records sealed already), within the body timeout.
  net::awaitable<bool> send_sealed(std::string_view bytes) {
    error_code ec;
    set_deadline(transport().body_timeout);
    co_await offer(net::buffer(bytes.data(), bytes.size()), ec);
    clear_deadline();
    co_return !ec;
  }

  net::awaitable<bool> write_all(std::string_view bytes) {
    error_code ec;
    set_deadline(transport().body_timeout);
    if constexpr (is_tls<Stream>) {
      // Encrypt up to tls_gather_size into the gathered buffer, then send the records in one
      // write. When the kernel seals the records, or before the handshake is done, OpenSSL
      // writes to the socket itself.
      if (!stream_.kernel_sends() && SSL_is_init_finished(stream_.native_handle())) {
        byte_buffer& out = stream_.gathered();
        while (!bytes.empty() && !ec) {
          const std::size_t piece = std::min(bytes.size(), tls_gather_size);
          if (!encrypt_to(stream_.native_handle(), bytes.substr(0, piece), out)) ec = net::ssl::error::stream_truncated;
          bytes.remove_prefix(piece);
          if (!ec) co_await offer(net::buffer(out.data(), out.size()), ec);
          if (!ec) written_ += piece;
          out.clear();
        }
      } else {
        written_ += co_await write(stream_, net::buffer(bytes.data(), bytes.size()), ec);
      }
    } else {
      written_ += co_await offer(net::buffer(bytes.data(), bytes.size()), ec);
    }
    clear_deadline();
    co_return !ec;
  }

  // Runs the handler on a worker. A request whose client has left by the time a worker takes it
  // is not run (client_left_ says so, and it is counted): the client hears nothing either way,
  // and a handler that would wait on an upstream for it would only hold the worker.
  net::awaitable<void> handle_on_worker(const http_request& req, request_body& body, http_response& res) {
    ++server_->queued;
    server_->queued_gauge.Increment();
    auto& srv = *server_;
    const int fd = socket().native_handle();
    bool left = false;
    co_await on_worker<bool>(*server_->workers, client_, [&srv, &req, &body, &res, &left, fd] {
      --srv.queued;
      srv.queued_gauge.Decrement();
      if (peer_closed(fd)) {
        left = true;
        return true;
      }
      srv.in_flight_gauge.Increment();
      try {
        srv.handler(req, body, res);
      } catch (const std::exception& e) {
        srv.logger->error("{} {}: the handler failed: {}", req.remote_addr, req.method, e.what());
        res = http_response{};
        res.status = 500;
        res.set_content("500 Internal Server Error\n", "text/plain");
      }
      srv.in_flight_gauge.Decrement();
      return true;
    });
    client_left_ = left;
    if (left) server_->count_closed("client_left");
  }

  // Holds a long poll on this connection's I/O thread, no worker, until the signal moves past
  // `seen` or `wait` passes. The signal's waiter cancels the timer through a post to this
  // connection's executor (one thread), so the timer is never touched from another thread; the
  // registration is dropped when the wait ends or the coroutine is destroyed.
  net::awaitable<void> park(std::shared_ptr<wake_signal> signal, std::uint64_t seen, std::chrono::milliseconds wait) {
    auto ex = co_await net::this_coro::executor;
    auto timer = std::make_shared<net::steady_timer>(ex);
    timer->expires_after(wait);
    struct registration {
      std::shared_ptr<wake_signal> signal;
      std::uint64_t id;
      ~registration() {
        if (id != 0) signal->remove(id);
      }
    } reg{signal, signal->add([timer, ex] { net::post(ex, [timer] { timer->cancel(); }); }, seen)};
    if (reg.id == 0) co_return;  // it changed while the handler looked
    struct gauge_hold {
      prometheus::Gauge& g;
      explicit gauge_hold(prometheus::Gauge& gauge) : g(gauge) { g.Increment(); }
      ~gauge_hold() { g.Decrement(); }
    } held(server_->parked_gauge);
    error_code ec;
    co_await timer->async_wait(net::redirect_error(net::use_awaitable, ec));
  }

  // Answers a request the transport refuses, then closes.
  net::awaitable<void> refuse(unsigned status, std::string_view reason, std::string why) {
    server_->count_refused(reason);
    http_request who;
    who.remote_addr = client_;
    who.method = "-";
    exchange x;
    x.request = &who;
    x.status = status;
    x.reason = why;
    server_->observer(x);
    const std::string text = refusal_text(status, why);
    set_deadline(std::chrono::milliseconds(2000));
    error_code ec;
    co_await net::async_write(stream_, net::buffer(text), net::redirect_error(net::use_awaitable, ec));
    clear_deadline();
  }

  net::awaitable<bool> wait_for_request(std::size_t served, steady::time_point until);
  net::awaitable<error_code> read_head(request_parser& parser, bool& folded, bool& only_empty_lines);
  std::optional<refusal> check_head(const request_parser& parser, http_request& out);
  net::awaitable<bool> drain(request_parser& parser);
  net::awaitable<bool> read_ahead(request_parser& parser, body_pipe<Stream>& body, bool expect_continue);
  net::awaitable<bool> write_response(const http_request& req, http_response& res, bool keep_alive);
  net::awaitable<bool> send_file(http_response& res, std::string head);
  net::awaitable<bool> send_file_sealed(http_response& res, std::string head, record_layout layout);
  net::awaitable<bool> send_stream(http_response& res, bool chunked);
  net::awaitable<void> close(bool linger);

  std::shared_ptr<http_server::impl> server_;
  std::string client_;
  sdk::admission::ticket place_;  // its place among the server's connections, given back with it
  // The subject of the client's certificate when it verified against the server's trust store
  // (the host CA, on listeners that ask for one); "" otherwise.
  std::string peer_subject_;
  std::string peer_serial_;
  Stream stream_;
  net::steady_timer timer_;
  steady::time_point deadline_ = steady::time_point::max();
  bool watching_ = false;
  bool timed_out_ = false;
  bool finished_ = false;
  bool socket_filled_ = false;  // a write since this was cleared waited for the socket (offer)
  std::size_t empty_lines_ = 0;  // empty lines before the request head being waited for (read_head)
  bool client_left_ = false;     // the client had closed its side when a worker took its request
  bool body_failed_ = false;  // a read of the request body failed: the rest is not read
  bool body_stalled_ = false;  // ... because it stopped arriving: no lingering close either
  std::optional<refusal> framing_refusal_;
  std::uint64_t written_ = 0;  // bytes of the answer being written, for the access log
  boost::beast::flat_buffer buffer_;
  char first_byte_ = 0;

  template <class S>
  friend class body_pipe;
};

// The request body as a handler reads it on its worker thread: each piece is read by the
// connection's I/O thread when the handler asks for it (and the next one while the handler takes
// the current one), so a client is never read ahead of the handler.
template <class Stream>
class body_pipe final : public request_body {
 public:
  body_pipe(connection<Stream>& c, request_parser& parser, std::int64_t content_length,
            bool expect_continue)
      : c_(c), parser_(parser), content_length_(content_length), expect_continue_(expect_continue) {}

  bool read(const std::function<bool(const char*, std::size_t)>& on_chunk) override {
    if (called_) return false;
    called_ = true;
    if (ahead_) {
      const bool go = ahead_size_ == 0 || on_chunk(ahead_->data(), ahead_size_);
      ahead_.reset();
      ahead_share_ = {};
      if (!go) return false;  // the transport drops the rest, or closes
    }
    if (parser_.is_done()) return true;
    // Two buffers: the I/O thread fills one while the handler takes the other.
    // As large as the body when it is smaller than a piece (a manifest, say).
    const std::size_t size = content_length_ > 0 ? std::min<std::size_t>(piece_size, static_cast<std::size_t>(content_length_))
                                                 : piece_size;
    std::array<raw_buffer, 2> buffers{raw_buffer(size), raw_buffer(size)};
    std::size_t current = 0;
    auto pending = start(buffers[current]);
    for (;;) {
      const piece got = wait(pending);
      if (got.failed) return false;
      if (!got.done) pending = start(buffers[1 - current]);
      const bool go = got.size == 0 || on_chunk(buffers[current].data(), got.size);
      if (got.done) return go;
      if (!go) {
        wait(pending);
        return false;
      }
      current = 1 - current;
    }
  }

  bool continue_sent() const { return continue_sent_; }

  // The body's first `size` bytes (all of it when the parser is done), read by the I/O thread
  // before the request took a worker (connection::read_ahead), after a 100 Continue if it sent one.
  void take_read_ahead(raw_buffer bytes, std::size_t size, bool sent_continue, budget_share share) {
    ahead_.emplace(std::move(bytes));
    ahead_share_ = std::move(share);
    ahead_size_ = size;
    continue_sent_ = continue_sent_ || sent_continue;
  }

 private:
  struct piece {
    std::size_t size = 0;
    bool done = false;
    bool failed = false;
  };

  std::future<piece> start(raw_buffer& into) {
    note_progress();
    auto promise = std::make_shared<std::promise<piece>>();
    auto result = promise->get_future();
    net::post(c_.stream().get_executor(), [this, &into, promise] {
      if (expect_continue_ && !continue_sent_) {
        continue_sent_ = true;
        static constexpr std::string_view text = "HTTP/1.1 100 Continue\r\n\r\n";
        c_.set_deadline(c_.transport().body_timeout);
        net::async_write(c_.stream(), net::buffer(text.data(), text.size()),
                         [this, &into, promise](error_code ec, std::size_t) {
                           if (ec) {
                             c_.clear_deadline();
                             c_.note_body_failed(ec);  // the 100 may be half sent: no drain
                             promise->set_value(piece{0, false, true});
                             return;
                           }
                           fill(into, 0, promise);
                         });
        return;
      }
      fill(into, 0, promise);
    });
    return result;
  }

  // Reads until `into` is full or the body ends: one hand-over per piece, not per TCP read.
  void fill(raw_buffer& into, std::size_t have, std::shared_ptr<std::promise<piece>> promise) {
    // Beast reads into the connection's buffer as much as it has room for: give it room for a
    // large read (a head leaves it a few hundred bytes; released again after the request).
    if (c_.buffer_.capacity() < body_read_size) c_.buffer_.reserve(body_read_size);
    auto& body = parser_.get().body();
    body.data = into.data() + have;
    body.size = into.size - have;
    body.more = true;
    c_.set_deadline(c_.transport().body_timeout);
    http::async_read_some(
        c_.stream(), c_.buffer_, parser_,
        [this, &into, promise](error_code ec, std::size_t n) mutable {
          if (n > 0) {
            note_progress();
            received_.fetch_add(n, std::memory_order_relaxed);
          }
          if (ec == http::error::need_buffer) ec = {};
          const std::size_t now = into.size - parser_.get().body().size;
          if (ec) {
            c_.clear_deadline();
            c_.note_body_failed(ec);
            promise->set_value(piece{now, false, true});
            return;
          }
          if (!parser_.is_done() && now < into.size) {
            fill(into, now, std::move(promise));
            return;
          }
          c_.clear_deadline();
          promise->set_value(piece{now, parser_.is_done(), false});
        });
  }

  piece wait(std::future<piece>& f) {
    const auto& t = c_.transport();
    const auto busy = t.body_busy_timeout;
    // The bytes a body must bring in each busy window while requests wait for a worker.
    const std::uint64_t window_bytes =
        t.body_busy_min_rate * static_cast<std::uint64_t>(busy.count()) / 1000;
    std::int64_t expired_at = -1;  // the progress mark an expiry was sent for
    auto last = steady::now();
    while (f.wait_for(std::chrono::milliseconds(200)) != std::future_status::ready) {
      // The I/O threads are gone (the server stopped): nothing will complete the read.
      if (c_.server().io_stopped) return piece{0, false, true};
      // This worker waits for a client that sends nothing, or too little, while other requests
      // wait for a worker: the read ends as if its deadline had passed (408), after
      // body_busy_timeout rather than body_timeout, so stalled or trickled uploads cannot keep
      // every worker. Too little: fewer than body_busy_min_rate bytes a second over a whole
      // busy window. A window is time spent here, waiting for the client, while requests wait
      // (the handler's own time between pieces does not count, and a body that was slow while
      // nobody waited owes nothing for it); it runs on across pieces, so a client cannot
      // escape it by finishing each piece within one window.
      // Once per stall: when bytes came after an expiry (its cancel found no read pending), the
      // next stall is expired again.
      const auto now = steady::now();
      const auto waited = now - last;
      last = now;
      const std::uint64_t got = received_.load(std::memory_order_relaxed);
      if (busy.count() == 0 || c_.server().queued.load() == 0) {
        window_waited_ = {};
        window_from_ = got;
        continue;
      }
      window_waited_ += waited;
      const bool window_done = window_waited_ >= busy;
      const bool stalled = since_progress() > busy;
      const bool slow = window_bytes > 0 && window_done && got - window_from_ < window_bytes;
      const std::int64_t mark = progress_.load(std::memory_order_relaxed);
      if (mark != expired_at && (stalled || slow)) {
        expired_at = mark;
        net::post(c_.stream().get_executor(), [c = c_.shared_from_this()] { c->expire_deadline(); });
      }
      if (window_done) {
        window_waited_ = {};
        window_from_ = got;
      }
    }
    return f.get();
  }

  // When the body last moved: bytes arrived, or the handler asked for the next piece.
  void note_progress() {
    progress_.store(std::chrono::duration_cast<std::chrono::nanoseconds>(steady::now().time_since_epoch()).count(),
                    std::memory_order_relaxed);
  }
  std::chrono::milliseconds since_progress() const {
    const std::chrono::nanoseconds then(progress_.load(std::memory_order_relaxed));
    return std::chrono::duration_cast<std::chrono::milliseconds>(steady::now().time_since_epoch() - then);
  }

  connection<Stream>& c_;
  request_parser& parser_;
  // Bytes of the body (with its chunk framing) read for the handler so far: the busy rate.
  std::atomic<std::uint64_t> received_{0};
  // The busy window (wait()): time waited for the client in it, and received_ when it began.
  steady::duration window_waited_{};
  std::uint64_t window_from_ = 0;
  std::int64_t content_length_;
  bool expect_continue_;
  bool continue_sent_ = false;
  bool called_ = false;
  std::optional<raw_buffer> ahead_;
  budget_share ahead_share_;  // ahead_'s bytes in the server's read_ahead budget
  std::size_t ahead_size_ = 0;
  std::atomic<std::int64_t> progress_{0};  // steady clock, nanoseconds: note_progress
};

template <class Stream>
net::awaitable<bool> connection<Stream>::wait_for_request(std::size_t served, steady::time_point until) {
  if (buffer_.size() > 0) co_return true;  // pipelined: the next request is already here
  error_code ec;
  set_deadline_at(until);
  if constexpr (is_tls<Stream>) {
    // TLS: wait for the socket first when OpenSSL holds nothing, so that an idle connection
    // asks OpenSSL for no read buffer; then read one byte through the stream (bytes may wait
    // inside it, not on the socket).
    if (SSL_has_pending(stream_.native_handle()) == 0) {
      co_await socket().async_wait(tcp::socket::wait_read, net::redirect_error(net::use_awaitable, ec));
    }
    const std::size_t n = ec ? 0 : co_await stream_.async_read_some(
        net::buffer(&first_byte_, 1), net::redirect_error(net::use_awaitable, ec));
    if (!ec && n == 1) {
      auto space = buffer_.prepare(1);
      std::memcpy(space.data(), &first_byte_, 1);
      buffer_.commit(1);
    }
  } else {
    // Plain: wait for the socket without a buffer, so an idle connection holds none.
    co_await stream_.async_wait(tcp::socket::wait_read, net::redirect_error(net::use_awaitable, ec));
  }
  if (ec) {
    if (timed_out_) server_->count_closed(served == 0 ? "head_timeout" : "idle_timeout");
    co_return false;
  }
  co_return true;
}

// Reads a request head into `parser`: what Beast's async_read_header does (parse what the buffer
// holds, read more while the parser needs more), with one check Beast does not make. RFC 9112
// (section 5.2) lets a server reject obsolete line folding (a field line continued on the next
// line after a space or tab) with a 400, or replace each fold with a space; Beast replaces it. A
// front door behind another proxy must not accept a head that the two may read differently
// ("Content-Length:" folded onto a second line, say), so registryd refuses it, as nginx does:
// every byte the parser takes is looked at, and a line that starts with a space or tab sets
// `folded` and ends the read.
template <class Stream>
net::awaitable<error_code> connection<Stream>::read_head(request_parser& parser, bool& folded,
                                                          bool& only_empty_lines) {
  error_code ec;
  char before = '\0';  // the byte before those the parser takes next
  bool skipped = false;  // this call consumed empty lines
  for (;;) {
    // RFC 9112 2.2: a server should ignore at least one empty line before the request line (some
    // clients end a body with an extra CRLF). Two are ignored; a CR waits for its LF (over TLS
    // the first byte of a request comes alone). When they were all there was, the caller goes
    // back to waiting for the request under the deadline it had; the two are counted across
    // reads (empty_lines_), so a client cannot hold a connection with a CRLF now and then.
    bool lone_cr = false;
    while (empty_lines_ < 2 && !parser.got_some() && buffer_.size() > 0) {
      const char* p = static_cast<const char*>(buffer_.data().data());
      if (p[0] != '\r') break;
      if (buffer_.size() < 2) {
        lone_cr = true;
        break;
      }
      if (p[1] != '\n') break;  // the parser refuses it
      buffer_.consume(2);
      ++empty_lines_;
      skipped = true;
    }
    if (skipped && buffer_.size() == 0 && !parser.got_some()) {
      only_empty_lines = true;
      co_return error_code{};
    }
    if (buffer_.size() > 0 && !lone_cr) {
      const auto data = buffer_.data();  // a flat buffer: one range
      const std::size_t used = parser.put(data, ec);
      const char* p = static_cast<const char*>(data.data());
      for (std::size_t i = 0; i < used && !folded; ++i) {
        folded = before == '\n' && (p[i] == ' ' || p[i] == '\t');
        before = p[i];
      }
      buffer_.consume(used);
      if (folded) co_return http::error::bad_field;
      if (ec != http::error::need_more) co_return ec;  // the head is whole ({}), or an error
      ec = {};
    }
    const std::size_t room = boost::beast::read_size(buffer_, 65536);
    if (room == 0) co_return http::error::buffer_overflow;
    const std::size_t n =
        co_await stream_.async_read_some(buffer_.prepare(room), net::redirect_error(net::use_awaitable, ec));
    buffer_.commit(n);
    if (ec == net::error::eof) co_return parser.got_some() ? http::error::partial_message : http::error::end_of_stream;
    if (ec) co_return ec;
  }
}

// RFC 9112's rules on top of Beast's parser: one Host, framing that cannot be read two ways,
// limits on the request line and the header count. On refusal: the status and the reason.
template <class Stream>
std::optional<refusal> connection<Stream>::check_head(const request_parser& parser, http_request& out) {
  const auto& h = parser.get();
  const auto& t = transport();
  // Beast's parser refuses any version but 1.0 and 1.1 (run() answers a well-formed other one 505).
  const std::string_view target = sv(h.target());
  if (h.method_string().size() + target.size() + 10 > t.max_request_line) {
    return refusal{414, "request_line",
                   "the request line is longer than " + std::to_string(t.max_request_line) + " bytes"};
  }
  // The target in origin form. An absolute-form target (what a client sends to a proxy) is
  // accepted, as RFC 9112 3.2.2 requires of a server, and its authority replaces the Host
  // field's value. The asterisk form (OPTIONS *) and the authority form (CONNECT) are valid
  // requests for methods registryd does not serve.
  std::string origin;
  std::optional<std::string_view> authority;
  if (!target.empty() && target.front() == '/') {
    origin = target;
  } else if (auto absolute = absolute_form(target)) {
    if (absolute->authority.empty() || !valid_authority(absolute->authority)) {
      return refusal{400, "bad_request", "the request target's authority is not a host and port"};
    }
    authority = absolute->authority;
    origin = std::move(absolute->origin);
  } else if ((target == "*" && h.method() == http::verb::options) || h.method() == http::verb::connect) {
    return refusal{501, "method", std::string(sv(h.method_string())) + " is not served"};
  } else {
    return refusal{400, "bad_request", "the request target must be a path"};
  }
  std::size_t count = 0;
  std::size_t hosts = 0;
  std::size_t lengths = 0;
  std::size_t codings = 0;
  std::size_t authorizations = 0;
  bool unmet_expectation = false;
  std::string host_value;
  std::string length_value;
  std::string coding_value;
  for (const auto& field : h) {
    ++count;
    const std::string_view name = sv(field.name_string());
    if (iequals(name, "Host")) {
      ++hosts;
      host_value = trimmed(sv(field.value()));
    }
    if (iequals(name, "Content-Length")) {
      ++lengths;
      length_value = trimmed(sv(field.value()));
    }
    if (iequals(name, "Transfer-Encoding")) {
      ++codings;
      coding_value = trimmed(sv(field.value()));
    }
    if (iequals(name, "Authorization")) ++authorizations;
    if (iequals(name, "Expect")) unmet_expectation = unmet_expectation || expectations_in(sv(field.value())).other;
  }
  if (count > t.max_header_count) {
    return refusal{431, "header_count", "more than " + std::to_string(t.max_header_count) + " header fields"};
  }
  if (hosts > 1 || (hosts == 0 && h.version() == 11)) return refusal{400, "bad_request", "a request needs exactly one Host"};
  if (hosts == 1 && !valid_authority(host_value)) return refusal{400, "bad_request", "the Host field is not a host and port"};
  if (lengths > 1) return refusal{400, "bad_request", "more than one Content-Length"};
  // One credential: with two, a proxy in front that reads the last would not agree with the
  // server, which would read the first.
  if (authorizations > 1) return refusal{400, "bad_request", "more than one Authorization"};
  if (lengths == 1 && !all_digits(length_value)) return refusal{400, "bad_request", "Content-Length is not a number"};
  // RFC 9110 10.1.1: 100-continue is the only expectation defined; a server may answer any
  // other with 417, as Go's net/http (docker-registry) and Apache answer an unknown one (Go
  // serves `100-continue, foo` as a continue; here any other member is refused). An empty
  // Expect asks for nothing. An HTTP/1.0 request's Expect is ignored (the 100-continue
  // handshake is HTTP/1.1's).
  if (unmet_expectation && h.version() == 11) {
    return refusal{417, "expectation", "the only expectation served is 100-continue"};
  }
  if (codings > 0) {
    if (lengths > 0) return refusal{400, "bad_request", "both Content-Length and Transfer-Encoding"};
    if (h.version() == 10) return refusal{400, "bad_request", "Transfer-Encoding in an HTTP/1.0 request"};
    if (codings > 1 || !iequals(coding_value, "chunked")) {
      return refusal{501, "transfer_coding", "the only transfer coding served is chunked"};
    }
  }

  out.method = std::string(sv(h.method_string()));
  const auto q = origin.find('?');
  out.path = httplib::detail::decode_url(origin.substr(0, q), false);
  out.query = q == std::string::npos ? std::string() : origin.substr(q + 1);
  out.target = std::move(origin);
  out.version = h.version();
  out.headers.reserve(count + 1);
  for (const auto& field : h) {
    const std::string_view name = sv(field.name_string());
    out.headers.emplace_back(name, authority && iequals(name, "Host") ? *authority : sv(field.value()));
  }
  if (authority && hosts == 0) out.headers.emplace_back("Host", *authority);
  if (codings > 0) {
    out.content_length = -1;
  } else if (lengths == 1) {
    std::uint64_t n = 0;
    const auto [p, ec] = std::from_chars(length_value.data(), length_value.data() + length_value.size(), n);
    if (ec != std::errc{} || n > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
      return refusal{400, "bad_request", "Content-Length is out of range"};
    }
    out.content_length = static_cast<std::int64_t>(n);
  }
  return std::nullopt;
}

// Reads a body's first body_read_ahead bytes (all of a smaller one) before its request takes a
// worker, after a 100 Continue when the client asked for one. False when the body stopped
// arriving or broke its framing (framing_refusal_ says how to answer).
template <class Stream>
net::awaitable<bool> connection<Stream>::read_ahead(request_parser& parser, body_pipe<Stream>& body,
                                                    bool expect_continue) {
  const auto left = parser.content_length_remaining();
  const std::size_t size = left ? static_cast<std::size_t>(std::min<std::uint64_t>(*left, body_read_ahead)) : body_read_ahead;
  // The budget is charged for bytes as they come, not for the length a client declares: at
  // most twice what arrived, from a first 4 KiB. A client that declares 64 KiB and sends a byte
  // holds 4 KiB of it (1,100 such connections took the whole 64 MiB before).
  budget_share share(server_->read_ahead, 0);
  std::size_t granted = 0;
  const auto grant = [&](std::size_t want) {
    want = std::min(want, size);
    if (want <= granted) return true;
    if (!share.take_more(want - granted)) return false;
    granted = want;
    return true;
  };
  // Past the budget (many bodies read ahead at once) the handler reads this one, all of it.
  if (!grant(read_ahead_first)) co_return true;
  error_code ec;
  if (expect_continue) {
    static constexpr std::string_view text = "HTTP/1.1 100 Continue\r\n\r\n";
    set_deadline(transport().body_timeout);
    co_await net::async_write(stream_, net::buffer(text.data(), text.size()), net::redirect_error(net::use_awaitable, ec));
    clear_deadline();
    if (ec) {
      body_failed_ = true;
      co_return false;
    }
  }
  // The buffer grows with the grant, so memory follows the bytes that came too.
  raw_buffer into(granted);
  std::size_t have = 0;
  if (buffer_.capacity() < body_read_size) buffer_.reserve(body_read_size);
  while (!parser.is_done() && have < size) {
    // Full up to what the budget granted: twice as much, or, past the budget, the handler reads
    // the rest through the pipe.
    if (have == granted) {
      if (!grant(2 * granted)) break;
      raw_buffer larger(granted);
      std::memcpy(larger.data(), into.data(), have);
      into = std::move(larger);
    }
    auto& b = parser.get().body();
    b.data = into.data() + have;
    b.size = granted - have;
    b.more = true;
    set_deadline(transport().body_timeout);
    co_await http::async_read_some(stream_, buffer_, parser, net::redirect_error(net::use_awaitable, ec));
    clear_deadline();
    if (ec == http::error::need_buffer) ec = {};
    have = granted - parser.get().body().size;
    if (ec) {
      note_body_failed(ec);
      co_return false;
    }
  }
  body.take_read_ahead(std::move(into), have, expect_continue, std::move(share));
  co_return true;
}

// Reads and drops what is left of a body the handler did not read, up to the drain limit.
template <class Stream>
net::awaitable<bool> connection<Stream>::drain(request_parser& parser) {
  std::uint64_t budget = transport().drain_limit_bytes;
  if (const auto left = parser.content_length_remaining(); left && *left > budget) co_return false;
  raw_buffer sink(64 * 1024);
  if (buffer_.capacity() < body_read_size) buffer_.reserve(body_read_size);
  // The answer waits for the drain, so the drain waits closing_time for each read, not the body
  // timeout: a client that stops sending gets the answer and a close a second later, and a slow
  // one that keeps sending keeps its connection.
  while (!parser.is_done()) {
    auto& body = parser.get().body();
    body.data = sink.data();
    body.size = sink.size;
    error_code ec;
    set_deadline(closing_time);
    co_await http::async_read_some(stream_, buffer_, parser, net::redirect_error(net::use_awaitable, ec));
    clear_deadline();
    if (ec == http::error::need_buffer) ec = {};
    if (ec) {
      if (timed_out_) server_->count_closed("body_timeout");
      note_body_error(ec);
      co_return false;
    }
    const std::uint64_t got = sink.size - parser.get().body().size;
    if (got > budget) co_return false;
    budget -= got;
  }
  co_return true;
}

template <class Stream>
net::awaitable<bool> connection<Stream>::write_response(const http_request& req, http_response& res,
                                                        bool keep_alive) {
  const unsigned status = res.status;
  const bool no_body_status = (status >= 100 && status < 200) || status == 204 || status == 304;
  const bool head_only = req.method == "HEAD" || no_body_status;
  std::string head;
  head.reserve(256);
  head += req.version == 10 ? "HTTP/1.0 " : "HTTP/1.1 ";
  head += std::to_string(status);
  head += ' ';
  head += sv(http::obsolete_reason(http::int_to_status(status)));
  head += "\r\nDate: ";
  head += http_date();
  head += "\r\n";
  for (const auto& [name, value] : res.headers) {
    head += name;
    head += ": ";
    head += value;
    head += "\r\n";
  }
  if (!res.content_type.empty()) {
    head += "Content-Type: ";
    head += res.content_type;
    head += "\r\n";
  }
  bool chunked = false;
  std::optional<std::uint64_t> length;
  switch (res.kind) {
    case http_response::body_kind::none:
      length = res.declared_length.value_or(0);
      break;
    case http_response::body_kind::bytes:
      length = res.bytes.size();
      break;
    case http_response::body_kind::file:
      length = res.file_length;
      break;
    case http_response::body_kind::stream:
      if (res.stream_length >= 0) {
        length = static_cast<std::uint64_t>(res.stream_length);
      } else {
        chunked = true;
      }
      break;
  }
  // 304 carries a length of 0 (or the plugin's): clients of the httplib family read a 304
  // without one until the connection closes. 1xx and 204 carry none (RFC 9110).
  if (status == 304) {
    head += "Content-Length: ";
    head += std::to_string(res.declared_length.value_or(0));
    head += "\r\n";
  } else if (!no_body_status) {
    if (length) {
      head += "Content-Length: ";
      head += std::to_string(*length);
      head += "\r\n";
    } else if (chunked && req.version == 11 && !head_only) {
      head += "Transfer-Encoding: chunked\r\n";
    } else if (chunked) {
      keep_alive = false;  // an HTTP/1.0 client learns the end from the close
    }
  }
  if (!keep_alive) {
    head += "Connection: close\r\n";
  } else if (req.version == 10) {
    head += "Connection: keep-alive\r\n";
  }
  head += "\r\n";

  if (head_only || res.kind == http_response::body_kind::none) co_return co_await write_all(head);
  switch (res.kind) {
    case http_response::body_kind::bytes:
      head += res.bytes;
      co_return co_await write_all(head);
    case http_response::body_kind::file:
      co_return co_await send_file(res, std::move(head));
    case http_response::body_kind::stream:
      if (!co_await write_all(head)) co_return false;
      co_return co_await send_stream(res, chunked && req.version == 11);
    case http_response::body_kind::none:
      break;
  }
  co_return true;
}

// A file on a TLS connection whose records registryd seals: read (preadv) straight into the plain
// text of up to sealed_slice_records records in one buffer, the head ahead of the file in the
// first, each record sealed where it lies, and the records sent in one write. One pass over the
// bytes in user space, the encryption; docs/frontdoor.md, "TLS records sealed by registryd".
template <class Stream>
net::awaitable<bool> connection<Stream>::send_file_sealed(http_response& res, std::string head, record_layout layout) {
  if constexpr (is_tls<Stream>) {
    constexpr std::size_t plain_max = record_layout::max_plain;
    const int fd = res.file->fd;
    std::uint64_t offset = res.file_offset;
    std::uint64_t left = res.file_length;
    if (head.size() > plain_max) {  // a head that would not fit in the first record goes alone
      if (!co_await write_all(head)) co_return false;
      head.clear();
    }
    std::size_t prefix = head.size();  // plain bytes already in the records, ahead of the file's
    // Records this round may hold, at most: fewer when fewer are left.
    const auto fitted = [&](std::size_t want) {
      const std::uint64_t records = (prefix + left + plain_max - 1) / plain_max;
      return static_cast<std::size_t>(std::clamp<std::uint64_t>(records, 1, want));
    };
    std::size_t slots = fitted(first_answer_piece / plain_max);
    const std::size_t slot = layout.slot();
    raw_buffer buf(slots * slot);
    budget_share grown(server_->file_grown, 0);
    // Plain byte p of a round sits in record p / plain_max, at its offset p % plain_max.
    const auto plain_at = [&](std::size_t p) { return buf.data() + (p / plain_max) * slot + layout.before + p % plain_max; };
    std::memcpy(plain_at(0), head.data(), prefix);
    std::array<iovec, sealed_slice_records> iov{};
    for (;;) {
      const std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(left, slots * plain_max - prefix));
      ssize_t n = 0;
      if (want > 0) {
        int count = 0;
        for (std::size_t p = prefix; p < prefix + want; ++count) {
          const std::size_t piece = std::min(plain_max - p % plain_max, prefix + want - p);
          iov[static_cast<std::size_t>(count)] = iovec{plain_at(p), piece};
          p += piece;
        }
        do {
          n = ::preadv(fd, iov.data(), count, static_cast<off_t>(offset));
        } while (n < 0 && errno == EINTR);
        if (n <= 0) co_return false;  // a read error, or the file is shorter than promised
      }
      const std::size_t plain = prefix + static_cast<std::size_t>(n);
      std::size_t end = 0;  // the records are back to back: only the last one may be short
      for (std::size_t r = 0; r * plain_max < plain; ++r) {
        const std::size_t size = stream_.seal_in_place(buf.data() + r * slot, std::min(plain_max, plain - r * plain_max));
        if (size == 0) co_return false;
        end = r * slot + size;
      }
      socket_filled_ = false;
      if (!co_await send_sealed(std::string_view(buf.data(), end))) co_return false;
      written_ += plain;
      prefix = 0;
      offset += static_cast<std::uint64_t>(n);
      left -= static_cast<std::uint64_t>(n);
      if (left == 0) co_return true;
      // The socket took the whole round: twice the records next time, if the budget has room.
      const std::size_t larger = fitted(std::min(2 * slots, sealed_slice_records));
      if (!socket_filled_ && larger > slots && grown.take_more((larger - slots) * slot)) {
        slots = larger;
        buf = raw_buffer(slots * slot);
      }
    }
  } else {
    co_return false;
  }
}

template <class Stream>
net::awaitable<bool> connection<Stream>::send_file(http_response& res, std::string head) {
  const int fd = res.file->fd;
  std::uint64_t offset = res.file_offset;
  std::uint64_t left = res.file_length;
  // Zero copies: sendfile on a plain connection where the setting asks for it, SSL_sendfile on a
  // TLS connection whose records the kernel seals. Where registryd seals them, the file is read
  // into records and sealed in place.
  bool zero_copy = false;
  if constexpr (is_tls<Stream>) {
    if (const auto layout = stream_.sealing_layout()) co_return co_await send_file_sealed(res, std::move(head), *layout);
    zero_copy = stream_.kernel_sends();
  } else {
    zero_copy = transport().sendfile;
  }
  if (!zero_copy) {
    // Read, then write, a piece at a time (on TLS, write_all gathers the records into few
    // socket writes); the head goes out with the first piece.
    raw_buffer buf(static_cast<std::size_t>(std::min<std::uint64_t>(first_answer_piece, head.size() + left)));
    budget_share grown(server_->file_grown, 0);
    std::size_t prefix = std::min(head.size(), buf.size);
    std::memcpy(buf.data(), head.data(), prefix);
    if (prefix < head.size()) {
      if (!co_await write_all(head)) co_return false;
      prefix = 0;
    }
    for (;;) {
      const std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(left, buf.size - prefix));
      ssize_t n = 0;
      if (want > 0) {
        do {
          n = ::pread(fd, buf.data() + prefix, want, static_cast<off_t>(offset));
        } while (n < 0 && errno == EINTR);
        if (n <= 0) co_return false;  // a read error, or the file is shorter than promised
      }
      socket_filled_ = false;
      if (!co_await write_all(std::string_view(buf.data(), prefix + static_cast<std::size_t>(n)))) co_return false;
      prefix = 0;
      offset += static_cast<std::uint64_t>(n);
      left -= static_cast<std::uint64_t>(n);
      if (left == 0) co_return true;
      // The socket took the whole piece: twice as much next time, if the budget has room.
      const auto larger = static_cast<std::size_t>(std::min<std::uint64_t>(std::min(2 * buf.size, read_slice), left));
      if (!socket_filled_ && larger > buf.size && grown.take_more(larger - buf.size)) buf = raw_buffer(larger);
    }
  }
  {
    if (!co_await write_all(head)) co_return false;
    // Sends up to `len` bytes of the file from `off`: what sendfile(2) returns, errno EAGAIN
    // when the socket is full.
    const auto send_some = [this, fd](std::uint64_t off, std::size_t len) -> ssize_t {
      if constexpr (is_tls<Stream>) {
        ERR_clear_error();
        const ossl_ssize_t n = SSL_sendfile(stream_.native_handle(), fd, static_cast<off_t>(off), len, 0);
        if (n >= 0) return n;
        const int e = SSL_get_error(stream_.native_handle(), static_cast<int>(n));
        ERR_clear_error();
        errno = e == SSL_ERROR_WANT_WRITE ? EAGAIN : EIO;
        return -1;
      } else {
        off_t o = static_cast<off_t>(off);
        return ::sendfile(stream_.native_handle(), fd, &o, len);
      }
    };
    std::size_t since_yield = 0;
    while (left > 0) {
      const ssize_t n = send_some(offset, static_cast<std::size_t>(std::min<std::uint64_t>(left, file_slice)));
      if (n > 0) {
        offset += static_cast<std::uint64_t>(n);
        left -= static_cast<std::uint64_t>(n);
        written_ += static_cast<std::uint64_t>(n);
        since_yield += static_cast<std::size_t>(n);
        if (since_yield >= file_slice && left > 0) {
          since_yield = 0;
          co_await net::post(co_await net::this_coro::executor, net::use_awaitable);
        }
        continue;
      }
      if (n == 0) co_return false;  // the file is shorter than promised
      if (errno == EINTR) continue;
      if (errno != EAGAIN) co_return false;
      error_code ec;
      set_deadline(transport().body_timeout);
      co_await socket().async_wait(tcp::socket::wait_write, net::redirect_error(net::use_awaitable, ec));
      clear_deadline();
      if (ec) {
        if (timed_out_) server_->count_closed("body_timeout");
        co_return false;
      }
      since_yield = 0;
    }
    co_return true;
  }
}

template <class Stream>
net::awaitable<bool> connection<Stream>::send_stream(http_response& res, bool chunked) {
  // Room before the bytes for a chunk's size line, after them for its CRLF.
  constexpr std::size_t front = 16;
  // No larger than what is left to send (a manifest, say, needs no 256 KiB).
  const auto fitted = [&res](std::size_t want, std::uint64_t sent) {
    if (res.stream_length < 0) return want;
    const auto left = static_cast<std::uint64_t>(res.stream_length) - std::min(sent, static_cast<std::uint64_t>(res.stream_length));
    return static_cast<std::size_t>(std::max<std::uint64_t>(1, std::min<std::uint64_t>(want, left)));
  };
  // What the buffer holds past 64 KiB, taken from the server's budget and given back when the
  // stream ends however it ends: the first piece is 256 KiB while the half of the budget kept
  // for first pieces has room (past it, streams whose clients stopped reading cost 64 KiB
  // each), and the buffer grows past that within the other half, so that a few fast streams
  // never leave new ones at 64 KiB.
  budget_share first(server_->stream_first, 0);
  budget_share grown(server_->stream_grown, 0);
  std::size_t capacity = fitted(first_answer_piece, 0);  // the buffer's, without its room for framing
  if (const std::size_t usual = fitted(piece_size, 0); usual > capacity && first.take_more(usual - capacity)) {
    capacity = usual;
  }
  raw_buffer buf(front + capacity + 2);
  std::uint64_t sent = 0;
  body_source& source = *res.stream;
  for (;;) {
    const std::size_t offer = fitted(capacity, sent);
    const std::int64_t n = co_await on_worker<std::int64_t>(*server_->workers, client_, [&source, &buf, offer] {
      return source.read(buf.data() + front, offer);
    });
    if (n < 0) co_return false;
    if (n == 0) {
      if (chunked) co_return co_await write_all("0\r\n\r\n");
      // A fixed-length stream that ends early: the client must see a short body and a close.
      co_return res.stream_length < 0 || sent == static_cast<std::uint64_t>(res.stream_length);
    }
    const auto size = static_cast<std::size_t>(n);
    if (!chunked) {
      if (res.stream_length >= 0 && sent + size > static_cast<std::uint64_t>(res.stream_length)) co_return false;
      if (!co_await write_all(std::string_view(buf.data() + front, size))) co_return false;
    } else {
      char line[16];
      auto [end, ec] = std::to_chars(line, line + sizeof line - 2, size, 16);
      *end++ = '\r';
      *end++ = '\n';
      const std::size_t line_size = static_cast<std::size_t>(end - line);
      std::memcpy(buf.data() + front - line_size, line, line_size);
      buf.data()[front + size] = '\r';
      buf.data()[front + size + 1] = '\n';
      if (!co_await write_all(std::string_view(buf.data() + front - line_size, line_size + size + 2))) {
        co_return false;
      }
    }
    sent += size;
    if (!chunked && res.stream_length >= 0 && sent == static_cast<std::uint64_t>(res.stream_length)) co_return true;
    if (size == offer && capacity < stream_piece_max) {
      const std::size_t larger = fitted(std::min(2 * capacity, stream_piece_max), sent);
      // Past the budget the stream keeps its buffer (and asks again after its next full read).
      if (larger > capacity && grown.take_more(larger - capacity)) {
        capacity = larger;
        buf = raw_buffer(front + capacity + 2);
      }
    }
  }
}

template <class Stream>
net::awaitable<void> connection<Stream>::close(bool linger) {
  error_code ec;
  if constexpr (is_tls<Stream>) {
    set_deadline(closing_time);
    co_await stream_.async_shutdown(net::redirect_error(net::use_awaitable, ec));
  }
  socket().shutdown(tcp::socket::shutdown_send, ec);
  if (linger) {
    // The client may still be sending a body we will not read: read and drop it for a moment,
    // so that the kernel does not answer it with a reset that destroys our response.
    const raw_buffer sink(64 * 1024);
    std::size_t dropped = 0;
    set_deadline(closing_time);
    while (dropped < linger_bytes) {
      const std::size_t n = co_await socket().async_read_some(net::buffer(sink.data(), sink.size),
                                                              net::redirect_error(net::use_awaitable, ec));
      if (ec) break;
      dropped += n;
    }
  }
  clear_deadline();
  finished_ = true;
  timer_.cancel();
  socket().close(ec);
}

template <class Stream>
net::awaitable<void> connection<Stream>::run(std::shared_ptr<connection> self) {
  const auto& t = transport();
  error_code ec;
  if constexpr (is_tls<Stream>) {
    set_deadline(t.handshake_timeout);
    co_await stream_.async_handshake(net::ssl::stream_base::server, net::redirect_error(net::use_awaitable, ec));
    clear_deadline();
    if (ec) {
      server_->count_closed(timed_out_ ? "handshake_timeout" : "handshake_failed");
      finished_ = true;
      timer_.cancel();
      socket().close(ec);
      co_return;
    }
    (stream_.kernel_sends()       ? server_->sealed_by_kernel
     : stream_.registryd_seals() ? server_->sealed_by_registryd
                                 : server_->sealed_by_openssl)
        .Increment();
    peer_subject_ = verified_peer_subject(stream_.native_handle());
    peer_serial_ = verified_peer_serial(stream_.native_handle());
  }
  bool linger = false;
  // Until when the next request may keep the connection waiting: the head timeout from accept
  // for the first, the idle timeout from the last answer for the next. Empty lines in between
  // change neither it nor the count of requests served.
  auto until = steady::now() + t.head_timeout;
  for (std::size_t served = 0;;) {
    if (!co_await wait_for_request(served, until)) break;
    set_deadline(t.head_timeout);
    request_parser parser(t.max_header_count);
    parser.header_limit(static_cast<std::uint32_t>(t.max_header_bytes));
    parser.body_limit(std::numeric_limits<std::uint64_t>::max());  // bodies stream: no limit here
    bool folded = false;
    bool only_empty_lines = false;
    ec = co_await read_head(parser, folded, only_empty_lines);
    clear_deadline();
    if (!ec && only_empty_lines) continue;  // empty lines between requests: wait on for the next
    empty_lines_ = 0;
    if (ec) {
      if (timed_out_) {
        co_await refuse(408, "head_timeout", "the request head did not arrive in time");
      } else if (folded) {
        co_await refuse(400, "bad_request",
                        "obsolete line folding (a header line that starts with a space or tab) is not accepted");
      } else if (ec == http::error::header_limit || ec == http::error::buffer_overflow) {
        // Which part was too long: Beast parses (and consumes) the request line as soon as it
        // is whole, so a request without a target yet never finished its line.
        if (parser.get().target().empty()) {
          co_await refuse(414, "request_line", "the request line is too long");
        } else {
          co_await refuse(431, "header_bytes", "the request head is larger than " +
                                                   std::to_string(t.max_header_bytes) + " bytes");
        }
      } else if (ec == http::error::bad_version && names_other_version(std::string_view(static_cast<const char*>(buffer_.cdata().data()), buffer_.size()))) {
        co_await refuse(505, "version", "the HTTP versions served are 1.0 and 1.1");
      } else if (ec != http::error::end_of_stream && ec != net::error::eof &&
                 ec != net::error::connection_reset && ec != net::ssl::error::stream_truncated) {
        co_await refuse(400, "bad_request", "malformed request: " + ec.message());
      }
      linger = true;
      break;
    }

    http_request req;
    req.remote_addr = client_;
    req.peer_subject = peer_subject_;
    req.peer_serial = peer_serial_;
    if (const auto refused = check_head(parser, req)) {
      co_await refuse(refused->status, refused->reason, refused->why);
      linger = true;
      break;
    }

    const bool expect_continue =
        req.version == 11 && req.has_body() &&
        std::any_of(req.headers.begin(), req.headers.end(), [](const auto& h) {
          return iequals(h.first, "Expect") && expectations_in(h.second).of_continue;
        });
    bool keep_alive = parser.keep_alive() && served + 1 < t.keep_alive_max_requests &&
                      !server_->stopping.load();
    auto started = steady::now();
    http_response res;
    body_pipe<Stream> body(*this, parser, req.content_length, expect_continue);
    // A small body (and the start of a chunked one) is read before the request takes a worker.
    // A client that asked to be told to go on (Expect: 100-continue) is told so here only where
    // the handler reads every body of that size anyway (server_options::whole_body_limit);
    // elsewhere the handler may answer before the body is sent, and the 100 waits for its first
    // read.
    bool ahead_failed = false;
    const bool fits_ahead =
        req.content_length < 0 || static_cast<std::uint64_t>(req.content_length) <= body_read_ahead;
    const auto read_whole = [&] {
      const std::size_t limit = server_->opts.whole_body_limit ? server_->opts.whole_body_limit(req) : 0;
      return limit > 0 && (req.content_length < 0 || static_cast<std::uint64_t>(req.content_length) <= limit);
    };
    if (!parser.is_done() && fits_ahead && (!expect_continue || read_whole())) {
      ahead_failed = !co_await read_ahead(parser, body, expect_continue);
      // The client left mid-body: nobody to answer. Otherwise framing_refusal_ is the answer.
      if (ahead_failed && !framing_refusal_) break;
    }
    if (ahead_failed) {
      // Answered below from framing_refusal_ (408, 400 or 431), then a close.
    } else if (server_->queued.load() >= t.max_queued_requests) {
      server_->count_refused("queue_full");
      res.status = 503;
      res.set_header("Retry-After", "1");
      res.set_content("503 Service Unavailable: every worker is busy\n", "text/plain");
      res.close = true;
    } else {
      co_await handle_on_worker(req, body, res);
      if (client_left_) break;
      if (res.park_on && res.park_for.count() > 0 && !req.resumed) {
        co_await park(res.park_on, res.park_seen, res.park_for);
        started = steady::now();  // the request's duration is its handling, not the wait
        req.resumed = true;
        res = http_response{};
        co_await handle_on_worker(req, body, res);
        if (client_left_) break;
      }
    }

    if (!parser.is_done()) {
      if (body_failed_) {
        keep_alive = false;  // the answer says why the body failed (framing_refusal_), then a close
        linger = !body_stalled_;
      } else if (expect_continue && !body.continue_sent()) {
        keep_alive = false;  // the client holds its body back; it must not arrive as a request
        linger = true;
      } else if (!co_await drain(parser)) {
        keep_alive = false;
        linger = true;
      }
    }
    if (framing_refusal_) {
      server_->count_refused(framing_refusal_->reason);
      res = http_response{};
      res.status = framing_refusal_->status;
      res.set_content(refusal_body(res.status, framing_refusal_->why), "text/plain");
      keep_alive = false;
    }
    if (res.close) keep_alive = false;
    written_ = 0;
    const bool written = co_await write_response(req, res, keep_alive);
    exchange x;
    x.request = &req;
    x.response = &res;
    x.status = res.status;
    x.seconds = std::chrono::duration<double>(steady::now() - started).count();
    x.bytes_sent = written_;
    server_->observer(x);
    if (!written) {
      if (timed_out_) server_->count_closed("body_timeout");
      break;
    }
    if (!keep_alive) break;
    if (buffer_.size() == 0) buffer_.shrink_to_fit();  // an idle connection holds no buffer
    if constexpr (is_tls<Stream>) stream_.release();
    ++served;
    until = steady::now() + t.idle_timeout;
  }
  co_await close(linger);
  (void)self;
}

}  // namespace

http_server::impl::impl(server_options o, http_handler h, exchange_observer obs,
                        std::shared_ptr<spdlog::logger> l, prometheus::Registry& metrics)
    : opts(std::move(o)),
      handler(std::move(h)),
      observer(std::move(obs)),
      logger(std::move(l)),
      connections(opts.transport.max_connections, opts.transport.max_connections_per_client),
      open_gauge(unlabelled_gauge(metrics, "registryd_http_connections",
                                  "Connections the front door holds open.")),
      in_flight_gauge(unlabelled_gauge(metrics, "registryd_http_requests_in_flight",
                                       "Requests a worker is handling now.")),
      queued_gauge(unlabelled_gauge(metrics, "registryd_http_requests_queued",
                                    "Requests waiting for a worker.")),
      parked_gauge(unlabelled_gauge(metrics, "registryd_http_requests_parked",
                                    "Long polls parked until what they wait for changes (no worker held).")),
      stream_buffer_gauge(unlabelled_gauge(metrics, "registryd_http_stream_buffer_grown_bytes",
                                           "Bytes streamed answers hold in buffers past their first 64 KiB.")),
      stream_first(opts.transport.stream_buffer_budget / 2, stream_buffer_gauge),
      stream_grown(opts.transport.stream_buffer_budget - opts.transport.stream_buffer_budget / 2,
                   stream_buffer_gauge),
      file_grown(opts.transport.file_buffer_budget,
                 unlabelled_gauge(metrics, "registryd_http_file_buffer_grown_bytes",
                                  "Bytes file answers hold in buffers grown past their first 64 KiB.")),
      read_ahead(opts.transport.read_ahead_budget,
                 unlabelled_gauge(metrics, "registryd_http_body_read_ahead_bytes",
                                  "Bytes held by request bodies read before their requests took a worker.")),
      accepted(prometheus::BuildCounter()
                   .Name("registryd_http_connections_accepted_total")
                   .Help("Connections accepted by the front door.")
                   .Register(metrics)
                   .Add({})),
      closed_family(prometheus::BuildCounter()
                        .Name("registryd_http_connections_closed_total")
                        .Help("Connections the front door closed on a limit, a timeout or a failed "
                              "handshake, by reason.")
                        .Register(metrics)),
      refused_family(prometheus::BuildCounter()
                         .Name("registryd_http_requests_refused_total")
                         .Help("Requests the transport answered with an error itself (malformed or "
                               "ambiguous framing, limits, timeouts, a full queue), by reason.")
                         .Register(metrics)),
      handshakes_family(prometheus::BuildCounter()
                            .Name("registryd_http_tls_handshakes_total")
                            .Help("TLS handshakes completed, by who seals the connection's records: "
                                  "the kernel (kernel TLS), registryd, or OpenSSL.")
                            .Register(metrics)),
      sealed_by_kernel(handshakes_family.Add({{"records", "kernel"}})),
      sealed_by_registryd(handshakes_family.Add({{"records", "registryd"}})),
      sealed_by_openssl(handshakes_family.Add({{"records", "openssl"}})) {}

void http_server::impl::on_accepted(tcp::socket socket) {
  error_code ec;
  const auto peer = socket.remote_endpoint(ec);
  if (ec) return;
  std::string client = peer.address().to_string();
  accepted.Increment();
  sdk::admission::refusal why{};
  auto place = connections.enter(client, &why);
  if (!place) {
    count_closed(why == sdk::admission::refusal::total ? "max_connections" : "max_connections_per_client");
    if (!tls) {
      static const std::string text =
          refusal_text(503, "too many connections", "Retry-After: 1\r\n");
      (void)::send(socket.native_handle(), text.data(), text.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
    }
    socket.shutdown(tcp::socket::shutdown_both, ec);
    socket.close(ec);
    return;
  }
  socket.set_option(tcp::no_delay(true), ec);
  socket.non_blocking(true, ec);
  // A bounded unsent queue (docs/frontdoor.md, "Unsent bytes in the socket"). A kernel without
  // the option keeps its default; nothing else depends on it.
  if (const int lowat = static_cast<int>(opts.transport.tcp_notsent_lowat); lowat > 0) {
    (void)::setsockopt(socket.native_handle(), IPPROTO_TCP, TCP_NOTSENT_LOWAT, &lowat, sizeof lowat);
  }
  auto self = shared_from_this();
  open_gauge.Increment();  // the connection's destructor takes it back
  if (tls) {
    start(std::make_shared<connection<tls_stream>>(self, std::move(client), std::move(place), std::move(socket), *tls,
                                                   seal_here));
  } else {
    start(std::make_shared<connection<tcp::socket>>(self, std::move(client), std::move(place), std::move(socket)));
  }
}

// Starts a connection's coroutine from a handler on the connection's own executor. Boost 1.74's
// co_spawn, called on a thread that is not running the target executor (here the accepting
// thread), races with the coroutine's first resumption on the thread that is: the handle that
// launched it is torn down while the coroutine already runs (chriskohlhoff/asio#552, a
// heap-use-after-free under ASan).
template <class Connection>
void http_server::impl::start(std::shared_ptr<Connection> c) {
  auto ex = c->stream().get_executor();
  net::post(ex, [c = std::move(c)] { net::co_spawn(c->stream().get_executor(), c->run(c), net::detached); });
}

void http_server::impl::accept() {
  auto& target = *ios[next_io++ % ios.size()];
  acceptor->async_accept(target, [self = shared_from_this()](error_code ec, tcp::socket socket) {
    if (self->stopping) return;
    if (ec) {
      if (ec == net::error::operation_aborted) return;
      // Out of descriptors, say: wait a moment instead of spinning.
      self->logger->warn("front door: accept failed: {}", ec.message());
      auto timer = std::make_shared<net::steady_timer>(*self->ios[0], std::chrono::milliseconds(100));
      timer->async_wait([self, timer](error_code) {
        if (!self->stopping) self->accept();
      });
      return;
    }
    self->on_accepted(std::move(socket));
    self->accept();
  });
}

http_server::http_server(server_options options, http_handler handler, exchange_observer observer,
                         std::shared_ptr<spdlog::logger> logger, prometheus::Registry& metrics)
    : impl_(std::make_shared<impl>(std::move(options), std::move(handler), std::move(observer),
                                   std::move(logger), metrics)) {}

http_server::~http_server() { stop(); }

int http_server::port() const { return impl_->bound_port; }

util::status http_server::start() {
  auto& s = *impl_;
  const auto& t = s.opts.transport;
  std::size_t io_threads = t.io_threads;
  if (io_threads == 0) io_threads = std::clamp<std::size_t>(std::thread::hardware_concurrency(), 1, 4);
  for (std::size_t i = 0; i < io_threads; ++i) s.ios.push_back(std::make_unique<net::io_context>(1));
  if (s.opts.configure_tls) {
    // OpenSSL writes TLS connections' sockets with send(2) without MSG_NOSIGNAL: a client gone
    // must be an error to the writer, not a signal that ends the process.
    std::signal(SIGPIPE, SIG_IGN);
    s.tls.emplace(net::ssl::context::tls_server);
    SSL_CTX* ctx = s.tls->native_handle();
    // OpenSSL frees a connection's record buffers while it is idle.
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    // No renegotiation: a body is encrypted synchronously into the gathered buffer, which must
    // never have to wait for the client.
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION);
    // Records are read a socket read at a time, not a header and then a body.
    SSL_CTX_set_read_ahead(ctx, 1);
    // Kernel TLS where the kernel has it: OpenSSL asks for it at every handshake, and a kernel
    // without it would be asked to load its module each time, so the kernel is asked once here.
    s.kernel_tls = t.tls_kernel_offload && kernel_offers_tls();
    if (s.kernel_tls) SSL_CTX_set_options(ctx, SSL_OP_ENABLE_KTLS);
    // Else registryd seals the records where the setting asks and this OpenSSL hands it the keys
    // (checked once per process: it rests on OpenSSL's kernel-TLS hand-over, record_sealer.hpp).
    if (!s.kernel_tls && t.tls_registryd_seals) {
      static const std::string sealing_fails = [] {
        std::string why;
        return record_sealing_works(why) ? std::string() : why;
      }();
      s.seal_here = sealing_fails.empty();
      if (s.seal_here) {
        record_bio_follow_key_updates(ctx);
      } else {
        s.logger->warn("registryd cannot seal TLS records with this OpenSSL ({}); OpenSSL seals them", sealing_fails);
      }
    }
    if (!s.opts.configure_tls(ctx)) return util::error{"cannot set up the TLS context"};
  }
  error_code ec;
  const auto address = net::ip::make_address(s.opts.address, ec);
  if (ec) return util::error{"cannot listen on " + s.opts.address + ": not an IP address"};
  const tcp::endpoint endpoint(address, static_cast<unsigned short>(s.opts.port));
  const std::string where = s.opts.address + ":" + std::to_string(s.opts.port);
  s.acceptor.emplace(*s.ios[0]);
  s.acceptor->open(endpoint.protocol(), ec);
  // SO_REUSEADDR lets a restarted server bind while old connections linger in TIME_WAIT; it
  // does not let two listeners share the address (that is SO_REUSEPORT, never set here).
  if (!ec) s.acceptor->set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) s.acceptor->bind(endpoint, ec);
  if (!ec) s.acceptor->listen(1024, ec);  // the kernel caps it at net.core.somaxconn
  if (ec) {
    s.acceptor.reset();
    return util::error{"cannot listen on " + where + ": " + ec.message()};
  }
  s.bound_port = s.acceptor->local_endpoint(ec).port();
  s.workers = std::make_unique<worker_pool>(t.worker_threads);
  s.accept();
  for (auto& io : s.ios) {
    s.io_threads.emplace_back([context = io.get()] {
      // Runs until stop(), also while no connection is open.
      auto work = net::make_work_guard(*context);
      context->run();
    });
  }
  s.logger->info("front door listening on {}://{}:{} ({} I/O threads, {} workers)",
                 s.tls ? "https" : "http", s.opts.address, s.bound_port, io_threads, t.worker_threads);
  if (s.tls) {
    if (s.kernel_tls) {
      s.logger->info("kernel TLS: offered by the kernel; connections whose cipher it takes have their records "
                     "sealed by the kernel and files sent with SSL_sendfile");
    } else {
      s.logger->info("kernel TLS: not used ({}); TLS records are sealed by {}",
                     t.tls_kernel_offload ? "the kernel offers no TLS offload" : "http_tls_offload: user",
                     s.seal_here ? "registryd" : "OpenSSL");
    }
  }
  return util::ok();
}

void http_server::stop() {
  auto& s = *impl_;
  if (s.ios.empty() || s.stopping.exchange(true)) return;
  for (auto& io : s.ios) io->stop();
  for (auto& t : s.io_threads) t.join();
  s.io_threads.clear();
  s.io_stopped = true;
  // Handlers still running finish (their body reads fail at once); nothing more is sent.
  if (s.workers) s.workers->join();
  s.acceptor.reset();
  // Destroys what the stopped I/O threads left: connections, their coroutines and sockets.
  s.ios.clear();
  s.workers.reset();
}

}  // namespace registryd::frontdoor
