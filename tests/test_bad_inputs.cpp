// Damaged and unusual inputs found by a review: each now ends in one clear error (or a
// skipped sample) instead of a crash, a hang, a huge allocation or silently wrong data.
#include <doctest/doctest.h>
#include <zlib.h>

#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "datasets/list_file.hpp"
#include "engine/config.hpp"
#include "engine/error.hpp"
#include "io/checkpoint.hpp"
#include "io/datum.hpp"
#include "io/hdf5.hpp"
#include "io/idx.hpp"
#include "io/image.hpp"
#include "io/job_config.hpp"
#include "io/lmdb.hpp"
#include "io/yaml_config.hpp"
#include "layer_test_util.hpp"
#include "test_util.hpp"

using namespace crema;
namespace fs = std::filesystem;

namespace {

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

std::string be32(uint32_t v) {
  return {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8), static_cast<char>(v)};
}

io::Datum raw_datum(int side, int value, int label) {
  io::Datum d;
  d.channels = 1, d.height = side, d.width = side, d.label = label;
  d.data.assign(static_cast<size_t>(side * side), static_cast<char>(value));
  return d;
}

}  // namespace

TEST_CASE("a cut-short LMDB is an error naming both sizes, not a SIGBUS") {
  test::TempDir dir;
  {
    io::LmdbWriter db(dir / "db");
    for (int i = 0; i < 40; ++i) db.put("k" + std::to_string(100 + i), io::encode_datum(raw_datum(16, i, i % 10)));
    db.commit();
  }
  const std::string data = dir / "db/data.mdb";
  REQUIRE(fs::file_size(data) > 12000);
  // Copied out as a single file, it reads as the directory does, and leaves no lock file.
  fs::copy_file(data, dir / "single.mdb");
  {
    io::LmdbReader single(dir / "single.mdb");
    CHECK(single.count() == 40);
  }
  CHECK_FALSE(fs::exists(dir / "single.mdb-lock"));
  // A file that is no database is refused before LMDB can put a lock file beside it.
  test::write_file(dir / "net.prototxt", "name: \"a net, not a database\"\n");
  CHECK(test::error_of([&] { io::LmdbReader db(dir / "net.prototxt"); }).find("not an LMDB database") != std::string::npos);
  CHECK_FALSE(fs::exists(dir / "net.prototxt-lock"));

  fs::resize_file(data, 5000);
  const std::string e = test::error_of([&] { io::LmdbReader db(dir / "db"); });
  CHECK_MESSAGE(e.find("is truncated") != std::string::npos, e);
  CHECK(e.find("5000 bytes") != std::string::npos);
  // Empty, or cut inside its first page: LMDB itself said "Bad file descriptor".
  fs::resize_file(data, 0);
  CHECK(test::error_of([&] { io::LmdbReader db(dir / "db"); }) ==
        "LMDB '" + (dir / "db") + "': " + data +
            " is empty (a copy or a conversion that did not finish?); copy it again or re-create it with `crema "
            "convert-imageset`");
  fs::copy_file(dir / "single.mdb", data, fs::copy_options::overwrite_existing);
  fs::resize_file(data, 12);
  const std::string cut = test::error_of([&] { io::LmdbReader db(dir / "db"); });
  CHECK_MESSAGE(
      cut.find("not an LMDB database (" + data + " does not start with LMDB's magic number") != std::string::npos, cut);
}

TEST_CASE("a damaged Datum record is a bad sample, skipped like any other") {
  test::TempDir dir;
  {
    io::LmdbWriter db(dir / "db");
    db.put("a", io::encode_datum(raw_datum(2, 7, 1)));
    db.put("b", std::string("\x22\xff\xff\xff\x0f", 5));  // a length running past the record
    db.commit();
  }
  const std::string yaml = "{type: Data, top: [data, label], data_param: {source: " + (dir / "db") +
                           ", backend: LMDB, batch_size: 2}}";
  test::DataUnderTest d(yaml, Phase::TEST, 1);
  d.forward();
  CHECK(d.labels() == std::vector<float>{1, 1});
  CHECK(d.t.layer->data_stats().bad_samples == 1);
}

