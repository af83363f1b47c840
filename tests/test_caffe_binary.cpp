// Caffe's binary protobuf files: the wire reader on hand-made bytes, real .caffemodel
// (current `layer` and V1 `layers`) and .solverstate files written by BVLC Caffe, mean
// files (.binaryproto), HDF5/binary detection by content, the legacy right-aligned
// shape rule, and corrupt or truncated files.
//
// The expected values below were produced independently of crema's reader: a throwaway
// Python script compiled a hand-written subset of caffe.proto (NetParameter,
// LayerParameter, V1LayerParameter, BlobProto, BlobShape, SolverState) with grpcio-tools,
// decoded the fixtures with Google's protobuf library and printed, per blob, the shape,
// the first and last value (%.9g, exact for float32), the sum and the sum of absolute
// values (float64, numpy); the LeNet probabilities come from a float64 numpy forward
// pass (convolution, max pooling, inner product, ReLU, softmax) over those weights.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <random>

#include "engine/net.hpp"
#include "io/caffe_binary.hpp"
#include "io/checkpoint.hpp"
#include "io/protobuf_wire.hpp"
#include "io/yaml_config.hpp"
#include "test_util.hpp"

using namespace crema;
namespace fs = std::filesystem;

namespace {

std::string caffe_data(const std::string& name) { return test::source_dir() + "/tests/data/caffe/" + name; }

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// A minimal protobuf *writer* for hand-made messages (the code under test only reads).
std::string varint(uint64_t v) {
  std::string out;
  while (v >= 0x80) {
    out += static_cast<char>((v & 0x7f) | 0x80);
    v >>= 7;
  }
  return out + static_cast<char>(v);
}
std::string key(uint32_t field, int wire) { return varint(uint64_t{field} << 3 | static_cast<uint64_t>(wire)); }
std::string int_field(uint32_t field, int64_t v) { return key(field, 0) + varint(static_cast<uint64_t>(v)); }
std::string len_field(uint32_t field, const std::string& payload) {
  return key(field, 2) + varint(payload.size()) + payload;
}
template <class T>
std::string le(T v) {
  std::string out(sizeof v, '\0');
  std::memcpy(out.data(), &v, sizeof v);
  return out;
}
std::string float_field(uint32_t field, float v) { return key(field, 5) + le(v); }
std::string packed_floats(uint32_t field, std::initializer_list<float> vs) {
  std::string run;
  for (float v : vs) run += le(v);
  return len_field(field, run);
}

struct BlobExpect {
  std::vector<int> shape;
  float first, last;
  double sum, asum;
};
struct LayerExpect {
  std::string name;
  std::vector<BlobExpect> blobs;
};

void check_blob(const Blob& b, const BlobExpect& e) {
  REQUIRE(b.shape() == e.shape);
  CHECK(b.cpu_data()[0] == e.first);
  CHECK(b.cpu_data()[b.count() - 1] == e.last);
  double sum = 0, asum = 0;
  for (int i = 0; i < b.count(); ++i) {
    sum += b.cpu_data()[i];
    asum += std::abs(b.cpu_data()[i]);
  }
  CHECK(std::abs(sum - e.sum) <= 1e-8 * e.asum);
  CHECK(asum == doctest::Approx(e.asum).epsilon(1e-8));
}

template <size_t N>
void check_weights(const io::Weights& w, const LayerExpect (&expect)[N]) {
  REQUIRE(w.size() == N);
  for (size_t i = 0; i < N; ++i) {
    CAPTURE(expect[i].name);
    CHECK(w[i].layer == expect[i].name);
    REQUIRE(w[i].blobs.size() == expect[i].blobs.size());
    for (size_t j = 0; j < expect[i].blobs.size(); ++j) {
      CHECK(w[i].blobs[j].first == static_cast<int>(j));
      check_blob(w[i].blobs[j].second, expect[i].blobs[j]);
    }
  }
}

// Decoded by Google's protobuf (see the top of this file).
const LayerExpect kLenetDeploy[] = {
    {"mnist", {}},
    {"conv1", {{{20, 1, 5, 5}, 0.048346702f, 0.121649973f, 1.53251273, 94.0140634}, {{20}, -0.018057568f, -0.119139537f, -0.0932618412, 2.5433234}}},
    {"pool1", {}},
    {"conv2", {{{50, 20, 5, 5}, 0.0346106179f, -0.0685921758f, -96.8838406, 849.344008}, {{50}, -0.0543485694f, -0.0705456734f, -2.43656287, 2.54985468}}},
    {"pool2", {}},
    {"ip1", {{{500, 800}, 0.0227330495f, 0.0215390734f, -29.4725087, 8750.30186}, {{500}, -0.00703669572f, -0.00247618277f, 0.169352418, 1.67446082}}},
    {"relu1", {}},
    {"ip2", {{{10, 500}, 0.0430381149f, -0.0844659358f, -0.19770645, 287.607375}, {{10}, -0.0199745893f, 0.00944676995f, -1.04303472e-05, 0.176162391}}},
    {"loss", {}},
};
const LayerExpect kCifarQuick4000[] = {
    {"cifar", {}},
    {"conv1", {{{32, 3, 5, 5}, -0.0285196528f, -0.00292171328f, 0.24027398, 71.3285652}, {{32}, -0.0150448577f, -0.0106416689f, -0.307774826, 0.341694001}}},
    {"pool1", {}},
    {"relu1", {}},
    {"conv2", {{{32, 32, 5, 5}, 0.0106817894f, 0.0109962495f, -42.6107592, 343.20438}, {{32}, -0.000580950058f, -0.0223697647f, 0.121244935, 0.33567628}}},
    {"relu2", {}},
    {"pool2", {}},
    {"conv3", {{{64, 32, 5, 5}, -0.0110083567f, 0.00560983224f, -62.7830169, 619.889225}, {{64}, 0.00641949195f, -0.0357645899f, 1.04846483, 2.45307568}}},
    {"relu3", {}},
    {"pool3", {}},
    {"ip1", {{{64, 1024}, 0.0301547442f, -0.0585341454f, -31.262408, 4444.2999}, {{64}, -0.000497642439f, -0.0144319516f, 0.192723563, 2.59134883}}},
    {"ip2", {{{10, 64}, 0.227042735f, 0.00945626479f, -2.76409148, 46.3330285}, {{10}, -0.121972956f, -0.148432598f, -3.40864062e-07, 1.30311167}}},
    {"loss", {}},
};
// V1: legacy num/channels/height/width, so every blob is stored 4-D; the InnerProduct and
// Convolution blobs get the shapes Caffe's net gives them (Caffe writes those to HDF5).
const LayerExpect kV1Lenet[] = {
    {"mnist", {}},
    {"conv1",
     {{{20, 1, 5, 5}, 0.233082727f, 0.228454039f, 13.1537003, 97.1857239},
      {{20}, -0.130289018f, -0.280529708f, -1.58127841, 2.54991983}}},
    {"pool1", {}},
    {"conv2",
     {{{50, 20, 5, 5}, -0.00818201993f, 0.026446972f, -107.818536, 920.745991},
      {{50}, -0.054208383f, -0.126785725f, -2.04258801, 2.35719849}}},
    {"pool2", {}},
    {"ip1",
     {{{500, 800}, -0.0198981669f, 0.00448918063f, 85.6192982, 2467.96707},
      {{500}, 0.00606228691f, -0.00161689427f, 0.602491686, 1.74666788}}},
    {"relu1", {}},
    {"ip2",
     {{{10, 500}, -0.0800207779f, 0.00556459744f, 0.242823243, 238.280167},
      {{10}, -0.048620265f, -0.0432556681f, -4.79351729e-06, 0.452245667}}},
    {"loss", {}},
};
// iter 4000, current_step 0, learned_net "examples/cifar10/cifar10_quick_iter_4000.caffemodel"
const BlobExpect kCifarHistory[] = {
    {{32, 3, 5, 5}, 1.00858178e-05f, 6.5118802e-05f, 0.0150467657, 0.332462335},
    {{32}, 5.56410214e-06f, -2.79974415e-06f, 3.43788756e-05, 0.000182005549},
    {{32, 32, 5, 5}, 6.57107478e-07f, 3.9798364e-05f, 0.0331086442, 0.938643967},
    {{32}, -5.29076019e-08f, -2.4222204e-06f, 1.61972303e-05, 0.00014347173},
    {{64, 32, 5, 5}, -4.1836762e-07f, -1.792084e-05f, -0.0517700268, 1.79293621},
    {{64}, -1.09479879e-05f, -1.40542925e-05f, -0.000115770754, 0.000909758709},
    {{64, 1024}, 9.75108651e-06f, 2.00788691e-05f, 0.0362056098, 0.684434391},
    {{64}, 2.57456377e-05f, 6.39536229e-05f, 0.000127490921, 0.000924481287},
    {{10, 64}, 0.000254404178f, -0.000120996308f, -0.000110608331, 0.0674885366},
    {{10}, 7.31210166e-05f, 3.00121901e-05f, -4.79758455e-11, 0.000527367879},
};
// iter 5000, current_step 0, learned_net "examples/mnist/lenet_iter_5000.caffemodel"
const BlobExpect kV1History[] = {
    {{20, 1, 5, 5}, -0.000216874934f, -0.0001593286f, -0.0329896629, 0.048347645},
    {{1, 1, 1, 20}, -0.000792591018f, -0.000746809586f, -0.00427873783, 0.005541035},
    {{50, 20, 5, 5}, -4.95972745e-05f, 0.000111535737f, 0.211680313, 0.608951716},
    {{1, 1, 1, 50}, -7.96126042e-05f, 0.000117776523f, 0.000849154913, 0.00368463574},
    {{1, 1, 500, 800}, 7.46853118e-07f, -1.24579469e-06f, -0.022708008, 3.32714538},
    {{1, 1, 1, 500}, 1.95766847e-06f, 7.26021142e-07f, -0.000458345345, 0.00633511724},
    {{1, 1, 10, 500}, -0.000151347092f, 8.84154633e-06f, 9.24579081e-06, 0.157106161},
    {{1, 1, 1, 10}, -9.39111196e-05f, 0.000153372879f, 1.57524482e-09, 0.000994521237},
};

// The BVLC LeNet deploy net (tests/data/caffe/lenet_deploy/lenet.prototxt) in YAML.
const char* kLenetYaml = R"(
name: LeNet
layer:
  - {name: data, type: Input, top: data, input_param: {shape: {dim: [64, 1, 28, 28]}}}
  - {name: conv1, type: Convolution, bottom: data, top: conv1, convolution_param: {num_output: 20, kernel_size: 5, stride: 1}}
  - {name: pool1, type: Pooling, bottom: conv1, top: pool1, pooling_param: {pool: MAX, kernel_size: 2, stride: 2}}
  - {name: conv2, type: Convolution, bottom: pool1, top: conv2, convolution_param: {num_output: 50, kernel_size: 5, stride: 1}}
  - {name: pool2, type: Pooling, bottom: conv2, top: pool2, pooling_param: {pool: MAX, kernel_size: 2, stride: 2}}
  - {name: ip1, type: InnerProduct, bottom: pool2, top: ip1, inner_product_param: {num_output: 500}}
  - {name: relu1, type: ReLU, bottom: ip1, top: ip1}
  - {name: ip2, type: InnerProduct, bottom: ip1, top: ip2, inner_product_param: {num_output: 10}}
  - {name: prob, type: Softmax, bottom: ip2, top: prob}
)";

