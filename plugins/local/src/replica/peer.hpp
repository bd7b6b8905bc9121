// Where replica sync copies from: a peer's state, its manifests and its blobs. peer_source is
// the seam the engine is tested through; http_peer is the real one, another registryd in
// Local mode reached over HTTPS with the mirror-puller account. docs/replica-sync.md.
#pragma once

#include "replica/oci_names.hpp"

#include <registryd/oci/client/error.hpp>
#include <registryd/oci/client/options.hpp>
#include <registryd/oci/client/registry_client.hpp>
#include "replica/state.hpp"

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

namespace registryd::local::replica {

// The query that makes a Local replica answer GET /v2/_catalog with its replica state: it
// rides on the catalog route so that it needs exactly the catalog's access (the mirror
// accounts have it; a token scope registry:catalog:*) and no new path in the front door.
inline constexpr std::string_view state_query_parameter = "replica-state";
inline constexpr std::string_view state_target = "/v2/_catalog?replica-state";
inline constexpr std::string_view state_media_type = "application/vnd.registryd.replica-state.v1+json";
// The largest state document a peer may send.
inline constexpr std::size_t max_state_size = 256 * 1024 * 1024;

// A peer as the engine sees it. The engine calls one peer from one thread at a time.
class peer_source {
 public:
  virtual ~peer_source() = default;
  // How settings, logs and metrics name the peer ("10.0.0.2:5001").
  virtual const std::string& name() const noexcept = 0;
  // The peer's replica state (state.hpp).
  virtual client::result<replica_state> fetch_state() = 0;
  // A manifest by digest. The engine checks the bytes against the digest again.
  virtual client::result<client::fetched_manifest> fetch_manifest(std::string_view repository,
                                                                  const oci::digest& d) = 0;
  // Streams a blob to `sink` in order, in pieces of at most 64 KiB; `sink` returning false
  // cancels the transfer (error_kind::canceled). Returns the byte count. Verification is the
  // blob store's, when it publishes.
  virtual client::result<std::uint64_t> fetch_blob(std::string_view repository, const oci::digest& d,
                                                   const std::function<bool(std::string_view)>& sink) = 0;
};

struct http_peer_options {
  // host:port of the peer's front door (HTTPS).
  std::string address;
  // PEM of the CA the peer's serving certificate chains to (masters share the registry CA).
  std::string ca_pem;
  // Asked before every state request; a different answer than the last makes a new client,
  // so a rotated password is picked up without a restart. Empty function or nullopt:
  // anonymous.
  std::function<std::optional<client::credentials>()> credentials;
  std::chrono::milliseconds connect_timeout{2000};
  std::chrono::milliseconds read_timeout{30000};
};

// A peer reached with the upstream client. The state is asked for with If-None-Match, so an
// unchanged peer answers 304 and the state of the previous round is used again.
//
// Thread-safety: safe to call from several threads (the engine uses one).
class http_peer final : public peer_source {
 public:
  // Throws std::invalid_argument when the address is empty or ca_pem is not PEM.
  explicit http_peer(http_peer_options options);

  const std::string& name() const noexcept override { return options_.address; }
  client::result<replica_state> fetch_state() override;
  client::result<client::fetched_manifest> fetch_manifest(std::string_view repository,
                                                          const oci::digest& d) override;
  client::result<std::uint64_t> fetch_blob(std::string_view repository, const oci::digest& d,
                                           const std::function<bool(std::string_view)>& sink) override;

 private:
  std::shared_ptr<client::registry_client> client_for_round();
  std::shared_ptr<client::registry_client> current_client();

  http_peer_options options_;
  std::mutex mutex_;
  std::shared_ptr<client::registry_client> client_;
  std::optional<client::credentials> credentials_;
  std::string etag_;
  std::optional<replica_state> cached_;
};

}  // namespace registryd::local::replica
