#include "io/datum.hpp"

#include "engine/error.hpp"
#include "engine/math.hpp"
#include "io/protobuf_wire.hpp"

namespace crema::io {

namespace {

namespace field {
constexpr uint32_t kChannels = 1, kHeight = 2, kWidth = 3, kData = 4, kLabel = 5, kFloatData = 6, kEncoded = 7;
constexpr uint32_t kBlobNum = 1, kBlobChannels = 2, kBlobHeight = 3, kBlobWidth = 4, kBlobData = 5;
}  // namespace field

}  // namespace

void decode_datum(std::string_view bytes, const std::string& where, Datum& out) {
  out.channels = out.height = out.width = out.label = 0;
  out.data.clear();
  out.float_data.clear();
  out.encoded = false;
  pb::Reader r(where, bytes, "Datum");
  while (r.next()) {
    switch (r.field()) {
      case field::kChannels: out.channels = r.read_int32(); break;
      case field::kHeight: out.height = r.read_int32(); break;
      case field::kWidth: out.width = r.read_int32(); break;
      case field::kData: out.data.assign(r.read_bytes()); break;
      case field::kLabel: out.label = r.read_int32(); break;
      case field::kFloatData: r.read_floats(out.float_data); break;
      case field::kEncoded: out.encoded = r.read_varint() != 0; break;
      default: r.skip();
    }
  }
}

std::string encode_datum(const Datum& d) {
  // Field-number order, and only the fields Caffe sets, so the bytes equal protobuf's.
  pb::Writer w;
  if (!d.encoded) {
    w.int32(field::kChannels, d.channels);
    w.int32(field::kHeight, d.height);
    w.int32(field::kWidth, d.width);
  }
  if (!d.data.empty() || d.encoded) w.bytes(field::kData, d.data);
  w.int32(field::kLabel, d.label);
  for (float v : d.float_data) w.fixed32_float(field::kFloatData, v);  // float_data is not [packed]
  w.varint(field::kEncoded, d.encoded ? 1 : 0);
  return w.take();
}

DatumPixels datum_pixels(const Datum& d, int channels, const std::string& where, ImageU8& decoded) {
  DatumPixels p;
  if (d.encoded) {
    decode_image(d.data, channels, where, decoded);
    p.channels = decoded.channels, p.height = decoded.height, p.width = decoded.width;
    p.bytes = decoded.data.data();
    return p;
  }
  p.channels = d.channels, p.height = d.height, p.width = d.width;
  if (p.channels <= 0 || p.height <= 0 || p.width <= 0)
    throw Error(where + ": the Datum's shape " + shape_text(p.channels, p.height, p.width) +
                " is empty; is this a Caffe image database?");
  // In double first: corrupt dimensions may overflow any integer product.
  if (static_cast<double>(p.channels) * p.height * p.width > 1e12)
    throw Error(where + ": the Datum's shape " + shape_text(p.channels, p.height, p.width) +
                " is implausibly large; the database is damaged: convert the images again");
  const size_t want = static_cast<size_t>(p.channels) * static_cast<size_t>(p.height) * static_cast<size_t>(p.width);
  const size_t have = d.data.empty() ? d.float_data.size() : d.data.size();
  if (have != want)
    throw Error(where + ": the Datum holds " + std::to_string(have) + " value(s) but its shape " +
                shape_text(p.channels, p.height, p.width) + " needs " + std::to_string(want) +
                "; the database is damaged: convert the images again");
  if (d.data.empty()) {
    // As HDF5Data's rows: NaN reaches no loss intact (a ReLU may hide it) and breaks the
    // weights it touches.
    if (const long long bad = cpu_count_non_finite(static_cast<long long>(want), d.float_data.data()); bad > 0)
      throw Error(where + ": the Datum's float_data holds " + std::to_string(bad) + " NaN or infinite value(s) of " +
                  std::to_string(want));
    p.floats = d.float_data.data();
  } else {
    p.bytes = reinterpret_cast<const uint8_t*>(d.data.data());
  }
  return p;
}

std::string shape_text(int channels, int height, int width) {
  return std::to_string(channels) + "x" + std::to_string(height) + "x" + std::to_string(width);
}

std::string encode_mean_blob(int channels, int height, int width, const std::vector<float>& mean) {
  pb::Writer w;
  w.int32(field::kBlobNum, 1);
  w.int32(field::kBlobChannels, channels);
  w.int32(field::kBlobHeight, height);
  w.int32(field::kBlobWidth, width);
  w.packed_floats(field::kBlobData, mean.data(), mean.size());
  return w.take();
}

}  // namespace crema::io
