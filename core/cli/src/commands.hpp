// The subcommands of `registryd`. Each registers its options on the parent CLI11 app and
// returns the function that runs it (exit code). main.cpp only wires them together.
#pragma once

#include <registryd/config/host_settings.hpp>

#include <CLI/CLI.hpp>

#include <atomic>
#include <functional>
#include <optional>

namespace registryd::cli {

using command = std::function<int()>;

command add_serve(CLI::App& app);
command add_check(CLI::App& app);
command add_render(CLI::App& app);
command add_status(CLI::App& app);
command add_version(CLI::App& app);
command add_mirror(CLI::App& app);
command add_gc(CLI::App& app);
command add_fsck(CLI::App& app);
command add_rotate(CLI::App& app);
command add_cluster(CLI::App& app);
command add_apply(CLI::App& app);
command add_node(CLI::App& app);
command add_balancer(CLI::App& app);
command add_config(CLI::App& app);
command add_completion(CLI::App& app);
command add_man(CLI::App& app);

// `registryd cluster status` (also what `registryd status` shows for a cluster member): the
// masters and nodes in the cluster store the host settings name.
int cluster_status(const std::optional<config::host_settings>& host, bool json_output);

// From now on SIGINT and SIGTERM set the flag returned (a long command stops at its next
// step and says how to go on); a second signal ends the process at once.
const std::atomic<bool>& watch_interrupts();

// Exit codes, the same for every command.
inline constexpr int exit_ok = 0;
inline constexpr int exit_refused = 1;  // the answer is "no": a forbidden switch, not ready
inline constexpr int exit_invalid = 2;  // bad input: flags, a config, a file

}  // namespace registryd::cli
