// Files a user hands crema, damaged at random: bytes flipped, runs overwritten with 0xFF
// (huge varints and lengths), cut short, or spliced with a copy of another part. Every
// reader must then either read the file or throw one crema::Error naming it: never
// another exception (std::bad_alloc from a length believed, std::out_of_range), a crash
// or a hang. The corrupt and truncated files of tests/test_caffe_binary.cpp and
// tests/test_bad_inputs.cpp are the cases thought of; these are the ones not thought of.
#include <doctest/doctest.h>

#include <filesystem>
#include <functional>
#include <string>
#include <typeinfo>

#include "engine/error.hpp"
#include "engine/net.hpp"
#include "engine/rng.hpp"
#include "io/caffe_binary.hpp"
#include "io/checkpoint.hpp"
#include "io/datum.hpp"
#include "io/idx.hpp"
#include "io/image.hpp"
#include "io/job_config.hpp"
#include "test_util.hpp"

using namespace crema;

namespace {

std::string fixture(const std::string& name) { return std::string(CREMA_SOURCE_DIR) + "/tests/data/" + name; }

// `bytes` with one random kind of damage.
std::string mutate(std::string bytes, Rng& rng) {
  const auto at = [&](size_t n) {
    return static_cast<size_t>(rng.below(static_cast<uint32_t>(std::max<size_t>(n, 1))));
  };
  switch (rng.below(4)) {
    case 0:  // a few bytes flipped
      for (int k = 1 + static_cast<int>(rng.below(8)); k > 0 && !bytes.empty(); --k)
        bytes[at(bytes.size())] = static_cast<char>(rng.below(256));
      break;
    case 1: {  // a run of 0xFF: varints and lengths as large as they go
      const size_t from = at(bytes.size()), length = 1 + rng.below(11);  // 10 bytes: a varint past 64 bits
      for (size_t i = from; i < std::min(bytes.size(), from + length); ++i) bytes[i] = '\xff';
      break;
    }
    case 2:  // cut short
      bytes.resize(at(bytes.size()));
      break;
    default: {  // a part copied over another
      const size_t from = at(bytes.size()), to = at(bytes.size()), n = 1 + at(64);
      bytes.replace(to, std::min(n, bytes.size() - to), bytes.substr(from, n));
      break;
    }
  }
  return bytes;
}

// Hands `count` damaged copies of `original` to `use`; each must succeed or throw Error.
// Returns how many threw Error (so that a test can see that the damage was noticed).
int refused_of(const std::string& original, Rng& rng, int count, const std::function<void(const std::string&)>& use) {
  int refused = 0;
  for (int i = 0; i < count; ++i) {
    const std::string bytes = mutate(original, rng);
    CAPTURE(i);
    try {
      use(bytes);
    } catch (const Error&) {
      ++refused;
    } catch (const std::exception& e) {
      FAIL_CHECK("copy " << i << " threw " << typeid(e).name() << ": " << e.what());
    }
  }
  return refused;
}

// The same for a reader of files: each copy is written to `path` and `read` from there.
int read_mutated(const std::string& original, const std::string& path, uint64_t seed, int count,
                 const std::function<void(const std::string&)>& read) {
  Rng rng(seed);
  return refused_of(original, rng, count, [&](const std::string& bytes) {
    test::write_file(path, bytes);
    read(path);
  });
}

}  // namespace

TEST_CASE("Damaged inputs: binary .caffemodel and .solverstate files are read or refused with one Error") {
  test::TempDir dir;
  const std::string model = test::read_file(fixture("caffe/cifar10_quick_iter_4000.caffemodel"));
  const std::string state = test::read_file(fixture("caffe/cifar10_quick_iter_4000.solverstate"));
  const std::string v1 = test::read_file(fixture("caffe/v1_lenet/lenet_iter_5000.caffemodel"));
  REQUIRE(model.size() > 1000);
  CHECK(read_mutated(model, dir / "m.caffemodel", 1, 150, [](const std::string& p) { io::load_weights(p); }) > 0);
  CHECK(read_mutated(v1, dir / "v1.caffemodel", 2, 60, [](const std::string& p) { io::read_caffemodel(p); }) > 0);
  CHECK(read_mutated(state, dir / "s.solverstate", 3, 150,
                     [](const std::string& p) { io::read_binary_solver_state(p); }) > 0);
  const std::string mean = io::encode_mean_blob(3, 4, 5, std::vector<float>(60, 0.5f));
  CHECK(read_mutated(mean, dir / "mean.binaryproto", 4, 300, [](const std::string& p) { io::read_binaryproto(p); }) >
        0);
}

