// `crema classify`: Caffe's cpp_classification output for images on disk.
#include <doctest/doctest.h>

#include <filesystem>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <regex>

#include "io/checkpoint.hpp"
#include "io/idx.hpp"
#include "test_util.hpp"

using namespace crema;

namespace {
const char* kDeploy = R"(
name: toy_deploy
layer:
  - {name: data, type: Input, top: data, input_param: {shape: {dim: [1, 1, 10, 10]}}}
  - {name: conv, type: Convolution, bottom: data, top: conv, convolution_param: {num_output: 4, kernel_size: 3}}
  - {name: relu, type: ReLU, bottom: conv, top: conv}
  - {name: fc1, type: InnerProduct, bottom: conv, top: fc1, inner_product_param: {num_output: 32}}
  - {name: fc2, type: InnerProduct, bottom: fc1, top: fc2, inner_product_param: {num_output: 10}}
  - {name: prob, type: Softmax, bottom: fc2, top: prob}
)";
}  // namespace

TEST_CASE("classify prints the top classes per image, resizing the batch to the images") {
  test::TempDir dir;
  const std::string d = dir.path().string();
  test::write_toy_idx(d, "train", 400, 1);
  test::write_toy_idx(d, "test", 100, 2);
  test::write_file(dir / "solver.yaml", test::toy_solver_yaml(d, 150));
  const auto trained = test::run(test::crema_binary() + " train " + (dir / "solver.yaml"));
  REQUIRE_MESSAGE(trained.status == 0, trained.output);
  test::write_file(dir / "deploy.yaml", kDeploy);
  std::string labels;
  for (int c = 0; c < 10; ++c) labels += "class " + std::to_string(c) + " (toy)\n";
  test::write_file(dir / "labels.txt", labels);

  // Six test images as PNG files, 20x20 so that classify has to resize them.
  const io::IdxArray images = io::read_idx(d + "/test-images-idx3-ubyte");
  const io::IdxArray truth = io::read_idx(d + "/test-labels-idx1-ubyte");
  std::string args;
  for (int i = 0; i < 6; ++i) {
    cv::Mat img(10, 10, CV_8UC1, const_cast<uint8_t*>(images.data.data()) + 100 * i), big;
    cv::resize(img, big, cv::Size(20, 20), 0, 0, cv::INTER_NEAREST);
    const std::string path = dir / ("img" + std::to_string(i) + ".png");
    REQUIRE(cv::imwrite(path, big));
    args += " " + path;
  }
  const auto r = test::run(test::crema_binary() + " classify --model " + (dir / "deploy.yaml") + " --weights " +
                           (dir / "snap/toy_iter_150.caffemodel.h5") + " --scale 0.004 --labels " + (dir / "labels.txt") +
                           " --top-k 3" + args);
  REQUIRE_MESSAGE(r.status == 0, r.output);
  const std::regex block(R"re(---------- Prediction for (\S+img(\d)\.png) ----------\n([0-9]\.[0-9]{4}) - "class (\d) \(toy\)"\n[0-9]\.[0-9]{4} - "class \d \(toy\)"\n[0-9]\.[0-9]{4} - "class \d \(toy\)"\n)re");
  int blocks = 0, correct = 0;
  for (auto it = std::sregex_iterator(r.output.begin(), r.output.end(), block); it != std::sregex_iterator(); ++it) {
    const int i = std::stoi((*it)[2]);
    CHECK(i == blocks);  // in command-line order
    correct += std::stoi((*it)[4]) == truth.data[static_cast<size_t>(i)];
    ++blocks;
  }
  CHECK_MESSAGE(blocks == 6, r.output);
  CHECK(correct >= 4);  // the toy classes are easy; the trained net gets most right
  CHECK(r.output.find("no --scale, --mean-value or --mean-file") == std::string::npos);
  // Without the training's scale the net sees raw pixels: said.
  const auto raw = test::run(test::crema_binary() + " classify --model " + (dir / "deploy.yaml") + " --weights " +
                             (dir / "snap/toy_iter_150.caffemodel.h5") + args);
  CHECK_MESSAGE(raw.output.find("no --scale, --mean-value or --mean-file: the net gets raw pixel values (0 to 255)") !=
                    std::string::npos,
                raw.output);

  // In batches of 4 (then 1), with an image missing and a truncated JPEG among them: the others
  // get the predictions one batch gives them, in order; the two are named, and the status says so.
  cv::Mat grey(20, 20, CV_8UC1, cv::Scalar(90));
  REQUIRE(cv::imwrite(dir / "cut.jpg", grey));
  std::filesystem::resize_file(dir / "cut.jpg", std::filesystem::file_size(dir / "cut.jpg") - 30);
  const std::string mixed = " " + (dir / "img0.png") + " " + (dir / "gone.png") + " " + (dir / "img1.png") + " " +
                            (dir / "img2.png") + " " + (dir / "cut.jpg") + " " + (dir / "img3.png") + " " +
                            (dir / "img4.png");
  const auto batched = test::run(test::crema_binary() + " classify --model " + (dir / "deploy.yaml") + " --weights " +
                                 (dir / "snap/toy_iter_150.caffemodel.h5") + " --scale 0.004 --labels " +
                                 (dir / "labels.txt") + " --top-k 3 --batch-size 4 --threads 1" + mixed);
  CHECK(batched.status == 1);
  CHECK_MESSAGE(batched.output.find("image '" + (dir / "gone.png") + "' does not exist; left out") != std::string::npos,
                batched.output);
  CHECK_MESSAGE(batched.output.find("image '" + (dir / "cut.jpg") +
                                    "' is a truncated JPEG (no end marker); left out") != std::string::npos,
                batched.output);
  CHECK(batched.output.find("Premature end") == std::string::npos);  // libjpeg's own line
  CHECK_MESSAGE(batched.output.find("2 of 7 image(s) could not be read, so they have no prediction: " +
                                    (dir / "gone.png") + ", " + (dir / "cut.jpg")) != std::string::npos,
                batched.output);
  std::vector<std::string> one_batch, in_batches;
  for (auto it = std::sregex_iterator(r.output.begin(), r.output.end(), block); it != std::sregex_iterator(); ++it)
    if (std::stoi((*it)[2]) < 5) one_batch.push_back(it->str());
  for (auto it = std::sregex_iterator(batched.output.begin(), batched.output.end(), block);
       it != std::sregex_iterator(); ++it)
    in_batches.push_back(it->str());
  CHECK(in_batches == one_batch);

  // Without labels the class index is printed; a missing image is one clear error.
  const auto plain = test::run(test::crema_binary() + " classify --model " + (dir / "deploy.yaml") + " --weights " +
                               (dir / "snap/toy_iter_150.caffemodel.h5") + " --top-k 1 " + (dir / "img0.png"));
  CHECK(std::regex_search(plain.output, std::regex(R"(\n[0-9]\.[0-9]{4} - "\d"\n)")));
  const auto missing = test::run(test::crema_binary() + " classify --model " + (dir / "deploy.yaml") + " " + (dir / "nope.png"));
  CHECK(missing.status == 1);
  CHECK(missing.output.find("nope.png") != std::string::npos);
  CHECK(missing.output.find("terminate") == std::string::npos);

  // The training solver as --model: its data layer would feed its own batch, so the
  // images would be ignored and the Accuracy printed as a prediction.
  const auto training = test::run(test::crema_binary() + " classify --model " + (dir / "solver.yaml") +
                                  " --weights " + (dir / "snap/toy_iter_150.caffemodel.h5") + " " + (dir / "img0.png"));
  CHECK(training.status == 2);
  CHECK_MESSAGE(training.output.find("Data layer ('d'), which reads its own data: classify needs a deploy net") !=
                    std::string::npos,
                training.output);
  CHECK(training.output.find("Prediction") == std::string::npos);

  // A labels file must name every class, no more and no fewer (names would be shifted),
  // and a folder given as --labels used to be read as an empty file and ignored.
  const std::string classify = test::crema_binary() + " classify --model " + (dir / "deploy.yaml") + " --weights " +
                               (dir / "snap/toy_iter_150.caffemodel.h5") + " --labels ";
  test::write_file(dir / "eleven.txt", labels + "class 10\n\n");
  const auto eleven = test::run(classify + (dir / "eleven.txt") + " " + (dir / "img0.png"));
  CHECK(eleven.status == 2);
  CHECK_MESSAGE(eleven.output.find("--labels: the labels file '" + (dir / "eleven.txt") +
                                   "' names 11 classes but the net's output 'prob' has 10; give one name per line") !=
                    std::string::npos,
                eleven.output);
  test::write_file(dir / "ten.txt", labels + "\n\n");  // blank lines at the end name no class
  CHECK(test::run(classify + (dir / "ten.txt") + " " + (dir / "img0.png")).status == 0);
  const auto folder = test::run(classify + dir.path().string() + " " + (dir / "img0.png"));
  CHECK(folder.status == 2);
  CHECK_MESSAGE(
      folder.output.find("is a directory; give a text file with one class name per line") != std::string::npos,
      folder.output);
  // Weights given as the labels (they were read as 5,649 class names), a missing labels file,
  // weights as the mean file (called damaged), a folder as an image (called undecodable).
  const std::string weights = dir / "snap/toy_iter_150.caffemodel.h5";
  const auto binary = test::run(classify + weights + " " + (dir / "img0.png"));
  CHECK(binary.status == 2);
  CHECK_MESSAGE(binary.output.find("--labels: '" + weights + "' holds binary data (weights?), not class names") !=
                    std::string::npos,
                binary.output);
  const auto no_labels = test::run(classify + (dir / "none.txt") + " " + (dir / "img0.png"));
  CHECK(no_labels.status == 2);
  CHECK_MESSAGE(no_labels.output.find("--labels: cannot read the labels file '" + (dir / "none.txt") +
                                      "': No such file or directory") != std::string::npos,
                no_labels.output);
  const auto mean = test::run(classify + (dir / "labels.txt") + " --mean-file " + weights + " " + (dir / "img0.png"));
  CHECK(mean.status != 0);
  CHECK_MESSAGE(mean.output.find("it is an HDF5 file (weights or a snapshot?)") != std::string::npos, mean.output);
  const auto image_folder = test::run(classify + (dir / "labels.txt") + " " + (dir / "snap"));
  CHECK(image_folder.status != 0);
  CHECK_MESSAGE(image_folder.output.find("image '" + (dir / "snap") +
                                         "' is a folder, not an image; left out (give the images "
                                         "in it: " +
                                         (dir / "snap") + "/*)") != std::string::npos,
                image_folder.output);
  test::write_file(dir / "empty.png", "");
  const auto empty = test::run(classify + (dir / "labels.txt") + " " + (dir / "empty.png"));
  CHECK(empty.status != 0);
  CHECK_MESSAGE(empty.output.find("image '" + (dir / "empty.png") + "' is empty (0 bytes") != std::string::npos,
                empty.output);
  const auto both =
      test::run(classify + (dir / "labels.txt") + " --mean-value 1 --mean-file m.binaryproto " + (dir / "img0.png"));
  CHECK(both.status == 2);
  CHECK(both.output.find("give --mean-value or --mean-file, not both") != std::string::npos);
  // A colour mean for a grey net: a mistake in the command (it was exit 1, saying no way out).
  // A BlobProto in Caffe's legacy fields: num 1, channels 3, height 1, width 1, then 3 packed floats.
  std::string colour("\x08\x01\x10\x03\x18\x01\x20\x01\x2a\x0c", 10);
  colour.append(12, '\0');
  test::write_file(dir / "colour.binaryproto", colour);
  const auto mismatch = test::run(classify + (dir / "labels.txt") + " --mean-file " + (dir / "colour.binaryproto") +
                                  " " + (dir / "img0.png"));
  CHECK(mismatch.status == 2);
  CHECK_MESSAGE(mismatch.output.find("--mean-file: '" + (dir / "colour.binaryproto") +
                                     "' is a mean image of shape 1 3 1 1 (3) but the net's input has 1 channel") !=
                    std::string::npos,
                mismatch.output);
}

