#include "layers/data_layer.hpp"

#include <spdlog/spdlog.h>

#include <filesystem>

#include "engine/error.hpp"
#include "io/lmdb.hpp"

namespace crema {

DataParams DataParams::parse(MapReader r, const LayerSpec& spec) {
  DataParams p;
  p.source = r.required("source").str();
  p.label_source = r.get_string("label_source", "");
  p.batch = ImageBatchParams::parse(r, spec, 0);
  if (const Node* b = r.find("backend")) {
    const int v = enum_value(*b, {"LEVELDB", "LMDB", "IDX"}, 0);
    if (v == 0)
      b->fail("backend LEVELDB is not supported: crema reads LMDB and IDX; convert the images into an LMDB with "
              "`crema convert-imageset`");
    p.backend = v == 1 ? "LMDB" : "IDX";
  }
  if (p.backend == "LMDB" && !p.label_source.empty())
    r.fail("label_source", "label_source is for IDX files only: LMDB records carry their labels");
  // Caffe's, taken and ignored (README): transform_param's force_color/force_gray decide how records decode.
  r.allow({"force_encoded_color"});
  r.refuse({"scale", "mean_file", "crop_size", "mirror"},
           "data_param's legacy transform fields are not supported; put them in transform_param");
  r.finish();
  return p;
}

std::string default_label_source(const std::string& images) {
  const std::string from = "images-idx3", to = "labels-idx1";
  const size_t at = images.rfind(from);
  if (at == std::string::npos) return {};
  std::string out = images;
  out.replace(at, from.size(), to);
  return out;
}

std::unique_ptr<ImageSource> DataLayer::open_source(bool want_labels) const {
  refuse_source_of_another_layer(spec_, "data_param", params_.source);
  std::string backend = params_.backend;
  if (backend.empty()) backend = io::is_lmdb(params_.source) ? "LMDB" : "IDX";
  if (backend == "LMDB") {
    if (!params_.label_source.empty()) throw Error("label_source is for IDX files only: LMDB records carry their labels");
    try {
      return open_lmdb_source(params_.source, transformer_.decode_channels(), transformer_.forces_channels());
    } catch (const Error& e) {
      refuse_source(spec_, "data_param", params_.source, e.what());
    }
  }
  std::string labels;
  if (want_labels) {
    labels = params_.label_source.empty() ? default_label_source(params_.source) : params_.label_source;
    if (labels.empty() && params_.source.find("labels-idx1") != std::string::npos)
      spec_.fail_at("data_param", "source",
                    "'" + params_.source +
                        "' is a labels file (by its name); data_param.source takes the images file "
                        "(…-images-idx3-ubyte), whose labels file is then found beside it");
    // A source that is not there is said as such first, by the open below.
    if (std::error_code ec; labels.empty() && std::filesystem::exists(params_.source, ec))
      spec_.fail_at("data_param", "source",
                    "cannot derive the labels file from '" + params_.source +
                        "' (no 'images-idx3' in its name); set data_param.label_source");
  }
  if (transformer_.forces_channels())  // as for raw LMDB records: the pixels come as stored
    spdlog::warn(
        "layer '{}': force_color/force_gray apply to encoded (JPEG/PNG) LMDB records only; the IDX images "
        "in '{}' are used as stored",
        name(), params_.source);
  // Missing, it may have been meant as an LMDB as well as an IDX file.
  if (std::error_code ec; params_.backend.empty() && !std::filesystem::exists(params_.source, ec))
    refuse_source(spec_, "data_param", params_.source,
                  "'" + params_.source + "' does not exist; give an LMDB database (a folder) or an IDX images file");
  try {
    return open_idx_source(params_.source, labels);
  } catch (const Error& e) {
    // Said at label_source where that file is the one at fault.
    const bool labels_at_fault = !params_.label_source.empty() && std::string(e.what()).starts_with("labels file '");
    refuse_source(spec_, "data_param", labels_at_fault ? params_.label_source : params_.source, e.what(),
                  labels_at_fault ? "label_source" : "source");
  }
}

CREMA_REGISTER_LAYER("Data", DataLayer);

}  // namespace crema
