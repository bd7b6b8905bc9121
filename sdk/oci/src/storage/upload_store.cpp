#include <registryd/oci/storage/upload_store.hpp>

#include "fs_util.hpp"

#include <registryd/oci/reference.hpp>

#include <nlohmann/json.hpp>

#include <chrono>
#include <optional>
#include <stdexcept>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

namespace registryd::oci::storage {
namespace {

namespace fs = std::filesystem;
using steady = std::chrono::steady_clock;

// Sessions not used for this long are closed in memory (their files stay on disk).
constexpr auto idle_close_after = std::chrono::minutes(5);

store_error unknown_upload(std::string_view id) {
  return make_error(errc::not_found, "upload " + std::string(id) + " is not known");
}

std::string new_uuid() {
  std::string hex = fsx::random_hex(16);
  hex[12] = '4';                                     // version 4
  hex[16] = "89ab"[std::stoi(hex.substr(16, 1), nullptr, 16) & 3];  // RFC 4122 variant
  return hex.substr(0, 8) + "-" + hex.substr(8, 4) + "-" + hex.substr(12, 4) + "-" +
         hex.substr(16, 4) + "-" + hex.substr(20, 12);
}

struct session_files {
  fs::path dir, info, data, chunk;
};

session_files files_of(const fs::path& uploads, std::string_view id) {
  const fs::path dir = uploads / std::string(id);
  return {dir, dir / "info.json", dir / "data", dir / "chunk"};
}

// A chunk note left by a registryd that died while the chunk arrived: the data is cut back to
// the chunk's start unless exactly the chunk reached the file. Then the note goes.
store_status settle_chunk(const session_files& f, std::uint64_t data_size) {
  auto text = fsx::read_file(f.chunk, 4096);
  if (!text) return success();
  std::uint64_t start = 0, end = 0;
  try {
    const auto j = nlohmann::json::parse(*text);
    start = j.at("start").get<std::uint64_t>();
    end = j.at("end").get<std::uint64_t>();
  } catch (const nlohmann::json::exception&) {
    start = end = 0;  // a torn note: written before any byte of its chunk was
  }
  // Exactly the chunk, whole: it may not have been acknowledged, but it is what the client sent
  // (a retry gets 416 and asks where the session stands). Anything else past the start was
  // never acknowledged: cut back.
  if (data_size > start && data_size != end && ::truncate(f.data.c_str(), static_cast<off_t>(start)) != 0) {
    return fsx::from_errno("cannot drop the partial chunk of", f.data, errno);
  }
  ::unlink(f.chunk.c_str());
  return success();
}

struct parsed_info {
  std::string repository;
  time_point started;
};

std::optional<parsed_info> read_info(const fs::path& path) {
  auto text = fsx::read_file(path, 64 * 1024);
  if (!text) return std::nullopt;
  try {
    const auto j = nlohmann::json::parse(*text);
    return parsed_info{j.at("repository").get<std::string>(),
                       time_point(std::chrono::seconds(j.value("startedAt", std::int64_t{0})))};
  } catch (const nlohmann::json::exception&) {
    return std::nullopt;
  }
}

// Removes a session directory (what is left of it) durably.
store_status remove_session_files(const fs::path& uploads, std::string_view id) {
  const auto f = files_of(uploads, id);
  ::unlink(f.data.c_str());
  ::unlink(f.info.c_str());
  for (const std::string& stray : fsx::list_dir(f.dir)) ::unlink((f.dir / stray).c_str());
  if (::rmdir(f.dir.c_str()) != 0 && errno != ENOENT) return fsx::from_errno("cannot remove", f.dir, errno);
  return fsx::fsync_dir(uploads);
}

}  // namespace

struct upload_lease::session {
  std::mutex mutex;
  std::string id;
  std::string repository;   // known once loaded
  std::optional<blob_writer> writer;
  bool gone = false;        // cancelled or committed: every later request gets not_found
  steady::time_point last_used = steady::now();

