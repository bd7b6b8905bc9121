// Coalesced cache fills: many clients ask for the same uncached blob, exactly one fetch runs,
// and its bytes reach every client while they are written to disk.
//
// A fill owns one blob_writer temporary under the store (blob_store.hpp) and runs the caller's
// fetch function on a thread of its own, so no client's connection drives it: a client that
// goes away does not stop the fill for the others, and the blob is cached even when every
// client has left. Each waiting client holds a fill_reader that streams from the temporary
// file (through a descriptor opened when the file was created, so the rename on publication
// and the unlink on failure do not disturb it) up to what has been written, waiting on a
// condition variable for more. The first byte reaches a client as soon as it is on disk; no
// client waits for the whole blob.
//
// Verification: the last byte of the blob is held back from every reader until the whole
// content has hashed to the digest asked for. A fill that fails (the upstream broke off, sent
// more or fewer bytes than announced, or content with another digest) therefore never gives a
// client a complete answer: readers get an error instead of their last byte and the host closes
// their connections; the temporary is removed and nothing is published. Publication itself
// (fsync, rename, directory fsync) follows; joins that arrive after it find the blob in the
// store.
//
// Used by the Proxy mode (plugins/proxy) and meant for the packages proxy, which streams a
// layer to its client while it fills its own cache the same way.
//
// Thread-safety: blob_fills is safe from any number of threads. A fill_reader belongs to one
// thread at a time (the host's stream reader). The fetch function runs on the fill's thread.
#pragma once

#include <registryd/oci/client/message.hpp>
#include <registryd/oci/digest.hpp>
#include <registryd/oci/storage/blob_store.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <thread>

namespace registryd::oci::cache {

// Why a fill could not deliver, in the terms a registry answers a client with: the HTTP
// status and OCI error code for a client that has not had a byte yet, and a message.
struct fill_failure {
  int status = 503;
  std::string code = "UNAVAILABLE";
  std::string message;
};

namespace detail {
struct fill_state;
}

// What the fetch function writes to, on the fill's thread. Not copyable; valid only during
// the fetch function's call.
class fill_sink {
 public:
  // Announces the blob's size (its Content-Length), or nullopt when the source does not say,
  // before the first write. Clients waiting for the fill get their answer (status and length)
  // from this; a fill that never calls it announces the size when it ends. Later calls are
  // ignored.
  void begin(std::optional<std::uint64_t> size);
  // Appends bytes to the temporary file and makes them readable to the waiting clients.
  // False means stop fetching: the fill was cancelled, the disk refused the write, or more
  // bytes arrived than announced (the fill then fails with that reason).
  bool write(std::string_view bytes);
  // write() without the copy, for a source that reads straight into the fill's buffer: room()
  // is where the next bytes go (empty when the fill cannot take more: then stop fetching), and
  // filled(n) takes the first n bytes put there, with write()'s checks and result.
  std::span<char> room();
  bool filled(std::size_t n);
  // Tripped when the fill is cancelled (blob_fills::shutdown): hand it to the transfer
  // (client::blob_read_options::abort) so a blocked read ends at once.
  const std::shared_ptr<client::abort_handle>& abort_handle() const noexcept;
  // Bytes written so far.
  std::uint64_t written() const noexcept;

 private:
  friend class blob_fills;
  explicit fill_sink(detail::fill_state& state) noexcept : state_(state) {}
  detail::fill_state& state_;
};

// The fetch function: streams the blob into the sink and returns nullopt when every byte was
// written, or why it could not. It runs on the fill's own thread, once per fill.
using fetch_fn = std::function<std::optional<fill_failure>(fill_sink&)>;

// One client's view of a fill: bytes [first, first + length) of the blob, read as they
// arrive. Move-only. Dropping a reader leaves the fill running.
class fill_reader {
 public:
  fill_reader(fill_reader&&) noexcept;
  fill_reader& operator=(fill_reader&&) noexcept;
  fill_reader(const fill_reader&) = delete;
  fill_reader& operator=(const fill_reader&) = delete;
  ~fill_reader();

  // The size the fill announced (nullopt when the source did not say).
  std::optional<std::uint64_t> size() const;
  // Restricts the reader to `length` bytes from `first` (a Range request). Call before the
  // first read.
  void set_range(std::uint64_t first, std::uint64_t length);

