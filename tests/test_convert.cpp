// `crema convert` and prototxt files on the command line, driven as a user drives
// them: nets and solvers back and forth between prototxt and YAML, Caffe's V1 files
// upgraded on the way, training and timing straight from prototxt, and the errors.
#include <doctest/doctest.h>

#include <filesystem>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "io/caffe_binary.hpp"
#include "io/checkpoint.hpp"
#include "io/protobuf_wire.hpp"
#include "io/prototxt.hpp"
#include "io/yaml_config.hpp"
#include "test_util.hpp"

using namespace crema;
namespace fs = std::filesystem;

namespace {

using test::crema_cmd;
std::string caffe_data(const std::string& name) { return test::source_dir() + "/tests/data/caffe/" + name; }
bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

}  // namespace

TEST_CASE("convert: a V1 prototxt becomes current YAML and prototxt, and converting again changes nothing") {
  test::TempDir dir;
  const auto to_yaml = test::run(crema_cmd("convert " + caffe_data("v1_lenet/lenet_train_test.prototxt") + " -o " +
                                           (dir / "lenet.yaml")));
  INFO(to_yaml.output);
  REQUIRE(to_yaml.status == 0);
  CHECK(contains(to_yaml.output, "upgraded: V1 'layers' → 'layer'"));
  const std::string yaml = test::read_file(dir / "lenet.yaml");
  const Node net = io::parse_yaml(yaml, "lenet.yaml");
  const Node& conv1 = net.find("layer")->items()[2];
  CHECK(conv1.find("type")->str() == "Convolution");
  CHECK(conv1.find("param")->items()[1].find("lr_mult")->str() == "2");
  CHECK(contains(yaml, "scale: 0.00390625"));

  const auto to_proto = test::run(crema_cmd("convert " + (dir / "lenet.yaml") + " -o " + (dir / "lenet.prototxt")));
  REQUIRE(to_proto.status == 0);
  const std::string proto = test::read_file(dir / "lenet.prototxt");
  CHECK(contains(proto, "layer {\n  name: \"conv1\"\n  type: \"Convolution\"\n"));
  CHECK(contains(proto, "  param {\n    lr_mult: 2\n  }\n"));
  CHECK(contains(proto, "    pool: MAX\n"));
  CHECK(!contains(proto, "blobs_lr"));

  REQUIRE(test::run(crema_cmd("convert " + (dir / "lenet.prototxt") + " -o " + (dir / "again.yml"))).status == 0);
  CHECK(test::read_file(dir / "again.yml") == yaml);
  REQUIRE(test::run(crema_cmd("convert " + (dir / "again.yml") + " -o " + (dir / "again.pt"))).status == 0);
  CHECK(test::read_file(dir / "again.pt") == proto);

  // --set on the V1 file: its `layers` are read upgraded, so the override names `layer`
  // (it once said "no list 'layers' to index" of a file that visibly has one).
  const std::string v1 = caffe_data("v1_lenet/lenet_train_test.prototxt");
  const auto v1_set = test::run(crema_cmd("time --model " + v1 + " --set 'layers[2].convolution_param.num_output=8'"));
  CHECK(v1_set.status == 2);
  CHECK_MESSAGE(contains(v1_set.output,
                         "the net's list of layers is 'layer' (a V1 net's 'layers' is read into it, as "
                         "crema convert writes it): write layer[2]"),
                v1_set.output);
  const auto upgraded_set = test::run(crema_cmd("time --model " + v1 + " --iterations 1 --set " +
                                                "'layer[0].data_param.source=" + caffe_data("no_such_lmdb") + "'"));
  CHECK(upgraded_set.status != 0);  // the advice works: the override reaches the layer, whose source is missing
  CHECK_MESSAGE(contains(upgraded_set.output, "layer[0] (mnist): data_param.source: LMDB '" +
                                                  caffe_data("no_such_lmdb") + "' does not exist"),
                upgraded_set.output);
  CHECK_FALSE(contains(upgraded_set.output, "to index"));
  CHECK_FALSE(contains(upgraded_set.output, "read into it"));
}

