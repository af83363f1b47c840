// HDF5 checkpoints: Caffe's layout both ways, '/' in layer names, atomic writes,
// solver-state round trip, and files written by BVLC Caffe itself.
#include <doctest/doctest.h>
#include <sys/stat.h>

#include <cerrno>
#include <cmath>
#include <csignal>
#include <filesystem>

#include "engine/net.hpp"
#include "engine/solver.hpp"
#include "io/checkpoint.hpp"
#include "io/files.hpp"
#include "io/hdf5.hpp"
#include "io/yaml_config.hpp"
#include "test_util.hpp"

using namespace crema;
namespace fs = std::filesystem;

namespace {

// The CIFAR-10 quick deploy net (tests/data/caffe/cifar10_quick.prototxt) in YAML.
const char* kCifarQuick = R"(
name: CIFAR10_quick_test
layer:
  - {name: data, type: Input, top: data, input_param: {shape: {dim: [1, 3, 32, 32]}}}
  - {name: conv1, type: Convolution, bottom: data, top: conv1, convolution_param: {num_output: 32, pad: 2, kernel_size: 5, stride: 1}}
  - {name: pool1, type: Pooling, bottom: conv1, top: pool1, pooling_param: {pool: MAX, kernel_size: 3, stride: 2}}
  - {name: relu1, type: ReLU, bottom: pool1, top: pool1}
  - {name: conv2, type: Convolution, bottom: pool1, top: conv2, convolution_param: {num_output: 32, pad: 2, kernel_size: 5, stride: 1}}
  - {name: relu2, type: ReLU, bottom: conv2, top: conv2}
  - {name: pool2, type: Pooling, bottom: conv2, top: pool2, pooling_param: {pool: AVE, kernel_size: 3, stride: 2}}
  - {name: conv3, type: Convolution, bottom: pool2, top: conv3, convolution_param: {num_output: 64, pad: 2, kernel_size: 5, stride: 1}}
  - {name: relu3, type: ReLU, bottom: conv3, top: conv3}
  - {name: pool3, type: Pooling, bottom: conv3, top: pool3, pooling_param: {pool: AVE, kernel_size: 3, stride: 2}}
  - {name: ip1, type: InnerProduct, bottom: pool3, top: ip1, inner_product_param: {num_output: 64}}
  - {name: ip2, type: InnerProduct, bottom: ip1, top: ip2, inner_product_param: {num_output: 10}}
  - {name: prob, type: Softmax, bottom: ip2, top: prob}
)";

const char* kSmallNet = R"(
name: small
layer:
  - {name: data, type: DummyData, top: [data, target], dummy_data_param: {shape: [{dim: [4, 3]}, {dim: [4, 2]}], data_filler: [{type: gaussian}, {type: constant, value: 0.5}]}}
  - {name: "block/fc", type: InnerProduct, bottom: data, top: fc, inner_product_param: {num_output: 2, weight_filler: {type: gaussian, std: 0.1}, bias_filler: {type: constant, value: 0.2}}}
  - {name: "50%/tied", type: InnerProduct, bottom: data, top: fc2, param: [{name: shared_w}], inner_product_param: {num_output: 2, bias_term: false, weight_filler: {type: gaussian}}}
  - {name: tied_again, type: InnerProduct, bottom: data, top: fc3, param: [{name: shared_w}], inner_product_param: {num_output: 2, bias_term: false}}
  - {name: sum, type: Eltwise, bottom: [fc, fc2, fc3], top: out}
  - {name: loss, type: EuclideanLoss, bottom: [out, target], top: loss}
)";

struct Built {
  std::shared_ptr<Node> config;
  NetSpec spec;
};

Built parse(const char* yaml) {
  Built b;
  b.config = std::make_shared<Node>(io::parse_yaml(yaml, "test.yaml"));
  b.spec = NetSpec::parse(*b.config);
  return b;
}

}  // namespace

