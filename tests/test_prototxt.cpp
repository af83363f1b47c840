// Caffe's text format: the parser on every syntax feature (positions counted by
// hand, 1-based), syntax and config errors at file:line:col, the writer's quoting,
// Caffe's format upgrades (V1 nets, input fields, data transformation fields), and
// Caffe's own prototxt files (tests/data/caffe): their structure, building nets from
// them, loading Caffe-trained weights into them, and the prototxt ↔ YAML round trip.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

#include "engine/context.hpp"
#include "engine/error.hpp"
#include "engine/net.hpp"
#include "engine/solver.hpp"
#include "io/caffe_upgrade.hpp"
#include "io/checkpoint.hpp"
#include "io/job_config.hpp"
#include "io/prototxt.hpp"
#include "io/yaml_config.hpp"
#include "test_util.hpp"

using namespace crema;
namespace fs = std::filesystem;

namespace {

std::string caffe_data(const std::string& name) { return test::source_dir() + "/tests/data/caffe/" + name; }

const Node& at(const Node& map, const std::string& key) {
  const Node* n = map.find(key);
  REQUIRE_MESSAGE(n, "missing key " << key);
  return *n;
}

const Node& item(const Node& seq, size_t i) {
  REQUIRE(seq.is_seq());
  REQUIRE(i < seq.items().size());
  return seq.items()[i];
}

std::vector<std::string> strings(const Node& n) {
  std::vector<std::string> out;
  if (n.is_seq())
    for (const auto& i : n.items()) out.push_back(i.str());
  else
    out.push_back(n.str());
  return out;
}

void check_mark(const Mark& m, int line, int col) {
  CHECK(m.line == line);
  CHECK(m.col == col);
}

// Field names of the layers, and their types.
std::vector<std::string> layer_field(const Node& net, const std::string& key) {
  std::vector<std::string> out;
  for (const auto& l : at(net, "layer").items()) out.push_back(at(l, key).str());
  return out;
}

// The same tree of keys and texts (marks are not compared).
bool same_tree(const Node& a, const Node& b) {
  if (a.kind() != b.kind()) return false;
  switch (a.kind()) {
    case Node::Kind::Null: return true;
    case Node::Kind::Scalar: return a.str() == b.str();
    case Node::Kind::Seq:
      return a.items().size() == b.items().size() &&
             std::equal(a.items().begin(), a.items().end(), b.items().begin(), same_tree);
    case Node::Kind::Map:
      return a.entries().size() == b.entries().size() &&
             std::equal(a.entries().begin(), a.entries().end(), b.entries().begin(),
                        [](const auto& x, const auto& y) { return x.first == y.first && same_tree(x.second, y.second); });
  }
  return false;
}

// As `crema convert` reads a file: parsed and upgraded.
Node upgraded(Node n) {
  if (io::is_solver_message(n))
    io::upgrade_solver(n);
  else
    io::upgrade_net(n);
  return n;
}

std::string as_prototxt(const Node& n) { return io::to_prototxt(io::caffe_text_layout(n)); }

// Runs a scope in another working directory.
class WorkingDirectory {
 public:
  explicit WorkingDirectory(const fs::path& dir) : saved_(fs::current_path()) { fs::current_path(dir); }
  ~WorkingDirectory() { fs::current_path(saved_); }
  WorkingDirectory(const WorkingDirectory&) = delete;
  WorkingDirectory& operator=(const WorkingDirectory&) = delete;

 private:
  fs::path saved_;
};

}  // namespace