  // Closing a session in memory (idle, or the store going away) keeps its data on disk.
  ~session() {
    if (writer) writer->detach();
  }
};

// ---------------------------------------------------------------------------------------------
// upload_lease

upload_lease::upload_lease(upload_store* store, std::shared_ptr<session> s, std::unique_lock<std::mutex> lock)
    : store_(store), session_(std::move(s)), lock_(std::move(lock)) {}
upload_lease::upload_lease(upload_lease&&) noexcept = default;
upload_lease::~upload_lease() {
  if (!session_) return;  // moved from
  session_->last_used = steady::now();
  // A request that ended without end_chunk() (it failed): the note goes, if not durably.
  if (chunk_noted_ && !session_->gone) ::unlink(files_of(store_->dir_, session_->id).chunk.c_str());
}

const std::string& upload_lease::id() const noexcept { return session_->id; }
const std::string& upload_lease::repository() const noexcept { return session_->repository; }
std::uint64_t upload_lease::size() const noexcept { return session_->writer->size(); }

store_status upload_lease::append(std::string_view bytes) { return session_->writer->append(bytes); }
store_status upload_lease::sync() { return session_->writer->sync(); }
store_status upload_lease::truncate(std::uint64_t size) { return session_->writer->truncate(size); }

store_status upload_lease::begin_chunk(std::uint64_t end) {
  const nlohmann::json note = {{"start", size()}, {"end", end}};
  chunk_noted_ = true;  // first: a note that reached the disk before a failure is removed too
  return fsx::write_file_atomic(files_of(store_->dir_, session_->id).chunk, note.dump());
}

store_status upload_lease::end_chunk() {
  if (!chunk_noted_) return success();
  const auto f = files_of(store_->dir_, session_->id);
  if (::unlink(f.chunk.c_str()) != 0 && errno != ENOENT) return fsx::from_errno("cannot remove", f.chunk, errno);
  chunk_noted_ = false;
  return fsx::fsync_dir(f.dir);
}

store_result<blob_info> upload_lease::commit(const digest& expected) {
  auto published = session_->writer->commit(expected);
  if (!published && published.code() != errc::digest_mismatch) {
    // A failure before the content was judged (fsync, rename) leaves the data in place when
    // it can: the client may retry the PUT.
    if (std::filesystem::exists(session_->writer->path())) return published;
  }
  if (auto st = end_session(); !st && published) return st.error();
  return published;
}

store_status upload_lease::cancel() {
  session_->writer->abort();
  return end_session();
}

store_status upload_lease::end_session() {
  session_->gone = true;
  session_->writer.reset();
  store_->forget(session_);
  return remove_session_files(store_->dir_, session_->id);
}

// ---------------------------------------------------------------------------------------------
// upload_store

upload_store::upload_store(const blob_store& blobs) : blobs_(blobs), dir_(blobs.root() / "uploads") {
  if (auto st = fsx::ensure_dir(dir_); !st) {
    throw std::runtime_error("cannot open the upload directory: " + st.error_message());
  }
}

upload_store::~upload_store() = default;

bool upload_store::is_valid_id(std::string_view id) noexcept {
  if (id.size() != 36) return false;
  for (std::size_t i = 0; i < id.size(); ++i) {
    const char c = id[i];
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (c != '-') return false;
    } else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
      return false;
    }
  }
  return true;
}

store_result<std::string> upload_store::create(std::string_view repository) {
  if (!is_valid_repository_name(repository)) {
    return make_error(errc::invalid, "invalid repository name \"" + std::string(repository) + "\"");
  }
  const std::string id = new_uuid();
  const auto f = files_of(dir_, id);
  if (auto st = fsx::ensure_dir(f.dir); !st) return st.error();
  const auto now = std::chrono::duration_cast<std::chrono::seconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                       .count();
  const nlohmann::json info = {{"repository", repository}, {"startedAt", now}};
  if (auto st = fsx::write_file_atomic(f.info, info.dump()); !st) return st.error();
  auto writer = blobs_.open_writer(f.data);
  if (!writer) return writer.error();
  if (auto st = fsx::fsync_dir(f.dir); !st) return st.error();

  auto s = std::make_shared<upload_lease::session>();
  s->id = id;
  s->repository = std::string(repository);
  s->writer.emplace(std::move(writer.value()));
  {
    std::lock_guard lock(mutex_);
    sessions_.emplace(id, std::move(s));
  }
  evict_idle();
  return id;
}