TEST_CASE("escaping keeps '/' and '%' in layer names round-trippable") {
  for (std::string name : {"conv1", "block/conv", "a%2Fb", "%", "inception_3a/1x1", "."}) {
    const std::string e = io::escape_h5_name(name);
    CHECK(e.find('/') == std::string::npos);
    CHECK(io::unescape_h5_name(e) == name);
  }
}

TEST_CASE("a layer whose parameters are all shared with a loaded layer counts as loaded") {
  auto b = parse(kSmallNet);
  Context ctx(11);
  Net net(b.spec, NetState{}, ctx, true);
  const int tied = net.layer_index("50%/tied"), again = net.layer_index("tied_again");
  REQUIRE(tied >= 0);
  REQUIRE(again >= 0);
  CHECK(net.layer_index("no such layer") == -1);
  // Either of the tied layers supplies the other (a file with only the copy, as an untied
  // Caffe list or a PyTorch conversion writes it, also loads the owner).
  CHECK(io::layers_not_loaded(net, {"block/fc", "50%/tied"}).empty());
  CHECK(io::layers_not_loaded(net, {"block/fc", "tied_again"}).empty());
  CHECK(io::loaded_through_sharing(net, again, {"block/fc", "50%/tied"}) == std::vector<std::string>{"50%/tied"});
  CHECK(io::loaded_through_sharing(net, tied, {"tied_again"}) == std::vector<std::string>{"tied_again"});
  CHECK(io::layers_not_loaded(net, {"block/fc"}) == std::vector<std::string>{"50%/tied", "tied_again"});
  CHECK(io::loaded_through_sharing(net, again, {"block/fc"}).empty());
  // block/fc shares nothing: the others cannot supply it.
  CHECK(io::layers_not_loaded(net, {"50%/tied"}) == std::vector<std::string>{"block/fc"});
}

