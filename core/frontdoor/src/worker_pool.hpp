// The front door's workers: the threads that run request handlers and read streamed answers
// from plugins (docs/frontdoor.md, "Shape"). Tasks wait in one lane per client address; a
// free worker takes the oldest task of the lane whose client has the fewest tasks at work
// (the longest waiting first among equals). One client that keeps many requests waiting, a
// flood over many connections, then delays another client's request until a worker frees,
// not until its own queue is through. Tasks of one client run in the order they came.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

namespace registryd::frontdoor {

class worker_pool {
 public:
  explicit worker_pool(std::size_t threads);
  ~worker_pool();
  worker_pool(const worker_pool&) = delete;
  worker_pool& operator=(const worker_pool&) = delete;

  // Runs `task` on a worker for `client`. A task that throws ends the process, as an Asio
  // handler that throws out of a thread pool does.
  void submit(const std::string& client, std::function<void()> task);
  // Runs every task submitted before it, then ends the threads. Tasks submitted afterwards
  // from outside the pool are dropped unrun (destroyed here, or by the next join).
  void join();

 private:
  struct task {
    std::uint64_t sequence;
    std::function<void()> run;
  };
  struct lane {
    std::string client;
    std::deque<task> waiting;
    std::size_t at_work = 0;
  };
  // Lanes with a task waiting, the next one to take first: fewest at work, then oldest task.
  using turn = std::pair<std::size_t, std::uint64_t>;
  static turn turn_of(const lane& l) { return {l.at_work, l.waiting.front().sequence}; }

  void work();

  std::mutex mutex_;
  std::condition_variable ready_;
  std::unordered_map<std::string, lane> lanes_;  // clients with a task waiting or at work
  std::map<turn, lane*> turns_;
  std::uint64_t next_sequence_ = 0;
  bool joining_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace registryd::frontdoor
