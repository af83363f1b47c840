// `crema extract-features` (Caffe's extract_features), driven as a user drives it:
// a trained toy model's blobs written to HDF5 and to LMDBs of Datums, checked against
// the data they came from and against `crema test`'s accuracy over the same batches,
// and the mistakes a user makes, refused before anything is written.
#include <doctest/doctest.h>

#include <chrono>
#include <filesystem>
#include <opencv2/imgcodecs.hpp>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "io/datum.hpp"
#include "io/hdf5.hpp"
#include "io/idx.hpp"
#include "io/lmdb.hpp"
#include "test_util.hpp"

using namespace crema;
namespace fs = std::filesystem;

namespace {
using test::crema_cmd;
bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }
}  // namespace

TEST_CASE("extract-features writes every test sample's blobs to HDF5 and to Caffe's LMDB layout") {
  test::ToyJob job(40);
  REQUIRE(test::run(crema_cmd("train " + job.solver + " --threads 1")).status == 0);
  const std::string weights = job.dir / "snap/toy_iter_40.caffemodel.h5";
  const std::string model = " --model " + job.solver + " --weights " + weights + " --iterations 2 --threads 1";

  // HDF5: fc2 (the logits), conv (N, 4, 8, 8) and the labels, one row per sample, 2 batches of 50.
  const std::string h5 = job.dir / "features.h5";
  const auto r = test::run(crema_cmd("extract-features" + model + " --blobs fc2,conv,label -o " + h5));
  INFO(r.output);
  REQUIRE(r.status == 0);
  CHECK(contains(r.output, "Wrote 100 samples (2 batches) of fc2 50 10 (500), conv 50 4 8 8 (12800), label 50 (50)"));
  io::H5File file(h5, io::H5File::Mode::Read);
  std::vector<int> fc2_shape, conv_shape, label_shape;
  const std::vector<float> fc2 = file.read_floats("fc2", &fc2_shape);
  const std::vector<float> conv = file.read_floats("conv", &conv_shape);
  const std::vector<float> label = file.read_floats("label", &label_shape);
  CHECK(fc2_shape == std::vector<int>{100, 10});
  CHECK(conv_shape == std::vector<int>{100, 4, 8, 8});
  CHECK(label_shape == std::vector<int>{100});

  // The test layer reads the test set in order: the labels are the file's.
  const io::IdxArray labels = io::read_idx(job.dir / "test-labels-idx1-ubyte");
  REQUIRE(labels.data.size() == 100);
  for (int i = 0; i < 100; ++i) CHECK(label[static_cast<size_t>(i)] == labels.data[static_cast<size_t>(i)]);

  // The logits' argmax scores what `crema test` scores over the same two batches.
  int right = 0;
  for (int i = 0; i < 100; ++i) {
    const float* row = fc2.data() + i * 10;  // (10)
    right += std::max_element(row, row + 10) - row == static_cast<long>(label[static_cast<size_t>(i)]);
  }
  const auto scored = test::run(crema_cmd("test" + model));
  REQUIRE_MESSAGE(scored.status == 0, scored.output);
  std::smatch m;
  REQUIRE(std::regex_search(scored.output, m, std::regex(R"(\] accuracy = ([0-9.]+))")));
  CHECK(std::stod(m[1]) == doctest::Approx(right / 100.0).epsilon(1e-6));
  CHECK(right > 30);  // the model learnt something, so the check above compares real predictions

  // LMDB, one database per blob as Caffe writes them: float_data Datums under keys %010d,
  // (N, C) as C x 1 x 1 and (N, C, H, W) as it is. The values are the HDF5 file's.
  const std::string fc2_db = job.dir / "fc2_lmdb", conv_db = job.dir / "conv_lmdb";
  const auto l = test::run(crema_cmd("extract-features" + model + " --blobs fc2,conv -o " + fc2_db + "," + conv_db));
  INFO(l.output);
  REQUIRE(l.status == 0);
  io::LmdbReader fc2_lmdb(fc2_db), conv_lmdb(conv_db);
  CHECK(fc2_lmdb.count() == 100);
  CHECK(conv_lmdb.count() == 100);
  io::Datum d;
  io::decode_datum(fc2_lmdb.get("0000000057"), "fc2 57", d);
  CHECK(d.channels == 10);
  CHECK(d.height == 1);
  CHECK(d.width == 1);
  CHECK(d.data.empty());
  CHECK(d.float_data == std::vector<float>(fc2.begin() + 570, fc2.begin() + 580));
  io::decode_datum(conv_lmdb.get("0000000099"), "conv 99", d);
  CHECK(d.channels == 4);
  CHECK(d.height == 8);
  CHECK(d.width == 8);
  CHECK(d.float_data == std::vector<float>(conv.begin() + 99 * 256, conv.end()));
  for (const auto& e : fs::directory_iterator(job.dir.path()))
    CHECK_FALSE(contains(e.path().filename().string(), ".partial-"));
}