TEST_CASE("a huge rand_skip is taken modulo the samples, at once") {
  test::TempDir dir;
  {
    io::LmdbWriter db(dir / "db");
    for (int i = 0; i < 3; ++i) db.put("k" + std::to_string(i), io::encode_datum(raw_datum(2, i, i)));
    db.commit();
  }
  const auto yaml = [&](long long skip) {
    return "{type: Data, top: [data, label], data_param: {source: " + (dir / "db") +
           ", backend: LMDB, batch_size: 2, rand_skip: " + std::to_string(skip) + "}}";
  };
  const auto start = std::chrono::steady_clock::now();
  test::DataUnderTest huge(yaml(2000000000), Phase::TEST, 1);  // 2e9 = 3·666666666 + 2
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(20));
  test::DataUnderTest two(yaml(2), Phase::TEST, 1);
  huge.forward();
  two.forward();
  CHECK(huge.labels() == std::vector<float>{2, 0});
  CHECK(huge.labels() == two.labels());
}

TEST_CASE("IDX: a zero dimension, and a header claiming more or less than the file holds, are errors") {
  test::TempDir dir;
  write_bytes(dir / "zero", std::string("\0\0\x08\x03", 4) + be32(10) + be32(0) + be32(28));
  CHECK(test::error_of([&] { io::read_idx(dir / "zero"); }).find("dimension of 0") != std::string::npos);
  // 60000 x 1024 x 1024 bytes declared (60 GB), 100 present: truncated, with no 60 GB allocation first.
  write_bytes(dir / "huge", std::string("\0\0\x08\x03", 4) + be32(60000) + be32(1024) + be32(1024) + std::string(100, 'x'));
  const std::string e = test::error_of([&] { io::read_idx(dir / "huge"); });
  CHECK_MESSAGE(e.find("truncated") != std::string::npos, e);
  // Two 2-byte samples declared, five bytes present: the header does not describe the file.
  write_bytes(dir / "long", std::string("\0\0\x08\x02", 4) + be32(2) + be32(2) + std::string(5, 'x'));
  const std::string more = test::error_of([&] { io::read_idx(dir / "long"); });
  CHECK_MESSAGE(more.find("holds more bytes than its header declares (4 values)") != std::string::npos, more);
  write_bytes(dir / "exact", std::string("\0\0\x08\x02", 4) + be32(2) + be32(2) + std::string(4, 'x'));
  CHECK(io::read_idx(dir / "exact").data.size() == 4);
  // Written with or without the .gz the file has: the one that exists is named.
  const std::string no_gz = test::error_of([&] { io::read_idx(dir / "exact.gz"); });
  CHECK_MESSAGE(
      no_gz.find("No such file or directory ('" + dir / "exact" + "' exists: did you mean it?)") != std::string::npos,
      no_gz);
  write_bytes(dir / "packed.gz", "x");
  const std::string gz = test::error_of([&] { io::read_idx(dir / "packed"); });
  CHECK_MESSAGE(gz.find("('" + dir / "packed.gz" + "' exists: did you mean it?)") != std::string::npos, gz);
}

TEST_CASE("HDF5Data: rows with an empty axis and an HDF5 file given as the list are named") {
  test::TempDir dir;
  {
    io::H5File f(dir / "empty_rows.h5", io::H5File::Mode::Create);
    const std::vector<float> none;
    f.write_floats("data", {10, 0}, none.data());
    const std::vector<float> labels(10, 0.f);
    f.write_floats("label", {10}, labels.data());
  }
  test::write_file(dir / "list.txt", dir / "empty_rows.h5");
  const auto yaml = [&](const std::string& source) {
    return "{type: HDF5Data, top: [data, label], hdf5_data_param: {source: " + source +
           ", batch_size: 2, on_bad_sample: fail}}";
  };
  CHECK_THROWS_WITH_AS(test::DataUnderTest(yaml(dir / "list.txt"), Phase::TEST, 1),
                       doctest::Contains("has empty rows"), Error);
  CHECK_THROWS_WITH_AS(test::DataUnderTest(yaml(dir / "empty_rows.h5"), Phase::TEST, 1),
                       doctest::Contains("is an HDF5 file, but HDF5Data's source is a text file listing"), Error);
}

