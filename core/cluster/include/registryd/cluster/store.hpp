// The cluster's shared state (docs/cluster.md): a small key-value interface whose writes are
// compare-and-swap by revision, with watches and leases. etcd implements it (etcd_store.hpp);
// a Kubernetes API backend (Secrets, Leases) can implement it later without touching callers.
//
// Revisions are the store's: every write gets a higher one, and a key's mod_revision is the
// revision of its last write. Keys and values are bytes.
//
// Thread-safety: implementations are safe to call from several threads at once.
#pragma once

#include <registryd/util/result.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace registryd::cluster {

struct entry {
  std::string key;
  std::string value;
  std::int64_t create_revision = 0;
  std::int64_t mod_revision = 0;
  std::int64_t lease = 0;  // 0: none
};

// What a compare-and-swap did.
struct swap_result {
  bool swapped = false;
  std::int64_t revision = 0;          // the store's revision after the call
  std::optional<entry> current;       // when not swapped: the key as it is (nullopt: absent)
};

// One step of a multi-key create (see create_all).
struct put {
  std::string key;
  std::string value;
};

struct watch_event {
  bool deleted = false;
  entry item;  // for a delete: key and mod_revision only
};

using lease_id = std::int64_t;

class store {
 public:
  virtual ~store() = default;

  // Every key that starts with `prefix`, sorted by key, and the store's revision.
  virtual util::result<std::pair<std::vector<entry>, std::int64_t>> list(const std::string& prefix) = 0;
  // One key, nullopt when absent.
  util::result<std::optional<entry>> get(const std::string& key);

  // Writes `value` when the key's mod_revision is `expected` (0: only when the key does not
  // exist); otherwise writes nothing and returns the key as it is. `lease` ties the key to a
  // lease (0: none).
  virtual util::result<swap_result> compare_and_swap(const std::string& key, std::int64_t expected,
                                                     const std::string& value, lease_id lease = 0) = 0;
  // Creates every key of `puts` in one transaction when `guard` does not exist (guard is
  // usually the first of them); otherwise writes nothing and returns `guard` as it is.
  virtual util::result<swap_result> create_all(const std::string& guard, const std::vector<put>& puts) = 0;
  // Deletes `key` when its mod_revision is `expected`; true when deleted.
  virtual util::result<bool> compare_and_delete(const std::string& key, std::int64_t expected) = 0;

  // Calls `on_events` with every change under `prefix` after `after_revision` (the revision a
  // list() returned), in order, until `stop` becomes true or on_events returns false. A lost
  // connection is resumed from the last revision seen, so no change is missed or repeated; an
  // error is returned only when the history is gone (compacted) or the call cannot start.
  virtual util::status watch(const std::string& prefix, std::int64_t after_revision,
                             const std::function<bool(const std::vector<watch_event>&)>& on_events,
                             const std::atomic<bool>& stop) = 0;
  // Ends every watch() under way at once (for a shutdown), as `stop` would at its next event.
  // A watch still opening its connection may miss it: set `stop` first, then call this until
  // the watch has returned.
  virtual void interrupt_watches() = 0;

  // A lease that expires `ttl` after its last keep-alive; keys written with it vanish then.
  virtual util::result<lease_id> grant_lease(std::chrono::seconds ttl) = 0;
  // Renews the lease; an error when it has expired (its keys are gone: grant a new one).
  virtual util::status keep_alive(lease_id lease) = 0;
  // Ends the lease now; its keys vanish.
  virtual util::status revoke(lease_id lease) = 0;

  // Where the store is, for messages ("etcd at https://10.0.0.1:2379").
  virtual std::string describe() const = 0;
};

}  // namespace registryd::cluster
