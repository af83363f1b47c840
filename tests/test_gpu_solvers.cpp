// GPU solvers against the CPU reference: each update rule's kernels from identical
// gradients and histories, whole solver steps (decay, clipping, iter_size) of a small
// InnerProduct + SoftmaxWithLoss net, and a training step that moves no parameter,
// gradient or history across the bus. Also the options of the layers the solver
// tests train with that tests/test_gpu_layers.cpp's table does not vary: every loss
// normalisation with an ignore_label, Accuracy's top_k with per-class accuracy, bad
// labels, a transposed InnerProduct. Skipped without a CUDA device.
#include <doctest/doctest.h>
#include <spdlog/fmt/fmt.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "engine/cuda/cuda_runtime_api.hpp"
#include "engine/cuda/math_kernels.hpp"
#include "engine/error.hpp"
#include "engine/math.hpp"
#include "engine/update_rules.hpp"
#include "gpu_test_util.hpp"
#include "layer_test_util.hpp"
#include "solver_test_util.hpp"

using namespace crema;

namespace {

// The device's queued work is done, so host reads see it.
void finish(const Context& ctx) {
  if (ctx.on_gpu()) ctx.cuda()->synchronize();
}

// |got − want| within `rel` of |want|; values near zero compare against `floor`.
void check_near(const float* got, const float* want, int n, const std::string& what, double rel, double floor) {
  for (int i = 0; i < n; ++i) {
    const double g = got[i], w = want[i];
    INFO(what << " element " << i << ": GPU " << g << ", CPU " << w);
    CHECK(std::fabs(g - w) <= rel * std::max(std::fabs(w), floor));
  }
}

// got == want to the bit (NaN never appears here).
void check_same(const float* got, const float* want, int n, const std::string& what) {
  int differ = 0;
  for (int i = 0; i < n; ++i)
    if (std::memcmp(&got[i], &want[i], sizeof(float)) != 0 && differ++ < 3)
      FAIL_CHECK(what << " element " << i << ": GPU " << fmt::format("{:a}", got[i]) << ", CPU "
                      << fmt::format("{:a}", want[i]));
  CHECK_MESSAGE(differ == 0, what << ": " << differ << " of " << n << " elements differ");
}

// Hyper-parameters each rule accepts (AdaGrad and RMSProp refuse momentum).
SolverSpec rule_spec(const std::string& type) {
  SolverSpec s;
  s.type = type;
  s.momentum = type == "AdaGrad" || type == "RMSProp" ? 0.f : type == "AdaDelta" ? 0.95f : 0.9f;
  return s;
}

// One device's copy of a parameter's state for the rule-level test.
struct RuleState {
  Blob w, g, h1, h2;
  explicit RuleState(int n) : w({n}), g({n}), h1({n}), h2({n}) {}
};

// A solver job like test::make_job, on GPU 0 when `gpu`.
std::unique_ptr<test::Job> make_job_on(const std::string& yaml, bool gpu) {
  test::QuietLog quiet;
  auto j = std::make_unique<test::Job>();
  j->root = std::make_unique<Node>(io::parse_yaml(yaml, "solver.yaml"));
  j->spec = SolverSpec::parse(*j->root);
  j->net = NetSpec::parse(*j->spec.net);
  j->ctx = gpu ? Context::gpu(0, j->spec.random_seed) : std::make_unique<Context>(j->spec.random_seed);
  j->solver = std::make_unique<Solver>(j->spec, j->net, *j->ctx);
  return j;
}

// Input → InnerProduct (6 → 5) → SoftmaxWithLoss on 4 samples, with `extra` solver keys.
std::string tiny_solver(const std::string& type, const std::string& extra) {
  const SolverSpec s = rule_spec(type);
  return "type: " + type + "\nbase_lr: " + (type == "AdaDelta" ? "1.0" : "0.1") +
         "\nmomentum: " + std::to_string(s.momentum) + "\nmax_iter: 100\nrandom_seed: 7\n" + extra +
         "net:\n"
         "  name: gpu_tiny\n"
         "  layer:\n"
         "  - name: data\n"
         "    type: Input\n"
         "    top: [x, label]\n"
         "    input_param: {shape: [{dim: [4, 6]}, {dim: [4]}]}\n"
         "  - name: ip\n"
         "    type: InnerProduct\n"
         "    bottom: x\n"
         "    top: score\n"
         "    inner_product_param: {num_output: 5, weight_filler: {type: gaussian, std: 0.5},\n"
         "                          bias_filler: {type: constant, value: 0.1}}\n"
         "  - name: loss\n"
         "    type: SoftmaxWithLoss\n"
         "    bottom: [score, label]\n"
         "    top: loss\n";
}

void fill_inputs(test::Job& j) {
  float* x = j.blob("x").mutable_cpu_data();  // x: (4, 6)
  for (int i = 0; i < 24; ++i) x[i] = std::sin(0.7f * static_cast<float>(i)) * 2.f;
  float* label = j.blob("label").mutable_cpu_data();  // label: (4)
  for (int i = 0; i < 4; ++i) label[i] = static_cast<float>((3 * i + 1) % 5);
}

// A few steps of the solver job `yaml` (Input x and label, filled by fill_inputs) move no
// blob across the bus, leave every parameter and gradient on the device, and train.
void check_step_stays_on_device(const std::string& yaml) {
  auto j = make_job_on(yaml, true);
  fill_inputs(*j);
  test::step(*j, 1);  // the first step uploads the inputs and the filled parameters
  finish(*j->ctx);
  const long h2d = SyncedMemory::host_to_device_copies(), d2h = SyncedMemory::device_to_host_copies();
  test::step(*j, 3);
  finish(*j->ctx);
  // The loss value reaches the host by a copy on the compute stream, outside the
  // blobs' bookkeeping, and the loss top's gradient (its weight) is set on the device:
  // no blob crosses the bus.
  CHECK(SyncedMemory::host_to_device_copies() == h2d);
  CHECK(SyncedMemory::device_to_host_copies() == d2h);
  // Every parameter and gradient was last written on the device and never read back
  // (a host read would leave it Synced, a host write AtCpu). The solver's histories
  // are private; the counters above cover them.
  for (Blob* p : j->solver->net().learnable_params()) {
    CHECK(p->data_memory()->head() == SyncedMemory::Head::AtGpu);
    CHECK(p->diff_memory()->head() == SyncedMemory::Head::AtGpu);
  }
  // And the steps train: the loss falls.
  const float loss_before = j->solver->net().forward(*j->ctx);
  test::step(*j, 20);
  const float loss_after = j->solver->net().forward(*j->ctx);
  CHECK(std::isfinite(loss_after));
  CHECK(loss_after < loss_before);
}

// Runs the layer `yaml` on `ctx` forward and backward from copies of `bottoms`, with
// top diff 1.5 everywhere (the loss weight, for a loss), and returns every top, then
// every bottom diff that `propagate` asks for, then every parameter diff.
std::vector<std::vector<float>> run_layer(const std::string& yaml, Context& ctx, const std::vector<const Blob*>& bottoms,
                                          int num_tops, const std::vector<bool>& propagate) {
  auto t = test::make_layer(yaml);
  std::vector<Blob> bottom_blobs(bottoms.size()), top_blobs(static_cast<size_t>(num_tops));
  BlobVec bottom, top;
  for (size_t i = 0; i < bottoms.size(); ++i) {
    bottom_blobs[i].copy_from(*bottoms[i], false, true);
    bottom.push_back(&bottom_blobs[i]);
  }
  for (Blob& b : top_blobs) top.push_back(&b);
  t.layer->setup(ctx, bottom, top);
  t.layer->forward(ctx, bottom, top);
  for (Blob* b : top) std::fill_n(b->mutable_cpu_diff(), b->count(), 1.5f);
  for (auto& p : t.layer->blobs()) p->set_diff(0.f);
  t.layer->backward(ctx, top, propagate, bottom);
  finish(ctx);
  std::vector<std::vector<float>> out;
  auto keep = [&](const float* p, int n) { out.emplace_back(p, p + n); };
  for (Blob* b : top) keep(b->cpu_data(), b->count());
  for (size_t i = 0; i < bottom.size(); ++i)
    if (propagate[i]) keep(bottom[i]->cpu_diff(), bottom[i]->count());
  for (auto& p : t.layer->blobs()) keep(p->cpu_diff(), p->count());
  return out;
}

// The same layer on GPU 0 and on the CPU, from identical bottoms and parameters (both
// contexts draw the fillers from seed 5), agree element by element.
void check_layer_on_gpu(const std::string& yaml, const std::vector<const Blob*>& bottoms, int num_tops,
                        const std::vector<bool>& propagate) {
  INFO("layer " << yaml);
  auto gpu = Context::gpu(0, 5);
  Context cpu(5);
  const auto got = run_layer(yaml, *gpu, bottoms, num_tops, propagate);
  const auto want = run_layer(yaml, cpu, bottoms, num_tops, propagate);
  REQUIRE(got.size() == want.size());
  for (size_t r = 0; r < got.size(); ++r) {
    REQUIRE(got[r].size() == want[r].size());
    // Sums run in another order on the device: 1e-5 relative, 1e-6 absolute near zero.
    check_near(got[r].data(), want[r].data(), static_cast<int>(got[r].size()), "result " + std::to_string(r), 1e-5,
               0.1);
  }
}

// Scores (2, 4, 3): two samples, four classes, three positions each; labels (2, 3)
// hold every class and, at two positions, the value 1 that the cases ignore.
struct Scored {
  Blob scores{std::vector<int>{2, 4, 3}}, labels{std::vector<int>{2, 3}};
  Scored() {
    float* s = scores.mutable_cpu_data();
    for (int i = 0; i < scores.count(); ++i) s[i] = std::sin(1.3f * static_cast<float>(i)) * 3.f;
    test::set_values(labels, {0, 1, 2, 3, 1, 0});
  }
};

}  // namespace