#ifdef CREMA_WITH_IMAGE_CODECS
namespace {
// What the process writes to its stderr (file descriptor 2, where libpng prints)
// while `f` runs.
template <class F>
std::string stderr_of(F f) {
  test::TempDir dir;
  const std::string path = dir / "stderr";
  std::fflush(stderr);
  const int saved = ::dup(2);
  const int file = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  ::dup2(file, 2);
  ::close(file);
  f();
  std::fflush(stderr);
  ::dup2(saved, 2);
  ::close(saved);
  return test::read_file(path);
}
}  // namespace

// OpenCV hands libpng no error handler, so libpng prints "libpng error: ..." on stderr
// for a damaged PNG beside crema's own message; crema checks the chunks first, so the
// error is one, its own, and says what is wrong.
TEST_CASE("a cut-short or damaged PNG is one clear error, with nothing from libpng on stderr") {
  test::TempDir dir;
  io::ImageU8 image{3, 8, 8, std::vector<uint8_t>(3 * 8 * 8)};
  for (size_t i = 0; i < image.data.size(); ++i) image.data[i] = static_cast<uint8_t>(i * 7);
  const std::string png = io::encode_image(image, "png");
  std::string flipped = png;
  flipped[png.find("IDAT") + 6] ^= 0x5a;  // inside the image data: the CRC no longer holds
  const struct {
    const char* name;
    std::string bytes;
    std::string says;
  } cases[] = {{"half", png.substr(0, png.size() / 2), "it is cut short: "},
               {"no_end", png.substr(0, png.size() - 12), "ends inside the chunk header"},  // IEND is 12 bytes
               {"flipped", flipped,
                "chunk 'IDAT' at byte " + std::to_string(png.find("IDAT") - 4) + " fails its CRC"}};
  for (const auto& c : cases) {
    INFO(c.name);
    write_bytes(dir / (std::string(c.name) + ".png"), c.bytes);
    io::ImageU8 out;
    std::string from_memory, from_file;
    const std::string printed = stderr_of([&] {
      from_memory = test::error_of([&] { io::decode_image(c.bytes, 3, "record 7", out); });
      from_file = test::error_of([&] { io::read_image(dir / (std::string(c.name) + ".png"), 3); });
    });
    CHECK_MESSAGE(printed.empty(), printed);
    CHECK_MESSAGE(from_memory.find("record 7: the encoded PNG image") != std::string::npos, from_memory);
    CHECK_MESSAGE(from_memory.find(c.says) != std::string::npos, from_memory);
    CHECK_MESSAGE(from_file.find(std::string(c.name) + ".png' could not be decoded: ") != std::string::npos, from_file);
    CHECK_MESSAGE(from_file.find(c.says) != std::string::npos, from_file);
  }
  // The intact file still decodes, from memory and from a file, as do files libpng
  // accepts whole: bytes after IEND, a zero-length ancillary chunk (its CRC right) and
  // an ancillary chunk whose CRC is wrong (libpng's to drop; the walk checks only
  // critical ones).
  const size_t idat = png.find("IDAT") - 4;
  const uLong empty_crc = crc32(0, reinterpret_cast<const Bytef*>("zzZz"), 4);
  const std::string empty_chunk = be32(0) + "zzZz" + be32(static_cast<uint32_t>(empty_crc));
  const std::string bad_crc_chunk = be32(0) + "zzZz" + be32(static_cast<uint32_t>(empty_crc) ^ 1u);
  for (const std::string& whole : {png, png + "trailing bytes", png.substr(0, idat) + empty_chunk + png.substr(idat),
                                   png.substr(0, idat) + bad_crc_chunk + png.substr(idat)}) {
    io::ImageU8 out;
    io::decode_image(whole, 3, "record 8", out);
    CHECK(out.data == image.data);
    write_bytes(dir / "whole.png", whole);
    CHECK(io::read_image(dir / "whole.png", 3).height == 8);
  }
}
#endif

