// registryd status: what this node runs, per the state dir, and the state of its certificates.
#include "commands.hpp"
#include "host_flags.hpp"

#include <registryd/pki/pki_directory.hpp>
#include <registryd/pki/tls_identity.hpp>
#include <registryd/switching/mode.hpp>
#include <registryd/switching/state.hpp>

#include <iostream>
#include <memory>

namespace registryd::cli {
namespace {

struct status_args {
  host_flags host;
  bool json = false;
};

int status(const status_args& args) {
  const auto host = args.host.load_or_report();
  if (!host) return exit_invalid;
  // A cluster member: the cluster is the truth (docs/cluster.md).
  if (host->cluster.enabled()) return cluster_status(host, args.json);
  auto state = switching::load_state(host->state_dir);
  if (!state) {
    std::cerr << "registryd status: " << state.error_message() << "\n";
    return exit_invalid;
  }
  const auto pki_dir = host->state_dir / "pki";
  const auto identity = pki::load_tls_identity(pki_dir);

  if (args.json) {
    nlohmann::json out = {{"stateDir", host->state_dir.string()}};
    out["state"] = *state ? switching::to_json(**state) : nlohmann::json(nullptr);
    if (out["state"].is_object()) out["state"].erase("config");  // it may hold credentials
    if (identity) {
      out["servingCertificate"] = {
          {"serial", (*identity)->serial},
          {"notAfter", switching::format_timestamp((*identity)->not_after)},
          {"sha256", (*identity)->leaf_fingerprint}};
    } else {
      out["servingCertificate"] = {{"error", identity.error_message()}};
    }
    std::cout << out.dump(2) << "\n";
    return exit_ok;
  }

  std::cout << "state dir: " << host->state_dir.string() << "\n";
  if (!*state) {
    std::cout << "mode: none yet (bootstrap has not started on this node)\n";
  } else {
    const auto& s = **state;
    std::cout << "mode: "
              << (s.current ? std::string(switching::display_name(*s.current)) : "none yet")
              << "\n";
    std::cout << "bootstrap finished: " << (s.bootstrap_finished ? "yes" : "no") << "\n";
    std::cout << "applied at: " << switching::format_timestamp(s.applied_at) << "\n";
    if (s.target) std::cout << "switching to: " << switching::display_name(*s.target) << "\n";
    for (const auto& c : s.conditions) {
      std::cout << "  " << c.type << ": " << (c.status ? "True" : "False") << " ("
                << switching::to_string(c.reason) << ")" << (c.message.empty() ? "" : " ")
                << c.message << "\n";
    }
  }
  if (identity) {
    std::cout << "serving certificate: serial " << (*identity)->serial << ", valid until "
              << switching::format_timestamp((*identity)->not_after) << "\n";
  } else {
    std::cout << "serving certificate: " << identity.error_message() << "\n";
  }
  return exit_ok;
}

}  // namespace

command add_status(CLI::App& app) {
  auto* sub = app.add_subcommand(
      "status",
      "Show the mode this node runs, whether bootstrap finished, the steps of a switch under "
      "way, and the serving certificate, from the state dir.");
  auto args = std::make_shared<status_args>();
  args->host.add_to(*sub, false);
  sub->add_flag("--json", args->json, "Print JSON");
  return [args] { return status(*args); };
}

}  // namespace registryd::cli
