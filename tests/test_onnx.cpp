// ONNX export (io/onnx.hpp, `crema convert … -o X.onnx`): a net of every exported layer
// type and Caffe's own LeNet run in onnxruntime must give crema's outputs; what cannot
// be exported is refused by layer name.
#include <doctest/doctest.h>

#include <cstdio>
#include <filesystem>
#include <map>

#include "engine/net.hpp"
#include "io/checkpoint.hpp"
#include "io/job_config.hpp"
#include "io/onnx.hpp"
#include "io/yaml_config.hpp"
#include "layer_test_util.hpp"
#include "test_util.hpp"

using namespace crema;
namespace fs = std::filesystem;
using test::crema_cmd;

namespace {

// Every type save_onnx translates, with Caffe's awkward cases: grouped, strided and
// dilated convolution, ceil-mode pooling whose last window hangs over the image (max,
// and average with padding), in-place chains (a blob written four times), blobs read by
// several layers (Caffe's Split), Scale and Bias with a second bottom (a Parameter's),
// InnerProduct transposed and on axis 2, Dropout without scale_train, every Reduction,
// ArgMax's indices feeding an Embed.
const char* kEveryType = R"(
name: every_exported_type
layer:
  - {name: data, type: Input, top: data, input_param: {shape: {dim: [2, 3, 11, 11]}}}
  - {name: conv, type: Convolution, bottom: data, top: conv, convolution_param: {num_output: 6, kernel_size: 3, pad: 1, stride: 2, group: 3}}
  - {name: dil, type: Convolution, bottom: conv, top: dil, convolution_param: {num_output: 4, kernel_size: 2, dilation: 2, pad: 1}}
  - {name: bn, type: BatchNorm, bottom: dil, top: dil}
  - {name: scale, type: Scale, bottom: dil, top: dil, scale_param: {bias_term: true}}
  - {name: prelu, type: PReLU, bottom: dil, top: dil}
  - {name: maxpool, type: Pooling, bottom: dil, top: maxpool, pooling_param: {pool: MAX, kernel_size: 3, stride: 2}}
  - {name: avepool, type: Pooling, bottom: dil, top: avepool, pooling_param: {pool: AVE, kernel_size: 3, stride: 2, pad: 1}}
  - {name: lrn, type: LRN, bottom: maxpool, top: lrn, lrn_param: {local_size: 3, alpha: 0.5, beta: 0.75, k: 2}}
  - {name: gap, type: Pooling, bottom: lrn, top: gap, pooling_param: {pool: AVE, global_pooling: true}}
  - {name: deconv, type: Deconvolution, bottom: lrn, top: deconv, convolution_param: {num_output: 4, kernel_size: 2, stride: 2, pad: 1}}
  - {name: sum, type: Eltwise, bottom: [deconv, avepool], top: sum, eltwise_param: {operation: SUM, coeff: [0.5, -2]}}
  - {name: prod, type: Eltwise, bottom: [deconv, avepool, sum], top: prod, eltwise_param: {operation: PROD}}
  - {name: emax, type: Eltwise, bottom: [sum, prod], top: emax, eltwise_param: {operation: MAX}}
  - {name: cat, type: Concat, bottom: [sum, emax], top: cat}
  - {name: slice, type: Slice, bottom: cat, top: [s1, s2, s3], slice_param: {axis: 1, slice_point: [2, 5]}}
  - {name: elu, type: ELU, bottom: s1, top: s1, elu_param: {alpha: 0.7}}
  - {name: leaky, type: ReLU, bottom: s2, top: s2, relu_param: {negative_slope: 0.1}}
  - {name: sig, type: Sigmoid, bottom: s3, top: sig}
  - {name: tanh, type: TanH, bottom: s3, top: tanh}
  - {name: abs, type: AbsVal, bottom: tanh, top: abs}
  - {name: pow, type: Power, bottom: abs, top: pow, power_param: {power: 1.5, scale: 2, shift: 1}}
  - {name: log, type: Log, bottom: pow, top: log, log_param: {base: 10, scale: 0.5, shift: 0.25}}
  - {name: exp, type: Exp, bottom: sig, top: exp, exp_param: {base: 2, scale: 0.5, shift: 0.1}}
  - {name: bnll, type: BNLL, bottom: s1, top: bnll}
  - {name: swish, type: Swish, bottom: s2, top: swish, swish_param: {beta: 1.5}}
  - {name: clip, type: Clip, bottom: swish, top: clip, clip_param: {min: -0.2, max: 0.3}}
  - {name: drop, type: Dropout, bottom: clip, top: drop, dropout_param: {dropout_ratio: 0.25, scale_train: false}}
  - {name: flat, type: Flatten, bottom: drop, top: flat}
  - {name: ip, type: InnerProduct, bottom: exp, top: ip, inner_product_param: {num_output: 2}}
  - {name: scale2, type: Scale, bottom: [bnll, ip], top: scaled, scale_param: {axis: 0, num_axes: 2}}
  - {name: bias, type: Bias, bottom: scaled, top: biased}
  - {name: offset, type: Parameter, top: offset, parameter_param: {shape: {dim: [2]}}}
  - {name: shift, type: Bias, bottom: [biased, offset], top: shifted}
  - {name: ipt, type: InnerProduct, bottom: log, top: ipt, inner_product_param: {num_output: 5, transpose: true}}
  - {name: reshape, type: Reshape, bottom: shifted, top: reshaped, reshape_param: {shape: {dim: [0, -1, 2]}}}
  - {name: ip3d, type: InnerProduct, bottom: reshaped, top: ip3d, inner_product_param: {num_output: 3, axis: 2}}
  - {name: softmax, type: Softmax, bottom: ip3d, top: prob, softmax_param: {axis: 2}}
  - {name: crop, type: Crop, bottom: [deconv, lrn], top: cropped, crop_param: {axis: 2, offset: [1]}}
  - {name: tile, type: Tile, bottom: gap, top: tiled, tile_param: {tiles: 3}}
  - {name: thr, type: Threshold, bottom: ipt, top: thr, threshold_param: {threshold: 0.1}}
  - {name: rsum, type: Reduction, bottom: deconv, top: rsum, reduction_param: {operation: SUM, axis: 1}}
  - {name: rasum, type: Reduction, bottom: cat, top: rasum, reduction_param: {operation: ASUM, axis: 2, coeff: -1.5}}
  - {name: rsumsq, type: Reduction, bottom: lrn, top: rsumsq, reduction_param: {operation: SUMSQ, axis: 1, coeff: 0.5}}
  - {name: rmean, type: Reduction, bottom: gap, top: rmean, reduction_param: {operation: MEAN}}
  - {name: pick, type: ArgMax, bottom: cat, top: pick, argmax_param: {axis: 1}}
  - {name: embed, type: Embed, bottom: pick, top: embedded, embed_param: {num_output: 3, input_dim: 8}}
  - {name: best, type: ArgMax, bottom: cat, top: best}
  - {name: best_value, type: ArgMax, bottom: cat, top: best_value, argmax_param: {axis: -1, out_max_val: true}}
  - {name: mvn, type: MVN, bottom: deconv, top: mvn}
  - {name: mvn_image, type: MVN, bottom: lrn, top: mvn_image, mvn_param: {across_channels: true, eps: 0.01}}
  - {name: mvn_mean, type: MVN, bottom: cat, top: mvn_mean, mvn_param: {normalize_variance: false}}
)";

