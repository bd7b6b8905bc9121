#include <registryd/oci/cache/blob_fill.hpp>

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <limits>
#include <set>
#include <unistd.h>

namespace registryd::oci::cache {
namespace {

// Sources hand over what one socket read gave (at most 64 KiB, often one TLS record or a few KiB
// from a slow link): writing each to the file and waking every reader for it would cost a
// syscall and a wake-up per piece. Bytes are gathered in the writer's buffer (1 MiB) and flushed
// to the file (where readers see them) once this many are waiting, or once this long has passed
// since the last flush, so a slow source still reaches readers promptly. (A source that stalls
// keeps what is gathered, under flush_bytes, from readers until it goes on or ends.) 1 MiB, not
// less: a reader that keeps up takes what one flush made readable in one read, and the host
// passes each read on with two thread hand-offs, so smaller flushes mean more wake-ups per blob
// (docs/packages-proxy.md has the measurement).
constexpr std::uint64_t flush_bytes = 1024 * 1024;
constexpr auto flush_interval = std::chrono::milliseconds(20);

}  // namespace

namespace detail {

// One fill, shared by its thread and its readers. Every field below the mutex is guarded by it.
struct fill_state {
  explicit fill_state(digest d) : blob(std::move(d)) {}
  ~fill_state() {
    if (read_fd >= 0) ::close(read_fd);
  }
  fill_state(const fill_state&) = delete;
  fill_state& operator=(const fill_state&) = delete;

  const digest blob;
  const std::shared_ptr<client::abort_handle> abort = std::make_shared<client::abort_handle>();
  // Read side of the temporary, opened before any reader exists and closed with the state:
  // readers pread through it, so the rename on publication and the unlink on failure leave
  // their view intact.
  int read_fd = -1;
  std::filesystem::path temp_path;
  // Only the fill's thread touches the writer.
  std::optional<storage::blob_writer> writer;
  std::uint64_t written = 0;  // appended so far; fill thread only (readers see `flushed`)
  std::chrono::steady_clock::time_point last_flush = std::chrono::steady_clock::now();  // fill thread only

  mutable std::mutex mutex;
  std::condition_variable changed;
  bool announced = false;                // begin() happened: readers may be created
  std::optional<std::uint64_t> size;     // as announced
  std::uint64_t flushed = 0;             // bytes in the temporary file
  bool verified = false;                 // every byte is there and hashed to `blob`
  std::optional<fill_failure> failure;   // the fill failed; readers get -1
  bool cancelled = false;
  // Where each live reader has read to (one entry per reader, removed with it).
  std::list<std::uint64_t> positions;

