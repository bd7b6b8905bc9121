#include <registryd/daemon/supervisor.hpp>

#include <registryd/auth/authenticator.hpp>
#include <registryd/auth/basic_credentials.hpp>
#include <registryd/cluster/etcd_store.hpp>
#include <registryd/cluster/membership.hpp>
#include <registryd/cluster/node_api.hpp>
#include <registryd/config/address.hpp>
#include <registryd/config/settings_document.hpp>
#include <registryd/daemon/mode_loader.hpp>
#include <registryd/pki/pki_directory.hpp>
#include <registryd/pki/subject_alt_names.hpp>
#include <registryd/pki/tls_identity.hpp>
#include <registryd/pki/token_signer.hpp>
#include <registryd/switching/mode.hpp>
#include <registryd/switching/rules.hpp>
#include <registryd/switching/state.hpp>

#include <registryd/oci/text_file.hpp>
#include <registryd/util/atomic_file.hpp>
#include <registryd/sdk/text.hpp>

#include <nlohmann/json.hpp>
#include <prometheus/family.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <sstream>

namespace registryd::daemon {
namespace {

std::filesystem::path pki_dir(const config::host_settings& host) { return host.state_dir / "pki"; }

}  // namespace

supervisor::supervisor(supervisor_options options, std::shared_ptr<spdlog::logger> logger)
    : opts_(std::move(options)),
      logger_(std::move(logger)),
      metrics_(std::make_shared<prometheus::Registry>()),
      mode_info_(prometheus::BuildGauge()
                     .Name("registryd_mode_info")
                     .Help("The registry mode that serves the fixed address (1 for the active one).")
                     .Register(*metrics_)),
      certificate_expiry_(prometheus::BuildGauge()
                              .Name("registryd_serving_certificate_expiry_timestamp_seconds")
                              .Help("When the serving certificate expires (Unix time).")
                              .Register(*metrics_)
                              .Add({})),
      refusals_(prometheus::BuildCounter()
                    .Name("registryd_config_refusals_total")
                    .Help("Configs not applied, by reason: invalid, forbidden switch, plugin failure.")
                    .Register(*metrics_)),
      config_applied_(prometheus::BuildGauge()
                          .Name("registryd_config_applied")
                          .Help("1 when the wanted ModuleConfig is the one serving, 0 when it was refused "
                                "(registryd status says why).")
                          .Register(*metrics_)
                          .Add({})) {}

supervisor::~supervisor() { stop(); }

util::status supervisor::start() {
  const auto& host = opts_.host;
  std::error_code ec;
  std::filesystem::create_directories(host.state_dir, ec);
  if (ec) return util::error{"cannot create state dir " + host.state_dir.string() + ": " + ec.message()};
  std::filesystem::permissions(host.state_dir, std::filesystem::perms::owner_all, ec);

  frontdoor::options fd;
  const auto listen = config::parse_host_port(host.listen_address);
  if (!listen) return util::error{"listen_address: " + listen.error_message()};
  fd.address = listen->host;
  fd.port = listen->port;
  fd.tls = !opts_.plain_http;
  fd.transport = host.http;
  // Node agents authenticate with node certificates of the cluster CA (docs/cluster.md).
  fd.client_certificates = host.cluster.enabled();
  if (opts_.threads) fd.transport.worker_threads = *opts_.threads;
  front_door_ = std::make_unique<frontdoor::front_door>(fd, logger_, metrics_);

  if (!opts_.plain_http) {
    if (auto st = refresh_certificates(); !st) return st;
  }
  if (host.cluster.enabled()) {
    if (auto st = join_cluster(); !st) return st;
  }
  if (auto st = refresh_users(); !st) return st;
  if (auto st = refresh_mode(true); !st) return st;
  if (auto st = front_door_->start(); !st) return st;
  refresh_packages();
  publish_to_cluster();
  started_at_ = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  write_serve_status();
  return util::ok();
}

util::status supervisor::join_cluster() {
  auto& host = opts_.host;
  if (opts_.plain_http) return util::error{"a cluster member serves TLS: drop --plain-http"};
  cluster::etcd_options eo;
  eo.endpoints = host.cluster.endpoints;
  eo.ca_file = host.cluster.ca_file;
  eo.cert_file = host.cluster.cert_file;
  eo.key_file = host.cluster.key_file;
  auto opened = cluster::open_etcd(std::move(eo));
  if (!opened) return util::error{opened.error_message()};
  cluster_store_ = std::move(*opened);

  // This master's own CA and token signer are its candidate; the first master's win.
  auto mine = cluster::read_pki_dir(pki_dir(host));
  if (!mine) return util::error{"cluster: " + mine.error_message()};
  auto joined = cluster::join(*cluster_store_, *mine);
  if (!joined) return util::error{"cluster: cannot join through " + cluster_store_->describe() + ": " +
                                  joined.error_message()};
  if (joined->created) {
    logger_->info("cluster: created the cluster's CA, token signer and accounts in {}", cluster_store_->describe());
  } else {
    auto installed = cluster::install_pki(joined->pki, pki_dir(host));
    if (!installed) return util::error{"cluster: " + installed.error_message()};
    if (*installed) {
      logger_->info("cluster: took the cluster's CA and token signer from {}", cluster_store_->describe());
      if (auto st = refresh_certificates(); !st) return st;
    }
  }

  host.users_file = host.state_dir / "cluster" / "users.yaml";
  cluster_config_file_ = host.state_dir / "cluster" / "module-config.yaml";
  // Local mode's replica sync pulls from the other masters as the cluster's mirror-puller.
  if (!host.replica_credentials_file) {
    auto password = cluster::account_password(*cluster_store_, "mirror-puller");
    if (!password) return util::error{"cluster: " + password.error_message()};
    const auto file = host.state_dir / "cluster" / "replica-credentials.yaml";
    if (auto e = util::write_file_atomic(file, "username: mirror-puller\npassword: \"" + *password + "\"\n",
                                         std::filesystem::perms(0600))) {
      return util::error{"cluster: cannot write " + file.string() + ": " + e.message()};
    }
    host.replica_credentials_file = file;
  }
  cluster::master_record self;
  self.node_ip = host.node_ip;
  const auto listen = config::parse_host_port(host.listen_address);
  self.address = (host.node_ip.find(':') != std::string::npos ? "[" + host.node_ip + "]" : host.node_ip) + ":" +
                 std::to_string(listen ? listen->port : 5001);
  cluster::link_options lo;
  lo.files = {cluster::users_file_mirror(*host.users_file),
              {cluster::config_key, cluster_config_file_, [](const std::string& yaml) -> std::optional<std::string> {
                 // `registryd apply` stored only what passed these checks; a hand-made value
                 // that fails them is logged and the last good file kept.
                 if (auto parsed = config::parse_module_config(yaml, cluster::config_key); !parsed) {
                   return parsed.error_message();
                 }
                 return std::nullopt;
               }}};
  cluster_link_ = std::make_unique<cluster::master_link>(cluster_store_, std::move(self), lo, logger_);
  if (auto st = cluster_link_->start(); !st) return util::error{"cluster: " + st.error_message()};
  use_cluster_config();

  // The node agents' endpoints. The view is read on request threads: it asks the front door
  // (thread-safe) for the mode instance serving now.
  auto api = std::make_shared<cluster::master_api>(
      cluster_store_, pki_dir(host),
      [door = front_door_.get()]() -> cluster::master_view {
        cluster::master_view v;
        if (auto mode = door->mode()) {
          v.mode = std::string(mode->mode());
          if (auto described = mode->describe_containerd()) v.containerd_description = *described;
        }
        return v;
      },
      logger_, host.cluster.node_certificate_lifetime);
  // Nodes long-poll their assignment: a poll for the version they have is parked in the front
  // door (no worker held) until the watch sees the version change, checked once a second.
  auto changed = std::make_shared<frontdoor::wake_signal>();
  assignment_watch_ = std::make_unique<cluster::assignment_watch>(api, std::chrono::seconds(1),
                                                                  [changed] { changed->notify(); });
  front_door_->set_cluster_api([api, changed](const frontdoor::host_api_request& r) {
    const auto seen = changed->generation();  // before the answer is computed: no change is missed
    const auto a =
        api->handle(r.method, r.path, r.peer_subject, r.peer_serial, r.remote_addr, r.body, r.params, r.resumed);
    frontdoor::host_api_response out;
    out.status = a.status;
    out.body = a.body;
    if (a.wait.count() > 0) {
      out.park_on = changed;
      out.park_seen = seen;
      out.park_for = a.wait;
    }
    return out;
  });
  return util::ok();
}

void supervisor::use_cluster_config() {
  std::error_code ec;
  if (cluster_config_file_.empty() || !std::filesystem::exists(cluster_config_file_, ec)) return;
  if (opts_.host.module_config_path == cluster_config_file_) return;
  logger_->info("cluster: serving the ModuleConfig applied to the cluster (registryd apply) from now on");
  opts_.host.module_config_path = cluster_config_file_;
}

void supervisor::publish_to_cluster() {
  if (!cluster_link_) return;
  cluster_link_->update(active_mode_name_, certificate_not_after_);
  auto state = switching::load_state(opts_.host.state_dir);
  if (state && *state) cluster_link_->publish_state(switching::to_json(**state).dump());
}

void supervisor::reconcile(bool retry_refused) {
  if (retry_refused) last_refused_.clear();
  if (!opts_.plain_http) {
    if (auto st = refresh_certificates(); !st) logger_->error("certificates: {}", st.error_message());
  }
  sync_cluster_pki();
  if (auto st = refresh_users(); !st) logger_->error("users: {}", st.error_message());
  use_cluster_config();
  if (auto st = refresh_mode(false); !st) logger_->error("{}", st.error_message());
  reload_packages_settings();
  refresh_packages();
  publish_to_cluster();
  write_serve_status();
}

void supervisor::write_serve_status() {
  const bool applied = not_applied_why_.empty() && !active_mode_name_.empty();
  config_applied_.Set(applied ? 1 : 0);
  nlohmann::json doc = {
      {"pid", static_cast<std::int64_t>(::getpid())},
      {"startedAt", started_at_},
      {"configFile", opts_.host.module_config_path ? opts_.host.module_config_path->string() : std::string()},
      {"wantedMode", wanted_mode_},
      {"servingMode", active_mode_name_},
      {"applied", applied},
      {"notAppliedBecause", not_applied_why_},
  };
  const std::string text = doc.dump(2) + "\n";
  if (text == serve_status_written_) return;
  const auto file = opts_.host.state_dir / "serve-status.json";
  if (auto ec = util::write_file_atomic(file, text, std::filesystem::perms(0644))) {
    logger_->warn("cannot write {}: {}", file.string(), ec.message());
    return;
  }
  serve_status_written_ = text;
}

void supervisor::reload_packages_settings() {
  if (!opts_.reload_packages) return;
  auto loaded = opts_.reload_packages();
  if (!loaded) {
    const std::string why = "host settings not reloaded: " + loaded.error_message();
    if (why != packages_failure_) logger_->error("packages proxy: {}", why);
    packages_failure_ = why;
    return;
  }
  auto& current = opts_.host.packages;
  if (*loaded == current) return;
  logger_->info("packages proxy: its host settings changed; restarting it alone");
  if (loaded->listen_address != current.listen_address && packages_door_) {
    packages_door_->stop();
    packages_door_.reset();
    packages_settings_.clear();
  }
  if (loaded->tokens_file != current.tokens_file) tokens_mtime_.reset();
  current = std::move(*loaded);
  packages_failure_.clear();
}

void supervisor::stop() {
  assignment_watch_.reset();  // its wake-ups go to the front door's I/O threads
  if (cluster_link_) cluster_link_->stop();
  if (packages_door_) packages_door_->stop();
  packages_door_.reset();
  if (front_door_) front_door_->stop();
  front_door_.reset();
}

void supervisor::refresh_packages() {
  const auto& host = opts_.host;
  const auto failed = [this](const std::string& why) {
    if (why != packages_failure_) logger_->error("packages proxy: {}", why);
    packages_failure_ = why;
  };
  if (host.packages.listen_address.empty() || !active_config_) {
    if (packages_door_) {
      logger_->info("packages proxy: turned off");
      packages_door_->stop();
      packages_door_.reset();
      packages_settings_.clear();
    }
    return;
  }

  bool fresh = false;
  std::string listen_host;
  if (!packages_door_) {
    const auto listen = config::parse_host_port(host.packages.listen_address);
    if (!listen) return failed("packages_listen_address: " + listen.error_message());
    frontdoor::options fd;
    fd.address = listen->host;
    fd.port = listen->port;
    listen_host = listen->host;
    fd.tls = !opts_.plain_http;
    fd.role = frontdoor::listener_role::packages;
    fd.client_certificates = true;
    fd.transport = host.http;
    // Packages are few and large: a handful of I/O threads and workers is plenty.
    fd.transport.io_threads = 1;
    fd.transport.worker_threads = std::min<std::size_t>(fd.transport.worker_threads, 16);
    const auto main = config::parse_host_port(host.listen_address);
    const std::string realm_host = main ? (main->host == "0.0.0.0" ? host.node_ip : main->host) + ":" +
                                              std::to_string(front_door_->port())
                                        : host.listen_address;
    fd.token_realm = std::string(opts_.plain_http ? "http://" : "https://") + realm_host + "/auth/token";
    packages_metrics_ = std::make_shared<prometheus::Registry>();
    auto door = std::make_unique<frontdoor::front_door>(fd, logger_, packages_metrics_);
    door->set_identity(front_door_->identity());
    door->set_token_authority(front_door_->token_authority());
    door->set_mode(nullptr, "the packages proxy is starting");
    packages_door_ = std::move(door);
    fresh = true;
  }
  if (auto st = refresh_static_tokens(); !st) failed(st.error_message());

  // A new listener opens only after its first instance was tried, so that a client that finds
  // the port open is answered by the proxy (or told why it cannot be), not "starting".
  std::string why_not;
  const std::string settings = config::packages_document(*active_config_, host).dump();
  if (settings != packages_settings_) {
    auto instance = create_packages_proxy(settings, host, logger_);
    if (!instance) {
      why_not = instance.error_message();
    } else if (auto st = (*instance)->start(); !st) {
      why_not = "cannot start: " + st.error_message();
    } else {
      packages_door_->set_mode(*instance);
      packages_settings_ = settings;
      packages_failure_.clear();
      logger_->info("packages proxy is serving ({})", (*instance)->library().describe());
    }
    if (!why_not.empty() && fresh) packages_door_->set_mode(nullptr, "the packages proxy cannot start: " + why_not);
  }
  if (fresh) {
    if (auto st = packages_door_->start(); !st) {
      packages_door_.reset();
      packages_settings_.clear();
      return failed("cannot listen: " + st.error_message());
    }
    logger_->info("packages proxy listens on {}:{}", listen_host, packages_door_->port());
  }
  if (!why_not.empty()) failed(why_not);
}

util::status supervisor::refresh_static_tokens() {
  const auto& file = opts_.host.packages.tokens_file;
  if (!file) return util::ok();
  std::error_code ec;
  const auto mtime = std::filesystem::last_write_time(*file, ec);
  if (ec) return util::error{"cannot read packages_tokens_file " + file->string() + ": " + ec.message()};
  if (tokens_mtime_ && *tokens_mtime_ == mtime) return util::ok();
  tokens_mtime_ = mtime;
  const auto text = oci::read_text_file(*file);
  if (!text) return util::error{"cannot read packages_tokens_file " + file->string()};
  std::vector<std::string> tokens;
  std::istringstream lines(*text);
  for (std::string line; std::getline(lines, line);) {
    const auto t = sdk::trim(line);
    if (!t.empty() && t.front() != '#') tokens.emplace_back(t);
  }
  packages_door_->set_static_tokens(tokens);
  logger_->info("packages proxy: {} static token(s) from {}", tokens.size(), file->string());
  return util::ok();
}

void supervisor::sync_cluster_pki() {
  if (!cluster_store_) return;
  const auto dir = pki_dir(opts_.host);
  bool published = false;
  auto mine = cluster::read_pki_dir(dir);
  auto wanted = mine ? cluster::sync_pki(*cluster_store_, *mine, pki::clock::now(), &published)
                     : util::result<cluster::shared_pki>(util::error{mine.error_message()});
  if (!wanted) {
    if (wanted.error_message() != last_pki_sync_error_) {
      logger_->warn("cluster: the CA is not compared with the store's now: {}", wanted.error_message());
    }
    last_pki_sync_error_ = wanted.error_message();
    return;
  }
  last_pki_sync_error_.clear();
  if (published) logger_->info("cluster: wrote the CA this master renewed to {}", cluster_store_->describe());
  if (*wanted == *mine) return;
  auto installed = cluster::install_pki(*wanted, dir);
  if (!installed) {
    logger_->error("cluster: cannot take the renewed CA from the store: {}", installed.error_message());
    return;
  }
  if (*installed) {
    logger_->info("cluster: took the CA another master renewed from {}", cluster_store_->describe());
    if (!opts_.plain_http) {
      if (auto st = refresh_certificates(); !st) logger_->error("certificates: {}", st.error_message());
    }
  }
}

util::status supervisor::refresh_certificates() {
  const auto& host = opts_.host;
  auto wanted = pki::serving_names(host.node_ip, host.extra_server_names);
  if (!wanted) return util::error{"serving certificate names: " + wanted.error_message()};
  pki::pki_options options;
  options.dir = pki_dir(host);
  auto report = pki::ensure(options, *wanted, pki::clock::now());
  if (!report) return util::error{report.error_message()};
  // The token signer hangs off the CA: re-read it when either changed.
  auto token_report = pki::ensure_token_signer(options.dir, pki::clock::now());
  if (!token_report) return util::error{"token signer: " + token_report.error_message()};
  if (token_report->issued || report->changed() || !front_door_->token_authority()) {
    auto authority = auth::token_authority::load(options.dir);
    if (!authority) return util::error{"token signer: " + authority.error_message()};
    front_door_->set_token_authority(*authority);
    if (packages_door_) packages_door_->set_token_authority(*authority);
    logger_->info("tokens: {}, key id {}", token_report->summary(), (*authority)->key_id());
  }
  const auto current = front_door_->identity();
  if (!report->changed() && current) return util::ok();
  if (report->changed()) logger_->info("certificates: {}", report->summary());
  auto identity = pki::load_tls_identity(options.dir);
  if (!identity) return util::error{identity.error_message()};
  if (!current || current->chain_fingerprint != (*identity)->chain_fingerprint) {
    front_door_->set_identity(*identity);
    if (packages_door_) packages_door_->set_identity(*identity);
    certificate_not_after_ =
        std::chrono::duration_cast<std::chrono::seconds>((*identity)->not_after.time_since_epoch()).count();
    certificate_expiry_.Set(static_cast<double>(certificate_not_after_));
    if (current) logger_->info("front door now presents certificate serial {}", (*identity)->serial);
  }
  return util::ok();
}

util::status supervisor::refresh_users() {
  const auto& file = opts_.host.users_file;
  if (!file) {
    if (!users_mtime_) {
      logger_->warn("authentication is off: no users file (--users-file); every client may pull and push");
      users_mtime_ = std::filesystem::file_time_type::min();
    }
    return util::ok();
  }
  std::error_code ec;
  const auto mtime = std::filesystem::last_write_time(*file, ec);
  if (ec) return util::error{"cannot read users file " + file->string() + ": " + ec.message()};
  if (users_mtime_ && *users_mtime_ == mtime) return util::ok();
  if (!authenticator_) {
    auto loaded = auth::authenticator::create({.users_file = *file});
    if (!loaded) return util::error{loaded.error_message()};
    authenticator_ = std::move(*loaded);
    front_door_->set_authenticator(
        [a = authenticator_](std::string_view header) { return a->authenticate(header); },
        std::string(auth::basic_challenge),
        [a = authenticator_](std::string_view name) { return a->access_of(name); });
    logger_->info("users: loaded {} from {}", authenticator_->user_count(), file->string());
  } else {
    auto reloaded = authenticator_->reload();
    if (!reloaded) {
      users_mtime_ = mtime;  // report a bad file once, keep serving the good users
      return util::error{reloaded.error_message() + " (keeping the users loaded before)"};
    }
    logger_->info("users: reloaded {} from {}", authenticator_->user_count(), file->string());
  }
  users_mtime_ = mtime;
  return util::ok();
}

config::host_settings supervisor::plugin_host_settings() const {
  config::host_settings host = opts_.host;
  if (opts_.threads) host.http.worker_threads = *opts_.threads;  // what the front door runs
  // A cluster member's masters are those registered in the store, and its replica peers the
  // other ones, unless the host settings name the peers (docs/cluster.md).
  if (cluster_link_) {
    host.masters = cluster_link_->master_ips();
    if (!host.replica_peers) host.replica_peers = cluster_link_->peer_addresses();
  }
  return host;
}

util::status supervisor::refresh_mode(bool starting) {
  const auto host = plugin_host_settings();
  auto state = switching::load_state(host.state_dir);
  if (!state) return util::error{state.error_message()};

  // Counts the refusal. When nothing runs yet (start-up), serves the mode the state records
  // instead; when that fails too, or the node has no recorded mode, keeps the front door up
  // answering 503 with why. It never stops the host: a static pod must not crash-loop on a
  // config an operator can fix.
  auto fall_back = [&](const char* reason, const std::string& message) -> util::status {
    refusals_.Add({{"reason", reason}}).Increment();
    not_applied_why_ = message;
    if (!starting || front_door_->mode()) return util::ok();  // the running mode keeps serving
    if (!*state || !(*state)->current) {
      front_door_->set_mode(nullptr, "no registry mode is running: " + message);
      return util::ok();
    }
    auto recorded = switching::recorded_config(**state);
    if (!recorded) {
      front_door_->set_mode(nullptr, "no registry mode is running: " + message +
                                         "; the recorded config is invalid: " + recorded.error_message());
      return util::ok();
    }
    logger_->warn("serving the recorded mode {} instead", config::to_string(recorded->mode));
    const std::string settings = config::settings_document(*recorded, host).dump();
    if (auto st = activate(*recorded, host, settings, false); !st) {
      logger_->error("the recorded mode cannot start either: {}", st.error_message());
      front_door_->set_mode(nullptr, "no registry mode is running: " + message + "; " +
                                         st.error_message());
    }
    return util::ok();
  };

  auto desired = config::load_module_config(host);
  wanted_mode_ = desired ? std::string(config::to_string(desired->mode)) : std::string();
  if (!desired) {
    const std::string text = desired.error_message();
    if (text != last_refused_) {
      logger_->error("invalid ModuleConfig, not applied:\n{}", text);
      last_refused_ = text;
      return fall_back("invalid", "the ModuleConfig is invalid: " + text);
    }
    return util::ok();
  }
  const std::string settings = config::settings_document(*desired, host).dump();
  if (settings == active_settings_) {
    not_applied_why_.clear();  // back to what serves (an operator undid a refused change)
    return util::ok();
  }
  if (settings == last_refused_) return util::ok();

  const auto decision = switching::check_switch(*state, switching::target_of(*desired));
  if (!decision.allowed()) {
    logger_->error("switch refused: {}", decision.reason);
    last_refused_ = settings;
    return fall_back("forbidden_switch", "switch refused: " + decision.reason);
  }
  logger_->info("{}", decision.reason);
  if (auto st = activate(*desired, host, settings, true); !st) {
    logger_->error("{}", st.error_message());
    last_refused_ = settings;
    return fall_back("plugin", st.error_message());
  }
  last_refused_.clear();
  not_applied_why_.clear();
  return util::ok();
}

util::status supervisor::activate(const config::module_config& config, const config::host_settings& host,
                                  const std::string& settings, bool persist) {
  auto instance = create_mode(config, host, opts_.plugin_override, logger_);
  if (!instance) return util::error{instance.error_message()};
  if (auto st = (*instance)->start(); !st) return st;

  // The state is saved before the new mode serves: if the save fails, the new instance is
  // stopped and the running mode keeps serving, so what serves is always what the state says.
  if (persist) {
    auto saved = save_switched_state(config);
    if (!saved) {
      (*instance)->stop();
      return util::error{"mode " + std::string(config::to_string(config.mode)) +
                         " not switched to: cannot save the state: " + saved.error_message()};
    }
  }

  const std::string mode_name(config::to_string(config.mode));
  front_door_->set_mode(*instance);
  if (!active_mode_name_.empty()) mode_info_.Add({{"mode", active_mode_name_}}).Set(0);
  mode_info_.Add({{"mode", mode_name}}).Set(1);
  active_mode_name_ = mode_name;
  active_settings_ = settings;
  active_config_ = config;
  logger_->info("mode {} is serving ({})", mode_name, (*instance)->library().describe());
  return util::ok();
}

util::status supervisor::save_switched_state(const config::module_config& config) const {
  auto state = switching::load_state(opts_.host.state_dir);
  if (!state) return util::error{state.error_message()};
  switching::persisted_state next = state->value_or(switching::persisted_state{});
  next.current = switching::target_of(config);
  // This node serves the mode now; for a single host that is the end of bootstrap.
  next.bootstrap_finished = true;
  next.config = config::to_canonical_json(config);
  next.applied_at = switching::wall_clock::now();
  next.target.reset();
  next.conditions.clear();
  return switching::save_state(opts_.host.state_dir, next);
}

}  // namespace registryd::daemon