TEST_CASE("an image whose header claims more pixels than OpenCV allows is an error naming it") {
  test::TempDir dir;
  // A PNG signature and an IHDR chunk for 50000 x 50000 RGB, CRC included, and nothing else.
  std::string ihdr = "IHDR" + be32(50000) + be32(50000) + std::string("\x08\x02\x00\x00\x00", 5);
  const uLong crc = crc32(0, reinterpret_cast<const Bytef*>(ihdr.data()), static_cast<uInt>(ihdr.size()));
  // With an (empty) IDAT and IEND, so that crema's own chunk check passes it on to OpenCV.
  const std::string png = std::string("\x89PNG\r\n\x1a\n", 8) + be32(13) + ihdr + be32(static_cast<uint32_t>(crc)) +
                          be32(0) + "IDAT" + be32(0x35AF061Eu) + be32(0) + "IEND" + be32(0xAE426082u);
  write_bytes(dir / "huge.png", png);
  const std::string e = test::error_of([&] { io::read_image(dir / "huge.png", 3); });
  CHECK_MESSAGE(e.find("huge.png") != std::string::npos, e);
#ifdef CREMA_WITH_IMAGE_CODECS
  CHECK(e.find("could not be decoded: its header claims more pixels than OpenCV decodes") != std::string::npos);
  CHECK(e.find("CV_IO") == std::string::npos);  // OpenCV's assertion text
#else  // a build without codecs says so, and how to get them
  CHECK(e.find("-DCREMA_IMAGE_CODECS=ON") != std::string::npos);
#endif
}

TEST_CASE("config numbers: overflow and NaN are errors with their position, inf spelt out is kept") {
  const auto parse = [](const std::string& yaml) { return io::parse_yaml(yaml, "t.yaml"); };
  CHECK_THROWS_WITH_AS(parse("base_lr: 1e999\n").find("base_lr")->as_double(), doctest::Contains("out of range"),
                       ConfigError);
  CHECK_THROWS_WITH_AS(parse("base_lr: nan\n").find("base_lr")->as_double(), doctest::Contains("NaN"), ConfigError);
  // Spellings strtod also reads as NaN.
  for (const char* nan : {"+nan", "nan(1)", "-NAN"})
    CHECK_THROWS_WITH_AS(parse(std::string("x: ") + nan + "\n").find("x")->as_double(), doctest::Contains("NaN"),
                         ConfigError);
  CHECK_THROWS_WITH_AS(parse("scale: 1e39\n").find("scale")->as_float(), doctest::Contains("range for a float"),
                       ConfigError);
  CHECK(std::isinf(parse("max: .inf\n").find("max")->as_float()));
  CHECK(parse("x: 2.5e-3\n").find("x")->as_float() == doctest::Approx(0.0025));
  // C's hexadecimal floats are no YAML numbers (integer keys refuse 0x10 too).
  for (const char* hex : {"0x10", "0x1p-4", "-0X.8p-3"})
    CHECK_THROWS_WITH_AS(parse(std::string("x: ") + hex + "\n").find("x")->as_double(),
                         doctest::Contains("expected a decimal number"), ConfigError);
  // A non-zero number that would be held as 0 switches off what it sets: refused.
  CHECK_THROWS_WITH_AS(parse("base_lr: 1e-400\n").find("base_lr")->as_double(), doctest::Contains("too small"),
                       ConfigError);
  CHECK_THROWS_WITH_AS(parse("base_lr: 1e-50\n").find("base_lr")->as_float(),
                       doctest::Contains("too small for a float"), ConfigError);
  CHECK(parse("x: 0e-400\n").find("x")->as_double() == 0.0);
  CHECK(parse("x: -0.000\n").find("x")->as_float() == 0.f);
  CHECK(parse("x: 1e-40\n").find("x")->as_float() > 0.f);  // a float's subnormal, still not 0
}

