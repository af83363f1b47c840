#include "io/caffe_binary.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <climits>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>

#include "io/caffe_upgrade.hpp"
#include "io/files.hpp"
#include "io/protobuf_wire.hpp"

namespace crema::io {

namespace {

// Field numbers from caffe.proto (see /work/shared/reference/caffe-compat.md).
namespace field {
constexpr uint32_t kNetName = 1, kNetLayersV1 = 2, kNetLayer = 100;
constexpr uint32_t kLayerName = 1, kLayerType = 2, kLayerBlobs = 7;
constexpr uint32_t kV0Layer = 1, kV1Name = 4, kV1Type = 5, kV1Blobs = 6;
constexpr uint32_t kBlobNum = 1, kBlobWidth = 4, kBlobData = 5, kBlobShape = 7, kBlobDoubleData = 8;
constexpr uint32_t kShapeDim = 1;
constexpr uint32_t kStateIter = 1, kStateLearnedNet = 2, kStateHistory = 3, kStateCurrentStep = 4;
}  // namespace field

std::string read_whole_file(const std::string& path) {
  if (std::filesystem::is_directory(path)) throw Error("'" + path + "' is a directory, not a file");
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) throw Error("cannot open '" + path + "': " + std::strerror(errno ? errno : ENOENT));
  const std::streamoff size = in.tellg();
  if (size <= 0) throw Error("'" + path + "' is empty (an interrupted download or write?)");
  std::string bytes(static_cast<size_t>(size), '\0');
  in.seekg(0);
  if (!in.read(bytes.data(), size)) throw Error("cannot read '" + path + "': " + std::strerror(errno ? errno : EIO));
  return bytes;
}

// A config passed where a binary file belongs: printable ASCII and whitespace only,
// with a ':', '{' or '#' as every prototxt or YAML file has near its start. Caffe's
// binary files have other bytes (tags of fields >= 16, lengths, float data) within
// their first few dozen.
bool looks_like_text(const std::string& bytes) {
  const auto head = std::string_view(bytes).substr(0, 64);
  return head.find_first_of(":{#") != std::string_view::npos &&
         std::all_of(head.begin(), head.end(), [](char c) {
           return (c >= 0x20 && c < 0x7f) || std::isspace(static_cast<unsigned char>(c));
         });
}

// Runs `parse` over the file. A file that fails at its very first field, or that holds
// text, is reported as not being this kind of file at all rather than as a corrupt one;
// `hint(first_byte)` may say what it looks like instead.
template <class Parse, class Hint>
auto parse_file(const std::string& path, const std::string& message, const std::string& not_this_kind, Parse parse,
                Hint hint) {
  const std::string bytes = read_whole_file(path);
  // Said whatever its bytes happen to parse as.
  if (starts_as_hdf5(bytes)) throw Error(path + ": " + not_this_kind + ": it is an HDF5 file (weights or a snapshot?)");
  try {
    return parse(pb::Reader(path, bytes, message));
  } catch (const pb::WireError& e) {
    const std::string kind = path + ": " + not_this_kind;
    if (looks_like_text(bytes)) throw Error(kind + ": it holds text (a .prototxt or a YAML config?)");
    if (starts_as_png(bytes)) throw Error(kind + ": it is a PNG image");
    if (starts_as_jpeg(bytes)) throw Error(kind + ": it is a JPEG image");
    if (e.offset() == 0)
      throw Error(kind + " (at byte 0: " + e.detail() + ")" + hint(static_cast<unsigned char>(bytes[0])));
    throw Error(std::string(e.what()) + "; the file is damaged or incomplete: copy or download it again");
  }
}

// BlobProto -> Blob. Only values are read: diff and double_diff hold gradients.
Blob parse_blob(pb::Reader r) {
  const size_t start = r.field_offset();
  bool legacy = false;
  int64_t legacy_shape[4] = {0, 0, 0, 0};  // Caffe's defaults for an absent num/channels/height/width
  std::vector<int64_t> dims;
  std::vector<float> data;
  std::vector<double> double_data;
  while (r.next()) {
    const uint32_t f = r.field();
    if (f >= field::kBlobNum && f <= field::kBlobWidth) {
      legacy = true;
      legacy_shape[f - field::kBlobNum] = r.read_int32();
    } else if (f == field::kBlobData) {
      r.read_floats(data);
    } else if (f == field::kBlobDoubleData) {
      r.read_doubles(double_data);
    } else if (f == field::kBlobShape) {
      pb::Reader s = r.read_message(r.message() + ".shape");
      while (s.next())
        if (s.field() == field::kShapeDim)
          s.read_int64s(dims);
        else
          s.skip();
    } else {
      r.skip();
    }
  }
  // Caffe's rule: legacy dimensions, when any is present, make the blob 4-D.
  if (legacy) dims.assign(legacy_shape, legacy_shape + 4);
  std::vector<int> shape;
  int64_t count = 1;
  for (int64_t d : dims) {
    if (d < 0 || d > INT_MAX) r.fail_at(start, "blob dimension " + std::to_string(d) + " is out of range");
    count *= d;  // both factors <= INT_MAX: no overflow in 64 bits
    if (count > INT_MAX) r.fail_at(start, "the blob's shape holds more than 2^31 values");
    shape.push_back(static_cast<int>(d));
  }
  const size_t have = double_data.empty() ? data.size() : double_data.size();
  if (have != static_cast<size_t>(count))
    r.fail_at(start, "the blob holds " + std::to_string(have) + " value(s) but its shape " + shape_string(shape) +
                         " needs " + std::to_string(count));
  Blob blob(shape);
  float* out = blob.mutable_cpu_data();  // out: (count), row-major over `shape`
  if (double_data.empty())
    std::copy(data.begin(), data.end(), out);
  else
    std::transform(double_data.begin(), double_data.end(), out, [](double v) { return static_cast<float>(v); });
  return blob;
}

// Old files (V1 nets, and any written before N-D shapes) keep a blob's shape in the legacy
// num/channels/height/width, which makes it 4-D: an InnerProduct weight 1×1×N×K, a bias
// 1×1×1×N. The shapes Caffe's net has for them are given back where the layer type says
// what they are (Caffe writes those, e.g. converting to HDF5, and refuses others there).
void give_net_shapes(LayerWeights& lw, const std::string& type) {
  const bool inner_product = type == "InnerProduct";
  if (!inner_product && type != "Convolution" && type != "Deconvolution") return;
  for (auto& [index, blob] : lw.blobs) {
    const std::vector<int>& s = blob.shape();
    if (s.size() != 4 || s[0] != 1 || s[1] != 1) continue;
    if (index == 0 && inner_product)
      blob.reshape({s[2], s[3]});  // (N, K)
    else if (index == 1 && s[2] == 1)
      blob.reshape({s[3]});  // the bias (N)
  }
}

// A LayerParameter (`v1` false) or V1LayerParameter (`v1` true): its name and blobs.
LayerWeights parse_layer(pb::Reader r, bool v1) {
  const size_t start = r.field_offset();
  const uint32_t name_field = v1 ? field::kV1Name : field::kLayerName;
  const uint32_t blobs_field = v1 ? field::kV1Blobs : field::kLayerBlobs;
  LayerWeights lw;
  std::string type;
  while (r.next()) {
    if (r.field() == name_field) {
      lw.layer = r.read_string();
      r.set_message(r.message() + " '" + lw.layer + "'");
    } else if (!v1 && r.field() == field::kLayerType) {
      type = r.read_string();
    } else if (v1 && r.field() == field::kV1Type) {
      type = v1_type_name(r.read_int32());
    } else if (r.field() == blobs_field) {
      const int index = static_cast<int>(lw.blobs.size());
      lw.blobs.emplace_back(index, parse_blob(r.read_message(r.message() + ".blobs[" + std::to_string(index) + "]")));
    } else if (v1 && r.field() == field::kV0Layer) {
      r.fail("a V0 layer (Caffe's format before 2014); convert the file with Caffe's upgrade_net_proto_binary first");
    } else {
      r.skip();
    }
  }
  if (lw.layer.empty() && !lw.blobs.empty())
    r.fail_at(start, "a layer with parameter blobs but no name (weights are matched to the net by layer name)");
  give_net_shapes(lw, type);
  return lw;
}

// Caffe does not require unique layer names, so a .caffemodel may hold two layers of
// one name. Weights are matched to a net by name, and Caffe copies both in turn, so
// the later layer's parameters are the ones a net receives: kept here, with a warning
// when both had parameters (an HDF5 file cannot hold two groups of one name). A later
// one without parameters leaves the earlier one's (Caffe would stop at it with
// "Incompatible number of blobs").
Weights merge_same_names(Weights in, const std::string& path) {
  Weights out;
  std::map<std::string, size_t> at;
  for (auto& lw : in) {
    const auto [it, fresh] = at.emplace(lw.layer, out.size());
    if (fresh) {
      out.push_back(std::move(lw));
      continue;
    }
    LayerWeights& earlier = out[it->second];
    if (lw.blobs.empty()) continue;
    if (!earlier.blobs.empty())
      spdlog::warn("{}: two layers are named '{}' and both hold parameters; as in Caffe, the later one's are used",
                   path, lw.layer);
    earlier.blobs = std::move(lw.blobs);
  }
  return out;
}

}  // namespace