TEST_CASE("weights round-trip in Caffe's layout, shared copies written once") {
  test::TempDir dir;
  auto b = parse(kSmallNet);
  Context ctx(11);
  Net net(b.spec, NetState{}, ctx, true);
  const std::string path = dir / "w.caffemodel.h5";
  io::save_weights(net, path);
  CHECK_FALSE(fs::exists(io::temp_name_for(path)));  // the temporary was renamed away
  // A later run knows such a temporary by its name, and only by the whole suffix.
  CHECK(io::temp_name_target(fs::path(io::temp_name_for(path)).filename().string()) == "w.caffemodel.h5");
  CHECK(io::temp_name_target("a.tmp-1.h5") == std::nullopt);
  CHECK(io::temp_name_target("a.tmp-") == std::nullopt);
  CHECK(io::temp_name_target("a.tmp-12x") == std::nullopt);
  CHECK(io::temp_name_target("a.h5") == std::nullopt);
  // A device or a FIFO at the path is never replaced by the rename that completes a write.
  const std::string fifo = dir / "a fifo";
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  CHECK_THROWS_WITH_AS(
      io::write_file_atomically(fifo, "bytes"),
      doctest::Contains(("cannot write '" + fifo + "': it is a FIFO, and crema writes a new file").c_str()), Error);
  CHECK(fs::is_fifo(fifo));
  // And if one appears between the temporary's naming and the rename, the rename refuses too.
  const std::string late = dir / "late";
  const std::string tmp = io::temp_name_for(late);
  test::write_file(tmp, "bytes");
  REQUIRE(::mkfifo(late.c_str(), 0600) == 0);
  CHECK_THROWS_WITH_AS(io::commit_file(tmp, late), doctest::Contains("it is a FIFO"), Error);
  CHECK(fs::is_fifo(late));
  CHECK_FALSE(fs::exists(tmp));  // the temporary is removed
  // What a failed write says: the system's reason, and the space left where it wrote.
  const auto left = io::free_bytes(dir.path().string());
  REQUIRE(left.has_value());
  CHECK(*left > 0);
  CHECK_FALSE(io::free_bytes(dir / "no such folder").has_value());
  CHECK(io::write_failure_reason(path, ENOSPC).rfind("the disk is full; ", 0) == 0);
  CHECK(io::write_failure_reason(path, EDQUOT).rfind("the disk quota is used up; ", 0) == 0);
  CHECK(io::write_failure_reason(path, 0).rfind("a full disk or a used-up quota?; ", 0) == 0);
  CHECK(io::write_failure_reason(path, ENOSPC).find(" MiB free there") != std::string::npos);

  io::H5File f(path, io::H5File::Mode::Read);
  CHECK(f.exists("data/data"));  // parameter-free layers get an empty group
  CHECK(f.exists("data/block%2Ffc/0"));
  CHECK(f.exists("data/block%2Ffc/1"));
  CHECK(f.exists("data/50%25%2Ftied/0"));
  CHECK_FALSE(f.exists("data/tied_again/0"));  // weight-tied copy is not written
  CHECK(f.exists("data/tied_again"));
  std::vector<int> shape;
  const auto w = f.read_floats("data/block%2Ffc/0", &shape);
  CHECK(shape == std::vector<int>{2, 3});
  for (int i = 0; i < 6; ++i) CHECK(w[static_cast<size_t>(i)] == net.layer_by_name("block/fc")->blobs()[0]->cpu_data()[i]);

  // Into a fresh net with other initial values.
  Context ctx2(99);
  Net other(b.spec, NetState{}, ctx2, true);
  const auto report = io::copy_weights(other, io::load_weights(path), path);
  CHECK(report.ignored_source.empty());
  for (const char* layer : {"block/fc", "50%/tied", "tied_again"}) {
    const auto& a = net.layer_by_name(layer)->blobs();
    const auto& c = other.layer_by_name(layer)->blobs();
    REQUIRE(a.size() == c.size());
    for (size_t j = 0; j < a.size(); ++j)
      for (int i = 0; i < a[j]->count(); ++i) CHECK(a[j]->cpu_data()[i] == c[j]->cpu_data()[i]);
  }
}

TEST_CASE("a shape mismatch names the layer and both shapes") {
  test::TempDir dir;
  auto b = parse(kSmallNet);
  Context ctx(1);
  Net net(b.spec, NetState{}, ctx, true);
  io::save_weights(net, dir / "w.h5");
  std::string other_yaml = kSmallNet;
  other_yaml.replace(other_yaml.find("num_output: 2, weight_filler: {type: gaussian, std: 0.1}"), 13, "num_output: 5");
  other_yaml.replace(other_yaml.find("[fc, fc2, fc3]"), 14, "[fc2, fc3]");
  auto b2 = parse(other_yaml.c_str());
  Net net2(b2.spec, NetState{}, ctx, true);
  try {
    io::copy_weights(net2, io::load_weights(dir / "w.h5"), "w.h5");
    FAIL("expected an error");
  } catch (const io::WeightsMismatch& e) {
    const std::string msg = e.what();
    CHECK(msg.find("block/fc") != std::string::npos);
    CHECK(msg.find("2 3 (6)") != std::string::npos);
    CHECK(msg.find("5 3 (15)") != std::string::npos);
    // The layers the caller's advice (--reinit, "another net") names; what to do is the caller's.
    CHECK(e.layers() == std::vector<std::string>{"block/fc"});
    CHECK(e.layer_list() == "block/fc");
  }
}