TEST_CASE("classify out of memory in a batch points at --batch-size, not at the net's data layers") {
  test::TempDir dir;
  // 256 maps of 512x512 from each image: 256 MiB a batch of one (set up), 4 GiB a batch of 16.
  test::write_file(dir / "big.yaml",
                   "name: big\nlayer:\n"
                   "  - {name: data, type: Input, top: data, input_param: {shape: {dim: [1, 1, 512, 512]}}}\n"
                   "  - {name: conv, type: Convolution, bottom: data, top: conv,\n"
                   "     convolution_param: {num_output: 256, kernel_size: 1}}\n"
                   "  - {name: pool, type: Pooling, bottom: conv, top: pool, pooling_param: {pool: AVE, "
                   "global_pooling: true}}\n");
  std::string images;
  for (int i = 0; i < 16; ++i) {
    const std::string path = dir / ("img" + std::to_string(i) + ".png");
    REQUIRE(cv::imwrite(path, cv::Mat(4, 4, CV_8UC1, cv::Scalar(i))));
    images += " " + path;
  }
  const auto r = test::run("ulimit -v 3000000; exec " + test::crema_binary() + " classify --model " +
                           (dir / "big.yaml") + " --batch-size 16" + images);
  CHECK(r.status == 1);
  CHECK_MESSAGE(r.output.find("out of host memory") != std::string::npos, r.output);
  CHECK_MESSAGE(r.output.find("give a smaller --batch-size (it is 16)") != std::string::npos, r.output);
  CHECK_MESSAGE(r.output.find("batch_size in the data layers") == std::string::npos, r.output);
}

