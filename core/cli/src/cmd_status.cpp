// registryd status: what this node runs, per the state dir, and the state of its certificates.
#include "commands.hpp"
#include "host_flags.hpp"

#include <registryd/pki/pki_directory.hpp>
#include <registryd/pki/tls_identity.hpp>
#include <registryd/switching/mode.hpp>
#include <registryd/switching/state.hpp>

#include <signal.h>

#include <chrono>
#include <fstream>
#include <iostream>
#include <memory>

namespace registryd::cli {
namespace {

struct status_args {
  host_flags host;
  bool json = false;
};

// What the server serving from a state dir last wrote (supervisor::write_serve_status), and
// whether that process still runs.
struct server_report {
  nlohmann::json doc;  // null: no server has written one
  bool running = false;
  std::string error;   // the file is there but unreadable
};

server_report read_server(const std::filesystem::path& state_dir) {
  server_report r;
  std::ifstream in(state_dir / "serve-status.json");
  if (!in) return r;
  r.doc = nlohmann::json::parse(in, nullptr, false);
  if (!r.doc.is_object()) {
    r.doc = nullptr;
    r.error = (state_dir / "serve-status.json").string() + " is not JSON";
    return r;
  }
  const auto pid = r.doc.value("pid", std::int64_t{0});
  if (pid > 0 && ::kill(static_cast<pid_t>(pid), 0) == 0) {
    // The pid may have been reused: it is ours only if that process is registryd.
    std::ifstream comm("/proc/" + std::to_string(pid) + "/comm");
    std::string name;
    std::getline(comm, name);
    r.running = name.starts_with("registryd");
  }
  return r;
}

void print_server(const server_report& r) {
  if (!r.error.empty()) {
    std::cout << "server: " << r.error << "\n";
    return;
  }
  if (r.doc.is_null()) {
    std::cout << "server: no registryd has served from this state dir yet\n";
    return;
  }
  const auto pid = r.doc.value("pid", std::int64_t{0});
  const auto since = std::chrono::system_clock::time_point(std::chrono::seconds(r.doc.value("startedAt", std::int64_t{0})));
  if (r.running) {
    std::cout << "server: running, pid " << pid << ", since " << switching::format_timestamp(since) << "\n";
  } else {
    std::cout << "server: not running (pid " << pid << " was the last; what follows is as it left it)\n";
  }
  const std::string file = r.doc.value("configFile", "");
  const std::string wanted = r.doc.value("wantedMode", "");
  std::cout << "wanted: " << (wanted.empty() ? "no valid ModuleConfig" : wanted)
            << (file.empty() ? "" : " (" + file + ")") << "\n";
  const std::string serving = r.doc.value("servingMode", "");
  std::cout << "serving: " << (serving.empty() ? "nothing" : serving) << "\n";
  if (r.doc.value("applied", false)) {
    std::cout << "applied: yes\n";
  } else {
    std::cout << "applied: no: " << r.doc.value("notAppliedBecause", std::string("no mode serves yet")) << "\n";
  }
}

int status(const status_args& args) {
  const auto host = args.host.load_or_report();
  if (!host) return exit_invalid;
  // A cluster member: the cluster is the truth (docs/cluster.md).
  if (host->cluster.enabled()) return cluster_status(host, args.json);
  // A state dir that is not there is a mistyped path, not a fresh node: `serve` creates it.
  std::error_code ec;
  if (!std::filesystem::is_directory(host->state_dir, ec)) {
    std::cerr << "registryd status: the state dir " << host->state_dir.string()
              << " does not exist: no registryd has served with it (check --state-dir or the host "
                 "config's state_dir)\n";
    return exit_invalid;
  }
  auto state = switching::load_state(host->state_dir);
  if (!state) {
    std::cerr << "registryd status: " << state.error_message() << "\n";
    return exit_invalid;
  }
  const auto pki_dir = host->state_dir / "pki";
  const auto identity = pki::load_tls_identity(pki_dir);
  const auto server = read_server(host->state_dir);

  if (args.json) {
    nlohmann::json out = {{"stateDir", host->state_dir.string()}};
    out["server"] = server.doc;
    if (server.doc.is_object()) out["server"]["running"] = server.running;
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
  print_server(server);
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
      "Show whether a server runs from the state dir, the mode the ModuleConfig wants and the "
      "mode serving (and, when they differ, why: a refused switch names its rule), whether "
      "bootstrap finished, the steps of a switch under way, and the serving certificate. On a "
      "cluster member, the cluster. Exit codes: 0 shown, 2 bad flags or no such state dir.");
  auto args = std::make_shared<status_args>();
  args->host.add_to(*sub, cluster_flags);
  sub->add_flag("--json", args->json, "Print JSON");
  return [args] { return status(*args); };
}

}  // namespace registryd::cli