void write_f32(const std::string& path, const Blob& b) {
  std::FILE* f = std::fopen(path.c_str(), "wb");
  REQUIRE(f);
  std::fwrite(b.cpu_data(), sizeof(float), static_cast<size_t>(b.count()), f);
  std::fclose(f);
}

bool onnxruntime_installed() {
  return test::run(test::reference_python() + " -c 'import onnxruntime, onnx, numpy'").status == 0;
}

// Runs `net` forward (its Input layers' tops random; data layers read their data) and
// returns what each source layer handed the net, kept before an in-place layer could
// overwrite it.
std::map<std::string, Blob> run_forward(Net& net, Context& ctx) {
  std::map<std::string, Blob> sources;
  for (int i = 0; i < net.num_layers(); ++i) {
    const LayerSpec& spec = net.layer(i).spec();
    if (spec.type == "Input")
      for (const auto& top : spec.top) test::fill_gaussian(*net.blob(top), ctx.rng());
    net.forward_layer(ctx, i);
    if (spec.bottom.empty())
      for (const auto& top : spec.top) sources.emplace(top, Blob(net.blob(top)->shape())).first->second.copy_from(*net.blob(top));
  }
  return sources;
}

// Has onnxruntime run `model` on the inputs written in `dir` and compare its outputs with
// crema's there (after ONNX's own checker accepts the model).
void compare_in_onnxruntime(const std::string& model, const io::OnnxModel& exported, const Net& net,
                            const std::map<std::string, Blob>& sources, const test::TempDir& dir) {
  for (const io::OnnxTensor& t : exported.inputs) write_f32(dir / (t.tensor + ".f32"), sources.at(t.blob));
  for (const io::OnnxTensor& t : exported.outputs) write_f32(dir / (t.tensor + ".f32"), *net.blob(t.blob));
  if (!onnxruntime_installed()) {
    MESSAGE("SKIPPED: running the exported model needs onnxruntime, onnx and numpy (scripts/install_test_references.sh)");
    return;
  }
  const auto check = test::run(test::reference_python() + " " + test::source_dir() + "/tests/onnx_check.py " + model +
                               " " + dir.path().string() + " 1e-5");
  CHECK_MESSAGE(check.status == 0, check.output);
  CHECK(check.output.find(std::to_string(exported.outputs.size()) + " outputs compared; agree") != std::string::npos);
}