TEST_CASE("classify runs Caffe's lenet_deploy model on its own prototxt and binary weights") {
  test::TempDir dir;
  // A handwritten-looking "1": a thick vertical stroke, white on black as in MNIST.
  cv::Mat one(28, 28, CV_8UC1, cv::Scalar(0));
  cv::line(one, cv::Point(14, 5), cv::Point(14, 22), cv::Scalar(255), 3);
  // And a "0": a ring.
  cv::Mat zero(28, 28, CV_8UC1, cv::Scalar(0));
  cv::circle(zero, cv::Point(14, 14), 8, cv::Scalar(255), 3);
  REQUIRE(cv::imwrite(dir / "one.png", one));
  REQUIRE(cv::imwrite(dir / "zero.png", zero));
  const std::string caffe = test::source_dir() + "/tests/data/caffe/lenet_deploy/";
  // The tutorial scaled the input by 1/256 in its Data layer; the deploy net has no scale.
  const auto r = test::run(test::crema_binary() + " classify --model " + caffe + "lenet.prototxt --weights " + caffe +
                           "lenet_iter_10000.caffemodel --scale 0.00390625 --top-k 2 " + (dir / "one.png") + " " +
                           (dir / "zero.png"));
  REQUIRE_MESSAGE(r.status == 0, r.output);
  CHECK_MESSAGE(std::regex_search(r.output, std::regex(R"re(Prediction for \S+one\.png -+\n[01]\.\d{4} - "1"\n)re")), r.output);
  CHECK_MESSAGE(std::regex_search(r.output, std::regex(R"re(Prediction for \S+zero\.png -+\n[01]\.\d{4} - "0"\n)re")), r.output);

  // A fully convolutional net's output (2 classes at 4x4 positions) is not ranked as 32 classes.
  test::write_file(dir / "fcn.yaml",
                   "name: fcn\nlayer:\n"
                   "  - {name: data, type: Input, top: data, input_param: {shape: {dim: [1, 1, 4, 4]}}}\n"
                   "  - {name: score, type: Convolution, bottom: data, top: score, convolution_param: {num_output: 2, "
                   "kernel_size: 1, weight_filler: {type: xavier}}}\n"
                   "  - {name: prob, type: Softmax, bottom: score, top: prob}\n");
  const auto fcn =
      test::run(test::crema_binary() + " classify --model " + (dir / "fcn.yaml") + " " + (dir / "one.png"));
  CHECK(fcn.status == 2);
  CHECK_MESSAGE(
      fcn.output.find("crema classify: --model: the net's output 'prob' is 1 2 4 4 (32): scores of 2 classes at "
                      "each of 16 positions, not one score per class, which classify ranks") != std::string::npos,
      fcn.output);

  // The weights given as the model, the two options swapped: said so (it was "not a text file").
  const auto swapped =
      test::run(test::crema_binary() + " classify --model " + caffe + "lenet_iter_10000.caffemodel --weights " + caffe +
                "lenet.prototxt " + (dir / "one.png"));
  CHECK(swapped.status == 2);
  CHECK_MESSAGE(swapped.output.find("lenet_iter_10000.caffemodel: this is a binary .caffemodel (Caffe's weights), not "
                                    "a config: give the net or solver file as the config and the weights with "
                                    "--weights (were the two swapped?)") != std::string::npos,
                swapped.output);

  // Images straight after --weights are images, not more weight files.
  const auto direct = test::run(test::crema_binary() + " classify --model " + caffe + "lenet.prototxt --scale 0.00390625 " +
                                "--top-k 2 --weights " + caffe + "lenet_iter_10000.caffemodel " + (dir / "one.png") + " " +
                                (dir / "zero.png"));
  REQUIRE_MESSAGE(direct.status == 0, direct.output);
  CHECK(std::regex_search(direct.output, std::regex(R"re(Prediction for \S+one\.png -+\n[01]\.\d{4} - "1"\n)re")));
  CHECK(std::regex_search(direct.output, std::regex(R"re(Prediction for \S+zero\.png -+\n[01]\.\d{4} - "0"\n)re")));

  // Weights of another net would classify with random parameters: refused, naming the layers.
  io::Weights other;
  other.push_back({"other", {}});
  other.back().blobs.emplace_back(0, Blob({2}));
  io::save_weights(other, dir / "other.caffemodel.h5");
  for (const std::string& image : {" " + (dir / "one.png"), std::string()}) {  // classify, then test
    const std::string command = image.empty() ? " test --iterations 1 --model " : " classify --model ";
    const auto foreign = test::run(test::crema_binary() + command + caffe + "lenet.prototxt --weights " +
                                   (dir / "other.caffemodel.h5") + image);
    CHECK(foreign.status == 2);
    CHECK_MESSAGE(foreign.output.find("no weights for layer 'conv1', 'conv2', 'ip1', 'ip2'") != std::string::npos,
                  foreign.output);
  }
}

