#include "app/convert.hpp"

#include <spdlog/spdlog.h>

#include <cerrno>
#include <cstring>
#include <fstream>

#include "engine/error.hpp"
#include "io/caffe_upgrade.hpp"
#include "io/checkpoint.hpp"
#include "io/job_config.hpp"
#include "io/prototxt.hpp"
#include "io/yaml_config.hpp"

namespace crema::app {

namespace {

// What convert can read; it dispatches on this before opening the file.
enum class InputKind { Config, BinaryCaffemodel };

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

InputKind input_kind(const std::string& path) {
  return ends_with(path, ".caffemodel") ? InputKind::BinaryCaffemodel : InputKind::Config;
}

// Binary .caffemodel → Caffe's HDF5 layout, blob shapes as stored (legacy 4-D shapes
// stay 4-D; they load into nets right-aligned).
int convert_weights(const ConvertOptions& opt) {
  if (!ends_with(opt.output, ".h5"))
    throw Error("weights convert to HDF5 only: name the output .caffemodel.h5 (got '" + opt.output + "')");
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
  io::write_atomically(opt.output, [&](const std::string& tmp) {
    std::ofstream out(tmp, std::ios::binary);
    out << text;
    out.flush();
    if (!out) throw Error("cannot write '" + opt.output + "': " + std::strerror(errno));
  });
  std::string upgraded;
  for (const auto& n : notes) upgraded += (upgraded.empty() ? " (upgraded: " : "; ") + n;
  if (!upgraded.empty()) upgraded += ")";
  spdlog::info("Wrote {} {} to {}{}", solver ? "solver" : "net", opt.input, opt.output, upgraded);
  return 0;
}

}  // namespace

int convert(const ConvertOptions& opt) {
  switch (input_kind(opt.input)) {
    case InputKind::BinaryCaffemodel:
      return convert_weights(opt);
    case InputKind::Config:
      break;
  }
  return convert_config(opt);
}

}  // namespace crema::app