TEST_CASE("prototxt: every syntax feature parses into the config tree with positions") {
  const std::string text =
      "# a comment line\n"                                                          // 1
      "name: \"net\"  # a trailing comment\n"                                        // 2
      "count: 3\n"                                                                  // 3
      "layer {\n"                                                                   // 4
      "  name: 'a'\n"                                                               // 5
      "  dim: 1 dim: 2, dim: 3;\n"                                                  // 6
      "  sub: { x: -3 }\n"                                                          // 7
      "  alt < y: 1e-4 >\n"                                                         // 8
      "}\n"                                                                         // 9
      "layer: { name: \"b\" }\n"                                                    // 10
      "flags: [true, f, 1, 0]\n"                                                    // 11
      "floats: inf floats: -inf floats: nan floats: .5 floats: 1.5f floats: - 2\n"  // 12
      "ints: 0x10 ints: 010 ints: -7\n"                                             // 13
      "esc: \"tab\\there \\\"q\\\" \\\\ \\101\\x42\\n\"\n"                           // 14
      "joined: \"ab\" 'cd'\n"                                                       // 15
      "pool: MAX\n"                                                                 // 16
      "empty {}\n"                                                                  // 17
      "list_msgs [{ a: 1 }, < a: 2 >]\n"                                            // 18
      "nothing: []\n";                                                              // 19
  const Node root = io::parse_prototxt(text, "all.prototxt");
  REQUIRE(root.is_map());
  check_mark(root.mark(), 1, 1);
  REQUIRE(*root.mark().file == "all.prototxt");

  const Node& name = at(root, "name");
  CHECK(name.str() == "net");
  check_mark(name.mark(), 2, 7);
  check_mark(name.key_mark(), 2, 1);
  CHECK(at(root, "count").str() == "3");

  // `layer` written twice: a list of two messages.
  const Node& layer = at(root, "layer");
  REQUIRE(layer.items().size() == 2);
  const Node& a = item(layer, 0);
  check_mark(a.mark(), 4, 1);
  CHECK(at(a, "name").str() == "a");
  check_mark(at(a, "name").mark(), 5, 9);
  check_mark(at(a, "name").key_mark(), 5, 3);
  CHECK(strings(at(a, "dim")) == std::vector<std::string>{"1", "2", "3"});
  check_mark(item(at(a, "dim"), 1).mark(), 6, 15);
  check_mark(item(at(a, "dim"), 1).key_mark(), 6, 10);
  CHECK(item(at(a, "dim"), 2).path() == "layer[0].dim[2]");
  const Node& x = at(at(a, "sub"), "x");
  CHECK(x.str() == "-3");
  check_mark(x.mark(), 7, 13);
  CHECK(x.path() == "layer[0].sub.x");
  CHECK(at(at(a, "alt"), "y").str() == "1e-4");
  CHECK(at(item(layer, 1), "name").str() == "b");
  check_mark(item(layer, 1).mark(), 10, 1);

  CHECK(strings(at(root, "flags")) == std::vector<std::string>{"true", "f", "1", "0"});
  CHECK(at(root, "flags").items()[1].as_bool() == false);
  // Numbers keep their spelling; protobuf's float suffix goes, hex and octal become decimal.
  CHECK(strings(at(root, "floats")) == std::vector<std::string>{"inf", "-inf", "nan", ".5", "1.5", "-2"});
  CHECK(std::isinf(item(at(root, "floats"), 1).as_double()));
  CHECK(strings(at(root, "ints")) == std::vector<std::string>{"16", "8", "-7"});
  CHECK(at(root, "esc").str() == "tab\there \"q\" \\ AB\n");
  CHECK(at(root, "joined").str() == "abcd");
  CHECK(at(root, "pool").str() == "MAX");
  CHECK(at(root, "empty").is_map());
  CHECK(at(root, "empty").entries().empty());
  const Node& msgs = at(root, "list_msgs");
  REQUIRE(msgs.items().size() == 2);
  CHECK(at(item(msgs, 0), "a").str() == "1");
  CHECK(at(item(msgs, 1), "a").str() == "2");
  check_mark(item(msgs, 1).mark(), 18, 22);
  REQUIRE(item(msgs, 1).mark().file);
  CHECK(*item(msgs, 1).mark().file == "all.prototxt");
  CHECK(at(root, "nothing").is_seq());
  CHECK(at(root, "nothing").items().empty());

  CHECK(at(io::parse_prototxt("s: \"caf\\u00e9 \\U0001F600\\7\"", "u.prototxt"), "s").str() ==
        "caf\xC3\xA9 \xF0\x9F\x98\x80\x07");

  // Written once, a field stays a single value or message.
  const Node once = io::parse_prototxt("m { b: 1 } s: 2", "once.prototxt");
  CHECK(at(once, "m").is_map());
  CHECK(at(once, "s").is_scalar());
}

TEST_CASE("prototxt: syntax errors name file:line:col and what was expected") {
  auto parse = [](const std::string& text) { io::parse_prototxt(text, "e.prototxt"); };
  CHECK_THROWS_WITH_AS(parse("layer {\n  name: \"a\"\n"),
                       "e.prototxt:3:1: expected '}' to close the message opened at line 1, column 7, got the end of "
                       "the file",
                       ConfigError);
  CHECK_THROWS_WITH_AS(parse("base_lr: }"),
                       "e.prototxt:1:10: expected a value for 'base_lr' (a number, a quoted string, a name or { ... }), "
                       "got '}'",
                       ConfigError);
  CHECK_THROWS_WITH_AS(parse("x: 1\nname: \"abc\nx: 1"),
                       "e.prototxt:2:7: unterminated string: expected a closing \" on the same line", ConfigError);
  CHECK_THROWS_WITH_AS(parse("name: @"), "e.prototxt:1:7: unexpected character '@'", ConfigError);
  CHECK_THROWS_WITH_AS(parse("name \"a\""),
                       "e.prototxt:1:6: expected ':' or '{' after the field name 'name', got a quoted string",
                       ConfigError);
  CHECK_THROWS_WITH_AS(parse("a: 1\n}"), "e.prototxt:2:1: unexpected '}': no message is open here", ConfigError);
  CHECK_THROWS_WITH_AS(parse("x: 1.2.3"), "e.prototxt:1:4: invalid number '1.2.3'", ConfigError);
  CHECK_THROWS_WITH_AS(parse("s: \"a\\qb\""), "e.prototxt:1:6: unknown escape sequence '\\q' (write a backslash as \\\\)",
                       ConfigError);
  CHECK_THROWS_WITH_AS(parse("a { b: 1 >"),
                       "e.prototxt:1:10: expected '}' to close the message opened at line 1, got '>'", ConfigError);
  CHECK_THROWS_WITH_AS(parse("dim: [1, 2"),
                       "e.prototxt:1:11: expected ',' or ']' in the list of 'dim' opened at line 1, got the end of the "
                       "file",
                       ConfigError);
  CHECK_THROWS_WITH_AS(parse("x: -y"), "e.prototxt:1:5: expected a number after '-', got 'y'", ConfigError);
  CHECK_THROWS_WITH_AS(parse("[ext.field]: 1"),
                       "e.prototxt:1:1: extension fields ([name]) are not supported; write the field by its plain name",
                       ConfigError);
}