TEST_CASE("GPU losses: SoftmaxWithLoss in every normalisation with an ignore_label matches the CPU") {
  SKIP_WITHOUT_DEVICE();
  const Scored in;
  for (const char* mode : {"FULL", "VALID", "BATCH_SIZE", "NONE"})
    for (const char* ignore : {"", ", ignore_label: 1"})
      check_layer_on_gpu(std::string("{type: SoftmaxWithLoss, loss_param: {normalization: ") + mode + ignore + "}}",
                         {&in.scores, &in.labels}, 2, {true, false});
  // Every label ignored: the normaliser stays 1 and the loss 0, on both devices.
  Blob all_ignored({2, 3});
  all_ignored.set_data(1.f);
  check_layer_on_gpu("{type: SoftmaxWithLoss, loss_param: {ignore_label: 1}}", {&in.scores, &all_ignored}, 1,
                     {true, false});
}

TEST_CASE("GPU losses: Accuracy with top_k, ignore_label and per-class accuracy matches the CPU") {
  SKIP_WITHOUT_DEVICE();
  const Scored in;
  for (const char* params : {"{}", "{top_k: 2}", "{top_k: 3, ignore_label: 1}", "{axis: 1, ignore_label: 1}"})
    check_layer_on_gpu(std::string("{type: Accuracy, accuracy_param: ") + params + "}", {&in.scores, &in.labels}, 2,
                       {false, false});
}

