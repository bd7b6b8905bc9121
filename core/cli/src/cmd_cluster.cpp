// registryd cluster: the masters' shared state in the cluster store (docs/cluster.md).
//   cluster status     every master registered now: address, mode, certificate expiry
//   cluster set-user   add a user or change a password; every master serves it within seconds
//   cluster password   the generated password of ro, rw, mirror-puller or mirror-pusher
#include "commands.hpp"
#include "host_flags.hpp"

#include <registryd/cluster/etcd_store.hpp>
#include <registryd/cluster/membership.hpp>
#include <registryd/cluster/node_api.hpp>
#include <registryd/config/module_config.hpp>
#include <registryd/switching/mode.hpp>
#include <registryd/switching/rules.hpp>
#include <registryd/switching/state.hpp>
#include <registryd/util/atomic_file.hpp>

#include <nlohmann/json.hpp>

#include <chrono>
#include <ctime>
#include <iomanip>
#include <iostream>
#include <memory>

namespace registryd::cli {
namespace {

struct cluster_args {
  host_flags host;
  bool json = false;
  std::string name;
  std::string access = "read-only";
  int ttl_minutes = 60;
};

// The store the host settings name, or nullptr after saying why.
std::unique_ptr<cluster::store> open_store(const std::optional<config::host_settings>& host) {
  if (!host) return nullptr;
  if (!host->cluster.enabled()) {
    std::cerr << "registryd cluster: no cluster store: give --cluster-store URL (or cluster_store in "
                 "the host settings)\n";
    return nullptr;
  }
  cluster::etcd_options eo;
  eo.endpoints = host->cluster.endpoints;
  eo.ca_file = host->cluster.ca_file;
  eo.cert_file = host->cluster.cert_file;
  eo.key_file = host->cluster.key_file;
  auto opened = cluster::open_etcd(std::move(eo));
  if (!opened) {
    std::cerr << "registryd cluster: " << opened.error_message() << "\n";
    return nullptr;
  }
  return std::move(*opened);
}

std::string utc(std::int64_t unix_seconds) {
  if (unix_seconds == 0) return "-";
  const std::time_t t = unix_seconds;
  std::tm tm{};
  gmtime_r(&t, &tm);
  std::ostringstream out;
  out << std::put_time(&tm, "%Y-%m-%dT%H:%M:%SZ");
  return out.str();
}

}  // namespace

int cluster_status(const std::optional<config::host_settings>& host, bool json_output) {
  auto store = open_store(host);
  if (!store) return exit_invalid;
  auto masters = cluster::list_masters(*store);
  if (!masters) {
    std::cerr << "registryd cluster status: " << masters.error_message() << "\n";
    return exit_refused;
  }
  auto node_reports = store->list(cluster::node_status_prefix);
  if (!node_reports) {
    std::cerr << "registryd cluster status: " << node_reports.error_message() << "\n";
    return exit_refused;
  }
  nlohmann::json nodes = nlohmann::json::array();
  for (const auto& e : node_reports->first) {
    auto n = nlohmann::json::parse(e.value, nullptr, false);
    if (n.is_object()) nodes.push_back(std::move(n));
  }
  if (json_output) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& m : *masters) out.push_back(nlohmann::json::parse(cluster::to_json(m)));
    std::cout << nlohmann::json{{"store", store->describe()}, {"masters", out}, {"nodes", nodes}}.dump(2) << "\n";
    return exit_ok;
  }
  std::cout << "cluster store: " << store->describe() << "\n"
            << "masters: " << masters->size() << "\n";
  std::cout << std::left << std::setw(16) << "NODE IP" << std::setw(24) << "ADDRESS" << std::setw(12)
            << "MODE" << std::setw(22) << "CERTIFICATE UNTIL" << "STARTED\n";
  for (const auto& m : *masters) {
    std::cout << std::setw(16) << m.node_ip << std::setw(24) << m.address << std::setw(12)
              << (m.mode.empty() ? "-" : m.mode) << std::setw(22) << utc(m.certificate_not_after)
              << utc(m.started_at) << "\n";
  }
  std::cout << "nodes: " << nodes.size() << "\n";
  std::cout << std::setw(20) << "NODE" << std::setw(12) << "MODE" << std::setw(16) << "CONFIG" << std::setw(14)
            << "MASTERS UP" << std::setw(22) << "REPORTED" << "NOTES\n";
  for (const auto& n : nodes) {
    const auto balancer = n.value("balancer", nlohmann::json::object());
    std::size_t up = 0, all = 0;
    for (const auto& b : balancer.value("masters", nlohmann::json::array())) {
      ++all;
      up += b.value("healthy", false) ? 1 : 0;
    }
    std::string notes = n.value("error", "");
    for (const auto& d : n.value("customRegistryDropIns", nlohmann::json::array())) {
      notes += (notes.empty() ? "" : "; ") + std::string("hand-made registry config in ") + d.get<std::string>();
    }
    const std::string version = n.value("version", "");
    std::cout << std::setw(20) << n.value("node", "?") << std::setw(12) << n.value("mode", "-") << std::setw(16)
              << (version.size() > 19 ? version.substr(7, 12) : "-") << std::setw(14)
              << (balancer.value("listening", false) ? std::to_string(up) + "/" + std::to_string(all) : "no balancer")
              << std::setw(22) << utc(n.value("reportedAt", std::int64_t{0})) << notes << "\n";
  }
  return exit_ok;
}

