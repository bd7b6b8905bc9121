#include <registryd/node/agent.hpp>

#include <registryd/containerd/render.hpp>
#include <registryd/pki/certificates.hpp>
#include <registryd/util/atomic_file.hpp>

#include <httplib.h>

#include <algorithm>
#include <fstream>
#include <sstream>
#include <sys/stat.h>

namespace registryd::node {
namespace {

using json = nlohmann::json;

constexpr const char* key_file = "node.key";
constexpr const char* cert_file = "node.crt";
constexpr const char* assignment_file = "assignment.json";
// The cluster CA as the masters last sent it (join and renewal answers): trusted from then on
// instead of --ca-file, so a CA the masters renewed reaches the node before the old one ends.
constexpr const char* cluster_ca_file = "cluster-ca.crt";

// The modes whose containerd goes through the balancer at 127.0.0.1:5001.
bool needs_balancer(const std::string& mode) { return mode == "Proxy" || mode == "Local" || mode == "Direct"; }

}  // namespace

agent::agent(agent_options options, std::shared_ptr<prometheus::Registry> metrics, std::shared_ptr<spdlog::logger> logger)
    : opts_(std::move(options)), metrics_(std::move(metrics)), logger_(std::move(logger)) {}

agent::~agent() { stop(); }

util::result<json> agent::ask(const std::string& method, const std::string& path, const std::string& body,
                              bool with_certificate, std::optional<std::chrono::milliseconds> read_timeout) {
  std::string failures;
  for (std::size_t attempt = 0; attempt < opts_.masters.size(); ++attempt) {
    const std::string master = opts_.masters[next_master_ % opts_.masters.size()];
    std::unique_ptr<httplib::Client> client;
    if (with_certificate) {
      std::shared_lock identity(identity_mutex_);  // the client loads both files now
      client = std::make_unique<httplib::Client>(master, (opts_.state_dir / cert_file).string(),
                                                 (opts_.state_dir / key_file).string());
    } else {
      client = std::make_unique<httplib::Client>(master);
    }
    client->set_ca_cert_path(trust_file().string());
    client->enable_server_certificate_verification(true);
    client->set_connection_timeout(opts_.request_timeout);
    client->set_read_timeout(read_timeout.value_or(opts_.request_timeout));
    client->set_write_timeout(opts_.request_timeout);
    if (read_timeout) {
      std::lock_guard lock(inflight_mutex_);
      if (stop_) return util::error{"stopping"};
      inflight_ = client.get();
    }
    httplib::Result res = method == "GET"    ? client->Get(path)
                          : method == "PUT" ? client->Put(path, body, "application/json")
                                            : client->Post(path, body, "application/json");
    if (read_timeout) {
      std::lock_guard lock(inflight_mutex_);
      inflight_ = nullptr;
      if (stop_) return util::error{"stopping"};
    }
    if (!res) {
      failures += (failures.empty() ? "" : "; ") + master + ": " + httplib::to_string(res.error());
      ++next_master_;
      continue;
    }
    json answer = json::parse(res->body, nullptr, false);
    if (res->status != 200) {
      const std::string why = answer.is_object() ? answer.value("error", res->body) : res->body;
      if (res->status >= 500) {  // this master cannot answer now; another may
        failures += (failures.empty() ? "" : "; ") + master + ": " + std::to_string(res->status) + " " + why;
        ++next_master_;
        continue;
      }
      return util::error{master + " answered " + std::to_string(res->status) + ": " + why};
    }
    if (!answer.is_object()) return util::error{master + " sent an answer that is not a JSON object"};
    return answer;
  }
  return util::error{"no master answered (" + failures + ")"};
}

util::result<json> agent::request_certificate(const std::string& path, json request, bool with_certificate) {
  auto key = pki::generate_p256_key();
  if (!key) return util::error{key.error_message()};
  auto csr = pki::make_csr_pem(key->get(), opts_.node_name);
  if (!csr) return util::error{csr.error_message()};
  request["csr"] = *csr;
  auto answer = ask("POST", path, request.dump(), with_certificate);
  if (!answer) return util::error{answer.error_message()};
  const std::string certificate = answer->value("certificate", "");
  if (certificate.empty()) return util::error{"the master sent no certificate"};
  // Both files whole under their .new names before either is renamed: a crash between the two
  // renames leaves a pair finish_identity() completes, never a certificate without its key.
  const auto dir = opts_.state_dir;
  // The CA the master sent (over TLS verified with the CA trusted so far): a renewed one has the
  // same key, so it verifies every master, and it ends later.
  const std::string ca = answer->value("ca", "");
  if (auto parsed = pki::certificates_from_pem(ca); parsed && !parsed->empty()) {
    std::error_code ec;
    if (util::read_small_file(dir / cluster_ca_file, ec) != ca) {
      if (auto e = util::write_file_atomic(dir / cluster_ca_file, ca, std::filesystem::perms(0644))) {
        logger_->warn("node: cannot keep the cluster CA the master sent: {}", e.message());
      }
    }
  }
  if (auto e = util::write_file_atomic(dir / (std::string(key_file) + ".new"), pki::to_pem(key->get()),
                                       std::filesystem::perms(0600))) {
    return util::error{"cannot write the node key: " + e.message()};
  }
  if (auto e = util::write_file_atomic(dir / (std::string(cert_file) + ".new"), certificate,
                                       std::filesystem::perms(0644))) {
    return util::error{"cannot write the node certificate: " + e.message()};
  }
  finish_identity();
  return answer;
}

void agent::finish_identity() {
  const auto dir = opts_.state_dir;
  std::error_code ec;
  const auto new_key = dir / (std::string(key_file) + ".new");
  const auto new_cert = dir / (std::string(cert_file) + ".new");
  if (!std::filesystem::exists(new_cert, ec)) {
    std::filesystem::remove(new_key, ec);  // the certificate never came: the key is of no use
    return;
  }
  std::unique_lock identity(identity_mutex_);
  if (std::filesystem::exists(new_key, ec)) {
    std::filesystem::rename(new_key, dir / key_file, ec);
    if (ec) {  // the certificate stays .new: never a certificate beside another key
      logger_->error("node: cannot put the new node key in place: {}", ec.message());
      return;
    }
  }
  std::filesystem::rename(new_cert, dir / cert_file, ec);
  if (ec) logger_->error("node: cannot put the new node certificate in place: {}", ec.message());
  (void)util::sync_directory(dir);
  cert_times_.reset();
}

std::filesystem::path agent::trust_file() const {
  std::error_code ec;
  const auto kept = opts_.state_dir / cluster_ca_file;
  return std::filesystem::exists(kept, ec) ? kept : opts_.ca_file;
}

const std::optional<agent::certificate_times>& agent::certificate_in_use() {
  if (cert_times_) return cert_times_;
  std::error_code ec;
  auto certs = pki::certificates_from_pem(util::read_small_file(opts_.state_dir / cert_file, ec));
  if (ec || !certs || certs->empty()) return cert_times_;
  // Renewal: two thirds of the way from when the certificate came (the file's time; a master
  // dates notBefore back a few minutes against clock skew) to its end.
  const auto v = pki::validity_of(certs->front().get());
  auto start = v.not_before;
  struct stat st {};
  if (::stat((opts_.state_dir / cert_file).c_str(), &st) == 0) {
    start = std::max(start, std::chrono::system_clock::from_time_t(st.st_mtime));
  }
  cert_times_ = certificate_times{start + (v.not_after - start) * 2 / 3, v.not_after};
  return cert_times_;
}

bool agent::certificate_expired() {
  const auto& times = certificate_in_use();
  return times && times->not_after <= std::chrono::system_clock::now();
}

util::status agent::ensure_identity() {
  finish_identity();
  std::error_code ec;
  const bool have = std::filesystem::exists(opts_.state_dir / cert_file, ec) &&
                    std::filesystem::exists(opts_.state_dir / key_file, ec);
  if (have && !certificate_expired()) return util::ok();
  if (have && opts_.token.empty()) {
    return util::error{"the node certificate expired (the agent was off for most of its life): join again with a "
                       "new token (registryd cluster join-token, then --token)"};
  }
  if (have) logger_->warn("node: the node certificate expired; joining again with the token given");
  if (opts_.token.empty()) return util::error{"this node has not joined yet: give the join token (--token)"};
  auto joined = request_certificate("/cluster/v1/join", json{{"token", opts_.token}, {"node", opts_.node_name}}, false);
  if (!joined) return util::error{"cannot join: " + joined.error_message()};
  logger_->info("node: joined the cluster as {}", opts_.node_name);
  return util::ok();
}

void agent::renew_if_due() {
  const auto now = std::chrono::system_clock::now();
  if (!certificate_in_use() || now < cert_times_->renew_at) return;
  auto renewed = request_certificate("/cluster/v1/node/certificate", json::object(), true);
  if (!renewed) {
    logger_->warn("node: the node certificate is due for renewal and could not be renewed: {}", renewed.error_message());
    if (cert_times_) cert_times_->renew_at = now + std::chrono::seconds(30);  // again soon, not on every poll
    return;
  }
  logger_->info("node: renewed the node certificate");
}

void agent::apply(const json& assignment) {
  const std::string version = assignment.value("version", "");
  const std::string mode = assignment.value("mode", "");
  std::vector<std::string> masters;
  for (const auto& m : assignment.value("masters", json::array())) {
    if (m.is_string()) masters.push_back(m.get<std::string>());
  }
  // The balancer first: containerd's new hosts.toml may point at it.
  if (needs_balancer(mode)) {
    if (!balancer_) {
      auto options = opts_.balancer;
      options.backends = masters;
      options.health_ca_file = trust_file();
      auto lb = std::make_unique<balancer::node_balancer>(options, metrics_, logger_);
      if (auto st = lb->start(); !st) {
        logger_->error("node: {}", st.error_message());
      } else {
        balancer_ = std::move(lb);
      }
    } else {
      balancer_->set_backends(masters);
    }
  } else if (balancer_) {
    logger_->info("node: mode {} needs no balancer; draining it", mode.empty() ? "(none)" : mode);
    balancer_->stop(opts_.balancer_drain);
    balancer_.reset();
  }
  if (version == applied_version_) return;
  const json containerd = assignment.value("containerd", json());
  if (containerd.is_object()) {
    containerd::render_options ro;
    ro.out_dir = opts_.containerd_dir;
    auto rendered = containerd::render(containerd, ro);
    if (!rendered) {
      last_error_ = "containerd configuration not applied: " + rendered.error_message();
      logger_->error("node: {}", last_error_);
      return;
    }
    logger_->info("node: containerd configuration for {} applied ({} written, {} removed)", mode,
                  rendered->written.size(), rendered->removed.size());
  }
  if (auto e = util::write_file_atomic(opts_.state_dir / assignment_file, assignment.dump(2))) {
    logger_->error("node: cannot keep the assignment: {}", e.message());
  }
  applied_version_ = version;
  applied_mode_ = mode;
  last_error_.clear();
}

std::vector<std::string> agent::custom_registry_dropins(const std::filesystem::path& containerd_dir) {
  std::vector<std::string> out;
  for (const char* dir : {"conf.d", "conf2.d"}) {
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator(containerd_dir / dir, ec)) {
      const std::string relative = std::string(dir) + "/" + entry.path().filename().string();
      if (relative == containerd::dropin_v1_path || relative == containerd::dropin_v2_path) continue;
      if (!entry.is_regular_file(ec) || entry.path().extension() != ".toml") continue;
      std::ifstream in(entry.path());
      std::stringstream text;
      text << in.rdbuf();
      // A registry section of the CRI plugin, v1 or v2 naming ("...cri".registry, "...cri.v1.images".registry).
      const std::string t = text.str();
      if (t.find(".registry") != std::string::npos || t.find("config_path") != std::string::npos) out.push_back(relative);
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

void agent::report() {
  json backends = json::array();
  if (balancer_) {
    for (const auto& b : balancer_->backends()) {
      backends.push_back({{"address", b.address}, {"healthy", b.healthy}, {"active", b.active}, {"lastFailure", b.last_failure}});
    }
  }
  const json status = {{"version", applied_version_},
                       {"mode", applied_mode_},
                       {"balancer", balancer_ ? json{{"listening", true}, {"masters", backends}} : json{{"listening", false}}},
                       {"customRegistryDropIns", custom_registry_dropins(opts_.containerd_dir)},
                       {"error", last_error_}};
  // Every report is an etcd write that every master's watch sees: sent when it changed, and
  // every report_interval as a heartbeat (reportedAt), not on every poll.
  const std::string text = status.dump();
  const auto now = std::chrono::steady_clock::now();
  if (text == last_report_ && now - last_report_at_ < opts_.report_interval) return;
  if (auto sent = ask("PUT", "/cluster/v1/node/status", text, true); !sent) {
    logger_->debug("node: status not reported: {}", sent.error_message());
    return;
  }
  last_report_ = text;
  last_report_at_ = now;
}

util::status agent::start() {
  if (opts_.masters.empty()) return util::error{"node: at least one master URL is needed"};
  std::error_code ec;
  std::filesystem::create_directories(opts_.state_dir, ec);
  if (ec) return util::error{"node: cannot create " + opts_.state_dir.string() + ": " + ec.message()};
  if (auto st = ensure_identity(); !st) return util::error{"node: " + st.error_message()};
  // The last assignment applied, so the node serves at once, masters reachable or not.
  const std::string kept = util::read_small_file(opts_.state_dir / assignment_file, ec);
  if (!ec) {
    const json assignment = json::parse(kept, nullptr, false);
    if (assignment.is_object()) {
      logger_->info("node: applying the assignment kept from the last run (mode {})", assignment.value("mode", ""));
      apply(assignment);
    }
  }
  thread_ = std::thread([this] { run(); });
  watch_thread_ = std::thread([this] { watch(); });
  return util::ok();
}

void agent::watch() {
  // The version of the last assignment received: a master holds the poll while it is current.
  std::string have;
  while (!stop_) {
    const auto asked = std::chrono::steady_clock::now();
    std::string path = "/cluster/v1/node";
    std::optional<std::chrono::milliseconds> timeout;
    if (opts_.watch_wait.count() > 0 && !have.empty()) {
      path += "?version=" + have + "&wait=" + std::to_string(opts_.watch_wait.count());
      timeout = std::chrono::milliseconds(opts_.watch_wait) + opts_.request_timeout;
    }
    auto assignment = ask("GET", path, "", true, timeout);
    if (stop_) break;
    bool unchanged = false;
    {
      std::lock_guard lock(mutex_);
      if (assignment) {
        const std::string version = assignment->value("version", "");
        unchanged = version == have;
        have = version;
        received_ = std::move(*assignment);
        watch_failure_.clear();
      } else {
        watch_failure_ = assignment.error_message();
      }
      wake_.notify_all();
    }
    // A failure, or an answer that did not wait (a master without long polls): poll at the
    // usual pace instead of at once.
    if (!assignment || (unchanged && std::chrono::steady_clock::now() - asked < opts_.poll_interval)) {
      std::unique_lock lock(mutex_);
      wake_.wait_until(lock, asked + opts_.poll_interval, [this] { return stop_.load(); });
    }
  }
}

void agent::run() {
  std::optional<json> latest;  // the last assignment the watch received
  std::string last_failure;
  auto expiry_said = std::chrono::steady_clock::time_point{};
  while (!stop_) {
    // An expired certificate opens nothing on the masters: say so (hourly), since no request
    // below can succeed until the node joins again.
    if (certificate_expired() && std::chrono::steady_clock::now() - expiry_said > std::chrono::hours(1)) {
      expiry_said = std::chrono::steady_clock::now();
      logger_->error("node: the node certificate expired; restart the agent with a new join token "
                     "(registryd cluster join-token, then --token); keeping the configuration applied last");
    }
    std::string failure;
    {
      std::lock_guard lock(mutex_);
      if (received_) latest = std::move(*received_);
      received_.reset();
      failure = watch_failure_;
    }
    // Applied every round, not only when a new one came: what failed (a balancer that could not
    // listen, a render) is tried again at the poll interval; what is in place costs a compare.
    if (latest) apply(*latest);
    if (failure.empty()) {
      if (!last_failure.empty()) logger_->info("node: the masters answer again");
      last_failure.clear();
      report();
      renew_if_due();
    } else if (failure != last_failure) {
      last_failure = failure;
      logger_->warn("node: {}; keeping the configuration applied last", last_failure);
    }
    std::unique_lock lock(mutex_);
    wake_.wait_for(lock, opts_.poll_interval, [this] { return stop_.load() || received_.has_value(); });
  }
}

void agent::stop() {
  if (stop_.exchange(true)) return;
  {
    std::lock_guard lock(mutex_);
    wake_.notify_all();
  }
  // Ends a long poll now. httplib's stop() only shuts the socket the client has at that
  // moment: a request about to connect is stopped again until the watch has let go of it.
  for (;;) {
    {
      std::lock_guard lock(inflight_mutex_);
      if (inflight_ == nullptr) break;
      inflight_->stop();
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  if (watch_thread_.joinable()) watch_thread_.join();
  if (thread_.joinable()) thread_.join();
  if (balancer_) balancer_->stop(opts_.balancer_drain);
  balancer_.reset();
}

}  // namespace registryd::node
