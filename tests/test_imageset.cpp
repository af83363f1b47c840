// `crema convert-imageset` and `crema compute-mean`, driven as a user would, on a
// handful of images written with OpenCV; the databases are read back with the LMDB
// reader and the Datum decoder and compared with OpenCV's own reading of the files.
#include <doctest/doctest.h>
#include <sys/stat.h>

#include <chrono>
#include <csignal>
#include <filesystem>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

#include "io/caffe_binary.hpp"
#include "io/datum.hpp"
#include "io/idx.hpp"
#include "io/lmdb.hpp"
#include "test_util.hpp"

using namespace crema;

namespace {

// A w x h colour image with a different value in every pixel and channel.
cv::Mat pattern(int h, int w, int seed) {
  cv::Mat m(h, w, CV_8UC3);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x)
      m.at<cv::Vec3b>(y, x) = {static_cast<uint8_t>(seed + 10 * y + x), static_cast<uint8_t>(seed + 100 + 7 * x),
                               static_cast<uint8_t>(seed * 3 + 40 * y)};
  return m;
}

// An interleaved HWC Mat as Caffe's planar CHW bytes.
std::string planar(const cv::Mat& m) {
  std::string out;
  for (int c = 0; c < m.channels(); ++c)
    for (int y = 0; y < m.rows; ++y)
      for (int x = 0; x < m.cols; ++x) out.push_back(static_cast<char>(m.ptr<uint8_t>(y)[x * m.channels() + c]));
  return out;
}

struct Record {
  std::string key;
  io::Datum datum;
};

std::vector<Record> read_db(const std::string& path) {
  io::LmdbReader db(path);
  std::vector<Record> out;
  for (io::LmdbReader::Cursor c(db); c.next();) {
    out.push_back({std::string(c.key()), {}});
    io::decode_datum(c.value(), out.back().key, out.back().datum);
  }
  return out;
}

std::vector<std::string> keys_of(const std::vector<Record>& records) {
  std::vector<std::string> keys;
  for (const auto& r : records) keys.push_back(r.key);
  return keys;
}

test::RunResult run_crema(const std::string& args) { return test::run(test::crema_binary() + " " + args); }

// ROOT with a.png (4x5 colour), sub/b.jpg (6x3 colour), e.png (grey 4x5), a
// truncated d.png and f.jpg, and a list naming those plus a missing c.png.
struct ImageFolder {
  test::TempDir dir;
  std::string root = dir / "images";
  ImageFolder() {
    std::filesystem::create_directories(root + "/sub");
    REQUIRE(cv::imwrite(root + "/a.png", pattern(4, 5, 1)));
    REQUIRE(cv::imwrite(root + "/sub/b.jpg", pattern(6, 3, 2)));
    cv::Mat grey;
    cv::cvtColor(pattern(4, 5, 3), grey, cv::COLOR_BGR2GRAY);
    REQUIRE(cv::imwrite(root + "/e.png", grey));
    REQUIRE(cv::imwrite(root + "/d.png", pattern(30, 30, 4)));
    const std::string whole = test::read_file(root + "/d.png");
    std::ofstream(root + "/d.png", std::ios::binary | std::ios::trunc) << whole.substr(0, whole.size() / 2);
    // A cut JPEG decodes (libjpeg fills the rest with grey): caught by its missing end marker.
    REQUIRE(cv::imwrite(root + "/f.jpg", pattern(40, 40, 5)));
    const std::string jpeg = test::read_file(root + "/f.jpg");
    std::ofstream(root + "/f.jpg", std::ios::binary | std::ios::trunc) << jpeg.substr(0, jpeg.size() * 3 / 4);
    std::filesystem::create_directory(root + "/g");
    test::write_file(dir / "list.txt", "a.png 3\nsub/b.jpg 1\nc.png 2\nd.png 0\n\ne.png 5\nf.jpg 6\ng 7\n");
  }
};

}  // namespace

TEST_CASE("convert-imageset writes raw BGR Datums in list order and skips missing and truncated images") {
  ImageFolder f;
  const auto r = run_crema("convert-imageset " + f.root + "/ " + (f.dir / "list.txt") + " " + (f.dir / "db"));
  REQUIRE_MESSAGE(r.status == 0, r.output);
  CHECK(r.output.find("list.txt:3: image '" + f.root + "/c.png' does not exist; skipped") != std::string::npos);
  CHECK(r.output.find("list.txt:4: image '" + f.root + "/d.png': the encoded PNG image (") != std::string::npos);
  CHECK(r.output.find("list.txt:7: image '" + f.root + "/f.jpg' is a truncated JPEG") != std::string::npos);
  CHECK(r.output.find("list.txt:8: image '" + f.root + "/g' is a folder, not an image; skipped") != std::string::npos);
  CHECK(r.output.find("Processed 3 files.") != std::string::npos);
  CHECK(r.output.find("4 of 7 listed images could not be read") != std::string::npos);

  const auto records = read_db(f.dir / "db");
  // Keys number the list's entries (blank lines aside), skipped ones included.
  REQUIRE(keys_of(records) == std::vector<std::string>{"00000000_a.png", "00000001_sub/b.jpg", "00000004_e.png"});
  const cv::Mat a = cv::imread(f.root + "/a.png", cv::IMREAD_COLOR), b = cv::imread(f.root + "/sub/b.jpg", cv::IMREAD_COLOR),
                e = cv::imread(f.root + "/e.png", cv::IMREAD_COLOR);
  const io::Datum& da = records[0].datum;
  CHECK(da.channels == 3);
  CHECK(da.height == 4);
  CHECK(da.width == 5);
  CHECK(da.label == 3);
  CHECK_FALSE(da.encoded);
  CHECK(da.data == planar(a));
  CHECK(da.data == planar(pattern(4, 5, 1)));  // PNG is lossless
  CHECK(records[1].datum.height == 6);
  CHECK(records[1].datum.width == 3);
  CHECK(records[1].datum.label == 1);
  CHECK(records[1].datum.data == planar(b));
  // A grey file read in colour: three equal channels.
  CHECK(records[2].datum.channels == 3);
  CHECK(records[2].datum.data == planar(e));
  CHECK(records[2].datum.data.substr(0, 20) == records[2].datum.data.substr(40, 20));
}