struct BuiltNet {
  std::shared_ptr<Node> config;
  NetSpec spec;
  Context ctx{1};
  std::unique_ptr<Net> net;
};

std::unique_ptr<BuiltNet> build(const char* yaml) {
  auto b = std::make_unique<BuiltNet>();
  b->config = std::make_shared<Node>(io::parse_yaml(yaml, "test.yaml"));
  b->spec = NetSpec::parse(*b->config);
  b->net = std::make_unique<Net>(b->spec, NetState{Phase::TEST, 0, {}}, b->ctx, true);
  return b;
}

// Four synthetic 28x28 digits in [0, 1] (the tutorial scaled MNIST by 1/256), the
// rest of the batch blank: a vertical stroke, a ring, blank, a diagonal texture.
void fill_synthetic_digits(Blob& data) {
  float* x = data.mutable_cpu_data();  // x: (64, 1, 28, 28)
  std::fill(x, x + data.count(), 0.f);
  for (int r = 0; r < 28; ++r)
    for (int c = 0; c < 28; ++c) {
      const int d = (r - 14) * (r - 14) + (c - 14) * (c - 14);
      x[0 * 784 + r * 28 + c] = (r >= 4 && r <= 23 && c >= 13 && c <= 15) ? 1.f : 0.f;
      x[1 * 784 + r * 28 + c] = (d >= 36 && d <= 81) ? 1.f : 0.f;
      x[3 * 784 + r * 28 + c] = static_cast<float>((r * 7 + c * 3) % 11) / 10.f;
    }
}