TEST_CASE("prototxt: a misspelt key is reported at its line and column in the prototxt") {
  const std::string net_text =
      "name: \"n\"\n"                                                   // 1
      "layer {\n"                                                       // 2
      "  name: \"data\"\n"                                              // 3
      "  type: \"Input\"\n"                                             // 4
      "  top: \"data\"\n"                                               // 5
      "  input_param { shape { dim: 1 dim: 1 dim: 4 dim: 4 } }\n"       // 6
      "}\n"                                                             // 7
      "layer {\n"                                                       // 8
      "  name: \"conv\"\n"                                              // 9
      "  type: \"Convolution\"\n"                                       // 10
      "  bottom: \"data\"\n"                                            // 11
      "  top: \"conv\"\n"                                               // 12
      "  convolution_param {\n"                                         // 13
      "    num_outptu: 2\n"                                             // 14
      "    kernel_size: 3\n"                                            // 15
      "  }\n"                                                           // 16
      "}\n";                                                            // 17
  Node root = io::parse_prototxt(net_text, "net.prototxt");
  io::upgrade_net(root);
  const NetSpec spec = NetSpec::parse(root);
  Context ctx(1701);
  CHECK_THROWS_WITH_AS(Net(spec, NetState{Phase::TRAIN, 0, {}}, ctx, true),
                       "net.prototxt:14:5: layer[1].convolution_param.num_outptu: unknown key 'num_outptu' (did you "
                       "mean 'num_output'?)",
                       ConfigError);

  // A net-level key, through NetSpec::parse.
  Node bad_net = io::parse_prototxt("name: \"n\"\nforce_backwrd: true\n" + net_text.substr(10), "net.prototxt");
  io::upgrade_net(bad_net);
  CHECK_THROWS_WITH_AS(NetSpec::parse(bad_net),
                       "net.prototxt:2:1: force_backwrd: unknown key 'force_backwrd' (did you mean 'force_backward'?)",
                       ConfigError);

  // A solver key, through the solver loader (its net named relative to the solver).
  test::TempDir dir;
  test::write_file(dir / "net.prototxt", net_text);
  test::write_file(dir / "solver.prototxt",
                   "net: \"net.prototxt\"\n"  // 1
                   "base_lr: 0.01\n"          // 2
                   "momentun: 0.9\n"          // 3
                   "max_iter: 10\n");         // 4
  const auto solver = io::load_solver_config(dir / "solver.prototxt");
  CHECK(layer_field(at(*solver, "net"), "name") == std::vector<std::string>{"data", "conv"});
  const std::string momentun =
      (dir / "solver.prototxt") + ":3:1: momentun: unknown key 'momentun' (did you mean 'momentum'?)";
  CHECK_THROWS_WITH_AS(SolverSpec::parse(*solver), momentun.c_str(), ConfigError);
}

TEST_CASE("prototxt: the writer quotes strings, leaves numbers, bools and enums bare, and reads back the same") {
  const Node yaml = io::parse_yaml(
      "name: 1\n"
      "layer:\n"
      "  - {name: 'say \"hi\"\\n', type: Pooling, top: [a, b], pooling_param: {pool: MAX, kernel_size: 3},\n"
      "     param: [{lr_mult: 1e-4}, {lr_mult: .inf}], propagate_down: [yes, False, ON, off], loss_weight: +2,\n"
      "     weight_filler: {type: xavier}, skipped: ~, data_param: {source: 'a\\b'}}\n",
      "w.yaml");
  const std::string text = io::to_prototxt(yaml);
  CHECK(text ==
        "name: \"1\"\n"
        "layer {\n"
        "  name: \"say \\\"hi\\\"\\\\n\"\n"
        "  type: \"Pooling\"\n"
        "  top: \"a\"\n"
        "  top: \"b\"\n"
        "  pooling_param {\n"
        "    pool: MAX\n"
        "    kernel_size: 3\n"
        "  }\n"
        "  param {\n"
        "    lr_mult: 1e-4\n"
        "  }\n"
        "  param {\n"
        "    lr_mult: inf\n"
        "  }\n"
        "  propagate_down: true\n"
        "  propagate_down: False\n"
        "  propagate_down: true\n"
        "  propagate_down: false\n"
        "  loss_weight: 2\n"
        "  weight_filler {\n"
        "    type: \"xavier\"\n"
        "  }\n"
        "  data_param {\n"
        "    source: \"a\\\\b\"\n"
        "  }\n"
        "}\n");
  const Node back = io::parse_prototxt(text, "w.prototxt");
  const Node& layer = at(back, "layer");
  CHECK(at(layer, "name").str() == "say \"hi\"\\n");
  CHECK(at(at(layer, "data_param"), "source").str() == "a\\b");
  CHECK(strings(at(layer, "top")) == std::vector<std::string>{"a", "b"});

  CHECK_THROWS_WITH_AS(io::to_prototxt(io::parse_yaml("dim: [[1, 2]]", "n.yaml")),
                       "n.yaml:1:7: dim[0]: a list inside a list cannot be written as a prototxt (repeated fields hold "
                       "values or messages)",
                       ConfigError);
}