TEST_CASE("convert: a solver with an inline net converts both ways and trains from the prototxt") {
  test::TempDir dir;
  test::write_toy_idx(dir.path().string(), "train", 64, 1);
  test::write_toy_idx(dir.path().string(), "test", 32, 2);
  test::write_file(dir / "solver.yaml", test::toy_solver_yaml(dir.path().string(), 4));
  const auto r = test::run(crema_cmd("convert " + (dir / "solver.yaml") + " -o " + (dir / "solver.prototxt")));
  INFO(r.output);
  REQUIRE(r.status == 0);
  const std::string proto = test::read_file(dir / "solver.prototxt");
  CHECK(proto.rfind("net_param {\n  name: \"toy\"\n", 0) == 0);
  CHECK(contains(proto, "\nbase_lr: 0.05\n"));
  CHECK(contains(proto, "      dropout_ratio: 0.3\n"));
  // Caffe's Data layer reads no IDX file: the prototxt is crema's, and the warning says so once.
  CHECK(contains(r.output,
                 "solver.prototxt: Caffe cannot read it as written, crema can: layer 'd' reads IDX files, "
                 "which Caffe's Data layer does not (LMDB or LEVELDB: crema convert-imageset writes an "
                 "LMDB)\n"));
  // A solver naming its net's YAML file: Caffe would parse that as prototxt.
  test::write_file(dir / "net.yaml",
                   "name: n\nlayer:\n- {name: x, type: Input, top: x, input_param: {shape: {dim: [1, "
                   "2]}}}\n- {name: ip, type: InnerProduct, bottom: x, top: y, inner_product_param: "
                   "{num_output: 2}}\n");
  test::write_file(dir / "by_file.yaml", "net: net.yaml\nbase_lr: 0.1\nmax_iter: 1\n");
  const auto by_file = test::run(crema_cmd("convert " + (dir / "by_file.yaml") + " -o " + (dir / "by_file.prototxt")));
  REQUIRE_MESSAGE(by_file.status == 0, by_file.output);
  CHECK_MESSAGE(contains(by_file.output,
                         "by_file.prototxt: Caffe cannot read it as written, crema can: net: 'net.yaml' "
                         "is a YAML file (convert it to .prototxt too, and name that)"),
                by_file.output);
  // crema's own keys and values, which Caffe's parser stops at.
  test::write_file(dir / "own.yaml",
                   "net:\n  layer:\n  - {name: d, type: ImageData, top: [data, label], transform_param: {std: [2]}, "
                   "image_data_param: {source: list.txt, prefetch: 2, on_bad_sample: skip}}\n"
                   "base_lr: 0.1\nmax_iter: 10\ntype: AdamW\nlr_policy: cosine\nmin_lr: 0.01\nsnapshot_keep: 2\n");
  const auto own = test::run(crema_cmd("convert " + (dir / "own.yaml") + " -o " + (dir / "own.prototxt")));
  REQUIRE_MESSAGE(own.status == 0, own.output);
  CHECK_MESSAGE(contains(own.output,
                         "own.prototxt: Caffe cannot read it as written, crema can: min_lr is crema's; snapshot_keep "
                         "is crema's; type: AdamW is crema's; lr_policy: cosine is crema's; layer 'd' has "
                         "image_data_param.on_bad_sample, crema's; layer 'd' has image_data_param.prefetch, crema's; "
                         "layer 'd' has transform_param.std, crema's"),
                own.output);
  const auto as_yaml = test::run(crema_cmd("convert " + (dir / "solver.yaml") + " -o " + (dir / "again.yaml")));
  CHECK_MESSAGE(!contains(as_yaml.output, "Caffe cannot read"), as_yaml.output);

  const auto back = test::run(crema_cmd("convert " + (dir / "solver.prototxt") + " -o " + (dir / "back.yaml")));
  REQUIRE(back.status == 0);
  const Node solver = io::parse_yaml(test::read_file(dir / "back.yaml"), "back.yaml");
  REQUIRE(solver.find("net"));
  CHECK(solver.find("net")->is_map());
  CHECK(!solver.find("net_param"));
  CHECK(solver.find("max_iter")->str() == "4");

  const auto train = test::run(crema_cmd("train " + (dir / "solver.prototxt") + " --threads 1"));
  INFO(train.output);
  CHECK(train.status == 0);
  CHECK(contains(train.output, "Optimization Done."));
  CHECK(contains(train.output, "Peak resident memory: "));
  CHECK(fs::exists(dir / "snap/toy_iter_4.caffemodel.h5"));
}

TEST_CASE("convert: time and test take a prototxt net") {
  const auto time = test::run(crema_cmd("time --model " + caffe_data("cifar10_quick.prototxt") +
                                        " --iterations 2 --phase TEST --threads 1"));
  INFO(time.output);
  CHECK(time.status == 0);
  CHECK(contains(time.output, "conv1\tforward: "));
  CHECK(contains(time.output, "Average Forward pass: "));

  const auto v1 = test::run(crema_cmd("time --model " + caffe_data("v1_lenet/lenet.prototxt") +
                                      " --iterations 1 --threads 1"));
  INFO(v1.output);
  CHECK(v1.status == 0);
  CHECK(contains(v1.output, "Top shape: 64 1 28 28 (50176)"));

  const auto test_run = test::run(crema_cmd("test --model " + caffe_data("cifar10_quick.prototxt") + " --weights " +
                                            caffe_data("cifar10_quick_iter_5000.caffemodel.h5") + " --iterations 1"));
  INFO(test_run.output);
  // A deploy net has no data to score: its Input stays zeros. It once printed "prob = …" of those.
  CHECK(test_run.status == 2);
  CHECK(contains(test_run.output, "has no data layer (Data, ImageData, HDF5Data, …), so there is nothing to score"));
  CHECK_FALSE(contains(test_run.output, "prob = "));
}

