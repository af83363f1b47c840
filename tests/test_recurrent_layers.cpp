// LSTM, RNN and LSTMUnit (Caffe's recurrent layers): PyTorch golden values, gradient
// checks, the state carried between forwards (truncated BPTT), expose_hidden, snapshots
// of the carried state, clear errors, and nets that must learn to remember.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "engine/cuda/cuda_context.hpp"
#include "engine/error.hpp"
#include "engine/synced_memory.hpp"
#include "io/checkpoint.hpp"
#include "io/hdf5.hpp"
#include "layers/lstm_unit_math.hpp"
#include "layers/sequence_math.hpp"
#include "gpu_test_util.hpp"
#include "layer_test_util.hpp"
#include "solver_test_util.hpp"
#include "test_util.hpp"

using namespace crema;
using test::set_values;

namespace {

// Bottoms owned by the test, filled from a fixed stream.
struct Bottoms {
  std::vector<std::unique_ptr<Blob>> owned;
  BlobVec vec;
  Blob& add(const std::vector<int>& shape) {
    owned.push_back(std::make_unique<Blob>(shape));
    vec.push_back(owned.back().get());
    return *owned.back();
  }
};

struct Tops {
  std::vector<std::unique_ptr<Blob>> owned;
  BlobVec vec;
  explicit Tops(int n) {
    for (int i = 0; i < n; ++i) {
      owned.push_back(std::make_unique<Blob>());
      vec.push_back(owned.back().get());
    }
  }
};

std::vector<float> values(const Blob& b) { return {b.cpu_data(), b.cpu_data() + b.count()}; }

// `to` takes `from`'s parameter values (two layers of the same configuration).
void copy_params(const Layer& from, Layer& to) {
  REQUIRE(from.blobs().size() == to.blobs().size());
  for (size_t i = 0; i < from.blobs().size(); ++i) to.blobs()[i]->copy_from(*from.blobs()[i]);
}

double largest_difference(const std::vector<float>& got, const std::vector<float>& want) {
  REQUIRE(got.size() == want.size());
  double worst = 0;
  for (size_t i = 0; i < got.size(); ++i) worst = std::max(worst, std::fabs(double(got[i]) - want[i]));
  return worst;
}

const char* const kSmallWeights =
    "weight_filler: {type: uniform, min: -0.5, max: 0.5}, bias_filler: {type: uniform, min: -0.3, max: 0.3}";

std::string lstm_yaml(int h, const std::string& extra = "") {
  return "{type: LSTM, recurrent_param: {num_output: " + std::to_string(h) + ", " + kSmallWeights + extra + "}}";
}
std::string rnn_yaml(int h, const std::string& extra = "") {
  return "{type: RNN, recurrent_param: {num_output: " + std::to_string(h) + ", " + kSmallWeights + extra + "}}";
}

// Runs the golden case `which` ("lstm" or "rnn") of tests/data/golden/recurrent.h5.
void check_golden(const std::string& which, const std::string& yaml, bool with_static) {
  io::H5File f(test::source_dir() + "/tests/data/golden/recurrent.h5", io::H5File::Mode::Read);
  std::vector<int> shape;
  auto load = [&](const std::string& name, Blob& into) {
    const auto v = f.read_floats(which + "/" + name, &shape);
    into.reshape(shape);
    std::copy(v.begin(), v.end(), into.mutable_cpu_data());
  };
  auto t = test::make_layer(yaml);
  Blob x, cont, xs;
  load("x", x);
  load("cont", cont);
  BlobVec bottom = {&x, &cont};
  if (with_static) {
    load("x_static", xs);
    bottom.push_back(&xs);
  }
  Blob y;
  Context ctx(1);
  t.layer->setup(ctx, bottom, {&y});
  for (size_t i = 0; i < t.layer->blobs().size(); ++i) {
    Blob want;
    load("init/" + std::to_string(i), want);
    REQUIRE_MESSAGE(want.shape() == t.layer->blobs()[i]->shape(), "parameter " << i);
    t.layer->blobs()[i]->copy_from(want);
    t.layer->blobs()[i]->set_diff(0.f);
  }
  t.layer->forward(ctx, bottom, {&y});
  Blob want_top, r;
  load("top", want_top);
  load("r", r);
  REQUIRE(y.shape() == want_top.shape());
  CHECK(largest_difference(values(y), values(want_top)) < 1e-5);
  std::copy(r.cpu_data(), r.cpu_data() + r.count(), y.mutable_cpu_diff());
  std::vector<bool> down(bottom.size(), true);
  down[1] = false;
  t.layer->backward(ctx, {&y}, down, bottom);
  auto compare_diff = [&](const std::string& name, const Blob& got) {
    Blob want;
    load(name, want);
    REQUIRE(want.count() == got.count());
    INFO(which << " " << name);
    CHECK(largest_difference({got.cpu_diff(), got.cpu_diff() + got.count()}, values(want)) < 1e-5);
  };
  compare_diff("grad/x", x);
  if (with_static) compare_diff("grad/x_static", xs);
  for (size_t i = 0; i < t.layer->blobs().size(); ++i) compare_diff("grad/" + std::to_string(i), *t.layer->blobs()[i]);
}

}  // namespace