TEST_CASE("prototxt: numbers with leading zeros: YAML's decimal written without them, protobuf's octal kept") {
  // YAML's 010 is ten; written as 010, a prototxt (and Caffe) reads eight.
  const std::string text =
      io::to_prototxt(io::parse_yaml("a: 010\nb: -007\nc: 00.5\nd: 0\ne: +0012e1\nf: 0.25\n", "z.yaml"));
  CHECK(text == "a: 10\nb: -7\nc: 0.5\nd: 0\ne: 12e1\nf: 0.25\n");
  const Node back = io::parse_prototxt(text, "z.prototxt");
  CHECK(at(back, "a").as_int() == 10);
  CHECK(at(back, "b").as_int() == -7);
  // protobuf's own octal reads as protobuf does; a leading zero it refuses is refused.
  CHECK(at(io::parse_prototxt("a: 010\n", "o.prototxt"), "a").as_int() == 8);
  CHECK_THROWS_WITH_AS(io::parse_prototxt("name: \"x\"\nnum_output: 09\n", "o.prototxt"),
                       doctest::Contains("o.prototxt:2:13: invalid number '09': a number with a leading zero is octal"),
                       ConfigError);
  CHECK_THROWS_WITH_AS(io::parse_prototxt("a: 00.5\n", "o.prototxt"), doctest::Contains("invalid number '00.5'"),
                       ConfigError);
}

TEST_CASE("prototxt: a single-valued field written twice names its second line") {
  const Node root = io::parse_prototxt("name: \"x\"\nname: \"y\"\n", "t.prototxt");
  // It was "expected a single value, got a list", though the user wrote no list.
  CHECK_THROWS_WITH_AS(at(root, "name").str(),
                       "t.prototxt:1:7: name: expected a single value, got 2 (the second at line 2); give it once",
                       ConfigError);
}

TEST_CASE("prototxt: a message field written twice names its second line") {
  // protobuf's text format refuses it too; it was "expected a map of keys".
  const Node root = io::parse_prototxt(
      "name: \"d\"\n"                        // 1
      "transform_param { scale: 0.1 }\n"     // 2
      "data_param { batch_size: 4 }\n"       // 3
      "transform_param { mirror: true }\n",  // 4
      "dup.prototxt");
  CHECK_THROWS_WITH_AS(MapReader(root.find("transform_param"), Mark{}, ""),
                       "dup.prototxt:2:1: transform_param: expected one map of keys, got 2 (the second at line 4); "
                       "give it once, with all its keys in it",
                       ConfigError);
  CHECK_NOTHROW(MapReader(root.find("data_param"), Mark{}, ""));
}

TEST_CASE("prototxt: a V1 net is upgraded and builds, with lr_mult from blobs_lr") {
  const std::string path = caffe_data("v1_lenet/lenet_train_test.prototxt");
  const auto root = io::load_net_config(path);
  CHECK(!root->find("layers"));
  CHECK(layer_field(*root, "name") == std::vector<std::string>{"mnist", "mnist", "conv1", "pool1", "conv2", "pool2",
                                                               "ip1", "relu1", "ip2", "accuracy", "loss"});
  CHECK(layer_field(*root, "type") ==
        std::vector<std::string>{"Data", "Data", "Convolution", "Pooling", "Convolution", "Pooling", "InnerProduct",
                                 "ReLU", "InnerProduct", "Accuracy", "SoftmaxWithLoss"});
  const Node& conv1 = item(at(*root, "layer"), 2);
  CHECK(at(item(at(conv1, "param"), 0), "lr_mult").str() == "1");
  CHECK(at(item(at(conv1, "param"), 1), "lr_mult").str() == "2");
  CHECK(!conv1.find("blobs_lr"));
  // The upgraded type keeps the position of the V1 enum (line 35: `  type: CONVOLUTION`).
  check_mark(at(conv1, "type").mark(), 35, 9);

  // LMDB is not available: the two Data layers become Inputs of the same shapes.
  Node net = *root;
  Node& layers = *net.find("layer");
  layers.items()[0] = io::parse_yaml("{name: mnist, type: Input, top: [data, label], include: {phase: TRAIN},"
                                     " input_param: {shape: [{dim: [64, 1, 28, 28]}, {dim: [64]}]}}");
  layers.items()[1] = io::parse_yaml("{name: mnist, type: Input, top: [data, label], include: {phase: TEST},"
                                     " input_param: {shape: [{dim: [100, 1, 28, 28]}, {dim: [100]}]}}");
  net.set_path("");
  const NetSpec spec = NetSpec::parse(net);
  Context ctx(1701);
  Net train(spec, NetState{Phase::TRAIN, 0, {}}, ctx, true);
  CHECK(train.params_lr() == std::vector<float>{1, 2, 1, 2, 1, 2, 1, 2});
  CHECK(train.params_decay() == std::vector<float>{1, 1, 1, 1, 1, 1, 1, 1});
  Net test_net(spec, NetState{Phase::TEST, 0, {}}, ctx, true);
  CHECK(test_net.layer_by_name("accuracy") != nullptr);
  CHECK(train.layer_by_name("accuracy") == nullptr);
  CHECK(std::string(test_net.layer_by_name("loss")->type()) == "SoftmaxWithLoss");
  for (const char* blob : {"data", "label"}) {
    Blob* b = train.blob(blob);
    std::fill(b->mutable_cpu_data(), b->mutable_cpu_data() + b->count(), 0.f);
  }
  // Zero images and constant-0 biases give equal logits for all 10 classes: loss ln 10.
  CHECK(train.forward(ctx) == doctest::Approx(std::log(10.0)).epsilon(1e-5));
}

