#include "replica/local_replica.hpp"

#include "replica/plan.hpp"

#include <registryd/oci/layout.hpp>
#include <registryd/oci/text_file.hpp>

#include <fcntl.h>
#include <sys/stat.h>

#include <algorithm>
#include <system_error>

namespace registryd::local::replica {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr int journal_version = 1;

unix_ns mtime_ns(const fs::path& p) {
  struct ::stat st {};
  if (::stat(p.c_str(), &st) != 0) return 0;
  return static_cast<unix_ns>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
}

bool set_mtime(const fs::path& p, unix_ns t) {
  const timespec ts{static_cast<time_t>(t / 1000000000), static_cast<long>(t % 1000000000)};
  const timespec times[2] = {ts, ts};
  return ::utimensat(AT_FDCWD, p.c_str(), times, 0) == 0;
}

}  // namespace

unix_ns to_unix_ns(std::chrono::system_clock::time_point t) noexcept {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}

unix_ns now_ns() noexcept { return to_unix_ns(std::chrono::system_clock::now()); }

local_replica::local_replica(const storage::repository_store& repos, std::chrono::nanoseconds tombstone_lifetime)
    : repos_(repos), lifetime_(tombstone_lifetime) {
  load();
}

fs::path local_replica::journal_path() const { return repos_.blobs().root() / "replica" / "journal.json"; }

void local_replica::load() {
  const fs::path p = journal_path();
  auto text = oci::read_text_file(p);
  if (!text) return;
  try {
    const json doc = json::parse(*text);
    if (doc.at("version").get<int>() != journal_version) throw std::runtime_error("another journal version");
    observed_at_ = doc.at("observedAt").get<unix_ns>();
    for (const auto& [name, r] : doc.at("seen").items()) {
      seen_repository s;
      for (const auto& [tag, d] : r.at("tags").items()) {
        if (auto parsed = oci::digest::parse(d.get<std::string>())) s.tags.insert_or_assign(tag, *parsed);
      }
      for (const auto& [d, t] : r.at("manifests").items()) {
        if (auto parsed = oci::digest::parse(d)) s.manifests.insert_or_assign(*parsed, t.get<unix_ns>());
      }
      seen_.insert_or_assign(name, std::move(s));
    }
    auto tombs = state_from_json(doc.at("tombstones"));
    if (!tombs) throw std::runtime_error(tombs.error_message());
    for (auto& [name, r] : tombs->repositories) {
      r.tags.clear();
      r.manifests.clear();
      if (!r.empty()) tombstones_.insert_or_assign(name, std::move(r));
    }
    observed_ = true;
  } catch (const std::exception&) {
    // A torn journal cannot happen (atomic writes); a foreign or damaged one is kept for a
    // person to look at, and sync goes on with no memory of deletions.
    std::error_code ec;
    fs::rename(p, fs::path(p).concat(".bad"), ec);
    seen_.clear();
    tombstones_.clear();
    observed_ = false;
  }
}

void local_replica::save_locked() {
  json seen = json::object();
  for (const auto& [name, s] : seen_) {
    json tags = json::object();
    for (const auto& [tag, d] : s.tags) tags[tag] = d.str();
    json manifests = json::object();
    for (const auto& [d, t] : s.manifests) manifests[d.str()] = t;
    seen[name] = {{"tags", std::move(tags)}, {"manifests", std::move(manifests)}};
  }
  replica_state tombs;
  for (const auto& [name, r] : tombstones_) tombs.repositories.insert_or_assign(name, r);
  const json doc = {{"version", journal_version},
                    {"observedAt", observed_at_},
                    {"seen", std::move(seen)},
                    {"tombstones", to_json(tombs)}};
  // A journal that cannot be written costs only the memory of deletions since the last one.
  std::error_code ec;
  fs::create_directories(journal_path().parent_path(), ec);
  (void)oci::write_file_atomic(journal_path(), doc.dump());
}

