// registryd serve: the long-running host.
#include "commands.hpp"
#include "host_flags.hpp"

#include <registryd/daemon/supervisor.hpp>
#include <registryd/util/logging.hpp>

#include <malloc.h>
#include <sys/resource.h>

#include <csignal>
#include <ctime>
#include <iostream>
#include <memory>

namespace registryd::cli {
namespace {

struct serve_args {
  host_flags host;
  std::string plugin;
  std::string log_level = "info";
  bool plain_http = false;
  std::optional<std::size_t> threads;
};

int serve(const serve_args& args) {
  const auto host = args.host.load_or_report();
  if (!host) return exit_invalid;
  if (args.plain_http && host->users_file) {
    std::cerr << "registryd serve: --plain-http with --users-file would send passwords in clear "
                 "text; drop one of them\n";
    return exit_invalid;
  }
  auto logger = util::make_logger(host->log == config::log_format::json, args.log_level);

  // Signals are taken synchronously by this thread; block them before any thread starts so
  // that none of the server's threads is interrupted by them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  std::signal(SIGPIPE, SIG_IGN);
  // Body buffers (up to 1 MiB each) come from mmap and go back to the kernel when freed, and
  // a few malloc arenas serve every thread: without this, glibc's rising mmap threshold and
  // its per-thread arenas keep freed buffers resident (peak RSS nearly doubled).
  ::mallopt(M_MMAP_THRESHOLD, 256 * 1024);
  ::mallopt(M_ARENA_MAX, 4);
  // Every connection is a descriptor: take all the kernel allows this process
  // (http_max_connections is the limit that answers for it).
  if (rlimit files{}; ::getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur < files.rlim_max) {
    files.rlim_cur = files.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &files);
  }

  daemon::supervisor_options opts;
  opts.host = *host;
  if (!args.plugin.empty()) opts.plugin_override = std::filesystem::absolute(args.plugin);
  opts.plain_http = args.plain_http;
  opts.threads = args.threads;
  opts.reload_packages = [&args]() -> util::result<config::packages_settings> {
    auto reloaded = args.host.load();
    if (!reloaded) return util::error{reloaded.error_message()};
    return reloaded->packages;
  };
  daemon::supervisor sup(std::move(opts), logger);
  if (auto st = sup.start(); !st) {
    logger->critical("cannot serve: {}", st.error_message());
    return exit_refused;
  }

  const timespec interval{static_cast<time_t>(host->reload_interval.count()), 0};
  for (;;) {
    const int sig = sigtimedwait(&signals, nullptr, &interval);
    if (sig == SIGINT || sig == SIGTERM) {
      logger->info("stopping on signal {}", sig);
      break;
    }
    if (sig == SIGHUP) logger->info("reloading on SIGHUP");
    sup.reconcile(sig == SIGHUP);
  }
  sup.stop();
  return exit_ok;
}

}  // namespace

command add_serve(CLI::App& app) {
  auto* sub = app.add_subcommand(
      "serve",
      "Serve the fixed registry address over HTTPS in the configured mode. Creates the host CA "
      "and serving certificate in the state dir (ca.crt is what clients trust), re-issues them "
      "before they expire, and reloads the ModuleConfig and users file every few seconds or on "
      "SIGHUP: a config that is invalid or asks for a forbidden switch is logged and not "
      "applied, and the running mode keeps serving. SIGTERM or SIGINT stops it.");
  auto args = std::make_shared<serve_args>();
  args->host.add_to(*sub, all_flags);
  sub->add_option("--plugin", args->plugin,
                  "Serve with this plugin .so instead of the mode's own (plugin development)");
  sub->add_option("--log-level", args->log_level, "trace, debug, info, warn or error")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error"}));
  sub->add_option("--threads", args->threads,
                  "Worker threads: how many requests are handled at once; idle connections take "
                  "none (default: the host setting http_worker_threads, 64)")
      ->check(CLI::Range(1, 4096));
  sub->add_flag("--plain-http", args->plain_http,
                "Serve plain HTTP, no TLS: for benchmarks and experiments on loopback only");
  return [args] { return serve(*args); };
}

}  // namespace registryd::cli
