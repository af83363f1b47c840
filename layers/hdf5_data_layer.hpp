// HDF5Data: Caffe's HDF5 input layer. `source` is a text file listing .h5 files,
// one per line; each file holds one dataset per top, named after the top (usually
// `data` and `label`), whose first axis indexes samples. All files are loaded into
// memory and served in a per-epoch shuffled order when `shuffle` is set.
#pragma once

#include <string>
#include <vector>

#include "engine/layer.hpp"
#include "layers/epoch_sampler.hpp"

namespace crema {

struct HDF5DataParams {
  std::string source;
  int batch_size = 0;
  bool shuffle = false;
  static HDF5DataParams parse(MapReader r);
};

class HDF5DataLayer : public Layer {
 public:
  explicit HDF5DataLayer(const LayerSpec& spec);
  const char* type() const override { return "HDF5Data"; }
  int exact_num_bottom() const override { return 0; }
  int min_top() const override { return 1; }
  bool is_data() const override { return true; }
  void reshape(const BlobVec& bottom, const BlobVec& top) override;
  std::string save_state() const override { return sampler_.save(); }
  void restore_state(const std::string& state) override { sampler_.restore(state); }

 protected:
  void layer_setup(Context& ctx, const BlobVec& bottom, const BlobVec& top) override;
  void forward_cpu(Context& ctx, const BlobVec& bottom, const BlobVec& top) override;

 private:
  HDF5DataParams params_;
  // Per top: all rows of every file, concatenated, and the shape of one row.
  std::vector<std::vector<float>> rows_;
  std::vector<std::vector<int>> row_shape_;
  int num_rows_ = 0;
  EpochSampler sampler_;
};

}  // namespace crema
