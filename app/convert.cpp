#include "app/convert.hpp"

#include <spdlog/fmt/ranges.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <vector>

#include "app/commands.hpp"
#include "engine/context.hpp"
#include "engine/error.hpp"
#include "engine/net.hpp"
#include "engine/solver.hpp"
#include "io/caffe_binary.hpp"
#include "io/caffe_upgrade.hpp"
#include "io/checkpoint.hpp"
#include "io/dot.hpp"
#include "io/files.hpp"
#include "io/job_config.hpp"
#include "io/lmdb.hpp"
#include "io/onnx.hpp"
#include "io/prototxt.hpp"
#include "io/yaml_config.hpp"

namespace crema::app {

namespace fs = std::filesystem;

namespace {

// What convert can read, told apart by content as --weights is: Caffe users name
// binary and HDF5 weights alike (.caffemodel), and rename files.
enum class InputKind { Config, BinaryWeights, Hdf5 };

InputKind input_kind(const std::string& path) {
  std::error_code ec;
  // A pipe (<(generate_net)) cannot be read twice: a config, as the loaders take it.
  if (fs::exists(path, ec) && !fs::is_regular_file(path, ec)) return InputKind::Config;
  if (io::has_hdf5_signature(path)) return InputKind::Hdf5;
  return io::looks_like_text(path) ? InputKind::Config : InputKind::BinaryWeights;
}

ConfigError input_error(const std::string& input, const std::string& message) {
  Mark where;
  where.file = std::make_shared<const std::string>(input);
  return ConfigError(where, "", message);
}

// Binary .caffemodel → Caffe's HDF5 layout, in the shapes Caffe's net gives the blobs (the
// reader turns old files' legacy 4-D shapes of InnerProduct and convolution blobs into
// those; others stay as stored, and load into nets right-aligned).
int convert_weights(const ConvertOptions& opt) {
  if (!io::ends_with_nocase(opt.output, ".h5"))
    throw ConfigError(Mark{}, "--output",
                      "'" + opt.input +
                          "' is binary, not a net or solver in text, so convert reads it as Caffe weights, which "
                          "convert to HDF5 only: name the output .caffemodel.h5 (got '" +
                          opt.output + "')");
  const io::Weights weights = io::load_weights(opt.input);
  io::save_weights(weights, opt.output);
  size_t blobs = 0;
  for (const auto& lw : weights) blobs += lw.blobs.size();
  spdlog::info("Wrote {} layers ({} parameter blobs) from {} to {}", weights.size(), blobs, opt.input, opt.output);
  return 0;
}

// A solver's `net: path` as it should be written into `output`: unchanged when the output
// is in the input's folder (the path resolves from it as from the input: a Caffe solver's
// path, from Caffe's root as the working directory, still works for Caffe) or when it names
// the same file from the output's folder (or is absolute), else relative to that folder
// (where crema looks first). `found` is the net file the input solver names. Not from the
// working directory, crema's other place to look: a solver written elsewhere is run from
// elsewhere.
std::string net_path_for_output(const std::string& written, const std::string& found, const std::string& input,
                                const std::string& output) {
  std::error_code ec;
  const fs::path out_dir = fs::absolute(fs::path(output), ec).parent_path();
  if (fs::equivalent(fs::absolute(fs::path(input), ec).parent_path(), out_dir, ec)) return written;
  const fs::path as_written(written);
  if (fs::equivalent(as_written.is_absolute() ? as_written : out_dir / as_written, found, ec)) return written;
  const fs::path relative = fs::relative(fs::absolute(found, ec), out_dir, ec);
  return ec || relative.empty() ? fs::absolute(found).string() : relative.string();
}

// Caffe's `weights` files of solver `root` (read from `input`) are found as its net is:
// rewritten for `output` the same way (one not found is kept as written; training says so
// at its line).
void rewrite_weights_paths(Node& root, const std::string& input, const std::string& output) {
  if (Node* weights = root.find("weights")) {
    std::vector<Node*> entries;
    if (weights->is_seq())
      for (Node& item : weights->items()) entries.push_back(&item);
    else
      entries.push_back(weights);
    for (Node* entry : entries) {
      const std::string written = entry->str();
      std::string rewritten;
      for (const std::string& part : split_commas(written)) {  // an entry may list several
        const auto found = part.empty() ? std::nullopt : io::find_beside_solver(part, input);
        rewritten += (found ? net_path_for_output(part, *found, input, output) : part) + ",";
      }
      rewritten.pop_back();  // the comma after the last piece
      if (rewritten == written) continue;
      *entry = Node::scalar(rewritten, entry->mark(), entry->path());
      spdlog::info("weights: '{}' is written as '{}', where the converted solver finds it", written, rewritten);
    }
  }
}

// A net's layers, checked as building the net does; a Caffe layer crema cannot run (a Python
// data layer, in FCN and Faster R-CNN nets) is written as it is, so that the converted net can
// be edited to replace it (its keys are Caffe's, which crema does not check).
void check_net_layers(const Node& net) {
  std::vector<const LayerSpec*> caffe_only;
  const NetSpec spec = NetSpec::parse(net);
  spec.check_layer_params(nullptr, &caffe_only);
  for (const LayerSpec* layer : caffe_only)
    spdlog::warn("layer '{}' ({}) is written as it is, but crema cannot build it: {}; replace it before training",
                 layer->name, layer->type, LayerRegistry::caffe_only(layer->type));
  // A bottom no earlier layer makes: the file is converted as written, but no net builds from
  // it. Said when no net the layer is in (TRAIN, TEST) has the blob before it: a net of one
  // phase only (a train.prototxt without a TEST data layer) is not taken for a mistake.
  struct Reading {
    std::vector<const char*> phases;  // the nets the layer is in without the blob
    std::vector<std::string> made;    // the blobs made before it, in the first of them
    bool found = false;               // some net the layer is in has the blob
  };
  std::map<std::pair<size_t, std::string>, Reading> reads;
  // A blob a layer makes under some stage or level (a deploy Input) may be there when the net
  // is built with --stage/--level: not taken for a missing one.
  std::set<std::string> staged_tops;
  for (const LayerSpec& layer : spec.layers) {
    bool staged = false;
    for (const auto* rules : {&layer.include, &layer.exclude})
      for (const NetStateRule& r : *rules)
        staged |= !r.stage.empty() || !r.not_stage.empty() || r.min_level || r.max_level;
    if (staged) staged_tops.insert(layer.top.begin(), layer.top.end());
  }
  for (const Phase phase : {Phase::TRAIN, Phase::TEST}) {
    const NetState state = spec.state_for(phase);
    std::set<std::string> made;
    for (size_t i = 0; i < spec.layers.size(); ++i) {
      const LayerSpec& layer = spec.layers[i];
      if (!layer_included(layer, state)) continue;
      for (const std::string& b : layer.bottom) {
        Reading& r = reads[{i, b}];
        if (made.count(b)) {
          r.found = true;
        } else {
          if (r.phases.empty()) r.made.assign(made.begin(), made.end());
          r.phases.push_back(phase_name(phase));
        }
      }
      made.insert(layer.top.begin(), layer.top.end());
    }
  }
  for (const auto& [at, r] : reads)
    if (!r.found && !staged_tops.count(at.second))
      spdlog::warn(
          "layer '{}' reads '{}', which no earlier layer of the {} net makes{}: the net is written as it "
          "is, but will not build; fix the name or add the layer that makes it",
          spec.layers[at.first].name, at.second, fmt::join(r.phases, " or "), did_you_mean(at.second, r.made));
}

// The upgraded solver `root` (read from `input`), checked as `crema train` reads it:
// its keys, and its net's layers when the net is inline or its file is found. A `net:`
// path is rewritten so that the converted solver finds the net from `output`.
void check_solver(Node& root, const std::string& input, const std::string& output) {
  io::reject_split_nets(root);
  rewrite_weights_paths(root, input, output);
  Node checked = root;
  std::string rewritten_note;  // said once the solver has passed
  Node* net = checked.find("net");
  if (net && net->is_scalar()) {
    const std::string written = net->str();
    std::string looked;
    const auto found = io::find_beside_solver(written, input, &looked);
    if (!found) {
      spdlog::warn(
          "{}: net file '{}' not found (looked for {}): its layers are not checked, and the converted solver "
          "names it as written",
          input, written, looked);
      *net = Node::map(net->mark(), "net");  // the solver's own keys are still checked
      SolverSpec::parse(checked);
      return;
    }
    // The net file is an input too: a solver written over it leaves no net to train.
    if (std::error_code ec; fs::equivalent(*found, output, ec))
      throw ConfigError(Mark{}, "--output",
                        "'" + output + "' is the net file the solver names (net: " + written +
                            "), which the output would replace; give the output a name of its own");
    *net = io::load_net_file(*found);
    net->set_path("net");
    const std::string rewritten = net_path_for_output(written, *found, input, output);
    if (rewritten != written) {
      Node* original = root.find("net");
      *original = Node::scalar(rewritten, original->mark(), original->path());
      rewritten_note = "net: '" + written + "' is written as '" + rewritten + "', where the converted solver finds it";
    }
  }
  const SolverSpec spec = SolverSpec::parse(checked);
  check_net_layers(*spec.net);
  if (!rewritten_note.empty()) spdlog::info("{}", rewritten_note);
}

[[noreturn]] void refuse_replacing(const std::string& output, const std::string& why) {
  throw ConfigError(Mark{}, "--output",
                    "'" + output + "' exists and " + why + ": the conversion would replace it; remove it first, or " +
                        "give the output another name");
}

// An existing output is replaced when it is what this conversion writes: a config of the
// same kind (net or solver) without comments, as an earlier run of it left it. Anything
// else there (a solver where a net goes, notes in comments, another file) was written by
// someone, and would be lost.
void refuse_replacing_written(const std::string& output, bool solver) {
  std::error_code ec;
  if (!fs::is_regular_file(output, ec) || fs::file_size(output, ec) == 0) return;
  std::string why;
  try {
    const Node there = io::load_config_file(output);
    std::istringstream lines(io::read_file_bytes(output));
    bool comments = false;
    for (std::string line; !comments && std::getline(lines, line);) {
      const size_t first = line.find_first_not_of(" \t");
      comments = first != std::string::npos && line[first] == '#';
    }
    if (!there.is_map())
      why = "is no net or solver";
    else if (io::is_solver_message(there) != solver)
      why = std::string("holds a ") + (solver ? "net" : "solver");
    else if (comments)
      why = "holds comments";  // a conversion writes none
  } catch (const Error&) {
    why = "is no config crema reads";
  }
  if (!why.empty()) refuse_replacing(output, why);
}

// An ONNX model or a graph replaces only an earlier one (a graph opens with `digraph`), not
// a file the name was given to by a slip.
void refuse_replacing_other_than(const std::string& output, bool graph) {
  std::error_code ec;
  if (!fs::is_regular_file(output, ec) || fs::file_size(output, ec) == 0) return;
  if (graph ? io::file_head(output, 8).starts_with("digraph") : io::is_onnx_model(output)) return;
  const std::string kind = io::what_is(output);
  refuse_replacing(
      output, std::string("is no ") + (graph ? "graph" : "ONNX model") + (kind.empty() ? "" : " (it is " + kind + ")"));
}

// What a prototxt for Caffe holds that Caffe cannot read, said once it is written: crema's
// own IDX backend (Caffe's DataParameter knows LEVELDB and LMDB, and takes LEVELDB when none
// is written), a solver's net named as a YAML file (Caffe parses `net` as prototxt), and the
// keys and values crema adds to Caffe's messages (BVLC Caffe 1.0's caffe.proto has none of
// them, and its parser stops at the first).
void warn_not_for_caffe(const Node& root, bool solver, const std::string& output) {
  std::vector<std::string> said;
  const Node* net = &root;
  const auto value_is = [](const Node* n, const char* value) { return n && n->is_scalar() && n->str() == value; };
  if (solver) {
    net = root.find("net");
    if (net && net->is_scalar() &&
        (io::ends_with_nocase(net->str(), ".yaml") || io::ends_with_nocase(net->str(), ".yml")))
      said.push_back("net: '" + net->str() + "' is a YAML file (convert it to .prototxt too, and name that)");
    for (const char* key : {"min_lr", "warmup_iter", "warmup_start_lr", "snapshot_keep", "metrics", "precision"})
      if (root.find(key)) said.push_back(std::string(key) + " is crema's");
    if (value_is(root.find("type"), "AdamW")) said.push_back("type: AdamW is crema's");
    if (value_is(root.find("lr_policy"), "cosine")) said.push_back("lr_policy: cosine is crema's");
  }
  const Node* layers = net && net->is_map() ? net->find("layer") : nullptr;
  std::vector<const Node*> each;
  if (layers && layers->is_seq())
    for (const Node& l : layers->items()) each.push_back(&l);
  else if (layers && layers->is_map())
    each.push_back(layers);
  for (const Node* l : each) {
    if (!l->is_map()) continue;
    const Node* name = l->find("name");
    const std::string layer = "layer '" + (name && name->is_scalar() ? name->str() : std::string("?")) + "'";
    // The data layers' reader keys, and the transform's std, are crema's.
    for (const char* block : {"data_param", "image_data_param", "hdf5_data_param"}) {
      const Node* params = l->find(block);
      if (!params || !params->is_map()) continue;
      for (const char* key : {"on_bad_sample", "threads"})
        if (params->find(key)) said.push_back(layer + " has " + block + "." + key + ", crema's");
      if (std::string_view(block) == "data_param" && params->find("shuffle"))
        said.push_back(layer + " has data_param.shuffle, crema's (Caffe's Data layer reads in key order)");
      if (std::string_view(block) != "data_param" && params->find("prefetch"))  // Caffe's Data has one
        said.push_back(layer + " has " + block + ".prefetch, crema's");
    }
    if (const Node* t = l->find("transform_param"); t && t->is_map() && t->find("std"))
      said.push_back(layer + " has transform_param.std, crema's");
    const Node* data = l->find("data_param");
    if (!data || !data->is_map()) continue;
    const Node* backend = data->find("backend");
    const Node* source = data->find("source");
    std::error_code ec;
    // Without a backend crema tells by the source, and Caffe takes LEVELDB.
    const bool found = !backend && source && source->is_scalar() && fs::exists(source->str(), ec);
    // IDX data is a file; LMDB and LevelDB are folders.
    if ((backend && backend->is_scalar() && backend->str() == "IDX") ||
        (found && fs::is_regular_file(source->str(), ec)))
      said.push_back(layer +
                     " reads IDX files, which Caffe's Data layer does not (LMDB or LEVELDB: crema convert-imageset "
                     "writes an LMDB)");
    else if (found && io::is_lmdb(source->str()))
      said.push_back(layer + " has no backend, which Caffe takes as LEVELDB: write backend: LMDB");
  }
  said.erase(std::unique(said.begin(), said.end()), said.end());  // a TRAIN and a TEST layer of one name
  if (!said.empty())
    spdlog::warn("{}: Caffe cannot read it as written, crema can: {}", output,
                 fmt::format("{}", fmt::join(said, "; ")));
}

int convert_config(const ConvertOptions& opt) {
  const auto format = io::config_format_for(opt.output);
  if (!format) {
    Mark where;
    where.file = std::make_shared<const std::string>(opt.output);
    throw ConfigError(where, "",
                      "cannot tell the output format from the file name; name it .yaml (or .yml) for YAML or "
                      ".prototxt (or .pt) for Caffe's text format");
  }
  Node root = io::load_config_file(opt.input);
  if (!root.is_map()) root.fail("expected a net or a solver: a map of keys");
  const bool solver = io::is_solver_message(root);
  const std::vector<std::string> notes = solver ? io::upgrade_solver(root) : io::upgrade_net(root);
  // A file crema would refuse to train is refused here, where its mistakes still
  // have the input's line numbers.
  if (solver) {
    check_solver(root, opt.input, opt.output);
  } else {
    check_net_layers(root);
  }
  refuse_replacing_written(opt.output, solver);
  const std::string text =
      *format == io::ConfigFormat::Yaml ? io::to_yaml(root) : io::to_prototxt(io::caffe_text_layout(root));
  io::write_file_atomically(opt.output, text);
  std::string upgraded;
  for (const auto& n : notes) upgraded += (upgraded.empty() ? " (upgraded: " : "; ") + n;
  if (!upgraded.empty()) upgraded += ")";
  spdlog::info("Wrote {} {} to {}{}", solver ? "solver" : "net", opt.input, opt.output, upgraded);
  if (*format == io::ConfigFormat::Prototxt) warn_not_for_caffe(root, solver, opt.output);
  return 0;
}

// A net (a deploy net, a training net, or a solver's) and its weights → an ONNX model.
int convert_onnx(const ConvertOptions& opt) {
  if (opt.weights.empty())
    throw ConfigError(Mark{}, "--weights", "an ONNX model carries its weights: give --weights W.caffemodel[.h5]");
  std::shared_ptr<Node> solver;
  auto root = io::load_net_config(opt.input, &solver, opt.overrides);
  const NetSpec spec = NetSpec::parse(*root);
  // A solver file's net in the state of its first test net, as `crema test` builds it.
  const NetState base = solver ? SolverSpec::parse(*solver).test_net_state(spec, 0) : spec.state_for(Phase::TEST);
  const NetState state = merged(base, NetStateSetting{std::nullopt, opt.level, opt.stages});
  if (const std::string unnamed = spec.stages_no_rule_names(opt.stages); !unnamed.empty())
    spdlog::warn("--stage: {}", unnamed);
  Context ctx(1701);
  Net net(spec, state, ctx, true);
  io::load_inference_weights(net, opt.weights);
  const io::OnnxModel model = io::save_onnx(net, opt.output, CREMA_VERSION);
  auto describe = [](const std::vector<io::OnnxTensor>& tensors) {
    std::string text;
    for (const auto& t : tensors) text += (text.empty() ? "" : ", ") + io::describe(t);
    return text;
  };
  std::string weights;
  for (const auto& w : opt.weights) weights += (weights.empty() ? "" : ", ") + w;
  spdlog::info("Wrote ONNX model {} (opset 17) from {} and {}: inputs {}; outputs {}", opt.output, opt.input, weights,
               describe(model.inputs), describe(model.outputs));
  if (!model.fixed_batch.empty()) spdlog::info("{}", model.fixed_batch);
  return 0;
}

// A net, or a solver's net, drawn as a Graphviz graph (io/dot.hpp), as draw_net.py.
int convert_dot(const ConvertOptions& opt) {
  const auto root = io::load_net_config(opt.input, nullptr, opt.overrides);
  check_net_layers(*root);  // a misspelt type or key drawn as written would look right
  const NetSpec spec = NetSpec::parse(*root);
  io::write_file_atomically(opt.output, io::to_dot(spec, opt.rankdir));
  spdlog::info("Wrote the graph of net '{}' ({} layers) to {}; draw it with: dot -Tpng {} -o net.png", spec.name,
               spec.layers.size(), opt.output, opt.output);
  return 0;
}

}  // namespace

int convert(const ConvertOptions& opt) {
  // Before the input is read and a net built, not after.
  if (auto problem = io::missing_folder(opt.output)) throw ConfigError(Mark{}, "--output", *problem);
  // The output replaces the input otherwise: its comments and layout gone for good.
  std::error_code ec;
  for (const std::string& input : [&] {
         std::vector<std::string> all = opt.weights;
         all.push_back(opt.input);
         return all;
       }())
    if (fs::equivalent(input, opt.output, ec))
      throw ConfigError(Mark{}, "--output",
                        "'" + opt.output + "' is also an input of this conversion ('" + input +
                            "'), which the output would replace; give the output a name of its own");
  const bool onnx = io::ends_with_nocase(opt.output, ".onnx");
  const bool graph = io::ends_with_nocase(opt.output, ".dot") || io::ends_with_nocase(opt.output, ".gv");
  if (opt.rankdir_given && !graph) throw ConfigError(Mark{}, "--rankdir", "--rankdir belongs to a graph (-o NET.dot)");
  // A graph draws every layer with its rules, and a converted config keeps them all.
  if (!onnx && (!opt.stages.empty() || opt.level))
    throw ConfigError(Mark{}, opt.stages.empty() ? "--level" : "--stage",
                      "--stage and --level pick the net exported to ONNX (-o MODEL.onnx); other outputs keep every "
                      "layer with its rules");
  if (onnx || graph) refuse_replacing_other_than(opt.output, graph);  // before weights are read and a net built
  const InputKind kind = input_kind(opt.input);
  if ((onnx || graph) && kind != InputKind::Config)
    throw input_error(opt.input, "these are weights, not a net: give the net's .prototxt or .yaml as the input" +
                                     std::string(onnx ? ", and the weights with --weights" : ""));
  if (onnx) {
    refuse_missing_weights(opt.weights);  // before the net is built
    return convert_onnx(opt);
  }
  if (!opt.weights.empty() || (!opt.overrides.empty() && !graph)) {
    const std::string option = !opt.weights.empty()                       ? "--weights"
                               : opt.overrides.front().rfind('~', 0) == 0 ? "--unset"  // io::apply_override
                                                                          : "--set";
    throw ConfigError(
        Mark{}, option,
        option + (opt.weights.empty() ? " belongs to an ONNX export (-o MODEL.onnx) or a graph (-o NET.dot)"
                                      : " belongs to an ONNX export (-o MODEL.onnx)"));
  }
  if (graph) return convert_dot(opt);
  switch (kind) {
    case InputKind::BinaryWeights:
      return convert_weights(opt);
    case InputKind::Hdf5:
      io::load_weights(opt.input);  // says so when it is a solver state or not weights at all
      throw input_error(opt.input,
                        "these weights are in Caffe's HDF5 layout already, which crema and Caffe read as they are; "
                        "convert turns a binary .caffemodel into it, or exports an ONNX model with -o MODEL.onnx "
                        "--weights " +
                            opt.input + " and the net as input");
    case InputKind::Config:
      break;
  }
  return convert_config(opt);
}

}  // namespace crema::app
