// Config errors are for people: every class of mistake must name the file, the
// line and column (counted by hand below, 1-based), the key path and, where a
// close spelling exists, suggest it.
#include <doctest/doctest.h>

#include <algorithm>
#include <functional>
#include <string>
#include <tuple>

#include "engine/config.hpp"
#include "engine/context.hpp"
#include "engine/error.hpp"
#include "engine/net.hpp"
#include "engine/solver.hpp"
#include "io/job_config.hpp"
#include "io/yaml_config.hpp"
#include "layer_test_util.hpp"
#include "test_util.hpp"

using namespace crema;

namespace {

// The message of the ConfigError `f` throws; fails the test when it throws nothing
// or something else.
std::string config_error(const std::function<void()>& f) {
  try {
    f();
  } catch (const ConfigError& e) {
    return e.what();
  } catch (const std::exception& e) {
    FAIL_CHECK("expected a ConfigError, got another exception: " << std::string(e.what()));
    return {};
  }
  FAIL_CHECK("expected a ConfigError, nothing was thrown");
  return {};
}

bool starts_with(const std::string& s, const std::string& prefix) { return s.rfind(prefix, 0) == 0; }

void build_net(const std::string& yaml, const NetState& state = NetState{Phase::TRAIN, 0, {}}) {
  const Node root = io::parse_yaml(yaml, "net.yaml");
  const NetSpec spec = NetSpec::parse(root);
  Context ctx(1701);
  Net net(spec, state, ctx, /*quiet=*/true);
}

// Lines 1-6 of every net below: an Input layer producing `data` (1, 1, 8, 8).
const std::string kHead =
    "name: n\n"                                       // 1
    "layer:\n"                                        // 2
    "- name: data\n"                                  // 3
    "  type: Input\n"                                 // 4
    "  top: data\n"                                   // 5
    "  input_param: {shape: {dim: [1, 1, 8, 8]}}\n";  // 6

// A minimal inline net for solver files (lines 1-3).
const std::string kSolverNet =
    "net:\n"                                                                           // 1
    "  name: n\n"                                                                      // 2
    "  layer: [{name: data, type: Input, top: data, input_param: {shape: {dim: [1]}}}]\n";  // 3

}  // namespace

TEST_CASE("config: an unknown typed-parameter key is reported at the key with a did-you-mean") {
  const std::string yaml = kHead +
                           "- name: conv\n"                                                  // 7
                           "  type: Convolution\n"                                           // 8
                           "  bottom: data\n"                                                // 9
                           "  top: conv\n"                                                   // 10
                           "  convolution_param: {num_output: 2, kernel_size: 3, strid: 1}\n";  // 11
  // "  convolution_param: {" is 22 characters, "num_output: 2, " 15, "kernel_size: 3, " 16.
  const std::string msg = config_error([&] { build_net(yaml); });
  CHECK(starts_with(msg, "net.yaml:11:54: "));
  CHECK(msg.find("layer[1].convolution_param.strid") != std::string::npos);
  CHECK(msg.find("unknown key 'strid'") != std::string::npos);
  CHECK(msg.find("did you mean 'stride'?") != std::string::npos);
}

TEST_CASE("config: a misspelt required key (num_ouput) is reported at the key and suggests num_output") {
  const std::string yaml = kHead +
                           "- name: conv\n"                                          // 7
                           "  type: Convolution\n"                                   // 8
                           "  bottom: data\n"                                        // 9
                           "  top: conv\n"                                           // 10
                           "  convolution_param: {num_ouput: 20, kernel_size: 3}\n";  // 11
  // Not just "num_output is missing": the key the user wrote, at column 23.
  const std::string msg = config_error([&] { build_net(yaml); });
  CAPTURE(msg);
  CHECK(starts_with(msg, "net.yaml:11:23: layer[1].convolution_param.num_ouput: "));
  CHECK(msg.find("did you mean 'num_output'?") != std::string::npos);
}

TEST_CASE("config: a misspelt common layer key (botom) is reported at the key with a did-you-mean") {
  const std::string yaml = kHead +
                           "- name: relu\n"   // 7
                           "  type: ReLU\n"   // 8
                           "  botom: data\n"  // 9
                           "  top: data\n";   // 10
  const std::string msg = config_error([&] { build_net(yaml); });
  CHECK(starts_with(msg, "net.yaml:9:3: layer[1].botom: "));
  CHECK(msg.find("unknown key 'botom' (did you mean 'bottom'?)") != std::string::npos);
}

TEST_CASE("config: unknown keys at the net and rule level") {
  // A misspelt net key: "force_backwards" at line 2, column 1.
  const std::string net_msg = config_error([&] {
    build_net("name: n\n"
              "force_backwards: true\n"
              "layer: [{name: data, type: Input, top: data, input_param: {shape: {dim: [1]}}}]\n");
  });
  CHECK(starts_with(net_msg, "net.yaml:2:1: force_backwards: "));
  CHECK(net_msg.find("did you mean 'force_backward'?") != std::string::npos);

  // A misspelt include-rule key: "  include: {" is 12 characters and "phase: TRAIN, " 14.
  const std::string rule_msg = config_error([&] {
    build_net(kHead +
              "- name: relu\n"                                 // 7
              "  type: ReLU\n"                                 // 8
              "  include: {phase: TRAIN, min_levl: 1}\n"       // 9
              "  bottom: data\n"                               // 10
              "  top: data\n");                                // 11
  });
  CHECK(starts_with(rule_msg, "net.yaml:9:27: layer[1].include.min_levl: "));
  CHECK(rule_msg.find("did you mean 'min_level'?") != std::string::npos);
}

TEST_CASE("config: a wrong type names the value's position and path") {
  // batch_size: abc. "    batch_size: " is 16 characters, so the value starts at column 17.
  const std::string data_msg = config_error([&] {
    build_net("name: n\n"                            // 1
              "layer:\n"                             // 2
              "- name: data\n"                       // 3
              "  type: Data\n"                       // 4
              "  top: [data, label]\n"               // 5
              "  data_param:\n"                      // 6
              "    source: no-images-idx3-ubyte\n"   // 7
              "    batch_size: abc\n");              // 8
  });
  CHECK(starts_with(data_msg, "net.yaml:8:17: layer[0].data_param.batch_size: "));
  CHECK(data_msg.find("expected an integer, got 'abc'") != std::string::npos);

  // num_output: 2.5. "  inner_product_param: {" is 24 characters, "num_output: " 12.
  const std::string ip_msg = config_error([&] {
    build_net(kHead +
              "- name: ip\n"                               // 7
              "  type: InnerProduct\n"                     // 8
              "  bottom: data\n"                           // 9
              "  top: ip\n"                                // 10
              "  inner_product_param: {num_output: 2.5}\n");  // 11
  });
  CHECK(starts_with(ip_msg, "net.yaml:11:37: layer[1].inner_product_param.num_output: "));
  CHECK(ip_msg.find("expected an integer, got '2.5'") != std::string::npos);

  // A boolean that is not one: "force_backward: maybe" (line 2, value at column 17).
  const std::string bool_msg = config_error([&] {
    build_net("name: n\n"
              "force_backward: maybe\n"
              "layer: [{name: data, type: Input, top: data, input_param: {shape: {dim: [1]}}}]\n");
  });
  CHECK(starts_with(bool_msg, "net.yaml:2:17: force_backward: "));
  CHECK(bool_msg.find("expected true or false, got 'maybe'") != std::string::npos);
  // YAML 1.1's spellings are booleans in every case YAML allows (On was refused while yes was read).
  for (const char* yes : {"yes", "Yes", "on", "On", "ON", "t", "1"})
    CHECK_MESSAGE(io::parse_yaml(std::string("b: ") + yes, "x.yaml").find("b")->as_bool(), yes);
  for (const char* no : {"no", "NO", "off", "Off", "f", "0"})
    CHECK_MESSAGE(!io::parse_yaml(std::string("b: ") + no, "x.yaml").find("b")->as_bool(), no);

  // A number where a map is expected.
  const std::string map_msg = config_error([&] {
    build_net(kHead +
              "- name: relu\n"         // 7
              "  type: ReLU\n"         // 8
              "  bottom: data\n"       // 9
              "  top: data\n"          // 10
              "  relu_param: 0.1\n");  // 11: value at column 15
  });
  CHECK(starts_with(map_msg, "net.yaml:11:15: layer[1].relu_param: "));
  CHECK(map_msg.find("expected a map") != std::string::npos);
}

