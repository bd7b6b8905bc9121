#include <registryd/switching/rules.hpp>

namespace registryd::switching {
namespace {

std::string name(mode m) { return std::string(display_name(m)); }

decision refuse(std::optional<mode> from, mode to, std::string reason) {
  return {decision_kind::refused, from, to, std::move(reason)};
}

}  // namespace

decision check_switch(const std::optional<persisted_state>& current, mode target) {
  // No mode yet: this is bootstrap. (A state that claims a finished bootstrap without a mode
  // does not load; judged here anyway as what it is, a node with no mode.)
  if (!current || !current->current) {
    if (target == mode::direct || is_unmanaged(target)) {
      return {decision_kind::bootstrap, std::nullopt, target, "bootstrap in " + name(target)};
    }
    return refuse(std::nullopt, target,
                  "bootstrap in " + name(target) +
                      " is not supported: bootstrap in Direct or Unmanaged only");
  }

  const mode from = *current->current;
  if (!current->bootstrap_finished) {
    if (target == from) {
      return {decision_kind::bootstrap, from, target,
              "bootstrap in " + name(target) + " continues"};
    }
    return refuse(from, target,
                  "mode transition from " + name(from) + " to " + name(target) +
                      " is not allowed: bootstrap has not finished (finish it in " + name(from) +
                      " first)");
  }

  if (target == from) {
    return {decision_kind::unchanged, from, target,
            name(target) + " already runs: settings change only"};
  }
  if ((from == mode::local && target == mode::proxy) ||
      (from == mode::proxy && target == mode::local)) {
    return refuse(from, target,
                  "mode transition from " + name(from) + " to " + name(target) +
                      " is not supported: switch through Direct or Unmanaged");
  }
  if (target == mode::unmanaged_legacy && !is_unmanaged(from)) {
    return refuse(from, target,
                  "mode transition from " + name(from) + " to " + name(target) +
                      " is not supported: the legacy Unmanaged mode is reachable only from "
                      "Unmanaged");
  }
  return {decision_kind::switch_mode, from, target,
          "switch from " + name(from) + " to " + name(target)};
}

}  // namespace registryd::switching
