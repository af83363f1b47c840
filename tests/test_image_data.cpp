// ImageData and the prefetcher behind every image data layer: list files and image
// folders decoded through OpenCV, bad samples skipped and reported (or fatal), the
// same batches whatever the number of workers, and a mid-epoch resume that continues
// with the next sample, down to a real training run.
#include <doctest/doctest.h>
#include <spdlog/fmt/fmt.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <regex>
#include <set>

#include "engine/net.hpp"
#include "gpu_test_util.hpp"
#include "io/checkpoint.hpp"
#include "io/datum.hpp"
#include "io/hdf5.hpp"
#include "io/idx.hpp"
#include "io/job_config.hpp"
#include "io/lmdb.hpp"
#include "io/yaml_config.hpp"
#include "layer_test_util.hpp"
#include "test_util.hpp"

using namespace crema;
namespace fs = std::filesystem;

namespace {

// A grey h x w image whose pixel (y, x) is base + 10·y + x.
void write_png(const std::string& path, int h, int w, int base) {
  cv::Mat m(h, w, CV_8UC1);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) m.at<uint8_t>(y, x) = static_cast<uint8_t>(base + 10 * y + x);
  fs::create_directories(fs::path(path).parent_path());
  REQUIRE(cv::imwrite(path, m));
}

// Cuts a file to half its size, as an interrupted copy leaves it.
void truncate_half(const std::string& path) {
  const auto size = fs::file_size(path);
  fs::resize_file(path, size / 2);
}

using ImagesUnderTest = test::DataUnderTest;

std::string image_yaml(const std::string& source, int batch, const std::string& extra = "",
                       const std::string& transform = "{}") {
  return "{type: ImageData, top: [data, label], transform_param: " + transform + ", image_data_param: {source: '" +
         source + "', batch_size: " + std::to_string(batch) + extra + "}}";
}

