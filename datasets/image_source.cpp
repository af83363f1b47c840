#include "datasets/image_source.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <mutex>

#include "datasets/list_file.hpp"
#include "datasets/prefetcher.hpp"
#include "engine/error.hpp"
#include "io/datum.hpp"
#include "io/idx.hpp"
#include "io/image.hpp"
#include "io/lmdb.hpp"

namespace crema {

namespace {

namespace fs = std::filesystem;

// IDX: the whole file in memory, one uint8 (C, H, W) image after the other.
class IdxSource : public ImageSource {
 public:
  IdxSource(io::IdxArray images, std::vector<uint8_t> labels, std::string path, std::string labels_path)
      : images_(std::move(images)),
        labels_(std::move(labels)),
        path_(std::move(path)),
        labels_path_(std::move(labels_path)) {
    const auto& d = images_.dims;
    if (d.size() == 3)
      channels_ = 1, height_ = d[1], width_ = d[2];
    else
      channels_ = d[1], height_ = d[2], width_ = d[3];
  }
  int size() const override { return images_.dims[0]; }
  void read(int index, RawSample& out) const override {
    const size_t sample = static_cast<size_t>(channels_) * height_ * width_;
    const uint8_t* from = images_.data.data() + sample * static_cast<size_t>(index);  // from: (C, H, W)
    out.channels = channels_, out.height = height_, out.width = width_;
    out.bytes.assign(from, from + sample);
    out.floats.clear();
    out.label = labels_.empty() ? 0 : labels_[static_cast<size_t>(index)];
  }
  std::string describe(int index) const override { return "IDX file '" + path_ + "' image " + std::to_string(index); }
  bool knows_labels() const override { return !labels_.empty(); }
  int label(int index) const override { return labels_[static_cast<size_t>(index)]; }
  std::string describe_label(int index) const override {
    return "image " + std::to_string(index) + " in IDX labels file '" + labels_path_ + "'";
  }

 private:
  io::IdxArray images_;
  std::vector<uint8_t> labels_;
  std::string path_, labels_path_;
  int channels_ = 1, height_ = 0, width_ = 0;
};

// LMDB: keys listed once; a record is looked up under a lock (an LMDB read
// transaction belongs to one thread at a time) and decoded outside it.
class LmdbSource : public ImageSource {
 public:
  LmdbSource(const std::string& path, int channels, bool forces)
      : db_(path), keys_(db_.keys()), channels_(channels), forces_(forces) {
    if (keys_.empty()) throw Error("LMDB '" + path + "' holds no records");
  }
  int size() const override { return static_cast<int>(keys_.size()); }
  void read(int index, RawSample& out) const override {
    const std::string where = describe(index);
    io::Datum datum;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      const std::string_view bytes = db_.get(keys_[static_cast<size_t>(index)]);  // LMDB failures stay fatal
      try {
        io::decode_datum(bytes, where, datum);
      } catch (const Error& e) {  // one damaged record: a bad sample, skippable
        throw BadSample(e.what());
      }
    }
    if (forces_ && !datum.encoded && !warned_raw_.exchange(true))
      // Caffe logs this too: the pixels are stored decoded, with their own channels.
      spdlog::warn("{}: force_color/force_gray apply to encoded (JPEG/PNG) records only; this one is stored raw",
                   where);
    io::ImageU8 decoded;
    io::DatumPixels p;
    try {
      p = io::datum_pixels(datum, channels_, where, decoded);
    } catch (const Error& e) {
      throw BadSample(e.what());
    }
    const size_t n = static_cast<size_t>(p.channels) * p.height * p.width;
    out.channels = p.channels, out.height = p.height, out.width = p.width;
    if (p.bytes) {
      out.bytes.assign(p.bytes, p.bytes + n);
      out.floats.clear();
    } else {
      out.floats.assign(p.floats, p.floats + n);
      out.bytes.clear();
    }
    out.label = datum.label;
  }
  std::string describe(int index) const override { return db_.record_name(keys_[static_cast<size_t>(index)]); }

 private:
  io::LmdbReader db_;
  std::vector<std::string> keys_;
  int channels_;
  bool forces_;
  mutable std::mutex mutex_;
  mutable std::atomic<bool> warned_raw_{false};
};

// Image files, decoded on read: a list's entries or a folder's files.
class ImageFileSource : public ImageSource {
 public:
  struct File {
    std::string path;    // as opened
    std::string origin;  // "list.txt:12" or "class folder 'coat'"
    int label = 0;
  };
  ImageFileSource(std::vector<File> files, std::vector<std::string> classes, const ImageFileOptions& options)
      : files_(std::move(files)), classes_(std::move(classes)), options_(options) {}
  int size() const override { return static_cast<int>(files_.size()); }
  void read(int index, RawSample& out) const override {
    const File& f = files_[static_cast<size_t>(index)];
    // A folder opens as a stream on Linux, and its first read throws from the stream buffer.
    if (std::error_code ec; fs::is_directory(f.path, ec))
      throw BadSample(describe(index) + " is a folder, not an image");
    std::ifstream in(f.path, std::ios::binary);
    if (!in) throw BadSample(describe(index) + " cannot be opened: " + std::strerror(errno ? errno : ENOENT));
    std::string bytes;
    try {
      bytes.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    } catch (const std::ios_base::failure&) {
      throw BadSample(describe(index) + " cannot be read: " + std::strerror(errno ? errno : EIO));
    }
    if (in.bad()) throw BadSample(describe(index) + " cannot be read");
    if (io::is_truncated_jpeg(bytes)) throw BadSample(describe(index) + " is a truncated JPEG (no end marker)");
    io::ImageU8 image;
    try {
      io::decode_image(bytes, options_.channels, describe(index), image, options_.height, options_.width);
    } catch (const Error& e) {
      throw BadSample(e.what());
    }
    out.channels = image.channels, out.height = image.height, out.width = image.width;
    out.bytes = std::move(image.data);
    out.floats.clear();
    out.label = f.label;
  }
  std::string describe(int index) const override {
    const File& f = files_[static_cast<size_t>(index)];
    return "image '" + f.path + "' (" + f.origin + ")";
  }
  std::vector<std::string> class_names() const override { return classes_; }
  bool knows_labels() const override { return true; }
  int label(int index) const override { return files_[static_cast<size_t>(index)].label; }