TEST_CASE("prototxt: V1 input fields become an Input layer and weight_decay becomes decay_mult") {
  const auto deploy = io::load_net_config(caffe_data("v1_lenet/lenet.prototxt"));
  CHECK(!deploy->find("input"));
  CHECK(!deploy->find("input_dim"));
  const Node& input = item(at(*deploy, "layer"), 0);
  CHECK(at(input, "name").str() == "input");
  CHECK(at(input, "type").str() == "Input");
  CHECK(at(input, "top").str() == "data");
  CHECK(strings(at(at(at(input, "input_param"), "shape"), "dim")) == std::vector<std::string>{"64", "1", "28", "28"});
  check_mark(at(input, "top").mark(), 2, 8);  // `input: "data"`
  Context ctx(1701);
  Net net(NetSpec::parse(*deploy), NetState{Phase::TEST, 0, {}}, ctx, true);
  CHECK(net.blob("data")->shape() == std::vector<int>{64, 1, 28, 28});
  CHECK(net.blob("prob")->shape() == std::vector<int>{64, 10});

  // The same upgrade in YAML, with two inputs, per-blob decay and names, and a data
  // layer whose transformation fields sit in data_param.
  Node yaml = io::parse_yaml(
      "name: v1\n"
      "input: [a, b]\n"
      "input_dim: [2, 3, 1, 1, 2, 1, 1, 1]\n"
      "layers:\n"
      "  - {name: ip, type: INNER_PRODUCT, bottom: a, top: ip, blobs_lr: [1, 2], weight_decay: [1, 0],\n"
      "     param: [w, bias], inner_product_param: {num_output: 4}}\n"
      "  - {name: loss, type: 7, bottom: [ip, ip], top: loss}\n",
      "v1.yaml");
  const auto notes = io::upgrade_net(yaml);
  CHECK(notes == std::vector<std::string>{"V1 'layers' → 'layer'", "net 'input' fields → an Input layer"});
  CHECK(layer_field(yaml, "type") == std::vector<std::string>{"Input", "InnerProduct", "EuclideanLoss"});
  const Node& shapes = at(at(item(at(yaml, "layer"), 0), "input_param"), "shape");
  CHECK(strings(at(item(shapes, 1), "dim")) == std::vector<std::string>{"2", "1", "1", "1"});
  const Node& params = at(item(at(yaml, "layer"), 1), "param");
  CHECK(at(item(params, 1), "name").str() == "bias");
  CHECK(at(item(params, 1), "decay_mult").str() == "0");
  Net v1(NetSpec::parse(yaml), NetState{Phase::TRAIN, 0, {}}, ctx, true);
  CHECK(v1.params_lr() == std::vector<float>{1, 2});
  CHECK(v1.params_decay() == std::vector<float>{1, 0});
  CHECK(v1.blob("b")->shape() == std::vector<int>{2, 1, 1, 1});

  // input_shape instead of input_dim.
  Node shaped = io::parse_prototxt(
      "input: \"a\" input_shape { dim: 2 dim: 3 } layer { name: \"r\" type: \"ReLU\" bottom: \"a\" top: \"r\" }",
      "s.prototxt");
  io::upgrade_net(shaped);
  CHECK(layer_field(shaped, "name") == std::vector<std::string>{"input", "r"});
  CHECK(same_tree(at(item(at(shaped, "layer"), 0), "input_param"), io::parse_yaml("{shape: {dim: [2, 3]}}")));

  // BatchNorm's three old-style param entries are frozen; other layers' are not.
  Node bn = io::parse_yaml(
      "layer:\n"
      "  - {name: bn, type: BatchNorm, param: [{lr_mult: 1}, {lr_mult: 1}, {lr_mult: 1}]}\n"
      "  - {name: sc, type: Scale, param: [{lr_mult: 1}, {lr_mult: 1}, {lr_mult: 1}]}\n");
  CHECK(io::upgrade_net(bn) == std::vector<std::string>{"BatchNorm param entries frozen (lr_mult: 0)"});
  CHECK(same_tree(at(item(at(bn, "layer"), 0), "param"),
                  io::parse_yaml("[{lr_mult: 0, decay_mult: 0}, {lr_mult: 0, decay_mult: 0}, {lr_mult: 0, decay_mult: 0}]")));
  CHECK(at(item(at(item(at(bn, "layer"), 1), "param"), 0), "lr_mult").str() == "1");
  CHECK(io::upgrade_net(bn).empty());  // already current: nothing to report

  Node data = io::parse_prototxt(
      "layers { name: \"d\" type: DATA top: \"x\" data_param { source: \"db\" scale: 0.5 mirror: true crop_size: 3 }"
      " transform_param { mean_value: 4 } }",
      "d.prototxt");
  io::upgrade_net(data);
  const Node& d = item(at(data, "layer"), 0);
  CHECK(same_tree(at(d, "data_param"), io::parse_yaml("{source: db}")));
  CHECK(same_tree(at(d, "transform_param"), io::parse_yaml("{mean_value: 4, scale: 0.5, mirror: true, crop_size: 3}")));
  // Both places with different values: transform_param's is kept (a current-format data layer reads
  // only that one in Caffe), and the other is warned about; the same value in both is no news.
  Node both = io::parse_yaml(
      "layer:\n- name: d\n  type: Data\n  top: x\n  transform_param: {scale: 0.00390625, mirror: true}\n  "
      "data_param: {source: db, scale: 0.5, mirror: 1}\n",
      "both.yaml");
  {
    test::CaptureLog log;
    io::upgrade_net(both);
    CHECK_MESSAGE(log.text().find("both.yaml:6:28: data_param.scale: 'scale' is set both here (Caffe's old place for "
                                  "it) and in transform_param (both.yaml:5:28), with different values; "
                                  "transform_param's 0.00390625 is used: remove this one") != std::string::npos,
                  log.text());
    CHECK(log.text().find("mirror") == std::string::npos);  // true and 1 are one value
  }
  CHECK(same_tree(at(item(at(both, "layer"), 0), "transform_param"),
                  io::parse_yaml("{scale: 0.00390625, mirror: true}")));
  CHECK(same_tree(at(item(at(both, "layer"), 0), "data_param"), io::parse_yaml("{source: db}")));
  // 'layers' (V1's key) holding layers of the current format: their param maps are said to be so.
  Node plural =
      io::parse_yaml("layers:\n- name: c\n  type: Convolution\n  param: [{lr_mult: 1}, {lr_mult: 2}]\n", "plural.yaml");
  CHECK_THROWS_WITH_AS(io::upgrade_net(plural),
                       doctest::Contains("a param map ({lr_mult: …}) is the current format's, but this net lists its "
                                         "layers under 'layers', Caffe's V1 key, where a param is a shared blob's "
                                         "name: write 'layer:'"),
                       ConfigError);
  Node same = io::parse_yaml(
      "layer:\n- name: d\n  type: Data\n  top: x\n  transform_param: {scale: 0.5}\n  data_param: {source: db, "
      "scale: 0.5}\n",
      "same.yaml");
  io::upgrade_net(same);
  CHECK(same_tree(at(item(at(same, "layer"), 0), "transform_param"), io::parse_yaml("{scale: 0.5}")));
}