TEST_CASE("convert: errors say what is wrong, with exit status 2 for config mistakes") {
  test::TempDir dir;
  const auto ext = test::run(crema_cmd("convert " + caffe_data("cifar10_quick.prototxt") + " -o " + (dir / "x.txt")));
  CHECK(ext.status == 2);
  CHECK(contains(ext.output, (dir / "x.txt") + ": cannot tell the output format from the file name; name it .yaml (or "
                                               ".yml) for YAML or .prototxt (or .pt) for Caffe's text format"));
  CHECK(!fs::exists(dir / "x.txt"));

  const auto binary = test::run(crema_cmd("convert " + (dir / "w.caffemodel") + " -o " + (dir / "w.caffemodel.h5")));
  CHECK(binary.status == 1);
  CHECK(contains(binary.output, dir / "w.caffemodel"));
  CHECK(!fs::exists(dir / "w.caffemodel.h5"));

  test::write_file(dir / "bad.prototxt", "name: \"n\"\nlayer {\n  name \"a\"\n}\n");
  const auto syntax = test::run(crema_cmd("convert " + (dir / "bad.prototxt") + " -o " + (dir / "bad.yaml")));
  CHECK(syntax.status == 2);
  CHECK(contains(syntax.output,
                 (dir / "bad.prototxt") + ":3:8: expected ':' or '{' after the field name 'name', got a quoted string"));

  // The same mistake when training: the prototxt position, not a crash.
  test::write_file(dir / "net.prototxt", "name: \"n\"\nlayer { name: \"d\" type: \"Input\" top: \"d\" inptu_param {} }\n");
  test::write_file(dir / "solver.prototxt", "net: \"net.prototxt\"\nbase_lr: 0.1\nmax_iter: 1\n");
  const auto train = test::run(crema_cmd("train " + (dir / "solver.prototxt")));
  CHECK(train.status == 2);
  CHECK(contains(train.output, (dir / "net.prototxt") +
                                   ":2:42: net.layer[0].inptu_param: unknown key 'inptu_param' (did you mean "
                                   "'input_param'?)"));

  const auto missing = test::run(crema_cmd("convert"));
  CHECK(missing.status == 2);
  CHECK_MESSAGE(contains(missing.output, "crema convert: input is required; 'crema convert --help' lists the options"),
                missing.output);

  // Onto itself: the file (and its comments) would be replaced.
  const std::string mine =
      "# my notes\nname: n\nlayer:\n  - {name: d, type: Input, top: d, input_param: {shape: {dim: [1]}}}\n";
  test::write_file(dir / "mine.yaml", mine);
  const auto onto = test::run("cd " + dir.path().string() + " && " + crema_cmd("convert mine.yaml -o ./mine.yaml"));
  CHECK(onto.status == 2);
  CHECK_MESSAGE(contains(onto.output, "'./mine.yaml' is also an input of this conversion ('mine.yaml')"), onto.output);
  CHECK(test::read_file(dir / "mine.yaml") == mine);
  // A missing --weights file is named as train names it, before the net is built.
  const auto no_weights = test::run(crema_cmd("convert " + (dir / "mine.yaml") + " -o " + (dir / "m.onnx") +
                                              " --weights " + (dir / "nosuch.caffemodel")));
  CHECK(no_weights.status == 2);
  CHECK_MESSAGE(contains(no_weights.output, "--weights: '" + (dir / "nosuch.caffemodel") +
                                                "' does not exist; give a .caffemodel or .caffemodel.h5 file"),
                no_weights.output);
}

TEST_CASE("convert: a binary .caffemodel becomes Caffe's HDF5 layout with the same values") {
  test::TempDir dir;
  for (const char* name : {"lenet_deploy/lenet_iter_10000.caffemodel", "v1_lenet/lenet_iter_5000.caffemodel"}) {
    const std::string in = caffe_data(name);
    const std::string out = dir / "converted.caffemodel.h5";
    const auto r = test::run(crema_cmd("convert " + in + " -o " + out));
    REQUIRE_MESSAGE(r.status == 0, r.output);
    CHECK(io::has_hdf5_signature(out));
    const io::Weights a = io::load_weights(in), b = io::load_weights(out);
    std::map<std::string, const io::LayerWeights*> by_name;
    for (const auto& lw : b) by_name[lw.layer] = &lw;
    REQUIRE(a.size() == b.size());
    size_t values = 0;
    for (const auto& lw : a) {
      REQUIRE(by_name.count(lw.layer));
      const auto& other = by_name.at(lw.layer)->blobs;
      REQUIRE(other.size() == lw.blobs.size());
      for (size_t j = 0; j < lw.blobs.size(); ++j) {
        CHECK(other[j].first == lw.blobs[j].first);
        REQUIRE(other[j].second.shape() == lw.blobs[j].second.shape());
        for (int k = 0; k < lw.blobs[j].second.count(); ++k, ++values)
          if (other[j].second.cpu_data()[k] != lw.blobs[j].second.cpu_data()[k]) FAIL("value differs in " << lw.layer);
      }
    }
    CHECK(values > 400000);  // LeNet's 431,080 parameters
    // The V1 file's legacy 4-D shapes are written as Caffe's net has them (Caffe's HDF5
    // loader refuses 1x1x500x800 for ip1's 500x800 weight).
    CHECK(by_name.at("ip1")->blobs[0].second.shape() == std::vector<int>{500, 800});
    CHECK(by_name.at("ip1")->blobs[1].second.shape() == std::vector<int>{500});
    CHECK(by_name.at("conv1")->blobs[0].second.shape() == std::vector<int>{20, 1, 5, 5});
    CHECK(by_name.at("conv1")->blobs[1].second.shape() == std::vector<int>{20});
  }
  const auto wrong = test::run(crema_cmd("convert " + caffe_data("v1_lenet/lenet_iter_5000.caffemodel") + " -o " + (dir / "x.yaml")));
  CHECK(wrong.status == 2);
  CHECK(contains(wrong.output, ".caffemodel.h5"));
}

