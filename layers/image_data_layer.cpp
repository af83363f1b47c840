#include "layers/image_data_layer.hpp"

#include <filesystem>

#include "engine/error.hpp"

namespace crema {

ImageDataParams ImageDataParams::parse(MapReader r, const LayerSpec& spec) {
  ImageDataParams p;
  p.source = r.required("source").str();
  p.root_folder = r.get_string("root_folder", "");
  p.batch = ImageBatchParams::parse(r, spec, 1);  // Caffe's default batch_size is 1
  p.new_height = r.get_int("new_height", 0);
  p.new_width = r.get_int("new_width", 0);
  if (p.new_height < 0 || p.new_width < 0) r.fail("new_height", "new_height and new_width must not be negative");
  if ((p.new_height > 0) != (p.new_width > 0))
    r.fail(p.new_height > 0 ? "new_height" : "new_width", "give both new_height and new_width, or neither");
  p.is_color = r.get_bool("is_color", true);
  r.refuse({"scale", "mean_file", "crop_size", "mirror"},
           "image_data_param's legacy transform fields are not supported; put them in transform_param");
  r.finish();
  return p;
}

std::unique_ptr<ImageSource> ImageDataLayer::open_source(bool) const {
  ImageFileOptions options;
  options.root_folder = params_.root_folder;
  options.channels = params_.is_color ? 3 : 1;
  options.height = params_.new_height;
  options.width = params_.new_width;
  refuse_source_of_another_layer(spec_, "image_data_param", params_.source);
  try {
    if (std::filesystem::is_directory(params_.source)) {
      if (!params_.root_folder.empty())
        throw Error("root_folder is for list files; '" + params_.source + "' is a folder of class folders");
      return open_image_folder(params_.source, options);
    }
    return open_image_list(params_.source, options);
  } catch (const Error& e) {
    refuse_source(spec_, "image_data_param", params_.source, e.what());
  }
}

CREMA_REGISTER_LAYER("ImageData", ImageDataLayer);

}  // namespace crema
