// Caffe's LMDB data sets: the protobuf writer, Datum and mean-image encodings (bytes
// checked by hand against the wire format), the LMDB reader and writer, and the
// Data layer's LMDB backend with every transform_param field, values by hand.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <opencv2/core.hpp>
#ifdef CREMA_WITH_IMAGE_CODECS
#include <opencv2/imgcodecs.hpp>
#endif
#include <set>

#include "io/caffe_binary.hpp"
#include "io/datum.hpp"
#include "io/idx.hpp"
#include "io/lmdb.hpp"
#include "io/protobuf_wire.hpp"
#include "layer_test_util.hpp"
#include "test_util.hpp"

using namespace crema;

namespace {

std::string bytes_of(std::initializer_list<int> values) {
  std::string s;
  for (int v : values) s.push_back(static_cast<char>(v));
  return s;
}

io::Datum raw_datum(int c, int h, int w, const std::vector<int>& pixels, int label) {
  io::Datum d;
  d.channels = c, d.height = h, d.width = w, d.label = label;
  REQUIRE(static_cast<int>(pixels.size()) == c * h * w);
  for (int p : pixels) d.data.push_back(static_cast<char>(p));
  return d;
}

#ifdef CREMA_WITH_IMAGE_CODECS  // a build without image codecs has no encoded records
io::Datum encoded_datum(const cv::Mat& image, int label) {
  std::vector<unsigned char> buf;
  REQUIRE(cv::imencode(".png", image, buf));
  io::Datum d;
  d.data.assign(buf.begin(), buf.end());
  d.encoded = true;
  d.label = label;
  return d;
}
#endif

void write_db(const std::string& path, const std::vector<std::pair<std::string, io::Datum>>& records) {
  io::LmdbWriter db(path);
  for (const auto& [key, datum] : records) db.put(key, io::encode_datum(datum));
  db.commit();
}

std::string key_of(int i) {
  char key[16];
  std::snprintf(key, sizeof key, "%08d", i);
  return key;
}

using test::DataUnderTest;

std::string data_yaml(const std::string& source, int batch, const std::string& transform = "{}",
                      const std::string& extra = "") {
  return "{type: Data, top: [data, label], transform_param: " + transform + ", data_param: {source: " + source +
         ", backend: LMDB, batch_size: " + std::to_string(batch) + extra + "}}";
}

std::string setup_error(const std::string& yaml, Phase phase = Phase::TEST) {
  return test::error_of([&] { DataUnderTest d(yaml, phase, 1); });
}

// Runs both readers for `batches` batches: they must give the same data and labels.
void check_same_batches(DataUnderTest& a, DataUnderTest& b, int batches) {
  for (int i = 0; i < batches; ++i) {
    a.forward();
    b.forward();
    CHECK(b.values() == a.values());
    CHECK(b.labels() == a.labels());
  }
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

}  // namespace

TEST_CASE("protobuf writer: varints, negative int32, floats, bytes and packed runs by hand") {
  io::pb::Writer w;
  w.varint(1, 300);                  // 08 ac 02
  w.int32(2, -1);                    // 10 + ten bytes: sign-extended to 64 bits
  w.fixed32_float(3, 1.f);           // 1d 00 00 80 3f
  w.bytes(4, "hi");                  // 22 02 68 69
  const float f[] = {1.f, -2.f};
  w.packed_floats(5, f, 2);          // 2a 08 (1.0) (-2.0)
  w.packed_varints(6, {300, 1});     // 32 03 ac 02 01
  w.packed_floats(7, f, 0);          // nothing, as protobuf
  CHECK(w.str() == bytes_of({0x08, 0xac, 0x02, 0x10, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01,
                             0x1d, 0x00, 0x00, 0x80, 0x3f, 0x22, 0x02, 0x68, 0x69, 0x2a, 0x08, 0x00, 0x00, 0x80, 0x3f,
                             0x00, 0x00, 0x00, 0xc0, 0x32, 0x03, 0xac, 0x02, 0x01}));
  // And the reader reads it back.
  io::pb::Reader r("<test>", w.str(), "test");
  REQUIRE(r.next());
  CHECK(r.read_varint() == 300);
  REQUIRE(r.next());
  CHECK(r.read_int32() == -1);
  REQUIRE(r.next());
  CHECK(r.read_float() == 1.f);
  REQUIRE(r.next());
  CHECK(r.read_string() == "hi");
  REQUIRE(r.next());
  std::vector<float> floats;
  r.read_floats(floats);
  CHECK(floats == std::vector<float>{1.f, -2.f});
  REQUIRE(r.next());
  std::vector<int64_t> ints;
  r.read_int64s(ints);
  CHECK(ints == std::vector<int64_t>{300, 1});
  CHECK_FALSE(r.next());
}

TEST_CASE("Datum encoding gives protobuf's bytes for raw, encoded and float records") {
  // Raw, as convert_imageset writes it: channels, height, width, data, label, encoded.
  const io::Datum raw = raw_datum(1, 1, 2, {7, 255}, 3);
  CHECK(io::encode_datum(raw) ==
        bytes_of({0x08, 0x01, 0x10, 0x01, 0x18, 0x02, 0x22, 0x02, 0x07, 0xff, 0x28, 0x03, 0x38, 0x00}));
  // Encoded: the file's bytes, the label (negative: ten varint bytes) and encoded.
  io::Datum enc;
  enc.data = "ab", enc.label = -1, enc.encoded = true;
  CHECK(io::encode_datum(enc) == bytes_of({0x22, 0x02, 0x61, 0x62, 0x28, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                                           0xff, 0xff, 0x01, 0x38, 0x01}));
  // float_data is not [packed] in caffe.proto: one tag per value.
  io::Datum fl;
  fl.channels = 1, fl.height = 1, fl.width = 1, fl.float_data = {1.f};
  CHECK(io::encode_datum(fl) ==
        bytes_of({0x08, 0x01, 0x10, 0x01, 0x18, 0x01, 0x28, 0x00, 0x35, 0x00, 0x00, 0x80, 0x3f, 0x38, 0x00}));

  io::Datum back;
  io::decode_datum(io::encode_datum(raw), "<raw>", back);
  CHECK(back.channels == 1);
  CHECK(back.height == 1);
  CHECK(back.width == 2);
  CHECK(back.data == bytes_of({7, 255}));
  CHECK(back.label == 3);
  CHECK_FALSE(back.encoded);
  io::decode_datum(io::encode_datum(enc), "<enc>", back);  // resets every field first
  CHECK(back.channels == 0);
  CHECK(back.data == "ab");
  CHECK(back.label == -1);
  CHECK(back.encoded);
  // A packed float_data run and an unknown field (99, varint) are read too.
  io::decode_datum(bytes_of({0x08, 0x01, 0x10, 0x01, 0x18, 0x02, 0x32, 0x08, 0x00, 0x00, 0x80, 0x3f, 0x00, 0x00,
                             0x00, 0xc0, 0x98, 0x06, 0x05}),
                   "<packed>", back);
  CHECK(back.float_data == std::vector<float>{1.f, -2.f});
  // A cut-short record names where it came from.
  const std::string cut = io::encode_datum(raw).substr(0, 8);
  CHECK_THROWS_WITH_AS(io::decode_datum(cut, "db (key 'k')", back),
                       doctest::Contains("db (key 'k'): corrupt or truncated protobuf"), Error);
}

TEST_CASE("a mean image is written as Caffe's legacy 4-D BlobProto and read back") {
  test::TempDir dir;
  const std::string bytes = io::encode_mean_blob(1, 1, 2, {0.5f, 2.f});
  CHECK(bytes == bytes_of({0x08, 0x01, 0x10, 0x01, 0x18, 0x01, 0x20, 0x02, 0x2a, 0x08, 0x00, 0x00, 0x00, 0x3f, 0x00,
                           0x00, 0x00, 0x40}));
  std::ofstream(dir / "m.binaryproto", std::ios::binary) << bytes;
  const Blob m = io::read_binaryproto(dir / "m.binaryproto");
  CHECK(m.shape() == std::vector<int>{1, 1, 1, 2});
  CHECK(m.cpu_data()[0] == 0.5f);
  CHECK(m.cpu_data()[1] == 2.f);
}

TEST_CASE("LMDB reader counts, lists keys in byte order and finds records by key") {
  test::TempDir dir;
  const std::string path = dir / "db";
  {
    io::LmdbWriter db(path, 2);
    for (const char* k : {"b", "a", "ab", "B", "a"}) db.put(k, std::string("value of ") + k);  // "a" twice: replaced
    db.commit();
  }
  io::LmdbReader db(path);
  CHECK(db.count() == 4);
  CHECK(db.keys() == std::vector<std::string>{"B", "a", "ab", "b"});
  CHECK(db.get("ab") == "value of ab");
  io::LmdbReader::Cursor c(db);
  REQUIRE(c.next());
  CHECK(c.key() == "B");
  CHECK(c.value() == "value of B");
  CHECK(contains(test::error_of([&] { db.get("zz"); }), "'" + path + "' has no record with key 'zz'"));
}

TEST_CASE("LMDB writer doubles a full map and keeps every record") {
  test::TempDir dir;
  const std::string path = dir / "db";
  const size_t initial = 64 * 1024;
  size_t grown = 0;
  {
    io::LmdbWriter db(path, 50, initial);
    for (int i = 0; i < 300; ++i) db.put(key_of(i), std::string(4000, static_cast<char>('a' + i % 26)));
    db.commit();
    grown = db.map_size();
  }
  CHECK(grown >= 300 * 4000);  // room for the data, reached by doubling
  CHECK(grown > initial);
  io::LmdbReader db(path);
  REQUIRE(db.count() == 300);
  for (int i = 0; i < 300; i += 37) CHECK(db.get(key_of(i)) == std::string(4000, static_cast<char>('a' + i % 26)));
}

TEST_CASE("an LMDB that a memory limit leaves no room to map says so, naming the limit") {
  // LMDB maps the whole database (its map size) into the address space: under `ulimit -v` a
  // large one fails with a bare "Cannot allocate memory".
  test::TempDir dir;
  rlimit saved{};
  REQUIRE(getrlimit(RLIMIT_AS, &saved) == 0);
  std::ifstream status("/proc/self/status");
  std::string line;
  size_t mapped = 0;
  while (std::getline(status, line))
    if (line.rfind("VmSize:", 0) == 0) mapped = std::stoul(line.substr(7)) * 1024;
  REQUIRE(mapped > 0);
  rlimit tight = saved;
  tight.rlim_cur = mapped + (size_t{256} << 20);
  REQUIRE(setrlimit(RLIMIT_AS, &tight) == 0);
  std::string error;
  try {
    io::LmdbWriter db(dir / "db", 1, size_t{4} << 30);
  } catch (const Error& e) {
    error = e.what();
  } catch (...) {
  }
  REQUIRE(setrlimit(RLIMIT_AS, &saved) == 0);
  CHECK_MESSAGE(
      error.find("cannot create the database: Cannot allocate memory (LMDB maps the whole database into "
                 "memory). A virtual-memory limit (ulimit -v; SGE's h_vmem sets one) of ") != std::string::npos,
      error);
}

TEST_CASE("LMDB drafts appear under their names all together, or not at all") {
  namespace fs = std::filesystem;
  test::TempDir dir;
  const auto names = [&] {
    std::set<std::string> out;
    for (const auto& e : fs::directory_iterator(dir.path())) out.insert(e.path().filename().string());
    return out;
  };
  {
    io::LmdbDrafts dbs({dir / "a", dir / "b"});
    dbs[0].put("k", "in a");
    dbs[1].put("k", "in b");
    CHECK(!fs::exists(dir / "a"));  // not under its name until published
    dbs.publish();
  }
  CHECK(io::LmdbReader(dir / "a").get("k") == "in a");
  CHECK(io::LmdbReader(dir / "b").get("k") == "in b");
  {
    io::LmdbDrafts dbs({dir / "c"});
    dbs[0].put("k", "v");
  }  // dropped unpublished (an error, a signal): nothing is left
  CHECK(names() == std::set<std::string>{"a", "b"});
  {
    // The second move fails (its final name is a non-empty folder): the first is taken back.
    fs::create_directory(dir / "e");
    test::write_file(dir / "e/keep", "the user's");
    io::LmdbDrafts dbs({dir / "d", dir / "e"});
    dbs[0].put("k", "v");
    dbs[1].put("k", "v");
    const std::string err = test::error_of([&] { dbs.publish(); });
    CHECK(contains(err, "cannot move the finished LMDB '" + (dir / "e") + ".partial-"));
    CHECK(contains(err, "' to '" + (dir / "e") + "'"));
  }
  CHECK(names() == std::set<std::string>{"a", "b", "e"});
  CHECK(test::read_file(dir / "e/keep") == "the user's");
  {
    io::LmdbDrafts dbs({dir / "t//"});  // a folder named with a trailing slash
    dbs[0].put("k", "v");
    dbs.publish();
  }
  CHECK(io::LmdbReader(dir / "t").get("k") == "v");
  std::filesystem::remove_all(dir / "t");
  // A draft that cannot be made (its folder is a file) takes the ones made before it back.
  test::write_file(dir / "file", "");
  CHECK(contains(test::error_of([&] { io::LmdbDrafts dbs({dir / "f", dir / "file/g"}); }), "file/g.partial-"));
  CHECK(names() == std::set<std::string>{"a", "b", "e", "file"});

  // A draft another writer left (killed outright: SIGKILL) is said, and left where it is: on a
  // shared file system its writer may be running on another host.
  fs::create_directory(dir / "h.partial-77");
  test::write_file(dir / "h.partial-77/data.mdb", std::string(3 << 19, 'x'));
  fs::create_directory(dir / "h.partial-x");  // not a draft's name
  {
    test::CaptureLog log;
    io::LmdbDrafts dbs({dir / "h"});
    dbs[0].put("k", "v");
    dbs.publish();
    CHECK_MESSAGE(contains(log.text(), "'" + (dir / "h.partial-77") +
                                           "' (1.5 MiB) is the unfinished database of "
                                           "another writer of '" +
                                           (dir / "h") +
                                           "' (pid 77), most likely one killed before it could remove it; remove it "
                                           "unless that writer is still running"),
                  log.text());
    CHECK_FALSE(contains(log.text(), "partial-x"));
  }
  CHECK(fs::exists(dir / "h.partial-77/data.mdb"));
}

TEST_CASE("LMDB errors name the path and say what to do") {
  test::TempDir dir;
  CHECK(contains(test::error_of([&] { io::LmdbReader db(dir / "nope"); }), "'" + (dir / "nope") + "' does not exist"));
  std::filesystem::create_directory(dir / "empty");
  CHECK(contains(test::error_of([&] { io::LmdbReader db(dir / "empty"); }), "holds no data.mdb"));
  std::filesystem::create_directory(dir / "leveldb");
  test::write_file(dir / "leveldb/CURRENT", "MANIFEST-000001\n");
  CHECK(contains(test::error_of([&] { io::LmdbReader db(dir / "leveldb"); }), "LevelDB"));
  test::write_file(dir / "junk", "not a database at all, just some text that is long enough");
  CHECK(contains(test::error_of([&] { io::LmdbReader db(dir / "junk"); }), "LMDB '" + (dir / "junk") + "'"));
  CHECK(contains(test::error_of([&] { io::LmdbWriter db(dir / "empty"); }), "already exists"));
}

TEST_CASE("LMDB with a zeroed page (a copy cut short) gives an error naming it, not LMDB's abort") {
  test::TempDir dir;
  const std::string path = dir / "db";
  {
    io::LmdbWriter db(path);
    for (int i = 0; i < 200; ++i) db.put(std::to_string(1000 + i), std::string(900, static_cast<char>('a' + i % 26)));
    db.commit();
  }
  {  // page 3 (4 KiB pages): a leaf among the records, zeroed
    std::fstream f(path + "/data.mdb", std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(3 * 4096);
    const std::string zeros(4096, '\0');
    f.write(zeros.data(), static_cast<std::streamsize>(zeros.size()));
  }
  const std::string err = test::error_of([&] {
    io::LmdbReader db(path);
    io::LmdbReader::Cursor c(db);
    while (c.next()) {
    }
  });
  CHECK_MESSAGE(contains(err, "LMDB '" + path), err);
  CHECK_MESSAGE(contains(err, "the database is damaged: create it again"), err);
}

TEST_CASE("Data layer LMDB: values, labels and key order") {
  test::TempDir dir;
  // Written out of key order: the layer must read them sorted by key.
  write_db(dir / "db", {{"c", raw_datum(1, 2, 3, {20, 21, 22, 23, 24, 25}, 2)},
                        {"a", raw_datum(1, 2, 3, {0, 1, 2, 3, 4, 5}, 7)},
                        {"b", raw_datum(1, 2, 3, {10, 11, 12, 13, 14, 15}, 1)}});
  DataUnderTest d(data_yaml(dir / "db", 4, "{scale: 0.5}"), Phase::TEST, 1);  // TEST: no shuffle
  CHECK(d.data.shape() == std::vector<int>{4, 1, 2, 3});
  CHECK(d.label.shape() == std::vector<int>{4});
  d.forward();
  // a, b, c, then a again (a new epoch).
  test::check_values(d.data, {0, .5, 1, 1.5, 2, 2.5, 5, 5.5, 6, 6.5, 7, 7.5, 10, 10.5, 11, 11.5, 12, 12.5, 0, .5, 1,
                              1.5, 2, 2.5});
  CHECK(d.labels() == std::vector<float>{7, 1, 2, 7});
}

TEST_CASE("Data layer LMDB: a label out of range met by a classifier names the record it came from") {
  // Through a split (two readers of the labels) and an Accuracy layer, on the record's key.
  test::TempDir dir;
  write_db(dir / "db", {{"a", raw_datum(1, 1, 2, {0, 1}, 0)},
                        {"b", raw_datum(1, 1, 2, {2, 3}, 1)},
                        {"c", raw_datum(1, 1, 2, {4, 5}, 7)}});
  test::TestNet t(
      "name: n\nlayer:\n"
      "  - {name: d, type: Data, top: [data, label], data_param: {source: '" +
          dir / "db" +
          "', batch_size: 3}}\n"
          "  - {name: ip, type: InnerProduct, bottom: data, top: ip, "
          "inner_product_param: {num_output: 3}}\n"
          "  - {name: acc, type: Accuracy, bottom: [ip, label], top: acc}\n"
          "  - {name: loss, type: SoftmaxWithLoss, bottom: [ip, label], top: loss}\n",
      1);
  const std::string want =
      "Accuracy layer 'acc': label 7 is out of range; labels must be class indices in [0, 3) "
      "(set ignore_label to skip a label value); it is the label of LMDB '" +
      dir / "db" + "' record 'c'";
  CHECK_THROWS_WITH_AS(t.net.forward(t.ctx), want.c_str(), BadLabel);
}

TEST_CASE("Data layer LMDB: float_data records with mean_value and scale") {
  test::TempDir dir;
  io::Datum f;
  f.channels = 2, f.height = 1, f.width = 2, f.label = 4, f.float_data = {1.5f, -2.f, 10.f, 0.25f};
  write_db(dir / "db", {{"x", f}});
  DataUnderTest d(data_yaml(dir / "db", 1, "{mean_value: [1, 2], scale: 2}"), Phase::TEST, 1);
  d.forward();
  // (v - mean[c]) * 2
  test::check_values(d.data, {1, -6, 16, -3.5});
  CHECK(d.labels() == std::vector<float>{4});
}

TEST_CASE("Data layer LMDB: a float_data record holding NaN or infinity is a bad sample naming its key") {
  test::TempDir dir;
  io::Datum good, bad;
  good.channels = bad.channels = 1, good.height = bad.height = 1, good.width = bad.width = 2;
  good.float_data = {1.f, 2.f}, good.label = 1;
  bad.float_data = {std::nanf(""), 2.f}, bad.label = 2;
  write_db(dir / "db", {{"a", good}, {"b", bad}});
  DataUnderTest strict(data_yaml(dir / "db", 2, "{}", ", on_bad_sample: fail"), Phase::TEST, 1);
  CHECK_THROWS_WITH_AS(strict.forward(),
                       doctest::Contains("record 'b': the Datum's float_data holds 1 NaN or infinite value(s) of 2"),
                       Error);
  DataUnderTest skipping(data_yaml(dir / "db", 2), Phase::TEST, 1);  // skipped by default
  skipping.forward();
  test::check_values(skipping.data, {1, 2, 1, 2});
  CHECK(skipping.labels() == std::vector<float>{1, 1});
  CHECK(skipping.t.layer->data_stats().bad_samples == 1);
}

TEST_CASE("Data layer LMDB: centre crop with a mean image, by hand") {
  test::TempDir dir;
  // One 1x3x4 image and a 1x3x4 mean; crop 2 in TEST takes rows 0-1, columns 1-2
  // (offsets (3-2)/2 = 0 and (4-2)/2 = 1) of both.
  write_db(dir / "db", {{"a", raw_datum(1, 3, 4, {10, 20, 30, 40, 50, 60, 70, 80, 90, 100, 110, 120}, 0)}});
  const std::vector<float> mean = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
  std::ofstream(dir / "mean.binaryproto", std::ios::binary) << io::encode_mean_blob(1, 3, 4, mean);
  DataUnderTest d(data_yaml(dir / "db", 1, "{crop_size: 2, mean_file: " + (dir / "mean.binaryproto") + ", scale: 0.1}"),
                  Phase::TEST, 1);
  CHECK(d.data.shape() == std::vector<int>{1, 1, 2, 2});
  d.forward();
  // ((20-2), (30-3); (60-6), (70-7)) * 0.1
  test::check_values(d.data, {1.8f, 2.7f, 5.4f, 6.3f});
}

TEST_CASE("Data layer LMDB: mean_value per channel on a colour image, by hand") {
  test::TempDir dir;
  write_db(dir / "db", {{"a", raw_datum(3, 1, 2, {100, 110, 50, 60, 0, 255}, 0)}});
  DataUnderTest d(data_yaml(dir / "db", 1, "{mean_value: [10, 20, 30]}"), Phase::TEST, 1);
  d.forward();
  test::check_values(d.data, {90, 100, 30, 40, -30, 225});
}

TEST_CASE("Data layer LMDB: random crops and mirrors in TRAIN are among the hand-listed ones") {
  test::TempDir dir;
  // 1x2x3 image, crop 2: column offset 0 or 1, mirrored or not; mean image subtracted
  // at the source pixel (Caffe's rule), so the four outputs are:
  write_db(dir / "db", {{"a", raw_datum(1, 2, 3, {10, 20, 30, 40, 50, 60}, 0)}});
  std::ofstream(dir / "mean.binaryproto", std::ios::binary) << io::encode_mean_blob(1, 2, 3, {1, 2, 3, 4, 5, 6});
  const std::vector<std::vector<float>> candidates = {
      {9, 18, 36, 45},   // offset 0
      {18, 27, 45, 54},  // offset 1
      {18, 9, 45, 36},   // offset 0, mirrored
      {27, 18, 54, 45},  // offset 1, mirrored
  };
  DataUnderTest d(data_yaml(dir / "db", 1, "{crop_size: 2, mirror: true, mean_file: " + (dir / "mean.binaryproto") + "}"),
                  Phase::TRAIN, 11);
  std::set<size_t> seen;
  for (int i = 0; i < 40; ++i) {
    d.forward();
    const auto it = std::find(candidates.begin(), candidates.end(), d.values());
    REQUIRE_MESSAGE(it != candidates.end(), "unexpected crop");
    seen.insert(static_cast<size_t>(it - candidates.begin()));
  }
  CHECK(seen.size() == 4);
}

TEST_CASE("transform_param errors: mean_file with mean_value, both force flags, a mismatched mean image") {
  test::TempDir dir;
  write_db(dir / "db", {{"a", raw_datum(1, 2, 2, {1, 2, 3, 4}, 0)}});
  std::ofstream(dir / "mean3.binaryproto", std::ios::binary) << io::encode_mean_blob(1, 3, 3, std::vector<float>(9, 0.f));
  CHECK(contains(setup_error(data_yaml(dir / "db", 1, "{mean_file: m.binaryproto, mean_value: 3}")), "not both"));
  CHECK(contains(setup_error(data_yaml(dir / "db", 1, "{force_color: true, force_gray: true}")), "cannot both"));
  const std::string mismatch = setup_error(data_yaml(dir / "db", 1, "{mean_file: " + (dir / "mean3.binaryproto") + "}"));
  CHECK(contains(mismatch, "1x3x3 mean image but the data is 1x2x2"));
  CHECK(contains(mismatch, "crema compute-mean"));
  CHECK(contains(setup_error(data_yaml(dir / "db", 1, "{mean_file: " + (dir / "missing.binaryproto") + "}")), "missing.binaryproto"));
}

TEST_CASE("Data layer LMDB: data_param errors and the backend chosen from the source") {
  test::TempDir dir;
  write_db(dir / "db", {{"a", raw_datum(1, 1, 1, {9}, 5)}});
  CHECK(contains(setup_error("{type: Data, top: [d], data_param: {source: x, backend: LEVELDB, batch_size: 1}}"), "convert-imageset"));
  CHECK(contains(setup_error("{type: Data, top: [d, l], data_param: {source: x, backend: LMDB, label_source: y, batch_size: 1}}"), "LMDB records carry their labels"));
  CHECK(contains(setup_error(data_yaml(dir / "nope", 1)), "does not exist"));
  // Without `backend`, a directory is read as an LMDB.
  DataUnderTest d("{type: Data, top: [data, label], data_param: {source: " + (dir / "db") + ", batch_size: 1}}",
                  Phase::TEST, 1);
  d.forward();
  CHECK(d.values() == std::vector<float>{9});
  CHECK(d.labels() == std::vector<float>{5});
  // So is a data.mdb copied out on its own (it was taken for an IDX file, whose labels file
  // it then looked for); an IDX file is not.
  std::filesystem::copy_file(dir / "db/data.mdb", dir / "single.mdb");
  CHECK(io::is_lmdb(dir / "single.mdb"));
  DataUnderTest single(
      "{type: Data, top: [data, label], data_param: {source: " + (dir / "single.mdb") + ", batch_size: 1}}",
      Phase::TEST, 1);
  single.forward();
  CHECK(single.values() == std::vector<float>{9});
  CHECK(single.labels() == std::vector<float>{5});
  test::write_file(dir / "x-images-idx3-ubyte",
                   std::string("\x00\x00\x08\x03\x00\x00\x00\x00", 8) + std::string(16, '\0'));
  CHECK_FALSE(io::is_lmdb(dir / "x-images-idx3-ubyte"));
  // A pipe is not looked into: its bytes are the IDX reader's (a `<(zcat …)` source).
  REQUIRE(mkfifo((dir / "pipe").c_str(), 0600) == 0);
  const int fd = open((dir / "pipe").c_str(), O_RDWR);  // both ends: neither open blocks
  REQUIRE(fd >= 0);
  const std::string header = "0123456789abcdefghij";
  REQUIRE(write(fd, header.data(), header.size()) == static_cast<ssize_t>(header.size()));
  CHECK_FALSE(io::is_lmdb(dir / "pipe"));
  std::string back(header.size(), '\0');
  CHECK(read(fd, back.data(), back.size()) == static_cast<ssize_t>(header.size()));
  CHECK(back == header);
  close(fd);
}

TEST_CASE("Data layer LMDB: shuffled epochs are seeded, and save_state/restore_state resume exactly") {
  test::TempDir dir;
  std::vector<std::pair<std::string, io::Datum>> records;
  for (int i = 0; i < 10; ++i)
    records.emplace_back(key_of(i), raw_datum(1, 3, 3, {i, i + 10, i + 20, i + 30, i + 40, i + 50, i + 60, i + 70, i + 80}, i));
  write_db(dir / "db", records);
  const std::string yaml = data_yaml(dir / "db", 4, "{crop_size: 2, mirror: true}");  // TRAIN: shuffled by default

  DataUnderTest a(yaml, Phase::TRAIN, 5), b(yaml, Phase::TRAIN, 5);
  std::vector<float> labels;
  for (int i = 0; i < 3; ++i) {
    a.forward();
    b.forward();
    CHECK(a.values() == b.values());
    CHECK(a.labels() == b.labels());
    const std::vector<float> batch = a.labels();
    labels.insert(labels.end(), batch.begin(), batch.end());
  }
  // The first epoch visits every record once, in a shuffled order.
  std::vector<float> epoch(labels.begin(), labels.begin() + 10), sorted = epoch;
  std::sort(sorted.begin(), sorted.end());
  CHECK(sorted == std::vector<float>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9});
  CHECK(epoch != sorted);

  // Resume: a reader restored from a's state (whatever its own seed) continues with a's next batches.
  const std::string state = a.t.layer->save_state();
  DataUnderTest resumed(yaml, Phase::TRAIN, 999);
  resumed.t.layer->restore_state(state);
  check_same_batches(a, resumed, 3);  // crosses into the fourth epoch
}

TEST_CASE("IDX and LMDB backends give identical batches from the same samples and seed") {
  test::TempDir dir;
  test::write_toy_idx(dir.path().string(), "train", 30, 4);
  const io::IdxArray images = io::read_idx(dir / "train-images-idx3-ubyte");
  const io::IdxArray labels = io::read_idx(dir / "train-labels-idx1-ubyte");
  std::vector<std::pair<std::string, io::Datum>> records;
  for (int i = 0; i < 30; ++i) {
    io::Datum d;
    d.channels = 1, d.height = 10, d.width = 10, d.label = labels.data[static_cast<size_t>(i)];
    d.data.assign(reinterpret_cast<const char*>(images.data.data()) + 100 * i, 100);
    records.emplace_back(key_of(i) + "_img.png", d);
  }
  write_db(dir / "db", records);
  const std::string transform = "{crop_size: 8, mirror: true, mean_value: 30, scale: 0.01}";
  DataUnderTest idx("{type: Data, top: [data, label], transform_param: " + transform + ", data_param: {source: " +
                        (dir / "train-images-idx3-ubyte") + ", backend: IDX, batch_size: 7, rand_skip: 3}}",
                    Phase::TRAIN, 21);
  DataUnderTest lmdb(data_yaml(dir / "db", 7, transform, ", rand_skip: 3"), Phase::TRAIN, 21);
  check_same_batches(idx, lmdb, 6);
}

#ifdef CREMA_WITH_IMAGE_CODECS
TEST_CASE("Data layer LMDB: encoded PNG records decode to their pixels (BGR, planar)") {
  test::TempDir dir;
  cv::Mat colour(1, 2, CV_8UC3);  // pixels as (B, G, R)
  colour.at<cv::Vec3b>(0, 0) = {10, 20, 30};
  colour.at<cv::Vec3b>(0, 1) = {40, 50, 60};
  cv::Mat grey(1, 2, CV_8UC1);
  grey.at<uint8_t>(0, 0) = 7;
  grey.at<uint8_t>(0, 1) = 200;
  write_db(dir / "db", {{"a", encoded_datum(colour, 3)}, {"b", encoded_datum(grey, 4)}});

  DataUnderTest d(data_yaml(dir / "db", 1, "{}", ", on_bad_sample: fail"), Phase::TEST, 1);
  CHECK(d.data.shape() == std::vector<int>{1, 3, 1, 2});
  d.forward();
  test::check_values(d.data, {10, 40, 20, 50, 30, 60});
  CHECK(d.labels() == std::vector<float>{3});
  // The grey record decodes to one channel, which does not fit the colour top.
  CHECK_THROWS_WITH_AS(d.forward(),
                       doctest::Contains("record 'b' has 1 channel(s) where the first sample has 3; give the images "
                                         "one number of channels (transform_param.force_color or force_gray"),
                       Error);

  // force_color turns the grey record into three equal channels.
  DataUnderTest c(data_yaml(dir / "db", 2, "{force_color: true}"), Phase::TEST, 1);
  c.forward();
  test::check_values(c.data, {10, 40, 20, 50, 30, 60, 7, 200, 7, 200, 7, 200});
}

TEST_CASE("Data layer LMDB: force_gray on colour PNG records") {
  test::TempDir dir;
  cv::Mat colour(1, 4, CV_8UC3);
  colour.at<cv::Vec3b>(0, 0) = {100, 100, 100};  // grey stays itself
  colour.at<cv::Vec3b>(0, 1) = {255, 0, 0};      // blue
  colour.at<cv::Vec3b>(0, 2) = {0, 255, 0};      // green
  colour.at<cv::Vec3b>(0, 3) = {0, 0, 255};      // red
  write_db(dir / "db", {{"a", encoded_datum(colour, 0)}});
  DataUnderTest d(data_yaml(dir / "db", 1, "{force_gray: true}"), Phase::TEST, 1);
  CHECK(d.data.shape() == std::vector<int>{1, 1, 1, 4});
  d.forward();
  // Luma 0.299 R + 0.587 G + 0.114 B; decoders may round differently by one.
  const std::vector<float> want = {100, 0.114f * 255, 0.587f * 255, 0.299f * 255};
  for (size_t i = 0; i < want.size(); ++i) CHECK(std::abs(d.values()[i] - want[i]) <= 1.01f);
}

#endif

TEST_CASE("Data layer LMDB: a record of another size is a bad sample naming its key, unless the crop fits") {
  test::TempDir dir;
  std::vector<int> big(25);
  for (int i = 0; i < 25; ++i) big[static_cast<size_t>(i)] = i;
  write_db(dir / "db", {{"k1", raw_datum(1, 4, 4, std::vector<int>(16, 1), 0)}, {"k2", raw_datum(1, 5, 5, big, 1)}});
  DataUnderTest strict(data_yaml(dir / "db", 2, "{}", ", on_bad_sample: fail"), Phase::TEST, 1);
  CHECK_THROWS_WITH_AS(strict.forward(),
                       doctest::Contains("record 'k2' is 1x5x5 but the first sample's is 1x4x4; give the images one "
                                         "size (convert the images again with convert-imageset --resize, or "
                                         "transform_param.resize with crop_size) or crop them with "
                                         "transform_param.crop_size"),
                       Error);
  // Skipped by default: the batch is filled from k1 again, and the skip is counted.
  DataUnderTest skipping(data_yaml(dir / "db", 2), Phase::TEST, 1);
  skipping.forward();
  test::check_values(skipping.data, std::vector<float>(32, 1.f));
  CHECK(skipping.labels() == std::vector<float>{0, 0});
  CHECK(skipping.t.layer->data_stats().bad_samples == 1);
  DataUnderTest cropped(data_yaml(dir / "db", 2, "{crop_size: 3}"), Phase::TEST, 1);
  cropped.forward();
  // k1: all ones (offset 0); k2: rows/columns 1..3 of 0..24 (offset (5-3)/2 = 1).
  test::check_values(cropped.data, {1, 1, 1, 1, 1, 1, 1, 1, 1, 6, 7, 8, 11, 12, 13, 16, 17, 18});
  // A record smaller than the crop: a crop is no way out of it (the advice said to crop).
  write_db(dir / "small", {{"k1", raw_datum(1, 5, 5, big, 0)}, {"k2", raw_datum(1, 4, 4, std::vector<int>(16, 1), 1)}});
  DataUnderTest under(data_yaml(dir / "small", 2, "{crop_size: 5}", ", on_bad_sample: fail"), Phase::TEST, 1);
  const std::string err = test::error_of([&] { under.forward(); });
  CHECK_MESSAGE(contains(err, "record 'k2' is 1x4x4 but transform_param.crop_size 5 is larger than"), err);
  CHECK_MESSAGE(contains(err,
                         "; give the images one size of at least the crop (convert the images again with "
                         "convert-imageset --resize, or transform_param.resize with crop_size), or a smaller "
                         "transform_param.crop_size"),
                err);
  CHECK_FALSE(contains(err, "or crop them"));
}

TEST_CASE("Data layer LMDB: batch_size 1 takes each record at its size, one with other channels is a bad sample") {
  test::TempDir dir;
  std::vector<int> big(25);
  for (int i = 0; i < 25; ++i) big[static_cast<size_t>(i)] = i;
  write_db(dir / "db", {{"k1", raw_datum(1, 4, 4, std::vector<int>(16, 1), 0)},
                        {"k2", raw_datum(1, 5, 5, big, 1)},
                        {"k3", raw_datum(3, 2, 2, std::vector<int>(12, 7), 2)}});
  DataUnderTest d(data_yaml(dir / "db", 1, "{scale: 2}"), Phase::TEST, 1);
  d.forward();
  CHECK(d.data.shape() == std::vector<int>{1, 1, 4, 4});
  test::check_values(d.data, std::vector<float>(16, 2.f));
  d.forward();
  REQUIRE(d.data.shape() == std::vector<int>{1, 1, 5, 5});
  std::vector<float> doubled;
  for (int v : big) doubled.push_back(2.f * static_cast<float>(v));
  test::check_values(d.data, doubled);
  CHECK(d.labels() == std::vector<float>{1});
  d.forward();  // k3 has 3 channels: skipped, and the epoch starts again with k1
  CHECK(d.data.shape() == std::vector<int>{1, 1, 4, 4});
  CHECK(d.labels() == std::vector<float>{0});
  CHECK(d.t.layer->data_stats().bad_samples == 1);

  DataUnderTest strict(data_yaml(dir / "db", 1, "{}", ", on_bad_sample: fail"), Phase::TEST, 1);
  strict.forward();
  strict.forward();
  CHECK_THROWS_WITH_AS(strict.forward(), doctest::Contains("record 'k3' has 3 channel(s) where the first sample has 1"),
                       Error);
}
