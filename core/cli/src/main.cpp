// registryd: the registry host. Wires the subcommands together; each lives in cmd_*.cpp.
#include "commands.hpp"

#include <csignal>
#include <iostream>
#include <map>
#include <string>

int main(int argc, char** argv) {
  // A peer that closes a TLS connection while we write (OpenSSL writes without MSG_NOSIGNAL)
  // must be an error to handle, not a silent death with exit code 141: in every command.
  std::signal(SIGPIPE, SIG_IGN);
  CLI::App app{
      "registryd serves the fixed registry address registry.d8-system.svc:5001/system/deckhouse "
      "in one of four modes (Direct, Proxy, Local, Unmanaged), each implemented by a plugin, and "
      "configures containerd for the mode in force.\n"
      "Docs: README.md, docs/operations.md."};
  app.require_subcommand(1, 1);
  app.fallthrough(false);

  std::map<CLI::App*, registryd::cli::command> commands;
  auto add = [&](registryd::cli::command (*adder)(CLI::App&)) {
    const std::size_t before = app.get_subcommands({}).size();
    auto run = adder(app);
    commands[app.get_subcommands({}).at(before)] = std::move(run);
  };
  add(&registryd::cli::add_serve);
  add(&registryd::cli::add_check);
  add(&registryd::cli::add_render);
  add(&registryd::cli::add_status);
  add(&registryd::cli::add_version);
  add(&registryd::cli::add_mirror);
  add(&registryd::cli::add_gc);
  add(&registryd::cli::add_fsck);
  add(&registryd::cli::add_rotate);
  add(&registryd::cli::add_cluster);
  add(&registryd::cli::add_apply);
  add(&registryd::cli::add_node);
  add(&registryd::cli::add_balancer);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? 0 : registryd::cli::exit_invalid;
  }
  for (auto* sub : app.get_subcommands()) {
    if (auto it = commands.find(sub); it != commands.end()) return it->second();
  }
  std::cerr << app.help();
  return registryd::cli::exit_invalid;
}