TEST_CASE("config: a missing required solver field (base_lr) names the key and the solver map") {
  const std::string yaml = kSolverNet + "max_iter: 10\n" + "momentum: 0.9\n";
  const Node root = io::parse_yaml(yaml, "solver.yaml");
  const std::string msg = config_error([&] { SolverSpec::parse(root); });
  // The solver map itself starts at line 1, column 1.
  CHECK(starts_with(msg, "solver.yaml:1:1: base_lr: "));
  CHECK(msg.find("required key 'base_lr' is missing") != std::string::npos);

  // Present but empty says so, at the key.
  const Node empty = io::parse_yaml(kSolverNet + "max_iter: 10\nbase_lr:\n", "solver.yaml");
  const std::string empty_msg = config_error([&] { SolverSpec::parse(empty); });
  const auto key_line = std::count(kSolverNet.begin(), kSolverNet.end(), '\n') + 2;
  CHECK_MESSAGE(starts_with(empty_msg, "solver.yaml:" + std::to_string(key_line) + ":1: base_lr: "), empty_msg);
  CHECK(empty_msg.find("empty") != std::string::npos);

  // Values that could only be slips: a negative device, a control character in file names.
  const auto solver_error = [](const std::string& extra) {
    const Node r = io::parse_yaml(kSolverNet + "max_iter: 10\nbase_lr: 0.1\n" + extra, "solver.yaml");
    return config_error([&] { SolverSpec::parse(r); });
  };
  CHECK(solver_error("solver_mode: GPU\ndevice_id: -1\n").find("device_id: device_id must be 0 or more") !=
        std::string::npos);
  CHECK(solver_error("snapshot_prefix: \"runs/a\\x01b\"\n").find("snapshot_prefix holds a control character") !=
        std::string::npos);

  // A layer without a type.
  const std::string type_msg = config_error([&] { build_net(kHead + "- name: relu\n  bottom: data\n"); });
  CHECK(starts_with(type_msg, "net.yaml:7:3: layer[1].type: "));
  CHECK(type_msg.find("required key 'type' is missing") != std::string::npos);
  // A top beside it is a key of the layer, not the misspelt type; the misspelling is named at its line.
  CHECK(starts_with(config_error([&] { build_net(kHead + "- name: relu\n  bottom: data\n  top: data\n"); }),
                    "net.yaml:7:3: layer[1].type: required key 'type' is missing"));
  CHECK(
      starts_with(config_error([&] { build_net(kHead + "- name: relu\n  bottom: data\n  top: data\n  typ: ReLU\n"); }),
                  "net.yaml:10:3: layer[1].typ: unknown key 'typ' (did you mean 'type'?)"));
  // Nearer to a key of the layer than to type: not taken for the type.
  CHECK(config_error([&] {
          build_net(kHead + "- name: relu\n  bottom: data\n  tops: data\n");
        }).find("'type' is missing") != std::string::npos);
}

TEST_CASE("config: a duplicate YAML key is an error at the second occurrence") {
  const std::string msg = config_error([&] {
    io::parse_yaml("name: n\n"          // 1
                   "layer:\n"           // 2
                   "- name: data\n"     // 3
                   "  type: Input\n"    // 4
                   "  name: again\n",   // 5
                   "net.yaml");
  });
  CHECK(starts_with(msg, "net.yaml:5:3: layer[0].name: "));
  CHECK(msg.find("duplicate key 'name' (first at line 3); give it once") != std::string::npos);

  const std::string top_msg = config_error([&] { io::parse_yaml("base_lr: 0.1\nmax_iter: 1\nbase_lr: 0.2\n", "s.yaml"); });
  CHECK(starts_with(top_msg, "s.yaml:3:1: base_lr: duplicate key 'base_lr'"));
  // A list is offered for a repeated field only (it was offered for base_lr too, which takes one value).
  CHECK(top_msg.find("[a, b]") == std::string::npos);
  const std::string tops = config_error([&] { io::parse_yaml("top: a\ntop: b\n", "l.yaml"); });
  CHECK_MESSAGE(tops.find("give it once, with a list for several values: top: [a, b]") != std::string::npos, tops);
}

TEST_CASE("config: a recursive YAML alias is one short line, and text after '...' is a second document") {
  const std::string msg = config_error([&] { io::parse_yaml("layer: &x\n  - name: a\n    include: *x\n", "r.yaml"); });
  CHECK_MESSAGE(msg.find("nested more than 100 levels deep (a recursive YAML alias?)") != std::string::npos, msg);
  CHECK_MESSAGE(msg.size() < 300, msg);  // the path repeated the loop a hundred times
  const std::string dots = config_error([&] { io::parse_yaml("base_lr: 1\n...\nmax_iter: 2\n", "d.yaml"); });
  CHECK_MESSAGE(dots.find("a second YAML document starts here (after a '---' or '...' line)") != std::string::npos,
                dots);
}

TEST_CASE("config: a YAML syntax error carries its position") {
  const std::string msg = config_error([&] { io::parse_yaml("name: n\nlayer: [a, b\n", "net.yaml"); });
  CHECK(starts_with(msg, "net.yaml:"));
  CHECK(msg.find("YAML syntax error") != std::string::npos);
}

TEST_CASE(
    "config: pasted lookalikes of spaces, colons and quotes, and invisible characters, are named where they are") {
  const auto error = [](const std::string& yaml) { return config_error([&] { io::parse_yaml(yaml, "t.yaml"); }); };
  CHECK(error("a: 1\n\u00a0 b: 2\n") ==
        "t.yaml:2:1: this line holds a non-breaking space (U+00A0); YAML needs plain spaces");
  CHECK(error("a:\u00a02\n") == "t.yaml:1:3: this line holds a non-breaking space (U+00A0); YAML needs plain spaces");
  CHECK(error("num_output\uff1a 20\n") == "t.yaml:1:11: this line holds a full-width colon (U+FF1A); write ':'");
  CHECK(error("type: \u201cConvolution\u201d\n").find("t.yaml:1:7: this line holds a curly quote (U+201C)") !=
        std::string::npos);
  CHECK(error("num_\u200boutput: 2\n") ==
        "t.yaml:1:5: this line holds an invisible zero-width space (U+200B); delete it");
  CHECK(error("name: 'a\u200bb'\n").find("zero-width space") != std::string::npos);  // in quotes too
  // Inside quotes and comments a non-breaking space is text; a BOM opening the file is fine.
  CHECK(io::parse_yaml("name: 'a\u00a0b'  # x\u00a0y\n", "t.yaml").find("name")->str() == "a\u00a0b");
  CHECK(io::parse_yaml("\ufeffa: 1\n", "t.yaml").find("a") != nullptr);
  // A comment after a tab, an apostrophe in a plain value, a double-quoted path ending in a backslash:
  // none opens or keeps open a string that would hide (or fake) a lookalike.
  CHECK(io::parse_yaml("a: 1\t# rate\uff1a \u201cx\u201d\n", "t.yaml").find("a")->str() == "1");
  CHECK(error("name: Caffe's net\nb:\u00a01\n").find("t.yaml:2:3: this line holds a non-breaking space") !=
        std::string::npos);
  CHECK(error("p: \"C:\\\\data\\\\\"\nb:\u00a01\n").find("t.yaml:2:3: this line holds a non-breaking space") !=
        std::string::npos);
}

TEST_CASE("config: a quote that is never closed is an error at the value that opens it") {
  // yaml-cpp reads such a value to the end of the file: on the first line it took the whole
  // net in, which was then reported as a net without layers.
  const std::string first =
      config_error([&] { io::parse_yaml("name: \"lenet\nlayer:\n  - {name: d, type: Input, top: d}\n", "net.yaml"); });
  CHECK_MESSAGE(starts_with(first, "net.yaml:1:7: name: this value opens a quote (\") that is never closed"), first);
  const std::string last =
      config_error([&] { io::parse_yaml("layer:\n  - {name: d, type: Input, top: d}\nname: 'lenet\n", "net.yaml"); });
  CHECK_MESSAGE(starts_with(last, "net.yaml:3:7: name: this value opens a quote (') that is never closed"), last);
  // Closed quotes, escaped ones and quoted keys are fine, over several lines too.
  const Node ok = io::parse_yaml("\"a\": \"x \\\" y\"\nb: 'it''s'\nc: \"two\n  lines\"\n", "ok.yaml");
  CHECK(ok.find("a")->str() == "x \" y");
  CHECK(ok.find("b")->str() == "it's");
  CHECK(ok.find("c")->str() == "two lines");
  // After a byte-order mark (which yaml-cpp does not count in its positions) likewise.
  const Node bom = io::parse_yaml("\xEF\xBB\xBFname: Caffe's\nlayer: []\n", "bom.yaml");
  CHECK(bom.find("name")->str() == "Caffe's");
  const std::string bom_open = config_error([&] {
    io::parse_yaml(
        "\xEF\xBB\xBF"
        "a: 1\nname: \"x\n",
        "bom.yaml");
  });
  CHECK_MESSAGE(starts_with(bom_open, "bom.yaml:2:7: name: this value opens a quote"), bom_open);
}

