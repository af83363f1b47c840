// Where the image data layers (Data, ImageData) get their samples: one source per
// kind of storage, each handing out sample i as 8-bit or float pixels (C, H, W) and
// an integer label.
//   IDX          MNIST-format image and label files, held in memory
//   LMDB         a Caffe LMDB of Datum records (raw, float or encoded JPEG/PNG)
//   image list   Caffe's "path label" list file, images decoded through OpenCV
//   image folder one sub-folder per class, classes in name order (torchvision's
//                ImageFolder), images decoded through OpenCV
// read() is called from several prefetch workers at once. A sample that cannot be
// used (missing file, undecodable image) is a BadSample naming it and, for lists,
// its line; anything that makes the whole source unusable is an Error.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace crema {

struct RawSample {
  int channels = 0, height = 0, width = 0;
  std::vector<uint8_t> bytes;  // (C, H, W), when the source stores 8-bit pixels
  std::vector<float> floats;   // (C, H, W), when it stores floats (then `bytes` is empty)
  int label = 0;
};

class ImageSource {
 public:
  virtual ~ImageSource() = default;
  virtual int size() const = 0;
  // Thread-safe. Throws BadSample for an unusable sample.
  virtual void read(int index, RawSample& out) const = 0;
  // Names sample `index` in messages: a file and list line, a database key.
  virtual std::string describe(int index) const = 0;
  // Class names by label, where the source knows them (image folders).
  virtual std::vector<std::string> class_names() const { return {}; }
  // Whether label() gives every sample's label without reading it (lists, folders, IDX
  // labels files); not so for databases, whose labels are inside the records.
  virtual bool knows_labels() const { return false; }
  virtual int label(int /*index*/) const { return 0; }
  // Names where sample `index`'s label is written, for messages about the label (an IDX
  // labels file is another file than its images').
  virtual std::string describe_label(int index) const { return describe(index); }
};

// IDX images (rank 3 or 4) and, when `labels` is not empty, their labels file.
std::unique_ptr<ImageSource> open_idx_source(const std::string& images, const std::string& labels);

// channels: 0 decodes encoded records as stored, 1 grey, 3 colour; `forces` says
// whether the user asked for 1 or 3 (raw records cannot honour it: warned once).
std::unique_ptr<ImageSource> open_lmdb_source(const std::string& path, int channels, bool forces);

struct ImageFileOptions {
  std::string root_folder;     // prefix of a list's paths; listed paths must stay inside it
  int channels = 3;            // 1 grey, 3 colour (BGR)
  int height = 0, width = 0;   // resize every image to this size; 0: keep each image's size
};

// Caffe's ImageData list. Errors (before any training) for a missing or empty list, a
// line without an integer label, or a path that leaves root_folder.
std::unique_ptr<ImageSource> open_image_list(const std::string& list, const ImageFileOptions& options);

// A folder with one sub-folder per class (sorted by name: label 0 is the first), each
// holding image files (sorted by name). Errors for no class folder or no image.
std::unique_ptr<ImageSource> open_image_folder(const std::string& folder, const ImageFileOptions& options);

}  // namespace crema
