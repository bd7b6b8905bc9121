// registryd render containerd: writes the containerd configuration of the configured mode.
#include "commands.hpp"
#include "host_flags.hpp"

#include <registryd/config/address.hpp>
#include <registryd/config/module_config.hpp>
#include <registryd/containerd/description.hpp>
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
  std::string mirror_address;
};

// Points the mirrors that lead to the node balancer at `address` instead, keeping each URL's
// path: for a host that runs no node balancer. Returns how many were changed.
std::size_t redirect_mirrors(containerd::description& description, const std::string& address) {
  std::size_t changed = 0;
  for (auto& host : description.hosts) {
    for (auto& m : host.mirrors) {
      if (!sdk::containerd::is_node_balancer_url(m.url)) continue;
      const auto path = m.url.find('/', std::string_view("https://").size());
      m.url = "https://" + address + (path == std::string::npos ? std::string() : m.url.substr(path));
      ++changed;
    }
  }
  return changed;
}

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
  if (!args.mirror_address.empty()) {
    if (auto parsed = config::parse_host_port(args.mirror_address); !parsed || parsed->port == 0) {
      std::cerr << "registryd: --mirror-address must be host:port with a port, got \"" << args.mirror_address << "\"\n";
      return exit_invalid;
    }
    // Through the typed description: the plugin's JSON is validated on the way.
    auto typed = containerd::parse_description(description);
    if (!typed) {
      std::cerr << "registryd: plugin " << (*mode)->library().describe() << " described containerd wrongly: "
                << typed.error_message() << "\n";
      return exit_invalid;
    }
    if (redirect_mirrors(*typed, args.mirror_address) == 0) {
      std::cerr << "registryd: --mirror-address: " << config::to_string(config->mode)
                << " mode's containerd configuration has no mirror through the node balancer to point elsewhere\n";
      return exit_invalid;
    }
    description = typed->to_json();
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
  for (const auto& f : report->written) std::cout << (args.dry_run ? "  would write  " : "  written   ") << f << "\n";
  for (const auto& f : report->unchanged) std::cout << (args.dry_run ? "  unchanged    " : "  unchanged ") << f << "\n";
  for (const auto& f : report->removed) std::cout << (args.dry_run ? "  would remove " : "  removed   ") << f << "\n";
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
  args->host.add_to(*ctd, module_flags | storage_flags | serving_flags | containerd_flags);
  ctd->add_option("--out", args->out_dir,
                  "The directory that plays /etc/containerd (default: the containerd_dir host "
                  "setting, /etc/containerd)");
  ctd->add_option("--final-root", args->final_root,
                  "Where --out will be on the node, for the paths inside the files (default: --out)");
  ctd->add_flag("--dry-run", args->dry_run, "Report what would change (\"would write\"); write nothing");
  ctd->add_option("--mirror-address", args->mirror_address,
                  "host:port the mirrors must point at instead of the node balancer on "
                  "https://127.0.0.1:5001 (Proxy and Local), for a host that runs no node balancer: "
                  "a master's address, or a load balancer's");
  ctd->add_flag("--adopt", args->adopt,
                "Take over a hand-made host directory that the mode needs (it is refused otherwise)");
  return [args] { return render_containerd(*args); };
}

}  // namespace registryd::cli
