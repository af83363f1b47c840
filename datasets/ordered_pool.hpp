// Work on items 0, 1, 2, … done on several threads, a bounded number ahead, and handed
// back in item order: the dataset tools (convert-imageset, compute-mean) decode images in
// parallel while the main thread writes or sums them in list order, so their output is the
// same for any number of threads.
//
// The main thread never blocks for good: next() asks `give_up` every 100 ms while it waits,
// so a stop is seen even while a worker is stuck in a read (a stalled network file system,
// a FIFO nobody writes). Destroying the pool joins its threads; a caller that gave up on a
// stuck one arranges its exit past it (app::exit_past_blocked_reader).
#pragma once

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <thread>
#include <utility>
#include <variant>
#include <vector>

namespace crema {

template <class T>
class OrderedPool {
 public:
  // Runs work(i) for i in [0, count) on `threads` threads (at least 1), claiming items in
  // order and at most `ahead` (at least 1) past the one next() hands back next.
  OrderedPool(int64_t count, int threads, int ahead, std::function<T(int64_t)> work)
      : count_(count), ahead_(std::max(ahead, 1)), work_(std::move(work)) {
    try {
      for (int t = 0; t < std::max(threads, 1); ++t) threads_.emplace_back([this] { run(); });
    } catch (...) {  // a thread refused (ulimit -u): the ones started must not outlive the pool
      stop();
      throw;
    }
  }
  ~OrderedPool() { stop(); }
  OrderedPool(const OrderedPool&) = delete;
  OrderedPool& operator=(const OrderedPool&) = delete;

  // The result of the next item in order (0 first), waiting for it; rethrows what its work
  // threw. While waiting, calls give_up every 100 ms (without the pool's lock) and returns
  // nullopt, taking nothing, once it says yes. Not to be called past the last item.
  std::optional<T> next(const std::function<bool()>& give_up = {}) {
    std::unique_lock<std::mutex> lock(mutex_);
    for (;;) {
      if (const auto it = done_.find(next_take_); it != done_.end()) {
        Result result = std::move(it->second);
        done_.erase(it);
        ++next_take_;
        lock.unlock();
        cv_.notify_all();  // a worker may claim one more item now
        if (auto* error = std::get_if<std::exception_ptr>(&result)) std::rethrow_exception(*error);
        return std::move(std::get<T>(result));
      }
      cv_.wait_for(lock, std::chrono::milliseconds(100));
      if (give_up && !done_.count(next_take_)) {
        lock.unlock();
        if (give_up()) return std::nullopt;
        lock.lock();
      }
    }
  }

 private:
  using Result = std::variant<T, std::exception_ptr>;

  void stop() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stopping_ = true;
    }
    cv_.notify_all();
    for (std::thread& t : threads_) t.join();
    threads_.clear();
  }

  void run() {
    for (;;) {
      int64_t item = 0;
      {
        std::unique_lock<std::mutex> lock(mutex_);
        cv_.wait(lock, [&] { return stopping_ || (next_claim_ < count_ && next_claim_ < next_take_ + ahead_); });
        if (stopping_) return;
        item = next_claim_++;
      }
      Result result;
      try {
        result.template emplace<T>(work_(item));
      } catch (...) {
        result = std::current_exception();
      }
      {
        std::lock_guard<std::mutex> lock(mutex_);
        done_.emplace(item, std::move(result));
      }
      cv_.notify_all();
    }
  }

  const int64_t count_;
  const int64_t ahead_;
  std::function<T(int64_t)> work_;
  std::mutex mutex_;
  std::condition_variable cv_;      // an item claimable, a result done, or the stop
  std::map<int64_t, Result> done_;  // finished items not yet handed back
  int64_t next_claim_ = 0, next_take_ = 0;
  bool stopping_ = false;
  std::vector<std::thread> threads_;  // last: started once the rest is set up
};

}  // namespace crema
