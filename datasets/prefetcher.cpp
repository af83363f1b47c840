#include "datasets/prefetcher.hpp"

#include <spdlog/spdlog.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <mutex>
#include <sstream>
#include <system_error>
#include <utility>

#include "engine/blob.hpp"
#include "engine/cuda/cuda_runtime_api.hpp"
#include "engine/error.hpp"
#include "engine/math.hpp"

namespace crema {

// One batch's arrays, reused from batch to batch. Allocated in the producer's thread
// (whose current device is options.device when staging); freed with the prefetcher.
struct Prefetcher::Buffers {
  struct Array {                  // one top's
    std::vector<float> pageable;  // the host array when not page-locked
    float* pinned = nullptr;      // the host array when page-locked
    float* device = nullptr;      // when staging
    size_t count = 0;             // floats each holds
    float* host() { return pinned ? pinned : pageable.data(); }
  };
  std::vector<Array> arrays;  // per top
  int device = -1;            // where the device arrays live; -1: host only
  void* consumed = nullptr;   // event: the solver's stream has read the device arrays
  bool pending = false;       // `consumed` was recorded and the producer has not yet waited for it
  bool free = false;

  Buffers() = default;
  Buffers(const Buffers&) = delete;
  Buffers& operator=(const Buffers&) = delete;
  // What is allocated is freed by the destructor, also after a failure half-way.
  void allocate(int staging_device, const std::vector<size_t>& counts) {
    if (staging_device >= 0) {
      consumed = cuda::create_event(staging_device);
      device = staging_device;
    }
    arrays.resize(counts.size());
    for (size_t t = 0; t < counts.size(); ++t) reserve(t, counts[t]);
  }
  // Array t holds at least `count` floats; what it held is not kept (a larger image came).
  void reserve(size_t t, size_t count) {
    Array& a = arrays[t];
    if (a.count > 0 && a.count >= count) return;
    if (pending) {  // the solver's stream may still read the device arrays about to go
      cuda::wait_event_on_host(consumed);
      pending = false;
    }
    release(a);
    if (device < 0) {
      a.pageable.resize(count);
      a.count = count;
      return;
    }
    try {
      a.pinned = static_cast<float*>(cuda::alloc_pinned(count * sizeof(float)));
    } catch (const Error& e) {
      // Page-locked memory can be refused (a container's limits, a loaded host).
      // Copies from pageable memory are as correct, only slower: the runtime stages
      // them itself, and stage() waits for each batch's copy anyway.
      static std::once_flag warned;
      std::call_once(warned, [&] {
        spdlog::warn(
            "page-locked host memory refused ({}); batches are copied to the device from pageable "
            "memory, more slowly",
            e.what());
      });
      a.pageable.resize(count);
    }
    // Not from the cache: the copy stream writes them, and a cached block may be
    // one the compute stream's queued kernels still use.
    a.device = static_cast<float*>(cuda::alloc_device_uncached(count * sizeof(float)));
    a.count = count;
  }
  void release(Array& a) {
    cuda::free_device_uncached(a.device, device);
    cuda::free_pinned(a.pinned);
    a.device = a.pinned = nullptr;
    std::vector<float>().swap(a.pageable);
    a.count = 0;
  }
  ~Buffers() {
    try {
      if (pending) cuda::wait_event_on_host(consumed);  // the solver's stream may still read them
    } catch (const Error&) {  // the device failed: nothing left to wait for
    }
    for (Array& a : arrays) release(a);
    cuda::destroy_event(consumed);
  }
};

PrefetchOptions parse_prefetch_options(MapReader& r, const std::string& layer, const std::string& in_step) {
  PrefetchOptions o;
  o.layer = layer;
  o.prefetch = r.get_int("prefetch", 4);
  if (o.prefetch < 1 || o.prefetch > 256)
    r.fail("prefetch", "prefetch must be between 1 and 256 (batches prepared ahead; 4 keeps a GPU fed)");
  const int cores = available_cores();
  o.threads = r.get_int("threads", std::clamp(cores / 2, 1, 4));
  if (o.threads < 1 || o.threads > 256) r.fail("threads", "threads must be between 1 and 256");
  o.skip_bad_written = r.has("on_bad_sample");
  o.skip_bad = r.get_enum("on_bad_sample", {"fail", "skip"}, in_step.empty() ? 1 : 0) == 1;
  if (!in_step.empty()) o.fail_advice = in_step;
  return o;
}

Prefetcher::Prefetcher(PrefetchOptions options, EpochSampler sampler, uint64_t seed, int batch_size,
                       std::vector<size_t> sample_sizes, FillSample fill)
    : options_(std::move(options)), sampler_(std::move(sampler)), seeds_(seed), batch_size_(batch_size),
      sample_sizes_(std::move(sample_sizes)), fill_(std::move(fill)) {
  samples_ = sampler_.size();
  shuffled_ = sampler_.shuffles();
  if (options_.prefetch < 1) options_.prefetch = 1;
  if (options_.threads < 1) options_.threads = 1;
  // The batches held ahead are allocated as they fill, so too many would take the machine's
  // memory a little at a time, minutes into the run: said now instead.
  double batch_bytes = 0;
  for (size_t size : sample_sizes_) batch_bytes += 4.0 * static_cast<double>(size) * batch_size_;
  const double held = batch_bytes * (options_.prefetch + 2);
  const double memory = static_cast<double>(sysconf(_SC_PHYS_PAGES)) * static_cast<double>(sysconf(_SC_PAGE_SIZE));
  if (memory > 0 && held > memory / 2)
    throw Error("data layer '" + options_.layer + "': prefetch " + std::to_string(options_.prefetch) + " holds " +
                std::to_string(options_.prefetch + 2) + " batches of " +
                std::to_string(static_cast<long long>(batch_bytes / (1 << 20))) +
                " MiB, more than half of this "
                "machine's memory (" +
                std::to_string(static_cast<long long>(memory / (1 << 30))) + " GiB); lower prefetch or batch_size");
  free_.reserve(static_cast<size_t>(options_.prefetch) + 2);  // recycle() then never allocates
  consumed_state_ = reader_state();
}

Prefetcher::Prefetcher(PrefetchOptions options, EpochSampler sampler, uint64_t seed, std::vector<size_t> first_sizes,
                       FillShaped fill)
    : Prefetcher(std::move(options), std::move(sampler), seed, 1, std::move(first_sizes), FillSample()) {
  fill_shaped_ = std::move(fill);
  shaped_.resize(1);
}

Prefetcher::~Prefetcher() {
  try {
    stop();
  } catch (const Error&) {  // a state restore() left to check did not fit: nothing to go on with
  }
  if (copy_stream_) {
    try {
      cuda::synchronize_stream(copy_stream_);  // a staging copy cut short by an error may still run
    } catch (const Error&) {  // the device failed: nothing left to wait for
    }
  }
  buffers_.clear();
  cuda::destroy_stream(copy_stream_);
}

std::string Prefetcher::reader_state() const { return seeds_.state() + "\n" + sampler_.save(); }

namespace {

// Readers yield to the solver's threads: on a machine whose cores the compute keeps
// busy, decoding at normal priority preempts a BLAS thread and stalls the whole
// GEMM; at a lower priority it runs in the gaps, and `prefetch` batches of slack
// absorb the rest.
void lower_priority() {
  setpriority(PRIO_PROCESS, static_cast<id_t>(syscall(SYS_gettid)), 10);  // best effort: failure changes nothing
}

}  // namespace

void Prefetcher::start() {
  stopping_ = false;
  abandon_ = false;
  started_ = true;
  try {
    // One thread fills batches alone; more start helpers beside the producer.
    if (options_.threads > 1)
      for (int i = 0; i < options_.threads; ++i)
        workers_.emplace_back([this] {
          lower_priority();
          work();
        });
    producer_ = std::thread([this] {
      lower_priority();
      produce();
    });
  } catch (const std::system_error& e) {
    // No memory for a thread's stack (a memory limit) or too many threads: the ones started
    // are stopped, and the reason is said.
    stop();
    // A thread's stack is as large as the stack size limit: a huge one cannot be mapped.
    std::string stack;
    if (rlimit limit{};
        getrlimit(RLIMIT_STACK, &limit) == 0 && limit.rlim_cur != RLIM_INFINITY && limit.rlim_cur > (rlim_t{1} << 30))
      stack = " Each thread's stack is as large as the stack size limit (ulimit -s), " +
              std::to_string(limit.rlim_cur >> 20) + " MiB here: lower it (8192 KiB is usual).";
    throw Error("layer '" + options_.layer + "': cannot start a thread to read the data: " + std::string(e.what()) +
                "; the system is short of memory or of threads." + stack + address_space_limit_note());
  } catch (...) {
    stop();  // out of memory for the thread list: nothing may be left half started
    throw;
  }
}

void Prefetcher::stop() {
  if (!started_) return;
  {
    std::lock_guard<std::mutex> q(queue_mutex_);
    std::lock_guard<std::mutex> j(job_mutex_);
    stopping_ = true;
  }
  abandon_ = true;
  queue_cv_.notify_all();
  job_cv_.notify_all();
  done_cv_.notify_all();
  if (producer_.joinable()) producer_.join();  // not when start() failed to make it
  for (auto& w : workers_) w.join();
  workers_.clear();
  queue_.clear();
  started_ = false;
  // Every batch made is dropped or was given back (the solver holds none between
  // its steps): every buffer set is free.
  free_.clear();
  for (auto& b : buffers_) {
    b->free = true;
    free_.push_back(b.get());
  }
  // The producer ran ahead; what it made is dropped, so the reader goes back to
  // where the solver is.
  rewind(consumed_state_);
}

void Prefetcher::restore(const std::string& state) {
  if (!started_) return rewind(state);  // a resume: the state is checked here
  // Running: a test pass rewound after a stop, to a state of this prefetcher's own. Its
  // reader may be stuck in a read that stopping would wait for, so the threads are stopped
  // only when batches are wanted again; the state is the one snapshots record from now on.
  if (state.find('\n') == std::string::npos)
    throw Error("corrupt data reader state for layer '" + options_.layer + "'");
  consumed_state_ = state;
  restart_pending_ = true;
}

void Prefetcher::run() {
  if (restart_pending_) {
    restart_pending_ = false;
    stop();  // rewinds the reader to consumed_state_
  }
  if (!started_) start();
}

void Prefetcher::rewind(const std::string& state) {
  const size_t nl = state.find('\n');
  if (nl == std::string::npos) throw Error("corrupt data reader state for layer '" + options_.layer + "'");
  seeds_.set_state(state.substr(0, nl));
  sampler_.restore(state.substr(nl + 1));
  consumed_state_ = state;
}

Prefetcher::Batch Prefetcher::next() {
  run();
  const auto begin = std::chrono::steady_clock::now();
  Batch batch;
  {
    std::unique_lock<std::mutex> lock(queue_mutex_);
    queue_cv_.wait(lock, [this] { return !queue_.empty(); });
    batch = std::move(queue_.front());
    queue_.pop_front();
  }
  queue_cv_.notify_all();
  wait_seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - begin).count();
  if (batch.error) {
    stop();
    std::rethrow_exception(batch.error);
  }
  consumed_state_ = batch.state;
  ++batches_;
  return batch;
}