  void notify() { changed.notify_all(); }
  // The offset the slowest reader has reached; no limit when no one reads.
  std::uint64_t slowest_reader() const {
    std::uint64_t slowest = std::numeric_limits<std::uint64_t>::max();
    for (const auto p : positions) slowest = std::min(slowest, p);
    return slowest;
  }
};

}  // namespace detail

using detail::fill_state;

// ---------------------------------------------------------------------------------------------
// fill_sink

void fill_sink::begin(std::optional<std::uint64_t> size) {
  std::lock_guard lock(state_.mutex);
  if (state_.announced) return;
  state_.announced = true;
  state_.size = size;
  state_.notify();
}

bool fill_sink::write(std::string_view bytes) {
  if (bytes.empty()) {
    std::lock_guard lock(state_.mutex);
    return !state_.cancelled && !state_.failure;
  }
  while (!bytes.empty()) {
    const auto space = room();
    if (space.empty()) return false;
    const std::size_t n = std::min(space.size(), bytes.size());
    std::memcpy(space.data(), bytes.data(), n);
    if (!filled(n)) return false;
    bytes.remove_prefix(n);
  }
  return true;
}

std::span<char> fill_sink::room() {
  fill_state& s = state_;
  {
    std::lock_guard lock(s.mutex);
    if (s.cancelled || s.failure) return {};
  }
  auto space = s.writer->room();
  if (!space) {
    std::lock_guard lock(s.mutex);
    s.failure = fill_failure{500, "UNKNOWN", "the cache cannot write " + s.blob.str() + ": " + space.error_message()};
    s.notify();
    return {};
  }
  return *space;
}

bool fill_sink::filled(std::size_t n) {
  fill_state& s = state_;
  {
    std::lock_guard lock(s.mutex);
    if (s.cancelled || s.failure) return false;
    // The pages no reader has read yet stay cached: dropping them behind the writer would make
    // a reader that lags more than two writeback steps read them back from the disk.
    s.writer->set_drop_limit(s.slowest_reader());
    if (s.size && s.written + n > *s.size) {
      s.failure = fill_failure{502, "BLOB_UNKNOWN",
                               "the upstream sent more than the " + std::to_string(*s.size) +
                                   " bytes it announced for " + s.blob.str()};
      return false;
    }
  }
  if (n == 0) return true;
  auto st = s.writer->appended(n);
  s.written += n;
  // Readers can only see what is in the file.
  const auto now = std::chrono::steady_clock::now();
  const bool flush = st && (s.written - s.writer->flushed_size() >= flush_bytes || now - s.last_flush >= flush_interval);
  if (flush) {
    st = s.writer->flush();
    s.last_flush = now;
  }
  if (!st) {
    std::lock_guard lock(s.mutex);
    s.failure = fill_failure{500, "UNKNOWN", "the cache cannot write " + s.blob.str() + ": " + st.error_message()};
    s.notify();
    return false;
  }
  const std::uint64_t in_file = s.writer->flushed_size();
  std::lock_guard lock(s.mutex);
  if (in_file != s.flushed) {
    s.flushed = in_file;
    s.notify();
  }
  return true;
}

const std::shared_ptr<client::abort_handle>& fill_sink::abort_handle() const noexcept { return state_.abort; }

std::uint64_t fill_sink::written() const noexcept { return state_.written; }

// ---------------------------------------------------------------------------------------------
// fill_reader

fill_reader::fill_reader(std::shared_ptr<fill_state> state, std::list<std::uint64_t>::iterator position) noexcept
    : state_(std::move(state)), position_(position) {}
fill_reader::fill_reader(fill_reader&& o) noexcept
    : state_(std::move(o.state_)), offset_(o.offset_), end_(o.end_), position_(o.position_) {}
fill_reader& fill_reader::operator=(fill_reader&& o) noexcept {
  if (this != &o) {
    release();
    state_ = std::move(o.state_);
    offset_ = o.offset_;
    end_ = o.end_;
    position_ = o.position_;
  }
  return *this;
}
fill_reader::~fill_reader() { release(); }

void fill_reader::release() noexcept {
  if (!state_) return;
  {
    std::lock_guard lock(state_->mutex);
    state_->positions.erase(position_);
  }
  state_.reset();
}

std::optional<std::uint64_t> fill_reader::size() const {
  std::lock_guard lock(state_->mutex);
  return state_->size;
}

void fill_reader::set_range(std::uint64_t first, std::uint64_t length) {
  offset_ = first;
  end_ = first + length;
}

std::optional<fill_failure> fill_reader::failure() const {
  std::lock_guard lock(state_->mutex);
  return state_->failure;
}

std::int64_t fill_reader::read(char* buffer, std::size_t capacity) {
  return read_impl(buffer, capacity, std::nullopt);
}

std::int64_t fill_reader::read_for(char* buffer, std::size_t capacity, std::chrono::milliseconds timeout) {
  return read_impl(buffer, capacity, timeout);
}

std::int64_t fill_reader::read_impl(char* buffer, std::size_t capacity,
                                    std::optional<std::chrono::milliseconds> timeout) {
  fill_state& s = *state_;
  if (end_ && offset_ >= *end_) return 0;
  std::uint64_t readable = 0;
  {
    std::unique_lock lock(s.mutex);
    *position_ = offset_;
    const auto deadline = std::chrono::steady_clock::now() + timeout.value_or(std::chrono::milliseconds(0));
    for (;;) {
      if (s.failure) return -1;
      // Until the content is verified, its last byte is withheld, so a failed fill never hands
      // anyone a complete (and possibly wrong) blob.
      readable = s.verified ? s.flushed : (s.flushed > 0 ? s.flushed - 1 : 0);
      if (offset_ < readable) break;
      if (s.verified) return 0;  // the whole blob was read
      if (!timeout) {
        s.changed.wait(lock);
      } else if (s.changed.wait_until(lock, deadline) == std::cv_status::timeout) {
        return -2;
      }
    }
  }
  std::uint64_t want = std::min<std::uint64_t>(capacity, readable - offset_);
  if (end_) want = std::min(want, *end_ - offset_);
  ssize_t n;
  do {
    n = ::pread(s.read_fd, buffer, static_cast<std::size_t>(want), static_cast<off_t>(offset_));
  } while (n < 0 && errno == EINTR);
  if (n <= 0) return -1;
  offset_ += static_cast<std::uint64_t>(n);
  return n;
}

// ---------------------------------------------------------------------------------------------
// blob_fills

blob_fills::blob_fills(const storage::blob_store& store, fill_options options)
    : store_(store), options_(options) {}

blob_fills::~blob_fills() { shutdown(); }

blob_fills::joined blob_fills::join(const digest& d, const fetch_fn& fetch) {
  joined out;
  std::shared_ptr<fill_state> state;
  // This client's reader position, taken before the fill can write (or, joining a running fill,
  // at once): from here on the fill keeps the pages this client has still to read.
  std::list<std::uint64_t>::iterator position;
  const auto take_position = [&] {
    std::lock_guard l(state->mutex);
    position = state->positions.insert(state->positions.end(), 0);
  };
  {
    std::lock_guard lock(mutex_);
    if (shut_down_) {
      out.failure = fill_failure{503, "UNAVAILABLE", "the cache is shutting down"};
      return out;
    }
    const auto it = fills_.find(d);
    if (it != fills_.end()) {
      state = it->second;
      ++coalesced_;
      take_position();
    } else {
      // Checked under the lock: a fill publishes before it leaves the map, so a blob that is
      // neither in flight nor in the store really needs a fetch.
      if (store_.exists(d)) {
        out.published = true;
        return out;
      }
      state = std::make_shared<fill_state>(d);
      auto writer = store_.create_writer(d.algorithm());
      if (!writer) {
        out.failure = fill_failure{500, "UNKNOWN", "the cache cannot store " + d.str() + ": " + writer.error_message()};
        return out;
      }
      // Clients get the bytes at the upstream's pace; the disk catches up behind.
      writer->set_drop_behind(storage::blob_writer::drop_behind::no_wait);
      state->temp_path = writer->path();
      state->read_fd = ::open(state->temp_path.c_str(), O_RDONLY | O_CLOEXEC);
      if (state->read_fd < 0) {
        const int e = errno;
        writer->abort();
        out.failure = fill_failure{500, "UNKNOWN", "the cache cannot read back " + state->temp_path.string() +
                                                       ": " + std::string(std::strerror(e))};
        return out;
      }
      state->writer.emplace(std::move(writer.value()));
      take_position();
      fills_.emplace(d, state);
      out.started = true;
      reap_finished_threads();
      auto done = std::make_shared<bool>(false);
      workers_.push_back(worker{std::thread([this, state, fetch, done] {
                                  run(state, fetch);
                                  std::lock_guard l(mutex_);
                                  *done = true;
                                }),
                                done});
    }
  }

  std::unique_lock lock(state->mutex);
  state->changed.wait(lock, [&] { return state->announced || state->failure.has_value(); });
  if (state->failure) {
    // Failed before this client had a byte: it gets the reason, not a cut connection.
    out.failure = state->failure;
    state->positions.erase(position);
    return out;
  }
  lock.unlock();
  out.reader.reset(new fill_reader(state, position));
  return out;
}

void blob_fills::run(std::shared_ptr<fill_state> state, fetch_fn fetch) {
  fill_state& s = *state;
  fill_sink sink(s);
  std::optional<fill_failure> failure;
  try {
    failure = fetch(sink);
  } catch (const std::exception& e) {
    failure = fill_failure{500, "UNKNOWN", std::string("the fill of ") + s.blob.str() + " failed: " + e.what()};
  } catch (...) {
    failure = fill_failure{500, "UNKNOWN", "the fill of " + s.blob.str() + " failed"};
  }
  {
    std::lock_guard lock(s.mutex);
    // A write the sink refused is the root cause of whatever the fetch then reported.
    if (s.failure) failure = s.failure;
    if (!failure && s.cancelled) failure = fill_failure{503, "UNAVAILABLE", "the cache is shutting down"};
    if (!failure && s.size && s.written != *s.size) {
      failure = fill_failure{502, "BLOB_UNKNOWN",
                             "the upstream sent " + std::to_string(s.written) + " of the " +
                                 std::to_string(*s.size) + " bytes it announced for " + s.blob.str()};
    }
  }
  if (!failure) {
    if (auto st = s.writer->flush(); !st) {
      failure = fill_failure{500, "UNKNOWN", "the cache cannot write " + s.blob.str() + ": " + st.error_message()};
    }
  }
  if (!failure) {
    auto actual = s.writer->current_digest();
    if (!actual) {
      failure = fill_failure{500, "UNKNOWN", "the cache cannot hash " + s.blob.str() + ": " + actual.error_message()};
    } else if (*actual != s.blob) {
      failure = fill_failure{502, "BLOB_UNKNOWN",
                             "the upstream sent content with digest " + actual->str() + " for " + s.blob.str()};
    }
  }

  if (failure) {
    s.writer->abort();
    {
      std::lock_guard lock(s.mutex);
      s.failure = failure;
      s.notify();
    }
    if (options_.on_failed) options_.on_failed(s.blob, *failure);
    std::lock_guard lock(mutex_);
    fills_.erase(s.blob);
    return;
  }

  // Verified: readers may have the last byte now; the fsync and rename only make the cache
  // durable and need not delay anyone.
  {
    std::lock_guard lock(s.mutex);
    if (!s.announced) {
      s.announced = true;
      s.size = s.written;
    }
    s.flushed = s.written;
    s.verified = true;
    s.notify();
  }
  // When publication fails, the clients still got verified bytes; the next join fetches again.
  auto committed = s.writer->commit(s.blob);
  if (committed && options_.on_published) options_.on_published(s.blob, committed->size);
  if (!committed && options_.on_failed) {
    options_.on_failed(s.blob, fill_failure{500, "UNKNOWN", "the cache cannot publish " + s.blob.str() + ": " +
                                                                committed.error_message()});
  }
  std::lock_guard lock(mutex_);
  fills_.erase(s.blob);
}

void blob_fills::reap_finished_threads() {
  for (auto it = workers_.begin(); it != workers_.end();) {
    if (*it->done) {
      it->thread.join();
      it = workers_.erase(it);
    } else {
      ++it;
    }
  }
}

void blob_fills::shutdown() {
  std::list<worker> workers;
  {
    std::lock_guard lock(mutex_);
    shut_down_ = true;
    for (auto& [d, state] : fills_) {
      {
        std::lock_guard l(state->mutex);
        state->cancelled = true;
        state->notify();
      }
      state->abort->abort();
    }
    workers.swap(workers_);
  }
  for (auto& w : workers) {
    if (w.thread.joinable()) w.thread.join();
  }
}

std::size_t blob_fills::in_flight() const {
  std::lock_guard lock(mutex_);
  return fills_.size();
}

std::uint64_t blob_fills::joins_coalesced() const noexcept { return coalesced_.load(); }

std::size_t blob_fills::sweep_temps(std::chrono::system_clock::time_point now) {
  std::set<std::filesystem::path> owned;
  {
    std::lock_guard lock(mutex_);
    for (const auto& [d, state] : fills_) owned.insert(state->temp_path);
  }
  std::size_t removed = 0;
  store_.for_each_temp([&](const std::filesystem::path& p, std::uint64_t, storage::time_point mtime) {
    if (owned.count(p) != 0 || now - mtime < options_.abandoned_temp_age) return;
    std::error_code ec;
    if (std::filesystem::remove(p, ec)) ++removed;
  });
  return removed;
}

}  // namespace registryd::oci::cache
