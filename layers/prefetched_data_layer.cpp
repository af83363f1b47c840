#include "layers/prefetched_data_layer.hpp"

#include <algorithm>

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

void PrefetchedDataLayer::forward_cpu(Context&, const BlobVec&, const BlobVec& top) {
  const Prefetcher::Batch batch = prefetcher_->next();
  for (size_t t = 0; t < top.size(); ++t)  // batch.tops[t]: (batch_size, sample size of top t)
    std::copy(batch.tops[t].begin(), batch.tops[t].end(), top[t]->mutable_cpu_data());
}

}  // namespace crema
