// registryd cluster: the masters' shared state in the cluster store (docs/cluster.md).
//   cluster status     every master registered now: address, mode, certificate expiry
//   cluster set-user   add a user or change a password; every master serves it within seconds
//   cluster password   the generated password of ro, rw, mirror-puller or mirror-pusher
#include "commands.hpp"
#include "host_flags.hpp"

#include <registryd/cluster/etcd_store.hpp>
#include <registryd/cluster/membership.hpp>

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
};

// The store the host settings name, or nullptr after saying why.
std::unique_ptr<cluster::store> open_store(const host_flags& flags) {
  const auto host = flags.load_or_report();
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

int status(const cluster_args& args) {
  auto store = open_store(args.host);
  if (!store) return exit_invalid;
  auto masters = cluster::list_masters(*store);
  if (!masters) {
    std::cerr << "registryd cluster status: " << masters.error_message() << "\n";
    return exit_refused;
  }
  if (args.json) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& m : *masters) out.push_back(nlohmann::json::parse(cluster::to_json(m)));
    std::cout << nlohmann::json{{"store", store->describe()}, {"masters", out}}.dump(2) << "\n";
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
  return exit_ok;
}

int set_user(const cluster_args& args) {
  auto store = open_store(args.host);
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
  auto store = open_store(args.host);
  if (!store) return exit_invalid;
  auto pw = cluster::account_password(*store, args.name);
  if (!pw) {
    std::cerr << "registryd cluster password: " << pw.error_message() << "\n";
    return exit_refused;
  }
  std::cout << *pw << "\n";
  return exit_ok;
}

}  // namespace

command add_cluster(CLI::App& app) {
  auto* sub = app.add_subcommand(
      "cluster", "The masters' shared state in the cluster store (etcd): masters, users, accounts. "
                 "Exit codes: 0 done, 1 the store refused or is unreachable, 2 bad flags.");
  sub->require_subcommand(1, 1);
  auto st = std::make_shared<cluster_args>();
  auto* status_cmd = sub->add_subcommand("status", "List the masters registered now (each renews its "
                                                   "record every few seconds; a dead one is gone within 10 s)");
  st->host.add_to(*status_cmd, false);
  status_cmd->add_flag("--json", st->json, "JSON instead of a table");

  auto su = std::make_shared<cluster_args>();
  auto* user_cmd = sub->add_subcommand(
      "set-user", "Add a user or change its password and access; reads the password (8 characters "
                  "or more) from standard input. Every master serves the change within its config "
                  "reload interval (5 s by default)");
  su->host.add_to(*user_cmd, false);
  user_cmd->add_option("name", su->name, "The user name")->required();
  user_cmd->add_option("--access", su->access,
                       "read-only, read-write, mirror-puller or mirror-pusher (read-only)");

  auto pw = std::make_shared<cluster_args>();
  auto* pw_cmd = sub->add_subcommand(
      "password", "Print the generated password of ro, rw, mirror-puller or mirror-pusher");
  pw->host.add_to(*pw_cmd, false);
  pw_cmd->add_option("name", pw->name, "The account")->required();

  return [=] {
    if (status_cmd->parsed()) return status(*st);
    if (user_cmd->parsed()) return set_user(*su);
    return password(*pw);
  };
}

}  // namespace registryd::cli