TEST_CASE("weights written by BVLC Caffe load into the same net") {
  const std::string path = test::source_dir() + "/tests/data/caffe/cifar10_quick_iter_5000.caffemodel.h5";
  auto b = parse(kCifarQuick);
  Context ctx(1);
  Net net(b.spec, NetState{Phase::TEST, 0, {}}, ctx, true);
  const auto report = io::copy_weights(net, io::load_weights(path), path);
  // The file is the TRAIN net's: its data layer "cifar" and "loss" have no match here,
  // and this net's "data" and "prob" have none there.
  CHECK(report.loaded.size() == 11);
  CHECK(report.ignored_source == std::vector<std::string>{"cifar", "loss"});
  CHECK(net.layer_by_name("ip1")->blobs()[0]->shape() == std::vector<int>{64, 1024});
  // The trained net is confident on its own weights' structure: outputs are a distribution.
  Blob* data = net.blob("data");
  for (int i = 0; i < data->count(); ++i) data->mutable_cpu_data()[i] = static_cast<float>((i * 37) % 255) - 128.f;
  net.forward(ctx);
  const Blob* prob = net.blob("prob");
  double sum = 0;
  for (int i = 0; i < 10; ++i) sum += prob->cpu_data()[i];
  CHECK(sum == doctest::Approx(1.0).epsilon(1e-5));
  // Weights differ from a fresh initialisation (they really were copied).
  CHECK(net.layer_by_name("conv1")->blobs()[0]->cpu_data()[0] != 0.f);
}

TEST_CASE("a solver state written by BVLC Caffe is read, learned_net found beside it") {
  test::TempDir dir;
  const std::string src = test::source_dir() + "/tests/data/caffe/";
  // Caffe stored learned_net as "examples/cifar10/...": only the copy beside the state exists.
  fs::copy_file(src + "cifar10_quick_iter_5000.solverstate.h5", dir / "cifar10_quick_iter_5000.solverstate.h5");
  fs::copy_file(src + "cifar10_quick_iter_5000.caffemodel.h5", dir / "cifar10_quick_iter_5000.caffemodel.h5");
  const auto loaded = io::load_solver_state(dir / "cifar10_quick_iter_5000.solverstate.h5");
  CHECK(loaded.state.iter == 5000);
  CHECK(loaded.state.history.size() == 10);
  CHECK(loaded.state.history[0].shape() == std::vector<int>{32, 3, 5, 5});
  CHECK(loaded.weights_path == dir / "cifar10_quick_iter_5000.caffemodel.h5");
  CHECK(loaded.config_yaml.empty());

  fs::remove(dir / "cifar10_quick_iter_5000.caffemodel.h5");
  CHECK_THROWS_WITH_AS(io::load_solver_state(dir / "cifar10_quick_iter_5000.solverstate.h5"),
                       doctest::Contains("cifar10_quick_iter_5000.caffemodel.h5"), Error);
}

TEST_CASE("solver state round trip keeps crema's resume extras") {
  test::TempDir dir;
  SolverState s;
  s.type = "SGD";
  s.iter = 30;
  s.current_step = 2;
  s.history.emplace_back(std::vector<int>{2, 3});
  for (int i = 0; i < 6; ++i) s.history[0].mutable_cpu_data()[i] = 0.5f * static_cast<float>(i);
  s.rng_state = "1 2 3 binary\n\x01";
  s.recent_losses = {1.f, 2.f, 3.f};
  s.smoothed_loss = 2.f;
  s.loss_origin = 10;
  s.layer_states["train/mnist"] = "state with / and \n newline";
  fs::create_directories(dir.path() / "run");
  test::write_file(dir / "run/x_iter_30.caffemodel.h5", "");
  io::save_solver_state(s, "run/x_iter_30.caffemodel.h5", "base_lr: 0.1\n", dir / "run/x_iter_30.solverstate.h5");
  // Moving the run directory keeps it resumable.
  fs::rename(dir.path() / "run", dir.path() / "moved");
  const auto l = io::load_solver_state(dir / "moved/x_iter_30.solverstate.h5");
  CHECK(l.weights_path == dir / "moved/x_iter_30.caffemodel.h5");
  CHECK(l.state.type == "SGD");
  CHECK(l.state.iter == 30);
  CHECK(l.state.current_step == 2);
  CHECK(l.state.history[0].cpu_data()[5] == 2.5f);
  CHECK(l.state.rng_state == s.rng_state);
  CHECK(l.state.recent_losses == s.recent_losses);
  CHECK(l.state.loss_origin == 10);
  CHECK(l.state.layer_states.at("train/mnist") == s.layer_states.at("train/mnist"));
  CHECK(l.config_yaml == "base_lr: 0.1\n");
  // Given as weights (an easy slip: the two files of a snapshot differ in one word).
  CHECK_THROWS_WITH_AS(
      io::load_weights(dir / "moved/x_iter_30.solverstate.h5"),
      doctest::Contains("this is a solver state (the .solverstate.h5 of a snapshot), not weights: "
                        "give the snapshot's .caffemodel.h5, beside it, as weights (crema train resumes from a "
                        "solver state with --snapshot)"),
      Error);
}