store_result<upload_lease> upload_store::acquire(std::string_view id, std::string_view repository) {
  if (!is_valid_id(id)) return unknown_upload(id);
  std::shared_ptr<upload_lease::session> s;
  {
    std::lock_guard lock(mutex_);
    auto& slot = sessions_[std::string(id)];
    if (!slot) {
      slot = std::make_shared<upload_lease::session>();
      slot->id = std::string(id);
    }
    s = slot;
  }
  std::unique_lock session_lock(s->mutex);
  if (s->gone) return unknown_upload(id);
  if (!s->writer) {
    const auto f = files_of(dir_, id);
    const auto info = read_info(f.info);
    struct ::stat st {};
    if (!info || ::stat(f.data.c_str(), &st) != 0) {
      s->gone = true;
      forget(s);
      return unknown_upload(id);
    }
    if (auto settled = settle_chunk(f, static_cast<std::uint64_t>(st.st_size)); !settled) return settled.error();
    auto writer = blobs_.open_writer(f.data);
    if (!writer) return writer.error();
    s->repository = info->repository;
    s->writer.emplace(std::move(writer.value()));
  }
  if (s->repository != repository) {
    return make_error(errc::not_found, "upload " + std::string(id) + " belongs to another repository");
  }
  s->last_used = steady::now();
  upload_lease lease(this, std::move(s), std::move(session_lock));
  if (acquisitions_.fetch_add(1) % 64 == 63) evict_idle();
  return lease;
}

void upload_store::forget(const std::shared_ptr<upload_lease::session>& s) {
  std::lock_guard lock(mutex_);
  const auto it = sessions_.find(s->id);
  if (it != sessions_.end() && it->second == s) sessions_.erase(it);
}

void upload_store::evict_idle() {
  const auto now = steady::now();
  std::lock_guard lock(mutex_);
  for (auto it = sessions_.begin(); it != sessions_.end();) {
    // use_count() == 1: only the map holds it, so no request has it or waits for it, and none
    // can get it without this mutex. Closing it then cannot race with a writer.
    if (it->second.use_count() == 1 && now - it->second->last_used > idle_close_after) {
      it = sessions_.erase(it);
    } else {
      ++it;
    }
  }
}

void upload_store::for_each(const std::function<void(const upload_info&)>& fn) const {
  for (const std::string& id : fsx::list_dir(dir_)) {
    if (!is_valid_id(id)) continue;
    const auto f = files_of(dir_, id);
    const auto info = read_info(f.info);
    struct ::stat st {};
    if (!info || ::stat(f.data.c_str(), &st) != 0) {
      // A torn session (crash while creating or finishing it): report it with no repository
      // so GC can remove it.
      fn(upload_info{id, info ? info->repository : std::string(), 0, info ? info->started : time_point{},
                     time_point{}});
      continue;
    }
    fn(upload_info{id, info->repository, static_cast<std::uint64_t>(st.st_size), info->started,
                   fsx::mtime_of(st.st_mtim)});
  }
}

store_status upload_store::remove(std::string_view id) {
  if (!is_valid_id(id)) return unknown_upload(id);
  std::shared_ptr<upload_lease::session> s;
  {
    std::lock_guard lock(mutex_);
    const auto it = sessions_.find(std::string(id));
    if (it != sessions_.end()) s = it->second;
  }
  if (s) {
    std::unique_lock session_lock(s->mutex, std::try_to_lock);
    if (!session_lock.owns_lock()) return make_error(errc::invalid, "upload " + std::string(id) + " is in use");
    s->gone = true;
    if (s->writer) s->writer->abort();
    s->writer.reset();
    forget(s);
  }
  return remove_session_files(dir_, id);
}

std::size_t upload_store::open_sessions() const {
  std::lock_guard lock(mutex_);
  return sessions_.size();
}

}  // namespace registryd::oci::storage
