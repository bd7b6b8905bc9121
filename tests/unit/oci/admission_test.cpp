// registryd::sdk::admission: places in all and per key, given back by their tickets.
#include <registryd/sdk/admission.hpp>

#include <catch2/catch.hpp>

#include <atomic>
#include <thread>
#include <vector>

using registryd::sdk::admission;

TEST_CASE("admission refuses past the total and past the per-key bound, and says which", "[sdk][admission]") {
  admission a(3, 2);
  admission::refusal why = admission::refusal::total;
  auto a1 = a.enter("a", &why);
  CHECK(a1);
  CHECK(why == admission::refusal::none);
  auto a2 = a.enter("a");
  CHECK(a2);
  auto a3 = a.enter("a", &why);
  CHECK_FALSE(a3);
  CHECK(why == admission::refusal::per_key);
  CHECK(a.held() == 2);
  CHECK(a.held("a") == 2);

  auto b1 = a.enter("b", &why);
  CHECK(b1);
  auto c1 = a.enter("c", &why);
  CHECK_FALSE(c1);
  CHECK(why == admission::refusal::total);
  CHECK(a.held("c") == 0);

  // A place given back is free again, for any key.
  a1 = admission::ticket();
  CHECK(a.held() == 2);
  CHECK(a.held("a") == 1);
  auto c2 = a.enter("c", &why);
  CHECK(c2);
  CHECK(why == admission::refusal::none);
}

TEST_CASE("a ticket moves its place, and may outlive its admission", "[sdk][admission]") {
  admission::ticket kept;
  {
    admission a(1, 1);
    auto t = a.enter("k");
    REQUIRE(t);
    kept = std::move(t);
    CHECK_FALSE(t);  // a moved-from ticket holds nothing
    CHECK(a.held() == 1);
    CHECK_FALSE(a.enter("other"));
    admission::ticket moved(std::move(kept));
    CHECK(a.held() == 1);
    kept = std::move(moved);
  }
  CHECK(kept);
  kept = admission::ticket();  // the counts outlived the admission: no use after free (ASan)
  CHECK_FALSE(kept);
}

TEST_CASE("admission holds its bounds under threads entering and leaving at once", "[sdk][admission]") {
  admission a(8, 3);
  std::atomic<int> over{0};
  std::atomic<int> admitted{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      const std::string key = t % 2 == 0 ? "even" : "odd";
      for (int i = 0; i < 2000; ++i) {
        auto place = a.enter(key);
        if (!place) continue;
        ++admitted;
        if (a.held(key) > 3 || a.held() > 8) ++over;
      }
    });
  }
  for (auto& t : threads) t.join();
  CHECK(over == 0);
  CHECK(admitted > 0);
  CHECK(a.held() == 0);
  CHECK(a.held("even") == 0);
}