TEST_CASE("GPU losses: Accuracy counts past 2^24 positions as the CPU does") {
  SKIP_WITHOUT_DEVICE();
  // Counters that stop at 2^24 (float additions of 1) would report 0.625 here, not 0.5:
  // a segmentation batch (8 images of 1500 x 1500 pixels) has more positions than that.
  const int positions = (1 << 24) + (1 << 22);
  Blob scores({1, 2, positions}), labels({1, positions});
  float* s = scores.mutable_cpu_data();  // s: (1, 2, positions); class 0 always scores higher
  std::fill(s, s + positions, 1.f);
  std::fill(s + positions, s + 2 * positions, 0.f);
  float* l = labels.mutable_cpu_data();  // l: (1, positions); half class 0 (right), half class 1 (wrong)
  for (int i = 0; i < positions; ++i) l[i] = static_cast<float>(i % 2);
  auto gpu = Context::gpu(0, 5);
  const auto tops = run_layer("{type: Accuracy}", *gpu, {&scores, &labels}, 2, {false, false});
  CHECK(tops[0][0] == 0.5f);  // accuracy
  CHECK(tops[1][0] == 1.f);   // per class
  CHECK(tops[1][1] == 0.f);
}

TEST_CASE("GPU losses: a label out of range stops with the CPU's message") {
  SKIP_WITHOUT_DEVICE();
  Scored in;
  test::set_values(in.labels, {0, 1, 2, 7, 1, 0});
  auto gpu = Context::gpu(0, 5);
  for (const char* yaml : {"{type: SoftmaxWithLoss}", "{type: Accuracy}"}) {
    INFO(yaml);
    CHECK_THROWS_WITH_AS(run_layer(yaml, *gpu, {&in.scores, &in.labels}, 1, {false, false}),
                         doctest::Contains("label 7 is out of range"), Error);
  }
  test::set_values(in.labels, {0, 1, 2, 2.5f, 1, 0});  // a fraction is refused, not truncated to class 2
  for (const char* yaml : {"{type: SoftmaxWithLoss}", "{type: Accuracy}"}) {
    INFO(yaml);
    CHECK_THROWS_WITH_AS(run_layer(yaml, *gpu, {&in.scores, &in.labels}, 1, {false, false}),
                         doctest::Contains("label 2.5 is not a whole number"), Error);
  }
  Blob probs({6, 4}), labels({6});  // one label per row, for the layers that read (N, C)
  probs.set_data(0.25f);
  test::set_values(labels, {0, 1, 2, 2.5f, 1, 0});
  for (const char* yaml : {"{type: MultinomialLogisticLoss}", "{type: HingeLoss}"}) {
    INFO(yaml);
    CHECK_THROWS_WITH_AS(run_layer(yaml, *gpu, {&probs, &labels}, 1, {false, false}),
                         doctest::Contains("label 2.5 is not a whole number"), Error);
  }
}

