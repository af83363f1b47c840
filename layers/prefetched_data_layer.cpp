#include "layers/prefetched_data_layer.hpp"

#include <algorithm>

#include "engine/cuda/cuda_context.hpp"
#include "engine/cuda/cuda_runtime_api.hpp"
#include "engine/error.hpp"

namespace crema {

void PrefetchedDataLayer::restore_state(const std::string& state) {
  if (!prefetcher_) throw Error("data layer '" + spec_.name + "' restored before setup");
  try {
    prefetcher_->restore(state);
  } catch (const Error& e) {
    throw Error("data layer '" + spec_.name + "': " + e.what());
  }
}

Layer::DataStats PrefetchedDataLayer::data_stats() const {
  if (!prefetcher_) return {};
  return {prefetcher_->wait_seconds(), prefetcher_->batches(), prefetcher_->bad_samples()};
}

PrefetchOptions PrefetchedDataLayer::staged_for(const Context& ctx, PrefetchOptions options) {
  options.device = ctx.on_gpu() ? ctx.device().id : -1;
  return options;
}

namespace {
// Gives a batch's buffers back however the step ends; a lost set would leave the
// producer waiting for one.
struct Recycler {
  Prefetcher& prefetcher;
  Prefetcher::Batch& batch;
  void* stream = nullptr;
  ~Recycler() {
    try {
      prefetcher.recycle(batch, stream);
    } catch (const Error&) {  // the device failed: already being reported
      prefetcher.recycle(batch);
    }
  }
};
}  // namespace

void PrefetchedDataLayer::forward_cpu(Context&, const BlobVec&, const BlobVec& top) {
  Prefetcher::Batch batch = prefetcher_->next();
  Recycler recycler{*prefetcher_, batch};
  for (size_t t = 0; t < top.size(); ++t)  // batch.host[t]: (batch_size, sample size of top t)
    std::copy_n(batch.host[t], batch.counts[t], top[t]->mutable_cpu_data());
}

void PrefetchedDataLayer::forward_gpu(Context& ctx, const BlobVec& bottom, const BlobVec& top) {
  if (!ctx.on_gpu() || !ctx.cuda()) return forward_cpu(ctx, bottom, top);
  Prefetcher::Batch batch = prefetcher_->next();
  Recycler recycler{*prefetcher_, batch};
  if (batch.device.empty()) {  // not staged: the tops are filled on the host and copied over when read
    for (size_t t = 0; t < top.size(); ++t) std::copy_n(batch.host[t], batch.counts[t], top[t]->mutable_cpu_data());
    return;
  }
  void* stream = ctx.cuda()->stream();
  recycler.stream = stream;  // the arrays are free once the stream has run the copies below
  for (size_t t = 0; t < top.size(); ++t)  // device to device, in order with the step's kernels
    cuda::copy_async(top[t]->mutable_gpu_data(), batch.device[t], batch.counts[t] * sizeof(float), stream);
}

}  // namespace crema
