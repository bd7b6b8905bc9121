#include "worker_pool.hpp"

namespace registryd::frontdoor {

worker_pool::worker_pool(std::size_t threads) {
  threads_.reserve(threads);
  for (std::size_t i = 0; i < threads; ++i) threads_.emplace_back([this] { work(); });
}

worker_pool::~worker_pool() { join(); }

void worker_pool::submit(const std::string& client, std::function<void()> run) {
  {
    const std::lock_guard lock(mutex_);
    auto [it, fresh] = lanes_.try_emplace(client);
    lane& l = it->second;
    if (fresh) l.client = client;
    const bool was_waiting = !l.waiting.empty();
    l.waiting.push_back(task{next_sequence_++, std::move(run)});
    if (!was_waiting) turns_.emplace(turn_of(l), &l);
  }
  ready_.notify_one();
}

void worker_pool::join() {
  {
    const std::lock_guard lock(mutex_);
    joining_ = true;
  }
  ready_.notify_all();
  for (auto& t : threads_) {
    if (t.joinable()) t.join();
  }
  threads_.clear();
  // Tasks submitted from outside once the workers had ended go now, unrun, while what they
  // hold (an I/O thread's completion handler) can still be destroyed safely.
  std::map<turn, lane*> dropped_turns;
  std::unordered_map<std::string, lane> dropped;
  {
    const std::lock_guard lock(mutex_);
    dropped_turns.swap(turns_);
    dropped.swap(lanes_);
  }
}

void worker_pool::work() {
  std::unique_lock lock(mutex_);
  for (;;) {
    ready_.wait(lock, [this] { return !turns_.empty() || joining_; });
    // Joining: every task already waiting still runs; a worker ends when none is left. A task
    // at work that submits another is still in its own worker's loop, which takes it.
    if (turns_.empty()) return;
    const auto next = turns_.begin();
    lane& l = *next->second;
    turns_.erase(next);
    task t = std::move(l.waiting.front());
    l.waiting.pop_front();
    ++l.at_work;
    if (!l.waiting.empty()) turns_.emplace(turn_of(l), &l);
    lock.unlock();
    t.run();
    t.run = nullptr;  // what the task holds goes before the lock is taken again
    lock.lock();
    if (!l.waiting.empty()) {
      // One fewer at work: the lane's turn comes sooner.
      turns_.erase(turn_of(l));
      --l.at_work;
      turns_.emplace(turn_of(l), &l);
    } else if (--l.at_work == 0) {
      lanes_.erase(lanes_.find(l.client));  // by position: the key is the lane's own
    }
  }
}

}  // namespace registryd::frontdoor
