// A real etcd (Debian's etcd-server) for the cluster tests: one member on 127.0.0.1 with ports
// the kernel handed out, its data in a scratch directory, started with a time bound and
// stopped by its own pid. A test fails (never passes) when etcd is not installed.
#pragma once

#include "test_support.hpp"

#include <registryd/cluster/etcd_store.hpp>

#include <httplib.h>

#include <chrono>
#include <csignal>
#include <fcntl.h>
#include <netinet/in.h>
#include <optional>
#include <spawn.h>
#include <string>
#include <sys/socket.h>
#include <thread>
#include <unistd.h>
#include <vector>

extern char** environ;

namespace registryd::test {

inline int free_loopback_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

struct etcd_tls {
  fs::path ca, server_cert, server_key;  // etcd's serving certificate, and the CA clients trust
};

class etcd_process {
 public:
  // `tls`: serve HTTPS and demand client certificates of tls->ca.
  explicit etcd_process(const fs::path& dir, std::optional<etcd_tls> tls = std::nullopt)
      : dir_(dir), tls_(std::move(tls)), client_port_(free_loopback_port()), peer_port_(free_loopback_port()) {
    // As registryd's commands do: OpenSSL writes without MSG_NOSIGNAL, and etcd closing a TLS
    // connection it refused must be an error, not the end of the test binary.
    std::signal(SIGPIPE, SIG_IGN);
    {
      const auto found = run("command -v etcd");
      INFO("etcd is not installed: apt-get install etcd-server");
      REQUIRE(found.exit_code == 0);
    }
    start();
  }
  ~etcd_process() { stop(); }
  etcd_process(const etcd_process&) = delete;
  etcd_process& operator=(const etcd_process&) = delete;

  std::string url() const {
    return std::string(tls_ ? "https" : "http") + "://127.0.0.1:" + std::to_string(client_port_);
  }

  void start() {
    const std::string scheme = tls_ ? "https" : "http";
    const std::string client = scheme + "://127.0.0.1:" + std::to_string(client_port_);
    const std::string peer = "http://127.0.0.1:" + std::to_string(peer_port_);
    std::vector<std::string> args = {"timeout", "--signal=TERM", "--kill-after=5", "300", "etcd",
                                     "--name", "t", "--data-dir", (dir_ / "etcd").string(),
                                     "--listen-client-urls", client, "--advertise-client-urls", client,
                                     "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
                                     "--initial-cluster", "t=" + peer, "--logger=zap"};
    if (tls_) {
      for (std::string a : {std::string("--client-cert-auth"), "--trusted-ca-file=" + tls_->ca.string(),
                            "--cert-file=" + tls_->server_cert.string(),
                            "--key-file=" + tls_->server_key.string()}) {
        args.push_back(a);
      }
    }
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&actions, 2, (dir_ / "etcd.log").c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    REQUIRE(posix_spawnp(&pid_, "timeout", &actions, nullptr, argv.data(), environ) == 0);
    posix_spawn_file_actions_destroy(&actions);
    // Ready when the client port answers /health (plain HTTP only; with TLS, when it listens).
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    for (;;) {
      INFO("etcd did not come up in 20 s; see " << (dir_ / "etcd.log"));
      REQUIRE(std::chrono::steady_clock::now() < deadline);
      if (listening()) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }

  // SIGTERM, then wait for it.
  void stop() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGTERM);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
  }

 private:
  bool listening() const {
    if (tls_) {
      const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
      sockaddr_in addr{};
      addr.sin_family = AF_INET;
      addr.sin_port = htons(static_cast<std::uint16_t>(client_port_));
      addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      const bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
      ::close(fd);
      if (ok) std::this_thread::sleep_for(std::chrono::milliseconds(300));
      return ok;
    }
    httplib::Client c("127.0.0.1", client_port_);
    c.set_connection_timeout(std::chrono::milliseconds(200));
    auto res = c.Get("/health");
    return res && res->status == 200 && res->body.find("true") != std::string::npos;
  }

  fs::path dir_;
  std::optional<etcd_tls> tls_;
  int client_port_;
  int peer_port_;
  pid_t pid_ = -1;
};

// The store on one etcd URL, default options.
inline std::shared_ptr<cluster::store> open_store(const std::string& url) {
  cluster::etcd_options o;
  o.endpoints = {url};
  auto s = cluster::open_etcd(o);
  REQUIRE(s);
  return std::shared_ptr<cluster::store>(std::move(*s));
}

}  // namespace registryd::test
