#include "io/image.hpp"

#include <zlib.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>
#ifdef CREMA_WITH_IMAGE_CODECS
#include <opencv2/imgcodecs.hpp>
#endif

#include "engine/error.hpp"
#include "io/files.hpp"

namespace crema::io {

namespace {

// OpenCV's imgcodecs calls, the only ones here; a build without them
// (CREMA_IMAGE_CODECS=OFF) says so where an image would be read or written.
#ifdef CREMA_WITH_IMAGE_CODECS
// channels 1 grey, 3 colour, 0 as stored: Caffe's ANYCOLOR, grey or colour as encoded,
// 8 bits (alpha dropped, 16-bit scaled).
int imread_flag(int channels) {
  return channels == 1 ? cv::IMREAD_GRAYSCALE : channels == 3 ? cv::IMREAD_COLOR : cv::IMREAD_ANYCOLOR;
}
cv::Mat decode_file(const std::string& path, int channels) { return cv::imread(path, imread_flag(channels)); }
cv::Mat decode_bytes(const cv::Mat& bytes, int channels) { return cv::imdecode(bytes, imread_flag(channels)); }
bool encode(const std::string& ext, const cv::Mat& img, std::vector<unsigned char>& out) {
  return cv::imencode(ext, img, out);
}
bool can_encode(const std::string& ext) {
  try {
    return cv::haveImageWriter(ext);
  } catch (const cv::Exception&) {
    return false;
  }
}
#else
[[noreturn]] void no_codecs(const std::string& what) {
  throw Error(what + ": this crema was built without image codecs (CREMA_IMAGE_CODECS=OFF); rebuild it with "
                     "-DCREMA_IMAGE_CODECS=ON to read or write image files");
}
cv::Mat decode_file(const std::string& path, int) { no_codecs("image '" + path + "'"); }
cv::Mat decode_bytes(const cv::Mat&, int) { no_codecs("an encoded image"); }
bool encode(const std::string& ext, const cv::Mat&, std::vector<unsigned char>&) {
  no_codecs("writing a '" + ext + "' image");
}
bool can_encode(const std::string&) { return false; }
#endif

uint32_t be32(const unsigned char* p) {
  return static_cast<uint32_t>(p[0]) << 24 | static_cast<uint32_t>(p[1]) << 16 | static_cast<uint32_t>(p[2]) << 8 | p[3];
}

// What is wrong with the chunks of a PNG file: "" when `bytes` are no PNG or their
// chunks, walked from the signature to IEND, each fit inside the bytes with the
// critical ones' CRCs right. libpng finds the same faults, but reports them itself on
// stderr (OpenCV gives it no handler) beside crema's own error; checked first, such a
// file never reaches it. Ancillary chunks' CRCs are libpng's business (it drops them).
std::string png_damage(std::string_view bytes) {
  if (!starts_as_png(bytes)) return "";
  const auto* b = reinterpret_cast<const unsigned char*>(bytes.data());
  size_t at = 8;
  for (;;) {
    if (bytes.size() - at < 12)
      return "it is cut short: it ends inside the chunk header at byte " + std::to_string(at) + ", before IEND";
    const uint32_t length = be32(b + at);
    const std::string type(bytes.substr(at + 4, 4));
    if (length > bytes.size() - at - 12)
      return "it is cut short: chunk '" + type + "' at byte " + std::to_string(at) + " holds " +
             std::to_string(length) + " bytes, the file ends " + std::to_string(bytes.size() - at - 12) +
             " bytes into it";
    const bool critical = type[0] >= 'A' && type[0] <= 'Z';
    const size_t data = length;  // fits: checked against the bytes left above
    const uLong crc = crc32(0, b + at + 4, static_cast<uInt>(data + 4));
    if (critical && static_cast<uint32_t>(crc) != be32(b + at + 8 + data))
      return "chunk '" + type + "' at byte " + std::to_string(at) + " fails its CRC (the file is damaged)";
    if (type == "IEND") return "";
    at += 12 + data;
  }
}

// OpenCV's reason, in words where its text is one of its source's assertions.
std::string opencv_reason(const cv::Exception& e) {
  if (e.err.find("CV_IO_MAX_IMAGE_PIXELS") != std::string::npos)
    return "its header claims more pixels than OpenCV decodes (2^30 at most; the file is damaged, or the image too "
           "large)";
  return e.err;
}

// Whether the file starts with PNG's or JPEG's signature (read before the whole file is).
bool is_png_or_jpeg_file(const std::string& path) {
  const std::string head = file_head(path, 8);
  return starts_as_png(head) || starts_as_jpeg(head);
}

// channels 0 (as stored) only where the caller accepts whatever the file holds.
void check_channels(int channels, bool as_stored_ok) {
  if (channels != 1 && channels != 3 && !(as_stored_ok && channels == 0))
    throw Error("images can be read with 1 (grey) or 3 (colour) channels, not " + std::to_string(channels));
}

// height/width 0: as it is.
void resize_to(cv::Mat& img, int height, int width) {
  if (height <= 0 || width <= 0 || (img.rows == height && img.cols == width)) return;
  cv::Mat resized;
  cv::resize(img, resized, cv::Size(width, height), 0, 0, cv::INTER_LINEAR);
  img = resized;
}

cv::Mat read_mat(const std::string& path, int channels, int height, int width) {
  check_channels(channels, false);
  if (!std::filesystem::exists(path)) throw Error("image '" + path + "' does not exist");
  if (std::error_code ec; std::filesystem::is_directory(path, ec))
    throw Error("image '" + path + "' is a folder, not an image");
  if (std::error_code ec; std::filesystem::is_regular_file(path, ec) && std::filesystem::file_size(path, ec) == 0)
    throw Error("image '" + path + "' is empty (0 bytes: a copy or a download that did not finish?)");
  // Damage crema finds itself, so that libpng and libjpeg never print their own lines beside its message.
  if (is_png_or_jpeg_file(path)) {
    const std::string bytes = read_file_bytes(path);
    if (const std::string damage = png_damage(bytes); !damage.empty())
      throw Error("image '" + path + "' could not be decoded: " + damage);
    if (is_truncated_jpeg(bytes)) throw Error("image '" + path + "' is a truncated JPEG (no end marker)");
  }
  cv::Mat img;
  try {  // OpenCV throws on some files (a header claiming more pixels than it allows)
    img = decode_file(path, channels);
    if (!img.empty()) resize_to(img, height, width);
  } catch (const cv::Exception& e) {
    throw Error("image '" + path + "' could not be decoded: " + opencv_reason(e));
  }
  if (img.empty()) throw Error("image '" + path + "' could not be decoded (not an image, or truncated)");
  return img;
}

// Interleaved HWC (BGR) → planar CHW.
template <class T>
void to_planar(const cv::Mat& img, int& channels, int& height, int& width, std::vector<T>& data) {
  channels = img.channels();
  height = img.rows;
  width = img.cols;
  data.resize(static_cast<size_t>(channels) * img.rows * img.cols);
  T* out = data.data();  // out: (C, H, W)
  for (int y = 0; y < img.rows; ++y) {
    const unsigned char* row = img.ptr<unsigned char>(y);  // row: (W, C)
    for (int x = 0; x < img.cols; ++x)
      for (int c = 0; c < channels; ++c)
        out[(static_cast<size_t>(c) * img.rows + y) * img.cols + x] = static_cast<T>(row[x * channels + c]);
  }
}

}  // namespace

Image read_image(const std::string& path, int channels, int height, int width) {
  Image out;
  to_planar(read_mat(path, channels, height, width), out.channels, out.height, out.width, out.data);
  return out;
}

void decode_image(std::string_view bytes, int channels, const std::string& what, ImageU8& out, int height,
                  int width) {
  check_channels(channels, true);
  if (const std::string damage = png_damage(bytes); !damage.empty())
    throw Error(what + ": the encoded PNG image (" + std::to_string(bytes.size()) + " bytes) could not be decoded: " +
                damage);
  // imdecode only reads the buffer; the Mat header just cannot say so.
  const cv::Mat buf(1, static_cast<int>(bytes.size()), CV_8UC1,
                    const_cast<char*>(bytes.data()));  // buf: (bytes.size())
  cv::Mat img;
  try {
    if (!bytes.empty()) img = decode_bytes(buf, channels);
    if (!img.empty()) resize_to(img, height, width);
  } catch (const cv::Exception& e) {
    throw Error(what + ": the encoded image (" + std::to_string(bytes.size()) +
                " bytes) could not be decoded: " + opencv_reason(e));
  }
  if (img.empty())
    throw Error(what + ": the encoded image (" + std::to_string(bytes.size()) +
                " bytes) could not be decoded (not a JPEG/PNG, or truncated)");
  to_planar(img, out.channels, out.height, out.width, out.data);
}

bool is_truncated_jpeg(std::string_view bytes) {
  if (!starts_as_jpeg(bytes)) return false;
  // Inside scan data every 0xff is followed by 0x00 or a restart marker, so the last
  // start-of-scan (0xff 0xda) is the main image's last scan, after any thumbnail's.
  const size_t scan = bytes.rfind("\xff\xda");
  return scan == std::string_view::npos || bytes.find("\xff\xd9", scan) == std::string_view::npos;
}

bool can_encode_image(const std::string& ext) { return !ext.empty() && can_encode("." + ext); }

bool same_image_format(const std::string& a, const std::string& b) {
  const auto canonical = [](const std::string& ext) {
    const std::string e = lowercase(ext);
    if (e == "jpeg" || e == "jpe") return std::string("jpg");
    if (e == "tiff") return std::string("tif");
    return e;
  };
  return canonical(a) == canonical(b);
}

std::string encode_image(const ImageU8& image, const std::string& ext) {
  const int c = image.channels;
  cv::Mat img(image.height, image.width, CV_8UC(c));
  // Planar CHW → interleaved HWC.
  for (int y = 0; y < image.height; ++y) {
    unsigned char* row = img.ptr<unsigned char>(y);  // row: (W, C)
    for (int x = 0; x < image.width; ++x)
      for (int ch = 0; ch < c; ++ch)
        row[x * c + ch] = image.data[(static_cast<size_t>(ch) * image.height + y) * image.width + x];
  }
  std::vector<unsigned char> buf;
  bool ok = false;
  try {
    ok = encode("." + ext, img, buf);
  } catch (const cv::Exception&) {
    ok = false;
  }
  if (!ok) throw Error("OpenCV cannot encode images as '" + ext + "' (use a .png or .jpg file name)");
  return {reinterpret_cast<const char*>(buf.data()), buf.size()};
}

}  // namespace crema::io
