// transform_param's augmentation on the DataTransformer alone: resize and
// random_resized_crop against cv::resize, colour jitter by its invariants, std by
// hand, to_pixels as the inverse, seeding, threads and the parse errors.
// Caffe's crop / mirror / mean / scale are checked through the Data layer in
// test_lmdb_data.cpp.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <fstream>
#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>
#include <set>
#include <thread>
#include <vector>

#include "datasets/data_transformer.hpp"
#include "io/datum.hpp"
#include "io/yaml_config.hpp"
#include "test_util.hpp"

using namespace crema;

namespace {

DataTransformer transformer(const std::string& yaml, Phase phase) {
  const Node node = io::parse_yaml(yaml, "<test>");
  return DataTransformer(TransformParams::parse(MapReader(&node)), phase);
}

std::string parse_error(const std::string& yaml) {
  try {
    transformer(yaml, Phase::TRAIN);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

// (C, H, W) bytes from a seeded stream, each in [lo, hi].
std::vector<uint8_t> random_image(int c, int h, int w, int lo, int hi, uint64_t seed) {
  Rng rng(seed);
  std::vector<uint8_t> image(static_cast<size_t>(c) * h * w);
  for (auto& v : image) v = static_cast<uint8_t>(lo + static_cast<int>(rng.below(static_cast<uint32_t>(hi - lo + 1))));
  return image;
}

// (1, H, W) whose value is the column x.
std::vector<float> column_ramp(int h, int w) {
  std::vector<float> image(static_cast<size_t>(h) * w);
  for (size_t i = 0; i < image.size(); ++i) image[i] = static_cast<float>(i % static_cast<size_t>(w));
  return image;
}

template <class T>
std::vector<float> run(const DataTransformer& t, const std::vector<T>& src, int c, int h, int w, uint64_t seed) {
  const auto s = t.output_shape(c, h, w);
  std::vector<float> out(static_cast<size_t>(s[0]) * s[1] * s[2]);
  Rng rng(seed);
  t.transform(src.data(), c, h, w, out.data(), rng);
  return out;
}

// cv::resize (bilinear) of the region (top, left, rows, cols) of a float (H, W) plane.
std::vector<float> cv_resized(const float* plane, int h, int w, cv::Rect region, int out_h, int out_w) {
  const cv::Mat in(h, w, CV_32F, const_cast<float*>(plane));
  cv::Mat out;
  cv::resize(in(region), out, cv::Size(out_w, out_h), 0, 0, cv::INTER_LINEAR);
  return {out.ptr<float>(), out.ptr<float>() + out.total()};
}

// The message output_shape throws, or "".
std::string shape_error(const DataTransformer& t, int c, int h, int w) {
  try {
    t.output_shape(c, h, w);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

std::vector<float> as_floats(const std::vector<uint8_t>& v) { return {v.begin(), v.end()}; }

}  // namespace

TEST_CASE("DataTransformer resize: the shorter side becomes N, each plane is cv::resize of the input") {
  const auto image = random_image(2, 6, 10, 0, 255, 3);
  const auto as_float = as_floats(image);
  for (Phase phase : {Phase::TRAIN, Phase::TEST}) {
    const DataTransformer t = transformer("{resize: 3}", phase);
    CHECK(t.output_shape(2, 6, 10) == std::vector<int>{2, 3, 5});
    CHECK(t.output_shape(1, 9, 4) == std::vector<int>{1, 6, 3});  // 9 * 3 / 4 = 6.75, rounded down
    const auto out = run(t, image, 2, 6, 10, 1);
    std::vector<float> want;
    for (int c = 0; c < 2; ++c) {
      const auto plane = cv_resized(as_float.data() + c * 60, 6, 10, cv::Rect(0, 0, 10, 6), 3, 5);
      want.insert(want.end(), plane.begin(), plane.end());
    }
    CHECK(out == want);
    CHECK(run(t, as_float, 2, 6, 10, 1) == want);  // float records resize the same way
  }
  // An upscale, and a crop of the resized image.
  const DataTransformer up = transformer("{resize: 12, crop_size: 4}", Phase::TEST);
  CHECK(up.output_shape(2, 6, 10) == std::vector<int>{2, 4, 4});
  const auto plane = cv_resized(as_float.data(), 6, 10, cv::Rect(0, 0, 10, 6), 12, 20);
  const auto out = run(up, image, 2, 6, 10, 1);
  for (int y = 0; y < 4; ++y)
    for (int x = 0; x < 4; ++x) CHECK(out[y * 4 + x] == plane[(4 + y) * 20 + 8 + x]);  // centre: (12-4)/2, (20-4)/2
  const std::string too_big = shape_error(transformer("{resize: 3, crop_size: 4}", Phase::TEST), 2, 6, 10);
  CHECK(contains(too_big, "crop_size 4 is larger than the 3x5 input after resize: 3"));
}

TEST_CASE("DataTransformer random_resized_crop TRAIN: SxS windows that differ by seed and keep the x order") {
  const auto ramp = column_ramp(32, 48);
  const DataTransformer t = transformer("{random_resized_crop: {size: 8}}", Phase::TRAIN);
  CHECK(t.output_shape(1, 32, 48) == std::vector<int>{1, 8, 8});
  CHECK(t.output_shape(3, 5, 100) == std::vector<int>{3, 8, 8});
  std::set<std::pair<float, float>> spans;
  for (uint64_t seed = 1; seed <= 40; ++seed) {
    const auto out = run(t, ramp, 1, 32, 48, seed);
    for (int y = 0; y < 8; ++y)
      for (int x = 0; x < 8; ++x) {
        CHECK(out[y * 8 + x] == out[x]);  // every row alike: the value encodes x only
        if (x > 0) CHECK(out[y * 8 + x] >= out[y * 8 + x - 1]);
      }
    CHECK(out[0] >= 0.f);
    CHECK(out[7] <= 47.f);
    spans.insert({out[0], out[7]});
  }
  CHECK(spans.size() > 20);
}

TEST_CASE("DataTransformer random_resized_crop TRAIN: a fitting window and the centre fallback, by hand") {
  const auto ramp = column_ramp(32, 48);
  // Area 1 and ratio 1.5 is the whole 32x48 image: no choice left.
  const auto whole = transformer("{random_resized_crop: {size: 8, scale: [1, 1], ratio: [1.5, 1.5]}}", Phase::TRAIN);
  CHECK(run(whole, ramp, 1, 32, 48, 5) == cv_resized(ramp.data(), 32, 48, cv::Rect(0, 0, 48, 32), 8, 8));
  // A square of the whole area (39x39) never fits in 32 rows: the fallback is the
  // centre 32x32, the image clamped to ratio 1.
  const auto square = transformer("{random_resized_crop: {size: 8, scale: [1, 1], ratio: [1, 1]}}", Phase::TRAIN);
  CHECK(run(square, ramp, 1, 32, 48, 5) == cv_resized(ramp.data(), 32, 48, cv::Rect(8, 0, 32, 32), 8, 8));
}

TEST_CASE("DataTransformer random_resized_crop TEST: shorter side to S, then the centre SxS, whatever the seed") {
  const auto ramp = column_ramp(32, 48);
  const DataTransformer t = transformer("{random_resized_crop: {size: 16}}", Phase::TEST);
  const auto resized = cv_resized(ramp.data(), 32, 48, cv::Rect(0, 0, 48, 32), 16, 24);
  std::vector<float> want;
  for (int y = 0; y < 16; ++y) want.insert(want.end(), resized.begin() + y * 24 + 4, resized.begin() + y * 24 + 20);
  CHECK(run(t, ramp, 1, 32, 48, 1) == want);
  CHECK(run(t, ramp, 1, 32, 48, 2) == want);
}

TEST_CASE("DataTransformer: one seed gives one result, another seed another") {
  const auto image = random_image(3, 20, 30, 0, 255, 9);
  const DataTransformer t = transformer(
      "{random_resized_crop: {size: 12}, mirror: true, color_jitter: {brightness: 0.4, contrast: 0.4, saturation: 0.4}, "
      "mean_value: [100, 110, 120], scale: 0.02}",
      Phase::TRAIN);
  const auto a = run(t, image, 3, 20, 30, 7);
  CHECK(run(t, image, 3, 20, 30, 7) == a);
  CHECK(run(t, image, 3, 20, 30, 8) != a);
}

TEST_CASE("DataTransformer: transform is safe from several threads at once") {
  const auto image = random_image(3, 20, 30, 0, 255, 4);
  const DataTransformer t = transformer(
      "{resize: 16, random_resized_crop: {size: 10}, mirror: true, color_jitter: {contrast: 0.5}}", Phase::TRAIN);
  std::vector<std::vector<float>> want, got(8);
  for (uint64_t i = 0; i < got.size(); ++i) want.push_back(run(t, image, 3, 20, 30, i + 1));
  std::vector<std::thread> threads;
  for (uint64_t i = 0; i < got.size(); ++i)
    threads.emplace_back([&, i] {
      for (int repeat = 0; repeat < 20; ++repeat) got[i] = run(t, image, 3, 20, 30, i + 1);
    });
  for (auto& th : threads) th.join();
  CHECK(got == want);
}

TEST_CASE("DataTransformer color_jitter brightness: every value scaled by one factor in the range") {
  const auto image = random_image(3, 5, 6, 10, 150, 2);  // 150 * 1.4 < 255: no clamping
  const DataTransformer t = transformer("{color_jitter: {brightness: 0.4}}", Phase::TRAIN);
  std::set<float> factors;
  for (uint64_t seed = 1; seed <= 10; ++seed) {
    const auto out = run(t, image, 3, 5, 6, seed);
    const float f = out[0] / image[0];
    CHECK(f >= 0.6f);
    CHECK(f <= 1.4f);
    for (size_t i = 0; i < image.size(); ++i) CHECK(out[i] / image[i] == doctest::Approx(f).epsilon(1e-5));
    factors.insert(f);
  }
  CHECK(factors.size() == 10);
  CHECK(run(transformer("{color_jitter: {brightness: 0.4}}", Phase::TEST), image, 3, 5, 6, 1) == as_floats(image));
}

TEST_CASE("DataTransformer color_jitter: saturation leaves grey alone, contrast keeps the mean grey level") {
  auto grey = random_image(1, 4, 5, 0, 255, 6);
  std::vector<uint8_t> grey3;
  for (int c = 0; c < 3; ++c) grey3.insert(grey3.end(), grey.begin(), grey.end());
  const DataTransformer saturation = transformer("{color_jitter: {saturation: 0.9}}", Phase::TRAIN);
  const auto colour = random_image(3, 4, 5, 0, 255, 7);
  int changed = 0;
  for (uint64_t seed = 1; seed <= 5; ++seed) {
    const auto out = run(saturation, grey3, 3, 4, 5, seed);
    for (size_t i = 0; i < grey3.size(); ++i) CHECK(out[i] == doctest::Approx(grey3[i]).epsilon(1e-4));
    CHECK(run(saturation, grey, 1, 4, 5, seed) == as_floats(grey));  // one channel: unchanged
    changed += run(saturation, colour, 3, 4, 5, seed) != as_floats(colour);
  }
  CHECK(changed == 5);

  const auto mid = random_image(3, 6, 6, 100, 150, 8);  // 0.5 more contrast stays inside 0..255
  const auto mean_grey = [](const std::vector<float>& v) {
    double sum = 0;
    for (size_t i = 0; i < 36; ++i) sum += 0.114 * v[i] + 0.587 * v[36 + i] + 0.299 * v[72 + i];
    return sum / 36;
  };
  const DataTransformer contrast = transformer("{color_jitter: {contrast: 0.5}}", Phase::TRAIN);
  for (uint64_t seed = 1; seed <= 5; ++seed) {
    const auto out = run(contrast, mid, 3, 6, 6, seed);
    CHECK(out != as_floats(mid));
    CHECK(mean_grey(out) == doctest::Approx(mean_grey(as_floats(mid))).epsilon(1e-5));
  }
}

TEST_CASE("DataTransformer std: out = (v - mean) * scale / std, by hand") {
  const DataTransformer t = transformer("{mean_value: [10, 20], scale: 0.5, std: [2, 4]}", Phase::TEST);
  const std::vector<uint8_t> image{30, 50, 40, 60};  // (2, 1, 2)
  CHECK(run(t, image, 2, 1, 2, 1) == std::vector<float>{5, 10, 2.5f, 5});
  CHECK(run(transformer("{std: 4}", Phase::TEST), image, 2, 1, 2, 1) == std::vector<float>{7.5f, 12.5f, 10, 15});
  CHECK(contains(shape_error(transformer("{std: [1, 2, 3]}", Phase::TEST), 2, 1, 2),
                 "transform_param.std has 3 values but the data has 2 channels"));
}

TEST_CASE("DataTransformer to_pixels undoes mean, scale and std, rounding and clamping") {
  const auto image = random_image(3, 4, 5, 0, 255, 11);
  const DataTransformer t = transformer(
      "{mean_value: [103.53, 116.28, 123.675], scale: 0.00392156862, std: [0.225, 0.224, 0.229]}", Phase::TEST);
  const auto sample = run(t, image, 3, 4, 5, 1);
  std::vector<uint8_t> back(image.size());
  t.to_pixels(sample.data(), 3, 4, 5, back.data());
  CHECK(back == image);
  const std::vector<float> extremes{1000.f, -1000.f, NAN};
  std::vector<uint8_t> clamped(3);
  transformer("{}", Phase::TEST).to_pixels(extremes.data(), 1, 1, 3, clamped.data());
  CHECK(clamped == std::vector<uint8_t>{255, 0, 0});

  // mean_file: the mean image at each output pixel's source, which a random crop and
  // mirror choose, so it cannot be added back afterwards: to_pixels refuses a sample the
  // mean image was taken from, and with the image left in gives back the window itself.
  test::TempDir dir;
  std::vector<float> mean(2 * 4 * 5);
  for (size_t i = 0; i < mean.size(); ++i) mean[i] = static_cast<float>((i * 37) % 101);
  std::ofstream(dir / "mean.binaryproto", std::ios::binary) << io::encode_mean_blob(2, 4, 5, mean);
  const std::string keys = "{mean_file: " + (dir / "mean.binaryproto") + ", scale: 0.1, crop_size: 3, mirror: true}";
  DataTransformer with_file = transformer(keys, Phase::TRAIN);
  with_file.load_mean_file();
  const auto pixels = random_image(2, 4, 5, 0, 255, 12);
  std::vector<uint8_t> restored(2 * 3 * 3);
  CHECK_THROWS_AS(with_file.to_pixels(run(with_file, pixels, 2, 4, 5, 1).data(), 2, 3, 3, restored.data()), Error);
  DataTransformer shown = transformer(keys, Phase::TRAIN);
  shown.load_mean_file();
  shown.leave_mean_image_in();
  std::set<bool> flips;
  for (uint64_t seed = 1; seed <= 16; ++seed) {
    shown.to_pixels(run(shown, pixels, 2, 4, 5, seed).data(), 2, 3, 3, restored.data());
    // The same draws as the net's sample: restored is its window of pixels, the mean
    // image's at the same place the difference between the two.
    const auto net_sample = run(with_file, pixels, 2, 4, 5, seed);
    bool found = false;
    for (int top = 0; top <= 1 && !found; ++top)
      for (int left = 0; left <= 2 && !found; ++left)
        for (const bool flip : {false, true}) {
          bool same = true;
          for (int c = 0; c < 2; ++c)
            for (int y = 0; y < 3; ++y)
              for (int x = 0; x < 3; ++x) {
                const size_t in = (static_cast<size_t>(c) * 4 + top + y) * 5 + left + (flip ? 2 - x : x);
                const size_t out = (static_cast<size_t>(c) * 3 + y) * 3 + x;
                same = same && restored[out] == pixels[in] &&
                       std::abs(net_sample[out] - (pixels[in] - mean[in]) * 0.1f) < 1e-4f;
              }
          if (same) {
            found = true;
            flips.insert(flip);
            break;
          }
        }
    CHECK(found);
  }
  CHECK(flips.size() == 2);
}

TEST_CASE("DataTransformer mean_file with resize: the mean image has the resized size") {
  test::TempDir dir;
  std::vector<float> mean(2 * 4);
  for (size_t i = 0; i < mean.size(); ++i) mean[i] = static_cast<float>(i);
  std::ofstream(dir / "mean.binaryproto", std::ios::binary) << io::encode_mean_blob(1, 2, 4, mean);
  DataTransformer t = transformer("{resize: 2, mean_file: " + (dir / "mean.binaryproto") + "}", Phase::TEST);
  t.load_mean_file();
  CHECK(t.output_shape(1, 4, 8) == std::vector<int>{1, 2, 4});
  const auto image = as_floats(random_image(1, 4, 8, 0, 255, 13));
  const auto resized = cv_resized(image.data(), 4, 8, cv::Rect(0, 0, 8, 4), 2, 4);
  const auto out = run(t, image, 1, 4, 8, 1);
  for (size_t i = 0; i < out.size(); ++i) CHECK(out[i] == resized[i] - mean[i]);
  CHECK(contains(shape_error(t, 1, 4, 4), "1x2x4 mean image but the data is 1x2x2 after resize: 2"));
}

TEST_CASE("transform_param augmentation errors name the key and say what to do") {
  const std::string brightness = parse_error("{color_jitter: {brightness: -0.1}}");
  CHECK(contains(brightness, "<test>:1:"));
  CHECK(contains(brightness, "color_jitter.brightness"));
  CHECK(contains(brightness, "must be >= 0"));
  CHECK(contains(parse_error("{color_jitter: {hue: 0.1}}"), "unknown key 'hue'"));
  // scale 0 trained on all-zero inputs without a word.
  CHECK(contains(parse_error("{scale: 0}"), "<test>:1:9: scale: scale must be a finite non-zero number"));
  const std::string std_zero = parse_error("{std: [1, 0]}");
  CHECK(contains(std_zero, "std: "));
  CHECK(contains(std_zero, "must be > 0"));
  const std::string with_crop = parse_error("{crop_size: 4, random_resized_crop: {size: 8}}");
  CHECK(contains(with_crop, "random_resized_crop: "));
  CHECK(contains(with_crop, "remove crop_size"));
  CHECK(contains(parse_error("{mean_file: m.binaryproto, random_resized_crop: {size: 8}}"), "use mean_value"));
  CHECK(contains(parse_error("{random_resized_crop: {scale: [0.5, 1]}}"), "required key 'size' is missing"));
  CHECK(contains(parse_error("{random_resized_crop: {size: 8, scale: [0.5, 0.2]}}"), "random_resized_crop.scale"));
  CHECK(contains(parse_error("{random_resized_crop: {size: 8, scale: [0, 1]}}"), "0 < min <= max <= 1"));
  CHECK(contains(parse_error("{random_resized_crop: {size: 8, ratio: [-1, 2]}}"), "random_resized_crop.ratio"));
  CHECK(contains(parse_error("{resize: -1}"), "resize: "));
}