TEST_CASE("GPU layers: InnerProduct transposed and on a later axis, and EuclideanLoss, match the CPU") {
  SKIP_WITHOUT_DEVICE();
  const Scored in;  // scores (2, 4, 3)
  const std::string fillers = "weight_filler: {type: gaussian, std: 0.3}, bias_filler: {type: gaussian, std: 0.3}";
  for (const char* shape : {"num_output: 5, transpose: true", "num_output: 5", "num_output: 2, axis: 2"})
    check_layer_on_gpu(std::string("{type: InnerProduct, inner_product_param: {") + shape + ", " + fillers + "}}",
                       {&in.scores}, 1, {true});
  Blob target({2, 4, 3});
  target.set_data(0.25f);
  check_layer_on_gpu("{type: EuclideanLoss}", {&in.scores, &target}, 1, {true, true});
}

TEST_CASE("GPU layers: Embed's weight gradient equals the CPU's bit for bit when rows are named many times") {
  SKIP_WITHOUT_DEVICE();
  // Float atomics add a row's terms in the order the threads come, which differs
  // between runs in the last bits; sorted by row, they are added in the CPU's order.
  // 1000 positions span four chunks of the sort; row 7 is named at every third, rows
  // 11 and 299 never; 300 rows give each thread of the scan a share of two.
  const int m = 1000, rows = 300, n = 5;
  Blob index({m});
  float* ix = index.mutable_cpu_data();  // ix: (m)
  for (int i = 0; i < m; ++i) {
    const int r = (i * 37) % rows;
    ix[i] = i % 3 == 0 ? 7.f : static_cast<float>(r == 11 || r == 299 ? 12 : r);
  }
  const std::string yaml = "{type: Embed, embed_param: {num_output: 5, input_dim: 300}}";
  auto run = [&](Context& ctx) {
    auto t = test::make_layer(yaml);
    Blob bottom, top;
    bottom.copy_from(index, false, true);
    t.layer->setup(ctx, {&bottom}, {&top});
    t.layer->forward(ctx, {&bottom}, {&top});
    float* dy = top.mutable_cpu_diff();  // dy: (m, n); magnitudes far apart, so the order shows in the sums
    for (int k = 0; k < m * n; ++k) dy[k] = static_cast<float>(std::sin(k * 0.7) * std::pow(10.0, k % 7 - 3));
    float* dw = t.layer->blobs()[0]->mutable_cpu_diff();  // dw: (rows, n), accumulated into
    for (int k = 0; k < rows * n; ++k) dw[k] = 0.01f * static_cast<float>(k % 13);
    t.layer->blobs()[1]->set_diff(0.f);
    t.layer->backward(ctx, {&top}, {false}, {&bottom});
    finish(ctx);
    const float* got = t.layer->blobs()[0]->cpu_diff();
    return std::vector<float>(got, got + rows * n);
  };
  auto gpu = Context::gpu(0, 5);
  Context cpu(5);
  const std::vector<float> want = run(cpu), first = run(*gpu), second = run(*gpu);
  CHECK(first == want);
  CHECK(second == first);
  CHECK(want[11 * n] == 0.01f * static_cast<float>((11 * n) % 13));  // a row never named keeps its gradient
}