TEST_CASE("config numbers: a key with a default refuses infinity at its position") {
  // A uniform filler up to .inf made a layer of zeros, Adam's delta: .inf a run that never
  // moved, std: [.inf] inputs of zeros: all with status 0.
  const Node root = io::parse_yaml("a: {max: .inf, delta: -.inf, std: [1, .inf], ok: 2, oks: [1, 2]}\n", "t.yaml");
  MapReader r(root.find("a"));
  CHECK_THROWS_WITH_AS(r.get_float("max", 1),
                       "t.yaml:1:10: a.max: an infinite value is not usable here; give a finite number", ConfigError);
  CHECK_THROWS_WITH_AS(r.get_double("delta", 1), doctest::Contains("t.yaml:1:23: a.delta: an infinite value"),
                       ConfigError);
  CHECK_THROWS_WITH_AS(r.get_floats("std"), doctest::Contains("t.yaml:1:39: a.std[1]: an infinite value"), ConfigError);
  CHECK(r.get_float("ok", 0) == 2.f);
  CHECK(r.get_floats("oks") == std::vector<float>{1, 2});
  // A list key written with no value, as a single one: refused, not an empty list.
  const Node lists = io::parse_yaml("a: {mean_value: , top: }\n", "l.yaml");
  MapReader l(lists.find("a"));
  CHECK_THROWS_WITH_AS(l.get_floats("mean_value"), doctest::Contains("'mean_value' is empty"), ConfigError);
  CHECK_THROWS_WITH_AS(l.get_strings("top"), doctest::Contains("'top' is empty"), ConfigError);
  // End to end: the filler of a net run by `crema time`.
  test::TempDir dir;
  test::write_file(dir / "net.yaml",
                   "layer:\n"
                   "  - {name: d, type: DummyData, top: x, dummy_data_param: {shape: {dim: [2, 3]}}}\n"
                   "  - {name: ip, type: InnerProduct, bottom: x, top: y,\n"
                   "     inner_product_param: {num_output: 2, weight_filler: {type: uniform, max: .inf}}}\n");
  const auto r2 = test::run(test::crema_binary() + " time --model " + (dir / "net.yaml") + " --iterations 1");
  CHECK(r2.status == 2);
  CHECK_MESSAGE(r2.output.find("net.yaml:4:79: layer[1].inner_product_param.weight_filler.max: an infinite value "
                               "is not usable here") != std::string::npos,
                r2.output);
}

TEST_CASE("test, time and extract-features check the layers of the phase they leave out, as train does") {
  test::TempDir dir;
  test::write_file(
      dir / "net.yaml",
      "layer:\n"
      "  - {name: d, type: DummyData, top: x, include: {phase: TRAIN},\n"
      "     dummy_data_param: {shape: {dim: [2, 3]}, batch_siz: 2}}\n"
      "  - {name: d, type: DummyData, top: x, include: {phase: TEST}, dummy_data_param: {shape: {dim: [2, 3]}}}\n"
      "  - {name: ip, type: InnerProduct, bottom: x, top: y, inner_product_param: {num_output: 2}}\n");
  const std::string typo = "net.yaml:3:47: layer[0].dummy_data_param.batch_siz: unknown key 'batch_siz'";
  for (const std::string& command :
       {std::string("test --iterations 1"), std::string("time --phase TEST --iterations 1"),
        "extract-features --blobs y -o " + (dir / "f.h5")}) {
    CAPTURE(command);
    const auto r = test::run(test::crema_binary() + " " + command + " --model " + (dir / "net.yaml"));
    CHECK(r.status == 2);
    CHECK_MESSAGE(r.output.find(typo) != std::string::npos, r.output);
  }
  // A layer the command leaves out may be of a type crema lacks (Caffe's Python data layer in a
  // trainval net): `time --phase TEST` runs the net as before; train would refuse it.
  test::write_file(
      dir / "python.yaml",
      "layer:\n"
      "  - {name: d, type: Python, top: x, include: {phase: TRAIN}, python_param: {module: m}}\n"
      "  - {name: d, type: DummyData, top: x, include: {phase: TEST}, dummy_data_param: {shape: {dim: [2, 3]}}}\n"
      "  - {name: ip, type: InnerProduct, bottom: x, top: y, inner_product_param: {num_output: 2}}\n");
  // (--phase in any case, as PyTorch users write it: it was "test not in {TRAIN,TEST}".)
  const auto python =
      test::run(test::crema_binary() + " time --phase test --iterations 1 --model " + (dir / "python.yaml"));
  CHECK_MESSAGE(python.status == 0, python.output);
  CHECK_MESSAGE(python.output.find("Timing the TEST phase") != std::string::npos, python.output);
  // A solver's `net.` prefix on a net file's override: said so (it was "no list 'layer' to index").
  const auto prefixed =
      test::run(test::crema_binary() + " test --model " + (dir / "net.yaml") + " --set net.layer[0].name=e");
  CHECK(prefixed.status == 2);
  CHECK_MESSAGE(
      prefixed.output.find("is a net, not a solver, so its keys are set without 'net.': --set layer[0].name=e") !=
          std::string::npos,
      prefixed.output);
}