TEST_CASE("config: duplicate layer names within one phase are rejected, across phases they are fine") {
  const std::string dup = kHead +
                          "- name: data\n"                          // 7
                          "  type: Input\n"                         // 8
                          "  top: other\n"                          // 9
                          "  input_param: {shape: {dim: [2]}}\n";   // 10
  const std::string msg = config_error([&] { build_net(dup); });
  CHECK(starts_with(msg, "net.yaml:7:3: layer[1] (data): "));
  CHECK(msg.find("duplicate layer name 'data' (also at net.yaml:3:3)") != std::string::npos);

  // The same name in a TRAIN-only and a TEST-only layer: each net keeps its own.
  const std::string yaml = "name: n\n"
                           "layer:\n"
                           "- {name: data, type: Input, top: data, include: {phase: TRAIN},"
                           " input_param: {shape: {dim: [4, 3]}}}\n"
                           "- {name: data, type: Input, top: data, include: {phase: TEST},"
                           " input_param: {shape: {dim: [2, 3]}}}\n"
                           "- {name: relu, type: ReLU, bottom: data, top: data}\n";
  const Node root = io::parse_yaml(yaml, "net.yaml");
  const NetSpec spec = NetSpec::parse(root);
  Context ctx(1701);
  Net train(spec, NetState{Phase::TRAIN, 0, {}}, ctx, true);
  Net test(spec, NetState{Phase::TEST, 0, {}}, ctx, true);
  CHECK(train.num_layers() == 2);
  CHECK(test.num_layers() == 2);
  CHECK(train.blob("data")->shape() == std::vector<int>{4, 3});
  CHECK(test.blob("data")->shape() == std::vector<int>{2, 3});

  // Same name, both in TRAIN (no rules on one of them) is still a duplicate.
  const std::string both = "name: n\n"
                           "layer:\n"
                           "- {name: data, type: Input, top: data, input_param: {shape: {dim: [4, 3]}}}\n"
                           "- {name: data, type: Input, top: d2, include: {phase: TRAIN}, input_param: {shape: {dim: [1]}}}\n";
  CHECK(config_error([&] { build_net(both); }).find("duplicate layer name 'data'") != std::string::npos);
  CHECK_NOTHROW(build_net(both, NetState{Phase::TEST, 0, {}}));
}

TEST_CASE("config: an empty or missing layer name is rejected") {
  const std::string empty = kHead +
                            "- name: ''\n"        // 7
                            "  type: ReLU\n"      // 8
                            "  bottom: data\n"    // 9
                            "  top: data\n";      // 10
  const std::string msg = config_error([&] { build_net(empty); });
  CHECK(starts_with(msg, "net.yaml:7:3: layer[1]: "));
  CHECK(msg.find("every layer needs a non-empty 'name'") != std::string::npos);

  const std::string missing = kHead +
                              "- type: ReLU\n"    // 7
                              "  bottom: data\n"  // 8
                              "  top: data\n";    // 9
  const std::string msg2 = config_error([&] { build_net(missing); });
  CHECK(starts_with(msg2, "net.yaml:7:3: layer[1]: "));
  CHECK(msg2.find("non-empty 'name'") != std::string::npos);

  // The name key misspelt: said at the key written, not as a layer without a name.
  const std::string slip = kHead +
                           "- nmae: relu\n"    // 7
                           "  type: ReLU\n"    // 8
                           "  bottom: data\n"  // 9
                           "  top: data\n";    // 10
  CHECK(config_error([&] { build_net(slip); }) ==
        "net.yaml:7:3: layer[1].nmae: unknown key 'nmae' (did you mean 'name'?)");
  // Spaces only: no name to see.
  CHECK(config_error([&] {
          build_net(kHead + "- {name: '   ', type: ReLU, bottom: data, top: data}\n");
        }).find("name '   ' is only spaces; give it a visible name") != std::string::npos);
}

TEST_CASE("config: a misspelt key that holds a required one, or is one, is said as written") {
  // convolution_parm: its num_output was written, in a block no one reads.
  const std::string block = kHead +
                            "- name: conv\n"                                          // 7
                            "  type: Convolution\n"                                   // 8
                            "  bottom: data\n"                                        // 9
                            "  top: conv\n"                                           // 10
                            "  convolution_parm: {num_output: 2, kernel_size: 3}\n";  // 11
  CHECK(config_error([&] { build_net(block); }) ==
        "net.yaml:11:3: layer[1].convolution_parm: unknown key 'convolution_parm' (did you mean 'convolution_param'?)");
  // kernal_size: the check that finds kernel_size missing names the slip.
  const std::string kernel = kHead +
                             "- name: conv\n"                                           // 7
                             "  type: Convolution\n"                                    // 8
                             "  bottom: data\n"                                         // 9
                             "  top: conv\n"                                            // 10
                             "  convolution_param: {num_output: 2, kernal_size: 3}\n";  // 11
  CHECK(config_error([&] { build_net(kernel); }).find("unknown key 'kernal_size' (did you mean 'kernel_size'?)") !=
        std::string::npos);
  // layr: the net's list misspelt.
  CHECK(config_error([&] { build_net("name: n\nlayr:\n- {name: data, type: Input, top: data}\n"); }) ==
        "net.yaml:2:1: layr: unknown key 'layr' (did you mean 'layer'?)");
  // tpo: beside a type already written, the key meant is top.
  CHECK(config_error([&] {
          build_net(kHead + "- {name: r, type: ReLU, bottom: data, tpo: r}\n");
        }).find("unknown key 'tpo' (did you mean 'top'?)") != std::string::npos);
}

TEST_CASE("config: DummyData's filler count is said with what it may be") {
  const std::string yaml =
      "name: n\nlayer:\n- {name: x, type: DummyData, top: x, dummy_data_param: {shape: [{dim: "
      "[2]}], data_filler: [{type: constant}, {type: constant}]}}\n";
  CHECK(config_error([&] { build_net(yaml); })
            .find("dummy_data_param has 2 data_filler entries for 1 top(s): give none (constant 0), one shared by all "
                  "tops, or one per top") != std::string::npos);
}

TEST_CASE("config: a bottom made further down names the layer that makes it") {
  const std::string yaml =
      kHead +
      "- {name: relu, type: ReLU, bottom: ip, top: r}\n"                                                  // 7
      "- {name: ip, type: InnerProduct, bottom: data, top: ip, inner_product_param: {num_output: 2}}\n";  // 8
  const std::string msg = config_error([&] { build_net(yaml); });
  CHECK_MESSAGE(msg.find("bottom 'ip' is not produced by any earlier layer in the TRAIN net: layer 'ip' (net.yaml:8:3) "
                         "makes it further down, and layers run in the order written; move this layer below it") !=
                    std::string::npos,
                msg);
  CHECK(msg.find("did you mean") == std::string::npos);
}

TEST_CASE("config: a bottom that no earlier layer produces suggests a close blob name") {
  const std::string yaml = kHead +
                           "- name: ip\n"                               // 7
                           "  type: InnerProduct\n"                     // 8
                           "  bottom: dta\n"                            // 9: value at column 11
                           "  top: ip\n"                                // 10
                           "  inner_product_param: {num_output: 2}\n";  // 11
  const std::string msg = config_error([&] { build_net(yaml); });
  CHECK(starts_with(msg, "net.yaml:9:11: layer[1] (ip).bottom: "));
  CHECK(msg.find("bottom 'dta' is not produced by any earlier layer in the TRAIN net") != std::string::npos);
  CHECK(msg.find("did you mean 'data'?") != std::string::npos);

  // In a list, the position is that of the offending entry: "  bottom: [data, lable]" -> column 18.
  const std::string list = kHead +
                           "- name: loss\n"                   // 7
                           "  type: EuclideanLoss\n"          // 8
                           "  bottom: [data, lable]\n";       // 9
  const std::string msg2 = config_error([&] { build_net(list); });
  CHECK(starts_with(msg2, "net.yaml:9:18: layer[1] (loss).bottom: "));
  CHECK(msg2.find("bottom 'lable' is not produced") != std::string::npos);

  // A blob produced only in the other phase is not available.
  const std::string phase = "name: n\n"
                            "layer:\n"
                            "- {name: data, type: Input, top: data, include: {phase: TEST}, input_param: {shape: {dim: [1]}}}\n"
                            "- {name: relu, type: ReLU, bottom: data, top: r}\n";
  CHECK(config_error([&] { build_net(phase); }).find("not produced by any earlier layer in the TRAIN net") !=
        std::string::npos);
}

TEST_CASE("config: an unknown layer type suggests the closest registered type") {
  const std::string yaml = kHead +
                           "- name: conv\n"               // 7
                           "  type: Convolutoin\n"        // 8: value at column 9
                           "  bottom: data\n"             // 9
                           "  top: conv\n";               // 10
  const std::string msg = config_error([&] { build_net(yaml); });
  CHECK(starts_with(msg, "net.yaml:8:9: layer[1].type: "));
  CHECK(msg.find("unknown layer type 'Convolutoin' (did you mean 'Convolution'?)") != std::string::npos);

  const std::string msg2 = config_error([&] { build_net(kHead + "- {name: s, type: SoftmaxWithLos, bottom: data}\n"); });
  CHECK(msg2.find("did you mean 'SoftmaxWithLoss'?") != std::string::npos);
}

TEST_CASE("config: Caffe's Python, MemoryData and WindowData layers are named as left out, with what to use") {
  const std::string python = config_error([&] { build_net(kHead + "- {name: p, type: Python, bottom: data, top: p}\n"); });
  CHECK(python.find("layer type 'Python' is not supported: Caffe's Python layer runs Python code") != std::string::npos);
  const std::string memory = config_error([&] { build_net(kHead + "- {name: m, type: MemoryData, top: [d, l]}\n"); });
  CHECK(memory.find("use Input") != std::string::npos);
  const std::string window = config_error([&] { build_net(kHead + "- {name: w, type: WindowData, top: [d, l]}\n"); });
  CHECK(window.find("ImageData") != std::string::npos);
}