TEST_CASE("LSTM matches PyTorch's nn.LSTM: outputs, input, static input and parameter gradients, with restarts") {
  check_golden("lstm", "{type: LSTM, recurrent_param: {num_output: 3}}", true);
}

TEST_CASE("RNN matches PyTorch's nn.RNN plus Caffe's output transform, with restarts") {
  check_golden("rnn", "{type: RNN, recurrent_param: {num_output: 3}}", false);
}

TEST_CASE("LSTM and RNN keep Caffe's parameter blobs and order (weights from .caffemodel files fit)") {
  Bottoms b;
  b.add({3, 2, 4, 2});  // x: T 3, N 2, I 8
  b.add({3, 2});
  b.add({2, 5});        // static
  Tops y(1);
  Context ctx(1);
  auto lstm = test::make_layer(lstm_yaml(6));
  lstm.layer->setup(ctx, b.vec, y.vec);
  std::vector<std::vector<int>> shapes;
  for (auto& p : lstm.layer->blobs()) shapes.push_back(p->shape());
  CHECK(shapes == std::vector<std::vector<int>>{{24, 8}, {24}, {24, 5}, {24, 6}});  // W_xc, b_c, W_xc_static, W_hc
  CHECK(y.vec[0]->shape() == std::vector<int>{3, 2, 6});
  auto rnn = test::make_layer(rnn_yaml(6));
  Tops o(1);
  rnn.layer->setup(ctx, {b.vec[0], b.vec[1]}, o.vec);
  shapes.clear();
  for (auto& p : rnn.layer->blobs()) shapes.push_back(p->shape());
  CHECK(shapes == std::vector<std::vector<int>>{{6, 8}, {6}, {6, 6}, {6, 6}, {6}});  // W_xh, b_h, W_hh, W_ho, b_o
}

TEST_CASE("the CPU's vectorised tanh is within 1.5 ulp of the exact value, odd, and keeps NaN and the limits") {
  double worst = 0;
  float worst_at = 0;
  int not_odd = 0;
  uint32_t bits_max;
  const float top = 12.f;
  std::memcpy(&bits_max, &top, 4);
  for (uint32_t bits = 0; bits <= bits_max; bits += 257) {  // every 257th float in [0, 12]
    float x;
    std::memcpy(&x, &bits, 4);
    const float want = static_cast<float>(std::tanh(static_cast<double>(x)));
    const double ulp = std::nextafter(std::fabs(want), INFINITY) - std::fabs(want);
    const double error = std::fabs(static_cast<double>(lstm::host_tanh(x)) - std::tanh(static_cast<double>(x))) / ulp;
    if (error > worst) {
      worst = error;
      worst_at = x;
    }
    not_odd += lstm::host_tanh(-x) != -lstm::host_tanh(x);
  }
  MESSAGE("largest error " << worst << " ulp at " << worst_at);
  CHECK(worst <= 1.5);
  CHECK(not_odd == 0);
  CHECK(lstm::host_tanh(30.f) == 1.f);
  CHECK(lstm::host_tanh(-INFINITY) == -1.f);
  CHECK(lstm::host_tanh(1e-30f) == 1e-30f);
  CHECK(std::signbit(lstm::host_tanh(-0.f)));
  CHECK(std::isnan(lstm::host_tanh(NAN)));

  // The loops the layers run are the CPU variant picked at load time (SSE2, AVX2 or
  // AVX-512): the same bits as the function above.
  Context ctx(1);
  const auto m = SequenceMath::for_context(ctx);
  std::vector<float> x(4096), y(x.size());
  for (size_t i = 0; i < x.size(); ++i) x[i] = -12.f + 24.f * static_cast<float>(i) / static_cast<float>(x.size());
  m->tanh_forward(static_cast<int>(x.size()), x.data(), y.data());
  int differing = 0;
  for (size_t i = 0; i < x.size(); ++i) differing += y[i] != lstm::host_tanh(x[i]);
  CHECK(differing == 0);
}

