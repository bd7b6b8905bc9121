#pragma once

#include <cstdint>

namespace frontdoor_test {

// What the kernel counts on one TCP socket (TCP_INFO).
struct tcp_counters {
  std::uint64_t bytes_sent = 0;     // bytes of data sent, retransmissions included
  std::uint32_t data_segs_out = 0;  // segments that carried data
  std::uint32_t snd_mss = 0;        // the largest segment the socket sends
};

// The counters of socket `fd`; false if it has none (not a TCP socket, or a kernel older than 4.19).
bool read_tcp_counters(int fd, tcp_counters& out);

}  // namespace frontdoor_test