TEST_CASE("prototxt: upgrade errors point at the V1 field") {
  auto upgrade = [](const std::string& text) {
    Node n = io::parse_prototxt(text, "v1.prototxt");
    io::upgrade_net(n);
  };
  CHECK_THROWS_WITH_AS(upgrade("layers {\n  name: \"c\"\n  type: CONVOLUTON\n}"),
                       "v1.prototxt:3:9: layers.type: unknown V1 layer type 'CONVOLUTON' (did you mean "
                       "'CONVOLUTION'?); V1 types are CONVOLUTION, POOLING, INNER_PRODUCT, RELU, SOFTMAX_LOSS, ... (or "
                       "write the current name, e.g. Convolution)",
                       ConfigError);
  CHECK_THROWS_WITH_AS(upgrade("input: \"data\"\ninput_dim: 1\ninput_dim: 3\n"),
                       "v1.prototxt:2:1: input_dim: 2 input_dim value(s) for 1 input(s); give 4 per input (N, C, H, W)",
                       ConfigError);
  CHECK_THROWS_WITH_AS(upgrade("layer { name: \"a\" type: \"ReLU\" }\nlayers { name: \"b\" type: RELU }"),
                       "v1.prototxt:2:1: layers: the net has both 'layer' (current format) and 'layers' (V1 format); "
                       "use one of them",
                       ConfigError);
  // A misspelt V1 list key gets the V1 spelling (the current keys have no blobs_lr).
  CHECK_THROWS_WITH_AS(upgrade("layers {\n  name: \"c\"\n  type: CONVOLUTION\n  blob_lr: 1\n}"),
                       "v1.prototxt:4:3: layers.blob_lr: unknown key 'blob_lr' (did you mean 'blobs_lr'?)",
                       ConfigError);
  // One blobs_lr line too many is said at that line, not at the layer.
  {
    Node n = io::parse_prototxt(
        "input: \"data\"\ninput_dim: 1\ninput_dim: 1\ninput_dim: 4\ninput_dim: 4\nlayers {\n  name: \"c\"\n"
        "  type: CONVOLUTION\n  bottom: \"data\"\n  top: \"c\"\n  blobs_lr: 1\n  blobs_lr: 2\n  blobs_lr: 3\n"
        "  convolution_param { num_output: 2 kernel_size: 3 }\n}\n",
        "v1.prototxt");
    io::upgrade_net(n);
    const NetSpec spec = NetSpec::parse(n);
    Context ctx(1);
    CHECK_THROWS_WITH_AS(Net(spec, NetState{Phase::TRAIN, 0, {}}, ctx, true),
                         doctest::Contains("v1.prototxt:13:13: layer[1] (c).param[2]: has 3 'param' entries but the "
                                           "Convolution layer has 2 parameter blob(s): one entry per blob, in order; "
                                           "remove the entries from this one on (in a V1 net each blobs_lr or "
                                           "weight_decay line makes an entry)"),
                         ConfigError);
  }
  CHECK_THROWS_WITH_AS(upgrade("layers { layer { name: \"conv\" type: \"conv\" } }"),
                       "v1.prototxt:1:10: layers.layer: this is a V0 net (layers { layer { ... } }, before 2014), "
                       "which crema cannot read; upgrade it with Caffe's own build/tools/upgrade_net_proto_text first "
                       "(a Caffe build's tool: crema's convert reads V1 nets and later)",
                       ConfigError);
}