TEST_CASE("convert-imageset --resize and --gray store resized grey pixels") {
  ImageFolder f;
  test::write_file(f.dir / "list.txt", "a.png 3\nsub/b.jpg 1\n");
  const auto r =
      run_crema("convert-imageset " + f.root + " " + (f.dir / "list.txt") + " " + (f.dir / "db") + " --resize 8x6 --gray");
  REQUIRE_MESSAGE(r.status == 0, r.output);
  const auto records = read_db(f.dir / "db");
  REQUIRE(records.size() == 2);
  for (const auto& [file, rec] : {std::pair{"a.png", records[0]}, std::pair{"sub/b.jpg", records[1]}}) {
    cv::Mat resized;
    cv::resize(cv::imread(f.root + "/" + file, cv::IMREAD_GRAYSCALE), resized, cv::Size(8, 6), 0, 0, cv::INTER_LINEAR);
    CHECK(rec.datum.channels == 1);
    CHECK(rec.datum.height == 6);
    CHECK(rec.datum.width == 8);
    CHECK(rec.datum.data == planar(resized));
  }
}

TEST_CASE("convert-imageset --encoded keeps the files' bytes, re-encoding only resized images") {
  ImageFolder f;
  test::write_file(f.dir / "list.txt", "a.png 3\nsub/b.jpg 1\n");
  auto r = run_crema("convert-imageset " + f.root + " " + (f.dir / "list.txt") + " " + (f.dir / "db") + " --encoded");
  REQUIRE_MESSAGE(r.status == 0, r.output);
  auto records = read_db(f.dir / "db");
  REQUIRE(records.size() == 2);
  CHECK(records[0].datum.encoded);
  CHECK(records[0].datum.channels == 0);  // Caffe leaves the shape unset for encoded records
  CHECK(records[0].datum.data == test::read_file(f.root + "/a.png"));
  CHECK(records[1].datum.data == test::read_file(f.root + "/sub/b.jpg"));
  CHECK(records[1].datum.label == 1);

  r = run_crema("convert-imageset " + f.root + " " + (f.dir / "list.txt") + " " + (f.dir / "db2") + " --encoded --resize 10x8");
  REQUIRE_MESSAGE(r.status == 0, r.output);
  records = read_db(f.dir / "db2");
  REQUIRE(records.size() == 2);
  CHECK(records[0].datum.encoded);
  // a.png is re-encoded as a PNG of the resized image (lossless: exact pixels).
  std::vector<uint8_t> png(records[0].datum.data.begin(), records[0].datum.data.end());
  const cv::Mat decoded = cv::imdecode(png, cv::IMREAD_COLOR);
  cv::Mat want;
  cv::resize(cv::imread(f.root + "/a.png", cv::IMREAD_COLOR), want, cv::Size(10, 8), 0, 0, cv::INTER_LINEAR);
  CHECK(planar(decoded) == planar(want));
  std::vector<uint8_t> jpg(records[1].datum.data.begin(), records[1].datum.data.end());
  CHECK(records[1].datum.data.substr(0, 2) == "\xff\xd8");  // still a JPEG
  CHECK(cv::imdecode(jpg, cv::IMREAD_COLOR).size() == cv::Size(10, 8));
}

