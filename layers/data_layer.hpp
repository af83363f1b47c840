// Data: Caffe's data layer. Two backends behind one batch filler:
//   IDX   MNIST-format image/label files (plain or gzipped), read into memory;
//   LMDB  a Caffe LMDB directory of Datum records (raw uint8 or float pixels, or an
//         encoded JPEG/PNG decoded per record), read through a memory map; the
//         keys are listed at setup and samples fetched by key.
// Either way samples are visited in key/file order or in a per-epoch shuffled order
// drawn from the solver's seed (EpochSampler, saved in snapshots for an exact
// resume) and pass through transform_param. The sample shape is the first
// record's, as in Caffe; a record of another shape is an error naming it, unless
// crop_size cuts both to the same size. Tops: data (N, C, H, W) and, optionally,
// label (N).
#pragma once

#include <memory>
#include <string>

#include "engine/layer.hpp"
#include "layers/data_transformer.hpp"
#include "layers/epoch_sampler.hpp"

namespace crema {

struct DataParams {
  std::string source;        // IDX images file, or an LMDB directory
  std::string label_source;  // IDX labels file; default derived from `source`
  int batch_size = 0;
  std::string backend;       // "IDX", "LMDB", or "" (a directory is an LMDB, a file IDX)
  bool shuffle = true;       // crema: shuffle each epoch (default on in TRAIN, off in TEST)
  int rand_skip = 0;
  static DataParams parse(MapReader r, Phase phase);
};

// "train-images-idx3-ubyte.gz" -> "train-labels-idx1-ubyte.gz"; "" when no rule applies.
std::string default_label_source(const std::string& images);

// Where a data layer's samples come from: one implementation per backend.
class DataSource;

class DataLayer : public Layer {
 public:
  explicit DataLayer(const LayerSpec& spec);
  ~DataLayer() override;
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
  std::unique_ptr<DataSource> open_source(bool want_labels) const;
  DataParams params_;
  DataTransformer transformer_;
  std::unique_ptr<DataSource> source_;
  int channels_ = 1, height_ = 0, width_ = 0;  // the first sample's shape
  EpochSampler sampler_;
  Rng transform_rng_;
};

}  // namespace crema