namespace {

int join_token(const cluster_args& args) {
  auto store = open_store(args.host.load_or_report());
  if (!store) return exit_invalid;
  auto token = cluster::create_join_token(*store, std::chrono::minutes(args.ttl_minutes));
  if (!token) {
    std::cerr << "registryd cluster join-token: " << token.error_message() << "\n";
    return exit_refused;
  }
  std::cout << *token << "\n";
  return exit_ok;
}

int set_user(const cluster_args& args) {
  auto store = open_store(args.host.load_or_report());
  if (!store) return exit_invalid;
  std::string password;
  if (!std::getline(std::cin, password) || password.empty()) {
    std::cerr << "registryd cluster set-user: give the password on standard input\n";
    return exit_invalid;
  }
  if (auto st = cluster::set_user(*store, args.name, password, args.access); !st) {
    std::cerr << "registryd cluster set-user: " << st.error_message() << "\n";
    return exit_refused;
  }
  std::cout << "user " << args.name << " (" << args.access << ") stored; every master serves it within "
            << "its config reload interval\n";
  return exit_ok;
}

int password(const cluster_args& args) {
  auto store = open_store(args.host.load_or_report());
  if (!store) return exit_invalid;
  auto pw = cluster::account_password(*store, args.name);
  if (!pw) {
    std::cerr << "registryd cluster password: " << pw.error_message() << "\n";
    return exit_refused;
  }
  std::cout << *pw << "\n";
  return exit_ok;
}

// registryd apply: the desired ModuleConfig for the whole cluster, checked first.
int apply(const host_flags& flags) {
  const auto host = flags.load_or_report();
  if (!host) return exit_invalid;
  if (!host->module_config_path) {
    std::cerr << "registryd apply: give the ModuleConfig to apply with --config FILE\n";
    return exit_invalid;
  }
  std::error_code ec;
  const std::string yaml = util::read_small_file(*host->module_config_path, ec);
  if (ec) {
    std::cerr << "registryd apply: cannot read " << host->module_config_path->string() << ": " << ec.message() << "\n";
    return exit_invalid;
  }
  const auto desired = host_flags::module_config_or_report(*host);
  if (!desired) return exit_invalid;
  auto store = open_store(host);
  if (!store) return exit_invalid;

  // The switching rules, against every master's recorded state (a fresh cluster: none).
  auto current = store->get(cluster::config_key);
  auto states = store->list(cluster::states_prefix);
  if (!current || !states) {
    std::cerr << "registryd apply: " << (!current ? current.error_message() : states.error_message()) << "\n";
    return exit_refused;
  }
  const auto target = switching::target_of(*desired);
  std::vector<std::pair<std::string, std::optional<switching::persisted_state>>> judged;
  for (const auto& e : states->first) {
    const auto parsed = nlohmann::json::parse(e.value, nullptr, false);
    auto state = switching::state_from_json(parsed);
    if (!state) {
      std::cerr << "registryd apply: " << e.key << " is not a switching state: " << state.error_message() << "\n";
      return exit_refused;
    }
    judged.emplace_back(e.key.substr(std::string(cluster::states_prefix).size()), std::move(*state));
  }
  if (judged.empty()) judged.emplace_back("the cluster (no master has served yet)", std::nullopt);
  for (const auto& [who, state] : judged) {
    const auto decision = switching::check_switch(state, target);
    if (!decision.allowed()) {
      std::cerr << "registryd apply: refused by the switching rules on master " << who << ": " << decision.reason
                << "\nnothing was stored\n";
      return exit_refused;
    }
  }
  auto stored = cluster::store_config(*store, yaml, *current ? (*current)->mod_revision : 0);
  if (!stored) {
    std::cerr << "registryd apply: " << stored.error_message() << "\nnothing was stored\n";
    return exit_refused;
  }
  if (!*stored) {
    std::cerr << "registryd apply: another config was applied while this one was checked; nothing was "
                 "stored: check again and re-run\n";
    return exit_refused;
  }
  std::cout << "applied: mode " << switching::display_name(target)
            << "; every master takes it within its config reload interval (registryd cluster status "
               "shows the mode each serves)\n";
  return exit_ok;
}

}  // namespace

