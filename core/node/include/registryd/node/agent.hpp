// The node agent, `registryd node` (docs/cluster.md, "Nodes"): on every node, masters included.
//
// - Joins once: a fresh key, a certificate request and the one-time join token go to a master
//   (POST /cluster/v1/join); the node certificate that comes back is kept in the state dir and
//   authenticates the node from then on.
// - Every poll interval asks a master (any that answers, in turn) what the node must run
//   (GET /cluster/v1/node): the mode, the masters, the containerd description. A new version
//   is applied: the containerd tree rendered atomically (core/containerd), the balancer
//   started, re-pointed or stopped; the assignment is kept in the state dir.
// - Reports what it runs (PUT /cluster/v1/node/status) when that changes and every 30 s: the
//   version applied, the balancer's view of each master, hand-made registry sections in
//   containerd's drop-in directories.
// - With every master unreachable it keeps running the last assignment it applied, from the
//   state dir even after a restart.
//
// Thread-safety: start() and stop() from one thread; the rest runs on the agent's own thread.
#pragma once

#include <registryd/balancer/node_balancer.hpp>
#include <registryd/util/result.hpp>

#include <nlohmann/json.hpp>
#include <prometheus/registry.h>
#include <spdlog/logger.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace httplib {
class Client;
}

namespace registryd::node {

struct agent_options {
  // Masters to join through and ask, "https://10.0.0.1:5001"; any one that answers will do.
  std::vector<std::string> masters;
  std::filesystem::path ca_file;  // the cluster CA (what `registryd cluster` masters serve)
  std::string token;              // the join token; needed only until the node has joined
  std::string node_name;
  std::filesystem::path state_dir = "/var/lib/registryd-node";
  std::filesystem::path containerd_dir = "/etc/containerd";
  // How often the agent looks at its own state (status report, certificate renewal), and how
  // long it waits between two assignment requests when a master does not hold long polls.
  std::chrono::milliseconds poll_interval{2000};
  std::chrono::milliseconds request_timeout{5000};
  // The assignment is watched by long polls: a master holds each for up to this long and
  // answers as soon as the assignment changes (0: plain polling every poll_interval).
  std::chrono::seconds watch_wait{30};
  // The status is reported when it changes, and at least this often (a heartbeat).
  std::chrono::milliseconds report_interval{30000};
  // The balancer's listener, timeouts and limits (its backends come from the assignment).
  balancer::balancer_options balancer;
  std::chrono::milliseconds balancer_drain{std::chrono::seconds(30)};
};

class agent {
 public:
  agent(agent_options options, std::shared_ptr<prometheus::Registry> metrics, std::shared_ptr<spdlog::logger> logger);
  ~agent();
  agent(const agent&) = delete;
  agent& operator=(const agent&) = delete;

  // Joins if needed (an error when it cannot and has no certificate yet), applies the last
  // assignment kept, and starts polling.
  util::status start();
  void stop();

  // The hand-made registry sections in <containerd_dir>/conf.d and conf2.d: files there that
  // registryd did not write and that configure registries (the switch preflight reads these).
  static std::vector<std::string> custom_registry_dropins(const std::filesystem::path& containerd_dir);

 private:
  util::status ensure_identity();
  // A new key and a certificate for it, from the join (with the token) or a renewal (with the
  // current certificate): both written as *.new, then renamed into place, key first.
  // finish_identity() completes such a pair a crash left behind.
  util::result<nlohmann::json> request_certificate(const std::string& path, nlohmann::json request,
                                                   bool with_certificate);
  void finish_identity();
  // Renews the node certificate once two thirds of its life have passed.
  void renew_if_due();
  // The CA the masters are verified with: the one they last sent, else --ca-file.
  std::filesystem::path trust_file() const;
  // When the certificate in use is due for renewal and when it ends: read from its file once,
  // again after a new one is put in place.
  struct certificate_times {
    std::chrono::system_clock::time_point renew_at, not_after;
  };
  const std::optional<certificate_times>& certificate_in_use();
  bool certificate_expired();
  // One request to the masters, tried on each in turn until one answers. A request with a
  // longer `read_timeout` (a long poll) can be cut short by stop().
  util::result<nlohmann::json> ask(const std::string& method, const std::string& path, const std::string& body,
                                   bool with_certificate,
                                   std::optional<std::chrono::milliseconds> read_timeout = std::nullopt);
  void apply(const nlohmann::json& assignment);
  void report();
  void run();
  // The watch thread: long polls for the assignment, handed to run() through `received_`.
  void watch();

  agent_options opts_;
  std::optional<certificate_times> cert_times_;  // of the certificate in use (certificate_in_use())
  std::shared_ptr<prometheus::Registry> metrics_;
  std::shared_ptr<spdlog::logger> logger_;
  std::unique_ptr<balancer::node_balancer> balancer_;
  std::string applied_version_;
  std::string applied_mode_;
  std::string last_error_;
  std::string last_report_;  // the status last sent
  std::chrono::steady_clock::time_point last_report_at_{};
  std::atomic<std::size_t> next_master_{0};
  std::mutex mutex_;  // guards the three below
  std::condition_variable wake_;
  std::optional<nlohmann::json> received_;  // an assignment the watch got, not applied yet
  std::string watch_failure_;               // why the last watch request failed, "" when it did not
  std::atomic<bool> stop_{false};
  // Held shared while a request loads the node key and certificate, exclusive while a renewal
  // swaps them: a client never pairs a new key with the old certificate.
  std::shared_mutex identity_mutex_;
  std::mutex inflight_mutex_;
  httplib::Client* inflight_ = nullptr;  // the long poll in flight, for stop()
  std::thread thread_;
  std::thread watch_thread_;
};

}  // namespace registryd::node
