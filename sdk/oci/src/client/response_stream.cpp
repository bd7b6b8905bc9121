#include <registryd/oci/client/response_stream.hpp>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>
#include <string>
#include <thread>

namespace registryd::oci::client {
namespace {

// The transport hands the body over as each socket read gave it (one TLS record, or a few KiB
// from a slow link, at most 64 KiB). Passing each to the reader alone would cost
// a wake-up (two context switches) per piece: half the CPU of a relay went there. Pieces are
// gathered into blocks of this size, and a reader that has some bytes waits this long for a
// fuller read before it takes what there is, so a slow upstream is not held back.
constexpr std::size_t block_bytes = 64 * 1024;
constexpr auto gather_window = std::chrono::milliseconds(5);

}  // namespace

struct response_stream::state {
  std::mutex mutex;
  std::condition_variable changed;
  bool head_ready = false;
  bool finished = false;
  bool closing = false;
  response_head head;
  std::deque<std::string> pieces;
  std::size_t front_offset = 0;  // bytes of pieces.front() already read
  std::size_t queued = 0;
  std::size_t limit = 0;
  // Who waits for whom, so that each side wakes the other only when it has reason to: the
  // reader once `reader_want` bytes are queued, the writer once the queue is half drained.
  bool reader_waiting = false;
  std::size_t reader_want = 1;
  bool writer_waiting = false;
  std::optional<upstream_error> failure;
  std::shared_ptr<abort_handle> abort;
  std::thread worker;
};

result<std::unique_ptr<response_stream>> response_stream::open(const registry_client& client, request req,
                                                               std::size_t buffer_bytes) {
  auto s = std::make_shared<state>();
  s->limit = std::max<std::size_t>(buffer_bytes, 64 * 1024);
  req.deliver_errors = true;
  if (!req.abort) req.abort = std::make_shared<abort_handle>();
  s->abort = req.abort;

  s->worker = std::thread([s, &client, r = std::move(req)] {
    response_handler handler{
        [&](const response_head& h) {
          std::lock_guard lock(s->mutex);
          s->head = h;
          s->head_ready = true;
          s->changed.notify_all();
          return !s->closing;
        },
        [&](std::string_view piece) {
          std::unique_lock lock(s->mutex);
          if (s->queued >= s->limit && !s->closing) {
            s->writer_waiting = true;
            s->changed.wait(lock, [&] { return s->queued <= s->limit / 2 || s->closing; });
            s->writer_waiting = false;
          }
          if (s->closing) return false;
          // Appending to the block the reader may be reading is safe: it reads under the
          // mutex, by offset.
          if (s->pieces.empty() || s->pieces.back().size() + piece.size() > block_bytes) {
            s->pieces.emplace_back().reserve(std::max(block_bytes, piece.size()));
          }
          s->pieces.back().append(piece);
          s->queued += piece.size();
          if (s->reader_waiting && s->queued >= s->reader_want) s->changed.notify_all();
          return true;
        }};
    auto answer = client.send(r, handler);
    std::lock_guard lock(s->mutex);
    s->finished = true;
    // An HTTP error answer went to the handler as a stream of its own: not a failure of it.
    if (!answer && (answer.error().kind != error_kind::http || !s->head_ready) && !s->closing) {
      s->failure = answer.error();
    }
    s->changed.notify_all();
  });

  std::unique_lock lock(s->mutex);
  s->changed.wait(lock, [&] { return s->head_ready || s->finished; });
  if (!s->head_ready) {
    lock.unlock();
    s->worker.join();
    if (s->failure) return *s->failure;
    return make_error(error_kind::protocol, "the exchange ended without an answer");
  }
  lock.unlock();
  return std::unique_ptr<response_stream>(new response_stream(std::move(s)));
}

response_stream::response_stream(std::shared_ptr<state> s) : state_(std::move(s)) {}

response_stream::~response_stream() {
  {
    std::lock_guard lock(state_->mutex);
    state_->closing = true;
    state_->changed.notify_all();
  }
  state_->abort->abort();  // a finished exchange has nothing to shut: then a no-op
  if (state_->worker.joinable()) state_->worker.join();
}

const response_head& response_stream::head() const noexcept { return state_->head; }

std::ptrdiff_t response_stream::read(char* buffer, std::size_t capacity) {
  auto& s = *state_;
  std::unique_lock lock(s.mutex);
  // The first byte is waited for as long as it takes; then, briefly, a fuller read.
  s.reader_waiting = true;
  s.reader_want = 1;
  s.changed.wait(lock, [&] { return s.queued > 0 || s.finished; });
  const std::size_t want = std::min(capacity, block_bytes);
  if (s.queued < want && !s.finished) {
    s.reader_want = want;
    s.changed.wait_for(lock, gather_window, [&] { return s.queued >= want || s.finished; });
  }
  s.reader_waiting = false;
  if (s.pieces.empty()) return s.failure ? -1 : 0;
  std::size_t n = 0;
  while (n < capacity && !s.pieces.empty()) {
    const auto& front = s.pieces.front();
    const auto take = std::min(capacity - n, front.size() - s.front_offset);
    std::memcpy(buffer + n, front.data() + s.front_offset, take);
    n += take;
    s.front_offset += take;
    if (s.front_offset == front.size()) {
      s.pieces.pop_front();
      s.front_offset = 0;
    }
  }
  s.queued -= n;
  if (s.writer_waiting && s.queued <= s.limit / 2) s.changed.notify_all();
  return static_cast<std::ptrdiff_t>(n);
}

std::optional<upstream_error> response_stream::error() const {
  std::lock_guard lock(state_->mutex);
  return state_->failure;
}

}  // namespace registryd::oci::client
