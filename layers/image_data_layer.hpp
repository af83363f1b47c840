// ImageData: Caffe's image-file input layer. `source` is Caffe's list file ("path
// label" per line, paths under root_folder) or, beyond Caffe, a folder with one
// sub-folder per class (torchvision's ImageFolder: classes sorted by name, label 0
// the first). Images are decoded through OpenCV on the prefetch threads, resized to
// new_height x new_width when given, grey or colour (is_color), then transformed.
// A missing or undecodable image is a bad sample: skipped and reported once with its
// path and list line (on_bad_sample: skip, the default) or the end of training
// (on_bad_sample: fail).
#pragma once

#include <string>

#include "layers/image_batch_layer.hpp"

namespace crema {

struct ImageDataParams {
  std::string source;  // list file, or a folder of class folders
  std::string root_folder;
  int new_height = 0, new_width = 0;
  bool is_color = true;
  ImageBatchParams batch;
  static ImageDataParams parse(MapReader r, const LayerSpec& spec);
};

class ImageDataLayer : public ImageBatchLayer {
 public:
  explicit ImageDataLayer(const LayerSpec& spec)
      : ImageDataLayer(spec, ImageDataParams::parse(spec.params("image_data_param"), spec)) {}
  const char* type() const override { return "ImageData"; }

 protected:
  std::unique_ptr<ImageSource> open_source(bool want_labels) const override;
  std::string source_name() const override { return params_.source; }

 private:
  ImageDataLayer(const LayerSpec& spec, ImageDataParams params)
      : ImageBatchLayer(spec, params.batch), params_(std::move(params)) {}
  ImageDataParams params_;
};

}  // namespace crema