TEST_CASE(
    "extract-features says when it writes samples twice or leaves some out, with the count that writes each once") {
  test::ToyJob job(1);
  REQUIRE(test::run(crema_cmd("train " + job.solver + " --threads 1")).status == 0);
  const std::string model =
      " --model " + job.solver + " --weights " + (job.dir / "snap/toy_iter_1.caffemodel.h5") + " --blobs fc2 -o ";
  // The log of a run of `iterations` batches of 50 over the 100 test samples.
  const auto extract = [&](int iterations) {
    const auto r = test::run(crema_cmd("extract-features" + model + (job.dir / ("f" + std::to_string(iterations))) +
                                       ".h5 --iterations " + std::to_string(iterations)));
    CHECK_MESSAGE(r.status == 0, r.output);
    return r.output;
  };
  // 4 batches: rows 100 to 199 repeat rows 0 to 99.
  const std::string twice = extract(4);
  CHECK_MESSAGE(contains(twice,
                         "extract-features: --iterations 4 x batch_size 50 reads each of the 100 samples of "
                         "layer 'd' ("),
                twice);
  CHECK(contains(twice, ") 2 times, so each is written 2 times; set --iterations 2 to write each once"));
  const std::string half = extract(1);
  CHECK_MESSAGE(
      contains(half, "extract-features: --iterations 1 x batch_size 50 writes 50 of the 100 samples of layer 'd' ("),
      half);
  CHECK(contains(half, "(--iterations 2 writes them all)"));
  CHECK_FALSE(contains(extract(2), "of the 100 samples"));
}

TEST_CASE("extract-features and test say when bad samples skipped made the pass go round the good ones") {
  // Two images of four listed are missing: four batches of one read a, b, a, b, whatever the
  // count before the pass said (4 samples, 4 batches: each once).
  test::TempDir dir;
  REQUIRE(cv::imwrite(dir / "a.png", cv::Mat(2, 2, CV_8UC1, cv::Scalar(10))));
  REQUIRE(cv::imwrite(dir / "b.png", cv::Mat(2, 2, CV_8UC1, cv::Scalar(20))));
  test::write_file(dir / "list.txt", "a.png 0\nmissing1.png 1\nb.png 2\nmissing2.png 3\n");
  test::write_file(
      dir / "net.yaml",
      "name: n\nlayer:\n"
      "  - {name: d, type: ImageData, top: [data, label], image_data_param: {source: '" +
          (dir / "list.txt") + "', root_folder: '" + dir.path().string() +
          "/', batch_size: 1, is_color: false}}\n"
          "  - {name: ip, type: InnerProduct, bottom: data, top: ip, inner_product_param: {num_output: 4}}\n"
          "  - {name: loss, type: SoftmaxWithLoss, bottom: [ip, label], top: loss}\n");
  const std::string model = " --model " + (dir / "net.yaml") + " --iterations 4 --threads 1";
  const auto r = test::run(crema_cmd("extract-features" + model + " --blobs label -o " + (dir / "f.h5")));
  REQUIRE_MESSAGE(r.status == 0, r.output);
  CHECK_MESSAGE(contains(r.output,
                         "2 bad sample(s) were skipped (each named in a warning above), leaving 2 good sample(s) of "
                         "the 4 in the source, and the pass read 4: the rows after the first 2 repeat earlier ones; "
                         "lower --iterations to write each sample once, or mend the samples"),
                r.output);
  io::H5File file(dir / "f.h5", io::H5File::Mode::Read);
  std::vector<int> shape;
  CHECK(file.read_floats("label", &shape) == std::vector<float>{0, 2, 0, 2});
  const auto scored = test::run(crema_cmd("test" + model));
  REQUIRE_MESSAGE(scored.status == 0, scored.output);
  CHECK_MESSAGE(contains(scored.output, "and the pass read 4: some samples weigh more than others in the scores"),
                scored.output);
}