TEST_CASE("reading a file that is not a checkpoint gives one clear error") {
  test::TempDir dir;
  test::write_file(dir / "junk.h5", "not hdf5 at all");
  CHECK_THROWS_WITH_AS(io::load_weights(dir / "junk.h5"), doctest::Contains("not an HDF5 file"), Error);
  CHECK_THROWS_WITH_AS(io::load_weights(dir / "missing.h5"), doctest::Contains("missing.h5"), Error);
  // A checkpoint cut short (an interrupted copy) starts as HDF5: named as damaged, with its size.
  auto b = parse(kSmallNet);
  Context ctx(1);
  Net net(b.spec, NetState{}, ctx, true);
  io::save_weights(net, dir / "w.h5");
  const std::string whole = test::read_file(dir / "w.h5");
  test::write_file(dir / "cut.h5", whole.substr(0, whole.size() / 2));
  const std::string expected = "cannot open HDF5 file '" + (dir / "cut.h5") + "' (" + std::to_string(whole.size() / 2) +
                               " bytes): it starts as an HDF5 file but is damaged or cut short";
  CHECK_THROWS_WITH_AS(io::load_weights(dir / "cut.h5"), doctest::Contains(expected.c_str()), Error);
  // An HDF5Data file given for weights; a layer name's '/' written unescaped by h5py (nested groups).
  {
    io::H5File f(dir / "rows.h5", io::H5File::Mode::Create);
    const std::vector<float> rows(6, 1.f);
    f.write_floats("data", {2, 3}, rows.data());
  }
  CHECK_THROWS_WITH_AS(io::load_weights(dir / "rows.h5"),
                       doctest::Contains("not weights: its 'data' is a dataset, as in the files HDF5Data reads"),
                       Error);
  {
    io::H5File f(dir / "nested.h5", io::H5File::Mode::Create);
    for (const char* g : {"data", "data/enc", "data/enc/fc"}) f.create_group(g);
    const std::vector<float> w(6, 1.f);
    f.write_floats("data/enc/fc/0", {2, 3}, w.data());
  }
  CHECK_THROWS_WITH_AS(io::load_weights(dir / "nested.h5"),
                       doctest::Contains("unexpected group 'data/enc/fc' (expected datasets 0, 1, ...): a layer named "
                                         "'enc/fc' is stored with its '/' as %2F, as data/enc%2Ffc/0"),
                       Error);
  // Blobs numbered 0 and 2 for a layer of 2: said so, not "has 2 but the layer has 2".
  {
    auto gap = parse(kSmallNet);
    Context gap_ctx(1);
    Net gap_net(gap.spec, NetState{}, gap_ctx, true);
    io::save_weights(gap_net, dir / "gap.h5");
    io::Weights w = io::load_weights(dir / "gap.h5");
    for (io::LayerWeights& lw : w)
      if (lw.layer == "block/fc") lw.blobs[1].first = 2;
    CHECK_THROWS_WITH_AS(io::copy_weights(gap_net, w, "gap.h5"),
                         doctest::Contains("gap.h5: layer 'block/fc' has its 2 parameter blob(s) numbered 0, 2, but "
                                           "the net's InnerProduct layer reads them as 0 to 1"),
                         Error);
  }
  // A whole file that another program holds open for writing (HDF5 locks it, as flock -x
  // does here) is said to be so, not taken for a damaged one.
  // -o: the lock stays with flock itself, which the SIGKILL below ends.
  test::Child holder({"/usr/bin/flock", "-x", "-o", dir / "w.h5", "-c", "echo locked; exec sleep 60"},
                     dir / "flock.log");
  REQUIRE_MESSAGE(holder.wait_for_log("locked", 30), holder.log());
  CHECK_THROWS_WITH_AS(io::load_weights(dir / "w.h5"),
                       doctest::Contains(("cannot open HDF5 file '" + (dir / "w.h5") +
                                          "': HDF5 cannot lock it: another program has it open for writing")
                                             .c_str()),
                       Error);
  holder.signal(SIGKILL);
  holder.wait_at_most(30);
  CHECK(io::load_weights(dir / "w.h5").size() > 0);
}

