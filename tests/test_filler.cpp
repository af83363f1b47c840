// Filler statistics on large blobs, against the distributions Caffe's fillers
// define (expected values worked out from the definitions, not from filler.cpp).
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "engine/blob.hpp"
#include "engine/error.hpp"
#include "engine/filler.hpp"
#include "engine/rng.hpp"
#include "io/yaml_config.hpp"

using namespace crema;

namespace {

struct Stats {
  double mean = 0, std = 0, min = 0, max = 0;
  double zero_fraction = 0;
};

Stats stats(const Blob& b) {
  Stats s;
  const float* d = b.cpu_data();
  const int n = b.count();
  s.min = s.max = d[0];
  double sum = 0, zeros = 0;
  for (int i = 0; i < n; ++i) {
    sum += d[i];
    s.min = std::min(s.min, static_cast<double>(d[i]));
    s.max = std::max(s.max, static_cast<double>(d[i]));
    if (d[i] == 0.f) ++zeros;
  }
  s.mean = sum / n;
  double sq = 0;
  for (int i = 0; i < n; ++i) sq += (d[i] - s.mean) * (d[i] - s.mean);
  s.std = std::sqrt(sq / n);
  s.zero_fraction = zeros / n;
  return s;
}

FillerSpec parse_filler(const std::string& yaml) {
  const Node n = io::parse_yaml(yaml, "filler.yaml");
  return FillerSpec::parse(MapReader(&n));
}

// The statistics of a fresh blob of `shape` filled by the filler `yaml` from Rng(seed).
Stats filled_stats(const std::string& yaml, const std::vector<int>& shape = {200, 500}, uint64_t seed = 1701) {
  Blob b(shape);
  Rng rng(seed);
  fill(parse_filler(yaml), b, rng);
  return stats(b);
}

}  // namespace

TEST_CASE("filler: constant fills every element with the value") {
  Blob b({200, 500});
  Rng rng(1701);
  FillerSpec f;
  f.type = "constant";
  f.value = 3.5f;
  fill(f, b, rng);
  int wrong = 0;
  for (int i = 0; i < b.count(); ++i) wrong += b.cpu_data()[i] != 3.5f;
  CHECK(wrong == 0);
  // The default filler is constant 0.
  fill(FillerSpec{}, b, rng);
  const Stats s = stats(b);
  CHECK(s.min == 0.0);
  CHECK(s.max == 0.0);
}

TEST_CASE("filler: uniform stays in min..max, covers it and has mean (min+max)/2") {
  const Stats s = filled_stats("{type: uniform, min: -2, max: 3}");
  CHECK(s.min >= -2.0);
  CHECK(s.max < 3.0);
  CHECK(s.min < -1.99);
  CHECK(s.max > 2.99);
  // Mean 0.5, standard deviation (max-min)/sqrt(12) = 5/sqrt(12) = 1.4434.
  CHECK(s.mean == doctest::Approx(0.5).epsilon(0.04));
  CHECK(s.std == doctest::Approx(1.4434).epsilon(0.01));
}

TEST_CASE("filler: gaussian has the requested mean and standard deviation") {
  const Stats s = filled_stats("{type: gaussian, mean: 1.5, std: 2}");
  CHECK(std::fabs(s.mean - 1.5) < 0.03);  // standard error 2/sqrt(1e5) = 0.0063
  CHECK(s.std == doctest::Approx(2.0).epsilon(0.02));
  CHECK(s.zero_fraction < 1e-4);
}

TEST_CASE("filler: sparse gaussian keeps sparse/num_outputs of the values") {
  // num_outputs = shape(0) = 200; sparse 50 keeps a fraction 50/200 = 0.25.
  Blob b({200, 500});
  Rng rng(1701);
  const FillerSpec f = parse_filler("{type: gaussian, std: 1, sparse: 50}");
  fill(f, b, rng);
  const Stats s = stats(b);
  CHECK(s.zero_fraction == doctest::Approx(0.75).epsilon(0.02));
  // The values kept are still N(0, 1): E[w²] = 0.25 · 1.
  double sq = 0;
  for (int i = 0; i < b.count(); ++i) sq += static_cast<double>(b.cpu_data()[i]) * b.cpu_data()[i];
  CHECK(sq / b.count() == doctest::Approx(0.25).epsilon(0.03));

  // sparse 150 of 200 -> 25 % zeros.
  const FillerSpec f2 = parse_filler("{type: gaussian, std: 1, sparse: 150}");
  fill(f2, b, rng);
  CHECK(stats(b).zero_fraction == doctest::Approx(0.25).epsilon(0.04));
}