TEST_CASE("convert: the input's kind comes from its content, not its name") {
  test::TempDir dir;
  // Binary weights under another name convert; into a config they cannot.
  fs::copy_file(caffe_data("lenet_deploy/lenet_iter_10000.caffemodel"), dir / "renamed.bin");
  const auto renamed = test::run(crema_cmd("convert " + (dir / "renamed.bin") + " -o " + (dir / "w.caffemodel.h5")));
  CHECK_MESSAGE(renamed.status == 0, renamed.output);
  CHECK(io::has_hdf5_signature(dir / "w.caffemodel.h5"));
  const auto to_yaml = test::run(crema_cmd("convert " + (dir / "renamed.bin") + " -o " + (dir / "w.yaml")));
  CHECK(to_yaml.status == 2);
  CHECK_MESSAGE(contains(to_yaml.output,
                         "renamed.bin' is binary, not a net or solver in text, so convert reads it as "
                         "Caffe weights, which convert to HDF5 only"),
                to_yaml.output);
  CHECK(!fs::exists(dir / "w.yaml"));

  // HDF5 weights are there already; a solver state is not weights. Neither is read as text.
  const auto h5 = test::run(
      crema_cmd("convert " + caffe_data("cifar10_quick_iter_5000.caffemodel.h5") + " -o " + (dir / "x.yaml")));
  CHECK(h5.status == 2);
  CHECK_MESSAGE(contains(h5.output, "these weights are in Caffe's HDF5 layout already"), h5.output);
  CHECK_FALSE(contains(h5.output, "unexpected byte"));
  const auto state = test::run(crema_cmd("convert " + caffe_data("cifar10_quick_iter_5000.solverstate.h5") + " -o " +
                                         (dir / "x.caffemodel.h5")));
  CHECK(state.status == 1);
  CHECK_MESSAGE(contains(state.output, "this is a solver state"), state.output);
  CHECK(!fs::exists(dir / "x.caffemodel.h5"));
}

