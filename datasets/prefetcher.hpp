// The prefetcher every data layer reads through: batches are assembled on worker
// threads, `prefetch` of them ahead of the solver, while the solver computes.
//
// Determinism. One producer thread plans each batch in order: it draws the sample
// indices from the EpochSampler and, for every sample, a seed from its own stream;
// the workers fill the batch's slots in any order, each slot with an Rng seeded from
// its own seed. The batch's content therefore depends on the seed alone, never on
// the number of workers or on timing. Bad samples (BadSample) drop out of the batch,
// which keeps its order and is completed by the producer with the sampler's next
// samples, so that skipping is deterministic too.
//
// Resume. Every batch carries the reader state after it (sampler position and
// seed stream); state() is the state after the last batch handed to the solver, not
// after the last one prefetched, so a snapshot resumes with the next sample the
// solver would have seen.
//
// Buffers. A batch's arrays live in one of prefetch + 2 buffer sets (the queue, the
// batch being made, the one the solver holds), reused from batch to batch; the
// solver gives each back with recycle(). For a GPU solver (options.device) the host
// arrays are page-locked, and the producer also copies each finished batch to
// device arrays on a stream of its own, so the solver finds it on the device and
// the copy over the bus overlaps the solver's work; recycle(batch, stream) holds
// the device arrays until the solver's stream is done reading them.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "datasets/epoch_sampler.hpp"
#include "engine/config.hpp"
#include "engine/error.hpp"
#include "engine/rng.hpp"

namespace crema {

// A sample that cannot be used (a missing or undecodable file, a record of the
// wrong shape). With on_bad_sample: skip it is logged once and replaced.
class BadSample : public Error {
 public:
  using Error::Error;
};

struct PrefetchOptions {
  int prefetch = 4;        // batches prepared ahead of the solver
  int threads = 1;         // workers filling a batch's slots
  bool skip_bad = true;    // on_bad_sample: skip (true) or fail (false)
  bool skip_bad_written = false;  // on_bad_sample is in the config, not the default
  // What the on_bad_sample: fail error advises.
  std::string fail_advice = "set on_bad_sample: skip to train on without it";
  std::string layer;       // names the layer in messages
  int device = -1;         // CUDA device to stage batches on; -1: host only
};

// crema's keys in a data layer's parameters: prefetch, threads, on_bad_sample.
// threads defaults to half the cores, at most 4: the other half computes; on_bad_sample
// to skip, or to fail where `in_step` says why the layer's samples must all be read in
// order (they pair up with another layer's by position, or are a sequence's timesteps):
// it is the advice given with the failure.
PrefetchOptions parse_prefetch_options(MapReader& r, const std::string& layer, const std::string& in_step = "");

// How to fill one slot: read sample `index` and write its values, one array per
// top, at outs[t] (each sample_sizes[t] floats). Called from several threads at
// once with different slots. Throws BadSample for an unusable sample, Error to stop.
using FillSample = std::function<void(int index, Rng& rng, float* const* outs)>;

// A sample that sets its batch's shape: Caffe shapes each batch like its first sample, so
// that batch_size 1 takes images of any size (fully convolutional nets). Per top, the values
// and their shape, the batch axis (1) included.
struct ShapedSample {
  std::vector<std::vector<float>> values;
  std::vector<std::vector<int>> shapes;
};
// Reads sample `index` into `out` (its vectors are reused from sample to sample); otherwise
// as FillSample.
using FillShaped = std::function<void(int index, Rng& rng, ShapedSample& out)>;

class Prefetcher {
 public:
  struct Buffers;
  struct Batch {
    std::vector<float*> host;          // per top: (batch_size, sample_sizes[t])
    std::vector<const float*> device;  // the same on options.device; empty when host only
    std::vector<size_t> counts;        // per top: batch_size * sample_sizes[t], or a shaped sample's count
    std::vector<std::vector<int>> shapes;  // per top: the shaped sample's shape; empty for FillSample
    std::vector<int> indices;              // per slot: the source index of its sample
    std::string state;                 // reader state after this batch
    std::exception_ptr error;          // set when the batch could not be made
    Buffers* buffers = nullptr;        // where the arrays live: give back with recycle()
  };

  // `sampler` is taken over (already initialised, rand_skip applied); `seed` starts
  // the per-sample seed stream.
  Prefetcher(PrefetchOptions options, EpochSampler sampler, uint64_t seed, int batch_size,
             std::vector<size_t> sample_sizes, FillSample fill);
  // Batches of one shaped sample each; `first_sizes` (per top, as sample_sizes above) sizes the
  // first arrays and the memory check, and the arrays grow when a larger sample comes.
  Prefetcher(PrefetchOptions options, EpochSampler sampler, uint64_t seed, std::vector<size_t> first_sizes,
             FillShaped fill);
  ~Prefetcher();
  Prefetcher(const Prefetcher&) = delete;
  Prefetcher& operator=(const Prefetcher&) = delete;