TEST_CASE("extract-features stopped by a signal leaves no output, partial or whole") {
  test::ToyJob job(10);
  REQUIRE(test::run(crema_cmd("train " + job.solver + " --threads 1")).status == 0);
  const std::string weights = job.dir / "snap/toy_iter_10.caffemodel.h5";
  for (const std::string out : {"features.h5", "features_db"}) {
    const std::string path = job.dir / out;
    // A pass far longer than the test waits: it must stop between batches.
    test::Child child({test::crema_binary(), "extract-features", "--model", job.solver, "--weights", weights, "--blobs",
                       "fc2", "--iterations", "1000000", "--threads", "1", "-o", path},
                      job.dir / "extract.log");
    REQUIRE(child.pid() > 0);
    const auto draft_exists = [&] {
      for (const auto& entry : fs::directory_iterator(job.dir.path()))
        if (entry.path().filename().string().rfind(out + ".", 0) == 0) return true;
      return false;
    };
    for (int i = 0; i < 3000 && !draft_exists(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    REQUIRE(draft_exists());
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    child.signal(SIGTERM);
    CHECK(child.wait() == 1);
    const std::string log = child.log();
    CHECK_MESSAGE(std::regex_search(log, std::regex("SIGTERM received: stopping\\n[^\\n]*interrupted after \\d+ of "
                                                    "1000000 batches; nothing was written to " +
                                                    path)),
                  log);
    CHECK_FALSE(fs::exists(path));
    CHECK_FALSE(draft_exists());
  }
}

TEST_CASE("extract-features that would fill the disk says so before it writes") {
  test::ToyJob job(4);
  // 2,000,000,000 batches of fc2 (50 x 10 values, 2000 bytes a batch): 4,000 GB, more than any
  // test machine has free. It ran until the disk was full without a word.
  const std::string out = job.dir / "f.h5";
  test::Child child({test::crema_binary(), "extract-features", "--model", job.solver, "--blobs", "fc2", "--iterations",
                     "2000000000", "--threads", "1", "-o", out},
                    job.dir / "fill.log");
  REQUIRE_MESSAGE(child.wait_for_log("Extracting fc2 from", 60), child.log());
  child.signal(SIGTERM);
  CHECK(child.wait() == 1);
  const std::string log = child.log();
  CHECK_MESSAGE(std::regex_search(log, std::regex("extract-features will write at least 4000\\.0 GB "
                                                  "\\(2000000000 batches of fc2\\) to '" +
                                                  job.dir.path().string() +
                                                  "', whose file system has [0-9.]+ GB free: it will fail when the "
                                                  "disk is full unless space is freed; write elsewhere \\(-o\\), "
                                                  "or lower --iterations\n[^\n]*Extracting fc2 from")),
                log);
  CHECK_FALSE(fs::exists(out));
}

TEST_CASE("extract-features refuses a mistake before it writes anything, exit status 2") {
  test::ToyJob job(4);
  const std::string model = " --model " + job.solver + " --iterations 1";
  const auto refused = [&](const std::string& args, const std::string& message) {
    const auto r = test::run(crema_cmd("extract-features" + model + args));
    CHECK_MESSAGE(r.status == 2, r.output);
    CHECK_MESSAGE(contains(r.output, message), r.output);
  };
  refused(" --blobs fc22 -o " + (job.dir / "a.h5"),
          "--blobs: names blob 'fc22', which the TEST net does not have (did you mean 'fc2'?)");
  CHECK_FALSE(fs::exists(job.dir / "a.h5"));
  refused(" --blobs loss -o " + (job.dir / "a.h5"), "blob 'loss' is a scalar (a loss, say), with no row per sample");
  refused(" --blobs fc1,fc2 -o " + (job.dir / "one_lmdb"), "or one LMDB folder per blob: --blobs names 2, -o 1");
  refused(" --blobs fc1,fc2 -o " + (job.dir / "a.h5") + "," + (job.dir / "b_lmdb"),
          "one HDF5 file holds every blob: give -o FEATURES.h5 alone");
  refused(" --blobs fc2,fc2 -o " + (job.dir / "a.h5"), "names blob 'fc2' twice");
  // An empty name was skipped (`--blobs ""` wrote an empty file, status 0).
  refused(" --blobs '' -o " + (job.dir / "a.h5"), "--blobs: an empty value (an unset shell variable?)");
  refused(" --blobs fc1,,fc2 -o " + (job.dir / "a.h5"), "--blobs: 'fc1,,fc2' has an empty name");
  refused(" --blobs fc2 -o " + (job.dir / "a.h5") + ",", "-o: '" + (job.dir / "a.h5") + ",' has an empty name");
  CHECK_FALSE(fs::exists(job.dir / "a.h5"));
  refused(" --blobs fc2 -o " + (job.dir / "a.h5") + " --weights " + (job.dir / "nosuch.caffemodel.h5"),
          "--weights: '" + (job.dir / "nosuch.caffemodel.h5") + "' does not exist");
  refused(" --blobs fc1,fc2 -o " + (job.dir / "db") + "," + (job.dir / "./db"), "is named twice");
  refused(" --blobs fc2 -o " + job.solver, "already exists; extract-features writes a new database");
  refused(" --blobs fc2 -o " + (job.dir / "no/such.h5"), "the folder '" + (job.dir / "no") + "' does not exist");
  test::write_file(job.dir / "deploy.yaml",
                   "name: deploy\nlayer:\n- {name: in, type: Input, top: data, input_param: {shape: {dim: [2, 3]}}}\n");
  const auto deploy = test::run(
      crema_cmd("extract-features --model " + (job.dir / "deploy.yaml") + " --blobs data -o " + (job.dir / "d.h5")));
  CHECK(deploy.status == 2);
  CHECK_MESSAGE(contains(deploy.output, "so there is nothing to extract features from"), deploy.output);
  CHECK_FALSE(fs::exists(job.dir / "d.h5"));
}
