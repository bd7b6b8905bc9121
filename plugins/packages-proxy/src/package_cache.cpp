#include "package_cache.hpp"

#include <registryd/oci/text_file.hpp>

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <set>
#include <sstream>
#include <string>
#include <vector>

namespace registryd::packages {
namespace {

std::int64_t unix_seconds(time_point t) {
  return std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
}

// "<digest> <inode> <size> <ctime ns> <verified unix seconds>" per line.
std::string stamp_line(const oci::digest& d, const file_stamp& s, time_point verified) {
  return d.str() + " " + std::to_string(s.inode) + " " + std::to_string(s.size) + " " + std::to_string(s.ctime_ns) +
         " " + std::to_string(unix_seconds(verified)) + "\n";
}

struct saved_stamp {
  file_stamp stamp;
  time_point verified{};
};

std::map<oci::digest, saved_stamp> read_stamps(const std::filesystem::path& file) {
  std::map<oci::digest, saved_stamp> out;
  const auto text = oci::read_text_file(file);
  if (!text) return out;
  std::istringstream in(*text);
  std::string d;
  saved_stamp s;
  std::int64_t verified = 0;
  while (in >> d >> s.stamp.inode >> s.stamp.size >> s.stamp.ctime_ns >> verified) {
    if (auto parsed = oci::digest::parse(d)) {
      s.verified = time_point(std::chrono::seconds(verified));
      out[*parsed] = s;
    }
  }
  return out;
}

// An exclusive lock taken only when no reader holds the file: the file is then the caller's.
bool try_lock_exclusive(int fd) { return ::flock(fd, LOCK_EX | LOCK_NB) == 0; }

}  // namespace

std::optional<file_stamp> stamp_of(int fd) {
  struct ::stat st {};
  if (::fstat(fd, &st) != 0) return std::nullopt;
  return file_stamp{static_cast<std::uint64_t>(st.st_ino), static_cast<std::uint64_t>(st.st_size),
                    static_cast<std::int64_t>(st.st_ctim.tv_sec) * 1'000'000'000 + st.st_ctim.tv_nsec};
}

package_cache::package_cache(std::filesystem::path root, std::uint64_t max_bytes, std::uint64_t evict_at,
                             cache_counters& c, std::function<void(std::string_view)> warn)
    : root_(std::move(root)),
      store_(root_),
      access_(root_ / "access-times"),
      max_bytes_(max_bytes),
      evict_at_(evict_at),
      counters_(c),
      warn_(std::move(warn)) {}

void package_cache::load(time_point now) {
  // Temporaries a crash left are swept by the owner's blob_fills (sweep_temps): another
  // instance that is being replaced may still be filling here.
  access_.load();
  const auto saved = read_stamps(root_ / "stamps");
  std::map<oci::digest, entry> index;
  std::uint64_t bytes = 0;
  store_.for_each_blob([&](const oci::storage::blob_info& b) {
    entry e;
    e.size = b.size;
    if (const auto it = saved.find(b.digest); it != saved.end()) {
      // The stamp is compared when the entry is opened; a file changed while we were down is
      // re-hashed then.
      e.stamp = it->second.stamp;
      e.verified_at = it->second.verified;
    }
    if (!access_.last(b.digest)) access_.touch(b.digest, b.mtime);
    bytes += b.size;
    index.emplace(b.digest, e);
  });
  {
    std::lock_guard lock(mutex_);
    index_ = std::move(index);
    bytes_ = bytes;
  }
  evict(now);
}

bool package_cache::save() const {
  std::string text;
  {
    std::lock_guard lock(mutex_);
    for (const auto& [d, e] : index_) {
      if (e.verified_at != time_point{}) text += stamp_line(d, e.stamp, e.verified_at);
    }
  }
  const bool stamps = oci::write_text_file_atomic(root_ / "stamps", text).ok();
  const bool access = access_.save().ok();
  return stamps && access;
}

bool package_cache::content_matches(int fd, const oci::digest& d) {
  oci::hasher h(d.algorithm());
  std::vector<char> buffer(1 << 20);
  off_t offset = 0;
  for (;;) {
    const ssize_t n = ::pread(fd, buffer.data(), buffer.size(), offset);
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    if (n == 0) break;
    h.update(buffer.data(), static_cast<std::size_t>(n));
    offset += n;
  }
  return h.current() == d;
}

std::optional<oci::storage::blob_file> package_cache::open(const oci::digest& d, time_point now) {
  auto file = store_.open(d);
  if (!file) return std::nullopt;
  // Pinned while the descriptor lives; refused while the evictor holds the file.
  if (::flock(file->fd(), LOCK_SH | LOCK_NB) != 0) return std::nullopt;
  // Evicted between our open and our lock: the name is gone, and with it the entry.
  if (struct ::stat st {}; ::fstat(file->fd(), &st) != 0 || st.st_nlink == 0) return std::nullopt;
  const auto stamp = stamp_of(file->fd());
  if (!stamp) return std::nullopt;
  bool trusted = false;
  {
    std::lock_guard lock(mutex_);
    if (const auto it = index_.find(d); it != index_.end()) {
      trusted = it->second.verified_at != time_point{} && it->second.stamp == *stamp;
    }
  }
  if (!trusted) {
    if (!content_matches(file->fd(), d)) {
      file = oci::storage::blob_file{};  // release our shared lock before the drop takes the file
      drop(d, "its content no longer matches its digest");
      return std::nullopt;
    }
    ++counters_.verified;
    verified(d, *stamp, now);
  }
  access_.touch(d, now);
  return std::move(file.value());
}

void package_cache::verified(const oci::digest& d, const file_stamp& stamp, time_point now) {
  // Looked up under the lock, never from an earlier look: the fill that wrote a file may
  // publish it while a reader hashes it, and the entry must be counted once.
  std::lock_guard lock(mutex_);
  auto [it, inserted] = index_.try_emplace(d);
  bytes_ = bytes_ - (inserted ? 0 : it->second.size) + stamp.size;
  it->second = entry{stamp.size, stamp, now};
}

void package_cache::published(const oci::digest& d, time_point now) {
  auto file = store_.open(d);
  if (!file) return;
  const auto stamp = stamp_of(file->fd());
  if (!stamp) return;
  verified(d, *stamp, now);  // by the fill or put() that wrote it
  access_.touch(d, now);
  file = oci::storage::blob_file{};
  evict(now);
}

std::optional<std::string> package_cache::put(std::string_view bytes, const oci::digest& d, time_point now) {
  auto stored = store_.put(bytes, d);
  if (!stored) return stored.error_message();
  published(d, now);
  return std::nullopt;
}

void package_cache::drop(const oci::digest& d, std::string_view why) {
  ++counters_.corrupted;
  {
    std::lock_guard lock(mutex_);
    if (const auto it = index_.find(d); it != index_.end()) {
      bytes_ -= it->second.size;
      index_.erase(it);
    }
  }
  access_.forget(d);
  // Readers that had it open keep their descriptors; nobody new gets it.
  (void)store_.remove(d);
  warn_("package cache: dropped " + d.str() + ": " + std::string(why) + "; it is fetched again when asked for");
}

std::size_t package_cache::evict(time_point now) {
  std::lock_guard one(evict_mutex_);
  std::size_t evicted = 0;
  std::set<oci::digest> pinned;
  for (int round = 0; round < 8; ++round) {
    std::vector<oci::cache::cache_entry> candidates;
    std::uint64_t pinned_bytes = 0;
    {
      std::lock_guard lock(mutex_);
      if (bytes_ <= evict_at_) break;
      candidates.reserve(index_.size());
      for (const auto& [d, e] : index_) {
        if (pinned.contains(d)) {
          pinned_bytes += e.size;
          continue;
        }
        candidates.push_back({d, e.size, access_.last(d).value_or(time_point{})});
      }
    }
    oci::cache::eviction_policy policy;
    policy.max_bytes = evict_at_ > pinned_bytes ? evict_at_ - pinned_bytes : 0;
    const auto plan = oci::cache::plan_eviction(std::move(candidates), policy, now);
    if (plan.over_size.empty()) break;
    bool skipped = false;
    for (const auto& c : plan.over_size) {
      auto file = store_.open(c.blob);
      if (file && !try_lock_exclusive(file->fd())) {
        pinned.insert(c.blob);  // being read: never evicted under a reader
        skipped = true;
        continue;
      }
      (void)store_.remove(c.blob);
      {
        std::lock_guard lock(mutex_);
        if (const auto it = index_.find(c.blob); it != index_.end()) {
          bytes_ -= it->second.size;
          index_.erase(it);
        }
      }
      access_.forget(c.blob);
      ++evicted;
      ++counters_.evictions;
      counters_.evicted_bytes += c.size;
    }
    if (!skipped) break;
  }
  return evicted;
}

std::size_t package_cache::verify_some(std::chrono::seconds age, std::uint64_t budget, time_point now,
                                       const std::function<bool()>& stop) {
  std::vector<std::pair<time_point, oci::digest>> due;
  {
    std::lock_guard lock(mutex_);
    for (const auto& [d, e] : index_) {
      if (e.verified_at + age <= now) due.emplace_back(e.verified_at, d);
    }
  }
  std::sort(due.begin(), due.end());
  std::size_t checked = 0;
  std::uint64_t read = 0;
  for (const auto& [when, d] : due) {
    if (read >= budget || (stop && stop())) break;
    auto file = store_.open(d);
    if (!file) continue;  // evicted meanwhile
    const auto stamp = stamp_of(file->fd());
    if (!stamp) continue;
    read += stamp->size;
    ++checked;
    if (!content_matches(file->fd(), d)) {
      file = oci::storage::blob_file{};
      drop(d, "re-verification found its content changed");
      continue;
    }
    ++counters_.verified;
    std::lock_guard lock(mutex_);
    if (const auto it = index_.find(d); it != index_.end()) {
      it->second.stamp = *stamp;
      it->second.verified_at = now;
    }
  }
  return checked;
}

std::uint64_t package_cache::bytes() const {
  std::lock_guard lock(mutex_);
  return bytes_;
}

std::size_t package_cache::entries() const {
  std::lock_guard lock(mutex_);
  return index_.size();
}

}  // namespace registryd::packages
