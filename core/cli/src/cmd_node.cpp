// registryd node: the node agent (docs/cluster.md, "Nodes"): joins with a token, applies the
// containerd configuration the masters assign, runs the node balancer on 127.0.0.1:5001.
#include "commands.hpp"

#include <registryd/config/address.hpp>
#include <registryd/node/agent.hpp>
#include <registryd/util/logging.hpp>
#include <registryd/util/process_metrics.hpp>

#include <prometheus/exposer.h>

#include <sys/resource.h>

#include <csignal>
#include <functional>
#include <iostream>
#include <memory>
#include <unistd.h>

namespace registryd::cli {
namespace {

// Runs a long-lived service until SIGINT or SIGTERM. The signals are blocked before start()
// makes any thread, so none of them is interrupted; metrics are served on `metrics_listen`
// (prometheus-cpp's exposer) unless it is "off" or empty; every descriptor the kernel allows is
// taken (a relayed connection holds five).
int run_until_signal(const std::string& command, const std::string& metrics_listen,
                     const std::shared_ptr<prometheus::Registry>& metrics, spdlog::logger& logger,
                     const std::function<util::status()>& start, const std::function<void()>& stop) {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  std::signal(SIGPIPE, SIG_IGN);
  if (rlimit files{}; ::getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur < files.rlim_max) {
    files.rlim_cur = files.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &files);
  }
  std::unique_ptr<prometheus::Exposer> exposer;
  if (!metrics_listen.empty() && metrics_listen != "off") {
    try {
      exposer = std::make_unique<prometheus::Exposer>(metrics_listen);
      exposer->RegisterCollectable(metrics);
      exposer->RegisterCollectable(std::make_shared<util::process_collector>());
    } catch (const std::exception& e) {
      std::cerr << "registryd " << command << ": cannot serve metrics on " << metrics_listen << ": " << e.what()
                << "\n";
      return exit_refused;
    }
  }
  if (auto st = start(); !st) {
    logger.critical("{}", st.error_message());
    return exit_refused;
  }
  int sig = 0;
  sigwait(&signals, &sig);
  logger.info("{}: stopping on signal {}; draining the balancer's connections", command, sig);
  stop();
  return exit_ok;
}

struct node_args {
  node::agent_options agent;
  std::string balancer_listen = "127.0.0.1:5001";
  std::string metrics_listen = "127.0.0.1:5003";
  std::string ca_file;
  std::string state_dir = "/var/lib/registryd-node";
  std::string containerd_dir = "/etc/containerd";
  int poll_ms = 2000;
  int watch_wait_s = 30;
  int connect_timeout_ms = 1000;
  int health_interval_ms = 1000;
  std::string log_level = "info";
};

int run_node(node_args& args) {
  auto logger = util::make_logger(false, args.log_level);
  auto o = args.agent;
  o.ca_file = args.ca_file;
  o.state_dir = std::filesystem::absolute(args.state_dir);
  o.containerd_dir = std::filesystem::absolute(args.containerd_dir);
  o.poll_interval = std::chrono::milliseconds(args.poll_ms);
  o.watch_wait = std::chrono::seconds(args.watch_wait_s);
  o.balancer.connect_timeout = std::chrono::milliseconds(args.connect_timeout_ms);
  o.balancer.health_interval = std::chrono::milliseconds(args.health_interval_ms);
  o.balancer.health_timeout = std::chrono::milliseconds(args.health_interval_ms);
  const auto listen = config::parse_host_port(args.balancer_listen);
  if (!listen) {
    std::cerr << "registryd node: --balancer-listen-address: " << listen.error_message() << "\n";
    return exit_invalid;
  }
  o.balancer.address = listen->host;
  o.balancer.port = listen->port;
  if (o.node_name.empty()) {
    char host[256] = {};
    ::gethostname(host, sizeof host - 1);
    o.node_name = host;
  }
  auto metrics = std::make_shared<prometheus::Registry>();
  node::agent agent(o, metrics, logger);
  return run_until_signal("node", args.metrics_listen, metrics, *logger, [&] { return agent.start(); },
                          [&] { agent.stop(); });
}

struct balancer_args {
  std::string listen = "127.0.0.1:5001";
  std::vector<std::string> masters;
  std::string ca_file;
  std::string metrics_listen = "off";
  int connect_timeout_ms = 1000;
  int health_interval_ms = 1000;
  std::string log_level = "info";
};

// The balancer alone, with a fixed master list: for nodes whose configuration another tool
// manages, and for benchmarks.
int run_balancer(const balancer_args& args) {
  auto logger = util::make_logger(false, args.log_level);
  const auto listen = config::parse_host_port(args.listen);
  if (!listen) {
    std::cerr << "registryd balancer: --listen-address: " << listen.error_message() << "\n";
    return exit_invalid;
  }
  balancer::balancer_options o;
  o.address = listen->host;
  o.port = listen->port;
  o.backends = args.masters;
  if (!args.ca_file.empty()) o.health_ca_file = args.ca_file;
  o.connect_timeout = std::chrono::milliseconds(args.connect_timeout_ms);
  o.health_interval = std::chrono::milliseconds(args.health_interval_ms);
  o.health_timeout = std::chrono::milliseconds(args.health_interval_ms);
  auto metrics = std::make_shared<prometheus::Registry>();
  balancer::node_balancer lb(o, metrics, logger);
  return run_until_signal("balancer", args.metrics_listen, metrics, *logger, [&] { return lb.start(); },
                          [&] { lb.stop(std::chrono::seconds(30)); });
}

}  // namespace