std::string setup_error(const std::string& yaml) {
  try {
    ImagesUnderTest d(yaml, Phase::TEST, 1);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

// Six 2x3 grey images a0..a5 (values 10·i + 10·y + x) under dir/img, listed with
// labels 0..5 in dir/list.txt (paths relative to dir).
void write_six(const test::TempDir& dir) {
  std::string list;
  for (int i = 0; i < 6; ++i) {
    write_png(dir / ("img/a" + std::to_string(i) + ".png"), 2, 3, 10 * i);
    list += "img/a" + std::to_string(i) + ".png " + std::to_string(i) + "\n";
  }
  test::write_file(dir / "list.txt", list);
}

}  // namespace

TEST_CASE("ImageData: a list under root_folder gives each image's pixels and label") {
  test::TempDir dir;
  write_six(dir);
  ImagesUnderTest grey(image_yaml(dir / "list.txt", 2, ", root_folder: '" + dir.path().string() + "', is_color: false"),
                       Phase::TEST, 1);
  CHECK(grey.data.shape() == std::vector<int>{2, 1, 2, 3});
  test::check_values(grey.data, std::vector<float>(12, 0.f));  // not read before the first forward
  grey.next();
  test::check_values(grey.data, {0, 1, 2, 10, 11, 12, 10, 11, 12, 20, 21, 22});
  CHECK(grey.labels() == std::vector<float>{0, 1});

  // Colour: three equal planes; new_height/new_width resize every image.
  ImagesUnderTest colour(image_yaml(dir / "list.txt", 1, ", root_folder: '" + dir.path().string() +
                                                             "', new_height: 4, new_width: 6"),
                         Phase::TEST, 1);
  CHECK(colour.data.shape() == std::vector<int>{1, 3, 4, 6});
  colour.next();
  for (int i = 0; i < 24; ++i) CHECK(colour.data.cpu_data()[i] == colour.data.cpu_data()[48 + i]);
}

TEST_CASE("ImageData: mirror flips TRAIN images only, and a TEST net that sets it is told so") {
  test::TempDir dir;
  write_six(dir);
  const std::string yaml = image_yaml(
      dir / "list.txt", 6, ", root_folder: '" + dir.path().string() + "', is_color: false", "{mirror: true}");
  const auto flipped_rows = [](const Blob& data) {  // of the six 2x3 images, how many come flipped
    int flipped = 0;
    for (int i = 0; i < 6; ++i) flipped += data.cpu_data()[i * 6] > data.cpu_data()[i * 6 + 2];
    return flipped;
  };
  int train_flips = 0;
  {
    test::CaptureLog log;
    ImagesUnderTest train(yaml, Phase::TRAIN, 1);
    for (int pass = 0; pass < 4; ++pass) {
      train.next();
      train_flips += flipped_rows(train.data);
    }
    CHECK(log.text().find("mirror") == std::string::npos);
  }
  CHECK(train_flips > 0);
  CHECK(train_flips < 24);
  test::CaptureLog log;
  ImagesUnderTest test_net(yaml, Phase::TEST, 1);
  for (int pass = 0; pass < 4; ++pass) {
    test_net.next();
    CHECK(flipped_rows(test_net.data) == 0);
  }
  CHECK_MESSAGE(log.text().find("transform_param.mirror is set in a TEST net; crema flips only TRAIN images") !=
                    std::string::npos,
                log.text());
}

TEST_CASE("ImageData: an image folder has one class per sub-folder, in name order") {
  test::TempDir dir;
  write_png(dir / "classes/zebra/1.png", 2, 2, 30);
  write_png(dir / "classes/ant/2.png", 2, 2, 10);
  write_png(dir / "classes/ant/1.png", 2, 2, 0);
  write_png(dir / "classes/moth/x.png", 2, 2, 20);
  test::write_file(dir / "classes/moth/notes.txt", "not an image");
  ImagesUnderTest d(image_yaml(dir / "classes", 4, ", is_color: false"), Phase::TEST, 1);
  CHECK(d.t.layer->class_names() == std::vector<std::string>{"ant", "moth", "zebra"});
  d.next();
  CHECK(d.labels() == std::vector<float>{0, 0, 1, 2});
  // Files in name order within a class: ant/1.png (base 0) before ant/2.png (base 10).
  CHECK(d.data.cpu_data()[0] == 0.f);
  CHECK(d.data.cpu_data()[4] == 10.f);
  CHECK(d.data.cpu_data()[12] == 30.f);

  // A folder without class folders is refused.
  fs::create_directories(dir / "none");
  CHECK(setup_error(image_yaml(dir / "none", 1)).find("has no sub-folders") != std::string::npos);
}

TEST_CASE("ImageData: list mistakes are one error naming the file and line, before training") {
  test::TempDir dir;
  write_six(dir);
  CHECK(setup_error(image_yaml(dir / "missing.txt", 1)).find("missing.txt") != std::string::npos);
  test::write_file(dir / "empty.txt", "\n\n");
  CHECK(setup_error(image_yaml(dir / "empty.txt", 1)).find("names no images") != std::string::npos);
  test::write_file(dir / "nolabel.txt", "img/a0.png 0\nimg/a1.png one\n");
  const std::string nolabel = setup_error(image_yaml(dir / "nolabel.txt", 1));
  CHECK(nolabel.find("nolabel.txt:2") != std::string::npos);
  CHECK(nolabel.find("integer") != std::string::npos);
  test::write_file(dir / "outside.txt", "img/a0.png 0\n../../etc/passwd 1\n");
  const std::string outside =
      setup_error(image_yaml(dir / "outside.txt", 1, ", root_folder: '" + (dir / "img") + "'"));
  CHECK(outside.find("outside.txt:2") != std::string::npos);
  CHECK_MESSAGE(outside.find("'../../etc/passwd' climbs out of root_folder") != std::string::npos, outside);
  test::write_file(dir / "absolute.txt", "/etc/passwd 0\n");
  const std::string absolute =
      setup_error(image_yaml(dir / "absolute.txt", 1, ", root_folder: '" + (dir / "img") + "'"));
  CHECK_MESSAGE(
      absolute.find("absolute.txt:1: '/etc/passwd' is an absolute path outside root_folder") != std::string::npos,
      absolute);
  // An absolute path inside the root is taken as it is (Caffe would join the two and find nothing).
  test::write_file(dir / "inside.txt", (dir / "img/a3.png") + " 3\n");
  ImagesUnderTest inside(image_yaml(dir / "inside.txt", 1, ", root_folder: '" + dir.path().string() + "/'"),
                         Phase::TEST, 1);
  inside.next();
  CHECK(inside.labels() == std::vector<float>{3});
}

TEST_CASE("a label the classifier cannot take is refused at setup, naming the image and its list line") {
  test::TempDir dir;
  write_six(dir);  // labels 0..5, a5.png on line 6
  // SoftmaxWithLoss and Accuracy both read the labels (through a split crema inserts).
  const auto net_yaml = [&](int classes, const std::string& loss_param) {
    return "layer:\n"
           "  - {name: data, type: ImageData, top: [data, label], image_data_param: {source: '" +
           (dir / "list.txt") + "', root_folder: '" + dir.path().string() +
           "', is_color: false, batch_size: 2}}\n"
           "  - {name: score, type: InnerProduct, bottom: data, top: score, inner_product_param: {num_output: " +
           std::to_string(classes) +
           "}}\n"
           "  - {name: loss, type: SoftmaxWithLoss, bottom: [score, label], top: loss" +
           loss_param +
           "}\n"
           "  - {name: acc, type: Accuracy, bottom: [score, label], top: acc}\n";
  };
  const auto build = [&](const std::string& yaml) {
    test::write_file(dir / "net.yaml", yaml);
    const auto root = io::load_net_config(dir / "net.yaml");
    const NetSpec spec = NetSpec::parse(*root);
    Context ctx(1);
    Net net(spec, spec.state_for(Phase::TRAIN), ctx, true);
  };
  CHECK_NOTHROW(build(net_yaml(6, "")));
  const std::string msg = test::error_of([&] { build(net_yaml(4, "")); });
  CHECK_MESSAGE(
      msg.find(
          "net.yaml:2:5: layer[0] (data): label 5 of image '" + (dir / "img/a5.png") + "' (" + (dir / "list.txt") +
          ":6) is out of range for layer 'loss' (SoftmaxWithLoss), whose scores 'score' have 4 classes "
          "(labels 0 to 3): fix the label, or give the layer making 'score' 6 outputs (num_output) if the data has "
          "that many classes") != std::string::npos,
      msg);
  // A label the loss ignores is no mistake for it; Accuracy, which does not ignore it, still refuses it.
  const std::string acc = test::error_of([&] { build(net_yaml(5, ", loss_param: {ignore_label: 5}")); });
  CHECK_MESSAGE(acc.find("is out of range for layer 'acc' (Accuracy)") != std::string::npos, acc);
  // A negative label.
  test::write_file(dir / "list.txt", "img/a0.png 0\nimg/a1.png -1\n");
  const std::string negative = test::error_of([&] { build(net_yaml(6, "")); });
  CHECK_MESSAGE(negative.find("label -1 of image '" + (dir / "img/a1.png") + "' (" + (dir / "list.txt") +
                              ":2) is out of range for layer 'loss' (SoftmaxWithLoss), whose scores 'score' have 6 "
                              "classes (labels 0 to 5): labels count from 0; fix the label, or mark it ignored "
                              "(loss_param.ignore_label)") != std::string::npos,
                negative);
}

TEST_CASE("ImageData: prefetch beyond 256 batches, or beyond half the memory, is refused at setup") {
  test::TempDir dir;
  write_six(dir);
  CHECK(setup_error(image_yaml(dir / "list.txt", 1, ", prefetch: 300")).find("prefetch must be between 1 and 256") !=
        std::string::npos);
  // 2000x2000 grey samples are 15.3 MiB each: enough of them per batch that 258 batches (prefetch
  // 256 and the two in use) pass half the memory, where that stays a batch of at most 256 MiB.
  const double memory = static_cast<double>(sysconf(_SC_PHYS_PAGES)) * static_cast<double>(sysconf(_SC_PAGE_SIZE));
  const int batch = static_cast<int>(memory / 2 / 258 / (4.0 * 2000 * 2000)) + 1;
  if (batch > 16) {
    MESSAGE("the memory check needs batches over 256 MiB on this machine: not tried");
    return;
  }
  const std::string err =
      setup_error(image_yaml(dir / "list.txt", batch,
                             ", root_folder: '" + dir.path().string() +
                                 "', prefetch: 256, new_height: 2000, new_width: 2000, is_color: false"));
  CHECK_MESSAGE(err.find("prefetch 256 holds 258 batches of ") != std::string::npos, err);
  CHECK_MESSAGE(err.find("more than half of this machine's memory") != std::string::npos, err);
}

TEST_CASE("ImageData: a deleted file and a truncated PNG are skipped and counted, on_bad_sample fail stops at the first") {
  test::TempDir dir;
  write_six(dir);
  fs::remove(dir / "img/a1.png");
  truncate_half(dir / "img/a3.png");
  const std::string root = ", root_folder: '" + dir.path().string() + "'";
  ImagesUnderTest d(image_yaml(dir / "list.txt", 4, root + ", is_color: false"), Phase::TEST, 1);
  d.next();
  CHECK(d.labels() == std::vector<float>{0, 2, 4, 5});  // 1 and 3 skipped, in order
  d.next();
  CHECK(d.labels() == std::vector<float>{0, 2, 4, 5});  // the next epoch skips them again
  CHECK(d.t.layer->data_stats().bad_samples == 2);

  ImagesUnderTest strict(image_yaml(dir / "list.txt", 4, root + ", is_color: false, on_bad_sample: fail"),
                         Phase::TEST, 1);
  std::string error;
  try {
    strict.next();
  } catch (const Error& e) {
    error = e.what();
  }
  CHECK(error.find("a1.png") != std::string::npos);
  CHECK(error.find("list.txt:2") != std::string::npos);
  CHECK(error.find("a3.png") == std::string::npos);

  // A folder where the list names an image is a bad sample like any other (its read used to
  // throw from the stream buffer, an "unexpected error" naming nothing).
  fs::create_directory(dir / "img/a1.png");
  ImagesUnderTest folder(image_yaml(dir / "list.txt", 4, root + ", is_color: false"), Phase::TEST, 1);
  folder.next();
  CHECK(folder.labels() == std::vector<float>{0, 2, 4, 5});
  ImagesUnderTest strict_folder(image_yaml(dir / "list.txt", 4, root + ", is_color: false, on_bad_sample: fail"),
                                Phase::TEST, 1);
  error.clear();
  try {
    strict_folder.next();
  } catch (const Error& e) {
    error = e.what();
  }
  CHECK_MESSAGE(error.find("a1.png' (" + (dir / "list.txt") + ":2) is a folder, not an image (on_bad_sample: fail") !=
                    std::string::npos,
                error);
}

TEST_CASE(
    "ImageData: batch_size 1 without a crop gives each image at its own size, as Caffe, and a crop or a batch fixes "
    "it") {
  // Four grey images of three sizes; the list goes round twice, so the arrays grow and shrink.
  test::TempDir dir;
  const std::vector<std::pair<int, int>> sizes = {{2, 3}, {4, 5}, {3, 2}, {2, 3}};
  std::string list;
  for (size_t i = 0; i < sizes.size(); ++i) {
    write_png(dir / ("img/s" + std::to_string(i) + ".png"), sizes[i].first, sizes[i].second, 20 * static_cast<int>(i));
    list += "img/s" + std::to_string(i) + ".png " + std::to_string(i) + "\n";
  }
  test::write_file(dir / "list.txt", list);
  const std::string root = ", root_folder: '" + dir.path().string() + "', is_color: false";
  for (const std::string threads : {"1", "2"}) {
    INFO("threads " << threads);
    test::CaptureLog log;
    ImagesUnderTest d(image_yaml(dir / "list.txt", 1, root + ", threads: " + threads), Phase::TEST, 1);
    CHECK(d.data.shape() == std::vector<int>{1, 1, 2, 3});  // the first image's, until forward
    for (int pass = 0; pass < 2; ++pass)
      for (size_t i = 0; i < sizes.size(); ++i) {
        d.next();
        const auto [h, w] = sizes[i];
        REQUIRE(d.data.shape() == std::vector<int>{1, 1, h, w});
        std::vector<float> want;
        for (int y = 0; y < h; ++y)
          for (int x = 0; x < w; ++x) want.push_back(static_cast<float>(20 * static_cast<int>(i) + 10 * y + x));
        test::check_values(d.data, want);
        CHECK(d.labels() == std::vector<float>{static_cast<float>(i)});
      }
    CHECK(d.t.layer->data_stats().bad_samples == 0);
    CHECK_MESSAGE(test::count_of(log.text(), "each image goes through the net at its own size") == 1, log.text());
  }

  SUBCASE("in a net, images keep their size unless a layer takes one size only, which is then named") {
    const auto net_of = [&](const std::string& list_file, const std::string& rest) {
      return io::parse_yaml(
          "{name: n, layer: [{name: d, " + image_yaml(dir / list_file, 1, root).substr(1) + ", " + rest + "]}",
          "n.yaml");
    };
    const Node any = net_of(
        "list.txt",
        "{name: c, type: Convolution, bottom: data, top: c, convolution_param: {num_output: 2, kernel_size: 1}}, "
        "{name: s, type: Silence, bottom: [c, label]}");
    const Node one =
        net_of("list.txt",
               "{name: ip, type: InnerProduct, bottom: data, top: ip, inner_product_param: {num_output: 2}}, "
               "{name: s, type: Silence, bottom: [ip, label]}");
    test::CaptureLog log;
    Context ctx(3);
    Net open(NetSpec::parse(any), NetState{Phase::TEST, 0, {}}, ctx, true);
    Net fixed(NetSpec::parse(one), NetState{Phase::TEST, 0, {}}, ctx, true);
    for (size_t i = 0; i < sizes.size(); ++i) {
      open.forward(ctx);
      CHECK(open.blob("c")->shape() == std::vector<int>{1, 2, sizes[i].first, sizes[i].second});
    }
    fixed.forward(ctx);
    fixed.forward(ctx);  // s0, then s3: s1 and s2 are skipped
    CHECK(fixed.blob("data")->shape() == std::vector<int>{1, 1, 2, 3});
    CHECK(fixed.blob("label")->cpu_data()[0] == 3.f);
    CHECK(fixed.data_stats().bad_samples == 2);
    CHECK_MESSAGE(log.text().find("img/s1.png") != std::string::npos, log.text());
    CHECK_MESSAGE(
        log.text().find("but the first sample's is 1x2x3, the one size layer 'ip' takes") != std::string::npos,
        log.text());

    // Pooling halves each side and Deconvolution doubles it back for Eltwise to add the
    // input: a net that takes sides of even length only. The check at setup tries a size
    // that keeps the first image's factors of two, so images of even sides keep their size.
    std::string even;
    const std::vector<std::pair<int, int>> even_sizes = {{8, 12}, {4, 8}, {12, 6}};
    for (size_t i = 0; i < even_sizes.size(); ++i) {
      write_png(dir / ("img/e" + std::to_string(i) + ".png"), even_sizes[i].first, even_sizes[i].second, 0);
      even += "img/e" + std::to_string(i) + ".png 0\n";
    }
    test::write_file(dir / "even.txt", even);
    const Node halving =
        net_of("even.txt",
               "{name: p, type: Pooling, bottom: data, top: p, pooling_param: {pool: AVE, kernel_size: 2, stride: 2}}, "
               "{name: up, type: Deconvolution, bottom: p, top: up, convolution_param: {num_output: 1, kernel_size: 2, "
               "stride: 2}}, {name: sum, type: Eltwise, bottom: [data, up], top: sum}, "
               "{name: s, type: Silence, bottom: [sum, label]}");
    Net unet(NetSpec::parse(halving), NetState{Phase::TEST, 0, {}}, ctx, true);
    for (const auto& [h, w] : even_sizes) {
      unet.forward(ctx);
      CHECK(unet.blob("sum")->shape() == std::vector<int>{1, 1, h, w});
    }
    CHECK(unet.data_stats().bad_samples == 0);

    // Images and their masks at half the resolution, paired, the image pooled to the mask's
    // size: the check shrinks both by one fraction (128 and 64 to 64 and 32; each its own
    // cut would give 96 and 32, which do not fit), so pairs of other sizes keep theirs.
    std::string images, masks;
    const std::vector<int> image_sides = {128, 96, 160};
    for (size_t i = 0; i < image_sides.size(); ++i) {
      const int side = image_sides[i];
      write_png(dir / ("img/h" + std::to_string(i) + ".png"), side, side, 0);
      write_png(dir / ("img/m" + std::to_string(i) + ".png"), side / 2, side / 2, 0);
      images += "img/h" + std::to_string(i) + ".png 0\n";
      masks += "img/m" + std::to_string(i) + ".png 0\n";
    }
    test::write_file(dir / "images.txt", images);
    test::write_file(dir / "masks.txt", masks);
    std::string mask_layer = image_yaml(dir / "masks.txt", 1, root).substr(1);
    mask_layer.replace(mask_layer.find("top: [data, label]"), 18, "top: [mask, mask_label]");
    const Node halves = net_of(
        "images.txt", "{name: m, " + mask_layer +
                          ", {name: p, type: Pooling, bottom: data, top: p, pooling_param: {pool: MAX, kernel_size: 2, "
                          "stride: 2}}, {name: sum, type: Eltwise, bottom: [p, mask], top: sum}, "
                          "{name: s, type: Silence, bottom: [sum, label, mask_label]}");
    Net seg(NetSpec::parse(halves), NetState{Phase::TEST, 0, {}}, ctx, true);
    for (const int side : image_sides) {
      seg.forward(ctx);
      CHECK(seg.blob("sum")->shape() == std::vector<int>{1, 1, side / 2, side / 2});
    }
    CHECK(seg.data_stats().bad_samples == 0);

    // An output that takes each image's size cannot be averaged over batches: training and
    // `crema test` refuse such a net, naming it; consumed, the net is fine.
    const Node dangling = net_of(
        "list.txt",
        "{name: c, type: Convolution, bottom: data, top: c, convolution_param: {num_output: 2, kernel_size: 1}}");
    Net scored(NetSpec::parse(dangling), NetState{Phase::TEST, 0, {}}, ctx, true);
    CHECK(scored.size_following_outputs() == "'c'");
    CHECK_THROWS_WITH_AS(scored.refuse_size_following_outputs("crema test"),
                         doctest::Contains("the TEST net's output(s) 'c' take the size of each image"), Error);
    CHECK(open.size_following_outputs().empty());
    CHECK_NOTHROW(open.refuse_size_following_outputs("crema test"));

    // The check leaves every blob as set up, even behind a layer whose shape comes from
    // values (Filter keeps every item until its selector has been read).
    const Node filtered = net_of(
        "list.txt", "{name: f, type: Filter, bottom: [data, label], top: fd}, {name: s, type: Silence, bottom: [fd]}");
    Net filter_net(NetSpec::parse(filtered), NetState{Phase::TEST, 0, {}}, ctx, true);
    CHECK(filter_net.blob("fd")->shape() == std::vector<int>{1, 1, 2, 3});

    // SPP (4 levels) cannot pool the check's 12x12 at its 8x8 level: it takes one size, and
    // the 14x14 images pass through it (its pyramid rebuilt for them, not left short).
    write_png(dir / "img/q0.png", 14, 14, 0);
    write_png(dir / "img/q1.png", 10, 10, 0);
    test::write_file(dir / "spp.txt", "img/q0.png 0\nimg/q1.png 1\nimg/q0.png 2\n");
    const Node pyramid =
        net_of("spp.txt",
               "{name: spp, type: SPP, bottom: data, top: spp, spp_param: {pyramid_height: 4, pool: MAX}}, "
               "{name: s, type: Silence, bottom: [spp, label]}");
    Net spp(NetSpec::parse(pyramid), NetState{Phase::TEST, 0, {}}, ctx, true);
    for (int k = 0; k < 2; ++k) {
      spp.forward(ctx);
      CHECK(spp.blob("spp")->shape() == std::vector<int>{1, 85});  // 1 + 4 + 16 + 64 bins of one channel
    }
    CHECK(spp.blob("label")->cpu_data()[0] == 2.f);  // q1 skipped
    CHECK_MESSAGE(log.text().find("the one size layer 'spp' takes") != std::string::npos, log.text());

    // HDF5Output writes rows of one shape: it is the layer taking one size.
    const Node written = net_of("list.txt",
                                "{name: out, type: HDF5Output, bottom: [data, label], "
                                "hdf5_output_param: {file_name: '" +
                                    dir / "out.h5" + "'}}");
    Net writer(NetSpec::parse(written), NetState{Phase::TEST, 0, {}}, ctx, true);
    writer.forward(ctx);
    writer.forward(ctx);
    CHECK(writer.data_stats().bad_samples == 2);
    CHECK_MESSAGE(log.text().find("the one size layer 'out' takes") != std::string::npos, log.text());
    writer.finish();
  }
  SUBCASE("a crop gives every image one shape") {
    ImagesUnderTest d(image_yaml(dir / "list.txt", 1, root, "{crop_size: 2}"), Phase::TEST, 1);
    for (size_t i = 0; i < sizes.size(); ++i) {
      d.next();
      CHECK(d.data.shape() == std::vector<int>{1, 1, 2, 2});
      CHECK(d.labels() == std::vector<float>{static_cast<float>(i)});
    }
    CHECK(d.t.layer->data_stats().bad_samples == 0);
  }
  SUBCASE("batch_size 2 keeps the first image's shape and skips the others, as a batch has one shape") {
    ImagesUnderTest d(image_yaml(dir / "list.txt", 2, root), Phase::TEST, 1);
    d.next();
    CHECK(d.data.shape() == std::vector<int>{2, 1, 2, 3});
    CHECK(d.labels() == std::vector<float>{0, 3});
    CHECK(d.t.layer->data_stats().bad_samples == 2);
  }
}

TEST_CASE("GPU: ImageData with images of their own size stages each at its size: the CPU's batches") {
  SKIP_WITHOUT_DEVICE();
  // Sizes that grow and shrink, over more batches than the prefetcher's buffer sets (prefetch
  // + 2), so their host and device arrays are enlarged while batches are in flight.
  test::TempDir dir;
  std::string list;
  const std::vector<std::pair<int, int>> sizes = {{2, 3}, {6, 7}, {3, 2}, {9, 4}, {5, 5}, {12, 10}, {1, 1}};
  for (size_t i = 0; i < sizes.size(); ++i) {
    write_png(dir / ("img/g" + std::to_string(i) + ".png"), sizes[i].first, sizes[i].second, 7 * static_cast<int>(i));
    list += "img/g" + std::to_string(i) + ".png " + std::to_string(i) + "\n";
  }
  test::write_file(dir / "list.txt", list);
  const std::string yaml =
      image_yaml(dir / "list.txt", 1, ", root_folder: '" + dir.path().string() + "', threads: 2, prefetch: 2",
                 "{scale: 0.5, mean_value: [3, 4, 5]}");
  Context cpu(3);
  auto gpu = Context::gpu(0, 3);
  auto on_cpu = test::make_layer(yaml, Phase::TEST), on_gpu = test::make_layer(yaml, Phase::TEST);
  Blob cd, cl, gd, gl;
  on_cpu.layer->setup(cpu, {}, {&cd, &cl});
  on_gpu.layer->setup(*gpu, {}, {&gd, &gl});
  for (int b = 0; b < 3 * static_cast<int>(sizes.size()); ++b) {
    INFO("batch " << b);
    on_cpu.layer->forward(cpu, {}, {&cd, &cl});
    on_gpu.layer->forward(*gpu, {}, {&gd, &gl});
    const auto [h, w] = sizes[static_cast<size_t>(b) % sizes.size()];
    REQUIRE(gd.shape() == std::vector<int>{1, 3, h, w});
    REQUIRE(cd.shape() == gd.shape());
    CHECK(std::vector<float>(gd.cpu_data(), gd.cpu_data() + gd.count()) ==
          std::vector<float>(cd.cpu_data(), cd.cpu_data() + cd.count()));
    CHECK(gl.cpu_data()[0] == cl.cpu_data()[0]);
  }
}

// A net of two ImageData layers, a (tops da, la) and b (db, lb), over lists of six images
// labelled 0..5 (b's images are a's plus 100), batch 4, then a Silence; `a_extra` and
// `b_extra` go into each layer's image_data_param.
struct TwoReaders {
  Node root;
  NetSpec spec;
  Context ctx{5};
  std::unique_ptr<Net> net;
  TwoReaders(const test::TempDir& dir, const std::string& a_list, const std::string& a_extra,
             const std::string& b_extra, int a_batch = 4)
      : root(io::parse_yaml("{name: pair, layer: [" + layer("a", a_list, dir, a_extra, a_batch) + ", " +
                                layer("b", "list_b.txt", dir, b_extra) +
                                ", {name: s, type: Silence, bottom: [da, la, db, lb]}]}",
                            "pair.yaml")),
        spec(NetSpec::parse(root)),
        net(std::make_unique<Net>(spec, NetState{Phase::TRAIN, 0, {}}, ctx, true)) {}
  static std::string layer(const std::string& name, const std::string& list, const test::TempDir& dir,
                           const std::string& extra, int batch = 4) {
    return "{name: " + name + ", type: ImageData, top: [d" + name + ", l" + name + "], image_data_param: {source: '" +
           (dir / list) + "', root_folder: '" + dir.path().string() +
           "', is_color: false, batch_size: " + std::to_string(batch) + extra + "}}";
  }
  std::vector<float> labels(const std::string& top) {
    const Blob& b = *net->blob(top);
    return {b.cpu_data(), b.cpu_data() + b.count()};
  }
};

TEST_CASE(
    "ImageData: two readers in one net pair up sample by sample, in order or shuffled alike, and a bad sample stops "
    "them") {
  test::TempDir dir;
  write_six(dir);
  std::string list_b;
  for (int i = 0; i < 6; ++i) {
    write_png(dir / ("img/b" + std::to_string(i) + ".png"), 2, 3, 10 * i + 100);
    list_b += "img/b" + std::to_string(i) + ".png " + std::to_string(i) + "\n";
  }
  test::write_file(dir / "list_b.txt", list_b);
  // Each sample of a with the one of b at its position: the same label, pixels 100 apart.
  const auto check_paired = [](TwoReaders& n) {
    CHECK(n.labels("la") == n.labels("lb"));
    const Blob &a = *n.net->blob("da"), &b = *n.net->blob("db");
    for (int i = 0; i < a.count(); ++i) CHECK(b.cpu_data()[i] == a.cpu_data()[i] + 100);
  };

  SUBCASE("by default in order, as Caffe reads them (a lone reader shuffles in TRAIN)") {
    test::CaptureLog log;
    TwoReaders n(dir, "list.txt", "", "");
    std::vector<float> seen;
    for (int step = 0; step < 3; ++step) {
      n.net->forward(n.ctx);
      check_paired(n);
      for (float l : n.labels("la")) seen.push_back(l);
    }
    CHECK(seen == std::vector<float>{0, 1, 2, 3, 4, 5, 0, 1, 2, 3, 4, 5});
    CHECK_MESSAGE(test::count_of(log.text(), "pair up by position with those of the net's other data layer(s)") == 2,
                  log.text());
    CHECK(log.text().find("shuffled each epoch") == std::string::npos);
    CHECK(log.text().find("different sizes") == std::string::npos);
    ImagesUnderTest alone(image_yaml(dir / "list.txt", 4, ", root_folder: '" + dir.path().string() + "'"), Phase::TRAIN,
                          1);
    CHECK(log.text().find("shuffled each epoch") != std::string::npos);
  }
  SUBCASE("shuffle: true on both shuffles them in one order") {
    TwoReaders n(dir, "list.txt", ", shuffle: true", ", shuffle: true");
    std::vector<float> seen;
    for (int step = 0; step < 6; ++step) {  // four epochs
      n.net->forward(n.ctx);
      check_paired(n);
      for (float l : n.labels("la")) seen.push_back(l);
    }
    std::vector<float> in_order;
    for (int k = 0; k < 24; ++k) in_order.push_back(static_cast<float>(k % 6));
    CHECK(seen != in_order);
  }
  SUBCASE("random crops and mirrors are drawn alike for the samples that pair up") {
    // 2x3 images cropped to 2x2 (a column offset of 0 or 1) and flipped at random, in TRAIN.
    const std::string crop = "transform_param: {crop_size: 2, mirror: true}, image_data_param:";
    std::string a = TwoReaders::layer("a", "list.txt", dir, ", shuffle: true"),
                b = TwoReaders::layer("b", "list_b.txt", dir, ", shuffle: true");
    a.replace(a.find("image_data_param:"), 17, crop);
    b.replace(b.find("image_data_param:"), 17, crop);
    Node root = io::parse_yaml(
        "{name: pair, layer: [" + a + ", " + b + ", {name: s, type: Silence, bottom: [da, la, db, lb]}]}", "pair.yaml");
    const NetSpec spec = NetSpec::parse(root);
    Context ctx(9);
    Net net(spec, NetState{Phase::TRAIN, 0, {}}, ctx, true);
    for (int step = 0; step < 6; ++step) {
      net.forward(ctx);
      const Blob &da = *net.blob("da"), &db = *net.blob("db");
      REQUIRE(da.shape() == std::vector<int>{4, 1, 2, 2});
      for (int i = 0; i < da.count(); ++i) CHECK(db.cpu_data()[i] == da.cpu_data()[i] + 100);
    }
  }
  SUBCASE("sources of different sizes are warned about") {
    std::string five;
    for (int i = 0; i < 5; ++i) five += "img/a" + std::to_string(i) + ".png " + std::to_string(i) + "\n";
    test::write_file(dir / "five.txt", five);
    test::CaptureLog log;
    {
      TwoReaders n(dir, "five.txt", "", "");
      CHECK_MESSAGE(
          log.text().find("the TRAIN net's data layers read sources of different sizes ('a' 5, 'b' 6 "
                          "samples) that take different numbers of batches per epoch: their batches pair "
                          "up by position only until the smallest source's first epoch ends") != std::string::npos,
          log.text());
    }
    // Shuffled, each in the order drawn for its own size: no pairs from the first batch on.
    TwoReaders shuffled(dir, "five.txt", ", shuffle: true", ", shuffle: true");
    CHECK_MESSAGE(log.text().find("shuffled sources of different sizes are in different orders from the first batch "
                                  "on, so no sample meets its pair") != std::string::npos,
                  log.text());
  }
  SUBCASE("sources whose sizes are in the ratio of their batch sizes stay in step, unwarned") {
    // Three samples at batch 2 beside six at batch 4: one and a half batches per epoch each,
    // so batch k of one meets batch k of the other however many epochs go by.
    std::string three;
    for (int i = 0; i < 3; ++i) three += "img/a" + std::to_string(i) + ".png " + std::to_string(i) + "\n";
    test::write_file(dir / "three.txt", three);
    test::CaptureLog log;
    TwoReaders n(dir, "three.txt", "", "", 2);
    CHECK_MESSAGE(log.text().find("different sizes") == std::string::npos, log.text());
    std::vector<float> la, lb;
    for (int step = 0; step < 6; ++step) {
      n.net->forward(n.ctx);
      const std::vector<float> a = n.labels("la"), b = n.labels("lb");
      la.insert(la.end(), a.begin(), a.end());
      lb.insert(lb.end(), b.begin(), b.end());
    }
    // One size, two batch sizes: three batches an epoch against one and a half, which drift apart.
    TwoReaders drifting(dir, "list.txt", "", "", 2);
    CHECK_MESSAGE(log.text().find("read sources of one size but with different batch_size ('a' 6, 'b' 6 samples) "
                                  "that take different numbers of batches per epoch") != std::string::npos,
                  log.text());
    // Batch k of a starts at sample 2k mod 3, of b at 4k mod 6: twice as far, epoch after epoch.
    for (int step = 0; step < 6; ++step)
      CHECK(lb[static_cast<size_t>(4 * step)] == 2 * la[static_cast<size_t>(2 * step)]);
  }
  SUBCASE("shuffle: true on one of them only is warned about") {
    test::CaptureLog log;
    TwoReaders n(dir, "list.txt", ", shuffle: true", "");
    CHECK_MESSAGE(log.text().find("a: shuffle: true, but the net's other data layer(s) 'b' read in order: their "
                                  "samples do not pair up") != std::string::npos,
                  log.text());
    CHECK(log.text().find("b: shuffle: true") == std::string::npos);
  }
  SUBCASE("an HDF5Data layer of one block shuffles in the same order as an ImageData layer of as many samples") {
    std::vector<float> rows = {0, 1, 2, 3, 4, 5};
    {
      io::H5File f(dir / "rows.h5", io::H5File::Mode::Create);
      f.write_floats("lh", {6}, rows.data());
    }
    test::write_file(dir / "h5.txt", dir / "rows.h5\n");
    test::CaptureLog log;
    Node root =
        io::parse_yaml("{name: pair, layer: [" + TwoReaders::layer("a", "list.txt", dir, ", shuffle: true") +
                           ", {name: h, type: HDF5Data, top: [lh], hdf5_data_param: {source: '" + dir / "h5.txt" +
                           "', batch_size: 4, shuffle: true}}, {name: s, type: Silence, bottom: [da, la, lh]}]}",
                       "pair.yaml");
    const NetSpec spec = NetSpec::parse(root);
    Context ctx(5);
    Net net(spec, NetState{Phase::TRAIN, 0, {}}, ctx, true);
    std::vector<float> seen;
    for (int step = 0; step < 6; ++step) {
      net.forward(ctx);
      const Blob &la = *net.blob("la"), &lh = *net.blob("lh");
      for (int i = 0; i < 4; ++i) CHECK(la.cpu_data()[i] == lh.cpu_data()[i]);
      seen.insert(seen.end(), la.cpu_data(), la.cpu_data() + 4);
    }
    std::vector<float> in_order;
    for (int k = 0; k < 24; ++k) in_order.push_back(static_cast<float>(k % 6));
    CHECK(seen != in_order);
    CHECK_MESSAGE(log.text().find("warn") == std::string::npos, log.text());
  }
  SUBCASE("a bad sample stops training, with advice that keeps the pairs; on_bad_sample: skip is warned about") {
    fs::remove(dir / "img/a2.png");
    TwoReaders n(dir, "list.txt", "", "");
    std::string error;
    try {
      n.net->forward(n.ctx);
    } catch (const Error& e) {
      error = e.what();
    }
    CHECK_MESSAGE(error.find("a2.png") != std::string::npos, error);
    CHECK_MESSAGE(error.find("fix the sample or take it out of the source") != std::string::npos, error);

    test::CaptureLog log;
    TwoReaders skipping(dir, "list.txt", ", on_bad_sample: skip", "");
    CHECK_MESSAGE(
        log.text().find("a: on_bad_sample: skip with other data layers in the net ('b')") != std::string::npos,
        log.text());
  }
}

TEST_CASE("ImageData: the same seed gives the same batches with 1 and with 4 workers") {
  test::TempDir dir;
  std::string list;
  for (int i = 0; i < 23; ++i) {
    write_png(dir / ("img/" + std::to_string(i) + ".png"), 6, 6, 3 * i);
    list += "img/" + std::to_string(i) + ".png " + std::to_string(i % 7) + "\n";
  }
  truncate_half(dir / "img/5.png");
  test::write_file(dir / "list.txt", list);
  auto batches = [&](int threads, long long seed) {
    // Shuffled epochs, random crops and mirrors: everything that draws from the seed.
    ImagesUnderTest d(image_yaml(dir / "list.txt", 5,
                                 ", root_folder: '" + dir.path().string() + "', is_color: false, shuffle: true, threads: " +
                                     std::to_string(threads) + ", prefetch: 3",
                                 "{crop_size: 4, mirror: true}"),
                      Phase::TRAIN, seed);
    std::vector<std::vector<float>> out;
    for (int b = 0; b < 12; ++b) out.push_back(d.next());  // over two epochs
    CHECK(d.t.layer->data_stats().bad_samples == 1);
    return out;
  };
  const auto one = batches(1, 7), four = batches(4, 7);
  REQUIRE(one.size() == four.size());
  for (size_t b = 0; b < one.size(); ++b) CHECK_MESSAGE(one[b] == four[b], "batch " << b);
  CHECK(batches(4, 8) != one);  // and the seed does matter
}

TEST_CASE("ImageData: a reader state saved mid-epoch continues with the next sample") {
  test::TempDir dir;
  std::string list;
  for (int i = 0; i < 17; ++i) {
    write_png(dir / ("img/" + std::to_string(i) + ".png"), 5, 5, 2 * i);
    list += "img/" + std::to_string(i) + ".png " + std::to_string(i) + "\n";
  }
  test::write_file(dir / "list.txt", list);
  const std::string yaml = image_yaml(dir / "list.txt", 3,
                                      ", root_folder: '" + dir.path().string() + "', shuffle: true, threads: 2",
                                      "{crop_size: 3, mirror: true}");
  ImagesUnderTest a(yaml, Phase::TRAIN, 11);
  for (int b = 0; b < 3; ++b) a.next();  // 9 of 17: mid-epoch, with batches prefetched beyond
  const std::string state = a.t.layer->save_state();
  std::vector<std::vector<float>> after;
  for (int b = 0; b < 6; ++b) after.push_back(a.next());  // into the next epoch

  ImagesUnderTest resumed(yaml, Phase::TRAIN, 11);
  resumed.next();  // the fresh reader has already moved; restoring puts it back
  resumed.t.layer->restore_state(state);
  for (size_t b = 0; b < after.size(); ++b) CHECK_MESSAGE(resumed.next() == after[b], "batch " << b);
  CHECK_THROWS_AS(resumed.t.layer->restore_state("nonsense"), Error);
}

namespace {

using test::crema_cmd;

// The toy IDX data set of test_util written as PNG files and list files, and the toy
// solver reading it through ImageData.
struct ToyImageJob {
  test::TempDir dir;
  std::string solver;
  explicit ToyImageJob(int max_iter, const std::string& extra = "") {
    const std::string root = dir.path().string();
    for (const std::string split : {"train", "test"}) {
      test::write_toy_idx(root, split, split == "train" ? 200 : 100, split == "train" ? 1 : 2);
      const io::IdxArray images = io::read_idx(root + "/" + split + "-images-idx3-ubyte");
      const io::IdxArray labels = io::read_idx(root + "/" + split + "-labels-idx1-ubyte");
      std::string list;
      for (int i = 0; i < images.dims[0]; ++i) {
        cv::Mat m(10, 10, CV_8UC1, const_cast<uint8_t*>(images.data.data()) + 100 * i);
        const std::string name = split + "/" + std::to_string(i) + ".png";
        fs::create_directories(dir / split);
        REQUIRE(cv::imwrite(dir / name, m));
        list += name + " " + std::to_string(labels.data[static_cast<size_t>(i)]) + "\n";
      }
      test::write_file(dir / (split + ".txt"), list);
    }
    std::string yaml = test::toy_solver_yaml(root, max_iter);
    // The same net, its data from the PNGs.
    for (const std::string split : {"train", "test"}) {
      const std::string from = "data_param: {source: " + root + "/" + split + "-images-idx3-ubyte, batch_size: ";
      const size_t at = yaml.find(from);
      REQUIRE(at != std::string::npos);
      yaml.replace(at, from.size(), "image_data_param: {source: " + root + "/" + split + ".txt, root_folder: " + root +
                                        ", is_color: false, threads: 2" + extra + ", batch_size: ");
    }
    size_t at = 0;
    while ((at = yaml.find("type: Data,", at)) != std::string::npos) yaml.replace(at, 11, "type: ImageData,");
    solver = dir / "solver.yaml";
    test::write_file(solver, yaml);
  }
};

}  // namespace

TEST_CASE("training from PNG files names a deleted and a truncated one and finishes, fail stops at the first") {
  ToyImageJob job(40);
  fs::remove(job.dir / "train/7.png");
  truncate_half(job.dir / "train/12.png");
  const auto r = test::run(crema_cmd("train " + job.solver));
  REQUIRE_MESSAGE(r.status == 0, r.output);
  CHECK(r.output.find("train/7.png") != std::string::npos);
  CHECK(r.output.find("train.txt:8") != std::string::npos);
  CHECK(r.output.find("train/12.png") != std::string::npos);
  CHECK(r.output.find("train.txt:13") != std::string::npos);
  CHECK(r.output.find("2 bad sample(s) were skipped") != std::string::npos);
  CHECK(r.output.find("data wait") != std::string::npos);
  std::smatch m;
  REQUIRE(std::regex_search(r.output, m, std::regex(R"(Iteration 40, Testing net[\s\S]*accuracy = ([0-9.]+))")));
  CHECK(std::stod(m[1]) > 0.3);  // it learns from the PNGs

  const auto strict = test::run(
      crema_cmd("train " + job.solver + " --set net.layer[0].image_data_param.on_bad_sample=fail --overwrite"));
  CHECK(strict.status != 0);
  CHECK(strict.output.find("on_bad_sample") != std::string::npos);
  CHECK(strict.output.find("terminate") == std::string::npos);
}

TEST_CASE("ImageData training interrupted mid-epoch resumes with the next sample: 20 + 20 equals 40") {
  // 200 training images in batches of 16: iteration 20 is 120 samples into the second epoch.
  ToyImageJob job(40);
  const auto straight = test::run(crema_cmd("train " + job.solver + " --set snapshot_prefix=" + (job.dir / "a/toy")));
  REQUIRE_MESSAGE(straight.status == 0, straight.output);
  const auto first =
      test::run(crema_cmd("train " + job.solver + " --set max_iter=20 --set snapshot_prefix=" + (job.dir / "b/toy")));
  REQUIRE_MESSAGE(first.status == 0, first.output);
  const auto resumed = test::run(crema_cmd("train " + job.solver + " --set snapshot_prefix=" + (job.dir / "b/toy") +
                                           " --snapshot " + (job.dir / "b/toy_iter_20.solverstate.h5")));
  REQUIRE_MESSAGE(resumed.status == 0, resumed.output);
  const auto a = io::load_weights(job.dir / "a/toy_iter_40.caffemodel.h5");
  const auto b = io::load_weights(job.dir / "b/toy_iter_40.caffemodel.h5");
  REQUIRE(a.size() == b.size());
  int differing = 0, compared = 0;
  for (size_t i = 0; i < a.size(); ++i)
    for (size_t j = 0; j < a[i].blobs.size(); ++j)
      for (int k = 0; k < a[i].blobs[j].second.count(); ++k, ++compared)
        differing += a[i].blobs[j].second.cpu_data()[k] != b[i].blobs[j].second.cpu_data()[k];
  CHECK(compared > 0);
  CHECK(differing == 0);
}

TEST_CASE("crema preview writes viewable PNGs of what the net sees, crema time --data measures the readers") {
  ToyImageJob job(10);
  const std::string out = job.dir / "preview";
  // TEST phase, not shuffled: sample k is test image k, its scale (0.004) undone.
  const auto r = test::run(crema_cmd("preview --model " + job.solver + " --out " + out + " --n 5 --phase TEST"));
  REQUIRE_MESSAGE(r.status == 0, r.output);
  int files = 0;
  for (const auto& e : fs::directory_iterator(out)) {
    ++files;
    std::smatch m;
    const std::string name = e.path().filename().string();
    REQUIRE(std::regex_match(name, m, std::regex(R"(sample_(\d+)_label_(\d+)\.png)")));
    const cv::Mat seen = cv::imread(e.path().string(), cv::IMREAD_UNCHANGED);
    const cv::Mat source = cv::imread(job.dir / ("test/" + std::string(m[1]) + ".png"), cv::IMREAD_UNCHANGED);
    REQUIRE(seen.rows == 10);
    REQUIRE(seen.cols == 10);
    CHECK(cv::norm(seen, source, cv::NORM_INF) <= 1.0);
  }
  CHECK(files == 5);

  // The TRAIN phase (the default) previews the training layer.
  const auto train = test::run(crema_cmd("preview --model " + job.solver + " --out " + (job.dir / "train_preview") + " --n 3"));
  REQUIRE_MESSAGE(train.status == 0, train.output);
  CHECK(std::distance(fs::directory_iterator(job.dir / "train_preview"), fs::directory_iterator()) == 3);
  // Numbers of two digits are padded, so that a listing sorts them in order.
  const auto twelve =
      test::run(crema_cmd("preview --model " + job.solver + " --out " + (job.dir / "twelve") + " --n 12 --phase TEST"));
  REQUIRE_MESSAGE(twelve.status == 0, twelve.output);
  std::vector<std::string> listed;
  for (const auto& e : fs::directory_iterator(job.dir / "twelve")) listed.push_back(e.path().filename().string());
  std::sort(listed.begin(), listed.end());
  REQUIRE(listed.size() == 12);
  for (size_t k = 0; k < listed.size(); ++k)
    CHECK_MESSAGE(listed[k].rfind(fmt::format("sample_{:02d}_label_", k), 0) == 0, listed[k]);
  // A second, shorter preview into the same folder replaces the first's samples (they
  // mixed before) and leaves the user's other files alone.
  test::write_file(out + "/notes.txt", "mine");
  test::write_file(out + "/sample_9.jpg", "mine too");
  const auto again = test::run(crema_cmd("preview --model " + job.solver + " --out " + out + " --n 2 --phase TEST"));
  REQUIRE_MESSAGE(again.status == 0, again.output);
  CHECK_MESSAGE(again.output.find("Removed 3 sample file(s) of an earlier preview") != std::string::npos, again.output);
  std::set<std::string> left;
  for (const auto& e : fs::directory_iterator(out)) left.insert(e.path().filename().string());
  CHECK(left.size() == 4);
  CHECK(left.count("notes.txt"));
  CHECK(left.count("sample_9.jpg"));
  // --out naming a file: said with the option (it was "…: Not a directory").
  const auto onto_file =
      test::run(crema_cmd("preview --model " + job.solver + " --out " + job.solver + " --n 1 --phase TEST"));
  CHECK(onto_file.status == 2);
  CHECK_MESSAGE(onto_file.output.find("--out: '" + job.solver + "' is a file, not a folder") != std::string::npos,
                onto_file.output);
  // More samples than the data set has: written, and said.
  const auto round =
      test::run(crema_cmd("preview --model " + job.solver + " --out " + (job.dir / "round") + " --n 150 --phase TEST"));
  REQUIRE_MESSAGE(round.status == 0, round.output);
  CHECK_MESSAGE(round.output.find("--n 150 is more than the 100 samples of layer") != std::string::npos, round.output);

  // A mean image (not the same at every pixel) with a crop and a mirror: what the net got
  // was each source image's window, flipped or not, minus the mean image there, and the
  // preview shows that window exactly. It once added back only the mean image's average,
  // off by up to the mean's spread; the window's offset and flip are random, so the
  // mean cannot be added back afterwards: the preview's samples keep it in.
  std::vector<float> mean(100);
  for (size_t i = 0; i < mean.size(); ++i) mean[i] = static_cast<float>((i * 37) % 101);
  test::write_file(job.dir / "mean.binaryproto", io::encode_mean_blob(1, 10, 10, mean));
  const std::string with_mean =
      "{scale: 0.004, crop_size: 8, mirror: true, mean_file: " + job.dir / "mean.binaryproto" + "}";
  std::vector<cv::Mat> sources;
  for (int i = 0; i < 200; ++i)
    sources.push_back(cv::imread(job.dir / ("train/" + std::to_string(i) + ".png"), cv::IMREAD_UNCHANGED));
  const auto meaned = test::run(crema_cmd("preview --model " + job.solver + " --out " + (job.dir / "meaned") +
                                          " --n 12 --set 'net.layer[0].transform_param=" + with_mean + "'"));
  REQUIRE_MESSAGE(meaned.status == 0, meaned.output);
  int matched = 0, flipped = 0;
  for (const auto& e : fs::directory_iterator(job.dir / "meaned")) {
    const cv::Mat seen = cv::imread(e.path().string(), cv::IMREAD_UNCHANGED);
    REQUIRE(seen.rows == 8);
    bool found = false;
    for (const cv::Mat& source : sources)
      for (int y = 0; y <= 2 && !found; ++y)
        for (int x = 0; x <= 2 && !found; ++x)
          for (const bool flip : {false, true}) {
            cv::Mat window = source(cv::Rect(x, y, 8, 8)).clone();
            if (flip) cv::flip(window, window, 1);
            if (cv::norm(seen, window, cv::NORM_INF) == 0) {
              found = true;
              flipped += flip;
              break;
            }
          }
    matched += found;
  }
  CHECK(matched == 12);
  CHECK(flipped > 0);  // the mirror was in play

  const auto t = test::run(crema_cmd("time --data --model " + job.solver + " --iterations 5"));
  REQUIRE_MESSAGE(t.status == 0, t.output);
  CHECK(std::regex_search(t.output, std::regex(R"(d\s+[0-9]+ samples/s \(5 batches of 16)")));
  // An Input layer reads nothing: it once reported 200000000 samples/s.
  test::write_file(job.dir / "deploy.yaml",
                   "name: deploy\nlayer:\n- {name: in, type: Input, top: data, input_param: {shape: {dim: [2, 3]}}}\n");
  const auto input = test::run(crema_cmd("time --data --model " + job.dir / "deploy.yaml"));
  CHECK(input.status == 2);
  CHECK_MESSAGE(
      input.output.find("has no layer that reads data in phase TRAIN (only Input layers") != std::string::npos,
      input.output);

  // force_color on IDX images (stored grey) cannot be honoured: said, not silently ignored.
  test::write_toy_idx(job.dir.path().string(), "idx", 20, 5);
  test::write_file(job.dir / "idx.yaml",
                   "name: idx\nlayer:\n- {name: d, type: Data, top: [data, label], "
                   "transform_param: {force_color: true}, data_param: {source: " +
                       (job.dir / "idx-images-idx3-ubyte") + ", batch_size: 4}}\n");
  const auto forced = test::run(crema_cmd("time --data --model " + job.dir / "idx.yaml" + " --iterations 1"));
  REQUIRE_MESSAGE(forced.status == 0, forced.output);
  CHECK_MESSAGE(forced.output.find("layer 'd': force_color/force_gray apply to encoded (JPEG/PNG) LMDB records only; "
                                   "the IDX images in") != std::string::npos,
                forced.output);
}

TEST_CASE("an image folder's class names are kept beside the snapshots, and classify prints them") {
  test::TempDir dir;
  // Three classes of 2x2 grey images: dark, mid, bright.
  const std::map<std::string, int> level = {{"bright", 220}, {"dark", 10}, {"mid", 120}};
  for (const auto& [name, base] : level)
    for (int i = 0; i < 4; ++i) write_png(dir / ("data/" + name + "/" + std::to_string(i) + ".png"), 2, 2, base + i);
  test::write_file(dir / "solver.yaml",
                   "net:\n  layer:\n"
                   "    - {name: d, type: ImageData, top: [data, label], transform_param: {scale: 0.004},\n"
                   "       image_data_param: {source: " + (dir / "data") + ", is_color: false, batch_size: 6}}\n"
                   "    - {name: ip, type: InnerProduct, bottom: data, top: ip, inner_product_param: {num_output: 3, "
                   "weight_filler: {type: xavier}}}\n"
                   "    - {name: loss, type: SoftmaxWithLoss, bottom: [ip, label], top: loss}\n"
                   "base_lr: 0.5\nmax_iter: 60\nsnapshot_prefix: " + (dir / "run/x") + "\nrandom_seed: 3\n");
  test::write_file(dir / "deploy.yaml",
                   "layer:\n"
                   "  - {name: data, type: Input, top: data, input_param: {shape: {dim: [1, 1, 2, 2]}}}\n"
                   "  - {name: ip, type: InnerProduct, bottom: data, top: ip, inner_product_param: {num_output: 3}}\n"
                   "  - {name: prob, type: Softmax, bottom: ip, top: prob}\n");
  const auto r = test::run(crema_cmd("train " + (dir / "solver.yaml")));
  REQUIRE_MESSAGE(r.status == 0, r.output);
  std::ifstream classes(dir / "run/x.classes.txt");
  std::string text((std::istreambuf_iterator<char>(classes)), std::istreambuf_iterator<char>());
  CHECK(text == "bright\ndark\nmid\n");
  const auto c = test::run(crema_cmd("classify --model " + (dir / "deploy.yaml") + " --weights " +
                                     (dir / "run/x_iter_60.caffemodel.h5") + " --scale 0.004 --top-k 1 " +
                                     (dir / "data/dark/0.png")));
  REQUIRE_MESSAGE(c.status == 0, c.output);
  CHECK(c.output.find("x.classes.txt") != std::string::npos);
  CHECK(c.output.find("\"dark\"") != std::string::npos);
  // A class list beside the weights that does not fit the net: a mistake in the command (exit
  // status 2, as a wrong --labels), with the way out.
  test::write_file(dir / "run/x.classes.txt", "bright\ndark\n");
  const auto mismatch =
      test::run(crema_cmd("classify --model " + (dir / "deploy.yaml") + " --weights " +
                          (dir / "run/x_iter_60.caffemodel.h5") + " --scale 0.004 " + (dir / "data/dark/0.png")));
  CHECK(mismatch.status == 2);
  CHECK_MESSAGE(mismatch.output.find("names 2 classes but the net's output 'prob' has 3; crema found it beside the "
                                     "weights") != std::string::npos,
                mismatch.output);
}

TEST_CASE("an image folder with other classes than training's is refused: in training's tests, crema test, a resume") {
  test::TempDir dir;
  const auto images = [&](const std::string& folder, const std::vector<std::string>& classes) {
    for (size_t k = 0; k < classes.size(); ++k)
      for (int i = 0; i < 3; ++i)
        write_png(dir / (folder + "/" + classes[k] + "/" + std::to_string(i) + ".png"), 2, 2,
                  10 + 100 * static_cast<int>(k) + i);
  };
  images("train", {"bright", "dark", "mid"});
  images("test", {"bright", "mid"});  // no dark images to test with: 'mid' would become label 1
  images("more", {"bright", "dark", "extra", "mid"});
  test::write_file(
      dir / "solver.yaml",
      "net:\n  layer:\n"
      "    - {name: d, type: ImageData, top: [data, label], include: {phase: TRAIN}, transform_param: "
      "{scale: 0.004},\n"
      "       image_data_param: {source: " +
          (dir / "train") +
          ", is_color: false, batch_size: 3}}\n"
          "    - {name: dt, type: ImageData, top: [data, label], include: {phase: TEST}, transform_param: "
          "{scale: 0.004},\n"
          "       image_data_param: {source: " +
          (dir / "test") +
          ", is_color: false, batch_size: 3}}\n"
          "    - {name: ip, type: InnerProduct, bottom: data, top: ip, inner_product_param: {num_output: 4, "
          "weight_filler: {type: xavier}}}\n"
          "    - {name: loss, type: SoftmaxWithLoss, bottom: [ip, label], top: loss}\n"
          "base_lr: 0.1\nmax_iter: 10\nsnapshot: 5\ntest_iter: 1\ntest_interval: 5\nsnapshot_prefix: " +
          (dir / "run/x") + "\nrandom_seed: 3\n");
  const auto refused = test::run(crema_cmd("train " + (dir / "solver.yaml")));
  CHECK(refused.status == 2);
  CHECK_MESSAGE(
      refused.output.find("net.layer[1]: layer 'dt' reads 2 classes from the image folder '" + (dir / "test") +
                          "' (bright, mid), not the 3 of layer 'd' of the TRAIN net: bright, dark, mid; "
                          "labels are class positions, so 'mid' would be label 1 here but is 2 in "
                          "training: give '" +
                          (dir / "test") +
                          "' a sub-folder for every class of training, an empty one for a class without "
                          "images (mkdir " +
                          (dir / "test/dark") + ", missing: dark)") != std::string::npos,
      refused.output);
  fs::create_directories(dir / "test/dark");  // as the message says
  const auto trained = test::run(crema_cmd("train " + (dir / "solver.yaml")));
  REQUIRE_MESSAGE(trained.status == 0, trained.output);

  // crema test, with the classes training wrote beside the weights.
  const std::string weights = dir / "run/x_iter_10.caffemodel.h5";
  const std::string other = " --set net.layer[1].image_data_param.source=" + (dir / "more");
  const auto scored = test::run(crema_cmd("test --model " + (dir / "solver.yaml") + " --weights " + weights + other));
  CHECK(scored.status == 2);
  CHECK_MESSAGE(
      scored.output.find("not the 3 in " + (dir / "run/x.classes.txt") +
                         ", written beside the weights by training: bright, dark, mid; labels are class positions, so "
                         "'mid' would be label 3 here but is 2 in training: leave out the class(es) "
                         "training had none of (extra)") != std::string::npos,
      scored.output);
  const auto same = test::run(crema_cmd("test --model " + (dir / "solver.yaml") + " --weights " + weights));
  CHECK_MESSAGE(same.status == 0, same.output);

  // A resume whose training folder has gained a class.
  const auto resumed =
      test::run(crema_cmd("train " + (dir / "solver.yaml") + " --snapshot " + (dir / "run/x_iter_5.solverstate.h5") +
                          " --set net.layer[0].image_data_param.source=" + (dir / "more")));
  CHECK(resumed.status == 2);
  CHECK_MESSAGE(resumed.output.find("not the 3 in " + (dir / "run/x.classes.txt") +
                                    ", of the run being resumed: bright") != std::string::npos,
                resumed.output);
}

TEST_CASE("a fully convolutional net learns per-pixel labels from images of many sizes, one at a time, with masks") {
  // Caffe's way to train a segmentation net: an ImageData layer of images and one of their
  // masks (label images), both batch_size 1, paired by position; every image has its own
  // size. A pixel's class is whether it is brighter than 127; pixel (0, 0) is ignored (255).
  test::TempDir dir;
  const std::string root = dir.path().string();
  Rng rng(77);
  std::vector<std::pair<int, int>> train_sizes, test_sizes;
  for (const std::string split : {"train", "test"}) {
    std::string images, masks;
    for (int i = 0; i < (split == "train" ? 40 : 12); ++i) {
      const int h = 6 + static_cast<int>(rng.next_u32() % 9), w = 6 + static_cast<int>(rng.next_u32() % 9);
      (split == "test" ? test_sizes : train_sizes).emplace_back(h, w);
      cv::Mat image(h, w, CV_8UC1), mask(h, w, CV_8UC1);
      for (int y = 0; y < h; ++y)
        for (int x = 0; x < w; ++x) {
          const int v = static_cast<int>(rng.next_u32() % 256);
          image.at<uint8_t>(y, x) = static_cast<uint8_t>(v);
          mask.at<uint8_t>(y, x) = static_cast<uint8_t>(y == 0 && x == 0 ? 255 : v > 127 ? 1 : 0);
        }
      const std::string name = split + "/" + std::to_string(i);
      fs::create_directories(dir / split);
      REQUIRE(cv::imwrite(dir / (name + ".png"), image));
      REQUIRE(cv::imwrite(dir / (name + "_mask.png"), mask));
      images += name + ".png 0\n";
      masks += name + "_mask.png 0\n";
    }
    test::write_file(dir / (split + ".txt"), images);
    test::write_file(dir / (split + "_masks.txt"), masks);
  }
  std::string net;
  for (const std::string phase : {"TRAIN", "TEST"}) {
    const std::string split = phase == "TRAIN" ? "train" : "test";
    net += "    - {name: image, type: ImageData, top: data, include: {phase: " + phase +
           "}, transform_param: {scale: 0.0039215},\n       image_data_param: {source: " + root + "/" + split +
           ".txt, root_folder: " + root + ", is_color: false, threads: 2}}\n";
    net += "    - {name: mask, type: ImageData, top: label, include: {phase: " + phase +
           "},\n       image_data_param: {source: " + root + "/" + split + "_masks.txt, root_folder: " + root +
           ", is_color: false}}\n";
  }
  const std::string solver = dir / "solver.yaml";
  test::write_file(
      solver,
      "net:\n  name: fcn\n  layer:\n" + net +
          "    - {name: conv1, type: Convolution, bottom: data, top: conv1, convolution_param: {num_output: 8, "
          "kernel_size: 3, pad: 1, weight_filler: {type: xavier}}}\n"
          "    - {name: relu1, type: ReLU, bottom: conv1, top: conv1}\n"
          "    - {name: pool1, type: Pooling, bottom: conv1, top: pool1, pooling_param: {pool: MAX, kernel_size: 2, "
          "stride: 2}}\n"
          "    - {name: up, type: Deconvolution, bottom: pool1, top: up, convolution_param: {num_output: 4, "
          "kernel_size: 2, stride: 2, weight_filler: {type: xavier}}}\n"
          "    - {name: crop, type: Crop, bottom: [up, data], top: upc, crop_param: {axis: 2}}\n"
          "    - {name: cat, type: Concat, bottom: [conv1, upc], top: cat}\n"
          "    - {name: score, type: Convolution, bottom: cat, top: score, convolution_param: {num_output: 2, "
          "kernel_size: 1, weight_filler: {type: xavier}}}\n"
          "    - {name: loss, type: SoftmaxWithLoss, bottom: [score, label], top: loss, loss_param: {ignore_label: "
          "255}}\n"
          "    - {name: accuracy, type: Accuracy, bottom: [score, label], top: accuracy, include: {phase: TEST}, "
          "accuracy_param: {ignore_label: 255}}\n"
          "base_lr: 0.05\nmomentum: 0.9\nlr_policy: fixed\ndisplay: 100\nmax_iter: 400\ntest_iter: 12\n"
          "test_interval: 400\ntest_initialization: true\nsnapshot_prefix: " +
          root + "/snap/fcn\nrandom_seed: 3\n");
  const auto r = test::run(crema_cmd("train " + solver));
  REQUIRE_MESSAGE(r.status == 0, r.output);
  CHECK(r.output.find("each image goes through the net at its own size") != std::string::npos);
  CHECK(r.output.find("skipped") == std::string::npos);
  std::smatch first, last;
  REQUIRE(std::regex_search(r.output, first, std::regex(R"(Iteration 0, Testing net[\s\S]*?accuracy = ([0-9.]+))")));
  REQUIRE(std::regex_search(r.output, last, std::regex(R"(Iteration 400, Testing net[\s\S]*?accuracy = ([0-9.]+))")));
  MESSAGE("per-pixel accuracy: " << first[1] << " before training, " << last[1] << " after");
  CHECK(std::stod(last[1]) > 0.95);
  CHECK(std::stod(last[1]) > std::stod(first[1]) + 0.2);

  // preview: the TRAIN images as the net sees them, each at its size (the list is read in order).
  const auto preview = test::run(crema_cmd("preview --model " + solver + " --out " + root + "/preview --n 5"));
  REQUIRE_MESSAGE(preview.status == 0, preview.output);
  for (int i = 0; i < 5; ++i) {
    const cv::Mat png = cv::imread(root + "/preview/sample_" + std::to_string(i) + ".png", cv::IMREAD_UNCHANGED);
    REQUIRE(!png.empty());
    CHECK(png.rows == train_sizes[static_cast<size_t>(i)].first);
    CHECK(png.cols == train_sizes[static_cast<size_t>(i)].second);
  }

  // extract-features: each test image's scores at its size, in an LMDB of Datums; an HDF5
  // dataset, whose rows have one shape, is refused with the way out.
  const std::string model =
      " --model " + solver + " --weights " + root + "/snap/fcn_iter_400.caffemodel.h5 --iterations 12";
  const auto h5 = test::run(crema_cmd("extract-features" + model + " --blobs score -o " + root + "/score.h5"));
  CHECK(h5.status == 1);
  CHECK_MESSAGE(h5.output.find("an HDF5 dataset holds rows of one shape; write one LMDB per blob") != std::string::npos,
                h5.output);
  CHECK_FALSE(fs::exists(dir / "score.h5"));
  const auto db = test::run(crema_cmd("extract-features" + model + " --blobs score -o " + root + "/score_lmdb"));
  REQUIRE_MESSAGE(db.status == 0, db.output);
  io::LmdbReader scores(root + "/score_lmdb");
  REQUIRE(scores.count() == 12);
  for (int i = 0; i < 12; ++i) {
    io::Datum d;
    io::decode_datum(scores.get(fmt::format("{:010d}", i)), "score", d);
    CHECK(d.channels == 2);
    CHECK(d.height == test_sizes[static_cast<size_t>(i)].first);
    CHECK(d.width == test_sizes[static_cast<size_t>(i)].second);
  }
}

namespace {

// The sides of the images below: the one after the one-pixel image is as large as the one
// before it, so the net takes it as set up for that one.
int spp_side(int i) { return i == 5 ? 1 : i == 6 ? 12 : 8 + i; }

// Eight grey images img/0..7.png of sides spp_side(i), the sixth (img/5.png) of one pixel,
// listed with labels 0, 1, 0, ... in dir/list.txt; SPP's two levels take any of them but it.
void write_spp_job(const test::TempDir& dir) {
  std::string list;
  for (int i = 0; i < 8; ++i) {
    const int side = spp_side(i);
    write_png(dir / ("img/" + std::to_string(i) + ".png"), side, side, i);
    list += "img/" + std::to_string(i) + ".png " + std::to_string(i % 2) + "\n";
  }
  test::write_file(dir / "list.txt", list);
  const std::string root = dir.path().string();
  test::write_file(dir / "solver.yaml",
                   "net:\n  name: spp\n  layer:\n"
                   "    - {name: d, type: ImageData, top: [data, label], transform_param: {scale: 0.00390625}, "
                   "image_data_param: {source: " +
                       root + "/list.txt, root_folder: " + root +
                       ", is_color: false, shuffle: false}}\n"
                       "    - {name: spp, type: SPP, bottom: data, top: spp, spp_param: {pyramid_height: 2}}\n"
                       "    - {name: ip, type: InnerProduct, bottom: spp, top: ip, inner_product_param: "
                       "{num_output: 2, weight_filler: {type: xavier}}}\n"
                       "    - {name: loss, type: SoftmaxWithLoss, bottom: [ip, label], top: loss}\n"
                       "random_seed: 1\nbase_lr: 0.01\nmomentum: 0.9\nmax_iter: 16\nsnapshot: 2\nsnapshot_prefix: " +
                       root + "/a/spp\n");
}

}  // namespace

TEST_CASE("an image of its own size that the net cannot take is skipped as a bad sample, and again after a resume") {
  // Seven images an epoch: the one-pixel image comes at iterations 5 and 12, refused both times
  // (named once); a run stopped at iteration 6 resumes to the same weights.
  test::TempDir dir;
  write_spp_job(dir);
  const std::string solver = dir / "solver.yaml";
  const auto straight = test::run(crema_cmd("train " + solver));
  REQUIRE_MESSAGE(straight.status == 0, straight.output);
  CHECK_MESSAGE(test::count_of(straight.output, "data layer 'd': image '" + (dir / "img/5.png") + "'") == 1,
                straight.output);
  CHECK_MESSAGE(straight.output.find("comes to the net as 1x1x1, a size it cannot take: " + solver +
                                     ":5:7: net.layer[1] (spp): pyramid level 1 (2x2 bins) cannot pool a 1x1 bottom") !=
                    std::string::npos,
                straight.output);
  CHECK_MESSAGE(straight.output.find("1 bad sample(s) were skipped") != std::string::npos, straight.output);

  const std::string b = dir / "b/spp";
  const auto first = test::run(crema_cmd("train " + solver + " --set max_iter=6 --set snapshot_prefix=" + b));
  REQUIRE_MESSAGE(first.status == 0, first.output);
  const auto resumed = test::run(
      crema_cmd("train " + solver + " --set snapshot_prefix=" + b + " --snapshot " + b + "_iter_6.solverstate.h5"));
  REQUIRE_MESSAGE(resumed.status == 0, resumed.output);
  CHECK_MESSAGE(test::count_of(resumed.output, "img/5.png") == 1, resumed.output);  // met again in the second epoch
  const auto w_straight = io::load_weights(dir / "a/spp_iter_16.caffemodel.h5");
  const auto w_resumed = io::load_weights(dir / "b/spp_iter_16.caffemodel.h5");
  const auto w_early = io::load_weights(dir / "a/spp_iter_6.caffemodel.h5");
  REQUIRE(w_straight.size() == w_resumed.size());
  int differing = 0, compared = 0, moved = 0;
  for (size_t i = 0; i < w_straight.size(); ++i)
    for (size_t j = 0; j < w_straight[i].blobs.size(); ++j)
      for (int k = 0; k < w_straight[i].blobs[j].second.count(); ++k, ++compared) {
        differing += w_straight[i].blobs[j].second.cpu_data()[k] != w_resumed[i].blobs[j].second.cpu_data()[k];
        moved += w_straight[i].blobs[j].second.cpu_data()[k] != w_early[i].blobs[j].second.cpu_data()[k];
      }
  CHECK(compared > 0);
  CHECK(moved > 0);
  CHECK(differing == 0);
}

TEST_CASE("an image of its own size that the net cannot take stops training under on_bad_sample: fail") {
  // As any error in the middle of training: at iteration 5, after the snapshot of iteration 4,
  // iteration 5 is undone and snapshotted.
  test::TempDir dir;
  write_spp_job(dir);
  const std::string solver = dir / "solver.yaml";
  const std::string root = dir.path().string();
  const std::string fail = " --set 'net.layer[0].image_data_param.on_bad_sample=fail'";
  const auto r = test::run(crema_cmd("train " + solver + fail));
  CHECK(r.status == 1);
  CHECK_MESSAGE(r.output.find("data layer 'd': image '" + (dir / "img/5.png") + "' (" + (dir / "list.txt") +
                              ":6) comes to the net as 1x1x1, a size it cannot take: ") != std::string::npos,
                r.output);
  CHECK_MESSAGE(r.output.find("cannot pool a 1x1 bottom") != std::string::npos, r.output);
  CHECK_MESSAGE(r.output.find("(on_bad_sample: fail; without it, such an image is skipped together with the samples") !=
                    std::string::npos,
                r.output);
  CHECK_MESSAGE(
      r.output.find("Training stopped at iteration 5; the latest snapshot is of iteration 5. Once the cause "
                    "is fixed, resume with: crema train " +
                    solver + fail + " --snapshot " + root + "/a/spp_iter_5.solverstate.h5") != std::string::npos,
      r.output);
}

TEST_CASE("an image of its own size that the net cannot take is skipped with the samples paired with it") {
  // Two readers of one list and a third of HDF5 rows, in step (paired readers skip such an
  // image by default: the net keeps them in step): the image the SPP refuses goes with its
  // twin and its row, so the distance of the twins stays 0, and so does that of each image's
  // largest pixel, i + 11·(side - 1), to its row's value.
  test::TempDir dir;
  write_spp_job(dir);
  const std::string root = dir.path().string();
  std::vector<float> brightest(8);
  for (int i = 0; i < 8; ++i) brightest[static_cast<size_t>(i)] = static_cast<float>(i + 11 * (spp_side(i) - 1));
  {
    io::H5File f(dir / "rows.h5", io::H5File::Mode::Create);
    f.write_floats("brightest", {8, 1}, brightest.data());
  }
  test::write_file(dir / "rows.txt", dir / "rows.h5");
  const std::string reader =
      "image_data_param: {source: " + root + "/list.txt, root_folder: " + root + ", is_color: false, shuffle: false}";
  test::write_file(dir / "net.yaml", "name: pairs\nlayer:\n  - {name: a, type: ImageData, top: [a, a_label], " +
                                         reader + "}\n  - {name: b, type: ImageData, top: [b, b_label], " + reader +
                                         "}\n"
                                         "  - {name: rows, type: HDF5Data, top: brightest, hdf5_data_param: {source: " +
                                         root +
                                         "/rows.txt, batch_size: 1}}\n"
                                         "  - {name: spp, type: SPP, bottom: a, top: spp, spp_param: {pyramid_height: "
                                         "2}}\n"
                                         "  - {name: s, type: Silence, bottom: [spp, a_label, b_label]}\n"
                                         "  - {name: twins, type: EuclideanLoss, bottom: [a, b], top: twins}\n"
                                         "  - {name: top_pixel, type: Pooling, bottom: a, top: top_pixel, "
                                         "pooling_param: {pool: MAX, global_pooling: true}}\n"
                                         "  - {name: rows_off, type: EuclideanLoss, bottom: [top_pixel, brightest], "
                                         "top: rows_off}\n");
  const auto r = test::run(test::crema_binary() + " test --model " + (dir / "net.yaml") + " --iterations 14");
  REQUIRE_MESSAGE(r.status == 0, r.output);
  CHECK_MESSAGE(r.output.find("twins = 0 (") != std::string::npos, r.output);
  CHECK_MESSAGE(r.output.find("rows_off = 0 (") != std::string::npos, r.output);
  CHECK_MESSAGE(r.output.find("data layer 'a': image '" + (dir / "img/5.png") + "'") != std::string::npos, r.output);
  CHECK_MESSAGE(r.output.find("data layer 'b': image '" + (dir / "img/5.png") + "'") != std::string::npos, r.output);
}