TEST_CASE("GPU layers: BatchReindex's input gradient equals the CPU's bit for bit when items are picked many times") {
  SKIP_WITHOUT_DEVICE();
  // 600 picks of 7 items (item 2 at every other pick, item 5 never): the gradient of an
  // item is the sum of its picks' rows, added in pick order on both devices.
  const int items = 600, num = 7, inner = 3;
  Blob x({num, inner}), index({items});
  for (int k = 0; k < num * inner; ++k) x.mutable_cpu_data()[k] = static_cast<float>(k);
  float* ix = index.mutable_cpu_data();  // ix: (items)
  for (int k = 0; k < items; ++k) ix[k] = k % 2 == 0 ? 2.f : static_cast<float>((k * 5) % num == 5 ? 1 : (k * 5) % num);
  auto run = [&](Context& ctx) {
    auto t = test::make_layer("{type: BatchReindex}");
    Blob bottom, picks, top;
    bottom.copy_from(x, false, true);
    picks.copy_from(index, false, true);
    t.layer->setup(ctx, {&bottom, &picks}, {&top});
    t.layer->forward(ctx, {&bottom, &picks}, {&top});
    float* dy = top.mutable_cpu_diff();  // dy: (items, inner)
    for (int k = 0; k < items * inner; ++k) dy[k] = static_cast<float>(std::cos(k * 0.3) * std::pow(10.0, k % 5 - 2));
    t.layer->backward(ctx, {&top}, {true, false}, {&bottom, &picks});
    finish(ctx);
    return std::vector<float>(bottom.cpu_diff(), bottom.cpu_diff() + num * inner);
  };
  auto gpu = Context::gpu(0, 5);
  Context cpu(5);
  const std::vector<float> want = run(cpu), got = run(*gpu);
  CHECK(got == want);
  CHECK(want[5 * inner] == 0.f);  // never picked
}