TEST_CASE("config: an unknown enum value suggests the closest and lists the choices") {
  const std::string yaml = kHead +
                           "- name: pool\n"                                   // 7
                           "  type: Pooling\n"                                // 8
                           "  bottom: data\n"                                 // 9
                           "  top: pool\n"                                    // 10
                           "  pooling_param: {pool: MAXX, kernel_size: 2}\n";  // 11
  // "  pooling_param: {" is 18 characters and "pool: " 6, so MAXX starts at column 25.
  const std::string msg = config_error([&] { build_net(yaml); });
  CHECK(starts_with(msg, "net.yaml:11:25: layer[1].pooling_param.pool: "));
  CHECK(msg.find("unknown value 'MAXX' (did you mean 'MAX'?)") != std::string::npos);
  CHECK(msg.find("expected one of: MAX, AVE, STOCHASTIC") != std::string::npos);

  // Rule phases are enums too: "  include: {phase: TRAN}" -> column 20.
  const std::string phase = kHead +
                            "- name: relu\n"                  // 7
                            "  type: ReLU\n"                  // 8
                            "  include: {phase: TRAN}\n"      // 9
                            "  bottom: data\n"                // 10
                            "  top: data\n";                  // 11
  const std::string msg2 = config_error([&] { build_net(phase); });
  CHECK(starts_with(msg2, "net.yaml:9:20: layer[1].include.phase: "));
  CHECK(msg2.find("did you mean 'TRAIN'?") != std::string::npos);
}

TEST_CASE("config: Caffe's enums are taken by number too, as protobuf's text format takes them") {
  // pool: 1 is AVE; Reduction's operations count from 1 in caffe.proto (4 is MEAN), Eltwise's from 0.
  test::TestNet t(
      "name: n\nlayer:\n"
      "  - {name: data, type: Input, top: data, input_param: {shape: {dim: [1, 1, 2, 2]}}}\n"
      "  - {name: pool, type: Pooling, bottom: data, top: pool, pooling_param: {pool: 1, kernel_size: 2}}\n"
      "  - {name: mean, type: Reduction, bottom: data, top: mean, reduction_param: {operation: 4}}\n"
      "  - {name: max, type: Eltwise, bottom: [data, data], top: max, eltwise_param: {operation: 2}}\n",
      1);
  float* x = t.net.blob("data")->mutable_cpu_data();
  x[0] = 1, x[1] = 2, x[2] = 3, x[3] = 6;
  t.net.forward(t.ctx);
  CHECK(t.net.blob("pool")->cpu_data()[0] == 3.f);  // AVE, not MAX (6)
  CHECK(t.net.blob("mean")->cpu_data()[0] == 3.f);  // MEAN, not SUM (12)
  CHECK(t.net.blob("max")->cpu_data()[3] == 6.f);   // MAX, not PROD (36)
  // A number past the enum's is refused with the numbers listed; crema's own enums take names only.
  const std::string past = config_error([&] {
    build_net(kHead + "- {name: r, type: Reduction, bottom: data, top: r, reduction_param: {operation: 0}}\n");
  });
  CHECK_MESSAGE(
      past.find("unknown value '0'; expected one of: SUM (1), ASUM (2), SUMSQ (3), MEAN (4)") != std::string::npos,
      past);
  const std::string own = config_error([&] {
    build_net(kHead +
              "- {name: d, type: Data, top: [a, b], data_param: {source: x, batch_size: 1, on_bad_sample: 0}}\n");
  });
  CHECK_MESSAGE(own.find("unknown value '0'; expected one of: fail, skip") != std::string::npos, own);
}

TEST_CASE("config: a net embedded in a solver reports paths under net.") {
  const std::string yaml = "base_lr: 0.1\n"                                                    // 1
                           "max_iter: 1\n"                                                     // 2
                           "net:\n"                                                            // 3
                           "  name: n\n"                                                       // 4
                           "  layer:\n"                                                        // 5
                           "  - {name: data, type: Input, top: data, input_param: {shape: {dim: [1]}}}\n"  // 6
                           "  - {name: relu, type: ReLU, bottom: data, top: data, relu_parm: {}}\n";      // 7
  const Node root = io::parse_yaml(yaml, "solver.yaml");
  const SolverSpec s = SolverSpec::parse(root);
  const NetSpec spec = NetSpec::parse(*s.net);
  Context ctx(1701);
  // "  - {name: relu, type: ReLU, bottom: data, top: data, " is 54 characters.
  const std::string msg = config_error([&] { Net net(spec, s.train_net_state(spec), ctx, true); });
  CHECK(starts_with(msg, "solver.yaml:7:55: net.layer[1].relu_parm: "));
  CHECK(msg.find("did you mean 'relu_param'?") != std::string::npos);
}

TEST_CASE("config: --set overrides a scalar and adds a missing key") {
  Node root = io::parse_yaml(kSolverNet + "base_lr: 0.01\nmax_iter: 10\n", "solver.yaml");
  io::apply_override(root, "max_iter=250");
  io::apply_override(root, "momentum=0.9");
  io::apply_override(root, "base_lr=1e-3");
  const SolverSpec s = SolverSpec::parse(root);
  CHECK(s.max_iter == 250);
  CHECK(s.momentum == doctest::Approx(0.9f));
  CHECK(s.base_lr == doctest::Approx(0.001f));
  // A bad value given on the command line points at the --set argument.
  io::apply_override(root, "max_iter=lots");
  const std::string msg = config_error([&] { SolverSpec::parse(root); });
  CHECK(starts_with(msg, "--set max_iter=lots: max_iter: "));
  CHECK(msg.find("expected an integer, got 'lots'") != std::string::npos);
}

TEST_CASE("config: --set overrides a nested path, creating maps as needed") {
  Node root = io::parse_yaml(kSolverNet + "base_lr: 0.01\nmax_iter: 10\n", "solver.yaml");
  io::apply_override(root, "train_state.level=3");
  io::apply_override(root, "train_state.stage=[deploy, extra]");
  io::apply_override(root, "net.name=renamed");
  const SolverSpec s = SolverSpec::parse(root);
  CHECK(s.train_state.level == 3);
  CHECK(s.train_net_state(NetSpec::parse(*s.net)).level == 3);
  CHECK(s.train_state.stage == std::vector<std::string>{"deploy", "extra"});
  CHECK(NetSpec::parse(*s.net).name == "renamed");
  // A misspelt key set on the command line is still caught, at the --set argument.
  io::apply_override(root, "momentun=0.9");
  const std::string msg = config_error([&] { SolverSpec::parse(root); });
  CHECK(starts_with(msg, "--set momentun=0.9: momentun: "));
  CHECK(msg.find("did you mean 'momentum'?") != std::string::npos);
}

TEST_CASE("config: --set overrides an indexed path net.layer(i)") {
  const std::string yaml = "base_lr: 0.01\n"
                           "max_iter: 10\n"
                           "net:\n"
                           "  name: n\n"
                           "  layer:\n"
                           "  - {name: data, type: Input, top: data, input_param: {shape: {dim: [2, 3]}}}\n"
                           "  - {name: ip, type: InnerProduct, bottom: data, top: ip, inner_product_param: {num_output: 2}}\n";
  Node root = io::parse_yaml(yaml, "solver.yaml");
  io::apply_override(root, "net.layer[0].name=input");
  io::apply_override(root, "net.layer[1].inner_product_param.num_output=5");
  io::apply_override(root, "net.layer[0].input_param={shape: {dim: [4, 7]}}");
  const SolverSpec s = SolverSpec::parse(root);
  const NetSpec spec = NetSpec::parse(*s.net);
  REQUIRE(spec.layers.size() == 2);
  CHECK(spec.layers[0].name == "input");
  CHECK(spec.layers[1].name == "ip");
  Context ctx(1701);
  Net net(spec, s.train_net_state(spec), ctx, true);
  CHECK(net.blob("data")->shape() == std::vector<int>{4, 7});
  CHECK(net.blob("ip")->shape() == std::vector<int>{4, 5});
  CHECK(net.layer_by_name("ip")->blobs()[0]->shape() == std::vector<int>{5, 7});

  // A bad value set through an indexed path names the full path.
  io::apply_override(root, "net.layer[1].inner_product_param.num_output=2.5");
  const SolverSpec s2 = SolverSpec::parse(root);
  const NetSpec spec2 = NetSpec::parse(*s2.net);
  const std::string msg = config_error([&] { Net bad(spec2, s2.train_net_state(spec2), ctx, true); });
  CHECK(starts_with(msg, "--set net.layer[1].inner_product_param.num_output=2.5: "));
  CHECK(msg.find("net.layer[1].inner_product_param.num_output: expected an integer") != std::string::npos);
}