// Runs `net` forward, exports it, and has onnxruntime compare. Returns what was exported.
io::OnnxModel check_in_onnxruntime(Net& net, Context& ctx, const test::TempDir& dir) {
  const std::map<std::string, Blob> sources = run_forward(net, ctx);
  const std::string model = dir / "model.onnx";
  const io::OnnxModel exported = io::save_onnx(net, model, "test");
  REQUIRE(fs::file_size(model) > 0);
  compare_in_onnxruntime(model, exported, net, sources, dir);
  // The export reshaped the net to another batch size and back: a forward from the same
  // inputs (put back: in-place layers overwrote them) must give the same outputs, bit for bit.
  bool inputs_only = true;
  for (int i = 0; i < net.num_layers(); ++i)
    inputs_only &= !net.layer(i).spec().bottom.empty() || net.layer(i).spec().type == "Input";
  if (inputs_only) {
    std::map<std::string, std::vector<float>> before;
    for (const io::OnnxTensor& t : exported.outputs) {
      const Blob& b = *net.blob(t.blob);
      before[t.blob].assign(b.cpu_data(), b.cpu_data() + b.count());
    }
    for (const auto& [top, values] : sources) net.blob(top)->copy_from(values);
    for (int i = 0; i < net.num_layers(); ++i)
      if (net.layer(i).spec().type != "Input") net.forward_layer(ctx, i);
    for (const auto& [blob, values] : before) {
      INFO("output " << blob << " after the export");
      const Blob& b = *net.blob(blob);
      CHECK(std::vector<float>(b.cpu_data(), b.cpu_data() + b.count()) == values);
    }
  }
  return exported;
}

// Every parameter away from its filler's constant; BatchNorm's running sums with the
// given scale factor and positive variances.
void randomise_parameters(Net& net, Context& ctx, float batch_norm_factor) {
  for (int i = 0; i < net.num_layers(); ++i) {
    auto& blobs = net.layer(i).blobs();
    for (auto& b : blobs) test::fill_uniform(*b, ctx.rng(), -0.8f, 0.8f);
    if (net.layer(i).spec().type == "BatchNorm") {
      test::fill_uniform(*blobs[1], ctx.rng(), 0.5f, 3.f);
      blobs[2]->mutable_cpu_data()[0] = batch_norm_factor;
    }
  }
}

}  // namespace

