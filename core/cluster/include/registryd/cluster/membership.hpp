// What the masters of one cluster share through the store, and how a master takes part
// (docs/cluster.md):
//
//   /registryd/v1/pki            the cluster CA and token signer (certificates and keys, PEM)
//   /registryd/v1/accounts       the generated accounts' passwords in clear, for the masters
//                                to hand to what needs them (nodes get ro's); only masters read
//                                the store
//   /registryd/v1/users          the users file every master serves (YAML, bcrypt hashes)
//   /registryd/v1/masters/<ip>   one record per running master, under a lease: it vanishes
//                                when the master stops renewing it
//   /registryd/v1/config         the desired ModuleConfig (YAML), stored by `registryd apply`
//                                after its checks; every master applies it
//   /registryd/v1/state/<ip>     each master's switching state (state.json), what `apply`
//                                checks the switching rules against; kept when a master dies
//
// The first three are created together, exactly once, by whichever master gets there first
// (a create-only transaction): masters that start at the same moment all end up with the
// winner's CA and accounts, with no consensus of our own.
#pragma once

#include <registryd/cluster/store.hpp>
#include <registryd/util/result.hpp>

#include <spdlog/logger.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <optional>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace registryd::cluster {

inline constexpr const char* pki_key = "/registryd/v1/pki";
inline constexpr const char* accounts_key = "/registryd/v1/accounts";
inline constexpr const char* users_key = "/registryd/v1/users";
inline constexpr const char* masters_prefix = "/registryd/v1/masters/";
inline constexpr const char* config_key = "/registryd/v1/config";
inline constexpr const char* states_prefix = "/registryd/v1/state/";
inline constexpr const char* cluster_prefix = "/registryd/v1/";

// The generated accounts (FACTS.md: ro, rw, mirror-puller, mirror-pusher).
struct account {
  std::string name;
  std::string password;
  std::string access;  // as in the users file: read-only, read-write, mirror-puller, mirror-pusher
};
std::vector<account> generate_accounts();

// The CA and token signer, PEM, as the PKI directory keeps them (pki_directory.hpp,
// token_signer.hpp).
struct shared_pki {
  std::string ca_crt, ca_key, token_crt, token_key;
  friend bool operator==(const shared_pki&, const shared_pki&) = default;
};
util::result<shared_pki> read_pki_dir(const std::filesystem::path& dir);
// Writes the files of `pki` that differ into `dir` (keys 0600, each atomically). True when
// anything was written: the serving certificate must then be re-issued from the new CA.
util::result<bool> install_pki(const shared_pki& pki, const std::filesystem::path& dir);

// Keeps one CA for the cluster when masters renew it (the token signer is each master's own
// to renew: it is never compared nor replaced here). Each master renews its copy of the CA
// (same key, new validity) at two thirds of its life, on its own; then this compares its copy
// with the store's and the newer wins:
// - the same CA key: the certificate that ends later is newer;
// - different keys (a master re-created an expired CA): the store's wins while its CA is
//   valid at `now`; an expired stored CA is replaced by a valid local one.
// A newer local copy is written to the store (compare-and-swap: of two masters renewing at
// once, one is stored and the other takes it). Returns what the master must hold: `local`
// when its CA was stored (then `published` is set, when given) or equal, else `local` with
// the store's CA (install it with install_pki).
util::result<shared_pki> sync_pki(store& s, const shared_pki& local, std::chrono::system_clock::time_point now,
                                  bool* published = nullptr);

struct join_result {
  bool created = false;  // this call created the cluster's secrets
  shared_pki pki;
};

// Creates the cluster's PKI, accounts and users from `candidate` and fresh passwords when the
// store has none; otherwise returns what is there. Exactly once across all masters.
util::result<join_result> join(store& s, const shared_pki& candidate);

// The users file text with `name` added or changed (bcrypt of `password`), written with
// compare-and-swap so that concurrent changes are not lost. `access` as in the users file.
util::status set_user(store& s, const std::string& name, const std::string& password,
                      const std::string& access);