TEST_CASE("config files: a very long word does not overflow the stack, an empty input list is refused") {
  test::TempDir dir;
  test::write_file(dir / "x.cfg", "net: " + std::string(200000, 'a') + "\n");
  const std::string long_word = test::error_of([&] { io::load_solver_config(dir / "x.cfg", {}); });
  CHECK(long_word.find("does not exist") != std::string::npos);
  test::write_file(dir / "e.prototxt", "name: \"x\"\ninput: []\ninput_dim: []\n");
  CHECK_THROWS_WITH_AS(io::load_net_config(dir / "e.prototxt"), doctest::Contains("names no blob"), ConfigError);
}

TEST_CASE("config files: a binary file or a nesting too deep for YAML is said to be one, no raw bytes echoed") {
  test::TempDir dir;
  // yaml-cpp stopped at some byte with "unknown escape character: " and the byte itself.
  test::write_file(dir / "w.yaml", std::string("name: x\nblob: \"\x01\\\0\x02\"\n", 19));
  const std::string binary = test::error_of([&] { io::load_config_file(dir / "w.yaml"); });
  CHECK_MESSAGE(binary.find("w.yaml:2:10: this is not a text file (it holds a NUL byte here), so not a config") !=
                    std::string::npos,
                binary);
  CHECK(binary.find('\0') == std::string::npos);
  test::write_file(dir / "s.caffemodel.h5", std::string("\x89HDF\r\n\x1a\n\0\0\0\0", 12));
  const std::string hdf5 = test::error_of([&] { io::load_config_file(dir / "s.caffemodel.h5"); });
  CHECK_MESSAGE(hdf5.find("s.caffemodel.h5: this is an HDF5 file (weights or a snapshot), not a config: give the "
                          "solver or net file, "
                          "weights with --weights and a solver state with --snapshot") != std::string::npos,
                hdf5);
  test::write_file(dir / "u.yaml", std::string("\xff\xfen\0a\0m\0e\0:\0 \0x\0\n\0", 18));
  const std::string utf16 = test::error_of([&] { io::load_config_file(dir / "u.yaml"); });
  CHECK_MESSAGE(utf16.find("u.yaml: this file is UTF-16 text; save it as UTF-8") != std::string::npos, utf16);
  // yaml-cpp's own depth limit said "bad file".
  test::write_file(dir / "deep.yaml", "a: " + std::string(3000, '[') + std::string(3000, ']') + "\n");
  const std::string deep = test::error_of([&] { io::load_config_file(dir / "deep.yaml"); });
  CHECK_MESSAGE(
      deep.find("YAML syntax error: lists or maps nest deeper than the YAML reader allows") != std::string::npos, deep);
}