TEST_CASE("convert-imageset and compute-mean take Caffe's flags and arguments, as create_imagenet.sh writes them") {
  ImageFolder f;
  test::write_file(f.dir / "list.txt", "a.png 3\nsub/b.jpg 1\n");
  const std::string args = "convert-imageset " + f.root + "/ " + (f.dir / "list.txt") + " ";
  // --resize_height/--resize_width (single dash, '=' or a space) are --resize WxH.
  auto r = run_crema(args + (f.dir / "db") + " -resize_height=6 --resize_width 8 -backend=lmdb --gray");
  REQUIRE_MESSAGE(r.status == 0, r.output);
  auto records = read_db(f.dir / "db");
  REQUIRE(records.size() == 2);
  CHECK(records[1].datum.height == 6);
  CHECK(records[1].datum.width == 8);
  // Both 0 is Caffe's "keep the size" (create_imagenet.sh with RESIZE=false); one alone is refused.
  r = run_crema(args + (f.dir / "db0") + " --resize_height 0 --resize_width 0");
  REQUIRE_MESSAGE(r.status == 0, r.output);
  CHECK(read_db(f.dir / "db0")[0].datum.height == 4);
  r = run_crema(args + (f.dir / "db1") + " --resize_height 6");
  CHECK(r.status == 2);
  CHECK_MESSAGE(r.output.find("--resize_height: given without --resize_width, which Caffe reads as 'keep each "
                              "image's size'; give both") != std::string::npos,
                r.output);
  r = run_crema(args + (f.dir / "db1") + " --resize_height=32 --resize_width=0");
  CHECK(r.status == 2);
  CHECK_MESSAGE(r.output.find("--resize_height: given with --resize_width 0, which Caffe reads as 'keep each "
                              "image's size'; give both above 0") != std::string::npos,
                r.output);
  r = run_crema(args + (f.dir / "db1") + " --backend leveldb");
  CHECK(r.status == 2);
  CHECK_MESSAGE(r.output.find("--backend: 'leveldb': crema reads and writes LMDB only") != std::string::npos, r.output);

  // --encode_type re-encodes every image in that format (and, as in Caffe, implies --encoded);
  // a file already in it is kept as it is.
  r = run_crema(args + (f.dir / "png") + " --encode_type png");
  REQUIRE_MESSAGE(r.status == 0, r.output);
  records = read_db(f.dir / "png");
  REQUIRE(records.size() == 2);
  CHECK(records[0].datum.encoded);
  CHECK(records[0].datum.data == test::read_file(f.root + "/a.png"));
  CHECK(records[1].datum.data.substr(1, 3) == "PNG");  // b.jpg, now a PNG of its decoded pixels
  std::vector<uint8_t> png(records[1].datum.data.begin(), records[1].datum.data.end());
  CHECK(planar(cv::imdecode(png, cv::IMREAD_COLOR)) == planar(cv::imread(f.root + "/sub/b.jpg", cv::IMREAD_COLOR)));
  r = run_crema(args + (f.dir / "bad") + " --encode_type bogus");
  CHECK(r.status == 2);
  CHECK_MESSAGE(r.output.find("--encode_type: 'bogus' is no image format OpenCV writes here") != std::string::npos,
                r.output);

  // --check_size stops at the first image of another size (a.png is 4x5, b.jpg 6x3).
  r = run_crema(args + (f.dir / "sized") + " --check_size");
  CHECK(r.status == 1);
  CHECK_MESSAGE(r.output.find("list.txt:2: image 'sub/b.jpg' is 3 x 6 x 3 (channels x height x width) where line 1's "
                              "is 3 x 4 x 5 (--check_size); nothing was written") != std::string::npos,
                r.output);
  CHECK_FALSE(std::filesystem::exists(f.dir / "sized"));
  r = run_crema(args + (f.dir / "sized") + " --check_size --resize 5x4");
  CHECK_MESSAGE(r.status == 0, r.output);

  // compute_image_mean's output file is its second argument.
  r = run_crema("compute-mean " + (f.dir / "db") + " " + (f.dir / "mean.binaryproto") + " --backend lmdb");
  REQUIRE_MESSAGE(r.status == 0, r.output);
  CHECK(std::filesystem::file_size(f.dir / "mean.binaryproto") > 0);
  r = run_crema("compute-mean " + (f.dir / "db"));
  CHECK(r.status == 2);
  CHECK_MESSAGE(r.output.find("give the file to write the mean to: -o mean.binaryproto (or as the second argument") !=
                    std::string::npos,
                r.output);
  // What ImageData reads is converted first: said so, with the command.
  for (const std::string& input : {f.dir / "list.txt", f.root}) {
    r = run_crema("compute-mean " + input + " -o " + (f.dir / "m.binaryproto"));
    CHECK(r.status == 2);
    CHECK_MESSAGE(r.output.find("compute-mean reads an LMDB database or an IDX images file. Convert the images first "
                                "(crema convert-imageset ROOT/ LIST.txt OUT_LMDB --resize WxH") != std::string::npos,
                  r.output);
    CHECK_FALSE(std::filesystem::exists(f.dir / "m.binaryproto"));
  }
  // An IDX labels file for the images file: said to be one (it was "should have rank 3").
  test::write_toy_idx(f.dir.path().string(), "t", 4, 1);
  r = run_crema("compute-mean " + (f.dir / "t-labels-idx1-ubyte") + " -o " + (f.dir / "m.binaryproto"));
  CHECK(r.status == 1);
  CHECK_MESSAGE(r.output.find("t-labels-idx1-ubyte' holds 4 single values (rank 1), as a labels file does; give the "
                              "images file") != std::string::npos,
                r.output);
  CHECK_FALSE(std::filesystem::exists(f.dir / "m.binaryproto"));
}

TEST_CASE("convert-imageset --shuffle is reproducible with --seed") {
  test::TempDir dir;
  std::string list;
  for (int i = 0; i < 8; ++i) {
    REQUIRE(cv::imwrite(dir / (std::to_string(i) + ".png"), pattern(2, 2, i)));
    list += std::to_string(i) + ".png " + std::to_string(i) + "\n";
  }
  test::write_file(dir / "list.txt", list);
  auto convert = [&](const std::string& out, const std::string& seed) {
    const auto r = run_crema("convert-imageset " + dir.path().string() + " " + (dir / "list.txt") + " " + (dir / out) +
                         " --shuffle --seed " + seed);
    REQUIRE_MESSAGE(r.status == 0, r.output);
    CHECK(r.output.find("seed " + seed) != std::string::npos);
    return read_db(dir / out);
  };
  const auto first = convert("db1", "7"), again = convert("db2", "7"), other = convert("db3", "8");
  REQUIRE(first.size() == 8);
  // --seed alone would be ignored: the list's order is kept without --shuffle.
  const auto alone = run_crema("convert-imageset " + dir.path().string() + " " + (dir / "list.txt") + " " +
                               (dir / "db4") + " --seed 7");
  CHECK(alone.status == 2);
  CHECK_MESSAGE(alone.output.find("--seed requires --shuffle") != std::string::npos, alone.output);
  CHECK(keys_of(first) == keys_of(again));
  CHECK(keys_of(first) != keys_of(other));
  // Keys number the shuffled positions; each record still carries its own image and label.
  std::set<int> labels;
  bool moved = false;
  for (size_t i = 0; i < first.size(); ++i) {
    const std::string& key = first[i].key;
    CHECK(key.substr(0, 9) == std::string(7, '0') + std::to_string(i) + "_");
    const int original = std::stoi(key.substr(9));
    CHECK(first[i].datum.label == original);
    CHECK(first[i].datum.data == planar(pattern(2, 2, original)));
    CHECK(first[i].datum.data == again[i].datum.data);
    labels.insert(original);
    moved = moved || original != static_cast<int>(i);
  }
  CHECK(labels.size() == 8);
  CHECK(moved);
}

