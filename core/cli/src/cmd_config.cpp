// registryd config dump: the effective host settings (the file, the flags over it, defaults
// filled in) and the ModuleConfig the host would serve, with secrets hidden.
#include "commands.hpp"
#include "host_flags.hpp"

#include <registryd/config/module_config.hpp>

#include <yaml-cpp/yaml.h>

#include <iostream>
#include <memory>

namespace registryd::cli {
namespace {

struct config_args {
  host_flags host;
  bool json = false;
};

// The ModuleConfig's credentials are replaced: a dump is pasted into tickets and chats.
void hide_secrets(nlohmann::json& registry) {
  for (auto& [key, section] : registry.items()) {
    if (!section.is_object()) continue;
    for (const char* secret : {"password", "license"}) {
      if (section.contains(secret)) section[secret] = "(hidden)";
    }
  }
}

YAML::Node to_yaml(const nlohmann::json& j) {
  if (j.is_object()) {
    YAML::Node n(YAML::NodeType::Map);
    for (const auto& [key, value] : j.items()) n[key] = to_yaml(value);
    return n;
  }
  if (j.is_array()) {
    YAML::Node n(YAML::NodeType::Sequence);
    for (const auto& value : j) n.push_back(to_yaml(value));
    return n;
  }
  if (j.is_null()) return YAML::Node(YAML::NodeType::Null);
  if (j.is_string()) return YAML::Node(j.get<std::string>());
  return YAML::Node(j.dump());  // numbers and booleans as JSON writes them
}

int dump(const config_args& args) {
  const auto host = args.host.load_or_report();
  if (!host) return exit_invalid;
  const auto module_config = host_flags::module_config_or_report(*host);
  if (!module_config) return exit_invalid;
  nlohmann::json registry = config::to_canonical_json(*module_config);
  hide_secrets(registry);
  const nlohmann::json doc = {
      {"host", config::host_settings_document(*host)},
      {"moduleConfig", {{"source", host->module_config_path ? host->module_config_path->string()
                                                              : std::string("(built-in default)")},
                        {"spec.settings.registry", registry}}},
  };
  if (args.json) {
    std::cout << doc.dump(2) << "\n";
  } else {
    YAML::Emitter out;
    out << to_yaml(doc);
    std::cout << out.c_str() << "\n";
  }
  return exit_ok;
}

}  // namespace

command add_config(CLI::App& app) {
  auto* sub = app.add_subcommand("config", "Show the configuration the host would run with.");
  sub->require_subcommand(1, 1);
  auto args = std::make_shared<config_args>();
  auto* dump_cmd = sub->add_subcommand(
      "dump",
      "Print the effective host settings (the --host-config file, the flags over it, every default "
      "filled in; docs/configuration.md) and the ModuleConfig's registry settings after their "
      "defaults, with passwords and licenses hidden. YAML, or JSON with --json. Exit codes: 0 "
      "printed, 2 invalid host settings or ModuleConfig (with the field paths).");
  args->host.add_to(*dump_cmd, all_flags);
  dump_cmd->add_flag("--json", args->json, "Print JSON");
  return [args] { return dump(*args); };
}

}  // namespace registryd::cli