TEST_CASE("config: bad --set overrides are rejected with a reason") {
  Node root = io::parse_yaml(kSolverNet + "base_lr: 0.01\nmax_iter: 10\n", "solver.yaml");
  const std::string no_eq = config_error([&] { io::apply_override(root, "max_iter"); });
  CHECK(starts_with(no_eq, "--set max_iter: "));
  CHECK(no_eq.find("expected --set key.path=value") != std::string::npos);
  CHECK(config_error([&] { io::apply_override(root, "=5"); }).find("expected --set key.path=value") != std::string::npos);
  const std::string range = config_error([&] { io::apply_override(root, "net.layer[3].name=x"); });
  CHECK(range.find("net.layer: index [3] is out of range") != std::string::npos);
  const std::string not_list = config_error([&] { io::apply_override(root, "net.name[0]=x"); });
  CHECK(not_list.find("index [0] is out of range") != std::string::npos);
  const std::string no_list = config_error([&] { io::apply_override(root, "net.blocks[0].name=x"); });
  CHECK(no_list.find("no list 'blocks' to index") != std::string::npos);
  const std::string scalar = config_error([&] { io::apply_override(root, "max_iter.value=3"); });
  CHECK(scalar.find("max_iter.value: cannot set a key inside a non-map value") != std::string::npos);
  const std::string empty = config_error([&] { io::apply_override(root, "net..name=x"); });
  CHECK(empty.find("empty key in --set path") != std::string::npos);
  // None of the failed overrides changed the tree.
  const SolverSpec s = SolverSpec::parse(root);
  CHECK(s.max_iter == 10);
  CHECK(NetSpec::parse(*s.net).name == "n");
}

TEST_CASE("config: --unset removes a key, a nested map or a list item, in order with --set") {
  const std::string yaml =
      "base_lr: 0.01\nmax_iter: 10\nlr_policy: cosine\nmin_lr: 0.001\n"
      "net:\n"
      "  name: n\n"
      "  layer:\n"
      "  - {name: data, type: Input, top: data, input_param: {shape: {dim: [2, 3]}}}\n"
      "  - {name: ip, type: InnerProduct, bottom: data, top: ip,\n"
      "     inner_product_param: {num_output: 2, weight_filler: {type: gaussian, std: 0.5}}}\n"
      "  - {name: extra, type: ReLU, bottom: ip, top: ip}\n";
  Node root = io::parse_yaml(yaml, "solver.yaml");
  // The cosine floor left behind by another policy is refused, naming the way out.
  io::apply_override(root, "lr_policy=step");
  io::apply_override(root, "stepsize=5");
  io::apply_override(root, "gamma=0.5");
  const std::string floor = config_error([&] { SolverSpec::parse(root); });
  CHECK_MESSAGE(floor.find("--unset min_lr") != std::string::npos, floor);
  io::apply_override(root, "~min_lr");
  CHECK(root.find("min_lr") == nullptr);
  CHECK(SolverSpec::parse(root).lr_policy == "step");
  // A whole map goes, and a later --set builds a new one in its place: no std is left over.
  io::apply_override(root, "~net.layer[1].inner_product_param.weight_filler");
  io::apply_override(root, "net.layer[1].inner_product_param.weight_filler.type=msra");
  const Node& filler = *root.find("net")->find("layer")->items()[1].find("inner_product_param")->find("weight_filler");
  REQUIRE(filler.entries().size() == 1);
  CHECK(filler.find("type")->str() == "msra");
  // A list item goes, the later ones moving up with their paths.
  io::apply_override(root, "~net.layer[0]");
  const Node& layers = *root.find("net")->find("layer");
  REQUIRE(layers.items().size() == 2);
  CHECK(layers.items()[0].find("name")->str() == "ip");
  CHECK(layers.items()[1].path() == "net.layer[1]");
  CHECK(layers.items()[1].find("name")->path() == "net.layer[1].name");

  // A key that is not there is an error (a typo would otherwise remove nothing, unsaid).
  const std::string typo = config_error([&] { io::apply_override(root, "~momentun"); });
  CHECK_MESSAGE(starts_with(typo, "--unset momentun: momentun: there is no key 'momentun' at the top level to remove"),
                typo);
  const std::string alias = config_error([&] { io::apply_override(root, "~lr"); });
  CHECK_MESSAGE(alias.find("did you mean 'base_lr'?") != std::string::npos, alias);
  const std::string nested = config_error([&] { io::apply_override(root, "~net.nme"); });
  CHECK_MESSAGE(nested.find("there is no key 'nme' in net to remove (did you mean 'name'?)") != std::string::npos,
                nested);
  CHECK(config_error([&] { io::apply_override(root, "~max_iter=3"); }).find("--unset takes a key alone") !=
        std::string::npos);
  CHECK(config_error([&] { io::apply_override(root, "~"); }).find("expected --unset key.path") != std::string::npos);
  CHECK(config_error([&] { io::apply_override(root, "~net.layer[2]"); }).find("index [2] is out of range") !=
        std::string::npos);
  CHECK(config_error([&] {
          io::apply_override(root, "~max_iter.value");
        }).find("no key to remove inside a non-map value") != std::string::npos);
  CHECK(SolverSpec::parse(root).max_iter == 10);  // the failed ones changed nothing
}

TEST_CASE("config: an empty --set value is named with the --unset that leaves the key out") {
  Node root = io::parse_yaml(kSolverNet + "base_lr: 0.01\nmax_iter: 10\nmomentum:\n", "solver.yaml");
  const std::string in_file = config_error([&] { SolverSpec::parse(root); });
  CHECK_MESSAGE(
      in_file.find("'momentum' is empty; give it a value, or leave the key out for its default") != std::string::npos,
      in_file);
  io::apply_override(root, "momentum=");
  const std::string msg = config_error([&] { SolverSpec::parse(root); });
  CHECK_MESSAGE(starts_with(msg,
                            "--set momentum=: momentum: 'momentum' is empty; give it a value, or --unset momentum "
                            "to leave it out for its default"),
                msg);
  io::apply_override(root, "~momentum");
  CHECK(SolverSpec::parse(root).momentum == 0.f);
}

TEST_CASE("config: the net's own state is the base the solver's train_state and test_state merge over") {
  const std::string yaml = "base_lr: 0.1\nmax_iter: 1\ntest_iter: [1, 1]\ntest_interval: 1\n"
                           "train_state: {level: 2}\n"
                           "test_state: [{stage: [val]}, {phase: TRAIN, level: 5}]\n"
                           "net:\n"
                           "  name: n\n"
                           "  state: {stage: [deploy], level: 1}\n"
                           "  layer: [{name: data, type: Input, top: data, input_param: {shape: {dim: [1]}}}]\n";
  const Node root = io::parse_yaml(yaml, "solver.yaml");  // the spec points into it
  const SolverSpec s = SolverSpec::parse(root);
  const NetSpec net = NetSpec::parse(*s.net);
  CHECK(s.test_nets() == 2);
  const NetState train = s.train_net_state(net);
  CHECK(train.phase == Phase::TRAIN);
  CHECK(train.level == 2);  // the solver's replaces the net's
  CHECK(train.stage == std::vector<std::string>{"deploy"});
  const NetState val = s.test_net_state(net, 0);
  CHECK(val.phase == Phase::TEST);
  CHECK(val.level == 1);  // the net's, not overridden
  CHECK(val.stage == std::vector<std::string>{"deploy", "val"});  // stages append
  const NetState odd = s.test_net_state(net, 1);
  CHECK(odd.phase == Phase::TRAIN);  // as protobuf's MergeFrom: a written phase wins
  CHECK(odd.level == 5);
}

TEST_CASE("config: split_commas keeps every piece, empty ones included, in order") {
  CHECK(crema::split_commas("a,b") == std::vector<std::string>{"a", "b"});
  CHECK(crema::split_commas("a,,b,") == std::vector<std::string>{"a", "", "b", ""});
  CHECK(crema::split_commas("") == std::vector<std::string>{""});
  CHECK(crema::split_commas(",") == std::vector<std::string>{"", ""});
  CHECK(crema::split_commas("one file.caffemodel") == std::vector<std::string>{"one file.caffemodel"});
}

TEST_CASE("config: first_few lists at most the first few names and counts the rest") {
  CHECK(crema::first_few({}, 3) == "none");
  CHECK(crema::first_few({"a"}, 3) == "a");
  CHECK(crema::first_few({"a", "b", "c"}, 3) == "a, b, c");
  CHECK(crema::first_few({"a", "b", "c", "d", "e"}, 3) == "a, b, c and 2 more");
}

TEST_CASE("config: lowercase changes ASCII letters only") {
  CHECK(crema::lowercase("Conv1.PNG") == "conv1.png");
  CHECK(crema::lowercase("\xc3\x84Z-9_") == "\xc3\x84z-9_");  // UTF-8 'Ä' kept byte for byte
  CHECK(crema::lowercase("") == "");
}