TEST_CASE("GPU math: gemm, gemv, dot and asum follow the row-major CPU contract") {
  SKIP_WITHOUT_DEVICE();
#ifdef CREMA_WITH_CUDA  // the wrappers exist only with CUDA; without it no device is reported above
  auto gpu_ctx = Context::gpu(0, 1);
  const cuda::CudaContext& c = *gpu_ctx->cuda();
  // a: (3, 4) row-major, x4: (4), x3: (3); b: (4, 2)
  Blob a({3, 4}), x4({4}), x3({3}), b({4, 2});
  test::fill_counting(a, -5.f);
  test::set_values(x4, {1.f, -2.f, 0.5f, 3.f});
  test::set_values(x3, {2.f, 1.f, -1.f});
  test::fill_counting(b, 0.5f);
  std::vector<float> want(6);
  for (bool trans : {false, true}) {
    INFO("gemv with trans_a " << trans);
    const int out = trans ? 4 : 3;
    Blob y({out});
    y.set_data(1.f);
    cuda::gpu_gemv(c, trans, 3, 4, 2.f, a.gpu_data(), (trans ? x3 : x4).gpu_data(), 0.5f, y.mutable_gpu_data());
    std::vector<float> expected(static_cast<size_t>(out), 1.f);
    cpu_gemv(trans, 3, 4, 2.f, a.cpu_data(), (trans ? x3 : x4).cpu_data(), 0.5f, expected.data());
    finish(*gpu_ctx);
    check_near(y.cpu_data(), expected.data(), out, "y", 1e-6, 1.0);
    // An empty sum (no columns, or no rows with trans_a) leaves y = beta * y, as BLAS does.
    y.set_data(4.f);
    cuda::gpu_gemv(c, trans, trans ? 0 : 3, trans ? 4 : 0, 2.f, a.gpu_data(), x4.gpu_data(), 0.5f,
                   y.mutable_gpu_data());
    finish(*gpu_ctx);
    for (int i = 0; i < out; ++i) CHECK(y.cpu_data()[i] == 2.f);
  }
  // c (3, 2) = a (3, 4) · b (4, 2), and cᵀ-shaped products with both operands transposed.
  Blob prod({3, 2});
  cuda::gpu_gemm(c, false, false, 3, 2, 4, 1.f, a.gpu_data(), b.gpu_data(), 0.f, prod.mutable_gpu_data());
  cpu_gemm(false, false, 3, 2, 4, 1.f, a.cpu_data(), b.cpu_data(), 0.f, want.data());
  finish(*gpu_ctx);
  check_near(prod.cpu_data(), want.data(), 6, "a·b", 1e-6, 1.0);
  Blob prod_t({2, 3});  // (a·b)ᵀ = bᵀ·aᵀ
  cuda::gpu_gemm(c, true, true, 2, 3, 4, 1.f, b.gpu_data(), a.gpu_data(), 0.f, prod_t.mutable_gpu_data());
  cpu_gemm(true, true, 2, 3, 4, 1.f, b.cpu_data(), a.cpu_data(), 0.f, want.data());
  finish(*gpu_ctx);
  check_near(prod_t.cpu_data(), want.data(), 6, "bᵀ·aᵀ", 1e-6, 1.0);
  CHECK(cuda::gpu_dot(c, 4, x4.gpu_data(), x4.gpu_data()) == doctest::Approx(cpu_dot(4, x4.cpu_data(), x4.cpu_data())));
  CHECK(cuda::gpu_asum(c, 12, a.gpu_data()) == doctest::Approx(cpu_asum(12, a.cpu_data())));
#endif
}