 private:
  std::vector<File> files_;
  std::vector<std::string> classes_;
  ImageFileOptions options_;
};

bool is_image_file(const fs::path& p) {
  const std::string ext = lowercase(p.extension().string());
  for (const char* known : {".png", ".jpg", ".jpeg", ".bmp", ".pgm", ".ppm", ".pbm", ".tif", ".tiff", ".webp"})
    if (ext == known) return true;
  return false;
}

}  // namespace

std::unique_ptr<ImageSource> open_idx_source(const std::string& images_path, const std::string& labels_path) {
  io::IdxArray images = io::read_idx(images_path);
  const auto& d = images.dims;
  if (d.size() == 1)  // one value per sample: the labels of an images file
    throw Error("IDX file '" + images_path + "' holds " + std::to_string(d[0]) +
                " single values (rank 1), as a labels file does; give the images file (…-images-idx3-ubyte), "
                "whose labels file is found beside it");
  if (d.size() != 3 && d.size() != 4)
    throw Error("IDX images file '" + images_path + "' has rank " + std::to_string(d.size()) +
                "; it should have rank 3 (N, H, W) or 4 (N, C, H, W)");
  std::vector<uint8_t> labels;
  if (!labels_path.empty()) {
    io::IdxArray l = io::read_idx(labels_path);
    if (l.dims.size() != 1)
      throw Error("labels file '" + labels_path + "' has rank " + std::to_string(l.dims.size()) +
                  " (an images file?); a labels file holds one value per image, rank 1 (…-labels-idx1-ubyte)");
    if (l.dims[0] != d[0])
      throw Error("labels file '" + labels_path + "' holds " + std::to_string(l.dims.empty() ? 0 : l.dims[0]) +
                  " labels but '" + images_path + "' holds " + std::to_string(d[0]) + " images");
    labels = std::move(l.data);
  }
  return std::make_unique<IdxSource>(std::move(images), std::move(labels), images_path, labels_path);
}

std::unique_ptr<ImageSource> open_lmdb_source(const std::string& path, int channels, bool forces) {
  return std::make_unique<LmdbSource>(path, channels, forces);
}

std::unique_ptr<ImageSource> open_image_list(const std::string& list, const ImageFileOptions& options) {
  std::vector<ImageFileSource::File> files;
  for (ListEntry& e : read_list(list)) {
    const std::string where = list + ":" + std::to_string(e.line);
    fs::path path(e.path);
    if (!options.root_folder.empty()) {
      // Caffe joins root_folder and the listed path; a path that climbs out of the
      // root (absolute, or through "..") is almost always a list made for another root.
      // An absolute path inside the root says where it is: it is taken as it is.
      const fs::path rel =
          path.is_absolute()
              ? path.lexically_normal().lexically_relative(fs::absolute(options.root_folder).lexically_normal())
              : path.lexically_normal();
      if (rel.empty() || *rel.begin() == "..")
        throw Error(where + ": '" + e.path + "' " +
                    (path.is_absolute() ? "is an absolute path outside" : "climbs out of") + " root_folder '" +
                    options.root_folder + "'; list paths relative to root_folder, or leave root_folder empty");
      path = fs::path(options.root_folder) / rel;
    }
    files.push_back({path.string(), where, e.label});
  }
  return std::make_unique<ImageFileSource>(std::move(files), std::vector<std::string>{}, options);
}

std::unique_ptr<ImageSource> open_image_folder(const std::string& folder, const ImageFileOptions& options) {
  std::error_code ec;
  if (!fs::is_directory(folder, ec)) throw Error("image folder '" + folder + "' does not exist or is not a folder");
  std::vector<fs::path> class_dirs;
  for (const auto& entry : fs::directory_iterator(folder, ec))
    if (entry.is_directory()) class_dirs.push_back(entry.path());
  if (ec) throw Error("cannot list the image folder '" + folder + "': " + ec.message());
  std::sort(class_dirs.begin(), class_dirs.end());
  if (class_dirs.empty())
    throw Error("image folder '" + folder + "' has no sub-folders; it needs one sub-folder of images per class");
  std::vector<ImageFileSource::File> files;
  std::vector<std::string> classes;
  for (const fs::path& dir : class_dirs) {
    const int label = static_cast<int>(classes.size());
    classes.push_back(dir.filename().string());
    std::vector<fs::path> images;
    for (const auto& entry : fs::recursive_directory_iterator(dir, ec))
      if (entry.is_regular_file() && is_image_file(entry.path())) images.push_back(entry.path());
    std::sort(images.begin(), images.end());
    if (images.empty()) spdlog::warn("image folder '{}': class folder '{}' holds no images", folder, classes.back());
    for (const fs::path& p : images) files.push_back({p.string(), "class '" + classes.back() + "'", label});
  }
  if (files.empty()) throw Error("image folder '" + folder + "' holds no image files (.png, .jpg, …) in its class folders");
  return std::make_unique<ImageFileSource>(std::move(files), std::move(classes), options);
}

}  // namespace crema