TEST_CASE("ONNX export: a net of every exported type gives crema's outputs in onnxruntime") {
  test::TestNet t(kEveryType, 7);
  Net& net = t.net;
  // Every type of the list is in the net (the list is what the README promises).
  for (const auto& type : io::onnx_exportable_types()) {
    bool present = false;
    for (int i = 0; i < net.num_layers(); ++i) present |= net.layer(i).spec().type == type;
    CHECK_MESSAGE(present, type);
  }
  randomise_parameters(net, t.ctx, 2.f);
  test::TempDir dir;
  const io::OnnxModel exported = check_in_onnxruntime(net, t.ctx, dir);
  // Exported at batch 2, it takes any: the same model file at batches 1 and 5 gives what
  // the net built for those batches (with the same weights) gives.
  CHECK_MESSAGE(exported.fixed_batch.empty(), exported.fixed_batch);
  REQUIRE(exported.inputs.size() == 1);
  CHECK(io::describe(exported.inputs[0]) == "data [N, 3, 11, 11]");
  for (const io::OnnxTensor& out : exported.outputs)  // rmean, a mean over everything, is a scalar
    if (!out.shape.empty()) CHECK_MESSAGE(out.symbols.at(0) == "N", io::describe(out));
  for (int batch : {1, 5}) {
    INFO("batch " << batch);
    std::string yaml = kEveryType;
    const std::string shape = "dim: [2, 3, 11, 11]";
    yaml.replace(yaml.find(shape), shape.size(), "dim: [" + std::to_string(batch) + ", 3, 11, 11]");
    test::TestNet other(yaml, 8);
    for (int i = 0; i < net.num_layers(); ++i)
      for (size_t j = 0; j < net.layer(i).blobs().size(); ++j)
        other.net.layer(i).blobs()[j]->copy_from(*net.layer(i).blobs()[j]);
    test::TempDir other_dir;
    const std::map<std::string, Blob> sources = run_forward(other.net, other.ctx);
    REQUIRE(other.net.blob("data")->shape(0) == batch);
    compare_in_onnxruntime(dir / "model.onnx", exported, other.net, sources, other_dir);
  }
}

TEST_CASE("ONNX export: the edge cases of Caffe's geometry and layer parameters give crema's outputs in onnxruntime") {
  // Pooling windows wholly past the image (crema writes 0), floor rounding, global max;
  // a kernel larger than the image; a grouped, dilated, strided deconvolution; an input
  // written in place (the graph input keeps its name); Scale with a second bottom and a
  // bias, on a negative axis, over every axis, as a scalar; PReLU shared; Power's
  // constant case; Exp base e; Eltwise PROD of two; InnerProduct on axis 0; BatchNorm
  // with a zero scale factor (mean and variance 0).
  test::TestNet t(R"(
name: edge_cases
layer:
  - {name: data, type: Input, top: [data, gain], input_param: {shape: [{dim: [2, 2, 4, 4]}, {dim: [2]}]}}
  - {name: inplace, type: ReLU, bottom: data, top: data, relu_param: {negative_slope: 0.3}}
  - {name: sparse_max, type: Pooling, bottom: data, top: sparse_max, pooling_param: {pool: MAX, kernel_size: 1, stride: 2}}
  - {name: sparse_ave, type: Pooling, bottom: data, top: sparse_ave, pooling_param: {pool: AVE, kernel_h: 1, kernel_w: 2, stride: 2}}
  - {name: floor_max, type: Pooling, bottom: data, top: floor_max, pooling_param: {pool: MAX, kernel_size: 3, stride: 2, round_mode: FLOOR}}
  - {name: gmax, type: Pooling, bottom: data, top: gmax, pooling_param: {pool: MAX, global_pooling: true}}
  - {name: bigk, type: Convolution, bottom: data, top: bigk, convolution_param: {num_output: 3, kernel_size: 5, stride: 2, bias_term: false}}
  - {name: bn0, type: BatchNorm, bottom: bigk, top: bn0}
  - {name: dgroup, type: Deconvolution, bottom: data, top: dgroup, convolution_param: {num_output: 4, kernel_size: 3, stride: 2, pad: 1, dilation: 2, group: 2}}
  - {name: shared, type: PReLU, bottom: dgroup, top: shared, prelu_param: {channel_shared: true}}
  - {name: const, type: Power, bottom: data, top: const, power_param: {power: 2, scale: 0, shift: 3}}
  - {name: e, type: Exp, bottom: data, top: e}
  - {name: prod2, type: Eltwise, bottom: [e, const], top: prod2, eltwise_param: {operation: PROD}}
  - {name: ip0, type: InnerProduct, bottom: data, top: ip0, inner_product_param: {num_output: 3, axis: 0}}
  - {name: scaleb, type: Scale, bottom: [data, gain], top: scaleb, scale_param: {bias_term: true}}
  - {name: scale_neg, type: Scale, bottom: data, top: scale_neg, scale_param: {axis: -1}}
  - {name: scale_all, type: Scale, bottom: data, top: scale_all, scale_param: {axis: 0, num_axes: -1}}
  - {name: scale_scalar, type: Scale, bottom: data, top: scale_scalar, scale_param: {num_axes: 0}}
)",
                  11);
  Net& net = t.net;
  randomise_parameters(net, t.ctx, 0.f);
  CHECK(net.blob("sparse_max")->shape(2) == 3);  // its third row of windows starts past the image
  CHECK(net.blob("bigk")->shape(2) == 1);        // the kernel overhangs the image
  test::TempDir dir;
  const io::OnnxModel exported = check_in_onnxruntime(net, t.ctx, dir);
  // InnerProduct on axis 0 (its weights span the batch) holds the model to the net's batch,
  // and the export says which layer does.
  CHECK(exported.fixed_batch.find("the model takes batches of exactly 2") != std::string::npos);
  CHECK_MESSAGE(exported.fixed_batch.find("layer[13] (ip0)") != std::string::npos, exported.fixed_batch);
  CHECK(io::describe(exported.inputs[0]) == "data [2, 2, 4, 4]");
}

