#include "app/data_tools.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>

#include "engine/context.hpp"
#include "engine/error.hpp"
#include "engine/net.hpp"
#include "io/checkpoint.hpp"
#include "io/files.hpp"
#include "io/image.hpp"
#include "io/job_config.hpp"
#include "layers/image_batch_layer.hpp"

namespace crema::app {

namespace {

namespace fs = std::filesystem;

Phase parse_phase(const std::string& phase) { return phase == "TEST" ? Phase::TEST : Phase::TRAIN; }

std::unique_ptr<Net> load_net(const std::string& model, const std::vector<std::string>& overrides,
                              const std::string& phase, Context& ctx) {
  auto root = io::load_net_config(model, nullptr, overrides);
  const NetSpec spec = NetSpec::parse(*root);
  const NetState state = spec.state_for(parse_phase(phase));
  spec.check_layer_params(&state);  // the keys of the other phase's layers too
  return std::make_unique<Net>(spec, state, ctx);
}

std::vector<int> data_layers(const Net& net, const std::string& model) {
  std::vector<int> out;
  for (int i = 0; i < net.num_layers(); ++i)
    if (net.layer(i).is_data()) out.push_back(i);
  if (out.empty()) throw ConfigError(Mark{}, "--model", "the net in '" + model + "' has no data layer in this phase");
  return out;
}

}  // namespace

int time_data(const DataTimeOptions& opt) {
  Context ctx(1701);
  auto net = load_net(opt.model, opt.overrides, opt.phase, ctx);
  using clock = std::chrono::steady_clock;
  std::vector<int> readers;  // Input layers read nothing: their values come from the caller
  for (int i : data_layers(*net, opt.model))
    if (std::string(net->layer(i).type()) != "Input") readers.push_back(i);
  if (readers.empty())
    throw ConfigError(Mark{}, "--model",
                      "the net in '" + opt.model + "' has no layer that reads data in phase " + opt.phase +
                          " (only Input layers, whose values come from the caller); time --data times Data, ImageData, "
                          "HDF5Data and DummyData layers, and plain `crema time` the whole net");
  for (int i : readers) {
    const int batch = net->top_vec(i).front()->shape(0);
    net->forward_layer(ctx, i);  // starts the readers
    const auto start = clock::now();
    for (int it = 0; it < opt.iterations; ++it) net->forward_layer(ctx, i);
    const double secs = std::chrono::duration<double>(clock::now() - start).count();
    const double samples = static_cast<double>(batch) * opt.iterations;
    spdlog::info("{:>16}\t{:.0f} samples/s ({} batches of {}, {:.3f} ms per batch; top {})", net->layer_name(i),
                 samples / secs, opt.iterations, batch, 1000 * secs / opt.iterations,
                 net->top_vec(i).front()->shape_string());
  }
  return 0;
}

int preview(const PreviewOptions& opt) {
  // The folder first, before the net and its data are opened.
  std::error_code ec;
  if (fs::exists(opt.out, ec) && !fs::is_directory(opt.out, ec))
    throw ConfigError(Mark{}, "--out",
                      "'" + opt.out + "' is a file, not a folder; give a folder for the sample images");
  Context ctx(1701);
  auto net = load_net(opt.model, opt.overrides, opt.phase, ctx);
  ImageBatchLayer* layer = nullptr;
  int index = -1;
  for (int i : data_layers(*net, opt.model))
    if ((layer = dynamic_cast<ImageBatchLayer*>(&net->layer(i)))) {
      index = i;
      break;
    }
  if (!layer)
    throw ConfigError(
        Mark{}, "--model",
        "the net in '" + opt.model + "' has no image data layer (Data or ImageData) to preview in phase " + opt.phase);
  const Blob& data = *net->top_vec(index).front();
  const Blob* label = net->top_vec(index).size() > 1 ? net->top_vec(index)[1] : nullptr;
  const int channels = data.shape(1);
  if (channels != 1 && channels != 3)
    throw Error("layer '" + net->layer_name(index) + "' gives " + std::to_string(channels) +
                " channels; a preview PNG needs 1 (grey) or 3 (colour)");
  const std::vector<std::string> classes = layer->class_names();
  layer->leave_mean_image_in();  // which, once crop and mirror have moved the pixels, cannot be added back
  if (fs::create_directories(opt.out, ec); ec)  // only now: a config error leaves no empty folder
    throw ConfigError(Mark{}, "--out", "cannot make the folder '" + opt.out + "': " + ec.message());
  io::ImageU8 image;
  image.channels = channels;
  if (const int64_t samples = layer->source_size(); samples > 0 && opt.count > samples)
    spdlog::warn(
        "--n {} is more than the {} samples of layer '{}': the preview goes round them {:.3g} times, writing "
        "each more than once (as transformed anew)",
        opt.count, samples, net->layer_name(index), static_cast<double>(opt.count) / static_cast<double>(samples));
  int written = 0;
  std::set<std::string> sizes;  // "HxW" of the samples written
  std::set<std::string> names;  // the files this preview wrote
  while (written < opt.count) {
    net->forward_layer(ctx, index);
    // Each batch's own: a layer of batch_size 1 may give each image at its size.
    image.height = data.shape(2), image.width = data.shape(3);
    image.data.resize(static_cast<size_t>(data.count(1)));
    sizes.insert(std::to_string(image.height) + "x" + std::to_string(image.width));
    for (int n = 0; n < data.shape(0) && written < opt.count; ++n, ++written) {
      layer->transformer().to_pixels(data.cpu_data() + static_cast<size_t>(n) * data.count(1), channels, image.height,
                                     image.width, image.data.data());
      // Zero-padded to the widest number, so that a file listing sorts them in order.
      std::string name = fmt::format("sample_{:0{}d}", written, std::to_string(opt.count - 1).size());
      if (label) {
        const int l = static_cast<int>(label->cpu_data()[n]);
        name += "_label_" + (l >= 0 && l < static_cast<int>(classes.size()) ? classes[static_cast<size_t>(l)]
                                                                             : std::to_string(l));
      }
      const std::string bytes = io::encode_image(image, "png");
      const std::string path = (fs::path(opt.out) / (name + ".png")).string();
      io::write_file_atomically(path, bytes);
      names.insert(name + ".png");
    }
  }
  // An earlier preview's samples (more of them, or other labels) would mix with these:
  // removed. Only files named as preview names them are touched.
  static const std::regex earlier(R"(sample_\d+(_label_.+)?\.png)");
  int removed = 0;
  for (const std::string& file : io::regular_file_names(opt.out)) {
    std::error_code ignored;  // a file that cannot be removed stays, as any other file there
    if (!names.count(file) && std::regex_match(file, earlier) && fs::remove(fs::path(opt.out) / file, ignored))
      ++removed;
  }
  if (removed > 0) spdlog::info("Removed {} sample file(s) of an earlier preview from {}", removed, opt.out);
  spdlog::info("Wrote {} samples ({}) of layer '{}' ({}) to {}", written,
               sizes.size() == 1 ? *sizes.begin() : std::to_string(sizes.size()) + " sizes", net->layer_name(index),
               opt.phase, opt.out);
  return 0;
}

std::string classes_path(const std::string& snapshot_prefix) { return snapshot_prefix + ".classes.txt"; }

void write_class_names(const Net& net, const std::string& snapshot_prefix) {
  for (int i = 0; i < net.num_layers(); ++i) {
    const std::vector<std::string> names = net.layer(i).class_names();
    if (names.empty()) continue;
    const std::string path = classes_path(snapshot_prefix);
    std::string text;
    for (const auto& n : names) text += n + '\n';
    io::write_file_atomically(path, text);
    spdlog::info("{} class names of layer '{}' written to {}", names.size(), net.layer_name(i), path);
    return;
  }
}

std::vector<std::string> read_class_names(const std::string& path, const std::string& option) {
  std::error_code ec;
  if (fs::is_directory(path, ec))  // an ifstream opens it and reads no line
    throw ConfigError(Mark{}, option, "'" + path + "' is a directory; give a text file with one class name per line");
  std::ifstream in(path);
  if (!in)
    throw ConfigError(Mark{}, option,
                      "cannot read the " + std::string(option == "--labels" ? "labels" : "classes") + " file '" + path +
                          "': " + std::strerror(errno));
  if (!io::looks_like_text(path))
    throw ConfigError(Mark{}, option,
                      "'" + path +
                          "' holds binary data (weights?), not class names; give a text file with one "
                          "class name per line");
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    lines.push_back(line);
  }
  while (!lines.empty() && lines.back().empty()) lines.pop_back();  // blank lines at the end name no class
  return lines;
}

