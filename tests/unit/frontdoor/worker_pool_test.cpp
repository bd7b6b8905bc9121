// The front door's worker pool: lanes per client, the fewest at work first.
#include "worker_pool.hpp"

#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <future>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

using registryd::frontdoor::worker_pool;
using namespace std::chrono_literals;

namespace {

// Tasks that record the order they ran in; a held task waits for its release.
struct recorder {
  std::mutex mutex;
  std::vector<std::string> order;
  void note(const std::string& name) {
    const std::lock_guard lock(mutex);
    order.push_back(name);
  }
};

}  // namespace

TEST_CASE("a free worker goes to the lane with the fewest tasks at work, and a lane keeps its order",
          "[frontdoor][workers]") {
  recorder r;
  std::promise<void> release_a1, release_a2;
  auto a1 = release_a1.get_future().share();
  auto a2 = release_a2.get_future().share();
  std::promise<void> started_a1, started_a2;
  {
    worker_pool pool(2);
    // Declared after the pool, so destroyed first: whatever fails below, the held tasks end
    // and the pool's join does not wait for them forever.
    struct release_all {
      std::promise<void>& a1;
      std::promise<void>& a2;
      bool done1 = false;
      bool done2 = false;
      void one() {
        done1 = true;
        a1.set_value();
      }
      void two() {
        done2 = true;
        a2.set_value();
      }
      ~release_all() {
        if (!done1) a1.set_value();
        if (!done2) a2.set_value();
      }
    } release{release_a1, release_a2};
    pool.submit("a", [&, a1] {
      started_a1.set_value();
      a1.wait();
      r.note("a1");
    });
    pool.submit("a", [&, a2] {
      started_a2.set_value();
      a2.wait();
      r.note("a2");
    });
    REQUIRE(started_a1.get_future().wait_for(5s) == std::future_status::ready);
    REQUIRE(started_a2.get_future().wait_for(5s) == std::future_status::ready);
    // Both workers at work for "a"; then three more of its tasks wait, and one of "b".
    for (const char* name : {"a3", "a4", "a5"}) pool.submit("a", [&r, name] { r.note(name); });
    pool.submit("b", [&r] { r.note("b1"); });
    release.one();
    // "b" has none at work and "a" one: b1 goes before a3, though it came last.
    const auto until = std::chrono::steady_clock::now() + 5s;
    for (;;) {
      {
        const std::lock_guard lock(r.mutex);
        if (r.order.size() >= 5) break;
      }
      REQUIRE(std::chrono::steady_clock::now() < until);
      std::this_thread::sleep_for(1ms);
    }
    release.two();
    pool.join();
  }
  REQUIRE(r.order.size() == 6);
  CHECK(r.order[0] == "a1");
  CHECK(r.order[1] == "b1");
  CHECK(r.order[2] == "a3");  // one lane's tasks in the order they came
  CHECK(r.order[3] == "a4");
  CHECK(r.order[4] == "a5");
  CHECK(r.order[5] == "a2");
}

TEST_CASE("join runs every task already submitted, then ends the workers", "[frontdoor][workers]") {
  std::atomic<int> ran{0};
  worker_pool pool(3);
  for (int i = 0; i < 100; ++i) {
    pool.submit("client " + std::to_string(i % 7), [&ran] {
      std::this_thread::sleep_for(100us);
      ++ran;
    });
  }
  pool.join();
  CHECK(ran == 100);
  pool.join();  // again: nothing left to do
}