TEST_CASE("ONNX export: a model whose shapes cannot follow the batch keeps the net's and says why") {
  // The batch folded into axis 2 by a Reshape: pooling it would round differently at
  // other sizes, which two probes cannot rule out.
  test::TestNet folded(R"(
name: folded
layer:
  - {name: data, type: Input, top: data, input_param: {shape: {dim: [3, 2, 1, 1]}}}
  - {name: fold, type: Reshape, bottom: data, top: folded, reshape_param: {shape: {dim: [1, 1, -1, 1]}}}
  - {name: pool, type: Pooling, bottom: folded, top: pool, pooling_param: {pool: MAX, kernel_h: 2, kernel_w: 1, stride_h: 4, stride_w: 1}}
)",
                       5);
  test::TempDir dir;
  const io::OnnxModel exported = check_in_onnxruntime(folded.net, folded.ctx, dir);
  CHECK_MESSAGE(exported.fixed_batch.find("the model takes batches of exactly 3: layer 'fold' moves the batch off the "
                                          "leading axis of its top 'folded'") != std::string::npos,
                exported.fixed_batch);
  CHECK(io::describe(exported.inputs[0]) == "data [3, 2, 1, 1]");
  // The export leaves the net as it found it: shapes, and the values its forward left.
  CHECK(folded.net.blob("data")->shape(0) == 3);
  CHECK(folded.net.blob("pool")->shape() == std::vector<int>{1, 1, 2, 1});

  // A batch of 0 has nothing to scale.
  test::TestNet empty(
      "name: e\nlayer:\n  - {name: data, type: Input, top: data, input_param: {shape: {dim: [0, 3]}}}\n"
      "  - {name: prob, type: Softmax, bottom: data, top: prob}\n",
      5);
  const io::OnnxModel none = io::save_onnx(empty.net, dir / "empty.onnx", "test");
  CHECK(none.fixed_batch == "the model keeps the net's shapes: its batch size is 0");
}

TEST_CASE("ONNX export: Caffe's own LeNet (deploy net, binary .caffemodel) gives crema's outputs in onnxruntime") {
  const std::string caffe = test::source_dir() + "/tests/data/caffe/lenet_deploy/";
  const auto root = io::load_net_config(caffe + "lenet.prototxt");
  const NetSpec spec = NetSpec::parse(*root);
  Context ctx(3);
  Net net(spec, spec.state_for(Phase::TEST), ctx, true);
  io::load_inference_weights(net, {caffe + "lenet_iter_10000.caffemodel"});
  test::TempDir dir;
  check_in_onnxruntime(net, ctx, dir);
}