TEST_CASE("LSTMUnit: one step by hand, and cont 0 drops the previous cell") {
  auto t = test::make_layer("{type: LSTMUnit}");
  Blob c_prev({1, 2, 1}), x({1, 2, 4}), cont({1, 2}), c, h;
  set_values(c_prev, {2.f, 2.f});
  set_values(x, {0.5f, -1.f, 2.f, 0.3f, 0.5f, -1.f, 2.f, 0.3f});  // i, f, o, g for each stream
  set_values(cont, {1.f, 0.f});
  Context ctx(1);
  t.layer->setup(ctx, {&c_prev, &x, &cont}, {&c, &h});
  t.layer->forward(ctx, {&c_prev, &x, &cont}, {&c, &h});
  auto sig = [](double v) { return 1 / (1 + std::exp(-v)); };
  const double i = sig(0.5), f = sig(-1), o = sig(2), g = std::tanh(0.3);
  const double c0 = f * 2 + i * g, c1 = i * g;
  CHECK(c.cpu_data()[0] == doctest::Approx(c0).epsilon(1e-6));
  CHECK(c.cpu_data()[1] == doctest::Approx(c1).epsilon(1e-6));
  CHECK(h.cpu_data()[0] == doctest::Approx(o * std::tanh(c0)).epsilon(1e-6));
  CHECK(h.cpu_data()[1] == doctest::Approx(o * std::tanh(c1)).epsilon(1e-6));
}

TEST_CASE("LSTMUnit gradient check") {
  auto t = test::make_layer("{type: LSTMUnit}");
  Blob c_prev({1, 3, 4}), x({1, 3, 16}), cont({1, 3}), c, h;
  Rng rng(5);
  test::fill_gaussian(c_prev, rng);
  test::fill_gaussian(x, rng);
  set_values(cont, {1.f, 0.f, 1.f});
  test::check_gradients(*t.layer, {&c_prev, &x, &cont}, {&c, &h}, {.bottoms = {0, 1}});
}

TEST_CASE("LSTMUnit: a gradient asked of only one bottom is the same as when both are") {
  Blob c_prev({1, 2, 3}), x({1, 2, 12}), cont({1, 2}), c, h;
  Rng rng(4);
  test::fill_gaussian(c_prev, rng);
  test::fill_gaussian(x, rng);
  set_values(cont, {1.f, 1.f});
  Context ctx(1);
  auto run = [&](std::vector<bool> down) {
    auto t = test::make_layer("{type: LSTMUnit}");
    t.layer->setup(ctx, {&c_prev, &x, &cont}, {&c, &h});
    t.layer->forward(ctx, {&c_prev, &x, &cont}, {&c, &h});
    test::fill_gaussian(c, rng, 1.f);  // values unused by backward (it recomputes c)
    Rng diff_rng(8);
    for (Blob* b : {&c, &h}) {
      float* d = b->mutable_cpu_diff();
      for (int i = 0; i < b->count(); ++i) d[i] = diff_rng.gaussian(0.f, 1.f);
    }
    c_prev.set_diff(7.f);
    x.set_diff(7.f);
    cont.set_diff(7.f);
    t.layer->backward(ctx, {&c, &h}, down, {&c_prev, &x, &cont});
    return std::make_pair(std::vector<float>(c_prev.cpu_diff(), c_prev.cpu_diff() + c_prev.count()),
                          std::vector<float>(x.cpu_diff(), x.cpu_diff() + x.count()));
  };
  const auto both = run({true, true, true});
  CHECK(cont.cpu_diff()[0] == 0.f);  // cont gets a zero gradient
  const auto only_c = run({true, false, false});
  const auto only_x = run({false, true, false});
  CHECK(only_c.first == both.first);
  CHECK(only_x.second == both.second);
  CHECK(only_c.second == std::vector<float>(12 * 2, 7.f));  // untouched
}

TEST_CASE("LSTM and RNN backward: parameter gradients accumulate, bottom gradients are overwritten") {
  for (const std::string& yaml : {lstm_yaml(3), rnn_yaml(3)}) {
    INFO(yaml);
    auto t = test::make_layer(yaml);
    Blob x({3, 2, 4}), cont({3, 2}), xs({2, 2}), y;
    Rng rng(13);
    test::fill_gaussian(x, rng);
    test::fill_gaussian(xs, rng);
    set_values(cont, {0, 0, 1, 1, 1, 0});
    const BlobVec bottom = {&x, &cont, &xs};
    Context ctx(1);
    t.layer->setup(ctx, bottom, {&y});
    t.layer->forward(ctx, bottom, {&y});
    test::fill_gaussian(y, rng);
    std::copy(y.cpu_data(), y.cpu_data() + y.count(), y.mutable_cpu_diff());
    auto backward = [&] {
      x.set_diff(5.f);
      xs.set_diff(5.f);
      t.layer->backward(ctx, {&y}, {true, false, true}, bottom);
      std::vector<std::vector<float>> out = {{x.cpu_diff(), x.cpu_diff() + x.count()},
                                             {xs.cpu_diff(), xs.cpu_diff() + xs.count()}};
      for (auto& p : t.layer->blobs()) out.emplace_back(p->cpu_diff(), p->cpu_diff() + p->count());
      return out;
    };
    for (auto& p : t.layer->blobs()) p->set_diff(0.f);
    const auto once = backward();
    const auto twice = backward();
    CHECK(twice[0] == once[0]);
    CHECK(twice[1] == once[1]);
    for (size_t i = 2; i < once.size(); ++i) {
      INFO("parameter " << i - 2);
      for (size_t j = 0; j < once[i].size(); ++j) CHECK(twice[i][j] == doctest::Approx(2 * once[i][j]).epsilon(1e-6));
    }
  }
}

