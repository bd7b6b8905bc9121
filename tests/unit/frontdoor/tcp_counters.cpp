// On its own: <linux/tcp.h> has TCP_INFO's full structure, and it cannot share a translation unit
// with glibc's <netinet/tcp.h>, whose older copy stops before the segment counters.
#include "tcp_counters.hpp"

#include <linux/tcp.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstddef>

namespace frontdoor_test {

bool read_tcp_counters(int fd, tcp_counters& out) {
  tcp_info info{};
  socklen_t size = sizeof info;
  if (::getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &size) != 0) return false;
  if (size < offsetof(tcp_info, tcpi_bytes_sent) + sizeof info.tcpi_bytes_sent) return false;
  out.bytes_sent = info.tcpi_bytes_sent;
  out.data_segs_out = info.tcpi_data_segs_out;
  out.snd_mss = info.tcpi_snd_mss;
  return true;
}

}  // namespace frontdoor_test
