// registryd: the registry host. Wires the subcommands together; each lives in cmd_*.cpp.
#include "commands.hpp"

#include <registryd/config/suggest.hpp>

#include <algorithm>
#include <csignal>
#include <iostream>
#include <map>
#include <string>
#include <vector>

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
  app.set_version_flag("--version", std::string("registryd ") + REGISTRYD_VERSION);
  static constexpr const char* exit_codes =
      "Exit codes: 0 done; 1 refused (a forbidden switch, a check that failed, a peer that said "
      "no); 2 invalid input (flags, a config, a file).";
  app.footer(exit_codes);

  std::map<CLI::App*, registryd::cli::command> commands;
  auto add = [&](registryd::cli::command (*adder)(CLI::App&)) {
    const std::size_t before = app.get_subcommands({}).size();
    auto run = adder(app);
    auto* sub = app.get_subcommands({}).at(before);
    if (sub->get_footer().empty()) sub->footer(exit_codes);
    commands[sub] = std::move(run);
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
  add(&registryd::cli::add_config);
  add(&registryd::cli::add_completion);
  add(&registryd::cli::add_man);

  // An unknown first word is named as a command, with the one likely meant.
  if (argc > 1 && argv[1][0] != '-') {
    std::vector<std::string> names;
    for (const auto* sub : app.get_subcommands({})) names.push_back(sub->get_name());
    const std::string word = argv[1];
    if (std::find(names.begin(), names.end(), word) == names.end()) {
      std::cerr << "registryd: unknown command '" << word << "'";
      if (const auto meant = registryd::config::closest(word, names)) std::cerr << "; did you mean '" << *meant << "'?";
      std::cerr << "\nThe commands are:";
      for (const auto& n : names) std::cerr << " " << n;
      std::cerr << "\nregistryd --help says what each does.\n";
      return registryd::cli::exit_invalid;
    }
  }
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