TEST_CASE("convert-imageset stopped by a signal leaves no database, partial or whole") {
  ImageFolder f;
  std::string list;
  for (int i = 0; i < 200000; ++i) list += "a.png " + std::to_string(i % 10) + "\n";
  test::write_file(f.dir / "many.txt", list);
  test::Child child({test::crema_binary(), "convert-imageset", f.root, f.dir / "many.txt", f.dir / "db"},
                    f.dir / "convert.log");
  REQUIRE(child.pid() > 0);
  REQUIRE_MESSAGE(child.wait_for_log("Processed 1000 files.", 60), child.log());
  child.signal(SIGTERM);
  CHECK(child.wait() == 1);
  const std::string log = test::read_file(f.dir / "convert.log");
  CHECK_MESSAGE(log.find("images; nothing was written to '" + (f.dir / "db") + "'") != std::string::npos, log);
  // Once a partial LMDB under the real name, which compute-mean and training took as whole.
  CHECK_FALSE(std::filesystem::exists(f.dir / "db"));
  for (const auto& entry : std::filesystem::directory_iterator(f.dir.path()))
    CHECK_MESSAGE(entry.path().filename().string().find("partial") == std::string::npos, entry.path());
}

TEST_CASE("convert-imageset and compute-mean write the same files whatever the number of threads") {
  ImageFolder f;  // skips among the images: their warnings must keep the list's order too
  std::string list = test::read_file(f.dir / "list.txt");
  for (int i = 0; i < 60; ++i) {
    const std::string name = "p" + std::to_string(i) + (i % 2 ? ".png" : ".jpg");
    REQUIRE(cv::imwrite(f.root + "/" + name, pattern(9 + i % 4, 7 + i % 3, i)));
    list += name + " " + std::to_string(i % 10) + "\n";
  }
  test::write_file(f.dir / "big.txt", list);
  std::string first_log, first_mean;
  std::vector<Record> first;
  for (const char* threads : {"1", "3"}) {
    CAPTURE(threads);
    const std::string db = f.dir / ("db" + std::string(threads));
    const auto r = run_crema("convert-imageset " + f.root + " " + (f.dir / "big.txt") + " " + db +
                             " --resize 8x6 --encoded --shuffle --seed 5 --threads " + threads);
    REQUIRE_MESSAGE(r.status == 0, r.output);
    CHECK(r.output.find("Processed 63 files.") != std::string::npos);
    const auto m =
        run_crema("compute-mean " + db + " -o " + (f.dir / ("mean" + std::string(threads))) + " --threads " + threads);
    REQUIRE_MESSAGE(m.status == 0, m.output);
    const auto records = read_db(db);
    REQUIRE(records.size() == 63);
    // crema's log lines without their time stamps and the database's name.
    std::string log;
    std::istringstream lines(r.output);
    for (std::string line; std::getline(lines, line);)
      if (const size_t at = line.find(" crema] "); at != std::string::npos) log += line.substr(at) + "\n";
    log = std::regex_replace(log, std::regex("db" + std::string(threads)), "db");
    CHECK(log.find("truncated JPEG") != std::string::npos);
    if (first.empty()) {
      first = records, first_log = log, first_mean = test::read_file(f.dir / "mean1");
      continue;
    }
    CHECK(keys_of(records) == keys_of(first));
    for (size_t i = 0; i < records.size(); ++i) {
      CHECK(records[i].datum.label == first[i].datum.label);
      CHECK(records[i].datum.data == first[i].datum.data);
    }
    CHECK(log == first_log);
    CHECK(test::read_file(f.dir / "mean3") == first_mean);
  }
  const auto bad =
      run_crema("convert-imageset " + f.root + " " + (f.dir / "big.txt") + " " + (f.dir / "db0") + " --threads 0");
  CHECK(bad.status == 2);
  CHECK_MESSAGE(bad.output.find("--threads") != std::string::npos, bad.output);
}

TEST_CASE("convert-imageset stops while an image read is stuck, without waiting for the read") {
  ImageFolder f;
  const std::string fifo = f.root + "/stuck.png";  // a read that blocks, as on a stalled file system
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  test::write_file(f.dir / "stuck.txt", "a.png 1\nstuck.png 2\ne.png 3\n");
  test::Child child(
      {test::crema_binary(), "convert-imageset", f.root, f.dir / "stuck.txt", f.dir / "db", "--threads", "2"},
      f.dir / "convert.log");
  REQUIRE(child.pid() > 0);
  REQUIRE_MESSAGE(child.wait_for_log("A total of 3 images.", 30), child.log());
  std::this_thread::sleep_for(std::chrono::milliseconds(500));  // into the read
  child.signal(SIGTERM);
  const int status = child.wait_at_most(30);  // the old code waited for the read for ever
  CHECK(status == 1);
  const std::string log = test::read_file(f.dir / "convert.log");
  CHECK_MESSAGE(log.find("SIGTERM received: stopping") != std::string::npos, log);
  CHECK_MESSAGE(log.find("interrupted after 1 of 3 images; nothing was written") != std::string::npos, log);
  CHECK_MESSAGE(
      log.find("is still blocked in a read 10 s later; crema exits without waiting for it") != std::string::npos, log);
  CHECK_FALSE(std::filesystem::exists(f.dir / "db"));
  for (const auto& entry : std::filesystem::directory_iterator(f.dir.path()))
    CHECK_MESSAGE(entry.path().filename().string().find("partial") == std::string::npos, entry.path());
}