bool Prefetcher::await(int count, const std::function<bool()>& give_up) {
  run();
  const size_t want = static_cast<size_t>(std::clamp(count, 1, options_.prefetch));
  const auto begin = std::chrono::steady_clock::now();
  // The producer stops after a failed batch, so one at the back is all there will be.
  const auto ready = [&] { return queue_.size() >= want || (!queue_.empty() && queue_.back().error); };
  bool waited_out = false;
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(queue_mutex_);
      if (queue_cv_.wait_for(lock, std::chrono::milliseconds(100), ready)) break;
    }
    if (give_up()) {  // unlocked: it may log, or throw
      waited_out = true;
      break;
    }
  }
  wait_seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - begin).count();
  return !waited_out;
}

int64_t Prefetcher::bad_samples() const {
  std::lock_guard<std::mutex> lock(bad_mutex_);
  return static_cast<int64_t>(bad_.size() + refused_.size());
}

void Prefetcher::recycle(Batch& batch, void* stream) {
  Buffers* b = batch.buffers;
  if (!b) return;
  {
    std::lock_guard<std::mutex> lock(queue_mutex_);
    if (b->free) {  // given back already (stop() frees every set)
      batch.buffers = nullptr;
      return;
    }
  }
  if (stream && b->consumed) {
    cuda::record_event(b->consumed, stream);  // on failure the batch still holds b
    b->pending = true;                        // published to the producer by the mutex below
  }
  batch.buffers = nullptr;
  batch.host.clear();
  batch.device.clear();
  {
    std::lock_guard<std::mutex> lock(queue_mutex_);
    if (b->free) return;
    b->free = true;
    free_.push_back(b);
  }
  queue_cv_.notify_all();
}

