#include "app/convert.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>

#include "engine/context.hpp"
#include "engine/error.hpp"
#include "engine/net.hpp"
#include "engine/solver.hpp"
#include "io/caffe_upgrade.hpp"
#include "io/checkpoint.hpp"
#include "io/files.hpp"
#include "io/job_config.hpp"
#include "io/onnx.hpp"
#include "io/prototxt.hpp"
#include "io/yaml_config.hpp"

namespace crema::app {

namespace {

// What convert can read; it dispatches on this before opening the file.
enum class InputKind { Config, BinaryCaffemodel };

// Letter case aside, as config_format_for does (MODEL.ONNX, W.CAFFEMODEL.H5).
bool ends_with(const std::string& s, const std::string& suffix) {
  if (s.size() < suffix.size()) return false;
  return std::equal(suffix.begin(), suffix.end(), s.end() - static_cast<long>(suffix.size()), [](char a, char b) {
    return std::tolower(static_cast<unsigned char>(a)) == std::tolower(static_cast<unsigned char>(b));
  });
}

InputKind input_kind(const std::string& path) {
  return ends_with(path, ".caffemodel") ? InputKind::BinaryCaffemodel : InputKind::Config;
}

// Binary .caffemodel → Caffe's HDF5 layout, blob shapes as stored (legacy 4-D shapes
// stay 4-D; they load into nets right-aligned).
int convert_weights(const ConvertOptions& opt) {
  if (!ends_with(opt.output, ".h5"))
    throw ConfigError(Mark{}, "--output",
                      "weights convert to HDF5 only: name the output .caffemodel.h5 (got '" + opt.output + "')");
  const io::Weights weights = io::load_weights(opt.input);
  io::save_weights(weights, opt.output);
  size_t blobs = 0;
  for (const auto& lw : weights) blobs += lw.blobs.size();
  spdlog::info("Wrote {} layers ({} parameter blobs) from {} to {}", weights.size(), blobs, opt.input, opt.output);
  return 0;
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
  const std::string text =
      *format == io::ConfigFormat::Yaml ? io::to_yaml(root) : io::to_prototxt(io::caffe_text_layout(root));
  io::write_file_atomically(opt.output, text);
  std::string upgraded;
  for (const auto& n : notes) upgraded += (upgraded.empty() ? " (upgraded: " : "; ") + n;
  if (!upgraded.empty()) upgraded += ")";
  spdlog::info("Wrote {} {} to {}{}", solver ? "solver" : "net", opt.input, opt.output, upgraded);
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
  const NetState state = solver ? SolverSpec::parse(*solver).test_net_state(spec, 0) : spec.state_for(Phase::TEST);
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

}  // namespace

int convert(const ConvertOptions& opt) {
  // Before the input is read and a net built, not after.
  if (auto problem = io::missing_folder(opt.output)) throw ConfigError(Mark{}, "--output", *problem);
  if (ends_with(opt.output, ".onnx")) return convert_onnx(opt);
  if (!opt.weights.empty() || !opt.overrides.empty())
    throw ConfigError(Mark{}, opt.weights.empty() ? "--set" : "--weights",
                      "--weights and --set belong to an ONNX export (-o MODEL.onnx)");
  switch (input_kind(opt.input)) {
    case InputKind::BinaryCaffemodel:
      return convert_weights(opt);
    case InputKind::Config:
      break;
  }
  return convert_config(opt);
}

}  // namespace crema::app