TEST_CASE("convert: a net or solver crema would refuse to train is refused at the input's line") {
  test::TempDir dir;
  // A misspelt layer parameter: written out unchecked, it failed only when training from the output.
  std::string net = test::read_file(caffe_data("lenet_deploy/lenet.prototxt"));
  const size_t at = net.find("num_output");
  REQUIRE(at != std::string::npos);
  net.replace(at, 10, "num_ouput");
  test::write_file(dir / "bad.prototxt", net);
  const auto r = test::run(crema_cmd("convert " + (dir / "bad.prototxt") + " -o " + (dir / "bad.yaml")));
  CHECK(r.status == 2);
  CHECK_MESSAGE(contains(r.output, "convolution_param.num_ouput: unknown key 'num_ouput' (did you mean 'num_output'?)"),
                r.output);
  CHECK(contains(r.output, (dir / "bad.prototxt") + ":"));
  CHECK(!fs::exists(dir / "bad.yaml"));

  // An unknown layer type and a bad solver key, likewise.
  test::write_file(dir / "type.prototxt", "name: \"n\"\nlayer { name: \"a\" type: \"Pyhton\" top: \"a\" }\n");
  const auto type = test::run(crema_cmd("convert " + (dir / "type.prototxt") + " -o " + (dir / "type.yaml")));
  CHECK(type.status == 2);
  CHECK_MESSAGE(contains(type.output, (dir / "type.prototxt") + ":2:25: layer[0].type: unknown layer type 'Pyhton'"),
                type.output);
  test::write_file(dir / "solver.prototxt", "net: \"type.prototxt\"\nbase_lr: 0.1\nmax_iter: 1\nlr_policy: \"stpe\"\n");
  const auto solver = test::run(crema_cmd("convert " + (dir / "solver.prototxt") + " -o " + (dir / "s.yaml")));
  CHECK(solver.status == 2);
  CHECK_MESSAGE(contains(solver.output, (dir / "solver.prototxt") + ":4:"), solver.output);
  CHECK(!fs::exists(dir / "s.yaml"));
  // Caffe's separate train and test nets: what to write instead, as training says.
  test::write_file(dir / "split.prototxt", "train_net: \"a.prototxt\"\ntest_net: \"b.prototxt\"\nbase_lr: 0.1\n");
  const auto split = test::run(crema_cmd("convert " + (dir / "split.prototxt") + " -o " + (dir / "split.yaml")));
  CHECK(split.status == 2);
  CHECK_MESSAGE(contains(split.output, "'train_net' (separate train and test nets) is not supported"), split.output);

  // Caffe's Python data layer (FCN, Faster R-CNN) is written as it is, with a warning, for the user to
  // replace; its keys are Caffe's. A net-level input with no shape that a layer reads is refused.
  test::write_file(dir / "fcn.prototxt",
                   "name: \"fcn\"\n"
                   "layer { name: \"data\" type: \"Python\" top: \"data\" top: \"label\" include { phase: TRAIN }\n"
                   "  python_param { module: \"voc_layers\" layer: \"VOCSegDataLayer\" param_str: \"{}\" } }\n"
                   "layer { name: \"score\" type: \"Convolution\" bottom: \"data\" top: \"score\"\n"
                   "  convolution_param { num_output: 2 kernel_size: 1 } }\n");
  const auto convert = [&](const std::string& in, const std::string& out) {
    return test::run(crema_cmd("convert " + (dir / in) + " -o " + (dir / out)));
  };
  const auto fcn = convert("fcn.prototxt", "fcn.yaml");
  CHECK_MESSAGE(fcn.status == 0, fcn.output);
  CHECK(contains(fcn.output,
                 "layer 'data' (Python) is written as it is, but crema cannot build it: Caffe's Python "
                 "layer runs Python code inside pycaffe"));
  CHECK(contains(test::read_file(dir / "fcn.yaml"), "module: voc_layers"));
  // A net of one phase (no TEST data layer) is no mistake; a bottom no net makes is said, and
  // still written as it is.
  CHECK_MESSAGE(!contains(fcn.output, "which no earlier layer"), fcn.output);
  test::write_file(dir / "typo.prototxt",
                   "name: \"t\"\nlayer { name: \"in\" type: \"Input\" top: \"data\" input_param { shape { dim: 1 "
                   "dim: 4 } } }\nlayer { name: \"ip\" type: \"InnerProduct\" bottom: \"dat\" top: \"ip\"\n"
                   "  inner_product_param { num_output: 2 } }\n");
  const auto typo = convert("typo.prototxt", "typo.yaml");
  CHECK_MESSAGE(typo.status == 0, typo.output);
  CHECK_MESSAGE(contains(typo.output,
                         "layer 'ip' reads 'dat', which no earlier layer of the TRAIN or TEST net makes "
                         "(did you mean 'data'?): the net is written as it is, but will not build"),
                typo.output);
  CHECK(contains(test::read_file(dir / "typo.yaml"), "bottom: dat"));
  // A blob made only under a stage (a deploy Input) is there when the net is built with --stage.
  test::write_file(dir / "staged.prototxt",
                   "layer { name: \"in\" type: \"Input\" top: \"data\" include { stage: \"deploy\" } input_param { "
                   "shape { dim: 1 dim: 4 } } }\nlayer { name: \"ip\" type: \"InnerProduct\" bottom: \"data\" top: "
                   "\"ip\" inner_product_param { num_output: 2 } }\n");
  const auto staged = convert("staged.prototxt", "staged.yaml");
  CHECK_MESSAGE(staged.status == 0, staged.output);
  CHECK_MESSAGE(!contains(staged.output, "which no earlier layer"), staged.output);
  test::write_file(dir / "fcn_solver.prototxt", "net: \"fcn.prototxt\"\nbase_lr: 0.1\nmax_iter: 1\n");
  const auto fcn_solver = convert("fcn_solver.prototxt", "fcn_solver.yaml");
  CHECK_MESSAGE(fcn_solver.status == 0, fcn_solver.output);
  CHECK(contains(fcn_solver.output, "layer 'data' (Python) is written as it is"));
  test::write_file(dir / "input.prototxt",
                   "name: \"x\"\ninput: \"data\"\nlayer { name: \"r\" type: \"ReLU\" bottom: \"data\" top: \"r\" }\n");
  // A leftover input that a layer of the net makes is dropped, as Caffe drops it.
  test::write_file(dir / "made.prototxt",
                   "name: \"x\"\ninput: \"data\"\nlayer { name: \"d\" type: \"Input\" top: \"data\" "
                   "input_param { shape { dim: 1 } } }\nlayer { name: \"r\" type: \"ReLU\" bottom: \"data\" top: "
                   "\"r\" }\n");
  const auto made = convert("made.prototxt", "made.yaml");
  CHECK_MESSAGE(made.status == 0, made.output);
  const auto input = convert("input.prototxt", "input.yaml");
  CHECK(input.status == 2);
  CHECK_MESSAGE(contains(input.output, (dir / "input.prototxt") +
                                           ":2:1: input: input 'data' has no shape, and the "
                                           "net's layers read it: give input_dim lines (N, C, H, W) or an input_shape"),
                input.output);

  // A net through a pipe converts (sniffing the input must not consume it).
  const auto piped = test::run("cat " + caffe_data("lenet_deploy/lenet.prototxt") + " | " +
                               crema_cmd("convert /dev/stdin -o " + (dir / "piped.yaml")));
  CHECK_MESSAGE(piped.status == 0, piped.output);
  CHECK(contains(test::read_file(dir / "piped.yaml"), "type: Convolution"));
}