TEST_CASE("convert-imageset refuses to overwrite and reports bad lists and options") {
  ImageFolder f;
  std::filesystem::create_directory(f.dir / "db");
  test::write_file(f.dir / "db/keep.txt", "mine");
  auto r = run_crema("convert-imageset " + f.root + " " + (f.dir / "list.txt") + " " + (f.dir / "db"));
  CHECK(r.status == 2);
  CHECK(r.output.find("'" + (f.dir / "db") + "' already exists") != std::string::npos);
  CHECK(test::read_file(f.dir / "db/keep.txt") == "mine");

  test::write_file(f.dir / "bad.txt", "a.png 3\nsub/b.jpg one\n");
  r = run_crema("convert-imageset " + f.root + " " + (f.dir / "bad.txt") + " " + (f.dir / "db2"));
  CHECK(r.status == 1);
  CHECK(r.output.find("bad.txt:2: expected 'path label'") != std::string::npos);
  test::write_file(f.dir / "big_label.txt", "a.png 99999999999\n");
  r = run_crema("convert-imageset " + f.root + " " + (f.dir / "big_label.txt") + " " + (f.dir / "db2"));
  CHECK_MESSAGE(r.output.find("big_label.txt:1: label 99999999999 is out of range") != std::string::npos, r.output);
  CHECK_FALSE(std::filesystem::exists(f.dir / "db2"));

  r = run_crema("convert-imageset " + f.root + " " + (f.dir / "list.txt") + " " + (f.dir / "db3") + " --resize 8by6");
  CHECK(r.status == 2);
  CHECK(r.output.find("--resize") != std::string::npos);
  // Too large for any record: once, before the images (each was "could not be decoded").
  r = run_crema("convert-imageset " + f.root + " " + (f.dir / "list.txt") + " " + (f.dir / "db3") +
                " --resize 100000x100000");
  CHECK(r.status == 2);
  CHECK_MESSAGE(r.output.find("--resize: 100000x100000 is 10000000000 pixels per image, too many") != std::string::npos,
                r.output);
  CHECK(r.output.find("skipped") == std::string::npos);

  test::write_file(f.dir / "none.txt", "c.png 1\n");
  r = run_crema("convert-imageset " + f.root + " " + (f.dir / "none.txt") + " " + (f.dir / "db4"));
  CHECK(r.status == 1);
  CHECK(r.output.find("none of the 1 images") != std::string::npos);
  CHECK_FALSE(std::filesystem::exists(f.dir / "db4"));
}

TEST_CASE("compute-mean writes the per-pixel mean as Caffe's BlobProto") {
  test::TempDir dir;
  {
    io::LmdbWriter db(dir / "db");
    const std::vector<std::string> pixels = {std::string("\x00\x0a\x14\xff", 4), std::string("\x02\x0a\x00\x01", 4),
                                             std::string("\x04\x0a\x01\x00", 4)};
    for (size_t i = 0; i < pixels.size(); ++i) {
      io::Datum d;
      d.channels = 1, d.height = 2, d.width = 2, d.data = pixels[i];
      db.put("k" + std::to_string(i), io::encode_datum(d));
    }
    db.commit();
  }
  const auto r = run_crema("compute-mean " + (dir / "db") + " -o " + (dir / "mean.binaryproto"));
  REQUIRE_MESSAGE(r.status == 0, r.output);
  // Means by hand: (0+2+4)/3, (10*3)/3, (20+0+1)/3, (255+1+0)/3.
  const Blob mean = io::read_binaryproto(dir / "mean.binaryproto");
  CHECK(mean.shape() == std::vector<int>{1, 1, 2, 2});
  CHECK(mean.cpu_data()[0] == 2.f);
  CHECK(mean.cpu_data()[1] == 10.f);
  CHECK(mean.cpu_data()[2] == 7.f);
  CHECK(mean.cpu_data()[3] == doctest::Approx(256.0 / 3));
  // num 1, channels 1, height 2, width 2, then 16 bytes of packed floats.
  CHECK(test::read_file(dir / "mean.binaryproto").substr(0, 10) == "\x08\x01\x10\x01\x18\x02\x20\x02\x2a\x10");
  CHECK(r.output.find("mean_value channel [0]: " + std::to_string(0.25 * (2 + 10 + 7 + 256.0 / 3)).substr(0, 6)) !=
        std::string::npos);
  // A data.mdb copied out on its own is read the same (it was taken for an IDX file).
  std::filesystem::copy_file(dir / "db/data.mdb", dir / "single.mdb");
  const auto single = run_crema("compute-mean " + (dir / "single.mdb") + " -o " + (dir / "single.binaryproto"));
  REQUIRE_MESSAGE(single.status == 0, single.output);
  CHECK(test::read_file(dir / "single.binaryproto") == test::read_file(dir / "mean.binaryproto"));
}