Prefetcher::Buffers* Prefetcher::take_buffers() {
  std::unique_lock<std::mutex> lock(queue_mutex_);
  const size_t most = static_cast<size_t>(options_.prefetch) + 2;
  queue_cv_.wait(lock, [this, most] { return stopping_ || !free_.empty() || buffers_.size() < most; });
  if (stopping_) return nullptr;
  if (!free_.empty()) {
    Buffers* b = free_.back();
    free_.pop_back();
    b->free = false;
    return b;
  }
  buffers_.push_back(std::make_unique<Buffers>());
  Buffers* b = buffers_.back().get();
  lock.unlock();
  std::vector<size_t> counts;
  for (size_t size : sample_sizes_) counts.push_back(size * static_cast<size_t>(batch_size_));
  try {
    b->allocate(options_.device, counts);
  } catch (...) {
    lock.lock();
    buffers_.pop_back();  // only the producer adds sets: this one is the last
    throw;
  }
  return b;
}

void Prefetcher::stage(Batch& batch) {
  Buffers& b = *batch.buffers;
  if (b.pending) {  // the solver's last copy out of these device arrays comes first
    cuda::wait_event(copy_stream_, b.consumed);
    b.pending = false;
  }
  batch.device.clear();
  for (size_t t = 0; t < b.arrays.size(); ++t) {
    cuda::copy_async(b.arrays[t].device, batch.host[t], batch.counts[t] * sizeof(float), copy_stream_);
    batch.device.push_back(b.arrays[t].device);
  }
  // The host arrays may be refilled once the batch is handed over: the copy must be done.
  cuda::synchronize_stream(copy_stream_);
}

