// The Direct mode's counters, in Prometheus text exposition. Lock-free: every handler thread
// and every stream counts into the same instance.
#pragma once

#include <registryd/oci/client/error.hpp>
#include <registryd/oci/route.hpp>

#include <array>
#include <atomic>
#include <cstdint>
#include <string>
#include <string_view>

namespace registryd::direct {

class direct_metrics {
 public:
  // A request forwarded upstream (route: manifest, blob, tags_list, referrers; GET or HEAD).
  void forwarded(oci::route_kind route, std::string_view method) noexcept;
  // A request answered without the upstream, by its OCI code ("" for the local `{}`).
  void answered_locally(std::string_view code) noexcept;
  // The upstream's final answer status.
  void upstream_status(int status) noexcept;
  // An exchange that failed: a transport kind, or an HTTP answer (401, 429, 5xx count as
  // upstream errors; 404 and other 4xx are the client's business and are not counted).
  void upstream_failure(const oci::client::upstream_error& error) noexcept;
  // A body that broke off, or did not match its digest, after its head went to the client.
  void body_failure() noexcept;
  void bytes(std::uint64_t n) noexcept { bytes_.fetch_add(n, std::memory_order_relaxed); }
  void stream_opened() noexcept { streams_active_.fetch_add(1, std::memory_order_relaxed); }
  void stream_closed(bool complete) noexcept;
  // A request refused a relay: past direct_max_relays, direct_max_relays_per_client or
  // direct_max_relays_waiting.
  enum class relay_limit : std::size_t { total, per_client, waiting };
  void relay_refused(relay_limit limit) noexcept {
    refused_[static_cast<std::size_t>(limit)].fetch_add(1, std::memory_order_relaxed);
  }

  // Appends the exposition text. `images_repo` and `scheme` label registryd_direct_info;
  // `relays` is the relays in flight now, `waiting` those of them waiting for an answer head.
  void write(std::string& out, std::string_view images_repo, std::string_view scheme, std::size_t relays,
             std::size_t waiting) const;

  std::uint64_t bytes_total() const noexcept { return bytes_.load(std::memory_order_relaxed); }

 private:
  using counter = std::atomic<std::uint64_t>;
  // [route: manifest, blob, tags_list, referrers][method: GET, HEAD]
  std::array<std::array<counter, 2>, 4> forwarded_{};
  // NAME_UNKNOWN, NAME_INVALID, UNSUPPORTED, DIGEST_INVALID/TAG_INVALID (invalid), local {}
  std::array<counter, 5> local_{};
  // 1xx-2xx, 3xx, 4xx, 5xx
  std::array<counter, 4> status_{};
  // connect, timeout, tls, io, protocol, canceled, unauthorized, throttled, server, body
  std::array<counter, 10> failures_{};
  counter bytes_{0};
  std::atomic<std::int64_t> streams_active_{0};
  counter streams_abandoned_{0};
  // total, per_client, waiting
  std::array<counter, 3> refused_{};
};

}  // namespace registryd::direct
