#include "app/classify.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <new>
#include <numeric>

#include "app/data_tools.hpp"
#include "engine/error.hpp"
#include "engine/math.hpp"
#include "engine/net.hpp"
#include "io/caffe_binary.hpp"
#include "io/checkpoint.hpp"
#include "io/files.hpp"
#include "io/image.hpp"
#include "io/job_config.hpp"

namespace crema::app {

namespace {

// The net's input: the first top of its first layer (an Input layer in a deploy net).
Blob* input_blob(const Net& net) {
  if (net.num_layers() == 0 || net.top_vec(0).empty() || net.bottom_vec(0).size() != 0)
    throw ConfigError(Mark{}, "--model", "the deploy net must start with an Input layer giving the image blob");
  // A training net's data layer would feed its own batch and ignore the images.
  if (std::string(net.layer(0).type()) != "Input")
    throw ConfigError(Mark{}, "--model",
                      "the net starts with a " + std::string(net.layer(0).type()) + " layer ('" + net.layer_name(0) +
                          "'), which reads its own data: classify needs a deploy net whose first layer is an Input "
                          "layer giving the image blob (in a net that holds both, --stage selects the deploy layers "
                          "by their include/exclude rules)");
  Blob* b = net.top_vec(0)[0];
  if (b->num_axes() != 4)
    throw ConfigError(Mark{}, "--model", "the deploy net's input must be 4-D (N, C, H, W), not " + b->shape_string());
  return b;
}

// Caffe's classifier reads the first output; with several, "prob" is the natural one.
const Blob* output_blob(const Net& net, std::string* name) {
  const auto& names = net.output_names();
  if (names.empty()) throw ConfigError(Mark{}, "--model", "the deploy net has no output blob");
  auto it = std::find(names.begin(), names.end(), "prob");
  if (it == names.end()) it = names.begin();
  *name = *it;
  return net.outputs()[static_cast<size_t>(it - names.begin())];
}

}  // namespace

int classify(const ClassifyOptions& opt) {
  auto root = io::load_net_config(opt.model);
  const NetSpec spec = NetSpec::parse(*root);
  const NetState state = merged(spec.state_for(Phase::TEST), NetStateSetting{std::nullopt, opt.level, opt.stages});
  if (const std::string unnamed = spec.stages_no_rule_names(opt.stages); !unnamed.empty())
    spdlog::warn("--stage: {}", unnamed);
  spec.check_layer_params(&state);  // the keys of layers it leaves out too
  auto ctx = opt.gpu >= 0 ? Context::gpu(opt.gpu, 1701) : std::make_unique<Context>(1701);
  Net net(spec, state, *ctx, true);
  io::load_inference_weights(net, opt.weights);
  if (opt.weights.empty()) spdlog::warn("no --weights given: the parameters are freshly initialised");

  Blob* input = input_blob(net);
  const int channels = input->shape(1), height = input->shape(2), width = input->shape(3);
  if (!opt.mean_value.empty() && opt.mean_value.size() != 1 && static_cast<int>(opt.mean_value.size()) != channels)
    throw ConfigError(Mark{}, "--mean-value",
                      "needs one value or one per input channel (" + std::to_string(channels) + ")");
  if (!opt.mean_value.empty() && !opt.mean_file.empty())
    throw ConfigError(Mark{}, "", "give --mean-value or --mean-file, not both");
  // As Caffe's classifier: a mean image is reduced to one mean per channel.
  std::vector<float> mean = opt.mean_value;
  if (!opt.mean_file.empty()) {
    const Blob m = io::read_binaryproto(opt.mean_file);
    if (m.num_axes() < 3 || m.shape(-3) != channels)
      throw ConfigError(Mark{}, "--mean-file",
                        "'" + opt.mean_file + "' is a mean image of shape " + m.shape_string() +
                            " but the net's input has " + std::to_string(channels) +
                            (channels == 1 ? " channel" : " channels") +
                            "; give the mean of the data the net was trained on (crema compute-mean writes one), or "
                            "--mean-value");
    const int plane = m.shape(-1) * m.shape(-2);
    for (int c = 0; c < channels; ++c) {
      double sum = 0;
      for (int i = 0; i < plane; ++i) sum += m.cpu_data()[c * plane + i];
      mean.push_back(static_cast<float>(sum / plane));
    }
  }
  // A deploy net cannot carry its training's transform_param, and nets are almost always
  // trained on scaled or centred pixels: raw 0-255 values give confident, wrong classes.
  if (mean.empty() && opt.scale == 1.f)
    spdlog::warn(
        "no --scale, --mean-value or --mean-file: the net gets raw pixel values (0 to 255); give the preprocessing "
        "its training's transform_param applied (e.g. --scale 0.00390625 for scale: 0.00390625)");
  // Without --labels, the class list training wrote next to the snapshot, if any.
  std::string labels_path = opt.labels;
  if (labels_path.empty() && !opt.weights.empty()) {
    labels_path = classes_beside_snapshot(opt.weights.back());
    if (!labels_path.empty()) spdlog::info("Class names from {}", labels_path);
  }
  std::vector<std::string> labels;
  if (!labels_path.empty()) labels = read_class_names(labels_path, "--labels");

  std::string out_name;
  const Blob& output = *output_blob(net, &out_name);
  // A fully convolutional net's output holds C scores at each of H x W positions: ranked as
  // one list it would mix classes and positions.
  if (output.num_axes() > 2 && output.shape(1) > 1 && output.count(2) > 1)
    throw ConfigError(Mark{}, "--model",
                      "the net's output '" + out_name + "' is " + output.shape_string() + ": scores of " +
                          std::to_string(output.shape(1)) + " classes at each of " + std::to_string(output.count(2)) +
                          " positions, not one score per class, which classify ranks; end the net in one score "
                          "per class (global pooling or an InnerProduct before the Softmax), or read the maps "
                          "elsewhere (crema convert -o MODEL.onnx exports the net with its weights)");
  const int classes = output.count(1);  // set up already; per image
  if (!labels_path.empty() && static_cast<int>(labels.size()) != classes) {
    // As Caffe's classifier: one name per class, else the names would be shifted or missing.
    const std::string mismatch = "the labels file '" + labels_path + "' names " + std::to_string(labels.size()) +
                                 " classes but the net's output '" + out_name + "' has " + std::to_string(classes);
    if (opt.labels.empty())  // a mistake in the command as much as a wrong --labels: exit status 2 too
      throw ConfigError(Mark{}, "--weights",
                        mismatch +
                            "; crema found it beside the weights, where training wrote the class names of its data; "
                            "give --labels FILE to use other names");
    throw ConfigError(Mark{}, "--labels", mismatch + "; give one name per line, in class order");
  }
  const int k = std::min(opt.top_k, classes);
  if (opt.top_k_given && opt.top_k > classes)
    spdlog::info("--top-k {} is more than the {} classes of the net's output '{}': each image lists all {}", opt.top_k,
                 classes, out_name, classes);

  // Batches of --batch-size images, each resized to the net's input size. An image that cannot
  // be read is named and left out: the others still get their predictions, and the exit
  // status says that one was missing.
  const size_t per_image = static_cast<size_t>(channels) * height * width;
  std::vector<std::string> unread;
  std::vector<size_t> batch;  // indices into opt.images
  std::vector<float> pixels;  // (batch, C, H, W)
  const auto classify_batch = [&] {
    if (batch.empty()) return;
    try {
      input->reshape({static_cast<int>(batch.size()), channels, height, width});
      std::copy(pixels.begin(), pixels.end(), input->mutable_cpu_data());
      net.forward(*ctx);
    } catch (const OutOfHostMemory& e) {
      // Here --batch-size sets the batch, not the net's data layers.
      throw Error(e.where() + "; give a smaller --batch-size (it is " + std::to_string(opt.batch_size) +
                  "), or use a machine with more memory." + e.note());
    } catch (const std::bad_alloc&) {
      throw Error("out of host memory for a batch of " + std::to_string(batch.size()) +
                  " images; give a smaller --batch-size (it is " + std::to_string(opt.batch_size) +
                  "), or use a machine with more memory." + address_space_limit_note());
    }
    const Blob* out = output_blob(net, &out_name);
    for (size_t n = 0; n < batch.size(); ++n) {
      const float* p = out->cpu_data() + n * static_cast<size_t>(classes);  // (classes)
      std::vector<int> order(static_cast<size_t>(classes));
      std::iota(order.begin(), order.end(), 0);
      std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return p[a] > p[b]; });
      std::printf("---------- Prediction for %s ----------\n", opt.images[batch[n]].c_str());
      for (int i = 0; i < k; ++i) {
        const int c = order[static_cast<size_t>(i)];
        const std::string label = labels.empty() ? std::to_string(c) : labels[static_cast<size_t>(c)];
        std::printf("%.4f - \"%s\"\n", static_cast<double>(p[c]), label.c_str());
      }
    }
    std::fflush(stdout);
    batch.clear();
    pixels.clear();
  };
  for (size_t n = 0; n < opt.images.size(); ++n) {
    io::Image img;
    try {
      img = io::read_image(opt.images[n], channels, height, width);
    } catch (const Error& e) {
      std::error_code ec;  // a folder named where its images were meant: the shell lists them
      spdlog::error("{}; left out{}", e.what(),
                    std::filesystem::is_directory(opt.images[n], ec)
                        ? " (give the images in it: " + (std::filesystem::path(opt.images[n]) / "").string() + "*)"
                        : "");
      unread.push_back(opt.images[n]);
      continue;
    }
    batch.push_back(n);
    pixels.resize(batch.size() * per_image);
    float* x = pixels.data() + (batch.size() - 1) * per_image;  // x: (C, H, W)
    for (int c = 0; c < channels; ++c) {
      const float m = mean.empty() ? 0.f : mean[mean.size() == 1 ? 0 : static_cast<size_t>(c)];
      for (size_t i = 0; i < static_cast<size_t>(height) * width; ++i) {
        const size_t j = static_cast<size_t>(c) * height * width + i;
        x[j] = (img.data[j] - m) * opt.scale;
      }
    }
    if (static_cast<int>(batch.size()) == opt.batch_size) classify_batch();
  }
  classify_batch();
  net.finish();
  if (!unread.empty()) {
    spdlog::error("{} of {} image(s) could not be read, so they have no prediction: {}", unread.size(),
                  opt.images.size(), first_few(unread, 5));
    return 1;
  }
  return 0;
}

}  // namespace crema::app
