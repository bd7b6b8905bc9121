// The node balancer (docs/cluster.md, "The node balancer"): TCP on 127.0.0.1:5001 spread over
// the masters' registryd, least connections first, on Boost.Asio.
//
// - A client's connection goes to the healthy master with the fewest connections now (ties
//   taken in turn). A connect that fails or takes longer than connect_timeout is retried on
//   another master, so the client never sees a dead one; only when every master refused is
//   the client's connection closed.
// - Each master is checked every health_interval with `GET /readyz` over TLS (its certificate
//   verified against the cluster CA and its IP); the first failed check or failed connect takes
//   it out of rotation, the first check it answers with 200 puts it back.
// - The bytes are relayed as they come, both ways, socket to kernel pipe to socket with
//   splice(2) (they never enter user space), one pipe per direction and backpressure (a slow
//   reader slows its writer); a half-close is passed on.
// - set_backends() changes the list without touching established connections; stop() stops
//   accepting and lets connections finish for up to a drain time before closing the rest.
//
// Thread-safety: every public member may be called from any thread.
#pragma once

#include <registryd/util/result.hpp>

#include <prometheus/registry.h>
#include <spdlog/logger.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace registryd::balancer {

struct balancer_options {
  std::string address = "127.0.0.1";
  std::uint16_t port = 5001;  // 0: any free port (tests)
  // The masters, "IP:port" ("[v6]:port"); may be empty at start and set later.
  std::vector<std::string> backends;
  std::chrono::milliseconds connect_timeout{1000};
  std::chrono::milliseconds health_interval{1000};
  std::chrono::milliseconds health_timeout{1000};
  std::string health_path = "/readyz";
  // The CA the masters' serving certificates chain to; checks verify it and the master's IP.
  // nullopt: checks speak plain HTTP (tests and a --plain-http host only).
  std::optional<std::filesystem::path> health_ca_file;
  // A relayed connection with no bytes either way for this long is closed (nginx's
  // proxy_timeout in the platform: 1 h).
  std::chrono::milliseconds idle_timeout{std::chrono::hours(1)};
  std::size_t max_connections = 16384;  // more are accepted and closed at once
  // The kernel pipe per direction and connection that splice(2) moves the bytes through (the
  // kernel may cap it at /proc/sys/fs/pipe-max-size; 64 KiB when it refuses).
  std::size_t pipe_bytes = 1024 * 1024;
  std::size_t io_threads = 2;
};

struct backend_status {
  std::string address;
  bool healthy = false;
  std::size_t active = 0;       // connections relayed now
  std::uint64_t total = 0;      // connections relayed since start
  std::uint64_t connect_failures = 0;
  std::string last_failure;     // why it was last taken out ("" while it never was)
};

class node_balancer {
 public:
  // `metrics` gets the registryd_balancer_* families.
  node_balancer(balancer_options options, std::shared_ptr<prometheus::Registry> metrics,
                std::shared_ptr<spdlog::logger> logger);
  ~node_balancer();
  node_balancer(const node_balancer&) = delete;
  node_balancer& operator=(const node_balancer&) = delete;

  // Binds (without SO_REUSEPORT: a second balancer on the address is an error) and starts the
  // threads and health checks.
  util::status start();
  std::uint16_t port() const;

  // Masters added start healthy until a check says otherwise; masters removed take no new
  // connections, and those they relay now run on.
  void set_backends(const std::vector<std::string>& backends);
  std::vector<backend_status> backends() const;
  std::size_t active_connections() const;

  // Stops accepting, waits up to `drain` for the relayed connections to end, closes the rest
  // and joins the threads.
  void stop(std::chrono::milliseconds drain = std::chrono::seconds(30));

  struct impl;  // node_balancer.cpp's

 private:
  std::shared_ptr<impl> impl_;
};

}  // namespace registryd::balancer
