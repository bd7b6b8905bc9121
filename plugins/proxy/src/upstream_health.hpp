// Whether the upstream registry answers, as the last exchanges with it showed; the warnings an
// operator sees when it stops answering and cached content is served stale in its place.
//
// Thread-safety: every member may be called from any thread.
#pragma once

#include "counters.hpp"

#include <registryd/sdk/plugin.hpp>

#include <chrono>
#include <functional>
#include <mutex>
#include <string>

namespace registryd::proxy {

using clock_fn = std::function<std::chrono::system_clock::time_point()>;

class upstream_health {
 public:
  // `upstream` names the registry in log lines ("registry.example.com (deckhouse/ee)").
  upstream_health(sdk::host host, std::string upstream, clock_fn clock, counters& c);

  // An exchange got an answer (any status below 500 but 429).
  void succeeded();
  // An exchange found the upstream unavailable: unreachable, 5xx or 429.
  void failed(const std::string& why);
  bool up() const;
  // True when the upstream was found unavailable less than `window` ago and has not answered
  // since: a request with cached content does not wait for it again.
  bool down_within(std::chrono::milliseconds window) const;
  // Cached content of `what` was served although it could not be revalidated: counted, and
  // logged as a warning (at most every 10 s, with the count since the last line).
  void stale(const std::string& what, const std::string& why);

 private:
  sdk::host host_;
  std::string upstream_;
  clock_fn clock_;
  counters& counters_;
  mutable std::mutex mutex_;
  bool up_ = true;
  std::chrono::system_clock::time_point last_failure_{};
  std::chrono::system_clock::time_point last_stale_log_{};
  std::uint64_t stale_unlogged_ = 0;
};

}  // namespace registryd::proxy