TEST_CASE("compute-mean stopped by a signal writes no mean file") {
  test::TempDir dir;
  {
    std::vector<uchar> png;
    REQUIRE(cv::imencode(".png", pattern(16, 16, 1), png));
    io::Datum d;
    d.encoded = true, d.label = 1, d.data.assign(png.begin(), png.end());
    const std::string record = io::encode_datum(d);
    io::LmdbWriter db(dir / "db");
    for (int i = 0; i < 150000; ++i) db.put(std::to_string(1000000 + i), record);  // decoded one by one: seconds
    db.commit();
  }
  test::Child child(
      {test::crema_binary(), "compute-mean", dir / "db", "-o", dir / "mean.binaryproto", "--threads", "1"},
      dir / "mean.log");
  REQUIRE(child.pid() > 0);
  REQUIRE_MESSAGE(child.wait_for_log("Processed 10000 files.", 60), child.log());
  child.signal(SIGTERM);
  CHECK(child.wait_at_most(30) == 1);
  const std::string log = test::read_file(dir / "mean.log");
  CHECK_MESSAGE(log.find("SIGTERM received: stopping") != std::string::npos, log);
  CHECK_MESSAGE(
      log.find(" of 150000 records; nothing was written to '" + (dir / "mean.binaryproto") + "'") != std::string::npos,
      log);
  CHECK_FALSE(std::filesystem::exists(dir / "mean.binaryproto"));
}

TEST_CASE("compute-mean reads an IDX images file, as the Data layer does") {
  test::TempDir dir;
  io::IdxArray images;
  images.dims = {2, 1, 3};
  images.data = {0, 10, 255, 4, 20, 0};
  io::write_idx(dir / "x-images-idx3-ubyte", images);
  const auto r = run_crema("compute-mean " + (dir / "x-images-idx3-ubyte") + " -o " + (dir / "mean.binaryproto"));
  REQUIRE_MESSAGE(r.status == 0, r.output);
  const Blob mean = io::read_binaryproto(dir / "mean.binaryproto");
  CHECK(mean.shape() == std::vector<int>{1, 1, 1, 3});
  CHECK(mean.cpu_data()[0] == 2.f);
  CHECK(mean.cpu_data()[1] == 15.f);
  CHECK(mean.cpu_data()[2] == 127.5f);

  const auto missing = run_crema("compute-mean " + (dir / "nope") + " -o " + (dir / "m2.binaryproto"));
  CHECK(missing.status == 2);
  CHECK(missing.output.find("'" + (dir / "nope") + "' does not exist; give an LMDB directory or an IDX images file") !=
        std::string::npos);
  CHECK_FALSE(std::filesystem::exists(dir / "m2.binaryproto"));
  // What other layers read is named, with what to do: an image list, a folder of images, an HDF5 file.
  test::write_file(dir / "list.txt", "a.png 0\n");
  std::filesystem::create_directories(dir / "images/cat");
  test::write_file(dir / "x.h5", std::string("\x89HDF\r\n\x1a\n", 8) + std::string(64, '\0'));
  for (const auto& [input, says] : {std::pair<std::string, std::string>{"list.txt",
                                                                        "' is a text file (an image list?): "
                                                                        "compute-mean reads an LMDB database "
                                                                        "or an IDX images file. Convert the "
                                                                        "images first (crema convert-imageset"},
                                    {"images", "' is a folder but no LMDB database: compute-mean reads"},
                                    {"x.h5",
                                     "' is an HDF5 file: compute-mean reads an LMDB database or an IDX images "
                                     "file (HDF5 data is read as it is stored: compute its mean with h5py, "
                                     "say)"}}) {
    const auto other = run_crema("compute-mean " + (dir / input) + " -o " + (dir / "m2.binaryproto"));
    CHECK(other.status == 2);
    CHECK_MESSAGE(other.output.find("crema compute-mean: '" + (dir / input) + says) != std::string::npos, other.output);
  }
  CHECK_FALSE(std::filesystem::exists(dir / "m2.binaryproto"));

  // An earlier mean is replaced; any other file (the input itself, weights, a config) is not.
  const auto again = run_crema("compute-mean " + (dir / "x-images-idx3-ubyte") + " -o " + (dir / "mean.binaryproto"));
  CHECK_MESSAGE(again.status == 0, again.output);
  test::write_file(dir / "net.yaml", "name: precious\n");
  for (const std::string& taken : {dir / "x-images-idx3-ubyte", dir / "net.yaml"}) {
    const std::string before = test::read_file(taken);
    const auto r2 = run_crema("compute-mean " + (dir / "x-images-idx3-ubyte") + " -o " + taken);
    CHECK(r2.status == 2);
    CHECK_MESSAGE(r2.output.find("'" + taken +
                                 "' exists and is no mean image (.binaryproto): compute-mean would replace it; remove "
                                 "it first, or give the output another name") != std::string::npos,
                  r2.output);
    CHECK(test::read_file(taken) == before);
  }
  // An empty file (a placeholder) is taken; a folder is said to be one.
  test::write_file(dir / "empty.binaryproto", "");
  const auto empty = run_crema("compute-mean " + (dir / "x-images-idx3-ubyte") + " -o " + (dir / "empty.binaryproto"));
  CHECK_MESSAGE(empty.status == 0, empty.output);
  CHECK(io::read_binaryproto(dir / "empty.binaryproto").count() == 3);
  std::filesystem::create_directory(dir / "means");
  const auto folder = run_crema("compute-mean " + (dir / "x-images-idx3-ubyte") + " -o " + (dir / "means"));
  CHECK(folder.status == 2);
  CHECK_MESSAGE(folder.output.find("'" + (dir / "means") + "' is a folder; give the mean image file to write in it") !=
                    std::string::npos,
                folder.output);
}