command add_balancer(CLI::App& app) {
  auto* sub = app.add_subcommand(
      "balancer",
      "Run the node balancer alone over a fixed list of masters (registryd node runs it with the "
      "masters the cluster assigns): least connections, 1 s connect timeout with retry on another "
      "master, /readyz health checks. Exit codes: 0 stopped by a signal, 1 cannot listen, 2 bad flags.");
  auto args = std::make_shared<balancer_args>();
  sub->add_option("--listen-address", args->listen, "Where to listen (127.0.0.1:5001)");
  sub->add_option("--master", args->masters, "A master, IP:port (repeat the flag)")->required();
  sub->add_option("--ca-file", args->ca_file,
                  "The CA the masters' certificates chain to; health checks use TLS with it (none: "
                  "plain HTTP checks, for --plain-http masters only)");
  sub->add_option("--metrics-listen-address", args->metrics_listen, "Prometheus metrics, host:port or off (off)");
  sub->add_option("--connect-timeout-ms", args->connect_timeout_ms, "Connect timeout per master (1000)")
      ->check(CLI::Range(50, 60000));
  sub->add_option("--health-interval-ms", args->health_interval_ms, "Health check interval (1000)")
      ->check(CLI::Range(100, 60000));
  sub->add_option("--log-level", args->log_level, "trace, debug, info, warn or error")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error"}));
  return [args] { return run_balancer(*args); };
}

command add_node(CLI::App& app) {
  auto* sub = app.add_subcommand(
      "node",
      "The node agent: joins the cluster with a one-time token (registryd cluster join-token), "
      "then keeps containerd's registry configuration and the node balancer (127.0.0.1:5001, "
      "least connections over the masters with health checks) as the masters assign them. Keeps "
      "running the last assignment while no master answers. SIGTERM drains the balancer. Exit "
      "codes: 0 stopped by a signal, 1 cannot join or start, 2 bad flags.");
  auto args = std::make_shared<node_args>();
  sub->add_option("--master", args->agent.masters, "A master's URL, https://IP:5001 (repeat the flag)")->required();
  sub->add_option("--ca-file", args->ca_file, "The cluster CA certificate (ca.crt of any master)")
      ->required()
      ->check(CLI::ExistingFile);
  sub->add_option("--token", args->agent.token, "The join token (only until the node has joined)");
  sub->add_option("--node-name", args->agent.node_name, "This node's name (default: the host name)");
  sub->add_option("--state-dir", args->state_dir, "Node key, certificate and last assignment (/var/lib/registryd-node)");
  sub->add_option("--containerd-dir", args->containerd_dir, "containerd's config directory (/etc/containerd)");
  sub->add_option("--balancer-listen-address", args->balancer_listen, "The balancer's address (127.0.0.1:5001)");
  sub->add_option("--metrics-listen-address", args->metrics_listen,
                  "Prometheus metrics of the balancer, host:port or off (127.0.0.1:5003)");
  sub->add_option("--poll-interval-ms", args->poll_ms,
                  "How often the agent checks its own state (status, certificate), and asks for its "
                  "assignment when a master does not hold long polls (2000)")
      ->check(CLI::Range(100, 600000));
  sub->add_option("--watch-wait-seconds", args->watch_wait_s,
                  "How long a master may hold a request for the assignment, answering as soon as it "
                  "changes (a long poll; at most 60; 0: poll every --poll-interval-ms) (30)")
      ->check(CLI::Range(0, 60));
  sub->add_option("--connect-timeout-ms", args->connect_timeout_ms,
                  "The balancer's connect timeout before it tries another master (1000)")
      ->check(CLI::Range(50, 60000));
  sub->add_option("--health-interval-ms", args->health_interval_ms,
                  "How often the balancer checks each master's /readyz (1000)")
      ->check(CLI::Range(100, 60000));
  sub->add_option("--log-level", args->log_level, "trace, debug, info, warn or error")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error"}));
  return [args] { return run_node(*args); };
}

}  // namespace registryd::cli