TEST_CASE("prototxt: Caffe's fixture files parse with their layers, types and repeated fields") {
  const auto train_test = io::load_config_file(caffe_data("cifar10_quick_train_test.prototxt"));
  CHECK(at(train_test, "name").str() == "CIFAR10_quick");
  CHECK(layer_field(train_test, "name") ==
        std::vector<std::string>{"cifar", "cifar", "conv1", "pool1", "relu1", "conv2", "relu2", "pool2", "conv3",
                                 "relu3", "pool3", "ip1", "ip2", "accuracy", "loss"});
  const Node& cifar = item(at(train_test, "layer"), 0);
  CHECK(strings(at(cifar, "top")) == std::vector<std::string>{"data", "label"});
  CHECK(at(at(cifar, "include"), "phase").str() == "TRAIN");
  CHECK(at(at(cifar, "data_param"), "backend").str() == "LMDB");
  const Node& conv1 = item(at(train_test, "layer"), 2);
  CHECK(at(conv1, "param").items().size() == 2);
  CHECK(at(at(at(conv1, "convolution_param"), "weight_filler"), "std").str() == "0.0001");
  CHECK(strings(at(item(at(train_test, "layer"), 14), "bottom")) == std::vector<std::string>{"ip2", "label"});

  const auto solver = io::load_config_file(caffe_data("cifar10_quick_solver_lr1.prototxt"));
  CHECK(io::is_solver_message(solver));
  CHECK(at(solver, "net").str() == "examples/cifar10/cifar10_quick_train_test.prototxt");
  CHECK(at(solver, "lr_policy").str() == "fixed");
  CHECK(at(solver, "snapshot_format").str() == "HDF5");
  CHECK(at(solver, "base_lr").str() == "0.0001");
  check_mark(at(solver, "base_lr").mark(), 12, 10);

  const auto deploy = io::load_config_file(caffe_data("lenet_deploy/lenet.prototxt"));
  CHECK(layer_field(deploy, "type") == std::vector<std::string>{"Input", "Convolution", "Pooling", "Convolution",
                                                                "Pooling", "InnerProduct", "ReLU", "InnerProduct",
                                                                "Softmax"});
  CHECK(strings(at(at(at(item(at(deploy, "layer"), 0), "input_param"), "shape"), "dim")) ==
        std::vector<std::string>{"64", "1", "28", "28"});

  const auto v1 = io::load_config_file(caffe_data("v1_lenet/lenet_train_test.prototxt"));
  CHECK(at(v1, "layers").items().size() == 11);
  CHECK(strings(at(item(at(v1, "layers"), 2), "blobs_lr")) == std::vector<std::string>{"1", "2"});
  CHECK(at(item(at(v1, "layers"), 2), "type").str() == "CONVOLUTION");
}

TEST_CASE("prototxt: the CIFAR-10 deploy prototxt takes Caffe's trained weights") {
  const auto root = io::load_net_config(caffe_data("cifar10_quick.prototxt"));
  Context ctx(1701);
  Net net(NetSpec::parse(*root), NetState{Phase::TEST, 0, {}}, ctx, true);
  const io::Weights weights = io::load_weights(caffe_data("cifar10_quick_iter_5000.caffemodel.h5"));
  // Every parameter the file holds has exactly the shape the prototxt builds.
  int compared = 0;
  for (const auto& lw : weights) {
    Layer* layer = net.layer_by_name(lw.layer);
    if (lw.blobs.empty()) continue;  // the TRAIN net's data and loss layers, parameter-free
    REQUIRE_MESSAGE(layer, "no layer " << lw.layer);
    REQUIRE(lw.blobs.size() == layer->blobs().size());
    for (const auto& [i, blob] : lw.blobs) {
      CHECK(blob.shape() == layer->blobs()[static_cast<size_t>(i)]->shape());
      ++compared;
    }
  }
  CHECK(compared == 10);
  CHECK(net.layer_by_name("ip1")->blobs()[0]->shape() == std::vector<int>{64, 1024});
  const auto report = io::copy_weights(net, weights, "cifar10_quick_iter_5000.caffemodel.h5");
  std::vector<std::string> ignored = report.ignored_source;
  std::sort(ignored.begin(), ignored.end());
  CHECK(ignored == std::vector<std::string>{"cifar", "loss"});
  CHECK(std::count(report.loaded.begin(), report.loaded.end(), "conv3") == 1);
  net.forward(ctx);
  const Blob* prob = net.blob("prob");
  REQUIRE(prob->count() == 10);
  double sum = 0;
  for (int i = 0; i < 10; ++i) sum += prob->cpu_data()[i];
  CHECK(sum == doctest::Approx(1.0).epsilon(1e-5));
}

TEST_CASE("prototxt: prototxt to YAML to prototxt to YAML is a fixed point for every Caffe fixture") {
  int files = 0;
  for (const auto& entry : fs::recursive_directory_iterator(caffe_data(""))) {
    if (entry.path().extension() != ".prototxt") continue;
    ++files;
    const std::string path = entry.path().string();
    INFO(path);
    const Node original = upgraded(io::load_config_file(path));
    const std::string yaml1 = io::to_yaml(original);
    const std::string proto1 = as_prototxt(upgraded(io::parse_yaml(yaml1, "1.yaml")));
    const Node again = upgraded(io::parse_prototxt(proto1, "1.prototxt"));
    const std::string yaml2 = io::to_yaml(again);
    CHECK(yaml2 == yaml1);
    CHECK(as_prototxt(upgraded(io::parse_yaml(yaml2, "2.yaml"))) == proto1);
    CHECK(same_tree(again, original));
  }
  CHECK(files >= 8);

  // Floats keep their spelling on both sides.
  const std::string yaml = io::to_yaml(upgraded(io::load_config_file(caffe_data("cifar10_quick_train_test.prototxt"))));
  CHECK(yaml.find("std: 0.0001") != std::string::npos);
  const std::string proto = as_prototxt(upgraded(io::load_config_file(caffe_data("v1_lenet/lenet_train_test.prototxt"))));
  CHECK(proto.find("scale: 0.00390625\n") != std::string::npos);
  CHECK(proto.find("blobs_lr") == std::string::npos);
  CHECK(proto.find("type: \"SoftmaxWithLoss\"\n") != std::string::npos);
}