void Prefetcher::produce() {
  bool device_ready = options_.device < 0;
  for (;;) {
    Batch batch;
    try {
      if (!device_ready) {  // this thread's device, and the copy stream on first start
        cuda::use_device(options_.device);
        if (!copy_stream_) copy_stream_ = cuda::create_stream(options_.device);
        device_ready = true;
      }
      batch.buffers = take_buffers();
      if (!batch.buffers) return;  // stopping
      for (Buffers::Array& a : batch.buffers->arrays) batch.host.push_back(a.host());
      for (size_t size : sample_sizes_) batch.counts.push_back(size * static_cast<size_t>(batch_size_));
      make(batch);
      if (options_.device >= 0) stage(batch);
    } catch (...) {
      batch.error = std::current_exception();
    }
    const bool failed = static_cast<bool>(batch.error);
    {
      std::unique_lock<std::mutex> lock(queue_mutex_);
      queue_cv_.wait(lock, [this] { return stopping_ || static_cast<int>(queue_.size()) < options_.prefetch; });
      if (stopping_) return;
      queue_.push_back(std::move(batch));
    }
    queue_cv_.notify_all();
    if (failed) return;  // nothing after a failed batch; next() rethrows its error
  }
}

uint64_t Prefetcher::next_seed() { return seeds_.next_u64(); }