TEST_CASE("LSTM gradient check: input, static input, initial states, final-state tops and parameters") {
  auto t = test::make_layer(lstm_yaml(3, ", expose_hidden: true"));
  Blob x({3, 2, 4}), cont({3, 2}), xs({2, 3}), h0({1, 2, 3}), c0({1, 2, 3});
  Rng rng(6);
  for (Blob* b : {&x, &xs, &h0, &c0}) test::fill_gaussian(*b, rng);
  set_values(cont, {1, 0, 1, 1, 0, 1});  // stream 0 starts from h0/c0 and restarts at t 2; stream 1 starts fresh
  Blob y, h_t, c_t;
  test::check_gradients(*t.layer, {&x, &cont, &xs, &h0, &c0}, {&y, &h_t, &c_t}, {.bottoms = {0, 2, 3, 4}});
}

TEST_CASE("an initial state given without expose_hidden is pointed at it") {
  auto t = test::make_layer(rnn_yaml(3, ""));
  Blob x({4, 2, 3}), cont({4, 2}), xs({2, 2}), h0({1, 2, 3}), y;
  Context ctx(1);
  CHECK_THROWS_WITH_AS(t.layer->setup(ctx, {&x, &cont, &xs, &h0}, {&y}),
                       doctest::Contains("RNN layer takes at most 3 bottom blob(s), got 4; initial states as bottoms "
                                         "(and final states as tops) need recurrent_param: {expose_hidden: true}"),
                       ConfigError);
}

TEST_CASE("RNN gradient check: input, static input, initial state, final-state top and parameters") {
  auto t = test::make_layer(rnn_yaml(3, ", expose_hidden: true"));
  Blob x({4, 2, 3}), cont({4, 2}), xs({2, 2}), h0({1, 2, 3});
  Rng rng(7);
  for (Blob* b : {&x, &xs, &h0}) test::fill_gaussian(*b, rng);
  set_values(cont, {1, 0, 1, 1, 0, 1, 1, 1});
  Blob y, h_t;
  test::check_gradients(*t.layer, {&x, &cont, &xs, &h0}, {&y, &h_t}, {.bottoms = {0, 2, 3}});
}

TEST_CASE("LSTM and RNN gradient checks with the carried state (cont 0 at the first step)") {
  // Without expose_hidden each forward starts from the last one's final state; cont 0
  // at t 0 drops it, so the objective is a function of the bottoms alone.
  for (const std::string& yaml : {lstm_yaml(4), rnn_yaml(4)}) {
    INFO(yaml);
    auto t = test::make_layer(yaml);
    Blob x({3, 2, 5}), cont({3, 2});
    Rng rng(8);
    test::fill_gaussian(x, rng);
    set_values(cont, {0, 0, 1, 1, 1, 0});
    Blob y;
    test::check_gradients(*t.layer, {&x, &cont}, {&y}, {.bottoms = {0}});
  }
}

TEST_CASE("LSTM and RNN carry the final state into the next forward: two halves equal one whole") {
  for (const std::string& yaml : {lstm_yaml(3), rnn_yaml(3)}) {
    INFO(yaml);
    Rng rng(9);
    Blob whole({6, 2, 4}), whole_cont({6, 2});
    test::fill_gaussian(whole, rng);
    set_values(whole_cont, {0, 0, 1, 1, 1, 1, 1, 0, 1, 1, 1, 1});  // stream 1 restarts at t 3
    auto one = test::make_layer(yaml);
    Blob y_whole;
    Context ctx(3);
    one.layer->setup(ctx, {&whole, &whole_cont}, {&y_whole});
    one.layer->forward(ctx, {&whole, &whole_cont}, {&y_whole});

    auto two = test::make_layer(yaml);
    Blob half({3, 2, 4}), half_cont({3, 2}), y_half;
    const int n = half.count(), nc = half_cont.count();
    std::copy(whole.cpu_data(), whole.cpu_data() + n, half.mutable_cpu_data());
    std::copy(whole_cont.cpu_data(), whole_cont.cpu_data() + nc, half_cont.mutable_cpu_data());
    two.layer->setup(ctx, {&half, &half_cont}, {&y_half});
    copy_params(*one.layer, *two.layer);
    two.layer->forward(ctx, {&half, &half_cont}, {&y_half});
    std::vector<float> got = values(y_half);
    std::copy(whole.cpu_data() + n, whole.cpu_data() + 2 * n, half.mutable_cpu_data());
    std::copy(whole_cont.cpu_data() + nc, whole_cont.cpu_data() + 2 * nc, half_cont.mutable_cpu_data());
    two.layer->forward(ctx, {&half, &half_cont}, {&y_half});
    const std::vector<float> second = values(y_half);
    got.insert(got.end(), second.begin(), second.end());
    CHECK(largest_difference(got, values(y_whole)) < 1e-6);

    // The carried state survives a snapshot: a fresh layer restored from it continues alike.
    const std::string state = two.layer->save_state();
    auto three = test::make_layer(yaml);
    Blob y_three, y_two;
    three.layer->setup(ctx, {&half, &half_cont}, {&y_three});
    copy_params(*one.layer, *three.layer);
    three.layer->restore_state(state);
    set_values(half_cont, {1, 1, 1, 1, 1, 1});
    two.layer->forward(ctx, {&half, &half_cont}, {&y_two});
    three.layer->forward(ctx, {&half, &half_cont}, {&y_three});
    CHECK(values(y_three) == values(y_two));
    CHECK_THROWS_WITH_AS(three.layer->restore_state("garbage"), doctest::Contains("recurrent state is damaged"), Error);
    CHECK_THROWS_WITH_AS(three.layer->restore_state(state.substr(0, state.size() - 1)),
                         doctest::Contains("recurrent state is damaged"), Error);
  }
}