TEST_CASE("config: YAML merge keys copy an anchored map's keys that the map does not write itself") {
  const Node root = io::parse_yaml(
      "base: &base {type: InnerProduct, bottom: x, top: a, inner_product_param: {num_output: 2}}\n"  // 1
      "extra: &extra {top: b, loss_weight: 1}\n"                                                     // 2
      "one: {<<: *base, name: ip2, top: ip2}\n"                                                      // 3
      "two:\n"                                                                                       // 4
      "  <<: [*extra, *base]\n"                                                                      // 5
      "  name: ip3\n"                                                                                // 6
      "quoted: {'<<': kept}\n",                                                                      // 7
      "m.yaml");
  const Node& one = *root.find("one");
  CHECK(one.find("name")->str() == "ip2");
  CHECK(one.find("top")->str() == "ip2");  // written here: the anchor's 'a' is not taken
  CHECK(one.find("type")->str() == "InnerProduct");
  CHECK(one.find("inner_product_param")->find("num_output")->str() == "2");
  CHECK(one.find("<<") == nullptr);
  CHECK(one.find("type")->path() == "one.type");
  CHECK(one.find("inner_product_param")->find("num_output")->path() == "one.inner_product_param.num_output");
  const Node& two = *root.find("two");
  CHECK(two.find("top")->str() == "b");  // the earlier map of the list wins
  CHECK(two.find("loss_weight")->str() == "1");
  CHECK(two.find("bottom")->str() == "x");
  CHECK(root.find("quoted")->find("<<")->str() == "kept");

  // A merged layer builds; a merge of a scalar, and two merge keys, are errors at the key.
  build_net(kHead +
            "- &ip {name: ip, type: InnerProduct, bottom: data, top: ip, inner_product_param: {num_output: 2}}\n"
            "- <<: *ip\n"
            "  name: ip2\n"
            "  top: ip2\n");
  const std::string scalar = config_error([&] { io::parse_yaml("a: &a 1\nb: {<<: *a}\n", "m.yaml"); });
  CHECK_MESSAGE(starts_with(scalar, "m.yaml:2:5: b.<<: a merge key (<<) takes a map or a list of maps"), scalar);
  const std::string twice =
      config_error([&] { io::parse_yaml("a: &a {x: 1}\nb:\n  <<: *a\n  y: 2\n  <<: *a\n", "m.yaml"); });
  CHECK_MESSAGE(starts_with(twice, "m.yaml:5:3: b.<<: a second merge key (<<) in one map"), twice);
}

TEST_CASE("config: a data layer's source that cannot be read is reported at its source key") {
  for (const auto& [type, key, says] :
       {std::tuple<std::string, std::string, std::string>{
            "Data", "data_param",
            "'/nonexistent/train-images-idx3-ubyte' does not exist; give an LMDB database (a folder) or an IDX images "
            "file"},
        {"ImageData", "image_data_param", "cannot open the list file"},
        {"HDF5Data", "hdf5_data_param", "cannot read the HDF5 file list"}}) {
    CAPTURE(type);
    const std::string msg = config_error([&] {
      build_net("name: n\nlayer:\n- name: d\n  type: " + type + "\n  top: [data, label]\n  " + key +
                ": {source: /nonexistent/train-images-idx3-ubyte, batch_size: 2}\n");
    });
    const std::string at =
        "net.yaml:6:" + std::to_string(key.size() + 14) + ": layer[0] (d): " + key + ".source: " + says;
    CHECK_MESSAGE(starts_with(msg, at), msg);
  }
}

TEST_CASE("config: other frameworks' names and misplaced required keys are reported where they are written") {
  const auto net_error = [](const std::string& layers) { return config_error([&] { build_net(kHead + layers); }); };
  // A PyTorch layer type, filler and key name each get crema's (Caffe's) name.
  std::string msg = net_error("- {name: fc, type: Linear, bottom: data, top: fc}\n");
  CHECK_MESSAGE(msg.find("unknown layer type 'Linear' (did you mean 'InnerProduct'? crema uses Caffe's names)") !=
                    std::string::npos,
                msg);
  for (const auto& [theirs, ours] :
       {std::pair{"BatchNormalization", "BatchNorm"}, std::pair{"Add", "Eltwise"}, std::pair{"Concatenate", "Concat"},
        std::pair{"Softplus", "BNLL"}, std::pair{"SiLU", "Swish"}}) {
    msg = net_error(std::string("- {name: l, type: ") + theirs + ", bottom: data, top: l}\n");
    CHECK_MESSAGE(msg.find(std::string("(did you mean '") + ours + "'? crema uses Caffe's names)") != std::string::npos,
                  msg);
  }
  msg = net_error("- {name: l, type: AdaptiveAvgPool2d, bottom: data, top: l}\n");
  CHECK_MESSAGE(msg.find("(did you mean 'Pooling'? crema uses Caffe's names; pooling_param: {global_pooling: true} "
                         "pools each channel to 1x1)") != std::string::npos,
                msg);
  // A layer crema lacks is not answered with another a letter away (GELU is not ELU).
  for (const char* lacking : {"GELU", "GRU", "SELU"}) {
    msg = net_error(std::string("- {name: l, type: ") + lacking + ", bottom: data, top: l}\n");
    CHECK_MESSAGE(msg.find("did you mean") == std::string::npos, msg);
    CHECK_MESSAGE(msg.find(std::string("unknown layer type '") + lacking + "'") != std::string::npos, msg);
  }
  msg = net_error(
      "- {name: fc, type: InnerProduct, bottom: data, top: fc,\n"
      "   inner_product_param: {num_output: 2, weight_filler: {type: kaiming}}}\n");
  CHECK_MESSAGE(
      msg.find("unknown value 'kaiming' (did you mean 'msra'? crema uses Caffe's names)") != std::string::npos, msg);
  // PyTorch's dim (torch.cat, softmax, flatten) is Caffe's axis.
  msg = net_error("- {name: s, type: Softmax, bottom: data, top: s, softmax_param: {dim: 1}}\n");
  CHECK_MESSAGE(msg.find("unknown key 'dim' (did you mean 'axis'? crema uses Caffe's names)") != std::string::npos,
                msg);
  // Beside Reshape's shape, a dim is Caffe's own written a level too high: not answered with axis.
  msg = net_error("- {name: r, type: Reshape, bottom: data, top: r, reshape_param: {dim: [0, -1]}}\n");
  CHECK_MESSAGE(msg.find("reshape_param.dim: 'dim' belongs inside shape: write reshape_param: {shape: {dim: [...]}}") !=
                    std::string::npos,
                msg);
  CHECK_MESSAGE(msg.find("axis") == std::string::npos, msg);
  // ceil_mode's answer says that the two defaults differ.
  msg = net_error(
      "- {name: p, type: Pooling, bottom: data, top: p,\n"
      "   pooling_param: {pool: MAX, kernel_size: 2, stride: 2, ceil_mode: false}}\n");
  CHECK_MESSAGE(
      msg.find("unknown key 'ceil_mode' (did you mean 'round_mode'? crema uses Caffe's names; round_mode: "
               "FLOOR is PyTorch's default (ceil_mode false), CEIL is Caffe's and crema's)") != std::string::npos,
      msg);
  // A required key at the layer's level, or in another type's block, is said at its line
  // (it was "required key 'num_output' is missing" at the layer).
  msg = net_error("- {name: fc, type: InnerProduct, bottom: data, top: fc,\n   num_output: 10}\n");
  CHECK_MESSAGE(starts_with(msg,
                            "net.yaml:8:4: layer[1].num_output: 'num_output' belongs inside the layer's "
                            "inner_product_param: write inner_product_param: {num_output: …}"),
                msg);
  msg = net_error("- {name: fc, type: InnerProduct, bottom: data, top: fc,\n   convolution_param: {num_output: 10}}\n");
  CHECK_MESSAGE(starts_with(msg,
                            "net.yaml:8:4: layer[1].convolution_param: this layer reads its parameters from "
                            "inner_product_param, not convolution_param"),
                msg);
  // An optional key beside the type, as PyTorch's keyword arguments are written (it was "unknown key 'stride'").
  msg = net_error(
      "- {name: c, type: Convolution, bottom: data, top: c,\n   stride: 2, convolution_param: {num_output: 2, "
      "kernel_size: 1}}\n");
  CHECK_MESSAGE(starts_with(msg,
                            "net.yaml:8:4: layer[1].stride: 'stride' belongs inside the layer's convolution_param: "
                            "write convolution_param: {stride: …} (at the layer's level it is not read)"),
                msg);
  // A required one that another check finds missing (kernel_size, or kernel_h and kernel_w): at its line,
  // not at the block's (it was "convolution_param.kernel_size: required key … is missing").
  msg = net_error(
      "- {name: c, type: Convolution, bottom: data, top: c,\n   kernel_size: 1, convolution_param: {num_output: 2}}\n");
  CHECK_MESSAGE(starts_with(msg,
                            "net.yaml:8:4: layer[1].kernel_size: 'kernel_size' belongs inside the layer's "
                            "convolution_param"),
                msg);
  msg = net_error(
      "- {name: c, type: Convolution, bottom: data, top: c,\n   kernel_size: 1, convolution_param: {num_output: 2, "
      "kernel_size: 1}}\n");
  CHECK_MESSAGE(starts_with(msg,
                            "net.yaml:8:4: layer[1].kernel_size: 'kernel_size' is given twice: here, at the "
                            "layer's level, where it is not read, and inside convolution_param; leave this one "
                            "out"),
                msg);
  // A data layer's transform key is said to belong in transform_param, not in the legacy place that
  // image_data_param still refuses it from.
  msg = net_error(
      "- {name: d2, type: ImageData, top: [d2, l2],\n   mirror: true, image_data_param: {source: x.txt, "
      "batch_size: 1}}\n");
  CHECK_MESSAGE(starts_with(msg, "net.yaml:8:4: layer[1].mirror: 'mirror' belongs inside the layer's transform_param"),
                msg);
  // And the other way round: the layer's own key inside its block.
  msg = net_error(
      "- {name: fc, type: InnerProduct, bottom: data, top: fc, inner_product_param: {num_output: 2}}\n"
      "- {name: l, type: SoftmaxWithLoss, bottom: [fc, fc], top: l,\n   loss_param: {loss_weight: 0.5}}\n");
  CHECK_MESSAGE(starts_with(msg,
                            "net.yaml:9:17: layer[2].loss_param.loss_weight: 'loss_weight' is a key of the "
                            "layer itself, not of loss_param: write it beside type"),
                msg);
  // Layers written as a map of named maps (a one-layer prototxt's `layer { }` is a map too).
  test::TempDir dir;
  test::write_file(dir / "dict.yaml",
                   "name: n\nlayer:\n  in: {type: Input, top: data, input_param: {shape: {dim: [1]}}}\n"
                   "  fc: {type: InnerProduct, bottom: data, top: fc}\n");
  msg = config_error([&] { NetSpec::parse(*io::load_net_config(dir / "dict.yaml")); });
  CHECK_MESSAGE(msg.find("dict.yaml:3:3: layer[0].in: 'in' holds a map with 'type' in it where the keys belong one "
                         "level up: is 'in' meant as a name? Write name: in beside the other keys instead (a net's "
                         "layers are a list: - {name: in, type: …})") != std::string::npos,
                msg);
  // A solver's lr: at its line, with the name (it was "required key 'base_lr' is missing" at 1:1).
  msg = config_error([&] { SolverSpec::parse(io::parse_yaml(kSolverNet + "lr: 0.1\nmax_iter: 1\n", "s.yaml")); });
  CHECK_MESSAGE(starts_with(msg, "s.yaml:4:1: lr: unknown key 'lr' (did you mean 'base_lr'? crema uses Caffe's names)"),
                msg);
}