bool has_hdf5_signature(const std::string& path) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) throw Error("cannot open '" + path + "': " + std::strerror(errno ? errno : ENOENT));
  const std::streamoff size = in.tellg();
  // HDF5 looks at 0, then at every power of two from 512 (files with a user block).
  for (std::streamoff at = 0; at + 8 <= size; at = at == 0 ? 512 : at * 2) {
    std::string head(8, '\0');
    in.seekg(at);
    if (!in.read(head.data(), 8)) break;
    if (starts_as_hdf5(head)) return true;
  }
  return false;
}

Weights read_caffemodel(const std::string& path) {
  Weights out = parse_file(
      path, "NetParameter", "not an HDF5 file, nor a binary Caffe NetParameter",
      [](pb::Reader r) {
        Weights w;
        int layer = 0, v1 = 0;
        while (r.next()) {
          LayerWeights lw;
          if (r.field() == field::kNetLayer)
            lw = parse_layer(r.read_message("NetParameter.layer[" + std::to_string(layer++) + "]"), false);
          else if (r.field() == field::kNetLayersV1)
            lw = parse_layer(r.read_message("NetParameter.layers[" + std::to_string(v1++) + "] (V1)"), true);
          else if (r.field() == field::kNetName)
            r.read_string();  // read only to check its type: a wrong file fails here, at byte 0
          else
            r.skip();
          if (!lw.layer.empty()) w.push_back(std::move(lw));
        }
        return w;
      },
      [&path](unsigned char first) -> std::string {
        // An ONNX model, SolverState and a legacy BlobProto all start with field 1 as a varint.
        if (ends_with_nocase(path, ".onnx"))
          return "; it is an ONNX model, which crema writes (convert -o MODEL.onnx) but does not read: give the "
                 "Caffe weights it was exported from";
        return first == 0x08 ? "; it looks like a .solverstate or .binaryproto, not weights" : "";
      });
  if (out.empty())
    throw Error(path + ": holds no layers; expected Caffe weights (a binary .caffemodel or a .caffemodel.h5)");
  return merge_same_names(std::move(out), path);
}