TEST_CASE("prototxt: a solver keeps its inline net inline, as net_param in the prototxt") {
  Node solver = io::parse_yaml(
      "net:\n"
      "  name: tiny\n"
      "  layer: [{name: data, type: Input, top: data, input_param: {shape: {dim: [1, 2]}}}]\n"
      "base_lr: 0.01\n"
      "max_iter: 3\n"
      "stepvalue: [1, 2]\n"
      "solver_type: NESTEROV\n",
      "s.yaml");
  CHECK(io::upgrade_solver(solver) == std::vector<std::string>{"'solver_type' → 'type'"});
  CHECK(at(solver, "type").str() == "Nesterov");
  const std::string proto = as_prototxt(solver);
  CHECK(proto.rfind("net_param {\n  name: \"tiny\"\n  layer {\n", 0) == 0);
  CHECK(proto.find("stepvalue: 1\nstepvalue: 2\n") != std::string::npos);
  Node back = io::parse_prototxt(proto, "s.prototxt");
  CHECK(io::upgrade_solver(back) == std::vector<std::string>{"'net_param' → an inline 'net'"});
  CHECK(same_tree(back, solver));
  CHECK(at(back, "net").is_map());
  CHECK(at(at(back, "net"), "layer").is_seq());  // one `layer { }` still becomes a list
}

TEST_CASE("prototxt: solver files find their net next to them, then from the working directory") {
  test::TempDir dir;
  fs::create_directories(dir.path() / "models" / "lenet");
  fs::copy_file(caffe_data("lenet_deploy/lenet.prototxt"), dir / "models/lenet/deploy.prototxt");
  // Caffe's convention: the net path is relative to the Caffe root (the working directory).
  test::write_file(dir / "models/lenet/solver.prototxt",
                   "net: \"models/lenet/deploy.prototxt\"\nbase_lr: 0.1\nmax_iter: 1\nsolver_type: SGD\n");
  // crema's: relative to the solver file. Extensions need not say the format: the
  // net has `layer {` blocks, and the solver repeats a key, which YAML refuses.
  fs::copy_file(caffe_data("lenet_deploy/lenet.prototxt"), dir / "models/lenet/deploy.net");
  test::write_file(dir / "models/lenet/local.solver",
                   "net: \"deploy.net\"\nbase_lr: 0.1\nmax_iter: 1\nlr_policy: \"multistep\"\ngamma: 0.1\n"
                   "stepvalue: 1\nstepvalue: 2\n");
  std::shared_ptr<Node> caffe_style, local;
  {
    const WorkingDirectory in(dir.path());
    caffe_style = io::load_solver_config("models/lenet/solver.prototxt");
    local = io::load_solver_config("models/lenet/local.solver");
  }
  // From elsewhere the Caffe-style path is not found.
  const std::string not_found =
      (dir / "models/lenet/solver.prototxt") +
      ":1:6: net: net file 'models/lenet/deploy.prototxt' does not exist (looked for '" +
      (dir / "models/lenet/models/lenet/deploy.prototxt") +
      "' next to the solver and 'models/lenet/deploy.prototxt' from the working directory)";
  CHECK_THROWS_WITH_AS(io::load_solver_config(dir / "models/lenet/solver.prototxt"), not_found.c_str(), ConfigError);
  // A folder, or weights, named as the net are said at the solver's line.
  test::write_file(dir / "models/folder.solver", "net: \"lenet\"\nbase_lr: 0.1\nmax_iter: 1\n");
  CHECK_THROWS_WITH_AS(io::load_solver_config(dir / "models/folder.solver"),
                       ((dir / "models/folder.solver") + ":1:6: net: '" + (dir / "models/lenet") +
                        "' is a folder; give the net file in it")
                           .c_str(),
                       ConfigError);
  fs::copy_file(caffe_data("lenet_deploy/lenet_iter_10000.caffemodel"), dir / "models/w.caffemodel");
  test::write_file(dir / "models/weights.solver", "net: \"w.caffemodel\"\nbase_lr: 0.1\nmax_iter: 1\n");
  const std::string weights_at = (dir / "models/weights.solver") + ":1:6: net: ";
  CHECK_THROWS_WITH_AS(io::load_solver_config(dir / "models/weights.solver"), doctest::Contains(weights_at.c_str()),
                       ConfigError);
  CHECK(strings(at(*local, "stepvalue")) == std::vector<std::string>{"1", "2"});
  for (const auto& s : {caffe_style, local}) {
    const SolverSpec spec = SolverSpec::parse(*s);
    CHECK(spec.type == "SGD");
    CHECK(layer_field(*spec.net, "name").size() == 9);
    CHECK(at(*s, "net").path() == "net");
  }

  test::write_file(dir / "split.prototxt", "train_net: \"a.prototxt\"\nbase_lr: 0.1\nmax_iter: 1\n");
  const std::string split =
      (dir / "split.prototxt") +
      ":1:1: train_net: 'train_net' (separate train and test nets) is not supported: crema builds the TRAIN and TEST "
      "nets from one net; give it with 'net:' and mark phase-only layers with include: {phase: TRAIN} or {phase: TEST}";
  CHECK_THROWS_WITH_AS(io::load_solver_config(dir / "split.prototxt"), split.c_str(), ConfigError);
}