TEST_CASE("config: a solver read as a net is said to be one") {
  const std::string msg =
      config_error([&] { NetSpec::parse(io::parse_yaml("net: lenet.yaml\nbase_lr: 0.1\nmax_iter: 1\n", "s.yaml")); });
  CHECK_MESSAGE(msg.find("layer: a net needs a 'layer' list; this looks like a solver (it has net): give the net file "
                         "here, or the solver to crema train") != std::string::npos,
                msg);
}

TEST_CASE("config: two data layers making one blob without include rules are pointed at include") {
  const std::string msg = config_error([&] {
    build_net(
        "name: n\n"
        "layer:\n"
        "- {name: train_data, type: DummyData, top: data, dummy_data_param: {shape: {dim: [2, 3]}}}\n"
        "- {name: test_data, type: DummyData, top: data, dummy_data_param: {shape: {dim: [2, 3]}}}\n");
  });
  CHECK_MESSAGE(msg.find("top 'data' is already produced by another layer; only in-place layers (bottom == top) may "
                         "reuse a blob name; if layer 'train_data' is for one phase and this one for the other, give "
                         "each an include rule: include: {phase: TRAIN} on one, include: {phase: TEST} on the "
                         "other") != std::string::npos,
                msg);
}

TEST_CASE("config: an in-place layer after another reader of its blob is told to move above it") {
  const std::string msg = config_error([&] {
    build_net(kHead +
              "- {name: pool, type: Pooling, bottom: data, top: pool, pooling_param: {pool: MAX, kernel_size: 2}}\n"
              "- {name: relu, type: ReLU, bottom: data, top: data}\n");
  });
  CHECK_MESSAGE(starts_with(msg,
                            "net.yaml:8:47: layer[2] (relu).top: this layer works in place on 'data', but 'pool' "
                            "reads 'data' before it"),
                msg);
  CHECK(msg.find("move it above that layer, or give it a top of its own") != std::string::npos);
  // Above its reader it is in place as usual.
  CHECK_NOTHROW(build_net(kHead + "- {name: relu, type: ReLU, bottom: data, top: data}\n"
                                  "- {name: pool, type: Pooling, bottom: data, top: pool, pooling_param: {pool: MAX, "
                                  "kernel_size: 2}}\n"));
  // Where the only earlier use is the blob's own loss_weight, that is what is said.
  const std::string weighted = config_error([&] {
    build_net(kHead +
              "- {name: p, type: Pooling, bottom: data, top: pool, loss_weight: 1, pooling_param: {pool: MAX, "
              "kernel_size: 2}}\n"
              "- {name: relu, type: ReLU, bottom: pool, top: pool}\n");
  });
  CHECK_MESSAGE(weighted.find("this layer works in place on 'pool', which has a loss_weight where it is made") !=
                    std::string::npos,
                weighted);
}

TEST_CASE("config: a loss_weight on a layer without a gradient is refused") {
  CHECK(config_error([&] {
          build_net(kHead + "- {name: t, type: Threshold, bottom: data, top: t, loss_weight: 1}\n");
        }).find("(t): loss_weight on a Threshold layer: its output is piecewise constant") != std::string::npos);
  CHECK(config_error([&] {
          build_net(kHead + "- {name: m, type: ArgMax, bottom: data, top: m, loss_weight: 1}\n");
        }).find("(m): loss_weight on an ArgMax layer") != std::string::npos);
  // 0, as a monitor's, is no loss.
  CHECK_NOTHROW(build_net(kHead + "- {name: m, type: ArgMax, bottom: data, top: m, loss_weight: 0}\n"));
  // Read by another layer too, the top hands its weight to the split inserted for the readers.
  CHECK(config_error([&] {
          build_net(kHead +
                    "- {name: t, type: Threshold, bottom: data, top: t, loss_weight: 1}\n"
                    "- {name: r, type: ReLU, bottom: t, top: r}\n");
        }).find("(t): loss_weight on a Threshold layer") != std::string::npos);
  // A TEST net runs no backward: there the weighted value only joins the logged loss, as in Caffe.
  CHECK_NOTHROW(build_net(kHead + "- {name: t, type: Threshold, bottom: data, top: t, loss_weight: 1}\n",
                          NetState{Phase::TEST, 0, {}}));
}

TEST_CASE("config: a list written without brackets or commas is said to be one name") {
  std::string msg = config_error([&] {
    build_net(kHead +
              "- {name: p, type: Pooling, bottom: data, top: pool, pooling_param: {pool: MAX, kernel_size: 2}}\n"
              "- name: c\n  type: Concat\n  bottom: data, pool\n  top: c\n");
  });
  CHECK_MESSAGE(msg.find("bottom 'data, pool' is not produced by any earlier layer in the TRAIN net; 'data, pool' is "
                         "one name: write a list of bottoms as [data, pool]") != std::string::npos,
                msg);
  msg = config_error([&] {
    build_net(
        "name: n\nlayer:\n- {name: d, type: DummyData, top: [data label], dummy_data_param: {shape: {dim: [2, "
        "3]}}}\n- {name: r, type: ReLU, bottom: data, top: r}\n");
  });
  CHECK_MESSAGE(msg.find("bottom 'data' is not produced by any earlier layer in the TRAIN net; a top is named 'data "
                         "label', one name: a list of tops needs commas, [data, label]") != std::string::npos,
                msg);
  // lr_mult beside the type belongs in param.
  msg = config_error([&] { build_net(kHead + "- {name: r, type: ReLU, bottom: data, top: r, lr_mult: 0}\n"); });
  CHECK_MESSAGE(msg.find("'lr_mult' belongs in the layer's param list, one entry per parameter blob (weights, then "
                         "bias): write param: [{lr_mult: …}, {lr_mult: …}]") != std::string::npos,
                msg);
  // Swapped bottoms of an Accuracy beside a loss: the label is named as written, not as the copy
  // the inserted split gives it (label_d_1_split_0).
  msg = config_error([&] {
    build_net(
        "name: n\nlayer:\n- {name: d, type: DummyData, top: [data, label], dummy_data_param: {shape: [{dim: [4, "
        "3]}, {dim: [4]}]}}\n- {name: ip, type: InnerProduct, bottom: data, top: ip, inner_product_param: "
        "{num_output: 2}}\n- {name: acc, type: Accuracy, bottom: [label, ip], top: acc}\n- {name: loss, type: "
        "SoftmaxWithLoss, bottom: [ip, label], top: loss}\n");
  });
  CHECK_MESSAGE(msg.find("the scores, bottom 0 (label) of shape 4 (4), have no axis 1") != std::string::npos, msg);
  // V1's blobs_lr in a current-format layer (only a V1 `layers` net is upgraded).
  msg = config_error([&] { build_net(kHead + "- {name: r, type: ReLU, bottom: data, top: r, blobs_lr: 1}\n"); });
  CHECK_MESSAGE(
      msg.find("'blobs_lr' is the V1 format's (layers { … }); in a layer { … } it is lr_mult in the param "
               "list, one entry per parameter blob: param { lr_mult: 1 } param { lr_mult: 2 }") != std::string::npos,
      msg);
}

