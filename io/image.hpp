// Images through OpenCV: decode a file (JPEG, PNG, …) or a file's bytes held in
// memory (an encoded Datum) into planar data in Caffe's channel order (BGR for
// colour), optionally resized; and encode planar 8-bit images again.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace crema::io {

struct Image {
  int channels = 0, height = 0, width = 0;
  std::vector<float> data;  // (C, H, W), values 0..255
};

// 8-bit pixels as Caffe stores them in a Datum.
struct ImageU8 {
  int channels = 0, height = 0, width = 0;
  std::vector<uint8_t> data;  // (C, H, W)
};

// channels: 1 (grey) or 3 (BGR); height/width 0 keep the file's size. Throws Error
// naming the file when it is missing or cannot be decoded.
Image read_image(const std::string& path, int channels, int height = 0, int width = 0);

// Decodes the bytes of an image file into `out` (reused between calls). channels:
// 1 forces grey, 3 forces BGR, 0 keeps what the file holds (Caffe's
// DecodeDatumNative). `what` names the bytes in errors (e.g. a database record).
// height/width > 0 resize, bilinearly as Caffe's ReadImageToCVMat (cv::resize's default).
void decode_image(std::string_view bytes, int channels, const std::string& what, ImageU8& out, int height = 0,
                  int width = 0);

// Whether `bytes` are a JPEG file cut short: one with no end-of-image marker after
// its last scan. libjpeg decodes such a file, filling the missing rows with grey,
// so OpenCV cannot tell.
bool is_truncated_jpeg(std::string_view bytes);

// The image as a file of type `ext` ("png", "jpg", …), as cv::imencode writes it.
std::string encode_image(const ImageU8& image, const std::string& ext);
// Whether encode_image can write `ext` with this OpenCV.
bool can_encode_image(const std::string& ext);
// Whether two extensions name one format (jpg, jpeg and jpe; tif and tiff; any case).
bool same_image_format(const std::string& a, const std::string& b);

}  // namespace crema::io