TEST_CASE("convert: a solver's relative net path still finds the net from the output's folder") {
  test::ToyJob job(4);
  // The toy job with its net in a file of its own, named relative to the solver.
  const std::string whole = test::read_file(job.solver);
  const size_t rest = whole.find("base_lr:");
  REQUIRE(rest != std::string::npos);
  std::string net;
  std::istringstream lines(whole.substr(5, rest - 5));  // after "net:\n"
  for (std::string line; std::getline(lines, line);) net += line.substr(2) + "\n";
  test::write_file(job.dir / "toy_net.yaml", net);
  test::write_file(job.solver, "net: toy_net.yaml\n" + whole.substr(rest));
  fs::create_directory(job.dir / "converted");

  const auto r = test::run(crema_cmd("convert " + job.solver + " -o " + (job.dir / "converted/solver.prototxt")));
  INFO(r.output);
  REQUIRE(r.status == 0);
  CHECK(contains(r.output, "net: 'toy_net.yaml' is written as '../toy_net.yaml', where the converted solver finds it"));
  CHECK(contains(test::read_file(job.dir / "converted/solver.prototxt"), "net: \"../toy_net.yaml\"\n"));
  const auto train = test::run(crema_cmd("train " + (job.dir / "converted/solver.prototxt") + " --threads 1"));
  INFO(train.output);
  CHECK(train.status == 0);
  CHECK(fs::exists(job.dir / "snap/toy_iter_4.caffemodel.h5"));

  // Beside the solver, the path stays as written.
  const auto beside = test::run(crema_cmd("convert " + job.solver + " -o " + (job.dir / "again.prototxt")));
  REQUIRE(beside.status == 0);
  CHECK(contains(test::read_file(job.dir / "again.prototxt"), "net: \"toy_net.yaml\"\n"));
  CHECK_FALSE(contains(beside.output, "is written as"));

  // Run from the solver's folder, naming it without one: the net is found from the working
  // directory, but the converted solver will be run from elsewhere (its path was kept).
  const auto here =
      test::run("cd " + job.dir.path().string() + " && " +
                crema_cmd("convert " + fs::path(job.solver).filename().string() + " -o converted/from_here.prototxt"));
  REQUIRE_MESSAGE(here.status == 0, here.output);
  CHECK(contains(test::read_file(job.dir / "converted/from_here.prototxt"), "net: \"../toy_net.yaml\"\n"));

  // Caffe's layout: the solver names its net from Caffe's root (the working directory), as
  // examples/mnist/lenet_solver.prototxt does. Upgraded beside itself, the path is kept, so
  // Caffe (and crema) run from the root still find it.
  fs::create_directories(job.dir / "examples/toy");
  fs::copy_file(job.dir / "toy_net.yaml", job.dir / "examples/toy/toy_net.yaml");
  test::write_file(job.dir / "examples/toy/solver.yaml", "net: examples/toy/toy_net.yaml\n" + whole.substr(rest));
  const auto zoo = test::run("cd " + job.dir.path().string() + " && " +
                             crema_cmd("convert examples/toy/solver.yaml -o examples/toy/solver2.prototxt"));
  REQUIRE_MESSAGE(zoo.status == 0, zoo.output);
  CHECK(contains(test::read_file(job.dir / "examples/toy/solver2.prototxt"), "net: \"examples/toy/toy_net.yaml\"\n"));
  CHECK_FALSE(contains(zoo.output, "is written as"));

  // The net file is an input too: the solver converted onto it, or a log appended to it,
  // once left no net to train (both ran with status 0). And the net is no solver.
  const std::string net_before = test::read_file(job.dir / "toy_net.yaml");
  const auto onto_net = test::run(crema_cmd("convert " + job.solver + " -o " + (job.dir / "toy_net.yaml")));
  CHECK(onto_net.status == 2);
  CHECK_MESSAGE(contains(onto_net.output,
                         "is the net file the solver names (net: toy_net.yaml), which the output would "
                         "replace"),
                onto_net.output);
  const auto log_net = test::run(crema_cmd("train " + job.solver + " --log " + (job.dir / "toy_net.yaml")));
  CHECK(log_net.status == 2);
  CHECK_MESSAGE(contains(log_net.output, "it is a net or solver config (by its name), and the log is appended to it"),
                log_net.output);
  CHECK(test::read_file(job.dir / "toy_net.yaml") == net_before);
  const auto net_as_solver = test::run(crema_cmd("train " + (job.dir / "toy_net.yaml")));
  CHECK(net_as_solver.status == 2);
  CHECK_MESSAGE(
      contains(net_as_solver.output, "this is a net (it has a layer list), not a solver: give the solver file"),
      net_as_solver.output);
}

