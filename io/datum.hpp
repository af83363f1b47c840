// Caffe's image-data messages, in Caffe's own protobuf encoding (field numbers from
// caffe.proto, see /work/shared/reference/caffe-compat.md), so that databases and
// mean files pass between crema and Caffe's tools both ways:
//   Datum      one record of an LMDB data set: channels 1, height 2, width 3
//              (varint); data 4 (bytes: uint8 (C, H, W), BGR, or a whole JPEG/PNG
//              file when encoded 7 is true); label 5 (varint); float_data 6 (float,
//              unpacked, used when data is empty)
//   BlobProto  the mean image compute_image_mean writes: num 1 = 1, channels 2,
//              height 3, width 4 (the legacy 4-D shape) and data 5 (packed floats)
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "io/image.hpp"

namespace crema::io {

struct Datum {
  int channels = 0, height = 0, width = 0;
  std::string data;  // uint8 (C, H, W), or an image file's bytes when `encoded`
  int label = 0;
  std::vector<float> float_data;  // (C, H, W) when `data` is empty
  bool encoded = false;
};

// Parses `bytes` into `out`, which is reset first (and reused, so a reader decodes
// record after record without allocating). `where` names the record in errors, e.g.
// "db/ (key '00000003_a.png')". Throws Error on a corrupt or truncated message.
void decode_datum(std::string_view bytes, const std::string& where, Datum& out);

// The bytes Caffe writes for `d`: convert_imageset's raw records (channels, height,
// width, data, label, encoded: false) and encoded ones (data, label, encoded: true)
// come out byte for byte as protobuf serialises them.
std::string encode_datum(const Datum& d);

// A raw Datum's pixels as the data layer and compute-mean see them: (C, H, W) values
// from `data` (uint8) or else `float_data`. Checks that there are C·H·W of them.
struct DatumPixels {
  int channels = 0, height = 0, width = 0;
  const uint8_t* bytes = nullptr;  // (C, H, W), or null when the values are floats
  const float* floats = nullptr;   // (C, H, W), or null when the values are bytes
};
// For an encoded Datum the image is decoded into `decoded` (reused) with `channels`
// (0: as stored, 1: grey, 3: BGR); the view points into `d` or `decoded`.
DatumPixels datum_pixels(const Datum& d, int channels, const std::string& where, ImageU8& decoded);

// "CxHxW", as crema names image sizes in messages.
std::string shape_text(int channels, int height, int width);

// A mean image as Caffe's compute_image_mean writes it. mean: (channels, height, width).
std::string encode_mean_blob(int channels, int height, int width, const std::vector<float>& mean);

}  // namespace crema::io