TEST_CASE("config: a top this net's data layer lacks, which its other-phase twin has, is said to be missing there") {
  const std::string msg = config_error([&] {
    build_net(
        "name: n\n"
        "layer:\n"
        "- {name: train_data, type: DummyData, top: data, include: {phase: TRAIN},\n"  // 3
        "   dummy_data_param: {shape: {dim: [2, 3]}}}\n"
        "- {name: test_data, type: DummyData, top: [data, label], include: {phase: TEST},\n"  // 5
        "   dummy_data_param: {shape: [{dim: [2, 3]}, {dim: [2]}]}}\n"
        "- {name: ip, type: InnerProduct, bottom: data, top: ip, inner_product_param: {num_output: 2}}\n"
        "- {name: loss, type: SoftmaxWithLoss, bottom: [ip, label], top: loss}\n");
  });
  CHECK_MESSAGE(msg.find("layer 'test_data' (net.yaml:5:3) makes it, but its include/exclude rules leave it out of "
                         "this net") != std::string::npos,
                msg);
  CHECK_MESSAGE(msg.find("; this net's layer 'train_data' (net.yaml:3:3) makes 'data' as that one does, but not "
                         "'label': if this net should have it, add it to that layer's tops") != std::string::npos,
                msg);
}

TEST_CASE("config: a data layer given another data layer's source (by its contents) names the layer that reads it") {
  test::TempDir dir;
  test::write_file(dir / "list.txt", "img/a.png 0\nimg/b.png 1\n");
  test::write_file(dir / "a.h5", std::string("\x89HDF\r\n\x1a\n", 8) + std::string(64, '\0'));
  test::write_file(dir / "images", std::string("\0\0\x08\x03\0\0\0\x01", 8) + std::string(16, '\0'));
  std::filesystem::create_directories(dir / "db");
  test::write_file(dir / "db/data.mdb", "");
  std::filesystem::create_directories(dir / "empty");
  const auto refusal = [&](const std::string& type, const std::string& key, const std::string& source) {
    return config_error([&] {
      build_net("name: n\nlayer:\n- name: d\n  type: " + type + "\n  top: [data, label]\n  " + key + ": {source: '" +
                source + "', batch_size: 2}\n");
    });
  };
  const auto says = [](const std::string& msg, const std::string& part) {
    CHECK_MESSAGE(msg.find(part) != std::string::npos, msg);
  };
  // An image list given to Data was told to set data_param.label_source (no 'images-idx3' in its name).
  says(refusal("Data", "data_param", dir / "list.txt"),
       "data_param.source: '" + dir / "list.txt" +
           "' is a text file: an image list ('path label' lines) is an ImageData layer's source "
           "(image_data_param.source), or make an LMDB of it with crema convert-imageset; a Data layer reads an LMDB "
           "database or an IDX images file");
  says(refusal("Data", "data_param", dir / "a.h5"),
       "' is an HDF5 file: an HDF5Data layer reads it, listed in a text file (hdf5_data_param.source names the list)");
  says(refusal("Data", "data_param", dir / "empty"),
       "' is a folder with no LMDB database in it (no data.mdb): a folder of class folders of images is an ImageData "
       "layer's source (image_data_param.source)");
  // An LMDB given to ImageData was "a folder of class folders" or "has no sub-folders".
  says(refusal("ImageData", "image_data_param", dir / "db"),
       "image_data_param.source: '" + dir / "db" +
           "' is an LMDB database: a Data layer reads it (data_param.source); an ImageData layer reads a text file "
           "listing images with their labels, or a folder of class folders");
  says(refusal("ImageData", "image_data_param", dir / "images"), "' is an IDX file: a Data layer reads it");
  says(refusal("HDF5Data", "hdf5_data_param", dir / "db"), "an HDF5Data layer reads a text file listing HDF5 files");
  // An image list given to HDF5Data: its first line is no HDF5 file, and reads as an image list's.
  says(refusal("HDF5Data", "hdf5_data_param", dir / "list.txt"),
       "list.txt:1: HDF5 file 'img/a.png 0' does not exist; the line reads as an image list's (a path and a label): "
       "HDF5Data's source lists HDF5 files, and an image list is an ImageData layer's source");
}

TEST_CASE("config: an IDX labels file given as a Data layer's source is said to be one") {
  const std::string msg = config_error([&] {
    build_net(
        "name: n\nlayer:\n- name: d\n  type: Data\n  top: [data, label]\n"
        "  data_param: {source: /somewhere/train-labels-idx1-ubyte.gz, batch_size: 2}\n");
  });
  CHECK_MESSAGE(msg.find("data_param.source: '/somewhere/train-labels-idx1-ubyte.gz' is a labels file (by its name); "
                         "data_param.source takes the images file") != std::string::npos,
                msg);
}

TEST_CASE("config: an IDX source whose name does not give its labels file is said at its key, or missing") {
  test::TempDir dir;
  test::write_file(dir / "images.gz", std::string("\x1f\x8b\x08\x00\x00\x00\x00\x00", 8));  // gzip's header
  const auto refusal = [&](const std::string& source) {
    return config_error([&] {
      build_net("name: n\nlayer:\n- name: d\n  type: Data\n  top: [data, label]\n  data_param: {source: " + source +
                ", batch_size: 2}\n");
    });
  };
  std::string msg = refusal(dir / "images.gz");
  CHECK_MESSAGE(
      msg.find(":6:24: layer[0] (d): data_param.source: cannot derive the labels file from '" + (dir / "images.gz") +
               "' (no 'images-idx3' in its name); set data_param.label_source") != std::string::npos,
      msg);
  // A source that is not there at all was told to set label_source.
  msg = refusal(dir / "nothere.gz");
  CHECK_MESSAGE(
      msg.find("data_param.source: '" + (dir / "nothere.gz") +
               "' does not exist; give an LMDB database (a folder) or an IDX images file") != std::string::npos,
      msg);
  CHECK(msg.find("label_source") == std::string::npos);
}

TEST_CASE("config: a missing relative source says where it was looked for, and names the file beside the config") {
  test::TempDir dir;
  std::filesystem::create_directories(dir / "data");
  test::write_toy_idx(dir / "data", "train", 4, 1);
  test::write_file(dir / "net.yaml",
                   "name: n\nlayer:\n- name: d\n  type: Data\n  top: [data, label]\n"
                   "  data_param: {source: data/train-images-idx3-ubyte, batch_size: 2}\n");
  const std::string msg = config_error([&] {
    const auto root = io::load_net_config(dir / "net.yaml");  // the spec points into it
    const NetSpec spec = NetSpec::parse(*root);
    Context ctx(1);
    Net net(spec, NetState{Phase::TRAIN, 0, {}}, ctx, true);
  });
  CHECK_MESSAGE(
      msg.find(":6:24: layer[0] (d): data_param.source: 'data/train-images-idx3-ubyte' does not exist; give an LMDB "
               "database (a folder) or an IDX images file (a relative source") != std::string::npos,
      msg);
  CHECK_MESSAGE(
      msg.find("(a relative source is read from the working directory, " + std::filesystem::current_path().string() +
               ", as in Caffe; '" + dir / "data/train-images-idx3-ubyte" +
               "' exists beside the config: run from there, or write that "
               "path)") != std::string::npos,
      msg);
  // A mean_file the same way, at its own key.
  test::write_file(dir / "data/mean.binaryproto", "");
  test::write_file(dir / "net.yaml",
                   "name: n\nlayer:\n- name: d\n  type: Data\n  top: [data, label]\n"
                   "  transform_param: {mean_file: data/mean.binaryproto}\n"
                   "  data_param: {source: " +
                       (dir / "data/train-images-idx3-ubyte") + ", batch_size: 2}\n");
  const std::string mean = config_error([&] {
    const auto root = io::load_net_config(dir / "net.yaml");
    const NetSpec spec = NetSpec::parse(*root);
    Context ctx(1);
    Net net(spec, NetState{Phase::TRAIN, 0, {}}, ctx, true);
  });
  CHECK_MESSAGE(mean.find(":6:32: layer[0] (d): transform_param.mean_file: cannot open 'data/mean.binaryproto'") !=
                    std::string::npos,
                mean);
  CHECK_MESSAGE(mean.find("(a relative mean_file is read from the working directory, " +
                          std::filesystem::current_path().string() + ", as in Caffe; '" +
                          dir / "data/mean.binaryproto" + "' exists beside the config") != std::string::npos,
                mean);
}

TEST_CASE(
    "config: two layers of one name told apart by phase: instead of include are told how to keep each to its net") {
  const std::string msg = config_error([&] {
    build_net(
        "name: n\nlayer:\n"
        "- {name: d, type: Input, top: data, phase: TRAIN, input_param: {shape: {dim: [1]}}}\n"
        "- {name: d, type: Input, top: data, phase: TEST, input_param: {shape: {dim: [1]}}}\n");
  });
  CHECK_MESSAGE(
      msg.find("duplicate layer name 'd' (also at net.yaml:3:3); layer names must be unique within a TRAIN "
               "net (a layer's phase: sets the phase it runs in, not the net it is in: to keep a layer to one "
               "net, write include: {phase: TRAIN} or include: {phase: TEST})") != std::string::npos,
      msg);
}
