// Which mode changes are allowed (docs/switching.md):
//   - bootstrap (no state, or a state with no mode yet) only into Direct or Unmanaged (either
//     variant);
//   - while bootstrap has not finished, only the bootstrap mode itself;
//   - Local and Proxy never directly into each other: through Direct or Unmanaged;
//   - the legacy Unmanaged only from Unmanaged (either variant);
//   - the same mode again is no switch, only a settings change.
// A refusal carries the rule that refuses, e.g.
//   "mode transition from Local to Proxy is not supported: switch through Direct or Unmanaged".
#pragma once

#include <registryd/switching/mode.hpp>
#include <registryd/switching/state.hpp>

#include <optional>
#include <string>

namespace registryd::switching {

enum class decision_kind {
  bootstrap,    // start (or continue) bootstrap in `to`
  unchanged,    // `to` already runs: apply its settings, no switch
  switch_mode,  // a staged switch from `from` to `to`
  refused,      // not allowed; `reason` says why
};

struct decision {
  decision_kind kind = decision_kind::refused;
  std::optional<mode> from;  // the current mode, if the state has one
  mode to = mode::unmanaged_legacy;
  std::string reason;  // a sentence; for `refused` the rule

  bool allowed() const noexcept { return kind != decision_kind::refused; }
};

// Judges a change of mode. `current` is the persisted state (nullopt: none yet).
decision check_switch(const std::optional<persisted_state>& current, mode target);

}  // namespace registryd::switching