TEST_CASE("crema convert exports ONNX from the command line and refuses what it cannot export") {
  const std::string caffe = test::source_dir() + "/tests/data/caffe/";
  test::TempDir dir;
  const auto ok = test::run(crema_cmd("convert " + caffe + "lenet_deploy/lenet.prototxt --weights " + caffe +
                                      "lenet_deploy/lenet_iter_10000.caffemodel --set layer[0].input_param.shape.dim[0]=1 -o " +
                                      (dir / "lenet.onnx")));
  REQUIRE_MESSAGE(ok.status == 0, ok.output);
  CHECK(ok.output.find("inputs data [N, 1, 28, 28]") != std::string::npos);
  CHECK(ok.output.find("outputs prob [N, 10]") != std::string::npos);
  CHECK(fs::file_size(dir / "lenet.onnx") > 1'000'000);  // LeNet's 431,080 weights as float32
  // --stage picks the exported net's layers: prob only in stage deploy.
  const std::string staged = "convert " + caffe + "lenet_deploy/lenet.prototxt --weights " + caffe +
                             "lenet_deploy/lenet_iter_10000.caffemodel --set 'layer[8].include={stage: deploy}' -o ";
  const auto plain = test::run(crema_cmd(staged + (dir / "plain.onnx")));
  CHECK_MESSAGE(plain.output.find("outputs ip2 [N, 10]") != std::string::npos, plain.output);
  const auto deploy = test::run(crema_cmd(staged + (dir / "deploy.onnx") + " --stage deploy"));
  CHECK_MESSAGE(deploy.output.find("outputs prob [N, 10]") != std::string::npos, deploy.output);
  const auto graph =
      test::run(crema_cmd("convert " + caffe + "lenet_deploy/lenet.prototxt --stage deploy -o " + (dir / "g.dot")));
  CHECK(graph.status == 2);
  CHECK_MESSAGE(graph.output.find("--stage and --level pick the net exported to ONNX") != std::string::npos,
                graph.output);
  // Exported again over itself it is replaced; over a file of another kind it is refused.
  const std::string export_to = "convert " + caffe + "lenet_deploy/lenet.prototxt --weights " + caffe +
                                "lenet_deploy/lenet_iter_10000.caffemodel -o ";
  CHECK(test::run(crema_cmd(export_to + (dir / "lenet.onnx"))).status == 0);
  CHECK(test::run(crema_cmd(export_to + (dir / "lenet.onnx"))).status == 0);
  // An export cut short (its graph runs past the end) is not told for a model.
  fs::copy_file(dir / "lenet.onnx", dir / "cut.onnx");
  fs::resize_file(dir / "cut.onnx", fs::file_size(dir / "lenet.onnx") / 2);
  CHECK(test::run(crema_cmd(export_to + (dir / "cut.onnx"))).status == 2);
  fs::copy_file(caffe + "lenet_deploy/lenet.prototxt", dir / "notes.onnx");
  const auto other = test::run(crema_cmd(export_to + (dir / "notes.onnx")));
  CHECK(other.status == 2);
  CHECK_MESSAGE(other.output.find("notes.onnx' exists and is no ONNX model (it is a text file)") != std::string::npos,
                other.output);
  // A solver state opens with a varint field 1 as a model does (ir_version): it is still no model.
  fs::copy_file(caffe + "cifar10_quick_iter_4000.solverstate", dir / "state.onnx");
  const auto state = test::run(crema_cmd(export_to + (dir / "state.onnx")));
  CHECK(state.status == 2);
  CHECK_MESSAGE(state.output.find("state.onnx' exists and is no ONNX model") != std::string::npos, state.output);
  CHECK(fs::file_size(dir / "state.onnx") == fs::file_size(caffe + "cifar10_quick_iter_4000.solverstate"));
  // The model given back as weights: named as what it is (it "looked like a .solverstate").
  const auto back = test::run(crema_cmd("test --model " + caffe + "lenet_deploy/lenet.prototxt --weights " +
                                        (dir / "lenet.onnx") + " --iterations 1"));
  CHECK(back.status != 0);
  CHECK_MESSAGE(back.output.find("it is an ONNX model, which crema writes (convert -o MODEL.onnx) but does not read") !=
                    std::string::npos,
                back.output);

  // A layer renamed in the net (ip2 -> IP2) is refused as a mistake in the command (exit 2), pointing at the
  // file's unused layer of its shapes.
  const auto renamed = test::run(crema_cmd("convert " + caffe + "lenet_deploy/lenet.prototxt --weights " + caffe +
                                           "lenet_deploy/lenet_iter_10000.caffemodel --set layer[7].name=IP2 -o " +
                                           (dir / "renamed.onnx")));
  CHECK(renamed.status == 2);
  CHECK_MESSAGE(renamed.output.find("crema convert: --weights: " + caffe +
                                    "lenet_deploy/lenet_iter_10000.caffemodel hold(s) no weights for layer 'IP2'") !=
                    std::string::npos,
                renamed.output);
  CHECK_MESSAGE(
      renamed.output.find("layer 'ip2' of " + caffe +
                          "lenet_deploy/lenet_iter_10000.caffemodel, with parameters of the same shapes, is "
                          "not used: if 'IP2' is that layer renamed, give it the name 'ip2'") != std::string::npos,
      renamed.output);
  CHECK_FALSE(fs::exists(dir / "renamed.onnx"));

  // No weights: an ONNX model carries them.
  const auto no_weights = test::run(crema_cmd("convert " + caffe + "lenet_deploy/lenet.prototxt -o " + (dir / "x.onnx")));
  CHECK(no_weights.status == 2);
  CHECK(no_weights.output.find("give --weights") != std::string::npos);
  // A two-layer net written as `name`.yaml and exported to `name`.onnx (any weights do:
  // these nets have no parameters).
  auto export_net = [&](const std::string& name, const std::string& first, const std::string& second) {
    test::write_file(dir / (name + ".yaml"), "name: t\nlayer:\n  - " + first + "\n  - " + second + "\n");
    return test::run(crema_cmd("convert " + (dir / (name + ".yaml")) + " --weights " + caffe +
                               "lenet_deploy/lenet_iter_10000.caffemodel -o " + (dir / (name + ".onnx"))));
  };
  // A net whose data comes from a data layer: its top is the input.
  const auto fed = export_net("fed", "{name: feed, type: DummyData, top: x, dummy_data_param: {shape: {dim: [2, 3]}}}",
                              "{name: prob, type: Softmax, bottom: x, top: prob}");
  CHECK_MESSAGE(fed.status == 0, fed.output);
  CHECK(fed.output.find("inputs x [N, 3]; outputs prob [N, 3]") != std::string::npos);
  // A layer without a translation is named, and nothing is written.
  const auto im2col = export_net("im2col", "{name: data, type: Input, top: x, input_param: {shape: {dim: [1, 2, 4, 4]}}}",
                                 "{name: im2col, type: Im2col, bottom: x, top: y, convolution_param: {kernel_size: 2}}");
  CHECK(im2col.status == 1);
  CHECK(im2col.output.find("layer 'im2col' (Im2col) cannot be exported to ONNX") != std::string::npos);
  CHECK_FALSE(fs::exists(dir / "im2col.onnx"));
  // --weights is for ONNX only.
  const auto stray = test::run(crema_cmd("convert " + caffe + "lenet_deploy/lenet.prototxt --weights w -o " + (dir / "x.yaml")));
  CHECK(stray.status == 2);
  CHECK_MESSAGE(stray.output.find("--weights belongs to an ONNX export (-o MODEL.onnx)") != std::string::npos,
                stray.output);
}