void refuse_other_classes(const Net& net, const std::vector<std::string>& trained, const std::string& trained_origin) {
  // With several image folders (a multi-task net) which one `trained` belongs to is not known.
  int folders = 0;
  for (int i = 0; i < net.num_layers(); ++i) folders += !net.layer(i).class_names().empty();
  for (int i = 0; folders == 1 && i < net.num_layers(); ++i) {
    const std::vector<std::string> names = net.layer(i).class_names();
    if (names.empty() || names == trained) continue;
    const LayerSpec& spec = net.layer(i).spec();
    const Node* param = spec.config ? spec.config->find("image_data_param") : nullptr;
    const Node* source = param ? param->find("source") : nullptr;
    const std::string folder = source && source->is_scalar() ? source->str() : "";
    std::vector<std::string> missing, extra;
    for (const auto& n : trained)
      if (std::find(names.begin(), names.end(), n) == names.end()) missing.push_back(n);
    for (const auto& n : names)
      if (std::find(trained.begin(), trained.end(), n) == trained.end()) extra.push_back(n);
    // The first class whose label differs: what the scores would get wrong.
    std::string shifted;
    for (size_t k = 0; k < names.size() && shifted.empty(); ++k) {
      const auto at = std::find(trained.begin(), trained.end(), names[k]);
      if (at != trained.end() && at - trained.begin() != static_cast<long>(k))
        shifted = "; labels are class positions, so '" + names[k] + "' would be label " + std::to_string(k) +
                  " here but is " + std::to_string(at - trained.begin()) + " in training";
    }
    std::string fix;
    if (!missing.empty())
      fix = "give " + (folder.empty() ? std::string("the folder") : "'" + folder + "'") +
            " a sub-folder for every class of training, an empty one for a class without images (" +
            (folder.empty() ? "" : "mkdir " + shell_quote((fs::path(folder) / missing.front()).string()) + ", ") +
            "missing: " + first_few(missing, 5) + ")";
    if (!extra.empty())
      fix += (fix.empty() ? "" : ", and ") + std::string("leave out the class(es) training had none of (") +
             first_few(extra, 5) + ")";
    if (fix.empty()) fix = "give the folders the same class sub-folders";
    throw ConfigError(spec.mark, spec.path,
                      "layer '" + spec.name + "' reads " + std::to_string(names.size()) +
                          " classes from the image folder" + (folder.empty() ? "" : " '" + folder + "'") + " (" +
                          first_few(names, 8) + "), not the " + std::to_string(trained.size()) + " " + trained_origin +
                          ": " + first_few(trained, 8) + shifted + ": " + fix);
  }
}

std::string classes_beside_snapshot(const std::string& file) {
  const auto name = io::parse_snapshot_name(file);
  if (!name) return {};
  const std::string path = classes_path(name->prefix);
  return fs::exists(path) ? path : std::string();
}

}  // namespace crema::app
