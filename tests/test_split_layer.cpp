#include "layer_test_util.hpp"

using namespace crema;

TEST_CASE("Split tops share the bottom's data, backward sums their gradients") {
  for (int k = 1; k <= 3; ++k) {
    CAPTURE(k);
    auto t = test::make_layer("{type: Split}");
    Blob x({2, 3});
    std::vector<Blob> tops(static_cast<size_t>(k));
    BlobVec top;
    for (auto& b : tops) top.push_back(&b);
    Rng rng(1);
    test::fill_gaussian(x, rng);
    Context ctx(1);
    t.layer->setup(ctx, {&x}, top);
    t.layer->forward(ctx, {&x}, top);
    for (Blob* y : top) {
      CHECK(y->shape() == x.shape());
      CHECK(y->cpu_data() == x.cpu_data());
    }
    for (int j = 0; j < k; ++j)
      for (int i = 0; i < x.count(); ++i) top[static_cast<size_t>(j)]->mutable_cpu_diff()[i] = static_cast<float>((j + 1) * i);
    x.set_diff(99.f);  // overwritten, not accumulated into
    t.layer->backward(ctx, top, {true}, {&x});
    const int weight = k * (k + 1) / 2;  // 1 + 2 + ... + k
    for (int i = 0; i < x.count(); ++i) CHECK(x.cpu_diff()[i] == static_cast<float>(weight * i));
  }
}

TEST_CASE("Split refuses to run in place") {
  auto t = test::make_layer("{type: Split}");
  Blob x({2}), y;
  Context ctx(1);
  CHECK_THROWS_AS(t.layer->setup(ctx, {&x}, {&y, &x}), ConfigError);
}

TEST_CASE("Split gradient") {
  for (int k = 1; k <= 3; ++k) {
    auto t = test::make_layer("{type: Split}");
    Blob x({2, 3, 2});
    std::vector<Blob> tops(static_cast<size_t>(k));
    BlobVec top;
    for (auto& b : tops) top.push_back(&b);
    Rng rng(3);
    test::fill_gaussian(x, rng);
    test::check_gradients(*t.layer, {&x}, top);
  }
}