command add_apply(CLI::App& app) {
  auto* sub = app.add_subcommand(
      "apply", "Apply a ModuleConfig to the whole cluster: checks its fields and the switching rules "
               "against every master's state, then stores it in the cluster store, from where every "
               "master takes it. Exit codes: 0 stored, 1 refused (the rule is printed; nothing "
               "stored), 2 invalid config or flags (field path and reason).");
  auto flags = std::make_shared<host_flags>();
  flags->add_to(*sub, module_flags | cluster_flags);
  return [flags] { return apply(*flags); };
}

command add_cluster(CLI::App& app) {
  auto* sub = app.add_subcommand(
      "cluster", "The masters' shared state in the cluster store (etcd): masters, users, accounts. "
                 "Exit codes: 0 done, 1 the store refused or is unreachable, 2 bad flags.");
  sub->require_subcommand(1, 1);
  auto st = std::make_shared<cluster_args>();
  auto* status_cmd = sub->add_subcommand("status", "List the masters registered now (each renews its "
                                                   "record every few seconds; a dead one is gone within 10 s) "
                                                   "and the nodes with what they last reported");
  st->host.add_to(*status_cmd, cluster_flags);
  status_cmd->add_flag("--json", st->json, "JSON instead of a table");

  auto su = std::make_shared<cluster_args>();
  auto* user_cmd = sub->add_subcommand(
      "set-user", "Add a user or change its password and access; reads the password (8 characters "
                  "or more) from standard input. Every master serves the change within its config "
                  "reload interval (5 s by default)");
  su->host.add_to(*user_cmd, cluster_flags);
  user_cmd->add_option("name", su->name, "The user name")->required();
  user_cmd->add_option("--access", su->access,
                       "read-only, read-write, mirror-puller or mirror-pusher (read-only)");

  auto jt = std::make_shared<cluster_args>();
  auto* token_cmd = sub->add_subcommand(
      "join-token", "Print a one-time token a node joins with (registryd node --token): "
                    "<6 hex>.<16 hex>, valid for one join within --ttl-minutes");
  jt->host.add_to(*token_cmd, cluster_flags);
  token_cmd->add_option("--ttl-minutes", jt->ttl_minutes, "How long the token is valid (60)")->check(CLI::Range(1, 10080));

  auto pw = std::make_shared<cluster_args>();
  auto* pw_cmd = sub->add_subcommand(
      "password", "Print the generated password of ro, rw, mirror-puller or mirror-pusher");
  pw->host.add_to(*pw_cmd, cluster_flags);
  pw_cmd->add_option("name", pw->name, "The account")->required();

  return [=] {
    if (status_cmd->parsed()) return cluster_status(st->host.load_or_report(), st->json);
    if (user_cmd->parsed()) return set_user(*su);
    if (token_cmd->parsed()) return join_token(*jt);
    return password(*pw);
  };
}

}  // namespace registryd::cli
