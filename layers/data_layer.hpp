// Data: Caffe's data layer, over two kinds of storage:
//   IDX   MNIST-format image/label files (plain or gzipped), read into memory;
//   LMDB  a Caffe LMDB directory of Datum records (raw uint8 or float pixels, or an
//         encoded JPEG/PNG decoded per record), read through a memory map.
// Samples come through the shared prefetcher (ImageBatchLayer): in key/file order or
// shuffled each epoch from the solver's seed, with the reader position saved in
// snapshots for an exact resume.
#pragma once

#include <string>

#include "layers/image_batch_layer.hpp"

namespace crema {

struct DataParams {
  std::string source;        // IDX images file, or an LMDB directory
  std::string label_source;  // IDX labels file; default derived from `source`
  std::string backend;       // "IDX", "LMDB", or "" (a directory is an LMDB, a file IDX)
  ImageBatchParams batch;
  static DataParams parse(MapReader r, const LayerSpec& spec);
};

// "train-images-idx3-ubyte.gz" -> "train-labels-idx1-ubyte.gz"; "" when no rule applies.
std::string default_label_source(const std::string& images);

class DataLayer : public ImageBatchLayer {
 public:
  explicit DataLayer(const LayerSpec& spec) : DataLayer(spec, DataParams::parse(spec.params("data_param"), spec)) {}
  const char* type() const override { return "Data"; }

 protected:
  std::unique_ptr<ImageSource> open_source(bool want_labels) const override;
  std::string source_name() const override { return params_.source; }

 private:
  DataLayer(const LayerSpec& spec, DataParams params) : ImageBatchLayer(spec, params.batch), params_(std::move(params)) {}
  DataParams params_;
};

}  // namespace crema