TEST_CASE("classify --stage picks the deploy layers of a net that holds both, as DIGITS writes them") {
  test::TempDir dir;
  test::write_file(dir / "all.yaml",
                   "name: both\n"
                   "layer:\n"
                   "- {name: data, type: DummyData, top: data, exclude: {stage: deploy},\n"
                   "   dummy_data_param: {shape: {dim: [2, 1, 4, 4]}}}\n"
                   "- {name: input, type: Input, top: data, include: {stage: deploy},\n"
                   "   input_param: {shape: {dim: [1, 1, 4, 4]}}}\n"
                   "- {name: ip, type: InnerProduct, bottom: data, top: ip, inner_product_param: {num_output: 3}}\n"
                   "- {name: prob, type: Softmax, bottom: ip, top: prob}\n");
  REQUIRE(cv::imwrite(dir / "img.png", cv::Mat(4, 4, CV_8UC1, cv::Scalar(9))));
  const std::string cmd = test::crema_binary() + " classify --model " + (dir / "all.yaml") + " " + (dir / "img.png");
  const auto without = test::run(cmd);
  CHECK(without.status == 2);
  CHECK_MESSAGE(without.output.find("the net starts with a DummyData layer ('data')") != std::string::npos,
                without.output);
  CHECK_MESSAGE(without.output.find("--stage selects the deploy layers") != std::string::npos, without.output);
  const auto staged = test::run(cmd + " --stage deploy --top-k 3");
  REQUIRE_MESSAGE(staged.status == 0, staged.output);
  CHECK(std::regex_search(staged.output, std::regex(R"(Prediction for \S+img\.png -+\n[0-9]\.[0-9]{4} - "\d"\n)")));
  const auto empty = test::run(cmd + " --stage ''");
  CHECK(empty.status == 2);
}