TEST_CASE("compute-mean refuses images of different sizes, naming the record") {
  ImageFolder f;
  test::write_file(f.dir / "list.txt", "a.png 3\nsub/b.jpg 1\n");
  REQUIRE(run_crema("convert-imageset " + f.root + " " + (f.dir / "list.txt") + " " + (f.dir / "db")).status == 0);
  const auto r = run_crema("compute-mean " + (f.dir / "db") + " -o " + (f.dir / "mean.binaryproto"));
  CHECK(r.status == 1);
  CHECK(r.output.find("record '00000001_sub/b.jpg' is 3x6x3 but the first record is 3x4x5") != std::string::npos);
}

namespace {

// The toy IDX split as PNG files under <dir>/<split>/ and a list <dir>/<split>.txt in IDX order.
void write_pngs(const std::string& dir, const std::string& split) {
  const io::IdxArray images = io::read_idx(dir + "/" + split + "-images-idx3-ubyte");
  const io::IdxArray labels = io::read_idx(dir + "/" + split + "-labels-idx1-ubyte");
  std::filesystem::create_directories(dir + "/" + split);
  std::string list;
  for (int i = 0; i < images.dims[0]; ++i) {
    const cv::Mat img(10, 10, CV_8UC1, const_cast<uint8_t*>(images.data.data()) + 100 * i);
    const std::string name = split + "/" + std::to_string(i) + ".png";
    REQUIRE(cv::imwrite(dir + "/" + name, img));
    list += name + " " + std::to_string(labels.data[static_cast<size_t>(i)]) + "\n";
  }
  test::write_file(dir + "/" + split + ".txt", list);
}

// "Iteration N ..., loss = X" lines, as printed.
std::vector<std::string> losses(const std::string& log) {
  std::vector<std::string> out;
  static const std::regex re(R"(Iteration \d+[^\n]*, loss = ([-0-9.eE+naif]+))");
  for (auto it = std::sregex_iterator(log.begin(), log.end(), re); it != std::sregex_iterator(); ++it)
    out.push_back((*it)[1]);
  return out;
}

}  // namespace

TEST_CASE("training from convert-imageset's LMDBs equals training from the IDX files, bit for bit") {
  test::TempDir dir;
  const std::string d = dir.path().string();
  test::write_toy_idx(d, "train", 200, 1);
  test::write_toy_idx(d, "test", 100, 2);
  std::string sets;
  for (const char* split : {"train", "test"}) {
    write_pngs(d, split);
    const auto r = run_crema("convert-imageset " + d + " " + d + "/" + split + ".txt " + d + "/" + split + "_lmdb --gray");
    REQUIRE_MESSAGE(r.status == 0, r.output);
    const std::string layer = std::string(" --set net.layer[") + (split == std::string("train") ? "0" : "1") + "].data_param.";
    sets += layer + "backend=LMDB" + layer + "source=" + d + "/" + split + "_lmdb";
  }
  test::write_file(dir / "solver.yaml", test::toy_solver_yaml(d, 30));
  const auto idx = run_crema("train " + (dir / "solver.yaml") + " --set snapshot_prefix=" + (dir / "idx/toy"));
  REQUIRE_MESSAGE(idx.status == 0, idx.output);
  const auto lmdb = run_crema("train " + (dir / "solver.yaml") + " --set snapshot_prefix=" + (dir / "lmdb/toy") + sets);
  REQUIRE_MESSAGE(lmdb.status == 0, lmdb.output);
  CHECK(lmdb.output.find("200 samples of 1x10x10 from " + d + "/train_lmdb") != std::string::npos);
  // Same images, labels and order (the list kept the IDX order), same seeded shuffle.
  const auto a = losses(idx.output), b = losses(lmdb.output);
  CHECK(a.size() >= 6);
  CHECK(a == b);

  // And with the mean image compute-mean makes of the training set.
  const auto mean = run_crema("compute-mean " + d + "/train_lmdb -o " + d + "/mean.binaryproto");
  REQUIRE_MESSAGE(mean.status == 0, mean.output);
  const auto centred = run_crema("train " + (dir / "solver.yaml") + " --set snapshot_prefix=" + (dir / "mean/toy") +
                                 sets + " --set net.layer[0].transform_param.mean_file=" + d + "/mean.binaryproto" +
                                 " --set net.layer[1].transform_param.mean_file=" + d + "/mean.binaryproto");
  REQUIRE_MESSAGE(centred.status == 0, centred.output);
  CHECK(losses(centred.output) != a);
}

TEST_CASE("an LMDB cut short while training reads it ends in a line saying so, not a bus error") {
  test::TempDir dir;
  const std::string d = dir.path().string();
  test::write_toy_idx(d, "train", 200, 1);
  write_pngs(d, "train");
  const auto r = run_crema("convert-imageset " + d + " " + d + "/train.txt " + d + "/train_lmdb --gray");
  REQUIRE_MESSAGE(r.status == 0, r.output);
  test::write_toy_idx(d, "test", 100, 2);
  test::write_file(dir / "solver.yaml", test::toy_solver_yaml(d, 1000000));
  test::Child child(
      {test::crema_binary(), "train", dir / "solver.yaml", "--set", "display=1", "--set", "test_interval=0", "--set",
       "net.layer[0].data_param.backend=LMDB", "--set", "net.layer[0].data_param.source=" + d + "/train_lmdb"},
      dir / "train.log");
  REQUIRE(child.pid() > 0);
  REQUIRE_MESSAGE(child.wait_for_log("Iteration 20,", 60), child.log());
  // Someone re-creates or rsyncs the database in place: the pages crema maps are gone.
  std::filesystem::resize_file(d + "/train_lmdb/data.mdb", 4096);
  CHECK(child.wait() == 1);
  CHECK_MESSAGE(child.log().find("crema: SIGBUS: a memory-mapped file (an LMDB database being read) was cut short") !=
                    std::string::npos,
                child.log());
}

