#include "layers/hdf5_data_layer.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "engine/error.hpp"

namespace crema {

HDF5DataParams HDF5DataParams::parse(MapReader r, const LayerSpec& spec) {
  HDF5DataParams p;
  p.source = r.required("source").str();
  p.batch_size = r.required("batch_size").as_int();
  if (p.batch_size <= 0) r.fail("batch_size", "batch_size must be positive");
  p.shuffle_written = r.has("shuffle");
  p.shuffle = r.get_bool("shuffle", false);
  // With other data layers in the net their samples pair up by position (see paired_readers),
  // and a recurrent layer's cont makes them timesteps (sequence_readers): none left out.
  p.prefetch = parse_prefetch_options(r, spec.name, in_step_reason(spec));
  // Every HDF5 read holds the one library lock, so more reader threads mostly wait.
  if (!r.has("threads")) p.prefetch.threads = 1;
  r.finish();
  return p;
}

HDF5DataLayer::HDF5DataLayer(const LayerSpec& spec)
    : PrefetchedDataLayer(spec), params_(HDF5DataParams::parse(spec.params("hdf5_data_param"), spec)) {}

void HDF5DataLayer::layer_setup(Context& ctx, const BlobVec&, const BlobVec& top) {
  prefetcher_.reset();
  HDF5SourceOptions options;
  options.datasets = spec_.top;
  options.skip_bad = params_.prefetch.skip_bad;
  options.paired = !paired_readers(spec_).empty();
  // Shuffled rows are mixed across kHDF5MixedBlocks blocks at a time (a class-sorted file would
  // otherwise give batches of one class), all of which stay cached while they are read.
  const int window = params_.shuffle ? kHDF5MixedBlocks : 1;
  options.cached_blocks = window + 2 * params_.prefetch.threads + 1;  // the blocks in use plus the next ones
  refuse_source_of_another_layer(spec_, "hdf5_data_param", params_.source);
  try {
    source_ = std::make_shared<HDF5Source>(params_.source, options);
  } catch (const Error& e) {
    refuse_source(spec_, "hdf5_data_param", params_.source, e.what());
  }
  EpochSampler sampler;
  sampler.init_groups(source_->block_sizes(), params_.shuffle, order_seed(ctx, params_.shuffle), window);
  std::vector<size_t> sample_sizes;
  for (size_t t = 0; t < top.size(); ++t) sample_sizes.push_back(source_->row_size(t));
  prefetcher_ = std::make_unique<Prefetcher>(
      staged_for(ctx, params_.prefetch), std::move(sampler), ctx.rng().next_u32(), params_.batch_size, std::move(sample_sizes),
      [source = source_](int index, Rng&, float* const* outs) { source->read_row(index, outs); });
  spdlog::info("{}: {} rows from {} HDF5 file(s){}, in {} block(s)", spec_.name, source_->size(), source_->num_files(),
               source_->skipped_files() ? " (" + std::to_string(source_->skipped_files()) + " skipped)" : "",
               source_->num_blocks());
  say_pairing(params_.shuffle, params_.shuffle_written, params_.prefetch, source_->num_blocks() > 1);
}

void HDF5DataLayer::reshape(const BlobVec&, const BlobVec& top) {
  for (size_t t = 0; t < top.size(); ++t) {
    std::vector<int> shape = {params_.batch_size};
    const std::vector<int>& row = source_->row_shape(t);
    shape.insert(shape.end(), row.begin(), row.end());
    top[t]->reshape(shape);
  }
}

CREMA_REGISTER_LAYER("HDF5Data", HDF5DataLayer);

}  // namespace crema
