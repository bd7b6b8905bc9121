// Blob upload sessions on disk, so an upload survives a restart of registryd. Layout under
// the store root (docs/storage.md):
//
//   <root>/uploads/<id>/info.json   {"repository": "...", "startedAt": <unix seconds>}
//   <root>/uploads/<id>/data        the bytes received so far; renamed into blobs/ on commit
//
// `id` is a random UUID (version 4, lowercase). The data file is the session's blob_writer
// temporary, so completing an upload is a rename, never a copy. The running hash lives in
// memory; a session loaded after a restart re-hashes its data file once. The bytes a session
// reports are the bytes in the file: what a client reads back with GET status (Range:
// 0-<size-1>) after a crash is what it must resend from. The one exception is a chunk that
// announced its range (begin_chunk): it is kept whole or not at all, also across a kill, so
// its first bytes never linger without the rest.
//
//   <root>/uploads/<id>/chunk       {"start": S, "end": E} while such a chunk is arriving
//
// Thread-safety: an upload_store is safe from any number of threads. A session is used
// through an upload_lease, which holds it exclusively: a second request for the same session
// waits until the first one's lease is gone. Sessions idle for a while are closed in memory
// (their files stay) and loaded again on the next request.
#pragma once

#include <registryd/oci/digest.hpp>
#include <registryd/oci/storage/blob_store.hpp>
#include <registryd/oci/storage/store_result.hpp>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

namespace registryd::oci::storage {

struct upload_info {
  std::string id;
  std::string repository;
  std::uint64_t size = 0;  // bytes received
  time_point started{};
  time_point mtime{};      // last time data arrived (the data file's mtime)
};

class upload_store;

// Exclusive use of one session for as long as the lease lives (one request). Move-only.
class upload_lease {
 public:
  upload_lease(upload_lease&&) noexcept;
  upload_lease& operator=(upload_lease&&) = delete;
  upload_lease(const upload_lease&) = delete;
  upload_lease& operator=(const upload_lease&) = delete;
  ~upload_lease();

  const std::string& id() const noexcept;
  const std::string& repository() const noexcept;
  // Bytes received so far: where the next chunk must start.
  std::uint64_t size() const noexcept;

  // Appends bytes (see blob_writer::append; on an I/O error the session keeps the bytes
  // written before it).
  store_status append(std::string_view bytes);
  // Makes everything appended durable (before answering 202 to a chunk).
  store_status sync();
  // Cuts the session back to `size` bytes (a chunk that arrived short of its Content-Range).
  store_status truncate(std::uint64_t size);
  // A chunk of bytes [size(), end) that must arrive whole or not at all: noted durably in the
  // session until end_chunk(). If registryd dies before, the session is loaded again with the
  // chunk's bytes dropped unless exactly [start, end) reached the file.
  store_status begin_chunk(std::uint64_t end);
  // The chunk is settled (kept whole and synced, or cut back): removes the note durably, so
  // that nothing acknowledged later can be cut by it. Call before answering the request. (A
  // lease that ends without it removes the note, but not durably.)
  store_status end_chunk();
  // Verifies the content against `expected` and publishes it as a blob (blob_writer::commit),
  // then ends the session. On errc::digest_mismatch the session is cancelled too (nothing is
  // published; the data is removed).
  store_result<blob_info> commit(const digest& expected);
  // Ends the session and removes its files.
  store_status cancel();

 private:
  friend class upload_store;
  struct session;
  upload_lease(upload_store* store, std::shared_ptr<session> s, std::unique_lock<std::mutex> lock);
  store_status end_session();

  upload_store* store_ = nullptr;
  std::shared_ptr<session> session_;
  bool chunk_noted_ = false;
  std::unique_lock<std::mutex> lock_;
};

class upload_store {
 public:
  // Sessions live under <blobs.root()>/uploads; `blobs` must outlive the store. Throws
  // std::runtime_error when the directory cannot be created (start-up).
  explicit upload_store(const blob_store& blobs);
  ~upload_store();
  upload_store(const upload_store&) = delete;
  upload_store& operator=(const upload_store&) = delete;

  // A new, empty session for `repository`, durable on disk; its id.
  store_result<std::string> create(std::string_view repository);
  // The session `id` of `repository`, held exclusively; errc::not_found when there is no
  // such session, when it belongs to another repository, or when `id` is not a session id.
  store_result<upload_lease> acquire(std::string_view id, std::string_view repository);

  // Every session on disk (for GC of abandoned uploads and for metrics).
  void for_each(const std::function<void(const upload_info&)>& fn) const;
  // Removes a session's files, unless a request holds it (errc::invalid then). For GC.
  store_status remove(std::string_view id);
  // Sessions currently open in memory.
  std::size_t open_sessions() const;

  // `xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx`, lowercase hex.
  static bool is_valid_id(std::string_view id) noexcept;
  std::filesystem::path directory() const { return dir_; }

 private:
  friend class upload_lease;
  void forget(const std::shared_ptr<upload_lease::session>& s);
  void evict_idle();

  const blob_store& blobs_;
  std::filesystem::path dir_;
  mutable std::mutex mutex_;
  std::unordered_map<std::string, std::shared_ptr<upload_lease::session>> sessions_;
  std::atomic<std::uint64_t> acquisitions_{0};
};

}  // namespace registryd::oci::storage