TEST_CASE("a checkpoint damaged after it was written fails its checksum instead of loading wrong weights") {
  test::TempDir dir;
  auto b = parse(kSmallNet);
  Context ctx(1);
  Net net(b.spec, NetState{}, ctx, true);
  Blob& w = *net.layer_by_name("block/fc")->blobs()[0];  // (2, 3)
  for (int i = 0; i < w.count(); ++i) w.mutable_cpu_data()[i] = static_cast<float>(i + 1);
  io::save_weights(net, dir / "w.h5");
  REQUIRE_NOTHROW(io::load_weights(dir / "w.h5"));  // intact: loads
  // One flipped bit in the middle of block/fc's weights (stored as little-endian floats).
  std::string bytes = test::read_file(dir / "w.h5");
  std::string pattern;
  for (int i = 0; i < w.count(); ++i) {
    const float v = static_cast<float>(i + 1);
    pattern.append(reinterpret_cast<const char*>(&v), sizeof v);
  }
  const size_t at = bytes.find(pattern);
  REQUIRE(at != std::string::npos);
  REQUIRE(bytes.find(pattern, at + 1) == std::string::npos);
  bytes[at + 9] = static_cast<char>(bytes[at + 9] ^ 0x10);
  test::write_file(dir / "w.h5", bytes);
  CHECK_THROWS_WITH_AS(io::load_weights(dir / "w.h5"),
                       doctest::Contains("cannot read dataset 'data/block%2Ffc/0': its checksum does not match, so the "
                                         "file was damaged after it was written"),
                       Error);
}

TEST_CASE("weights holding NaN or infinities (a diverged run's) are refused, naming the blob") {
  test::TempDir dir;
  auto b = parse(kSmallNet);
  Context ctx(1);
  Net net(b.spec, NetState{}, ctx, true);
  Blob& bias = *net.layer_by_name("block/fc")->blobs()[1];  // (2)
  bias.mutable_cpu_data()[1] = std::nanf("");
  io::save_weights(net, dir / "nan.h5");
  CHECK_THROWS_WITH_AS(io::load_weights(dir / "nan.h5"),
                       doctest::Contains("nan.h5: layer 'block/fc' parameter 1 holds 1 NaN or infinite value(s) of 2: "
                                         "the weights of a run that diverged; use an earlier snapshot"),
                       Error);
  bias.mutable_cpu_data()[1] = INFINITY;
  io::save_weights(net, dir / "inf.h5");
  CHECK_THROWS_WITH_AS(io::load_weights(dir / "inf.h5"), doctest::Contains("holds 1 NaN or infinite"), Error);
}