void local_replica::expire_locked(unix_ns now) {
  const unix_ns oldest = now - lifetime_.count();
  for (auto it = tombstones_.begin(); it != tombstones_.end();) {
    std::erase_if(it->second.deleted_tags, [&](const auto& e) { return e.second.deleted < oldest; });
    std::erase_if(it->second.deleted_manifests, [&](const auto& e) { return e.second < oldest; });
    it = it->second.empty() ? tombstones_.erase(it) : std::next(it);
  }
}

replica_state local_replica::observe(std::optional<unix_ns> now) {
  std::lock_guard lock(mutex_);
  const unix_ns t_now = now.value_or(now_ns());
  replica_state out;
  std::map<std::string, seen_repository, std::less<>> current;
  for (const std::string& name : repos_.repositories()) {
    seen_repository cur;
    repository_state rs;
    repos_.for_each_tag(name, [&](const storage::tag_record& r) {
      cur.tags.insert_or_assign(r.tag, r.digest);
      rs.tags.insert_or_assign(r.tag, tag_entry{r.digest, to_unix_ns(r.mtime)});
    });
    repos_.for_each_manifest(name, [&](const storage::manifest_record& r) {
      const unix_ns t = to_unix_ns(r.mtime);
      cur.manifests.insert_or_assign(r.digest, t);
      rs.manifests.insert_or_assign(r.digest, t);
    });
    if (cur.tags.empty() && cur.manifests.empty()) continue;
    current.insert_or_assign(name, std::move(cur));
    out.repositories.insert_or_assign(name, std::move(rs));
  }

  bool changed = !observed_ || current.size() != seen_.size();
  // When did it go? After the previous observation, before this one; the directory's mtime,
  // when it falls in between, is closer (it is the time of its last change).
  auto when_gone = [&](const fs::path& dir) {
    const unix_ns m = mtime_ns(dir);
    return m > observed_at_ && m <= t_now ? m : t_now;
  };
  if (observed_) {
    for (const auto& [name, prev] : seen_) {
      const auto cur = current.find(name);
      const fs::path manifests_dir = repos_.repository_path(name) / "_manifests";
      for (const auto& [tag, d] : prev.tags) {
        if (cur != current.end() && cur->second.tags.contains(tag)) continue;
        changed = true;
        auto& tombs = tombstones_[name].deleted_tags;
        if (tombs.contains(tag)) continue;  // adopted from a peer before sync deleted it
        tombs.insert_or_assign(tag, tag_tombstone{d, when_gone(manifests_dir / "tags")});
      }
      for (const auto& [d, t] : prev.manifests) {
        if (cur != current.end() && cur->second.manifests.contains(d)) continue;
        changed = true;
        auto& tombs = tombstones_[name].deleted_manifests;
        if (tombs.contains(d)) continue;
        tombs.insert_or_assign(d, when_gone(manifests_dir / "revisions" / std::string(d.algorithm_name())));
      }
    }
  }
  // A tag or manifest stored again after its delete outlives its tombstone.
  for (auto& [name, tombs] : tombstones_) {
    const auto cur = out.repositories.find(name);
    if (cur == out.repositories.end()) continue;
    changed |= std::erase_if(tombs.deleted_tags, [&](const auto& e) {
                 const auto tag = cur->second.tags.find(e.first);
                 return tag != cur->second.tags.end() && tag->second.updated > e.second.deleted;
               }) > 0;
    changed |= std::erase_if(tombs.deleted_manifests, [&](const auto& e) {
                 const auto m = cur->second.manifests.find(e.first);
                 return m != cur->second.manifests.end() && m->second > e.second;
               }) > 0;
  }
  const std::size_t before = tombstones_locked();
  expire_locked(t_now);
  changed |= before != tombstones_locked() || std::erase_if(tombstones_, [](const auto& e) { return e.second.empty(); }) > 0;

  if (!changed) {
    for (const auto& [name, cur] : current) {
      const auto prev = seen_.find(name);
      if (prev == seen_.end() || prev->second.tags != cur.tags || prev->second.manifests != cur.manifests) {
        changed = true;
        break;
      }
    }
  }
  seen_ = std::move(current);
  observed_ = true;
  observed_at_ = t_now;
  if (changed) save_locked();

  for (const auto& [name, tombs] : tombstones_) {
    auto& r = out.repositories[name];
    r.deleted_tags = tombs.deleted_tags;
    r.deleted_manifests = tombs.deleted_manifests;
  }
  return out;
}

