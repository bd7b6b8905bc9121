// registryd render containerd: writes the containerd configuration of the configured mode.
#include "commands.hpp"
#include "host_flags.hpp"

#include <registryd/config/module_config.hpp>
#include <registryd/containerd/render.hpp>
#include <registryd/daemon/mode_loader.hpp>
#include <registryd/util/logging.hpp>

#include <nlohmann/json.hpp>

#include <iostream>
#include <memory>

namespace registryd::cli {
namespace {

struct render_args {
  host_flags host;
  std::string out_dir;
  std::string final_root;
  bool dry_run = false;
  bool adopt = false;
};

int render_containerd(const render_args& args) {
  const auto host = args.host.load_or_report();
  if (!host) return exit_invalid;
  const auto config = host_flags::module_config_or_report(*host);
  if (!config) return exit_invalid;
  auto logger = util::make_logger(host->log == config::log_format::json, "warn");
  auto mode = daemon::create_mode(*config, *host, std::nullopt, logger);
  if (!mode) {
    std::cerr << "registryd: " << mode.error_message() << "\n";
    return exit_invalid;
  }
  auto description_text = (*mode)->describe_containerd();
  if (!description_text) {
    std::cerr << "registryd: " << description_text.error_message() << "\n";
    return exit_invalid;
  }
  nlohmann::json description;
  try {
    description = nlohmann::json::parse(*description_text);
  } catch (const nlohmann::json::exception& e) {
    std::cerr << "registryd: plugin " << (*mode)->library().describe()
              << " described containerd with invalid JSON: " << e.what() << "\n";
    return exit_invalid;
  }
  containerd::render_options opts;
  opts.out_dir = args.out_dir.empty() ? host->containerd_dir : std::filesystem::path(args.out_dir);
  opts.final_root = args.final_root;
  opts.dry_run = args.dry_run;
  opts.adopt_unmanaged = args.adopt;
  auto report = containerd::render(description, opts);
  if (!report) {
    std::cerr << "registryd: " << report.error_message() << "\n";
    return exit_invalid;
  }
  std::cout << (args.dry_run ? "would render" : "rendered") << " containerd configuration for "
            << config::to_string(config->mode) << " mode into " << opts.out_dir.string()
            << " (config version " << report->config_version << ")\n";
  for (const auto& f : report->written) std::cout << "  written   " << f << "\n";
  for (const auto& f : report->unchanged) std::cout << "  unchanged " << f << "\n";
  for (const auto& f : report->removed) std::cout << "  removed   " << f << "\n";
  return exit_ok;
}

}  // namespace

command add_render(CLI::App& app) {
  auto* sub = app.add_subcommand("render", "Render configuration for other programs");
  sub->require_subcommand(1, 1);
  auto* ctd = sub->add_subcommand(
      "containerd",
      "Write the containerd registry configuration the configured mode needs: "
      "<out>/registry.d/<host>/hosts.toml with CA files beside it, and the config_path drop-ins "
      "<out>/conf.d (containerd 1.x) and <out>/conf2.d (2.x). Every file is replaced atomically; "
      "host directories and drop-ins registryd rendered before and no longer needs are removed "
      "(a mode that describes no hosts, like the legacy Unmanaged mode, leaves the node as "
      "installed), hand-made ones are never touched. See docs/containerd.md.");
  auto args = std::make_shared<render_args>();
  args->host.add_to(*ctd);
  ctd->add_option("--out", args->out_dir,
                  "The directory that plays /etc/containerd (default: the containerd_dir host "
                  "setting, /etc/containerd)");
  ctd->add_option("--final-root", args->final_root,
                  "Where --out will be on the node, for the paths inside the files (default: --out)");
  ctd->add_flag("--dry-run", args->dry_run, "Report what would change; write nothing");
  ctd->add_flag("--adopt", args->adopt,
                "Take over a hand-made host directory that the mode needs (it is refused otherwise)");
  return [args] { return render_containerd(*args); };
}

}  // namespace registryd::cli
