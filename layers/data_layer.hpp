// Data: Caffe's data layer. Backend IDX reads MNIST-format image/label files (plain
// or gzipped) into memory and serves batches in a per-epoch shuffled order drawn
// from the solver's seed, through transform_param. Tops: data (N, C, H, W) and,
// optionally, label (N).
#pragma once

#include <memory>
#include <string>

#include "engine/layer.hpp"
#include "io/idx.hpp"
#include "layers/data_transformer.hpp"
#include "layers/epoch_sampler.hpp"

namespace crema {

struct DataParams {
  std::string source;        // IDX images file
  std::string label_source;  // IDX labels file; default derived from `source`
  int batch_size = 0;
  std::string backend = "IDX";
  bool shuffle = true;       // crema: shuffle each epoch (default on in TRAIN, off in TEST)
  int rand_skip = 0;
  static DataParams parse(MapReader r, Phase phase);
};

// "train-images-idx3-ubyte.gz" -> "train-labels-idx1-ubyte.gz"; "" when no rule applies.
std::string default_label_source(const std::string& images);

class DataLayer : public Layer {
 public:
  explicit DataLayer(const LayerSpec& spec);
  const char* type() const override { return "Data"; }
  int exact_num_bottom() const override { return 0; }
  int min_top() const override { return 1; }
  int max_top() const override { return 2; }
  bool is_data() const override { return true; }
  void reshape(const BlobVec& bottom, const BlobVec& top) override;
  std::string save_state() const override;
  void restore_state(const std::string& state) override;

 protected:
  void layer_setup(Context& ctx, const BlobVec& bottom, const BlobVec& top) override;
  void forward_cpu(Context& ctx, const BlobVec& bottom, const BlobVec& top) override;

 private:
  DataParams params_;
  DataTransformer transformer_;
  io::IdxArray images_;
  std::vector<uint8_t> labels_;
  int channels_ = 1, height_ = 0, width_ = 0;
  EpochSampler sampler_;
  Rng transform_rng_;
};

}  // namespace crema