TEST_CASE("ONNX export picks the model out of a net: what scores or discards is left out, outputs are the last values") {
  // A learnt Parameter as Scale's operand; fc read by the prediction and by a loss (Caffe
  // puts a Split between); a layer reading the loss; a branch ending in an in-place
  // layer; a blob only Silence reads; an Input only the loss reads.
  test::TestNet t(R"(
name: plan
layer:
  - {name: data, type: Input, top: [data, target], input_param: {shape: [{dim: [2, 3]}, {dim: [2, 4]}]}}
  - {name: gain, type: Parameter, top: gain, parameter_param: {shape: {dim: [3]}}}
  - {name: scaled, type: Scale, bottom: [data, gain], top: scaled}
  - {name: fc, type: InnerProduct, bottom: scaled, top: fc, inner_product_param: {num_output: 4}}
  - {name: prob, type: Softmax, bottom: fc, top: prob}
  - {name: loss, type: EuclideanLoss, bottom: [fc, target], top: loss}
  - {name: doubled, type: Power, bottom: loss, top: doubled, power_param: {scale: 2}}
  - {name: side, type: InnerProduct, bottom: scaled, top: side, inner_product_param: {num_output: 2}}
  - {name: squash, type: Sigmoid, bottom: side, top: side}
  - {name: quiet, type: ReLU, bottom: scaled, top: quiet}
  - {name: silence, type: Silence, bottom: quiet}
)",
                  13);
  Net& net = t.net;
  randomise_parameters(net, t.ctx, 1.f);
  test::TempDir dir;
  check_in_onnxruntime(net, t.ctx, dir);
  const io::OnnxModel model = io::save_onnx(net, dir / "again.onnx", "test");
  std::vector<std::string> inputs, outputs;
  for (const auto& tensor : model.inputs) inputs.push_back(tensor.tensor);
  for (const auto& tensor : model.outputs) outputs.push_back(tensor.tensor);
  CHECK(inputs == std::vector<std::string>{"data"});
  CHECK(outputs == std::vector<std::string>{"prob", "side"});

  // An input that an in-place layer rewrites, and nothing reads after: the input keeps the
  // name, the output is its last value.
  test::TestNet in_place(
      "name: p\nlayer:\n  - {name: data, type: Input, top: data, input_param: {shape: {dim: [2, 3]}}}\n"
      "  - {name: relu, type: ReLU, bottom: data, top: data}\n",
      17);
  test::TempDir relu_dir;
  check_in_onnxruntime(in_place.net, in_place.ctx, relu_dir);
  const io::OnnxModel relu_model = io::save_onnx(in_place.net, relu_dir / "again.onnx", "test");
  REQUIRE(relu_model.inputs.size() == 1);
  REQUIRE(relu_model.outputs.size() == 1);
  CHECK(relu_model.inputs[0].tensor == "data");
  CHECK(relu_model.outputs[0].tensor == "data__1");
  CHECK(relu_model.outputs[0].blob == "data");
}