TEST_CASE("convert-cifar writes CIFAR-10's binary batches as Caffe's convert_cifar_data does") {
  test::TempDir dir;
  const std::string in = dir / "cifar-10-batches-bin", out = dir / "out";
  std::filesystem::create_directories(in);
  // Three images per training batch, two in the test batch (the real ones hold 10,000 each).
  const auto image = [](int file, int i) {
    std::string pixels(3072, '\0');  // (3, 32, 32): R, G, B planes
    for (size_t k = 0; k < pixels.size(); ++k) pixels[k] = static_cast<char>((k * 7 + file * 31 + i * 13) % 251);
    return pixels;
  };
  const auto label = [](int file, int i) { return (file * 3 + i) % 10; };
  const auto batch = [&](int file, int count) {
    std::string bytes;
    for (int i = 0; i < count; ++i) bytes += static_cast<char>(label(file, i)) + image(file, i);
    return bytes;
  };
  for (int k = 1; k <= 5; ++k) test::write_file(in + "/data_batch_" + std::to_string(k) + ".bin", batch(k, 3));
  test::write_file(in + "/test_batch.bin", batch(0, 2));

  const auto r = run_crema("convert-cifar " + in + " " + out + " lmdb");  // Caffe's third argument too
  REQUIRE_MESSAGE(r.status == 0, r.output);
  CHECK(r.output.find("Wrote 15 training images to " + out + "/cifar10_train_lmdb and 2 test images to " + out +
                      "/cifar10_test_lmdb") != std::string::npos);
  const auto train = read_db(out + "/cifar10_train_lmdb"), test = read_db(out + "/cifar10_test_lmdb");
  // Caffe's keys: batch * 10,000 + position for training, the position for testing.
  CHECK(keys_of(train) == std::vector<std::string>{"00000", "00001", "00002", "10000", "10001", "10002", "20000",
                                                   "20001", "20002", "30000", "30001", "30002", "40000", "40001",
                                                   "40002"});
  CHECK(keys_of(test) == std::vector<std::string>{"00000", "00001"});
  for (const Record& rec : train) {
    const int file = std::stoi(rec.key) / 10000 + 1, i = std::stoi(rec.key) % 10000;
    INFO(rec.key);
    CHECK(rec.datum.channels == 3);
    CHECK(rec.datum.height == 32);
    CHECK(rec.datum.width == 32);
    CHECK_FALSE(rec.datum.encoded);
    CHECK(rec.datum.label == label(file, i));
    CHECK(rec.datum.data == image(file, i));  // the planes as the file stores them
  }
  CHECK(test[1].datum.label == label(0, 1));
  CHECK(test[1].datum.data == image(0, 1));
  // The Data layer's reader takes them: compute-mean's per-channel means are the pixels'.
  const auto mean = run_crema("compute-mean " + out + "/cifar10_test_lmdb -o " + (dir / "mean.binaryproto"));
  REQUIRE_MESSAGE(mean.status == 0, mean.output);
  double red = 0;
  for (int i = 0; i < 2; ++i)
    for (int k = 0; k < 1024; ++k) red += static_cast<unsigned char>(image(0, i)[static_cast<size_t>(k)]);
  std::smatch m;
  REQUIRE(std::regex_search(mean.output, m, std::regex(R"(mean_value channel \[0\]: ([0-9.]+))")));
  CHECK(std::stod(m[1]) == doctest::Approx(red / 2048).epsilon(1e-5));

  // Mistakes, each refused before anything is written.
  const auto again = run_crema("convert-cifar " + in + " " + out);
  CHECK(again.status == 2);
  CHECK(again.output.find("'" + out + "/cifar10_train_lmdb' already exists") != std::string::npos);
  std::filesystem::rename(in + "/test_batch.bin", dir / "test_batch.bin");
  const auto missing = run_crema("convert-cifar " + in + " " + (dir / "out2"));
  CHECK(missing.status == 2);
  CHECK(
      missing.output.find("'" + in + "/test_batch.bin' does not exist; give the folder of CIFAR-10's binary batches") !=
      std::string::npos);
  CHECK_FALSE(std::filesystem::exists(dir / "out2"));
  // CIFAR-100's records (coarse and fine label bytes), found by size before anything is written.
  test::write_file(in + "/test_batch.bin", std::string(3074 * 2, '\1'));
  const auto hundred = run_crema("convert-cifar " + in + " " + (dir / "out3"));
  CHECK(hundred.status == 2);
  CHECK(hundred.output.find("(they are of 3,074-byte ones, CIFAR-100's, which crema does not convert)") !=
        std::string::npos);
  CHECK_FALSE(std::filesystem::exists(dir / "out3"));
  // A label above 9 shows only once the test batch is read, after the training records: the
  // drafts and the folder this run made go again.
  test::write_file(in + "/test_batch.bin", batch(0, 1) + static_cast<char>(10) + image(0, 1));
  const auto ten = run_crema("convert-cifar " + in + " " + (dir / "out4"));
  CHECK(ten.status == 1);
  CHECK(ten.output.find("'" + in + "/test_batch.bin' record 1 (byte 3073) has label 10") != std::string::npos);
  CHECK_FALSE(std::filesystem::exists(dir / "out4"));
  const auto leveldb = run_crema("convert-cifar " + in + " " + (dir / "out5") + " leveldb");
  CHECK(leveldb.status == 2);
  CHECK(leveldb.output.find("db_type: 'leveldb': crema reads and writes LMDB only") != std::string::npos);
}