TEST_CASE("filler: xavier is uniform in ±sqrt(3/n) with Caffe's fan_in, fan_out and average") {
  struct Case {
    std::vector<int> shape;
    const char* norm;
    double n;
  };
  // fan_in = count / shape(0), fan_out = count / shape(1).
  const std::vector<Case> cases = {
      {{200, 500}, "FAN_IN", 500},        {{200, 500}, "FAN_OUT", 200},
      {{200, 500}, "AVERAGE", 350},       {{20, 10, 25, 20}, "FAN_IN", 5000},
      {{20, 10, 25, 20}, "FAN_OUT", 10000}, {{20, 10, 25, 20}, "AVERAGE", 7500},
  };
  for (const auto& c : cases) {
    CAPTURE(c.norm);
    CAPTURE(c.n);
    const Stats s = filled_stats(std::string("{type: xavier, variance_norm: ") + c.norm + "}", c.shape);
    const double scale = std::sqrt(3.0 / c.n);
    CHECK(s.min >= -scale * (1 + 1e-6));
    CHECK(s.max <= scale * (1 + 1e-6));
    CHECK(s.min < -0.99 * scale);
    CHECK(s.max > 0.99 * scale);
    CHECK(std::fabs(s.mean) < 0.02 * scale);
    // Variance of U(-a, a) is a²/3 = 1/n.
    CHECK(s.std == doctest::Approx(std::sqrt(1.0 / c.n)).epsilon(0.02));
  }
  // The default is FAN_IN.
  const Stats d = filled_stats("{type: xavier}", {200, 500}, 3);
  CHECK(d.max <= std::sqrt(3.0 / 500) * (1 + 1e-6));
  CHECK(d.max > 0.99 * std::sqrt(3.0 / 500));
}

TEST_CASE("filler: msra is gaussian with std sqrt(2/n)") {
  struct Case {
    const char* norm;
    double n;
  };
  for (const Case& c : {Case{"FAN_IN", 500}, Case{"FAN_OUT", 200}, Case{"AVERAGE", 350}}) {
    CAPTURE(c.norm);
    const Stats s = filled_stats(std::string("{type: msra, variance_norm: ") + c.norm + "}");
    const double sd = std::sqrt(2.0 / c.n);
    CHECK(std::fabs(s.mean) < 0.02 * sd);
    CHECK(s.std == doctest::Approx(sd).epsilon(0.02));
    // A gaussian, not a uniform: values beyond 3 std exist (about 0.27 %).
    CHECK(std::max(-s.min, s.max) > 3.0 * sd);
  }
}

TEST_CASE("filler: bilinear gives the upsampling kernel") {
  // K = 4: f = ceil(4/2) = 2, c = (2f - 1 - f%2) / (2f) = 3/4;
  // per axis 1 - |x/f - c| for x = 0..3 = 0.25, 0.75, 0.75, 0.25; the kernel is the outer product.
  Blob b({2, 1, 4, 4});
  Rng rng(1701);
  fill(parse_filler("{type: bilinear}"), b, rng);
  const float a[4] = {0.25f, 0.75f, 0.75f, 0.25f};
  for (int ch = 0; ch < 2; ++ch)
    for (int y = 0; y < 4; ++y)
      for (int x = 0; x < 4; ++x) {
        CAPTURE(ch);
        CAPTURE(y);
        CAPTURE(x);
        CHECK(b.cpu_data()[(ch * 4 + y) * 4 + x] == doctest::Approx(a[y] * a[x]));
      }
  CHECK(b.cpu_data()[0] == doctest::Approx(0.0625));
  CHECK(b.cpu_data()[5] == doctest::Approx(0.5625));
  CHECK(b.cpu_data()[1] == doctest::Approx(0.1875));

  // K = 5: f = 3, c = (6 - 1 - 1) / 6 = 2/3; per axis 1/3, 2/3, 1, 2/3, 1/3.
  Blob b5({1, 1, 5, 5});
  fill(parse_filler("{type: bilinear}"), b5, rng);
  const double a5[5] = {1.0 / 3, 2.0 / 3, 1.0, 2.0 / 3, 1.0 / 3};
  for (int y = 0; y < 5; ++y)
    for (int x = 0; x < 5; ++x) CHECK(b5.cpu_data()[y * 5 + x] == doctest::Approx(a5[y] * a5[x]));

  Blob bad({1, 1, 3, 4});
  CHECK_THROWS_AS(fill(parse_filler("{type: bilinear}"), bad, rng), Error);
}