  // Blocks until bytes are readable, then copies up to `capacity` of them into `buffer`.
  // Returns the count; 0 at the end of the range (or of the blob, once verified); -1 when the
  // fill failed (failure() says why) or the file could not be read.
  std::int64_t read(char* buffer, std::size_t capacity);
  // Like read(), but gives up waiting after `timeout` and returns -2 (for tests and for
  // callers that must notice their own cancellation).
  std::int64_t read_for(char* buffer, std::size_t capacity, std::chrono::milliseconds timeout);

  // Why reads return -1, once they do.
  std::optional<fill_failure> failure() const;

 private:
  friend class blob_fills;
  fill_reader(std::shared_ptr<detail::fill_state> state, std::list<std::uint64_t>::iterator position) noexcept;
  std::int64_t read_impl(char* buffer, std::size_t capacity,
                         std::optional<std::chrono::milliseconds> timeout);
  // Leaves the fill's reader positions (the destructor and a move onto this reader).
  void release() noexcept;

  std::shared_ptr<detail::fill_state> state_;
  std::uint64_t offset_ = 0;
  std::optional<std::uint64_t> end_;  // exclusive; nullopt: the end of the blob
  // This reader's entry in the fill's reader positions (guarded by the fill's mutex): the fill
  // keeps the pages from its slowest reader on in the page cache.
  std::list<std::uint64_t>::iterator position_;
};

struct fill_options {
  // Temporaries whose fill is gone and that are older than this are removed by sweep_temps().
  std::chrono::seconds abandoned_temp_age{3600};
  // Called on the fill's thread when a fill has published its blob (`size` verified bytes),
  // and when a fill fails. Optional; must not throw; must not call back into blob_fills.
  std::function<void(const digest& blob, std::uint64_t size)> on_published;
  std::function<void(const digest& blob, const fill_failure& why)> on_failed;
};

class blob_fills {
 public:
  // `store` must outlive this object.
  explicit blob_fills(const storage::blob_store& store, fill_options options = {});
  // Cancels every fill and waits for their threads (shutdown()).
  ~blob_fills();
  blob_fills(const blob_fills&) = delete;
  blob_fills& operator=(const blob_fills&) = delete;

  // The result of join(): exactly one of `published`, `reader` or `failure`.
  struct joined {
    // The blob is in the store already: open it there (a fill finished just now, or it was
    // there all along).
    bool published = false;
    // Stream from the fill (running, or finished but still being published).
    std::unique_ptr<fill_reader> reader;
    // The fill failed before announcing the blob, or fills are shut down.
    std::optional<fill_failure> failure;
    // Whether this call started the fill (false: it joined one in flight).
    bool started = false;
  };

  // Joins the fill of `d`, starting one that runs `fetch` when none is in flight and the
  // blob is not published. Blocks until the fill has announced the blob (begin()) or failed:
  // that is, until the client can be given a status and a length.
  joined join(const digest& d, const fetch_fn& fetch);

  // Cancels every fill (their abort handles are tripped and their writes refused), waits for
  // their threads, and makes later joins fail with 503. Idempotent.
  void shutdown();

  // Fills in flight now.
  std::size_t in_flight() const;
  // Clients that joined a fill started by someone else, since construction.
  std::uint64_t joins_coalesced() const noexcept;

  // Removes temporaries under the store's tmp/ that no fill owns and whose mtime is older
  // than options.abandoned_temp_age (left by a crash). Returns how many were removed.
  std::size_t sweep_temps(std::chrono::system_clock::time_point now);

 private:
  void run(std::shared_ptr<detail::fill_state> state, fetch_fn fetch);
  void reap_finished_threads();

  const storage::blob_store& store_;
  fill_options options_;
  mutable std::mutex mutex_;
  bool shut_down_ = false;
  std::map<digest, std::shared_ptr<detail::fill_state>> fills_;
  struct worker {
    std::thread thread;
    std::shared_ptr<bool> done;  // guarded by mutex_
  };
  std::list<worker> workers_;
  std::atomic<std::uint64_t> coalesced_{0};
};

}  // namespace registryd::oci::cache