void check_probs(const Blob& prob, int image, const std::vector<double>& expect) {
  CAPTURE(image);
  for (int k = 0; k < 10; ++k) {
    CAPTURE(k);
    CHECK(std::abs(prob.cpu_data()[image * 10 + k] - expect[static_cast<size_t>(k)]) < 2e-5);
  }
}

}  // namespace

TEST_CASE("protobuf wire reader: varints, fixed values, packed and unpacked, unknown fields skipped") {
  // Field 1: varint 300 (ac 02); field 2: int32 -1 as protobuf sends it (10 bytes);
  // field 3: fixed32; field 4: fixed64; field 5: floats, unpacked then packed;
  // unknown fields 9 (varint), 10 (fixed64), 11 (bytes), 12 (group holding a varint
  // and a nested group), 13 (fixed32); then field 6: a packed int64 run.
  const std::string bytes = int_field(1, 300) + int_field(2, -1) + key(3, 5) + le(uint32_t{0xdeadbeef}) +
                            key(4, 1) + le(uint64_t{0x0102030405060708}) + float_field(5, 1.5f) +
                            packed_floats(5, {2.f, -3.f}) + int_field(9, 7) + key(10, 1) + le(2.5) +
                            len_field(11, "abc") + key(12, 3) + int_field(1, 5) + key(14, 3) + key(14, 4) +
                            key(12, 4) + float_field(13, 9.f) + len_field(6, varint(3) + varint(1u << 20));
  CHECK(bytes.substr(0, 3) == std::string("\x08\xac\x02", 3));  // the writer agrees with the spec
  io::pb::Reader r("mem.bin", bytes, "Test");
  std::vector<float> floats;
  std::vector<int64_t> ints;
  int fields = 0;
  while (r.next()) {
    ++fields;
    switch (r.field()) {
      case 1: CHECK(r.read_varint() == 300); break;
      case 2: CHECK(r.read_int32() == -1); break;
      case 3: CHECK(r.read_fixed32() == 0xdeadbeef); break;
      case 4: CHECK(r.read_fixed64() == 0x0102030405060708); break;
      case 5: r.read_floats(floats); break;
      case 6: r.read_int64s(ints); break;
      default: r.skip();
    }
  }
  CHECK(fields == 12);
  CHECK(floats == std::vector<float>{1.5f, 2.f, -3.f});
  CHECK(ints == std::vector<int64_t>{3, 1 << 20});

  // Errors name the file, the byte offset and the message.
  auto fails = [](const std::string& b, const std::string& what) {
    const std::string msg = test::error_of([&] {
      io::pb::Reader rr("mem.bin", b, "Test");
      while (rr.next()) rr.skip();
    });
    CAPTURE(msg);
    CHECK(msg.find("mem.bin") != std::string::npos);
    CHECK(msg.find("Test") != std::string::npos);
    CHECK(msg.find(what) != std::string::npos);
  };
  fails(int_field(1, 1) + key(2, 2) + varint(100) + "short", "byte 2");       // a length beyond the end
  fails(int_field(1, 1) + key(2, 2) + varint(~0ull) + "x", "runs past the end");  // a 64-bit length
  fails(key(1, 0) + std::string(11, '\x80'), "longer than 10 bytes");
  fails(std::string("\x0e", 1), "invalid wire type 6");
  fails(std::string("\x00", 1), "invalid field number 0");
  fails(key(3, 4), "end-group");
  fails(key(3, 3) + int_field(1, 1), "group (field 3) runs past the end");
  fails(key(3, 3) + key(4, 4), "closed by field 4");
  std::string deep;
  for (int i = 0; i < 200; ++i) deep += key(1, 3);  // groups nested 200 deep: refused, not recursed
  fails(deep, "nested more than");
  fails(key(5, 1) + "1234", "a fixed64 value of 8 byte(s) runs past the end");

  // A known field with the wrong wire type is an error, not a silent misread.
  const std::string wrong = int_field(5, 1);
  io::pb::Reader w("mem.bin", wrong, "Test");
  REQUIRE(w.next());
  CHECK_THROWS_WITH_AS(w.read_float(), doctest::Contains("has wire type varint, expected fixed32"), io::pb::WireError);
  const std::string odd = len_field(5, "abcde");  // 5 bytes is no whole number of floats
  io::pb::Reader o("mem.bin", odd, "Test");
  REQUIRE(o.next());
  CHECK_THROWS_WITH_AS(o.read_floats(floats), doctest::Contains("not a whole number"), io::pb::WireError);
}

