#include <registryd/cluster/node_api.hpp>

#include <registryd/cluster/membership.hpp>
#include <registryd/oci/base64.hpp>
#include <registryd/oci/digest.hpp>
#include <registryd/pki/certificates.hpp>
#include <registryd/pki/pki_directory.hpp>
#include <registryd/sdk/containerd.hpp>
#include <registryd/util/atomic_file.hpp>

#include <nlohmann/json.hpp>
#include <openssl/crypto.h>
#include <openssl/rand.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <optional>

namespace registryd::cluster {
namespace {

using json = nlohmann::json;

std::string random_hex(std::size_t bytes) {
  std::string raw(bytes, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(raw.data()), static_cast<int>(bytes)) != 1) return {};
  static constexpr char digits[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : raw) {
    out.push_back(digits[c >> 4]);
    out.push_back(digits[c & 15]);
  }
  return out;
}

bool is_hex(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

api_answer refuse(unsigned status, const std::string& why) { return {status, json{{"error", why}}.dump()}; }

std::int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

}  // namespace

util::result<std::string> create_join_token(store& s, std::chrono::seconds ttl) {
  const std::string id = random_hex(3);
  const std::string secret = random_hex(8);
  if (id.empty() || secret.empty()) return util::error{"no random bytes for a token"};
  auto lease = s.grant_lease(ttl);
  if (!lease) return util::error{lease.error_message()};
  const json record = {{"secretSha256", oci::digest_of(secret).str()}, {"expiresAt", unix_now() + ttl.count()}};
  auto done = s.compare_and_swap(join_tokens_prefix + id, 0, record.dump(), *lease);
  if (!done) return util::error{done.error_message()};
  if (!done->swapped) return util::error{"a join token with id " + id + " exists already; try again"};
  return id + "." + secret;
}

util::status redeem_join_token(store& s, const std::string& token) {
  const auto dot = token.find('.');
  if (dot != 6 || token.size() != 23 || !is_hex(token.substr(0, 6)) || !is_hex(token.substr(7))) {
    return util::error{"a join token is <6 hex digits>.<16 hex digits>"};
  }
  const std::string key = join_tokens_prefix + token.substr(0, 6);
  auto found = s.get(key);
  if (!found) return util::error{found.error_message()};
  if (!*found) return util::error{"unknown, expired or spent join token"};
  const json record = json::parse((*found)->value, nullptr, false);
  const std::string want = record.is_object() ? record.value("secretSha256", "") : "";
  const std::string got = oci::digest_of(token.substr(7)).str();
  if (want.size() != got.size() || CRYPTO_memcmp(want.data(), got.data(), got.size()) != 0) {
    return util::error{"unknown, expired or spent join token"};
  }
  if (record.value("expiresAt", std::int64_t{0}) < unix_now()) return util::error{"unknown, expired or spent join token"};
  auto deleted = s.compare_and_delete(key, (*found)->mod_revision);
  if (!deleted) return util::error{deleted.error_message()};
  if (!*deleted) return util::error{"unknown, expired or spent join token"};  // another join won
  return util::ok();
}

bool is_node_name(std::string_view name) noexcept {
  if (name.empty() || name.size() > 63) return false;
  const auto alnum = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
  if (!alnum(name.front()) || !alnum(name.back())) return false;
  return std::all_of(name.begin(), name.end(), [&](char c) { return alnum(c) || c == '-' || c == '.'; });
}

std::optional<std::string> node_of(std::string_view peer_subject) {
  const std::string prefix = "/O=" + std::string(pki::node_organization) + "/CN=";
  if (!peer_subject.starts_with(prefix)) return std::nullopt;
  std::string name(peer_subject.substr(prefix.size()));
  if (!is_node_name(name)) return std::nullopt;
  return name;
}

master_api::master_api(std::shared_ptr<store> s, std::filesystem::path pki_dir, std::function<master_view()> view,
                       std::shared_ptr<spdlog::logger> logger, std::chrono::seconds node_certificate_lifetime)
    : store_(std::move(s)),
      pki_dir_(std::move(pki_dir)),
      view_(std::move(view)),
      logger_(std::move(logger)),
      node_certificate_lifetime_(node_certificate_lifetime) {}

api_answer master_api::handle(const std::string& method, const std::string& path, const std::string& peer_subject,
                              const std::string& peer_serial, const std::string& remote_addr, const std::string& body,
                              const std::multimap<std::string, std::string>& params, bool resumed) const {
  if (path == "/cluster/v1/join") {
    if (method != "POST") return refuse(405, "POST a join request here");
    return join(remote_addr, body);
  }
  if (path != "/cluster/v1/node" && path != "/cluster/v1/node/status" && path != "/cluster/v1/node/certificate") {
    return refuse(404, "no such endpoint");
  }
  const auto node = node_of(peer_subject);
  if (!node) return refuse(401, "a node certificate of this cluster is needed (join first)");
  if (path == "/cluster/v1/node") {
    if (method != "GET") return refuse(405, "GET the node's assignment here");
    return assignment(*node, params, resumed);
  }
  if (path == "/cluster/v1/node/certificate") {
    if (method != "POST") return refuse(405, "POST a certificate request here");
    return renew(*node, peer_serial, remote_addr, body);
  }
  if (method != "PUT") return refuse(405, "PUT the node's status here");
  return status(*node, body);
}

api_answer master_api::join(const std::string& remote_addr, const std::string& body) const {
  const json request = json::parse(body, nullptr, false);
  if (!request.is_object()) return refuse(400, "the join request must be a JSON object");
  const std::string node = request.value("node", "");
  const std::string token = request.value("token", "");
  const std::string csr = request.value("csr", "");
  if (!is_node_name(node)) {
    return refuse(400, "node: must be 1 to 63 characters of a-z, 0-9, '-' and '.', starting and ending with a "
                       "letter or digit");
  }
  if (auto key = pki::public_key_of_csr(csr); !key) return refuse(400, "csr: " + key.error_message());
  if (auto spent = redeem_join_token(*store_, token); !spent) {
    logger_->warn("cluster: join of node {} from {} refused: {}", node, remote_addr, spent.error_message());
    return refuse(401, spent.error_message());
  }
  return issue(node, csr, remote_addr, "joined");
}

api_answer master_api::renew(const std::string& node, const std::string& peer_serial, const std::string& remote_addr,
                              const std::string& body) const {
  const json request = json::parse(body, nullptr, false);
  if (!request.is_object()) return refuse(400, "the certificate request must be a JSON object");
  const std::string csr = request.value("csr", "");
  if (auto key = pki::public_key_of_csr(csr); !key) return refuse(400, "csr: " + key.error_message());
  // Only a node the cluster knows: its record is written when it joins.
  auto known = store_->get(nodes_prefix + node);
  if (!known) return refuse(503, "the cluster store cannot be read: " + known.error_message());
  if (!*known) return refuse(403, "node " + node + " is not a member of this cluster: join it again with a token");
  // Only the latest certificate renews: one the node replaced already (or a copy of an old
  // key) cannot keep buying fresh ones.
  const json record = json::parse((*known)->value, nullptr, false);
  const std::string latest = record.is_object() ? record.value("serial", "") : "";
  if (latest.empty() || peer_serial != latest) {
    logger_->warn("cluster: renewal for node {} from {} refused: certificate serial {} is not its latest ({})", node,
                  remote_addr, peer_serial.empty() ? "(none)" : peer_serial, latest);
    return refuse(403, "this certificate of node " + node + " was replaced by a newer one: only the latest renews");
  }
  return issue(node, csr, remote_addr, "renewed its certificate");
}

api_answer master_api::issue(const std::string& node, const std::string& csr, const std::string& remote_addr,
                             const std::string& what) const {
  auto key = pki::public_key_of_csr(csr);
  if (!key) return refuse(400, "csr: " + key.error_message());
  std::error_code ec;
  const std::string ca_pem = util::read_small_file(pki_dir_ / pki::ca_cert_file, ec);
  const std::string ca_key_pem = ec ? "" : util::read_small_file(pki_dir_ / pki::ca_key_file, ec);
  auto ca = pki::certificates_from_pem(ca_pem);
  auto ca_key = pki::private_key_from_pem(ca_key_pem);
  if (ec || !ca || !ca_key) return refuse(500, "this master cannot read the cluster CA");
  const auto now = pki::clock::now();
  auto cert = pki::issue_node_certificate(key->get(), node, ca->front().get(), ca_key->get(),
                                          {now - std::chrono::minutes(5), now + node_certificate_lifetime_});
  if (!cert) return refuse(500, cert.error_message());
  json record = {{"node", node}, {"from", remote_addr}, {"serial", pki::serial_hex(cert->get())},
                 {"certificateUntil", std::chrono::duration_cast<std::chrono::seconds>(
                                          (now + node_certificate_lifetime_).time_since_epoch())
                                          .count()}};
  record[what == "joined" ? "joinedAt" : "renewedAt"] = unix_now();
  if (auto earlier = store_->get(nodes_prefix + node); earlier && *earlier && what != "joined") {
    const json before = json::parse((*earlier)->value, nullptr, false);
    if (before.is_object() && before.contains("joinedAt")) record["joinedAt"] = before["joinedAt"];
  }
  if (auto st = overwrite(*store_, nodes_prefix + node, record.dump()); !st) {
    // A renewed certificate that is not recorded could never renew again: none is handed out.
    if (what != "joined") return refuse(503, "the cluster store cannot be written: " + st.error_message());
    logger_->warn("cluster: node {} {} but is not recorded: {}", node, what, st.error_message());
  }
  logger_->info("cluster: node {} {} from {} (certificate serial {})", node, what, remote_addr,
                pki::serial_hex(cert->get()));
  return {200, json{{"certificate", pki::to_pem(cert->get())}, {"ca", ca_pem}}.dump()};
}

util::result<std::string> master_api::assignment_version(bool fresh) const {
  auto current = current_assignment(fresh);
  if (!current) return util::error{current.error_message()};
  return (*current)["version"].get<std::string>();
}

api_answer master_api::assignment(const std::string& node, const std::multimap<std::string, std::string>& params,
                                  bool resumed) const {
  const auto param = [&](const char* name) -> std::optional<std::string> {
    const auto it = params.find(name);
    return it == params.end() ? std::nullopt : std::optional<std::string>(it->second);
  };
  std::chrono::seconds wait{0};
  if (const auto w = param("wait")) {
    unsigned seconds = 0;
    const auto [end, ec] = std::from_chars(w->data(), w->data() + w->size(), seconds);
    if (ec != std::errc{} || end != w->data() + w->size()) {
      return refuse(400, "wait: a whole number of seconds, at most " + std::to_string(max_assignment_wait.count()));
    }
    wait = std::min<std::chrono::seconds>(std::chrono::seconds(seconds), max_assignment_wait);
  }
  auto out = current_assignment(false);
  if (!out) return refuse(503, out.error_message());
  // A long poll for a version the node has already: held until it changes (or `wait` passes).
  if (!resumed && wait.count() > 0 && param("version") == (*out)["version"].get<std::string>()) {
    return {200, {}, wait};
  }
  (*out)["node"] = node;
  return {200, out->dump()};
}

util::result<json> master_api::current_assignment(bool fresh) const {
  // Every parked poll wakes at once after a change and asks again: answered from what the
  // watch just computed, not with two store reads each.
  if (!fresh) {
    std::lock_guard lock(cache_mutex_);
    if (cached_ && std::chrono::steady_clock::now() - cached_at_ < assignment_cache_age) return *cached_;
  }
  auto computed = compute_assignment();
  if (computed) {
    std::lock_guard lock(cache_mutex_);
    cached_ = *computed;
    cached_at_ = std::chrono::steady_clock::now();
  }
  return computed;
}

util::result<json> master_api::compute_assignment() const {
  const auto view = view_();
  auto masters = list_masters(*store_);
  if (!masters) return util::error{"the cluster store cannot be read: " + masters.error_message()};
  json addresses = json::array();
  for (const auto& m : *masters) addresses.push_back(m.address);
  json containerd = nullptr;
  if (!view.containerd_description.empty()) {
    containerd = json::parse(view.containerd_description, nullptr, false);
    if (containerd.is_discarded()) return util::error{"the mode described containerd with invalid JSON"};
  }
  // Stock containerd has no credentials in hosts.toml, but it sends a mirror's [header] with
  // every request to it: the mirrors that lead to the masters (through the node balancer on
  // 127.0.0.1, or straight to a master's address as Direct mode's do) get the read-only account
  // as a static Basic Authorization header. Mirrors elsewhere (an upstream) never see it.
  if (containerd.is_object()) {
    auto ro = account_password(*store_, "ro");
    if (!ro) return util::error{"the read-only account cannot be read: " + ro.error_message()};
    const std::string header = "Basic " + oci::base64_encode("ro:" + *ro);
    auto hosts = containerd.find("hosts");
    if (hosts != containerd.end() && hosts->is_array()) {
      for (auto& host : *hosts) {
        auto mirrors = host.is_object() ? host.find("mirrors") : host.end();
        if (!host.is_object() || mirrors == host.end() || !mirrors->is_array()) continue;
        for (auto& mirror : *mirrors) {
          if (!mirror.is_object()) continue;
          const std::string url = mirror.value("url", "");
          const auto to = [&](const std::string& address) {
            const std::string base = "https://" + address;
            return url == base || url.starts_with(base + "/");
          };
          const bool to_masters = sdk::containerd::is_node_balancer_url(url) ||
                                  std::any_of(masters->begin(), masters->end(),
                                              [&](const master_record& m) { return to(m.address); });
          if (to_masters && !mirror.contains("auth")) {
            mirror["headers"]["Authorization"] = json::array({header});
          }
        }
      }
    }
  }
  json out = {{"mode", view.mode}, {"masters", addresses}, {"containerd", containerd}};
  // The version a node acknowledges: the same for every node given the same assignment.
  out["version"] = oci::digest_of(out.dump()).str();
  return out;
}

api_answer master_api::status(const std::string& node, const std::string& body) const {
  json report = json::parse(body, nullptr, false);
  if (!report.is_object()) return refuse(400, "the status must be a JSON object");
  report["node"] = node;
  report["reportedAt"] = unix_now();
  if (auto st = overwrite(*store_, node_status_prefix + node, report.dump()); !st) return refuse(503, st.error_message());
  return {200, R"({"stored":true})"};
}

assignment_watch::assignment_watch(std::shared_ptr<const master_api> api, std::chrono::milliseconds interval,
                                   std::function<void()> changed)
    : api_(std::move(api)), interval_(interval), changed_(std::move(changed)), thread_([this] { run(); }) {}

assignment_watch::~assignment_watch() {
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void assignment_watch::run() {
  std::string last;
  std::unique_lock lock(mutex_);
  while (!stop_) {
    lock.unlock();
    // A store that cannot be read, or a record in it that does not parse, changes nothing here:
    // the parked polls end by their deadline and are answered (or refused) from what the store
    // says then. Nothing thrown may end the thread, and with it the process.
    try {
      if (auto version = api_->assignment_version(true); version && *version != last) {
        changed_();  // also the first time: a poll may have parked on a version from before
        last = *version;
      }
    } catch (const std::exception&) {
    }
    lock.lock();
    wake_.wait_for(lock, interval_, [this] { return stop_; });
  }
}

}  // namespace registryd::cluster