TEST_CASE("a solver state with an iteration beyond int or not whole, or no smoothed loss, is refused as damaged") {
  test::TempDir dir;
  const auto write_state = [&](long long iter, bool with_loss, float float_iter = -1) {
    io::H5File f(dir / "s.solverstate.h5", io::H5File::Mode::Create);
    if (float_iter >= 0) {
      f.write_floats("iter", {1}, &float_iter);
    } else {
      const hsize_t one = 1;  // 64-bit, as another writer may store it
      io::H5Handle space(H5Screate_simple(1, &one, nullptr), H5Sclose);
      io::H5Handle ds(H5Dcreate2(f.id(), "iter", H5T_STD_I64LE, space.get(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT),
                      H5Dclose);
      REQUIRE(H5Dwrite(ds.get(), H5T_NATIVE_LLONG, H5S_ALL, H5S_ALL, H5P_DEFAULT, &iter) >= 0);
    }
    f.create_group("history");
    f.create_group("crema");
    f.write_string("crema/type", "SGD");
    f.write_bytes("crema/rng", "state");
    const std::vector<float> none;
    f.write_floats("crema/recent_losses", {0}, none.data());
    if (with_loss)
      f.write_floats("crema/smoothed_loss", {1}, std::vector<float>{0.5f}.data());
    else
      f.write_floats("crema/smoothed_loss", {0}, none.data());
  };
  write_state(1LL << 40, true);
  const std::string huge = test::error_of([&] { io::load_solver_state(dir / "s.solverstate.h5"); });
  CHECK_MESSAGE(huge.find("not an iteration count") != std::string::npos, huge.substr(0, 300));
  write_state(10, false);
  const std::string no_loss = test::error_of([&] { io::load_solver_state(dir / "s.solverstate.h5"); });
  CHECK_MESSAGE(no_loss.find("smoothed_loss") != std::string::npos, no_loss.substr(0, 300));
  // An iteration stored as a float must be whole: HDF5 turns 3.5 into 3 without a word, and a
  // resume at 3 with another iteration's weights would follow.
  write_state(10, true, 3.5f);
  const std::string fraction = test::error_of([&] { io::load_solver_state(dir / "s.solverstate.h5"); });
  CHECK_MESSAGE(
      fraction.find("s.solverstate.h5: 'iter' holds 3.5, not a whole number; the file is damaged") != std::string::npos,
      fraction.substr(0, 300));
  write_state(10, true, 3.f);
  const std::string whole = test::error_of([&] { io::load_solver_state(dir / "s.solverstate.h5"); });
  CHECK_MESSAGE((!whole.empty() && whole.find("whole number") == std::string::npos), whole.substr(0, 300));
}

TEST_CASE(
    "list files: a UTF-8 byte-order mark is not part of the first path, --mean-value and --scale take whole finite "
    "numbers only") {
  test::TempDir dir;
  test::write_file(dir / "list.txt", "\xef\xbb\xbf" "a.png 1\nb.png 2\n");
  const std::vector<ListEntry> entries = read_list(dir / "list.txt");
  REQUIRE(entries.size() == 2);
  CHECK(entries[0].path == "a.png");
  const auto r = test::run(test::crema_binary() + " classify --model " + (dir / "m.yaml") + " --mean-value 1abc " +
                           (dir / "a.png"));
  CHECK(r.status == 2);
  CHECK_MESSAGE(r.output.find("expected finite numbers, got '1abc'") != std::string::npos, r.output);
  // nan and inf parse as numbers; every score would then be made up.
  const auto nan_mean = test::run(test::crema_binary() + " classify --model " + (dir / "m.yaml") +
                                  " --mean-value 1,nan " + (dir / "a.png"));
  CHECK(nan_mean.status == 2);
  CHECK_MESSAGE(nan_mean.output.find("expected finite numbers, got 'nan'") != std::string::npos, nan_mean.output);
  const auto inf_scale =
      test::run(test::crema_binary() + " classify --model " + (dir / "m.yaml") + " --scale inf " + (dir / "a.png"));
  CHECK(inf_scale.status == 2);
  CHECK_MESSAGE(inf_scale.output.find("--scale: expected a finite number, got 'inf'") != std::string::npos,
                inf_scale.output);
  // A folder given as the config says so, not that it is no map of solver keys.
  const auto folder = test::run(test::crema_binary() + " train " + dir.path().string());
  CHECK(folder.status == 2);  // a mistake in the command
  CHECK_MESSAGE(folder.output.find(dir.path().string() + ": this is a folder; give the solver or net file in it") !=
                    std::string::npos,
                folder.output);
}