TEST_CASE("GPU solvers: every update rule with L1 and L2 decay, coupled and decoupled, matches the CPU step") {
  SKIP_WITHOUT_DEVICE();
  auto gpu_ctx = Context::gpu(0, 1);
  Context cpu_ctx(1);
  const UpdateOps gpu(*gpu_ctx), cpu(cpu_ctx);
  const int n = 1037;  // more than one block, and not a multiple of one
  for (const UpdateRule& rule : update_rules()) {
    INFO("solver type " << rule.type);
    const SolverSpec spec = rule_spec(rule.type);
    RuleState on_gpu(n), on_cpu(n);
    for (RuleState* s : {&on_gpu, &on_cpu}) {
      float* w = s->w.mutable_cpu_data();
      for (int i = 0; i < n; ++i) w[i] = std::cos(0.37f * static_cast<float>(i)) - 0.2f;
    }
    for (int t = 1; t <= 3; ++t) {
      for (RuleState* s : {&on_gpu, &on_cpu}) {
        float* g = s->g.mutable_cpu_diff();  // a fresh gradient each step, both devices alike
        for (int i = 0; i < n; ++i) g[i] = std::sin(0.11f * static_cast<float>(i * t)) * static_cast<float>(t);
      }
      for (auto [ops, s] : {std::pair{&gpu, &on_gpu}, std::pair{&cpu, &on_cpu}}) {
        UpdateInput in;
        in.n = n;
        in.rate = 0.05f;
        in.t = t;
        in.w = ops->mutable_data(s->w);
        in.g = ops->mutable_diff(s->g);
        in.h1 = ops->mutable_data(s->h1);
        in.h2 = rule.histories > 1 ? ops->mutable_data(s->h2) : nullptr;
        // Odd steps L1, even steps L2; the decay coupled (added to g) for Caffe's types,
        // decoupled (beside the step) for AdamW, as the solver sets it.
        in.l1 = t % 2 == 1;
        if (rule.decoupled_decay)
          in.decoupled_decay = in.rate * 0.01f;
        else
          in.coupled_decay = 0.01f;
        ops->step(rule, spec, in);
      }
      finish(*gpu_ctx);
      // The same operations in the same order, none fused into a multiply-add on either
      // device (CMakeLists.txt: --fmad=false, -ffp-contract=off) and sqrt and division
      // rounded as IEEE says on both: equal to the bit.
      const std::string after = " after step " + std::to_string(t);
      check_same(on_gpu.g.cpu_diff(), on_cpu.g.cpu_diff(), n, "step" + after);
      check_same(on_gpu.w.cpu_data(), on_cpu.w.cpu_data(), n, "parameter" + after);
      check_same(on_gpu.h1.cpu_data(), on_cpu.h1.cpu_data(), n, "history 1" + after);
      if (rule.histories > 1) check_same(on_gpu.h2.cpu_data(), on_cpu.h2.cpu_data(), n, "history 2" + after);
    }
  }
}

TEST_CASE("GPU solvers: the global gradient norm and scaling match the CPU") {
  SKIP_WITHOUT_DEVICE();
  auto gpu_ctx = Context::gpu(0, 1);
  Context cpu_ctx(1);
  Blob a({300}), b({5, 70});
  double want = 0;
  for (Blob* p : {&a, &b}) {
    float* d = p->mutable_cpu_diff();
    for (int i = 0; i < p->count(); ++i) {
      d[i] = std::sin(0.3f * static_cast<float>(i)) + 0.5f;
      want += static_cast<double>(d[i]) * d[i];
    }
  }
  const UpdateOps gpu(*gpu_ctx);
  const double got = gpu.sumsq_diffs({&a, &b});
  CHECK(std::fabs(got - want) <= 1e-9 * want);
  CHECK(std::fabs(got - UpdateOps(cpu_ctx).sumsq_diffs({&a, &b})) <= 1e-9 * want);
  gpu.scale(a.count(), 0.5f, gpu.mutable_diff(a));
  finish(*gpu_ctx);
  CHECK(a.cpu_diff()[7] == doctest::Approx((std::sin(0.3f * 7.f) + 0.5f) * 0.5f).epsilon(1e-6));
}

