// OrderedPool: work done on several threads, handed back in item order, a bounded number
// ahead, with a wait that a stop can leave while a worker is stuck.
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>

#include "datasets/ordered_pool.hpp"
#include "engine/error.hpp"

using namespace crema;

TEST_CASE("OrderedPool hands results back in order for any number of threads, never far ahead") {
  for (const int threads : {1, 2, 5}) {
    CAPTURE(threads);
    std::atomic<int64_t> taken{0};
    std::atomic<int64_t> most_ahead{0};
    const int ahead = 3;
    OrderedPool<int64_t> pool(50, threads, ahead, [&](int64_t i) {
      // How far past the items taken so far this one was claimed (`taken` is set just after
      // next() returns, so a claim can find it one short: at most `ahead`).
      const int64_t lead = i - taken.load();
      for (int64_t m = most_ahead.load(); lead > m && !most_ahead.compare_exchange_weak(m, lead);) {
      }
      // Uneven times, so later items often finish first.
      std::this_thread::sleep_for(std::chrono::microseconds((i * 7919) % 5 * 300));
      return i * i;
    });
    for (int64_t i = 0; i < 50; ++i) {
      const std::optional<int64_t> r = pool.next();
      REQUIRE(r.has_value());
      CHECK(*r == i * i);
      taken = i + 1;
    }
    CHECK(most_ahead.load() <= ahead);
    if (threads > 1) CHECK(most_ahead.load() >= 1);  // they did work ahead
  }
}

TEST_CASE("OrderedPool rethrows an item's error at that item, and the items after it still come") {
  OrderedPool<std::string> pool(5, 2, 4, [](int64_t i) -> std::string {
    if (i == 2) throw Error("item 2 is unreadable");
    return "item " + std::to_string(i);
  });
  CHECK(*pool.next() == "item 0");
  CHECK(*pool.next() == "item 1");
  CHECK_THROWS_WITH_AS(pool.next(), "item 2 is unreadable", Error);
  CHECK(*pool.next() == "item 3");
  CHECK(*pool.next() == "item 4");
}

TEST_CASE("OrderedPool::next gives up on a stuck item with nothing taken, and waits for it again after") {
  std::atomic<bool> released{false};
  OrderedPool<int> pool(4, 2, 4, [&](int64_t i) {
    if (i == 1)
      while (!released.load()) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    return static_cast<int>(i) + 10;
  });
  CHECK(*pool.next() == 10);
  int asked = 0;
  const auto start = std::chrono::steady_clock::now();
  const auto seconds = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(); };
  CHECK_FALSE(pool.next([&] { return ++asked, seconds() >= 0.3; }).has_value());
  CHECK(seconds() < 5);
  CHECK(asked >= 2);
  CHECK(asked <= 10);  // asked about every 100 ms (and as items 2 and 3 finish), not in a busy loop
  released = true;
  CHECK(*pool.next() == 11);  // the item it gave up on, not skipped
  CHECK(*pool.next() == 12);
  CHECK(*pool.next() == 13);
}