TEST_CASE("binary caffemodel in the current layer format decodes as protobuf does") {
  check_weights(io::read_caffemodel(caffe_data("lenet_deploy/lenet_iter_10000.caffemodel")), kLenetDeploy);
  check_weights(io::load_weights(caffe_data("cifar10_quick_iter_4000.caffemodel")), kCifarQuick4000);
}

TEST_CASE("binary caffemodel in the V1 layers format decodes with the net's shapes for its legacy 4-D blobs") {
  check_weights(io::load_weights(caffe_data("v1_lenet/lenet_iter_5000.caffemodel")), kV1Lenet);
}

template <size_t N>
void check_state(const std::string& name, int iter, const std::string& learned_net, const BlobExpect (&history)[N]) {
  CAPTURE(name);
  const auto s = io::read_binary_solver_state(caffe_data(name));
  CHECK(s.state.iter == iter);
  CHECK(s.state.current_step == 0);
  CHECK(s.learned_net == learned_net);
  REQUIRE(s.state.history.size() == N);
  for (size_t i = 0; i < N; ++i) check_blob(s.state.history[i], history[i]);
}

TEST_CASE("binary solver states decode iter, current_step, learned_net and history") {
  check_state("cifar10_quick_iter_4000.solverstate", 4000, "examples/cifar10/cifar10_quick_iter_4000.caffemodel",
              kCifarHistory);
  check_state("v1_lenet/lenet_iter_5000.solverstate", 5000, "examples/mnist/lenet_iter_5000.caffemodel", kV1History);
}