TEST_CASE("ONNX export of a trained crema job: its solver file and snapshot give the TEST net's logits in onnxruntime") {
  test::ToyJob job(20);
  const auto train = test::run(crema_cmd("train " + job.solver));
  REQUIRE_MESSAGE(train.status == 0, train.output);
  const std::string weights = job.dir / "snap/toy_iter_20.caffemodel.h5";
  // From the command line: the data layer's top is the input, the accuracy and the loss
  // are left out (with the label), the logits are the output.
  const auto cli = test::run(crema_cmd("convert " + job.solver + " --weights " + weights + " -o " + (job.dir / "toy.onnx")));
  REQUIRE_MESSAGE(cli.status == 0, cli.output);
  CHECK(cli.output.find("inputs data [N, 1, 10, 10]; outputs fc2 [N, 10]") != std::string::npos);
  // The same model's numbers on a batch of the test data, against crema's TEST forward.
  std::shared_ptr<Node> solver;
  const auto root = io::load_net_config(job.solver, &solver);
  const NetSpec spec = NetSpec::parse(*root);
  Context ctx(5);
  Net net(spec, spec.state_for(Phase::TEST), ctx, true);
  io::load_inference_weights(net, {weights});
  test::TempDir dir;
  check_in_onnxruntime(net, ctx, dir);
}

TEST_CASE("ONNX export refuses a layer it has no exact translation for, naming it, and a TRAIN-phase net") {
  auto refusal = [](const std::string& layer, Phase phase = Phase::TEST) {
    const Node root = io::parse_yaml(
        "name: n\nlayer:\n  - {name: data, type: Input, top: data, input_param: {shape: {dim: [1, 4, 5, 5]}}}\n  - " + layer +
            "\n",
        "n.yaml");
    const NetSpec spec = NetSpec::parse(root);
    Context ctx(1);
    Net net(spec, spec.state_for(phase), ctx, true);
    test::TempDir dir;
    return test::error_of([&] { io::save_onnx(net, dir / "m.onnx", "test"); });
  };
  CHECK(refusal("{name: lrn, type: LRN, bottom: data, top: y, lrn_param: {norm_region: WITHIN_CHANNEL}}")
            .find("layer 'lrn' (LRN) cannot be exported to ONNX: norm_region WITHIN_CHANNEL") != std::string::npos);
  CHECK(refusal("{name: relu, type: ReLU, bottom: data, top: y}", Phase::TRAIN)
            .find("cannot export the TRAIN phase of net 'n' to ONNX") != std::string::npos);
  CHECK(refusal("{name: loss, type: EuclideanLoss, bottom: [data, data], top: loss}")
            .find("net 'n' has nothing to export: no layer computes an output") != std::string::npos);
  // A blob named like the tensors crema makes up for a layer's parameters.
  CHECK(refusal("{name: fc, type: InnerProduct, bottom: data, top: fc/0, inner_product_param: {num_output: 2}}")
            .find("the tensor name 'fc/0' would be used twice") != std::string::npos);
  CHECK(refusal("{name: m, type: Im2col, bottom: data, top: y, convolution_param: {kernel_size: 2}}")
            .find("layer 'm' (Im2col) cannot be exported to ONNX: no ONNX translation for this type. Exported types: Input, ") !=
        std::string::npos);
}