TEST_CASE("convert: a .caffemodel with two layers of one name keeps the later one's parameters, as Caffe loads it") {
  test::TempDir dir;
  // NetParameter { layer { name: "ip" blobs { shape { dim: 2 } data: [...] } } ... }
  const auto layer = [](const std::string& name, std::vector<float> values) {
    io::pb::Writer shape, blob, l;
    shape.packed_varints(1, {static_cast<int64_t>(values.size())});
    blob.packed_floats(5, values.data(), values.size());
    blob.bytes(7, shape.str());
    l.bytes(1, name);
    if (!values.empty()) l.bytes(7, blob.str());
    return l.take();
  };
  io::pb::Writer net;
  net.bytes(1, "dup");
  net.bytes(100, layer("ip", {1.f, 2.f}));
  net.bytes(100, layer("relu", {}));
  net.bytes(100, layer("ip", {3.f, 4.f}));
  net.bytes(100, layer("relu", {}));
  test::write_file(dir / "dup.caffemodel", net.str());

  const auto r = test::run(crema_cmd("convert " + (dir / "dup.caffemodel") + " -o " + (dir / "dup.caffemodel.h5")));
  INFO(r.output);
  REQUIRE(r.status == 0);  // it said "cannot create dataset"
  CHECK(
      contains(r.output, "two layers are named 'ip' and both hold parameters; as in Caffe, the later one's are used"));
  CHECK_FALSE(contains(r.output, "named 'relu'"));  // no parameters, nothing lost
  const io::Weights w = io::load_weights(dir / "dup.caffemodel.h5");
  REQUIRE(w.size() == 2);
  CHECK(w[0].layer == "ip");
  REQUIRE(w[0].blobs.size() == 1);
  CHECK(w[0].blobs[0].second.cpu_data()[0] == 3.f);
  CHECK(w[0].blobs[0].second.cpu_data()[1] == 4.f);
}

TEST_CASE("convert: a net drawn as a Graphviz graph, as Caffe's draw_net.py draws it") {
  test::TempDir dir;
  const std::string dot = dir / "cifar.dot";
  const auto r = test::run(crema_cmd("convert " + caffe_data("cifar10_quick_train_test.prototxt") + " -o " + dot));
  INFO(r.output);
  REQUIRE(r.status == 0);
  CHECK(contains(r.output, "draw it with: dot -Tpng " + dot));
  const std::string text = test::read_file(dot);
  CHECK(text.rfind("digraph \"CIFAR10_quick\" {\n  rankdir=LR;\n", 0) == 0);  // draw_net's default
  CHECK(text.ends_with("}\n"));
  // A layer's box: its name, type, and its parameter block's plain values (not the fillers).
  CHECK(contains(text,
                 "layer2 [label=\"conv1\\n(Convolution)\\nnum_output: 32\\npad: 2\\nkernel_size: 5\\nstride: 1\", "
                 "shape=box, style=filled, fillcolor=\"#FF5050\"];"));
  CHECK_FALSE(contains(text, "gaussian"));
  CHECK(contains(text, "layer0 [label=\"cifar\\n(Data)\\n"));
  CHECK(contains(text, "(only TRAIN)\""));
  CHECK(contains(text, "(only TEST)\""));

  // Nodes and edges: every edge joins declared nodes, each blob of the two data layers is
  // one node, and the in-place ReLU makes a second pool1 node, so the graph runs one way.
  std::set<std::string> nodes;
  std::map<std::string, int> blobs;  // label -> nodes with it
  std::vector<std::pair<std::string, std::string>> edges;
  std::istringstream lines(text);
  const std::regex node(R"(^  (\w+) \[label="([^"\\]*)(\\n|")[^\]]*\];$)"), edge(R"(^  (\w+) -> (\w+);$)");
  for (std::string line; std::getline(lines, line);) {
    std::smatch m;
    if (std::regex_match(line, m, node)) {
      nodes.insert(m[1]);
      if (std::string(m[1]).rfind("blob", 0) == 0) ++blobs[m[2]];
    } else if (std::regex_match(line, m, edge)) {
      edges.emplace_back(m[1], m[2]);
    }
  }
  CHECK(blobs["data"] == 1);
  CHECK(blobs["label"] == 1);
  CHECK(blobs["pool1"] == 2);
  CHECK(blobs["conv2"] == 2);
  CHECK(nodes.count("layer0"));
  for (const auto& [from, to] : edges) {
    CHECK_MESSAGE(nodes.count(from), from);
    CHECK_MESSAGE(nodes.count(to), to);
  }
  // No cycle (Kahn's algorithm removes every node).
  std::map<std::string, int> incoming;
  for (const auto& [from, to] : edges) ++incoming[to];
  std::vector<std::string> ready;
  for (const auto& n : nodes)
    if (!incoming[n]) ready.push_back(n);
  size_t removed = 0;
  while (!ready.empty()) {
    const std::string n = ready.back();
    ready.pop_back();
    ++removed;
    for (const auto& [from, to] : edges)
      if (from == n && --incoming[to] == 0) ready.push_back(to);
  }
  CHECK(removed == nodes.size());
  CHECK(edges.size() > 20);
  // Graphviz itself reads it, where it is installed (scripts/install_test_references.sh).
  if (test::run("command -v dot").status == 0) {
    const auto svg = test::run("dot -Tsvg " + dot + " -o " + (dir / "cifar.svg"));
    CHECK_MESSAGE(svg.status == 0, svg.output);
    CHECK(contains(test::read_file(dir / "cifar.svg"), "<svg"));
  } else {
    MESSAGE("skipped rendering the graph: Graphviz's dot is not installed");
  }

  // --rankdir and --set reach the graph; --rankdir is refused for another output.
  const auto tb = test::run(crema_cmd("convert " + caffe_data("cifar10_quick_train_test.prototxt") + " -o " +
                                      (dir / "tb.gv") + " --rankdir TB --set name=renamed"));
  REQUIRE_MESSAGE(tb.status == 0, tb.output);
  CHECK(test::read_file(dir / "tb.gv").rfind("digraph \"renamed\" {\n  rankdir=TB;\n", 0) == 0);
  // Rules beyond the phase are drawn too; weights are not a net.
  test::write_file(
      dir / "staged.yaml",
      "name: s\nlayer:\n- {name: in, type: Input, top: d, input_param: {shape: {dim: [1, 2]}},\n"
      "   include: {stage: deploy}}\n- {name: r, type: ReLU, bottom: d, top: d, exclude: {phase: TEST}}\n");
  REQUIRE(test::run(crema_cmd("convert " + (dir / "staged.yaml") + " -o " + (dir / "staged.dot"))).status == 0);
  const std::string staged = test::read_file(dir / "staged.dot");
  CHECK(contains(staged, "(only stage deploy)\""));
  CHECK(contains(staged, "(except TEST)\""));
  // An existing file that is no graph is not replaced by one; an earlier graph is.
  test::write_file(dir / "notes.dot", "meeting notes\n");
  const auto notes = test::run(crema_cmd("convert " + (dir / "staged.yaml") + " -o " + (dir / "notes.dot")));
  CHECK(notes.status == 2);
  CHECK_MESSAGE(contains(notes.output,
                         "notes.dot' exists and is no graph (it is a text file): the conversion would "
                         "replace it"),
                notes.output);
  CHECK(test::read_file(dir / "notes.dot") == "meeting notes\n");
  CHECK(test::run(crema_cmd("convert " + (dir / "staged.yaml") + " -o " + (dir / "staged.dot"))).status == 0);
  // A misspelt type or parameter key is refused as `crema train` refuses it, not drawn as written.
  for (const auto& [bad, said] : {std::pair{"type: ReLu", "unknown layer type 'ReLu'"},
                                  std::pair{"type: ReLU, relu_param: {negative_slop: 0.1}", "'negative_slop'"}}) {
    test::write_file(dir / "bad.yaml", std::string("name: b\nlayer:\n- {name: in, type: Input, top: d, input_param: "
                                                   "{shape: {dim: [1, 2]}}}\n- {name: r, bottom: d, top: d, ") +
                                           bad + "}\n");
    const auto refused = test::run(crema_cmd("convert " + (dir / "bad.yaml") + " -o " + (dir / "bad.dot")));
    CHECK_MESSAGE(refused.status == 2, refused.output);
    CHECK_MESSAGE(contains(refused.output, said), refused.output);
    CHECK_FALSE(fs::exists(dir / "bad.dot"));
  }
  const auto weights = test::run(
      crema_cmd("convert " + caffe_data("lenet_deploy/lenet_iter_10000.caffemodel") + " -o " + (dir / "w.dot")));
  CHECK(weights.status == 2);
  CHECK_MESSAGE(contains(weights.output, "these are weights, not a net"), weights.output);
  const auto wrong = test::run(crema_cmd("convert " + caffe_data("cifar10_quick_train_test.prototxt") + " -o " +
                                         (dir / "x.yaml") + " --rankdir LR"));
  CHECK(wrong.status == 2);
  CHECK(contains(wrong.output, "--rankdir belongs to a graph (-o NET.dot)"));
  const auto onnx = test::run(crema_cmd("convert " + caffe_data("lenet_deploy/lenet.prototxt") + " --weights " +
                                        caffe_data("lenet_deploy/lenet_iter_10000.caffemodel") + " -o " +
                                        (dir / "x.onnx") + " --rankdir LR"));
  CHECK(onnx.status == 2);
  CHECK(contains(onnx.output, "--rankdir belongs to a graph (-o NET.dot)"));
}