TEST_CASE("a weights dataset too large for a blob is refused, not wrapped") {
  test::TempDir dir;
  {
    io::H5File f(dir / "huge.caffemodel.h5", io::H5File::Mode::Create);
    f.create_group("data");
    f.create_group("data/fc");
    // 2 x 2^30 floats (8 GiB) declared, never written: chunked storage keeps the file tiny.
    const std::vector<hsize_t> dims{2, hsize_t{1} << 30}, chunk{1, 1024};
    io::H5Handle space(H5Screate_simple(2, dims.data(), nullptr), H5Sclose);
    io::H5Handle plist(H5Pcreate(H5P_DATASET_CREATE), H5Pclose);
    H5Pset_chunk(plist.get(), 2, chunk.data());
    io::H5Handle ds(H5Dcreate2(f.id(), "data/fc/0", H5T_IEEE_F32LE, space.get(), H5P_DEFAULT, plist.get(), H5P_DEFAULT),
                    H5Dclose);
    REQUIRE(ds.get() >= 0);
  }
  CHECK(fs::file_size(dir / "huge.caffemodel.h5") < (1 << 20));
  CHECK_THROWS_WITH_AS(io::load_weights(dir / "huge.caffemodel.h5"), doctest::Contains("(2 x 1073741824) holds more than 2^31-1"),
                       Error);
}

TEST_CASE("snapshots_on_disk finds a prefix's snapshots by iteration, and nothing else") {
  test::TempDir dir;
  for (const char* name : {"toy_iter_5.solverstate.h5", "toy_iter_5.caffemodel.h5", "toy_iter_10.caffemodel.h5",
                           "toy_iter_20.solverstate.h5", "toy_iter_20.caffemodel.h5",
                           // Not toy's: another prefix, a temporary file, no number, another kind.
                           "toy_reinit_iter_30.solverstate.h5", "toy_iter_40.solverstate.h5.tmp-123",
                           "toy_iter_.caffemodel.h5", "toy_iter_50.caffemodel", "toy.train.csv"})
    test::write_file(dir / name, "x");
  fs::create_directories(dir / "toy_iter_60.solverstate.h5");  // a folder is no snapshot
  const auto found = io::snapshots_on_disk(dir / "toy");
  REQUIRE(found.size() == 3);
  CHECK(found[0].iter == 5);
  CHECK(found[0].state == dir / "toy_iter_5.solverstate.h5");
  CHECK(found[0].weights == dir / "toy_iter_5.caffemodel.h5");
  CHECK(found[1].iter == 10);  // by number: "10" sorts before "5" by name
  CHECK(found[1].state.empty());
  CHECK(found[2].iter == 20);
  CHECK(found[2].state == dir / "toy_iter_20.solverstate.h5");
  CHECK(io::snapshots_on_disk(dir / "other").empty());
  CHECK(io::snapshots_on_disk(dir / "missing/toy").empty());
}

TEST_CASE("parse_snapshot_name takes <prefix>_iter_<N><kind> apart, refusing what crema would not write") {
  const auto a = io::parse_snapshot_name("runs/my_iter_net_iter_2000000000.solverstate.h5");
  REQUIRE(a);
  CHECK(a->prefix == "runs/my_iter_net");
  CHECK(a->iter == 2000000000);
  CHECK(a->kind == ".solverstate.h5");
  const auto b = io::parse_snapshot_name("lenet_iter_0.caffemodel");
  REQUIRE(b);
  CHECK(b->iter == 0);
  CHECK(b->kind == ".caffemodel");
  for (const char* name : {"x_iter_3000000000.caffemodel.h5", "x_iter_05.caffemodel.h5", "x_iter_-5.caffemodel.h5",
                           "x_iter_.caffemodel.h5", "x_iter_5.caffemodel.h5.tmp-12", "x_iter_5.h5", "x_5.caffemodel"})
    CHECK_MESSAGE(!io::parse_snapshot_name(name), name);
}