TEST_CASE("filler: positive_unitball rows are positive and sum to 1") {
  Blob b({200, 500});
  Rng rng(1701);
  fill(parse_filler("{type: positive_unitball}"), b, rng);
  int negative = 0, bad_rows = 0;
  for (int r = 0; r < 200; ++r) {
    double sum = 0;
    for (int j = 0; j < 500; ++j) {
      const float v = b.cpu_data()[r * 500 + j];
      negative += v < 0.f;
      sum += v;
    }
    bad_rows += std::fabs(sum - 1.0) > 1e-5;
  }
  CHECK(negative == 0);
  CHECK(bad_rows == 0);
  const Stats s = stats(b);
  CHECK(s.min >= 0.0);
  CHECK(s.mean == doctest::Approx(1.0 / 500).epsilon(1e-4));
  // Uniform before normalising: values spread over (0, 2/500) rather than all equal.
  CHECK(s.max > 1.5 / 500);
  CHECK(s.min < 0.1 / 500);

  // Rows of a 4-D blob are everything after axis 0.
  Blob c({3, 2, 2, 2});
  fill(parse_filler("{type: positive_unitball}"), c, rng);
  for (int r = 0; r < 3; ++r) {
    double sum = 0;
    for (int j = 0; j < 8; ++j) sum += c.cpu_data()[r * 8 + j];
    CHECK(sum == doctest::Approx(1.0).epsilon(1e-5));
  }
}

TEST_CASE("filler: the same seed gives the same values, another seed others") {
  for (const char* yaml : {"{type: uniform}", "{type: gaussian}", "{type: xavier}", "{type: msra}",
                           "{type: gaussian, sparse: 20}", "{type: positive_unitball}"}) {
    CAPTURE(std::string(yaml));
    const FillerSpec f = parse_filler(yaml);
    Blob a({40, 50}), b({40, 50}), c({40, 50});
    Rng ra(42), rb(42), rc(43);
    fill(f, a, ra);
    fill(f, b, rb);
    fill(f, c, rc);
    int same = 0, differ = 0;
    for (int i = 0; i < a.count(); ++i) {
      if (a.cpu_data()[i] == b.cpu_data()[i]) ++same;
      if (a.cpu_data()[i] != c.cpu_data()[i]) ++differ;
    }
    CHECK(same == a.count());
    CHECK(differ > a.count() / 2);
    // The stream advances: a second fill from the same generator differs.
    fill(f, b, rb);
    int differ2 = 0;
    for (int i = 0; i < a.count(); ++i)
      if (a.cpu_data()[i] != b.cpu_data()[i]) ++differ2;
    CHECK(differ2 > a.count() / 2);
  }
}

TEST_CASE("filler: parse rejects unknown types, keys and bad ranges") {
  CHECK_THROWS_WITH_AS(parse_filler("{type: gausian}"), doctest::Contains("did you mean 'gaussian'?"), ConfigError);
  CHECK_THROWS_WITH_AS(parse_filler("{type: xavier, varience_norm: FAN_IN}"),
                       doctest::Contains("did you mean 'variance_norm'?"), ConfigError);
  CHECK_THROWS_WITH_AS(parse_filler("{type: xavier, variance_norm: FAN_INN}"), doctest::Contains("did you mean 'FAN_IN'?"),
                       ConfigError);
  CHECK_THROWS_WITH_AS(parse_filler("{type: uniform, min: 2, max: 1}"), doctest::Contains("min"), ConfigError);
  CHECK_THROWS_WITH_AS(parse_filler("{type: gaussian, std: -1}"), doctest::Contains("std"), ConfigError);
  const FillerSpec f = parse_filler("{type: msra, variance_norm: AVERAGE}");
  CHECK(f.type == "msra");
  CHECK(f.variance_norm == FillerSpec::VarianceNorm::AVERAGE);
}