  // The next batch in order, waiting for it when it is not ready; starts the
  // threads on first use. Rethrows the error that stopped the batch.
  Batch next();
  // Waits until the next `count` batches (at most `prefetch`) are ready, or one that
  // failed, asking `give_up` every 100 ms; false, with nothing taken, once it says yes.
  // Starts the threads on first use; the wait counts in wait_seconds().
  bool await(int count, const std::function<bool()>& give_up);
  // Gives the batch's buffers back for a later batch; with `stream` (a cudaStream_t
  // of options.device), only once the work queued on it so far, which reads the
  // device arrays, has run.
  void recycle(Batch& batch, void* stream = nullptr);

  // A sample handed over that the net cannot take (an image of its own size too small for
  // its poolings): logged once and counted in bad_samples(), unless on_bad_sample: fail is
  // written (not a paired reader's default: the net skips the samples paired with it too),
  // which makes it an Error saying `why`. It is read again in later epochs (the net refuses it
  // again), as not reading it would shift this layer's samples against its paired readers'.
  void refuse(int index, const std::string& why);

  std::string state() const { return consumed_state_; }
  // Continues from `state` (throws Error when it does not fit). While the threads run (the
  // solver rewinding a test pass to a state of this prefetcher's own), they are stopped only
  // at the next next() or await(), which also check the state then, since a reader stuck in
  // a read would hold the stop up; state() is `state` at once.
  void restore(const std::string& state);

  // Statistics for display lines and `crema time --data`.
  double wait_seconds() const { return wait_seconds_; }  // time next() spent waiting
  int64_t batches() const { return batches_; }
  int samples() const { return samples_; }               // in the source: one epoch
  bool shuffled() const { return shuffled_; }            // each epoch in a new order
  int batch_size() const { return batch_size_; }
  int64_t bad_samples() const;                           // distinct bad and refused samples met so far

 private:
  void start();
  void stop();
  void run();                     // the threads started, after the stop a restore left pending
  void produce();                 // the producer thread
  void work();                    // a worker thread
  void make(Batch& batch);        // fills a planned batch, in the producer
  Buffers* take_buffers();        // a free buffer set, made when fewer exist than needed; null when stopping
  void stage(Batch& batch);       // copies the batch to options.device, in the producer
  void place_shaped(Batch& batch);  // copies a shaped sample into the batch's arrays, in the producer
  bool fill_slot(Batch& batch, int slot, int index, uint64_t seed, std::string* why);
  uint64_t next_seed();
  void report_bad(int index, const std::string& why);  // throws with on_bad_sample: fail
  // Throws with `fail` (and `advice`), else adds `index` to `met` (under bad_mutex_), logging it once.
  void skip_or_fail(std::set<int>& met, int index, const std::string& why, bool fail, const std::string& advice);
  std::string reader_state() const;
  void rewind(const std::string& state);  // threads stopped

  PrefetchOptions options_;
  EpochSampler sampler_;  // producer thread only, once started
  Rng seeds_;
  int batch_size_;
  int samples_ = 0;
  bool shuffled_ = false;
  std::vector<size_t> sample_sizes_;
  FillSample fill_;
  FillShaped fill_shaped_;            // instead of fill_, for shaped samples
  std::vector<ShapedSample> shaped_;  // per slot, for fill_shaped_

  // Queue of finished batches.
  std::mutex queue_mutex_;
  std::condition_variable queue_cv_;
  std::deque<Batch> queue_;
  bool stopping_ = false;
  std::atomic<bool> abandon_{false};  // stopping_, read by the producer between samples without the lock
  std::thread producer_;
  bool started_ = false;
  bool restart_pending_ = false;  // restore() while running: stop() at the next run()

  // The batch the workers are filling.
  std::mutex job_mutex_;
  std::condition_variable job_cv_, done_cv_;
  std::vector<std::thread> workers_;
  Batch* job_ = nullptr;
  std::vector<int> job_index_;
  std::vector<uint64_t> job_seed_;
  std::vector<char> job_ok_;          // per slot: filled
  std::vector<std::string> job_why_;  // per slot: why it is bad; empty when known bad already
  std::exception_ptr job_error_;
  int job_next_slot_ = 0, job_done_ = 0;

  mutable std::mutex bad_mutex_;
  std::set<int> bad_;      // indices known to be bad
  std::set<int> refused_;  // indices the net refused (refuse())

  // Buffer sets: all of them, and those free (under queue_mutex_).
  std::vector<std::unique_ptr<Buffers>> buffers_;
  std::vector<Buffers*> free_;
  void* copy_stream_ = nullptr;  // the producer's, on options.device

  std::string consumed_state_;
  double wait_seconds_ = 0;
  int64_t batches_ = 0;
};

}  // namespace crema
