// registryd check: may the host switch to the configured mode? Exit 0 yes, 1 no (with the
// rule), 2 when the config itself is invalid. With --images FILE: does the configured mode's
// registry hold every image the list names? (the RegistryContainsRequiredImages step)
#include "commands.hpp"
#include "host_flags.hpp"

#include <registryd/config/module_config.hpp>
#include <registryd/config/settings_document.hpp>
#include <registryd/oci/client/options.hpp>
#include <registryd/oci/image_check.hpp>
#include <registryd/switching/mode.hpp>
#include <registryd/switching/rules.hpp>
#include <registryd/switching/state.hpp>

#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>
#include <stdexcept>

namespace registryd::cli {
namespace {

struct check_args {
  host_flags host;
  std::string from;
  std::string images;
  std::size_t parallel = 3;
  int timeout_seconds = 30;
  int attempts = 3;
};

// HEADs every image of the list in the mode's registry (docs/upstream-client.md).
int check_images(const check_args& args, const config::host_settings& host,
                 const config::module_config& config) {
  if (config.mode == config::registry_mode::local) {
    std::cerr << "registryd check --images: Local mode has no upstream registry to check\n";
    return exit_invalid;
  }
  oci::client::upstream_settings upstream;
  try {
    // The same section a mode plugin gets, so the check reaches the registry as the mode will.
    upstream = oci::client::upstream_from_section(config::settings_document(config, host)["section"]);
  } catch (const std::invalid_argument& e) {
    std::cerr << "registryd check --images: " << e.what() << "\n";
    return exit_invalid;
  }
  std::ifstream in(args.images, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  if (!in) {
    std::cerr << "registryd check --images: cannot read " << args.images << "\n";
    return exit_invalid;
  }
  const auto list = oci::parse_image_list(text.str(), upstream.images_repo);
  for (const auto& e : list.errors) std::cerr << args.images << ":" << e.line << ": " << e.message << "\n";
  if (!list.errors.empty()) return exit_invalid;

  oci::image_check_options options;
  options.parallelism = args.parallel;
  options.timeout = std::chrono::seconds(args.timeout_seconds);
  options.attempts = args.attempts;
  try {
    const auto report = oci::check_images(upstream.options, list.items, options);
    std::cout << report.message() << "\n";
    return report.ok() ? exit_ok : exit_refused;
  } catch (const std::invalid_argument& e) {  // an unreadable `ca` (validation should have caught it)
    std::cerr << "registryd check --images: " << e.what() << "\n";
    return exit_invalid;
  }
}

int check(const check_args& args) {
  if (!args.host.has_module_config()) {
    std::cerr << "registryd check: --config FILE is required\n";
    return exit_invalid;
  }
  const auto host = args.host.load_or_report();
  if (!host) return exit_invalid;
  const auto config = host_flags::module_config_or_report(*host);
  if (!config) return exit_invalid;
  if (!args.images.empty()) return check_images(args, *host, *config);

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
  args->host.add_to(*sub, module_flags);
  sub->add_option("--from", args->from,
                  "The mode to switch from: Direct, Proxy, Local, Unmanaged or UnmanagedLegacy "
                  "(default: the persisted mode; none persisted means bootstrap)");
  sub->add_option("--images", args->images,
                  "Instead of the switch rule, check that the mode's registry holds every image "
                  "this file lists (one reference a line: ':tag', '@digest', 'name:tag' or "
                  "'name@digest' relative to imagesRepo, or a full reference in its registry). "
                  "Prints '<registry>: all N items are checked' and exits 0, or names the first "
                  "5 failures and exits 1. See docs/upstream-client.md.");
  sub->add_option("--parallel", args->parallel, "With --images: manifests asked for at once")
      ->capture_default_str()
      ->check(CLI::Range(1, 64));
  sub->add_option("--timeout-seconds", args->timeout_seconds,
                  "With --images: the limit of one attempt (connect and each wait for bytes)")
      ->capture_default_str()
      ->check(CLI::Range(1, 3600));
  sub->add_option("--attempts", args->attempts,
                  "With --images: attempts per image when the failure may pass (transport "
                  "errors, 5xx, 429), with a pause of 1 s, then 2 s, ...")
      ->capture_default_str()
      ->check(CLI::Range(1, 10));
  return [args] { return check(*args); };
}

}  // namespace registryd::cli
