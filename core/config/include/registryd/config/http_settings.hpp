// The front door's transport settings: threads, timeouts and limits. Each is a host setting
// (`http_*` keys, docs/configuration.md); the defaults are what a production registry needs.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>

namespace registryd::config {

struct http_settings {
  // Threads that hold every connection (accept, TLS, parsing, sending files). 0: one per core,
  // at most 4.
  std::size_t io_threads = 0;
  // Threads that run request handlers (plugins may block on disk or an upstream). Only requests
  // in flight occupy one; idle connections never do.
  std::size_t worker_threads = 64;
  // Requests waiting for a worker beyond this are answered 503 at once.
  std::size_t max_queued_requests = 4096;

  std::chrono::milliseconds handshake_timeout{10000};  // TLS handshake, from accept
  // The whole request head (line and headers), from its first byte (from accept or the
  // handshake for a new connection): a deadline, so a trickle cannot stretch it.
  std::chrono::milliseconds head_timeout{10000};
  std::chrono::milliseconds idle_timeout{60000};  // keep-alive: between requests
  // Body progress: a client that sends no body byte, or reads no response byte, for this long
  // is disconnected.
  std::chrono::milliseconds body_timeout{60000};
  // A handler waiting on its worker for a request body piece while other requests wait for a
  // worker: past this long with no body byte, the request gets 408 (0: off, only body_timeout
  // applies). Clients that stall their uploads can then hold workers for this long, not for
  // body_timeout, when the workers are all taken.
  std::chrono::milliseconds body_busy_timeout{5000};
  // ... and the rate such a body must keep up meanwhile: fewer bytes than this per second,
  // measured over each body_busy_timeout while requests wait, is a 408 too, so a body trickled
  // a byte at a time cannot hold a worker either. 0: any byte counts as progress.
  std::size_t body_busy_min_rate = 16 * 1024;

  std::size_t max_request_line = 8 * 1024;  // bytes; more is 414
  std::size_t max_header_bytes = 64 * 1024;  // the whole head; more is 431
  std::size_t max_header_count = 100;        // more is 431
  std::size_t max_connections = 16384;       // more are closed at once (503 on plain HTTP)
  std::size_t max_connections_per_client = 1024;  // per client address, likewise
  // Failed authentications a client address may make per minute; past that it gets 429
  // without a password check until its budget refills.
  std::size_t auth_failures_per_minute = 30;
  std::size_t keep_alive_max_requests = 1000;
  // A body the handler did not read is read and dropped when at most this many bytes are left
  // (the connection stays open); a larger one gets its answer and a close.
  std::uint64_t drain_limit_bytes = 4 * 1024 * 1024;
  // How plain-HTTP file answers move: false reads them into user space and writes them
  // (`http_file_transfer: copy`), true uses sendfile(2) (`sendfile`). docs/frontdoor.md says
  // why copying is the default.
  bool sendfile = false;
  // Whether TLS records may be sealed by the kernel (`http_tls_offload: kernel`) where the kernel
  // and OpenSSL offer it: files then go out with SSL_sendfile. `user` keeps every record in
  // OpenSSL. docs/frontdoor.md, "TLS and zero-copy".
  bool tls_kernel_offload = true;
  // Who seals TLS records where the kernel does not: registryd (`http_tls_sealer: registryd`,
  // OpenSSL hands it the write keys at the end of each handshake, as to a kernel-TLS socket) or
  // OpenSSL (`openssl`). docs/frontdoor.md, "TLS records sealed by registryd".
  bool tls_registryd_seals = true;
  // Bytes that streamed answers may hold, all together, in buffers past their first 64 KiB.
  // Half is for first pieces: a stream's first piece is 256 KiB while that half has room for
  // it, 64 KiB past it. The other half is for growth: a buffer doubles, to at most 1 MiB, while
  // its source has bytes ready and that half has room. So many concurrent streams, or clients
  // that stop reading them, cost 64 KiB each past this, not 256 KiB or 1 MiB; and a few fast
  // streams that grew never leave new ones at 64 KiB.
  std::size_t stream_buffer_budget = 32 * 1024 * 1024;
  // Bytes that file answers (Local blobs, cached Proxy blobs) sent through user space may hold,
  // all together, in buffers grown past their first 64 KiB (each doubles, up to 512 KiB of TLS
  // records or 256 KiB of plain text, while the client's socket takes each offer whole). Past
  // this a file answer keeps the buffer it has: a client that stops reading, after reading fast,
  // costs at most this in total, not 512 KiB a connection.
  std::size_t file_buffer_budget = 64 * 1024 * 1024;
  // Bytes that request bodies read before their requests take a worker may hold, all together
  // (each at most 64 KiB). Past this a body goes to its handler unread, as a large one does.
  // 0: no body is read ahead.
  std::size_t read_ahead_budget = 64 * 1024 * 1024;
  // Bytes of an answer that a connection's socket may hold not yet sent (TCP_NOTSENT_LOWAT); a
  // write waits until fewer are left. 0: the kernel's default, as much as the socket buffer
  // takes. With a same-host client (a node's containerd through its balancer, a bench) a socket
  // that holds several MB unsent has its transmission run on the client's CPU as the client's
  // acknowledgements open the window; a small queue keeps that work on registryd's writes.
  // docs/frontdoor.md, "Unsent bytes in the socket".
  std::size_t tcp_notsent_lowat = 64 * 1024;

  friend bool operator==(const http_settings&, const http_settings&) = default;
};

}  // namespace registryd::config
