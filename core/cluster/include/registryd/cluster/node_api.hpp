// The masters' side of the node agents (docs/cluster.md, "Nodes"): one-time join tokens, the
// node certificate a token buys, and the three endpoints a node may use. Only masters talk to
// the store; a node reaches a master's registryd over HTTPS and, once joined, authenticates
// with its node certificate (subject O=registryd-node, CN=<node>, signed by the cluster CA).
//
//   POST /cluster/v1/join         {"token","node","csr"} -> {"certificate","ca"}   (no cert)
//   GET  /cluster/v1/node         what this node must run: mode, masters, containerd;
//                                 ?version=V&wait=S: a long poll, answered when the
//                                 assignment's version is no longer V, or after S seconds
//                                 (at most max_assignment_wait)
//   PUT  /cluster/v1/node/status  what it runs: the config version applied, its balancer,
//                                 hand-made containerd registry drop-ins
//   POST /cluster/v1/node/certificate  {"csr"} -> {"certificate","ca"}: a new certificate for
//                                 the node the presented one names (renewal, new key), only
//                                 with the node's latest certificate
//
// Nothing else is there: a node can never read the CA key, the accounts, another node's
// assignment or status, nor write the cluster's config.
#pragma once

#include <registryd/cluster/store.hpp>
#include <registryd/util/result.hpp>

#include <nlohmann/json.hpp>
#include <spdlog/logger.h>

#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>

namespace registryd::cluster {

inline constexpr const char* join_tokens_prefix = "/registryd/v1/join-tokens/";
inline constexpr const char* nodes_prefix = "/registryd/v1/nodes/";          // joined nodes
inline constexpr const char* node_status_prefix = "/registryd/v1/node-status/";  // their reports

// A join token "<id>.<secret>" (6 and 16 lower-case hex digits, as kubeadm's), valid for `ttl`
// and for one join. The store keeps the secret's SHA-256 only, under a lease of `ttl`.
util::result<std::string> create_join_token(store& s, std::chrono::seconds ttl);
// Spends a token: an error when it is malformed, unknown, expired or already spent.
util::status redeem_join_token(store& s, const std::string& token);

// A node name: 1 to 63 characters of [a-z0-9.-], starting and ending alphanumeric.
bool is_node_name(std::string_view name) noexcept;
// The node a verified client certificate subject names ("/O=registryd-node/CN=<node>"),
// nullopt for any other subject.
std::optional<std::string> node_of(std::string_view peer_subject);

// What the master serving the endpoints runs now.
struct master_view {
  std::string mode;                    // "" while none
  std::string containerd_description;  // JSON from the mode plugin ("" while none)
};

struct api_answer {
  unsigned status = 200;
  std::string body;  // JSON
  // Non-zero: nothing changed for this long poll; ask again (resumed) once the assignment may
  // have changed (assignment_watch) or after this long. `status` and `body` are not sent.
  std::chrono::milliseconds wait{0};
};

// The longest a node's long poll is held.
inline constexpr std::chrono::seconds max_assignment_wait{60};
// How long an assignment computed for one request (or by assignment_watch) answers others.
inline constexpr std::chrono::milliseconds assignment_cache_age{1000};

class master_api {
 public:
  // `pki_dir` holds the cluster CA (ca.crt, ca.key) the node certificates are signed with;
  // they are valid for `node_certificate_lifetime`.
  master_api(std::shared_ptr<store> s, std::filesystem::path pki_dir, std::function<master_view()> view,
             std::shared_ptr<spdlog::logger> logger,
             std::chrono::seconds node_certificate_lifetime = std::chrono::days(365));
  // `peer_subject` and `peer_serial` (hex) of the verified client certificate, "" without one;
  // `params`, the query's decoded parameters; `resumed`, asked again after a long poll waited.
  api_answer handle(const std::string& method, const std::string& path, const std::string& peer_subject,
                    const std::string& peer_serial, const std::string& remote_addr, const std::string& body,
                    const std::multimap<std::string, std::string>& params = {}, bool resumed = false) const;
  // The version every node's assignment has now; an error while the store cannot be read.
  // `fresh`: computed now, not taken from the last second's (what assignment_watch asks).
  util::result<std::string> assignment_version(bool fresh = false) const;

 private:
  api_answer join(const std::string& remote_addr, const std::string& body) const;
  api_answer assignment(const std::string& node, const std::multimap<std::string, std::string>& params,
                        bool resumed) const;
  // The assignment without the node's name, and its version: the one computed within the
  // last assignment_cache_age unless `fresh`.
  util::result<nlohmann::json> current_assignment(bool fresh) const;
  util::result<nlohmann::json> compute_assignment() const;
  api_answer status(const std::string& node, const std::string& body) const;
  api_answer renew(const std::string& node, const std::string& peer_serial, const std::string& remote_addr,
                   const std::string& body) const;
  // Signs a certificate for `node` with the public key of `csr` and records it; what joined
  // or renewed says which ("joined", "renewed its certificate").
  api_answer issue(const std::string& node, const std::string& csr, const std::string& remote_addr,
                   const std::string& what) const;

  std::shared_ptr<store> store_;
  std::filesystem::path pki_dir_;
  std::function<master_view()> view_;
  std::shared_ptr<spdlog::logger> logger_;
  std::chrono::seconds node_certificate_lifetime_;
  mutable std::mutex cache_mutex_;
  mutable std::optional<nlohmann::json> cached_;
  mutable std::chrono::steady_clock::time_point cached_at_;
};

// Recomputes the assignment's version every `interval` on a thread of its own and calls
// `changed` when it differs from the last one: what wakes the nodes' long polls. One master
// reads the store for it once per interval instead of once per node and poll.
class assignment_watch {
 public:
  assignment_watch(std::shared_ptr<const master_api> api, std::chrono::milliseconds interval,
                   std::function<void()> changed);
  ~assignment_watch();  // stops the thread
  assignment_watch(const assignment_watch&) = delete;
  assignment_watch& operator=(const assignment_watch&) = delete;

 private:
  void run();

  std::shared_ptr<const master_api> api_;
  std::chrono::milliseconds interval_;
  std::function<void()> changed_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace registryd::cluster