bool local_replica::adopt_tag_locked(std::string_view repository, std::string_view tag, const tag_tombstone& t) {
  auto& tombs = tombstones_[std::string(repository)].deleted_tags;
  const auto it = tombs.find(tag);
  if (it != tombs.end() && it->second.deleted >= t.deleted) return false;
  tombs.insert_or_assign(std::string(tag), t);
  return true;
}

bool local_replica::adopt_manifest_locked(std::string_view repository, const oci::digest& d, unix_ns deleted) {
  auto& tombs = tombstones_[std::string(repository)].deleted_manifests;
  const auto it = tombs.find(d);
  if (it != tombs.end() && it->second >= deleted) return false;
  tombs.insert_or_assign(d, deleted);
  return true;
}

void local_replica::adopt_tag_tombstone(std::string_view repository, std::string_view tag, const tag_tombstone& t) {
  std::lock_guard lock(mutex_);
  if (adopt_tag_locked(repository, tag, t)) save_locked();
}

void local_replica::adopt_manifest_tombstone(std::string_view repository, const oci::digest& d, unix_ns deleted) {
  std::lock_guard lock(mutex_);
  if (adopt_manifest_locked(repository, d, deleted)) save_locked();
}

storage::store_status local_replica::set_tag(std::string_view repository, std::string_view tag, const oci::digest& d,
                                             unix_ns updated) {
  std::lock_guard lock(mutex_);
  const fs::path file = repos_.repository_path(repository) / "_manifests" / "tags" / std::string(tag);
  if (auto held = repos_.resolve_tag(repository, tag)) {
    // Pushed here since the round was planned, and newer than the peer's: it stays.
    if (*held == d || newer(mtime_ns(file), *held, updated, d)) return storage::success();
  }
  auto st = repos_.set_tag(repository, tag, d);
  if (!st) return st;
  (void)set_mtime(file, updated);
  return st;
}

storage::store_result<storage::manifest_record> local_replica::put_manifest(std::string_view repository,
                                                                            const storage::manifest_put& put,
                                                                            unix_ns stored) {
  std::lock_guard lock(mutex_);
  auto r = repos_.put_manifest(repository, put);
  if (!r) return r;
  (void)set_mtime(repos_.repository_path(repository) / "_manifests" / "revisions" /
                      std::string(put.digest.algorithm_name()) / std::string(put.digest.hex()),
                  stored);
  return r;
}

storage::store_status local_replica::delete_tag(std::string_view repository, std::string_view tag,
                                                const oci::digest& expected, const tag_tombstone& t) {
  std::lock_guard lock(mutex_);
  auto now = repos_.resolve_tag(repository, tag);
  if (!now) return now.code() == storage::errc::not_found ? storage::success() : storage::store_status(now.error());
  if (*now != expected) return storage::success();
  adopt_tag_locked(repository, tag, t);
  save_locked();
  auto st = repos_.delete_tag(repository, tag);
  if (!st && st.code() == storage::errc::not_found) return storage::success();
  return st;
}

storage::store_status local_replica::delete_manifest(std::string_view repository, const oci::digest& d,
                                                     unix_ns deleted) {
  std::lock_guard lock(mutex_);
  repos_.for_each_tag(repository, [&](const storage::tag_record& r) {
    if (r.digest == d) adopt_tag_locked(repository, r.tag, tag_tombstone{d, deleted});
  });
  adopt_manifest_locked(repository, d, deleted);
  save_locked();
  auto removed = repos_.delete_manifest(repository, d);
  if (!removed && removed.code() != storage::errc::not_found) return removed.error();
  return storage::success();
}

std::size_t local_replica::tombstones() const {
  std::lock_guard lock(mutex_);
  return tombstones_locked();
}

std::size_t local_replica::tombstones_locked() const {
  std::size_t n = 0;
  for (const auto& [name, r] : tombstones_) n += r.deleted_tags.size() + r.deleted_manifests.size();
  return n;
}

}  // namespace registryd::local::replica