// The clear password of a generated account, from /registryd/v1/accounts.
util::result<std::string> account_password(store& s, const std::string& name);

// One running master, as it registers itself.
struct master_record {
  std::string node_ip;
  std::string address;     // host:port of its registry front door
  std::string mode;        // the mode it serves ("" while none)
  std::int64_t certificate_not_after = 0;  // Unix seconds
  std::int64_t started_at = 0;             // Unix seconds
};
std::string to_json(const master_record& r);
util::result<master_record> master_from_json(const std::string& text);
// Every master registered now.
util::result<std::vector<master_record>> list_masters(store& s);

// Writes `value` to a key that has one writer (a master's record, a node's status): reads its
// revision and swaps, a few times if something raced.
util::status overwrite(store& s, const std::string& key, const std::string& value, lease_id lease = 0);

// Stores `yaml` as the desired ModuleConfig if the key's revision is still `expected` (what
// the caller read before checking it; 0: none stored yet). False when it changed meanwhile.
util::result<bool> store_config(store& s, const std::string& yaml, std::int64_t expected);

// A key of the store kept as a file for the host: written atomically whenever it changes,
// after `check` (nullopt: fine; else why not) accepts the value.
struct mirrored_file {
  std::string key;
  std::filesystem::path path;
  std::function<std::optional<std::string>(const std::string& value)> check;
};

// The users file kept from users_key, checked as the host checks a users file.
mirrored_file users_file_mirror(const std::filesystem::path& path);

struct link_options {
  std::chrono::seconds lease_ttl{10};
  std::chrono::seconds renew_every{3};
  // What the host reads from files: the users file (users_key) and the desired ModuleConfig
  // (config_key). A key absent from the store leaves its file alone.
  std::vector<mirrored_file> files;
};

// A master's side of the cluster while it serves: keeps its record alive under a lease
// (re-registering when the lease was lost, e.g. after a store outage), publishes its
// switching state, and mirrors the cluster's users and desired config into files on every
// change (the host reloads those). stop() or the destructor revokes the lease, so a clean
// stop leaves the cluster at once.
class master_link {
 public:
  master_link(std::shared_ptr<store> s, master_record self, link_options options,
              std::shared_ptr<spdlog::logger> logger);
  ~master_link();
  master_link(const master_link&) = delete;
  master_link& operator=(const master_link&) = delete;

  // Writes the mirrored files once (so the host can load them) and starts the threads. The
  // users key must exist (join() made it).
  util::status start();
  void stop();
  // The mode served and the certificate's expiry changed: the record is rewritten.
  void update(const std::string& mode, std::int64_t certificate_not_after);
  // This master's switching state (state.json) changed: it is stored under states_prefix.
  void publish_state(const std::string& state_json);
  // The front door addresses (host:port) of the other masters registered now, sorted: Local
  // mode's replica peers. Kept from the watch, so a master that starts is in within a
  // second and one that dies is out when its lease expires.
  std::vector<std::string> peer_addresses() const;
  // The IPs of every master registered now, this one included, sorted: the `masters` a cluster
  // member's mode is given (Direct mode's containerd mirrors).
  std::vector<std::string> master_ips() const;

 private:
  void register_loop();
  void mirror_loop();
  void write_mirrored(const mirrored_file& f, const entry& e);
  // Takes a put or delete under masters_prefix into live_masters_.
  void note_master(const entry& e, bool deleted);
  util::status put_record(lease_id lease);
  util::status put_state();

  std::shared_ptr<store> store_;
  link_options opts_;
  std::shared_ptr<spdlog::logger> logger_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  master_record self_;
  bool record_dirty_ = false;
  std::string state_json_;
  bool state_dirty_ = false;
  std::atomic<bool> stop_{false};
  std::int64_t mirror_revision_ = 0;
  bool mirror_done_ = true;  // the mirror thread has left its loop (under mutex_)
  std::map<std::string, master_record> live_masters_;  // the other masters by key, under mutex_
  std::thread register_thread_, mirror_thread_;
};

}  // namespace registryd::cluster