void Prefetcher::report_bad(int index, const std::string& why) {
  if (why.empty()) return;  // known bad: reported when first met
  skip_or_fail(bad_, index, why, !options_.skip_bad, options_.fail_advice);
}

void Prefetcher::refuse(int index, const std::string& why) {
  skip_or_fail(refused_, index, why, !options_.skip_bad && options_.skip_bad_written,
               "without it, such an image is skipped together with the samples the net's other data layers give "
               "beside it; or take it out of the source");
}

void Prefetcher::skip_or_fail(std::set<int>& met, int index, const std::string& why, bool fail,
                              const std::string& advice) {
  if (fail) throw Error("data layer '" + options_.layer + "': " + why + " (on_bad_sample: fail; " + advice + ")");
  std::lock_guard<std::mutex> lock(bad_mutex_);
  if (met.insert(index).second) spdlog::warn("data layer '{}': {}; skipped", options_.layer, why);
}

bool Prefetcher::fill_slot(Batch& batch, int slot, int index, uint64_t seed, std::string* why) {
  {
    std::lock_guard<std::mutex> lock(bad_mutex_);
    if (bad_.count(index)) {  // known bad: it would fail again, so not read again
      *why = {};
      return false;
    }
  }
  Rng rng(seed);
  try {
    if (fill_shaped_) {
      fill_shaped_(index, rng, shaped_[static_cast<size_t>(slot)]);
    } else {
      std::vector<float*> outs(sample_sizes_.size());
      for (size_t t = 0; t < outs.size(); ++t) outs[t] = batch.host[t] + static_cast<size_t>(slot) * sample_sizes_[t];
      fill_(index, rng, outs.data());
    }
  } catch (const BadSample& e) {
    *why = e.what();
    return false;
  }
  return true;
}

void Prefetcher::make(Batch& batch) {
  std::vector<int> index(static_cast<size_t>(batch_size_));
  std::vector<uint64_t> seed(index.size());
  for (size_t n = 0; n < index.size(); ++n) {
    index[n] = sampler_.next();
    seed[n] = next_seed();
  }
  std::vector<std::string> why(index.size());
  std::vector<bool> ok(index.size(), false);
  // A stop need not wait for the rest of a batch that will be dropped (a big batch of big
  // images takes seconds to decode on one thread).
  const auto check_abandoned = [this] {
    if (abandon_) throw Error("data reader stopped");
  };
  if (workers_.empty()) {
    for (size_t n = 0; n < index.size(); ++n) {
      check_abandoned();
      ok[n] = fill_slot(batch, static_cast<int>(n), index[n], seed[n], &why[n]);
    }
  } else {
    std::unique_lock<std::mutex> lock(job_mutex_);
    job_ = &batch;
    job_index_ = index;
    job_seed_ = seed;
    job_ok_.assign(index.size(), 0);
    job_why_.assign(index.size(), std::string());
    job_error_ = nullptr;
    job_next_slot_ = 0;
    job_done_ = 0;
    job_cv_.notify_all();
    // When stopping, slots already taken are still being written: wait for them,
    // since `batch` goes away with this call.
    done_cv_.wait(lock, [this] { return job_done_ == batch_size_ || (stopping_ && job_done_ == job_next_slot_); });
    job_ = nullptr;
    if (job_done_ != batch_size_) throw Error("data reader stopped");
    if (job_error_) std::rethrow_exception(job_error_);
    for (size_t n = 0; n < index.size(); ++n) ok[n] = job_ok_[n] != 0, why[n] = std::move(job_why_[n]);
  }
  // Skipping keeps the order: the good slots move up, in order, and the slots left
  // at the end take the sampler's next samples, filled here in the producer so that
  // the result does not depend on the workers.
  size_t filled = 0;
  batch.indices.assign(index.size(), -1);
  for (size_t n = 0; n < index.size(); ++n) {
    if (!ok[n]) {
      report_bad(index[n], why[n]);
      continue;
    }
    batch.indices[filled] = index[n];
    if (filled != n && fill_shaped_)
      std::swap(shaped_[filled], shaped_[n]);
    else if (filled != n)
      for (size_t t = 0; t < sample_sizes_.size(); ++t)
        std::copy_n(batch.host[t] + n * sample_sizes_[t], sample_sizes_[t], batch.host[t] + filled * sample_sizes_[t]);
    ++filled;
  }
  while (filled < index.size()) {
    check_abandoned();
    const int i = sampler_.next();
    const uint64_t s = next_seed();
    std::string reason;
    if (fill_slot(batch, static_cast<int>(filled), i, s, &reason)) {
      batch.indices[filled++] = i;
      continue;
    }
    report_bad(i, reason);
    // Every sample known bad (not a count of misses in a row: a shuffled source's run of bad
    // samples can span two epochs, meeting some bad ones twice before a good one comes round).
    std::lock_guard<std::mutex> lock(bad_mutex_);
    if (bad_.size() >= static_cast<size_t>(sampler_.size()))
      throw Error("data layer '" + options_.layer + "': every sample of the source is bad; nothing to train on");
  }
  if (fill_shaped_) place_shaped(batch);
  batch.state = reader_state();
}