TEST_CASE("LSTM expose_hidden: h_T and c_T fed back as h_0 and c_0 continue the sequence") {
  Rng rng(10);
  Blob whole({4, 1, 2}), whole_cont({4, 1});
  test::fill_gaussian(whole, rng);
  set_values(whole_cont, {0, 1, 1, 1});
  auto carried = test::make_layer(lstm_yaml(3));
  Blob y_whole;
  Context ctx(4);
  carried.layer->setup(ctx, {&whole, &whole_cont}, {&y_whole});
  carried.layer->forward(ctx, {&whole, &whole_cont}, {&y_whole});

  auto exposed = test::make_layer(lstm_yaml(3, ", expose_hidden: true"));
  Blob x({2, 1, 2}), cont({2, 1}), h0({1, 1, 3}), c0({1, 1, 3}), y, h_t, c_t;
  std::copy(whole.cpu_data(), whole.cpu_data() + 4, x.mutable_cpu_data());
  set_values(cont, {0, 1});
  const BlobVec bottom = {&x, &cont, &h0, &c0}, top = {&y, &h_t, &c_t};
  exposed.layer->setup(ctx, bottom, top);
  copy_params(*carried.layer, *exposed.layer);
  exposed.layer->forward(ctx, bottom, top);
  std::vector<float> got = values(y);
  CHECK(values(h_t) == std::vector<float>(got.begin() + 3, got.end()));  // h_T is the last step's h
  h0.copy_from(h_t);
  c0.copy_from(c_t);
  std::copy(whole.cpu_data() + 4, whole.cpu_data() + 8, x.mutable_cpu_data());
  set_values(cont, {1, 1});
  exposed.layer->forward(ctx, bottom, top);
  const std::vector<float> second = values(y);
  got.insert(got.end(), second.begin(), second.end());
  CHECK(largest_difference(got, values(y_whole)) < 1e-6);
  CHECK(exposed.layer->save_state().empty());  // nothing carried: the net holds the state

  // h_0/h_T and c_0/c_T may be one blob each (a deploy net stepping through a sequence).
  auto in_place = test::make_layer(lstm_yaml(3, ", expose_hidden: true"));
  Blob h({1, 1, 3}), c({1, 1, 3}), y2;
  const BlobVec bottom2 = {&x, &cont, &h, &c}, top2 = {&y2, &h, &c};
  in_place.layer->setup(ctx, bottom2, top2);
  copy_params(*carried.layer, *in_place.layer);
  std::copy(whole.cpu_data(), whole.cpu_data() + 4, x.mutable_cpu_data());
  set_values(cont, {0, 1});
  in_place.layer->forward(ctx, bottom2, top2);
  std::copy(whole.cpu_data() + 4, whole.cpu_data() + 8, x.mutable_cpu_data());
  set_values(cont, {1, 1});
  in_place.layer->forward(ctx, bottom2, top2);
  CHECK(values(y2) == second);
}

