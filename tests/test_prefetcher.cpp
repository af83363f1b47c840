// The Prefetcher's wait for batches that a stop can leave: Prefetcher::await.
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "datasets/prefetcher.hpp"

using namespace crema;

namespace {

// Reads sample i as the value i; sample `stuck` blocks its reader until released, as a read
// on a stalled file system does, and sample `broken` cannot be read at all.
struct StallingSource {
  int stuck = -1, broken = -1;
  std::atomic<bool> released{false};
  FillSample fill() {
    return [this](int index, Rng&, float* const* outs) {
      if (index == stuck)
        while (!released.load()) std::this_thread::sleep_for(std::chrono::milliseconds(5));
      if (index == broken) throw Error("sample " + std::to_string(index) + " is unreadable");
      outs[0][0] = static_cast<float>(index);
    };
  }
};

float take(Prefetcher& p) {
  Prefetcher::Batch batch = p.next();
  const float value = batch.host[0][0];
  p.recycle(batch);
  return value;
}

}  // namespace

TEST_CASE("Prefetcher::await: a stop leaves a wait for a stuck reader with nothing taken, and ready batches pass") {
  StallingSource source;
  source.stuck = 3;
  source.broken = 5;
  EpochSampler sampler;
  sampler.init(8, false, 1);
  PrefetchOptions options;
  options.prefetch = 2;
  options.threads = 1;
  options.layer = "d";
  Prefetcher p(options, std::move(sampler), 7, 1, {1}, source.fill());
  const auto never = [] { return false; };
  for (int i = 0; i < 3; ++i) {
    REQUIRE(p.await(1, never));
    CHECK(take(p) == static_cast<float>(i));
  }
  const std::string before = p.state();
  const double waited_before = p.wait_seconds();
  int asked = 0;
  CHECK_FALSE(p.await(1, [&] { return ++asked == 3; }));  // sample 3 is stuck: given up on the third question
  CHECK(asked == 3);
  CHECK(p.state() == before);  // nothing taken
  CHECK(p.batches() == 3);
  CHECK(p.wait_seconds() - waited_before >= 0.25);  // three 100 ms rounds, counted as data wait

  // The read ends: the batches come in order, 3 then 4, and await counts as many as asked.
  source.released = true;
  REQUIRE(p.await(2, never));
  CHECK(take(p) == 3.f);
  CHECK(take(p) == 4.f);
  // A batch that failed is ready too (there will be no other), and next() gives its error.
  asked = 0;
  CHECK(p.await(2, [&] { return ++asked > 50; }));
  CHECK(asked < 50);
  CHECK_THROWS_WITH_AS(p.next(), doctest::Contains("sample 5 is unreadable"), Error);
}

TEST_CASE("Prefetcher: one good sample among bad ones keeps a shuffled source going, none left stops it") {
  // Samples 1 and 2 are missing; batches of 2 of a shuffled epoch of 3 meet runs of bad samples
  // that span two epochs (4 misses in a row for 3 samples), which once read as "every sample is bad".
  const auto fill = [](int good) {
    return [good](int index, Rng&, float* const* outs) {
      if (index != good) throw BadSample("sample " + std::to_string(index) + " is missing");
      outs[0][0] = static_cast<float>(index);
    };
  };
  for (int threads : {0, 2}) {
    CAPTURE(threads);
    EpochSampler sampler;
    sampler.init(3, true, 5);
    PrefetchOptions options;
    options.threads = threads;
    options.layer = "d";
    Prefetcher p(options, std::move(sampler), 7, 2, {1}, fill(0));
    for (int b = 0; b < 60; ++b) {
      Prefetcher::Batch batch = p.next();
      CHECK(batch.host[0][0] == 0.f);
      CHECK(batch.host[0][1] == 0.f);
      p.recycle(batch);
    }
  }
  EpochSampler sampler;
  sampler.init(3, true, 5);
  PrefetchOptions options;
  options.layer = "d";
  Prefetcher none(options, std::move(sampler), 7, 2, {1}, fill(-1));
  CHECK_THROWS_WITH_AS(none.next(), "data layer 'd': every sample of the source is bad; nothing to train on", Error);
}
