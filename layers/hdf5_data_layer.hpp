// HDF5Data: Caffe's HDF5 input layer. `source` is a text file listing .h5 files,
// one per line; each file holds one numeric dataset per top, named after the top
// (usually `data` and `label`), whose first axis indexes samples: a dataset of
// shape (N, d1, …) gives a top of shape (batch_size, d1, …), one of shape (N) a
// top of shape (batch_size). Integer and floating-point datasets are read as float.
//
// The files are read a block of rows at a time (HDF5Source), so they may be larger
// than memory, on `threads` workers, `prefetch` batches ahead of the solver
// (Prefetcher). With `shuffle` every epoch visits the blocks in a new order and
// the rows of each block in a new order; without it, file order and row order.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "datasets/hdf5_source.hpp"
#include "layers/prefetched_data_layer.hpp"

namespace crema {

struct HDF5DataParams {
  std::string source;
  int batch_size = 0;
  bool shuffle = false;
  bool shuffle_written = false;
  PrefetchOptions prefetch;  // prefetch (4), threads (1 here), on_bad_sample (skip)
  static HDF5DataParams parse(MapReader r, const LayerSpec& spec);
};

class HDF5DataLayer : public PrefetchedDataLayer {
 public:
  explicit HDF5DataLayer(const LayerSpec& spec);
  const char* type() const override { return "HDF5Data"; }
  int min_top() const override { return 1; }
  void reshape(const BlobVec& bottom, const BlobVec& top) override;
  int64_t source_size() const override { return source_ ? source_->size() : -1; }
  std::vector<std::string> files_read() const override {
    return source_ ? source_->file_paths() : std::vector<std::string>{};
  }

 protected:
  void layer_setup(Context& ctx, const BlobVec& bottom, const BlobVec& top) override;
  std::string describe_sample(int index) const override { return source_ ? source_->describe(index) : ""; }

 private:
  HDF5DataParams params_;
  std::shared_ptr<HDF5Source> source_;  // shared with the prefetcher's reads
};

}  // namespace crema