TEST_CASE("blob rules: double_data wins, legacy dims make a 4-D blob, unpacked data, diffs ignored") {
  test::TempDir dir;
  // A mean file as compute_image_mean writes it: num 1, channels 3, height 2, width 2;
  // here with the data unpacked (one tag per float) and a diff that must be ignored.
  std::string mean = int_field(1, 1) + int_field(2, 3) + int_field(3, 2) + int_field(4, 2);
  for (int i = 0; i < 12; ++i) mean += float_field(5, 10.f * static_cast<float>(i));
  mean += packed_floats(6, {7.f});
  write_bytes(dir / "mean.binaryproto", mean);
  const Blob m = io::read_binaryproto(dir / "mean.binaryproto");
  CHECK(m.shape() == std::vector<int>{1, 3, 2, 2});
  for (int i = 0; i < 12; ++i) CHECK(m.cpu_data()[i] == 10.f * static_cast<float>(i));

  // `shape` (dims unpacked here) and both data and double_data: double_data wins.
  const std::string shaped = len_field(7, int_field(1, 2)) + packed_floats(5, {9.f, 9.f}) +
                             len_field(8, le(0.25) + le(-1.5));
  write_bytes(dir / "shaped.binaryproto", shaped);
  const Blob s = io::read_binaryproto(dir / "shaped.binaryproto");
  CHECK(s.shape() == std::vector<int>{2});
  CHECK(s.cpu_data()[0] == 0.25f);
  CHECK(s.cpu_data()[1] == -1.5f);

  // Legacy dims win over `shape`, as in Caffe, and a partial legacy shape is 0-padded.
  write_bytes(dir / "legacy.binaryproto", len_field(7, int_field(1, 4)) + int_field(4, 4) + packed_floats(5, {}));
  CHECK(io::read_binaryproto(dir / "legacy.binaryproto").shape() == std::vector<int>{0, 0, 0, 4});

  // A value count that does not match the shape names both.
  write_bytes(dir / "short.binaryproto", len_field(7, int_field(1, 3)) + packed_floats(5, {1.f, 2.f}));
  CHECK_THROWS_WITH_AS(io::read_binaryproto(dir / "short.binaryproto"),
                       doctest::Contains("holds 2 value(s) but its shape 3 (3) needs 3"), Error);
  write_bytes(dir / "neg.binaryproto", len_field(7, int_field(1, -2)));
  CHECK_THROWS_WITH_AS(io::read_binaryproto(dir / "neg.binaryproto"), doctest::Contains("dimension -2"), Error);
  write_bytes(dir / "huge.binaryproto", len_field(7, int_field(1, 1 << 20) + int_field(1, 1 << 20)));
  CHECK_THROWS_WITH_AS(io::read_binaryproto(dir / "huge.binaryproto"), doctest::Contains("more than 2^31"), Error);
}

TEST_CASE("hand-made NetParameter: both layer lists, unknown fields, nameless and V0 layers") {
  test::TempDir dir;
  // name, an unknown group and fixed32 at the top, a V1 layer (name 4, type 5 = 14
  // INNER_PRODUCT, blob 6 with legacy dims), then a current layer (name 1, type 2,
  // blob 7 with shape) with unknown fields of each wire type around its blob.
  const std::string v1_blob = int_field(1, 1) + int_field(2, 1) + int_field(3, 1) + int_field(4, 2) +
                              packed_floats(5, {1.f, 2.f});
  const std::string v1 = len_field(2, "in") + len_field(4, "old") + int_field(5, 14) + len_field(6, v1_blob) +
                         float_field(7, 1.f);
  const std::string blob = len_field(7, len_field(1, varint(1) + varint(3))) + packed_floats(5, {4.f, 5.f, 6.f});
  const std::string layer = len_field(1, "new") + len_field(2, "InnerProduct") + int_field(10, 1) +
                            key(40, 1) + le(1.0) + len_field(7, blob) + float_field(5, 1.f) +
                            key(41, 3) + key(41, 4) + len_field(106, "\x08\x01");
  const std::string param_free = len_field(1, "relu") + len_field(2, "ReLU");
  write_bytes(dir / "w.caffemodel", len_field(1, "net") + key(60, 3) + int_field(1, 1) + key(60, 4) +
                                        float_field(61, 2.f) + len_field(2, v1) + len_field(100, layer) +
                                        len_field(100, param_free));
  const io::Weights w = io::load_weights(dir / "w.caffemodel");
  REQUIRE(w.size() == 3);
  CHECK(w[0].layer == "old");
  REQUIRE(w[0].blobs.size() == 1);
  CHECK(w[0].blobs[0].second.shape() == std::vector<int>{1, 2});  // stored 1x1x1x2: an InnerProduct's (N, K)
  CHECK(w[0].blobs[0].second.cpu_data()[1] == 2.f);
  CHECK(w[1].layer == "new");
  REQUIRE(w[1].blobs.size() == 1);
  CHECK(w[1].blobs[0].second.shape() == std::vector<int>{1, 3});
  CHECK(w[1].blobs[0].second.cpu_data()[2] == 6.f);
  CHECK(w[2].layer == "relu");
  CHECK(w[2].blobs.empty());

  write_bytes(dir / "v0.caffemodel", len_field(2, len_field(1, len_field(1, "conv1"))));
  CHECK_THROWS_WITH_AS(io::load_weights(dir / "v0.caffemodel"), doctest::Contains("upgrade_net_proto_binary"), Error);
  write_bytes(dir / "nameless.caffemodel", len_field(100, len_field(7, packed_floats(5, {1.f}))));
  CHECK_THROWS_WITH_AS(io::load_weights(dir / "nameless.caffemodel"), doctest::Contains("no name"), Error);
  write_bytes(dir / "empty_net.caffemodel", len_field(1, "nothing"));
  CHECK_THROWS_WITH_AS(io::load_weights(dir / "empty_net.caffemodel"), doctest::Contains("holds no layers"), Error);
}