TEST_CASE("LSTM: new streams (another N) start from zero, T may change between forwards") {
  auto t = test::make_layer(lstm_yaml(2));
  Blob x({2, 3, 2}), cont({2, 3}), y;
  Rng rng(12);
  test::fill_gaussian(x, rng);
  cont.set_data(1.f);
  Context ctx(5);
  t.layer->setup(ctx, {&x, &cont}, {&y});
  t.layer->forward(ctx, {&x, &cont}, {&y});
  // Two streams now: the state of three does not fit, so both start from zero, as a
  // fresh layer with the same weights does.
  Blob x2({3, 2, 2}), cont2({3, 2}), y2, y_fresh;
  test::fill_gaussian(x2, rng);
  cont2.set_data(1.f);
  t.layer->reshape({&x2, &cont2}, {&y2});
  t.layer->forward(ctx, {&x2, &cont2}, {&y2});
  CHECK(y2.shape() == std::vector<int>{3, 2, 2});
  auto fresh = test::make_layer(lstm_yaml(2));
  fresh.layer->setup(ctx, {&x2, &cont2}, {&y_fresh});
  copy_params(*t.layer, *fresh.layer);
  fresh.layer->forward(ctx, {&x2, &cont2}, {&y_fresh});
  CHECK(values(y2) == values(y_fresh));
}

TEST_CASE("LSTM, RNN and LSTMUnit: bad shapes and settings are clear errors") {
  Context ctx(1);
  auto setup_error = [&](const std::string& yaml, std::vector<std::vector<int>> shapes, int tops) {
    return test::error_of([&] {
      auto t = test::make_layer(yaml);
      Bottoms b;
      for (auto& s : shapes) b.add(s);
      Tops y(tops);
      t.layer->setup(ctx, b.vec, y.vec);
    });
  };
  CHECK(setup_error(lstm_yaml(2), {{3, 2, 4}, {3, 3}}, 1).find("must be (T, N) = (3, 2)") != std::string::npos);
  CHECK(setup_error(lstm_yaml(2), {{3}, {3, 1}}, 1).find("must be (timesteps T, streams N, ...)") != std::string::npos);
  CHECK(setup_error(lstm_yaml(2), {{3, 2, 4}, {3, 2}, {5, 1}}, 1).find("static input and must be (N = 2") !=
        std::string::npos);
  CHECK(setup_error(lstm_yaml(2, ", expose_hidden: true"), {{3, 2, 4}, {3, 2}, {1, 2, 2}, {1, 2, 3}}, 3)
            .find("bottom 3 is an initial state (expose_hidden) and must be (1, N, num_output) = (1, 2, 2)") !=
        std::string::npos);
  CHECK(setup_error(lstm_yaml(2, ", expose_hidden: true"), {{3, 2, 4}, {3, 2}}, 1)
            .find("takes at least 4 bottom blob(s), got 2; with expose_hidden the bottoms are x, cont, [x_static,] "
                  "h_0, c_0 and the tops the output, h_T, c_T") != std::string::npos);  // h_0 and c_0 missing
  // PyTorch's arguments: renamed, or crema's way to the same net.
  CHECK(setup_error("{type: LSTM, recurrent_param: {hidden_size: 2}}", {{3, 2, 4}, {3, 2}}, 1)
            .find("unknown key 'hidden_size' (did you mean 'num_output'? crema uses Caffe's names)") !=
        std::string::npos);
  CHECK(setup_error("{type: LSTM, recurrent_param: {num_output: 2, batch_first: true}}", {{3, 2, 4}, {3, 2}}, 1)
            .find("unknown key 'batch_first': crema's LSTM and RNN read time-major input") != std::string::npos);
  CHECK(setup_error("{type: RNN, recurrent_param: {num_output: 2, num_layers: 2}}", {{3, 2, 4}, {3, 2}}, 1)
            .find("stack as many, each reading the previous one's top") != std::string::npos);
  CHECK(setup_error("{type: Embed, embed_param: {num_embeddings: 5, num_output: 2}}", {{3, 2}}, 1)
            .find("did you mean 'input_dim'?") != std::string::npos);
  CHECK(setup_error("{type: RNN, recurrent_param: {}}", {{3, 2, 4}, {3, 2}}, 1).find("num_output") !=
        std::string::npos);
  CHECK(setup_error("{type: RNN, recurrent_param: {num_output: 2, unknown_key: 1}}", {{3, 2, 4}, {3, 2}}, 1)
            .find("unknown_key") != std::string::npos);
  CHECK(setup_error("{type: LSTMUnit}", {{1, 2, 3}, {1, 2, 3}, {1, 2}}, 2).find("must be (1, N, 4H) = (1, 2, 12)") !=
        std::string::npos);
  // The input size is fixed by the weights.
  auto t = test::make_layer(lstm_yaml(2));
  Blob x({3, 2, 4}), cont({3, 2}), y;
  t.layer->setup(ctx, {&x, &cont}, {&y});
  Blob wider({3, 2, 5});
  CHECK(test::error_of([&] { t.layer->reshape({&wider, &cont}, {&y}); }).find("was set up for 4 input values") !=
        std::string::npos);
  CHECK(test::error_of([&] { t.layer->reshape({&x, &cont}, {&x}); }).find("does not compute in place") !=
        std::string::npos);
}

