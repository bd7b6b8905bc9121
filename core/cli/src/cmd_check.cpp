// registryd check: may the host switch to the configured mode? Exit 0 yes, 1 no (with the
// rule), 2 when the config itself is invalid.
#include "commands.hpp"
#include "host_flags.hpp"

#include <registryd/config/module_config.hpp>
#include <registryd/switching/mode.hpp>
#include <registryd/switching/rules.hpp>
#include <registryd/switching/state.hpp>

#include <iostream>
#include <memory>

namespace registryd::cli {
namespace {

struct check_args {
  host_flags host;
  std::string from;
};

int check(const check_args& args) {
  if (!args.host.has_module_config()) {
    std::cerr << "registryd check: --config FILE is required\n";
    return exit_invalid;
  }
  const auto host = args.host.load_or_report();
  if (!host) return exit_invalid;
  const auto config = host_flags::module_config_or_report(*host);
  if (!config) return exit_invalid;

  std::optional<switching::persisted_state> current;
  if (!args.from.empty()) {
    auto from = switching::parse_mode(args.from);
    if (!from) {
      std::cerr << "registryd check: --from: " << from.error_message() << "\n";
      return exit_invalid;
    }
    // Stating the mode a node runs in means bootstrap is behind it.
    switching::persisted_state stated;
    stated.current = *from;
    stated.bootstrap_finished = true;
    current = stated;
  } else {
    auto loaded = switching::load_state(host->state_dir);
    if (!loaded) {
      std::cerr << "registryd check: " << loaded.error_message() << "\n";
      return exit_invalid;
    }
    current = *loaded;
  }

  const auto decision = switching::check_switch(current, switching::target_of(*config));
  std::cout << decision.reason << "\n";
  return decision.allowed() ? exit_ok : exit_refused;
}

}  // namespace

command add_check(CLI::App& app) {
  auto* sub = app.add_subcommand(
      "check",
      "Validate a ModuleConfig and say whether switching to its mode is allowed from the mode "
      "this node runs (the state dir's state.json) or the one given with --from. Exits 0 when "
      "allowed, 1 with the rule that forbids it, 2 when the config is invalid (every error "
      "with its field path). See docs/switching.md.");
  auto args = std::make_shared<check_args>();
  args->host.add_to(*sub);
  sub->add_option("--from", args->from,
                  "The mode to switch from: Direct, Proxy, Local, Unmanaged or UnmanagedLegacy "
                  "(default: the persisted mode; none persisted means bootstrap)");
  return [args] { return check(*args); };
}

}  // namespace registryd::cli