TEST_CASE("convert replaces an earlier conversion, never a file someone wrote") {
  test::ToyJob job(2);
  const std::string out = job.dir / "out.yaml";
  const auto convert = [&] { return test::run(crema_cmd("convert " + job.solver + " -o " + out)); };
  const auto first = convert();
  REQUIRE_MESSAGE(first.status == 0, first.output);
  const auto again = convert();  // a solver over the earlier conversion of a solver: replaced
  CHECK_MESSAGE(again.status == 0, again.output);
  // The same file with a note in it, a net where the solver goes, or no config at all: refused.
  const std::string net = "name: n\nlayer: [{name: d, type: Input, top: d, input_param: {shape: {dim: [1]}}}]\n";
  for (const auto& [text, why] : {std::pair<std::string, std::string>{"# tuned by hand\n", "holds comments"},
                                  {net, "holds a net"},
                                  {"just some notes\n", "is no net or solver"}}) {
    const std::string before = text.starts_with("#") ? text + test::read_file(out) : text;
    test::write_file(out, before);
    const auto r = convert();
    CHECK(r.status == 2);
    CHECK_MESSAGE(contains(r.output, "'" + out + "' exists and " + why +
                                         ": the conversion would replace it; remove it first, or give the output "
                                         "another name"),
                  r.output);
    CHECK(test::read_file(out) == before);
  }
}