void Prefetcher::place_shaped(Batch& batch) {
  const ShapedSample& sample = shaped_[0];
  if (sample.values.size() != sample_sizes_.size() || sample.shapes.size() != sample_sizes_.size())
    throw Error("data layer '" + options_.layer + "': a sample came with " + std::to_string(sample.values.size()) +
                " top(s) instead of " + std::to_string(sample_sizes_.size()));
  batch.shapes = sample.shapes;
  for (size_t t = 0; t < sample_sizes_.size(); ++t) {
    const std::vector<float>& values = sample.values[t];
    size_t count = 1;
    for (int d : sample.shapes[t]) count *= static_cast<size_t>(d);
    if (count != values.size() || sample.shapes[t].empty() || sample.shapes[t][0] != 1)
      throw Error("data layer '" + options_.layer + "': a sample's top " + std::to_string(t) + " holds " +
                  std::to_string(values.size()) + " values for the shape " + shape_string(sample.shapes[t]) +
                  " (a batch of one)");
    batch.buffers->reserve(t, count);
    batch.host[t] = batch.buffers->arrays[t].host();
    std::copy(values.begin(), values.end(), batch.host[t]);
    batch.counts[t] = count;
  }
}

void Prefetcher::work() {
  for (;;) {
    std::unique_lock<std::mutex> lock(job_mutex_);
    job_cv_.wait(lock, [this] { return stopping_ || (job_ && job_next_slot_ < batch_size_); });
    if (stopping_) return;
    const int slot = job_next_slot_++;
    Batch* batch = job_;
    const int index = job_index_[static_cast<size_t>(slot)];
    const uint64_t seed = job_seed_[static_cast<size_t>(slot)];
    lock.unlock();
    std::string why;
    std::exception_ptr error;
    bool ok = false;
    try {
      ok = fill_slot(*batch, slot, index, seed, &why);
    } catch (...) {
      error = std::current_exception();
    }
    lock.lock();
    job_ok_[static_cast<size_t>(slot)] = ok ? 1 : 0;
    job_why_[static_cast<size_t>(slot)] = std::move(why);
    if (error && !job_error_) job_error_ = error;
    if (++job_done_ == batch_size_ || stopping_) done_cv_.notify_all();
  }
}

}  // namespace crema