TEST_CASE("Damaged inputs: Datum records are decoded or refused with one Error") {
  io::Datum d;
  d.channels = 3;
  d.height = 4;
  d.width = 5;
  d.data.assign(60, 'x');
  d.label = 7;
  const std::string bytes = io::encode_datum(d);
  Rng rng(5);
  CHECK(refused_of(bytes, rng, 2000, [](const std::string& damaged) {
          io::Datum out;
          io::decode_datum(damaged, "record 0", out);
          io::ImageU8 decoded;
          io::datum_pixels(out, out.channels, "record 0", decoded);
        }) > 0);
}

TEST_CASE("Damaged inputs: IDX files are read or refused with one Error") {
  test::TempDir dir;
  io::IdxArray images{{20, 6, 5}, std::vector<uint8_t>(600, 9)};
  io::write_idx(dir / "images.idx", images);
  const std::string bytes = test::read_file(dir / "images.idx");
  CHECK(read_mutated(bytes, dir / "damaged.idx", 10, 1000, [](const std::string& p) { io::read_idx(p); }) > 0);
}

// Images in databases and lists are decoded by OpenCV; a damaged one is a bad sample
// (skipped or fatal by on_bad_sample), which needs an Error, not cv::Exception. (OpenCV's
// imdecode and libjpeg still print lines of their own to stderr for some of these.)
TEST_CASE("Damaged inputs: PNG, JPEG and BMP images are decoded or refused with one Error") {
  io::ImageU8 image{3, 12, 10, std::vector<uint8_t>(360)};
  for (size_t i = 0; i < image.data.size(); ++i) image.data[i] = static_cast<uint8_t>(i * 7);
  Rng rng(13);
  for (const char* ext : {"png", "jpg", "bmp"}) {
    CAPTURE(ext);
    std::string bytes;
    try {
      bytes = io::encode_image(image, ext);
    } catch (const Error& e) {  // a build without image codecs (CREMA_IMAGE_CODECS=OFF)
      MESSAGE("skipped: " << e.what());
      return;
    }
    int i = 0;  // channels and size vary with the copy
    CHECK(refused_of(bytes, rng, 400, [&](const std::string& damaged) {
            io::ImageU8 out;
            ++i;
            io::decode_image(damaged, i % 3 == 0 ? 0 : 3, "image", out, i % 2 ? 0 : 8, i % 2 ? 0 : 9);
          }) > 0);
  }
}

TEST_CASE("Damaged inputs: prototxt and YAML nets and solvers are read or refused with one Error") {
  test::TempDir dir;
  // Read as `crema train` reads them: the file (prototxt upgraded from Caffe's formats),
  // then the net's layers checked.
  const auto read_net = [](const std::string& path) { NetSpec::parse(io::load_net_file(path)); };
  const auto read_solver = [](const std::string& path) { io::load_solver_config(path); };
  int refused = 0;
  refused += read_mutated(test::read_file(fixture("caffe/cifar10_quick_train_test.prototxt")), dir / "net.prototxt", 6,
                          300, read_net);
  refused += read_mutated(test::read_file(fixture("caffe/v1_lenet/lenet_train_test.prototxt")), dir / "v1.prototxt", 7,
                          300, read_net);
  refused += read_mutated(test::read_file(fixture("caffe/cifar10_quick_solver.prototxt")), dir / "solver.prototxt", 8,
                          200, read_solver);
  const std::string lenet_yaml = test::read_file(std::string(CREMA_SOURCE_DIR) + "/configs/fashion_mnist/lenet.yaml");
  REQUIRE(!lenet_yaml.empty());
  refused += read_mutated(lenet_yaml, dir / "net.yaml", 9, 300, read_net);
  CHECK(refused > 0);
}

// HDF5 files go through the HDF5 library: mostly their raw values are hit, which reads
// (other values); a damaged header or B-tree must come back as one Error, not as the
// library's error stack or a crash.
TEST_CASE("Damaged inputs: HDF5 weights and solver states are read or refused with one Error") {
  test::TempDir dir;
  const std::string model = test::read_file(fixture("caffe/cifar10_quick_iter_5000.caffemodel.h5"));
  const std::string state = test::read_file(fixture("caffe/cifar10_quick_iter_5000.solverstate.h5"));
  REQUIRE(model.size() > 1000);
  CHECK(read_mutated(model, dir / "m.caffemodel.h5", 11, 100, [](const std::string& p) { io::load_weights(p); }) > 0);
  CHECK(read_mutated(state, dir / "s.solverstate.h5", 12, 100, [](const std::string& p) { io::load_solver_state(p); }) >
        0);
}