CaffeSolverState read_binary_solver_state(const std::string& path) {
  return parse_file(
      path, "SolverState", "not an HDF5 file, nor a binary Caffe SolverState",
      [&path](pb::Reader r) {
        CaffeSolverState out;
        bool has_iter = false;
        while (r.next()) {
          if (r.field() == field::kStateIter) {
            out.state.iter = r.read_int32();
            has_iter = true;
          } else if (r.field() == field::kStateCurrentStep) {
            out.state.current_step = r.read_int32();
          } else if (r.field() == field::kStateLearnedNet) {
            out.learned_net = r.read_string();
          } else if (r.field() == field::kStateHistory) {
            const std::string name = "SolverState.history[" + std::to_string(out.state.history.size()) + "]";
            out.state.history.push_back(parse_blob(r.read_message(name)));
          } else {
            r.skip();
          }
        }
        if (!has_iter) throw Error(path + ": not a Caffe solver state (it has no iter field)");
        return out;
      },
      [](unsigned char first) -> std::string {
        // NetParameter starts with its name (field 1, a string) or a layer.
        return first == 0x0a || first == 0x12 || first == 0xa2
                   ? "; it looks like a .caffemodel, not a solver state: resume with the .solverstate written beside "
                     "it, or start a new run from these weights with --weights"
                   : "";
      });
}

Blob read_binaryproto(const std::string& path) {
  return parse_file(
      path, "BlobProto", "not a binary Caffe BlobProto (.binaryproto)", [](pb::Reader r) { return parse_blob(std::move(r)); },
      [](unsigned char) { return std::string(); });
}

}  // namespace crema::io