TEST_CASE("HDF5 and binary files are told apart by content, not by name") {
  test::TempDir dir;
  fs::copy_file(caffe_data("cifar10_quick_iter_4000.caffemodel"), dir / "binary.caffemodel.h5");
  fs::copy_file(caffe_data("cifar10_quick_iter_5000.caffemodel.h5"), dir / "hdf5.caffemodel");
  CHECK_FALSE(io::has_hdf5_signature(dir / "binary.caffemodel.h5"));
  CHECK(io::has_hdf5_signature(dir / "hdf5.caffemodel"));
  check_weights(io::load_weights(dir / "binary.caffemodel.h5"), kCifarQuick4000);
  const io::Weights h5 = io::load_weights(dir / "hdf5.caffemodel");
  CHECK(h5.size() == 13);
  // A user block of 512 bytes before the HDF5 signature (h5jam) is still HDF5.
  write_bytes(dir / "userblock.h5", std::string(512, 'u') + read_bytes(dir / "hdf5.caffemodel"));
  CHECK(io::has_hdf5_signature(dir / "userblock.h5"));
  CHECK_THROWS_WITH_AS(io::has_hdf5_signature(dir / "missing"), doctest::Contains("missing"), Error);
}

TEST_CASE("Caffe's LeNet weights copy into a YAML LeNet and classify synthetic digits") {
  auto b = build(kLenetYaml);
  Net& net = *b->net;
  const std::string path = caffe_data("lenet_deploy/lenet_iter_10000.caffemodel");
  const io::CopyReport report = io::copy_weights(net, io::load_weights(path), path);
  CHECK(report.loaded == std::vector<std::string>{"conv1", "pool1", "conv2", "pool2", "ip1", "relu1", "ip2"});
  CHECK(report.ignored_source == std::vector<std::string>{"mnist", "loss"});
  fill_synthetic_digits(*net.blob("data"));
  net.forward(b->ctx);
  const Blob& prob = *net.blob("prob");
  // numpy float64 forward pass over the protobuf-decoded weights (see the top).
  check_probs(prob, 0, {8.14158e-09, 0.999996, 9.50911e-09, 4.96259e-08, 2.27902e-06, 1.63475e-08, 2.00951e-08,
                        9.92488e-07, 3.1663e-07, 5.9361e-09});  // the stroke is a 1
  check_probs(prob, 1, {1, 2.1344e-11, 6.13335e-10, 2.73628e-14, 3.17706e-12, 2.29425e-11, 4.55532e-08, 4.36006e-10,
                        3.78029e-13, 1.56333e-09});  // the ring is a 0
  check_probs(prob, 2, {0.0657852, 0.222737, 0.0561899, 0.0245585, 0.0559877, 0.164754, 0.0471162, 0.265181,
                        0.0155281, 0.082163});
  check_probs(prob, 3, {0.458142, 0.0337723, 0.00363521, 0.062401, 0.0120142, 0.000714165, 0.00930106, 0.00297729,
                        0.391865, 0.0251786});
}

TEST_CASE("V1 legacy 4-D blobs copy right-aligned into InnerProduct and bias blobs") {
  auto b = build(kLenetYaml);
  Net& net = *b->net;
  const std::string path = caffe_data("v1_lenet/lenet_iter_5000.caffemodel");
  io::copy_weights(net, io::load_weights(path), path);
  const Blob& ip1 = *net.layer_by_name("ip1")->blobs()[0];
  CHECK(ip1.shape() == std::vector<int>{500, 800});  // stored as 1 1 500 800
  CHECK(ip1.cpu_data()[0] == -0.0198981669f);
  CHECK(ip1.cpu_data()[ip1.count() - 1] == 0.00448918063f);
  CHECK(net.layer_by_name("conv1")->blobs()[1]->cpu_data()[19] == -0.280529708f);  // stored as 1 1 1 20
  fill_synthetic_digits(*net.blob("data"));
  net.forward(b->ctx);
  check_probs(*net.blob("prob"), 0, {2.0684e-08, 0.999915, 7.59617e-08, 1.4733e-07, 1.18113e-05, 9.33755e-08,
                                     6.4445e-07, 1.79521e-06, 7.01357e-05, 6.13817e-07});
  check_probs(*net.blob("prob"), 3, {0.301691, 0.00925507, 0.000260248, 0.00136203, 0.0325351, 0.00102767, 0.013756,
                                     7.82637e-05, 0.581127, 0.0589079});

  // The rule on its own: 1x1xNxK fits NxK and 1x1x1xN fits N; other arrangements of
  // the same count, and 3-D shapes, are mismatches that name the layer.
  auto small = build(R"(
name: small
layer:
  - {name: data, type: Input, top: data, input_param: {shape: {dim: [1, 3]}}}
  - {name: fc, type: InnerProduct, bottom: data, top: fc, inner_product_param: {num_output: 2}}
)");
  auto weights_with = [](std::vector<int> w_shape, std::vector<int> b_shape) {
    io::LayerWeights lw{"fc", {}};
    lw.blobs.emplace_back(0, Blob(w_shape));
    lw.blobs.emplace_back(1, Blob(b_shape));
    for (int i = 0; i < 6; ++i) lw.blobs[0].second.mutable_cpu_data()[i] = static_cast<float>(i + 1);
    lw.blobs[1].second.mutable_cpu_data()[1] = 9.f;
    return io::Weights{lw};
  };
  io::copy_weights(*small->net, weights_with({1, 1, 2, 3}, {1, 1, 1, 2}), "legacy.caffemodel");
  const Layer& fc = *small->net->layer_by_name("fc");
  CHECK(fc.blobs()[0]->shape() == std::vector<int>{2, 3});
  CHECK(fc.blobs()[0]->cpu_data()[5] == 6.f);
  CHECK(fc.blobs()[1]->cpu_data()[1] == 9.f);
  for (const auto& bad : {std::vector<int>{2, 3, 1, 1}, std::vector<int>{1, 2, 1, 3}, std::vector<int>{1, 2, 3}}) {
    CAPTURE(shape_string(bad));
    CHECK_THROWS_WITH_AS(io::copy_weights(*small->net, weights_with(bad, {2}), "bad.caffemodel"),
                         doctest::Contains(("layer 'fc' parameter 0 has shape " + shape_string(bad)).c_str()), Error);
  }
}

