// What the image data layers (Data, ImageData) share: an ImageSource read through
// the Prefetcher, each sample checked for shape and passed through transform_param.
// Tops: data (N, C, H', W') and, optionally, label (N). With batch_size 1 and a
// transform whose output follows the input's size (no crop, no mean image), each
// image keeps its own size and the tops take each batch's shape, as Caffe's do (a fully
// convolutional net trains on images of any size), unless a layer of the net takes one
// size only (InnerProduct: the net checks at setup). Otherwise the sample shape is the
// first readable sample's, fixed at setup (Caffe would stop at a batch of mixed sizes);
// a sample of another shape is a bad sample (skipped and reported, or fatal with
// on_bad_sample: fail) unless the transform (a crop) makes it the same size. A sample
// with another number of channels is a bad sample either way.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "datasets/data_transformer.hpp"
#include "datasets/image_source.hpp"
#include "datasets/prefetcher.hpp"
#include "layers/prefetched_data_layer.hpp"

namespace crema {

// The keys both layers read the same way.
struct ImageBatchParams {
  int batch_size = 0;
  bool shuffle = true;  // crema: shuffle each epoch (default on in TRAIN, off in TEST and beside other readers)
  bool shuffle_written = false;
  int rand_skip = 0;
  PrefetchOptions prefetch;
  // Reads batch_size, shuffle, rand_skip, prefetch, threads and on_bad_sample.
  static ImageBatchParams parse(MapReader& r, const LayerSpec& spec, int default_batch_size);
};

class ImageBatchLayer : public PrefetchedDataLayer {
 public:
  ImageBatchLayer(const LayerSpec& spec, ImageBatchParams params);
  ~ImageBatchLayer() override;
  int min_top() const override { return 1; }
  int max_top() const override { return 2; }
  void reshape(const BlobVec& bottom, const BlobVec& top) override;
  std::vector<std::string> class_names() const override;
  std::optional<LabelExtent> label_extent() const override;
  int64_t source_size() const override { return source_ ? source_->size() : -1; }
  bool gives_own_sizes() const override { return shaped_; }
  void keep_one_size(const std::string& layer) override;
  void refuse_own_size(const std::string& why) override;
  const DataTransformer& transformer() const { return transformer_; }
  // For crema preview: the samples keep the mean image in, so that the transformer's
  // to_pixels gives back each pixel (DataTransformer::leave_mean_image_in). Before the
  // first forward: the prefetcher's workers start there and read the transformer.
  void leave_mean_image_in() { transformer_.leave_mean_image_in(); }

 protected:
  std::string describe_sample(int index) const override { return source_ ? source_->describe_label(index) : ""; }
  void layer_setup(Context& ctx, const BlobVec& bottom, const BlobVec& top) override;
  // The layer's source; throws Error saying what is wrong with it.
  virtual std::unique_ptr<ImageSource> open_source(bool want_labels) const = 0;
  // Names the source in the setup log line.
  virtual std::string source_name() const = 0;
  DataTransformer transformer_;

 private:
  void make_prefetcher();  // from the members below, set in layer_setup
  void fill(int index, Rng& rng, float* const* outs) const;
  void fill_shaped(int index, Rng& rng, ShapedSample& out) const;
  // Transforms `raw` (read as sample `index`, checked for its channels) into out: (C', H', W').
  void transform(const RawSample& raw, Rng& rng, float* out) const;
  ImageBatchParams params_;
  std::unique_ptr<ImageSource> source_;
  int channels_ = 1, height_ = 0, width_ = 0;  // the first sample's shape
  std::vector<int> out_shape_;                  // after the transform
  bool labels_ = false;                         // a label top
  bool shaped_ = false;                         // each batch of one image keeps its size
  std::string one_size_layer_;                  // the layer that refused another size
  uint64_t order_seed_ = 0, sample_seed_ = 0;
  PrefetchOptions staged_;  // the layer's, with the device to stage batches on
};

}  // namespace crema