TEST_CASE("GPU solvers: a few steps of each solver type match the CPU run") {
  SKIP_WITHOUT_DEVICE();
  // The pipeline around the rules: decay (both kinds, and AdamW's decoupled one),
  // clipping by the global norm (0.5 is below this net's norm, so it scales), iter_size.
  const std::vector<std::string> extras = {
      "weight_decay: 0.01\nclip_gradients: 0.5\n",
      "weight_decay: 0.02\nregularization_type: L1\niter_size: 2\n",
  };
  for (const UpdateRule& rule : update_rules())
    for (const std::string& extra : extras) {
      INFO("solver type " << rule.type << " with\n" << extra);
      const std::string yaml = tiny_solver(rule.type, extra);
      auto on_gpu = make_job_on(yaml, true), on_cpu = make_job_on(yaml, false);
      for (test::Job* j : {on_gpu.get(), on_cpu.get()}) {
        fill_inputs(*j);
        test::step(*j, 3);
      }
      finish(*on_gpu->ctx);
      const auto& gpu_params = on_gpu->solver->net().learnable_params();
      const auto& cpu_params = on_cpu->solver->net().learnable_params();
      REQUIRE(gpu_params.size() == cpu_params.size());
      // The layers' float sums run in another order on the device, so the parameters
      // agree to rounding amplified by three steps (1e-5 absolute near zero), not to the last bit.
      for (size_t i = 0; i < gpu_params.size(); ++i)
        check_near(gpu_params[i]->cpu_data(), cpu_params[i]->cpu_data(), gpu_params[i]->count(),
                   "parameter " + std::to_string(i), 1e-4, 0.1);
      const SolverState gpu_state = on_gpu->solver->state(), cpu_state = on_cpu->solver->state();
      REQUIRE(gpu_state.history.size() == cpu_state.history.size());
      for (size_t h = 0; h < gpu_state.history.size(); ++h)
        check_near(gpu_state.history[h].cpu_data(), cpu_state.history[h].cpu_data(), gpu_state.history[h].count(),
                   "history " + std::to_string(h), 1e-4, 0.1);
    }
}

TEST_CASE("GPU solvers: weights that a non-finite gradient broke while the loss stayed finite are not snapshotted") {
  SKIP_WITHOUT_DEVICE();
  // The GPU's update does not read its weights back; the snapshot checks them.
  auto j = make_job_on(test::sqrt_at_zero_net() + "base_lr: 0.01\nmax_iter: 10\nsnapshot: 1\nsnapshot_prefix: unused\n",
                       true);
  int snapshots = 0;
  j->solver->on_snapshot = [&](Solver&) { ++snapshots; };
  CHECK_THROWS_WITH_AS(test::step(*j, 3),
                       doctest::Contains("training diverged at iteration 1: layer 'ip' parameter 0 holds 2 NaN or "
                                         "infinite value(s) of 2, made so by an update since the last snapshot "
                                         "although the loss was finite"),
                       Error);
  CHECK(snapshots == 0);
}

TEST_CASE("GPU solvers: a stop or an error in an iteration undoes it on the device, and the resume is exact") {
  SKIP_WITHOUT_DEVICE();
  // BatchNorm's statistics and the RNN's carried state are kept and put back on the device.
  // cuDNN may pick algorithms whose sums run in another order, hence the tolerance.
  const auto on_gpu = [](const std::string& yaml) { return make_job_on(yaml, true); };
  test::check_cut_short(test::stop_between_passes(), on_gpu, 1e-4);
  test::CutShort in_pass = test::bad_label("train", 131, 2);  // as in test_solver.cpp
  in_pass.shuffle = false;
  test::check_cut_short(in_pass, on_gpu, 1e-4);
}

TEST_CASE("GPU solvers: a training step moves no parameter, gradient or history across the bus") {
  SKIP_WITHOUT_DEVICE();
  const std::string plain = tiny_solver("Adam", "weight_decay: 0.01\nclip_gradients: 0.5\n");
  // With BatchNorm, whose statistics the solver keeps before each iteration to undo it with
  // (copied on the device), and iter_size 2 (a stop polled between the passes).
  std::string with_bn = tiny_solver("Adam", "weight_decay: 0.01\nclip_gradients: 0.5\niter_size: 2\n");
  with_bn.insert(with_bn.find("  - name: ip\n"), "  - {name: bn, type: BatchNorm, bottom: x, top: xn}\n");
  with_bn.replace(with_bn.find("    bottom: x\n"), 14, "    bottom: xn\n");
  for (const std::string& yaml : {plain, with_bn}) {
    CAPTURE(yaml);
    check_step_stays_on_device(yaml);
  }
}