TEST_CASE("LSTM and RNN: a cont value outside 0 to 1 stops the forward, naming t and n, and values between are taken") {
  for (const std::string& yaml : {lstm_yaml(2), rnn_yaml(2, "")}) {
    CAPTURE(yaml);
    auto t = test::make_layer(yaml);
    Blob x({3, 2, 4}), cont({3, 2}), y;
    Context ctx(1);
    t.layer->setup(ctx, {&x, &cont}, {&y});
    set_values(cont, {0, 0, 1, 0.5f, 1, 1});
    t.layer->forward(ctx, {&x, &cont}, {&y});
    for (const float bad : {2.f, -1.f, std::nanf("")}) {
      CAPTURE(bad);
      set_values(cont, {0, 0, 1, 1, 1, bad});
      const std::string said = test::error_of([&] { t.layer->forward(ctx, {&x, &cont}, {&y}); });
      CHECK_MESSAGE(said.find("layer '" + t.layer->name() + "': bottom 1 holds " + fmt::format("{}", bad) +
                              " at (t 2, n 1); the sequence continuation flags are 0 where a sequence starts and 1 "
                              "where it continues") != std::string::npos,
                    said);
    }
  }
}

namespace {

// A net that must remember: at every step the target is the input of two steps before
// (0 for the first two), so the top at t depends on x_{t-2}, which only a recurrent
// state can carry. Fresh random sequences each iteration (cont 0 at t 0).
std::string delay_job_yaml(const std::string& type) {
  return R"(
net:
  name: delay
  layer:
  - {name: input, type: Input, top: [x, cont, target], input_param: {shape: [{dim: [8, 16, 1]}, {dim: [8, 16]}, {dim: [8, 16, 1]}]}}
  - name: rec
    type: )" + type + R"(
    bottom: [x, cont]
    top: h
    recurrent_param: {num_output: 12, weight_filler: {type: uniform, min: -0.3, max: 0.3}, bias_filler: {type: constant}}
  - {name: out, type: InnerProduct, bottom: h, top: y, inner_product_param: {num_output: 1, axis: 2, weight_filler: {type: xavier}}}
  - {name: loss, type: EuclideanLoss, bottom: [y, target], top: loss}
type: Adam
base_lr: 0.02
momentum: 0.9
momentum2: 0.999
lr_policy: fixed
max_iter: 400
display: 0
snapshot_after_train: false
random_seed: 3
)";
}

void fill_delay_batch(test::Job& job, Rng& rng) {
  float* xv = job.blob("x").mutable_cpu_data();         // (T, N, 1)
  float* cv = job.blob("cont").mutable_cpu_data();      // (T, N)
  float* tv = job.blob("target").mutable_cpu_data();    // (T, N, 1)
  const int steps = 8, streams = 16;
  for (int t = 0; t < steps; ++t)
    for (int n = 0; n < streams; ++n) {
      xv[t * streams + n] = rng.uniform(0.f, 1.f) < 0.5f ? -1.f : 1.f;
      cv[t * streams + n] = t == 0 ? 0.f : 1.f;
    }
  for (int t = 0; t < steps; ++t)
    for (int n = 0; n < streams; ++n) tv[t * streams + n] = t < 2 ? 0.f : xv[(t - 2) * streams + n];
}

double delay_task_loss_ratio(const std::string& type) {
  auto job = test::make_job(delay_job_yaml(type));
  Rng rng(99);
  double first = 0, last = 0;
  for (int i = 0; i < 400; ++i) {
    fill_delay_batch(*job, rng);
    test::step(*job, 1);
    const double loss = job->blob("loss").cpu_data()[0];
    if (i < 20) first += loss / 20;
    if (i >= 380) last += loss / 20;
  }
  return last / first;
}

}  // namespace

TEST_CASE("LSTM and RNN nets learn to recall the input of two steps before") {
  // Guessing 0 gives loss 6 × 16 / (2 × 8) = 6 per batch; a net without memory cannot do
  // better. Both must bring it near zero.
  const double lstm = delay_task_loss_ratio("LSTM");
  const double rnn = delay_task_loss_ratio("RNN");
  MESSAGE("final / initial loss: LSTM " << lstm << ", RNN " << rnn);
  CHECK(lstm < 0.1);
  CHECK(rnn < 0.1);
}

