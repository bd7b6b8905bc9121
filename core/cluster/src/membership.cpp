#include <registryd/cluster/membership.hpp>

#include <registryd/auth/password_hash.hpp>
#include <registryd/auth/users_file.hpp>
#include <registryd/pki/certificates.hpp>
#include <registryd/pki/pki_directory.hpp>
#include <registryd/pki/token_signer.hpp>
#include <registryd/util/atomic_file.hpp>

#include <nlohmann/json.hpp>
#include <openssl/rand.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <array>

namespace registryd::cluster {
namespace {

using json = nlohmann::json;

// 16 characters of [A-Za-z0-9], uniformly (bytes past the last whole multiple of 62 are
// drawn again).
std::string random_password() {
  static constexpr std::string_view alphabet =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  std::string out;
  while (out.size() < 16) {
    std::array<unsigned char, 32> bytes{};
    if (RAND_bytes(bytes.data(), static_cast<int>(bytes.size())) != 1) continue;
    for (unsigned char b : bytes) {
      if (b < 248 && out.size() < 16) out.push_back(alphabet[b % alphabet.size()]);
    }
  }
  return out;
}

std::int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// The users file text for `users` (name, bcrypt hash, access).
std::string users_yaml(const YAML::Node& users) {
  YAML::Node doc;
  doc["users"] = users;
  YAML::Emitter out;
  out << doc;
  return std::string(out.c_str()) + "\n";
}

util::result<std::string> users_from_accounts(const std::vector<account>& accounts) {
  YAML::Node users(YAML::NodeType::Sequence);
  for (const auto& a : accounts) {
    auto hash = auth::make_bcrypt_hash(a.password);
    if (!hash) return util::error{"hashing the password of " + a.name + ": " + hash.error_message()};
    YAML::Node u;
    u["name"] = a.name;
    u["password"] = *hash;
    u["access"] = a.access;
    users.push_back(u);
  }
  return users_yaml(users);
}

util::result<shared_pki> pki_from_json(const std::string& text) {
  const json j = json::parse(text, nullptr, false);
  if (!j.is_object()) return util::error{std::string(pki_key) + " is not a JSON object"};
  shared_pki p;
  p.ca_crt = j.value("caCrt", "");
  p.ca_key = j.value("caKey", "");
  p.token_crt = j.value("tokenCrt", "");
  p.token_key = j.value("tokenKey", "");
  if (p.ca_crt.empty() || p.ca_key.empty() || p.token_crt.empty() || p.token_key.empty()) {
    return util::error{std::string(pki_key) + " lacks one of caCrt, caKey, tokenCrt, tokenKey"};
  }
  return p;
}

}  // namespace

std::vector<account> generate_accounts() {
  return {{"ro", random_password(), "read-only"},
          {"rw", random_password(), "read-write"},
          {"mirror-puller", random_password(), "mirror-puller"},
          {"mirror-pusher", random_password(), "mirror-pusher"}};
}

util::result<shared_pki> read_pki_dir(const std::filesystem::path& dir) {
  shared_pki p;
  const std::pair<std::string*, const char*> files[] = {{&p.ca_crt, pki::ca_cert_file},
                                                        {&p.ca_key, pki::ca_key_file},
                                                        {&p.token_crt, pki::token_cert_file},
                                                        {&p.token_key, pki::token_key_file}};
  for (const auto& [text, name] : files) {
    std::error_code ec;
    *text = util::read_small_file(dir / name, ec);
    if (ec) return util::error{"cannot read " + (dir / name).string() + ": " + ec.message()};
  }
  return p;
}

util::result<bool> install_pki(const shared_pki& wanted, const std::filesystem::path& dir) {
  auto current = read_pki_dir(dir);
  const shared_pki have = current ? *current : shared_pki{};
  bool changed = false;
  // Keys before the certificates that need them, as pki::ensure writes them.
  const std::tuple<const std::string*, const std::string*, const char*, std::filesystem::perms> files[] = {
      {&wanted.ca_key, &have.ca_key, pki::ca_key_file, std::filesystem::perms(0600)},
      {&wanted.ca_crt, &have.ca_crt, pki::ca_cert_file, std::filesystem::perms(0644)},
      {&wanted.token_key, &have.token_key, pki::token_key_file, std::filesystem::perms(0600)},
      {&wanted.token_crt, &have.token_crt, pki::token_cert_file, std::filesystem::perms(0644)}};
  for (const auto& [want, had, name, mode] : files) {
    if (*want == *had) continue;
    if (auto ec = util::write_file_atomic(dir / name, *want, mode)) {
      return util::error{"cannot write " + (dir / name).string() + ": " + ec.message()};
    }
    changed = true;
  }
  return changed;
}

namespace {

std::string pki_json(const shared_pki& p) {
  return json{{"caCrt", p.ca_crt}, {"caKey", p.ca_key}, {"tokenCrt", p.token_crt}, {"tokenKey", p.token_key}}.dump();
}

// Whether `local` should replace `stored` (see sync_pki).
util::result<bool> newer_than(const shared_pki& local, const shared_pki& stored, std::chrono::system_clock::time_point now) {
  auto mine = pki::certificates_from_pem(local.ca_crt);
  auto theirs = pki::certificates_from_pem(stored.ca_crt);
  if (!mine || mine->empty()) return util::error{"this master's CA cannot be read"};
  if (!theirs || theirs->empty()) return true;  // a stored CA that cannot be read is replaced
  auto my_key = pki::private_key_from_pem(local.ca_key);
  if (!my_key) return util::error{"this master's CA key cannot be read"};
  const auto mv = pki::validity_of(mine->front().get());
  const auto tv = pki::validity_of(theirs->front().get());
  if (pki::key_matches(theirs->front().get(), my_key->get())) return mv.not_after > tv.not_after;
  return tv.not_after <= now && mv.not_before <= now && now < mv.not_after;
}

}  // namespace

util::result<shared_pki> sync_pki(store& s, const shared_pki& local, std::chrono::system_clock::time_point now,
                                  bool* published) {
  if (published != nullptr) *published = false;
  // Only the CA is kept as one: each master renews its token signer on its own (tokens carry
  // their certificate, which chains to the CA, so every master accepts every signer).
  for (int attempt = 0; attempt < 10; ++attempt) {
    auto current = s.get(pki_key);
    if (!current) return util::error{current.error_message()};
    if (!*current) return util::error{std::string(pki_key) + " is missing: the cluster was not created"};
    auto stored = pki_from_json((*current)->value);
    if (stored && stored->ca_crt == local.ca_crt && stored->ca_key == local.ca_key) return local;
    shared_pki to_store = local;
    if (stored) {
      auto newer = newer_than(local, *stored, now);
      if (!newer) return util::error{newer.error_message()};
      if (!*newer) {
        shared_pki wanted = local;
        wanted.ca_crt = stored->ca_crt;
        wanted.ca_key = stored->ca_key;
        return wanted;
      }
      to_store.token_crt = stored->token_crt;  // the store's signer stays what joining masters take
      to_store.token_key = stored->token_key;
    }
    auto swapped = s.compare_and_swap(pki_key, (*current)->mod_revision, pki_json(to_store));
    if (!swapped) return util::error{swapped.error_message()};
    if (swapped->swapped) {
      if (published != nullptr) *published = true;
      return local;
    }
    // Another master wrote first: compare with what it wrote.
  }
  return util::error{std::string(pki_key) + " keeps changing; try again"};
}

util::result<join_result> join(store& s, const shared_pki& candidate) {
  const auto accounts = generate_accounts();
  auto users = users_from_accounts(accounts);
  if (!users) return util::error{users.error_message()};
  json passwords = json::object();
  for (const auto& a : accounts) passwords[a.name] = {{"password", a.password}, {"access", a.access}};
  auto done = s.create_all(pki_key, {{pki_key, pki_json(candidate)},
                                     {accounts_key, passwords.dump()},
                                     {users_key, *users}});
  if (!done) return util::error{done.error_message()};
  if (done->swapped) return join_result{true, candidate};
  if (!done->current) return util::error{std::string(pki_key) + " vanished while joining"};
  auto pki = pki_from_json(done->current->value);
  if (!pki) return util::error{pki.error_message()};
  return join_result{false, std::move(*pki)};
}

util::status set_user(store& s, const std::string& name, const std::string& password,
                      const std::string& access) {
  if (!auth::parse_account_kind(access)) {
    return util::error{"access must be read-only, read-write, mirror-puller or mirror-pusher, got \"" +
                       access + "\""};
  }
  if (password.size() < 8) return util::error{"the password must have at least 8 characters"};
  auto hash = auth::make_bcrypt_hash(password);
  if (!hash) return util::error{hash.error_message()};
  for (int attempt = 0; attempt < 20; ++attempt) {
    auto current = s.get(users_key);
    if (!current) return util::error{current.error_message()};
    if (!*current) return util::error{"the cluster has no users yet: start a master first"};
    YAML::Node doc = YAML::Load((*current)->value);
    YAML::Node users(YAML::NodeType::Sequence);
    bool found = false;
    for (const auto& u : doc["users"]) {
      YAML::Node copy = YAML::Clone(u);
      if (copy["name"].as<std::string>("") == name) {
        copy["password"] = *hash;
        copy["access"] = access;
        found = true;
      }
      users.push_back(copy);
    }
    if (!found) {
      YAML::Node u;
      u["name"] = name;
      u["password"] = *hash;
      u["access"] = access;
      users.push_back(u);
    }
    const std::string text = users_yaml(users);
    if (auto checked = auth::parse_users(text); !checked) return util::error{checked.error_message()};
    auto swapped = s.compare_and_swap(users_key, (*current)->mod_revision, text);
    if (!swapped) return util::error{swapped.error_message()};
    if (swapped->swapped) return util::ok();
  }
  return util::error{"the users changed under us 20 times in a row; try again"};
}

mirrored_file users_file_mirror(const std::filesystem::path& path) {
  return {users_key, path, [](const std::string& yaml) -> std::optional<std::string> {
            if (auto checked = auth::parse_users(yaml); !checked) return checked.error_message();
            return std::nullopt;
          }};
}

util::status overwrite(store& s, const std::string& key, const std::string& value, lease_id lease) {
  for (int attempt = 0; attempt < 5; ++attempt) {
    auto current = s.get(key);
    if (!current) return util::error{current.error_message()};
    auto done = s.compare_and_swap(key, *current ? (*current)->mod_revision : 0, value, lease);
    if (!done) return util::error{done.error_message()};
    if (done->swapped) return util::ok();
  }
  return util::error{key + " keeps changing under us: is another writer using it?"};
}

util::result<bool> store_config(store& s, const std::string& yaml, std::int64_t expected) {
  auto done = s.compare_and_swap(config_key, expected, yaml);
  if (!done) return util::error{done.error_message()};
  return done->swapped;
}

util::result<std::string> account_password(store& s, const std::string& name) {
  auto current = s.get(accounts_key);
  if (!current) return util::error{current.error_message()};
  if (!*current) return util::error{"the cluster has no accounts yet: start a master first"};
  const json j = json::parse((*current)->value, nullptr, false);
  if (!j.is_object() || !j.contains(name)) return util::error{"no generated account named " + name};
  return j[name].value("password", "");
}

std::string to_json(const master_record& r) {
  return json{{"nodeIP", r.node_ip},
              {"address", r.address},
              {"mode", r.mode},
              {"certificateNotAfter", r.certificate_not_after},
              {"startedAt", r.started_at}}
      .dump();
}

util::result<master_record> master_from_json(const std::string& text) {
  const json j = json::parse(text, nullptr, false);
  if (!j.is_object()) return util::error{"a master record is not a JSON object"};
  master_record r;
  r.node_ip = j.value("nodeIP", "");
  r.address = j.value("address", "");
  r.mode = j.value("mode", "");
  r.certificate_not_after = j.value("certificateNotAfter", std::int64_t{0});
  r.started_at = j.value("startedAt", std::int64_t{0});
  return r;
}

util::result<std::vector<master_record>> list_masters(store& s) {
  auto found = s.list(masters_prefix);
  if (!found) return util::error{found.error_message()};
  std::vector<master_record> out;
  for (const auto& e : found->first) {
    auto r = master_from_json(e.value);
    if (!r) return util::error{e.key + ": " + r.error_message()};
    out.push_back(std::move(*r));
  }
  return out;
}

// --- master_link --------------------------------------------------------------------------

master_link::master_link(std::shared_ptr<store> s, master_record self, link_options options,
                         std::shared_ptr<spdlog::logger> logger)
    : store_(std::move(s)), opts_(std::move(options)), logger_(std::move(logger)), self_(std::move(self)) {
  if (self_.started_at == 0) self_.started_at = unix_now();
}

master_link::~master_link() { stop(); }

void master_link::write_mirrored(const mirrored_file& f, const entry& e) {
  if (f.check) {
    if (auto why = f.check(e.value)) {
      logger_->error("cluster: {} not taken: {}", f.key, *why);
      return;
    }
  }
  if (auto ec = util::write_file_atomic(f.path, e.value, std::filesystem::perms(0600))) {
    logger_->error("cluster: cannot write {}: {}", f.path.string(), ec.message());
    return;
  }
  logger_->info("cluster: {} changed (revision {})", f.key, e.mod_revision);
}

void master_link::note_master(const entry& e, bool deleted) {
  if (!e.key.starts_with(masters_prefix) || e.key == std::string(masters_prefix) + self_.node_ip) return;
  std::lock_guard lock(mutex_);
  if (deleted) {
    live_masters_.erase(e.key);
    return;
  }
  auto r = master_from_json(e.value);
  if (!r || r->address.empty() || r->node_ip.empty()) {
    logger_->warn("cluster: {} is not a usable master record", e.key);
    return;
  }
  live_masters_[e.key] = std::move(*r);
}

std::vector<std::string> master_link::peer_addresses() const {
  std::lock_guard lock(mutex_);
  std::vector<std::string> out;
  for (const auto& [key, r] : live_masters_) out.push_back(r.address);
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<std::string> master_link::master_ips() const {
  std::lock_guard lock(mutex_);
  std::vector<std::string> out{self_.node_ip};
  for (const auto& [key, r] : live_masters_) out.push_back(r.node_ip);
  std::sort(out.begin(), out.end());
  return out;
}

util::status master_link::start() {
  auto all = store_->list(cluster_prefix);
  if (!all) return util::error{all.error_message()};
  bool have_users = false;
  for (const auto& e : all->first) {
    have_users |= e.key == users_key;
    note_master(e, false);
    for (const auto& f : opts_.files) {
      if (f.key != e.key) continue;
      if (f.check) {
        if (auto why = f.check(e.value)) return util::error{e.key + " is not usable: " + *why};
      }
      if (auto ec = util::write_file_atomic(f.path, e.value, std::filesystem::perms(0600))) {
        return util::error{"cannot write " + f.path.string() + ": " + ec.message()};
      }
    }
  }
  if (!have_users) return util::error{std::string(users_key) + " is missing: the cluster was not bootstrapped"};
  mirror_revision_ = all->second;
  register_thread_ = std::thread([this] { register_loop(); });
  mirror_done_ = false;
  mirror_thread_ = std::thread([this] { mirror_loop(); });
  return util::ok();
}

void master_link::stop() {
  if (stop_.exchange(true)) return;
  {
    std::lock_guard lock(mutex_);
    wake_.notify_all();
  }
  // A watch that was opening its connection when interrupt_watches() ran has no socket to
  // shut yet and would sit out its idle timeout: interrupt again until the watch has returned.
  if (mirror_thread_.joinable()) {
    std::unique_lock lock(mutex_);
    while (!mirror_done_) {
      lock.unlock();
      store_->interrupt_watches();
      lock.lock();
      wake_.wait_for(lock, std::chrono::milliseconds(100), [this] { return mirror_done_; });
    }
  }
  if (register_thread_.joinable()) register_thread_.join();
  if (mirror_thread_.joinable()) mirror_thread_.join();
}

void master_link::update(const std::string& mode, std::int64_t certificate_not_after) {
  std::lock_guard lock(mutex_);
  if (self_.mode == mode && self_.certificate_not_after == certificate_not_after) return;
  self_.mode = mode;
  self_.certificate_not_after = certificate_not_after;
  record_dirty_ = true;
  wake_.notify_all();
}

void master_link::publish_state(const std::string& state_json) {
  std::lock_guard lock(mutex_);
  if (state_json == state_json_) return;
  state_json_ = state_json;
  state_dirty_ = true;
  wake_.notify_all();
}

util::status master_link::put_state() {
  std::string value;
  {
    std::lock_guard lock(mutex_);
    value = state_json_;
    state_dirty_ = false;
  }
  return overwrite(*store_, std::string(states_prefix) + self_.node_ip, value, 0);
}

util::status master_link::put_record(lease_id lease) {
  const std::string key = std::string(masters_prefix) + self_.node_ip;
  std::string value;
  {
    std::lock_guard lock(mutex_);
    value = to_json(self_);
    record_dirty_ = false;
  }
  return overwrite(*store_, key, value, lease);
}

void master_link::register_loop() {
  lease_id lease = 0;
  std::string last_error;
  const auto report = [&](const std::string& what) {
    if (what != last_error) logger_->warn("cluster: {}", what);
    last_error = what;
  };
  while (!stop_) {
    if (lease == 0) {
      auto granted = store_->grant_lease(opts_.lease_ttl);
      if (granted) {
        lease = *granted;
        if (auto st = put_record(lease); !st) {
          report("cannot register this master: " + st.error_message());
        } else {
          if (!last_error.empty()) logger_->info("cluster: registered again in {}", store_->describe());
          last_error.clear();
        }
      } else {
        report("cannot get a lease: " + granted.error_message());
      }
    } else if (auto st = store_->keep_alive(lease); !st) {
      report("lost the registration lease (" + st.error_message() + "); registering again");
      lease = 0;
      continue;
    } else {
      bool dirty = false;
      {
        std::lock_guard lock(mutex_);
        dirty = record_dirty_;
      }
      if (dirty) {
        if (auto st2 = put_record(lease); !st2) report("cannot update this master's record: " + st2.error_message());
      }
    }
    bool state_dirty = false;
    {
      std::lock_guard lock(mutex_);
      state_dirty = state_dirty_ && !state_json_.empty();
    }
    if (state_dirty) {
      if (auto st3 = put_state(); !st3) {
        report("cannot publish this master's state: " + st3.error_message());
        std::lock_guard lock(mutex_);
        state_dirty_ = true;  // tried again on the next round
      }
    }
    std::unique_lock lock(mutex_);
    wake_.wait_for(lock, opts_.renew_every, [this] { return stop_.load() || record_dirty_ || state_dirty_; });
  }
  if (lease != 0) {
    if (auto st = store_->revoke(lease); !st) logger_->warn("cluster: cannot revoke the lease: {}", st.error_message());
  }
}

void master_link::mirror_loop() {
  while (!stop_) {
    auto st = store_->watch(
        cluster_prefix, mirror_revision_,
        [this](const std::vector<watch_event>& events) {
          for (const auto& ev : events) {
            mirror_revision_ = ev.item.mod_revision;
            note_master(ev.item, ev.deleted);
            if (ev.deleted) continue;
            for (const auto& f : opts_.files) {
              if (f.key == ev.item.key) write_mirrored(f, ev.item);
            }
          }
          return true;
        },
        stop_);
    if (!st && !stop_) {
      // The history is gone: read everything afresh and watch from there.
      logger_->warn("cluster: {}", st.error_message());
      if (auto all = store_->list(cluster_prefix)) {
        {
          std::lock_guard lock(mutex_);
          live_masters_.clear();
        }
        for (const auto& e : all->first) {
          note_master(e, false);
          for (const auto& f : opts_.files) {
            if (f.key == e.key) write_mirrored(f, e);
          }
        }
        mirror_revision_ = all->second;
      }
      std::unique_lock lock(mutex_);
      wake_.wait_for(lock, std::chrono::seconds(1), [this] { return stop_.load(); });
    }
  }
  std::lock_guard lock(mutex_);
  mirror_done_ = true;
  wake_.notify_all();
}

}  // namespace registryd::cluster