TEST_CASE("load_solver_state reads a binary solverstate and finds its caffemodel beside it") {
  test::TempDir dir;
  fs::copy_file(caffe_data("cifar10_quick_iter_4000.solverstate"), dir / "cifar10_quick_iter_4000.solverstate");
  fs::copy_file(caffe_data("cifar10_quick_iter_4000.caffemodel"), dir / "cifar10_quick_iter_4000.caffemodel");
  // learned_net says "examples/cifar10/...", which does not exist here: found beside.
  const io::LoadedState loaded = io::load_solver_state(dir / "cifar10_quick_iter_4000.solverstate");
  CHECK(loaded.state.iter == 4000);
  CHECK(loaded.state.type.empty());  // Caffe does not record it; no check on resume
  CHECK(loaded.config_yaml.empty());
  CHECK(loaded.weights_path == dir / "cifar10_quick_iter_4000.caffemodel");
  REQUIRE(loaded.state.history.size() == 10);
  check_blob(loaded.state.history[6], kCifarHistory[6]);
  check_weights(io::load_weights(loaded.weights_path), kCifarQuick4000);

  // The V1 pair from the test data folder, as it is.
  const io::LoadedState v1 = io::load_solver_state(caffe_data("v1_lenet/lenet_iter_5000.solverstate"));
  CHECK(v1.state.iter == 5000);
  CHECK(v1.weights_path == caffe_data("v1_lenet/lenet_iter_5000.caffemodel"));
  // A .caffemodel given where the state goes: said so, with the two ways on.
  const std::string weights =
      test::error_of([&] { io::load_solver_state(caffe_data("v1_lenet/lenet_iter_5000.caffemodel")); });
  CHECK_MESSAGE(weights.find("it looks like a .caffemodel, not a solver state: resume with the .solverstate written "
                             "beside it, or start a new run from these weights with --weights") != std::string::npos,
                weights);

  // Not beside it: the path as written (here absolute) is used.
  fs::create_directories(dir.path() / "elsewhere");
  fs::copy_file(caffe_data("cifar10_quick_iter_4000.caffemodel"), dir / "elsewhere/w.caffemodel");
  const std::string state = int_field(1, 12) + len_field(2, dir / "elsewhere/w.caffemodel") + int_field(4, 3);
  write_bytes(dir / "s.solverstate", state);
  const io::LoadedState moved = io::load_solver_state(dir / "s.solverstate");
  CHECK(moved.state.iter == 12);
  CHECK(moved.state.current_step == 3);
  CHECK(moved.state.history.empty());
  CHECK(moved.weights_path == dir / "elsewhere/w.caffemodel");

  fs::remove(dir / "cifar10_quick_iter_4000.caffemodel");
  CHECK_THROWS_WITH_AS(io::load_solver_state(dir / "cifar10_quick_iter_4000.solverstate"),
                       doctest::Contains("examples/cifar10/cifar10_quick_iter_4000.caffemodel"), Error);
}