TEST_CASE("a Caffe prototxt LSTM net trains from the command line, 3 + resume 3 equals 6, carried state included") {
  // cont is 1 everywhere, so every batch continues the streams of the one before: the
  // resumed run must restore the LSTM's carried state to match the straight run.
  test::TempDir dir;
  test::write_file(dir / "net.prototxt", R"(name: "seq"
layer { name: "data" type: "DummyData" top: "x" top: "cont" top: "target"
  dummy_data_param {
    shape { dim: 4 dim: 3 dim: 5 } shape { dim: 4 dim: 3 } shape { dim: 4 dim: 3 dim: 2 }
    data_filler { type: "gaussian" std: 1 } data_filler { type: "constant" value: 1 } data_filler { type: "gaussian" }
  } }
layer { name: "lstm1" type: "LSTM" bottom: "x" bottom: "cont" top: "h"
  recurrent_param { num_output: 6 weight_filler { type: "uniform" min: -0.1 max: 0.1 } bias_filler { type: "constant" value: 0 } } }
layer { name: "out" type: "InnerProduct" bottom: "h" top: "y"
  inner_product_param { num_output: 2 axis: 2 weight_filler { type: "xavier" } } }
layer { name: "loss" type: "EuclideanLoss" bottom: "y" bottom: "target" top: "loss" }
)");
  test::write_file(dir / "solver.prototxt", "net: \"" + (dir / "net.prototxt") +
                                                "\"\nbase_lr: 0.1\nmomentum: 0.9\nlr_policy: \"fixed\"\nmax_iter: 6\n"
                                                "display: 1\nrandom_seed: 5\n");
  const std::string train = test::crema_binary() + " train " + (dir / "solver.prototxt");
  const auto straight = test::run(train + " --set snapshot_prefix=" + (dir / "a/seq"));
  REQUIRE_MESSAGE(straight.status == 0, straight.output);
  const auto first = test::run(train + " --set max_iter=3 --set snapshot_prefix=" + (dir / "b/seq"));
  REQUIRE_MESSAGE(first.status == 0, first.output);
  const auto resumed =
      test::run(train + " --set snapshot_prefix=" + (dir / "b/seq") + " --snapshot " + (dir / "b/seq_iter_3.solverstate.h5"));
  REQUIRE_MESSAGE(resumed.status == 0, resumed.output);
  const auto a = io::load_weights(dir / "a/seq_iter_6.caffemodel.h5");
  const auto b = io::load_weights(dir / "b/seq_iter_6.caffemodel.h5");
  REQUIRE(a.size() == b.size());
  int compared = 0;
  for (size_t i = 0; i < a.size(); ++i)
    for (size_t j = 0; j < a[i].blobs.size(); ++j) {
      const Blob& x = a[i].blobs[j].second;
      const Blob& y = b[i].blobs[j].second;
      REQUIRE(x.count() == y.count());
      INFO(a[i].layer << " blob " << j);
      CHECK(std::equal(x.cpu_data(), x.cpu_data() + x.count(), y.cpu_data()));
      ++compared;
    }
  CHECK(compared == 5);  // W_xc, b_c, W_hc, and the InnerProduct's two
}

TEST_CASE("GPU recurrent: LSTM and RNN nets train on the GPU as on the CPU, moving nothing across the bus in a step") {
  SKIP_WITHOUT_DEVICE();
  for (const std::string type : {"LSTM", "RNN"}) {
    INFO(type);
    std::unique_ptr<test::Job> jobs[2];
    for (int gpu = 0; gpu < 2; ++gpu) {
      test::QuietLog quiet;
      auto& j = jobs[gpu];
      j = std::make_unique<test::Job>();
      j->root = std::make_unique<Node>(io::parse_yaml(delay_job_yaml(type), "solver.yaml"));
      j->spec = SolverSpec::parse(*j->root);
      j->net = NetSpec::parse(*j->spec.net);
      j->ctx = gpu ? Context::gpu(0, j->spec.random_seed) : std::make_unique<Context>(j->spec.random_seed);
      j->solver = std::make_unique<Solver>(j->spec, j->net, *j->ctx);
      Rng rng(99);
      for (int i = 0; i < 5; ++i) {
        fill_delay_batch(*j, rng);
        test::step(*j, 1);
      }
    }
    jobs[1]->ctx->cuda()->synchronize();
    const auto& on_gpu = jobs[1]->solver->net().learnable_params();
    const auto& on_cpu = jobs[0]->solver->net().learnable_params();
    REQUIRE(on_gpu.size() == on_cpu.size());
    for (size_t p = 0; p < on_gpu.size(); ++p)
      for (int i = 0; i < on_gpu[p]->count(); ++i) {
        INFO("parameter " << p << " element " << i);
        CHECK(on_gpu[p]->cpu_data()[i] == doctest::Approx(on_cpu[p]->cpu_data()[i]).epsilon(1e-3).scale(0.1));
      }
    // Steady state on the same batch: no blob crosses the bus (the loss value comes to
    // the host outside the blobs, the carried state stays on the device).
    const long h2d = SyncedMemory::host_to_device_copies(), d2h = SyncedMemory::device_to_host_copies();
    test::step(*jobs[1], 3);
    jobs[1]->ctx->cuda()->synchronize();
    CHECK(SyncedMemory::host_to_device_copies() == h2d);
    CHECK(SyncedMemory::device_to_host_copies() == d2h);
  }
}