TEST_CASE("the wrong kind of file is named as such") {
  test::TempDir dir;
  test::write_file(dir / "net.prototxt", "name: \"LeNet\"\nlayer {\n  name: \"data\"\n}\n");
  CHECK_THROWS_WITH_AS(io::load_weights(dir / "net.prototxt"),
                       doctest::Contains("not an HDF5 file, nor a binary Caffe NetParameter: it holds text"), Error);
  // An image given as weights (arguments swapped) is named as one, not as a damaged file.
  test::write_file(dir / "digit.png", std::string("\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR", 16));
  CHECK_THROWS_WITH_AS(io::load_weights(dir / "digit.png"), doctest::Contains("it is a PNG image"), Error);
  const std::string state = caffe_data("cifar10_quick_iter_4000.solverstate");
  const std::string msg = test::error_of([&] { io::load_weights(state); });
  CHECK(msg.find(state + ": not an HDF5 file, nor a binary Caffe NetParameter") == 0);
  CHECK(msg.find("looks like a .solverstate") != std::string::npos);
  CHECK_THROWS_WITH_AS(io::load_solver_state(caffe_data("cifar10_quick_iter_4000.caffemodel")),
                       doctest::Contains("looks like a .caffemodel, not a solver state"), Error);
  CHECK_THROWS_WITH_AS(io::read_binaryproto(dir / "net.prototxt"),
                       doctest::Contains("not a binary Caffe BlobProto (.binaryproto): it holds text"), Error);
  CHECK_THROWS_WITH_AS(io::load_weights(dir.path().string()), doctest::Contains("is a directory"), Error);
  test::write_file(dir / "empty.caffemodel", "");
  CHECK_THROWS_WITH_AS(io::load_weights(dir / "empty.caffemodel"), doctest::Contains("is empty"), Error);
  write_bytes(dir / "no_iter.solverstate", len_field(2, "x.caffemodel"));
  CHECK_THROWS_WITH_AS(io::load_solver_state(dir / "no_iter.solverstate"), doctest::Contains("no iter field"), Error);
}

TEST_CASE("truncated or corrupt binary files give one clear error, never a crash") {
  test::TempDir dir;
  for (const std::string name : {"lenet_deploy/lenet_iter_10000.caffemodel", "cifar10_quick_iter_4000.caffemodel",
                                 "cifar10_quick_iter_4000.solverstate", "v1_lenet/lenet_iter_5000.caffemodel",
                                 "v1_lenet/lenet_iter_5000.solverstate"}) {
    const std::string bytes = read_bytes(caffe_data(name));
    const bool is_state = name.ends_with(".solverstate");
    const size_t n = bytes.size();
    // None of these offsets falls on a boundary between top-level fields (checked
    // with the Python decode), so each leaves a field cut short.
    for (size_t cut : {size_t{1}, size_t{5}, n / 8, n / 4, 3 * n / 8, n / 2, 5 * n / 8, 3 * n / 4, 7 * n / 8, n - 1}) {
      CAPTURE(name);
      CAPTURE(cut);
      const std::string path = dir / "cut.bin";
      write_bytes(path, bytes.substr(0, cut));
      const std::string msg = test::error_of([&] {
        if (is_state)
          io::read_binary_solver_state(path);
        else
          io::load_weights(path);
      });
      CAPTURE(msg);
      CHECK(msg.find(path + ": ") == 0);
      CHECK(msg.find("byte ") != std::string::npos);
      CHECK(msg.find('\n') == std::string::npos);  // one line
    }
  }

  // Flipped length varints (offsets from the Python decode of lenet_iter_10000).
  const std::string lenet = read_bytes(caffe_data("lenet_deploy/lenet_iter_10000.caffemodel"));
  // conv1's first blob: packed data, tag 2a, length d0 0f (2000 bytes) at byte 144.
  REQUIRE(lenet.substr(144, 3) == std::string("\x2a\xd0\x0f", 3));
  // ip2, the last layer with blobs: tag a2 06, length a8 9d 01 (20136 bytes) at 1704814.
  REQUIRE(lenet.substr(1704814, 5) == std::string("\xa2\x06\xa8\x9d\x01", 5));
  struct Flip {
    size_t at;
    char to;
    const char* expect;
  };
  for (const Flip& f : {Flip{146, '\x7f', "NetParameter.layer[1] 'conv1'.blobs[0]): a length-delimited value of 16336"},
                        Flip{145, '\xc0', "NetParameter.layer[1] 'conv1'.blobs[0]"},
                        Flip{1704818, '\x02', "byte 1704814 (reading NetParameter): a length-delimited value of 36520"}}) {
    std::string bad = lenet;
    bad[f.at] = f.to;
    write_bytes(dir / "flipped.caffemodel", bad);
    CAPTURE(f.at);
    CHECK_THROWS_WITH_AS(io::load_weights(dir / "flipped.caffemodel"), doctest::Contains(f.expect), Error);
  }

  // Random single-byte damage anywhere in a file: loads or fails with an Error, nothing else.
  const std::string cifar = read_bytes(caffe_data("cifar10_quick_iter_4000.caffemodel"));
  std::mt19937 rng(7);
  int errors = 0;
  for (int trial = 0; trial < 150; ++trial) {
    std::string bad = cifar;
    // Mostly in the structure-heavy first 200 bytes, where damage changes the parse.
    const size_t at = trial % 2 ? rng() % 200 : rng() % bad.size();
    bad[at] = static_cast<char>(rng() & 0xff);
    write_bytes(dir / "damaged.caffemodel", bad);
    try {
      io::load_weights(dir / "damaged.caffemodel");
    } catch (const Error&) {
      ++errors;
    }
  }
  CHECK(errors > 0);
}
