// HDF5Data at scale: the grouped EpochSampler, HDF5Source reading blocks of rows
// (types, ranks, block-local shuffling, bad files, read failures) and the layer
// through the Prefetcher (thread counts, resume).
#include <doctest/doctest.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <set>
#include <sstream>

#include "datasets/epoch_sampler.hpp"
#include "datasets/hdf5_source.hpp"
#include "datasets/prefetcher.hpp"
#include "engine/context.hpp"
#include "engine/net.hpp"
#include "gpu_test_util.hpp"
#include "io/hdf5.hpp"
#include "layer_test_util.hpp"
#include "test_util.hpp"

using namespace crema;

namespace {

// One dataset for write_h5: values in the native type `mem_type`, stored as `file_type`.
struct TestDataset {
  std::string name;
  std::vector<hsize_t> dims;
  hid_t file_type, mem_type;
  const void* values;
};

void write_h5(const std::string& path, const std::vector<TestDataset>& datasets) {
  io::H5File f(path, io::H5File::Mode::Create);
  const std::lock_guard<std::recursive_mutex> lock(io::hdf5_mutex());
  for (const auto& d : datasets) {
    io::H5Handle space(H5Screate_simple(static_cast<int>(d.dims.size()), d.dims.data(), nullptr), H5Sclose);
    io::H5Handle ds(H5Dcreate2(f.id(), d.name.c_str(), d.file_type, space.get(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT),
                    H5Dclose);
    REQUIRE(ds.get() >= 0);
    REQUIRE(H5Dwrite(ds.get(), d.mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, d.values) >= 0);
  }
}

// A file of `rows` rows numbered from `first`: data row i is (id, -id, `width`-2
// more zeros), label row i is id.
void write_numbered(const std::string& path, int first, int rows, int width = 2, int label_rows = -1) {
  std::vector<float> data(static_cast<size_t>(rows * width), 0.f), label;
  for (int i = 0; i < rows; ++i) {
    data[static_cast<size_t>(i * width)] = static_cast<float>(first + i);
    data[static_cast<size_t>(i * width + 1)] = -static_cast<float>(first + i);
  }
  if (label_rows < 0) label_rows = rows;
  for (int i = 0; i < label_rows; ++i) label.push_back(static_cast<float>(first + i));
  io::H5File f(path, io::H5File::Mode::Create);
  f.write_floats("data", {rows, width}, data.data());
  f.write_floats("label", {label_rows}, label.data());
}

// Three files of 7, 5 and 9 rows numbered 0..20, listed in `dir`/list.txt.
std::string three_files(const test::TempDir& dir) {
  write_numbered(dir / "a.h5", 0, 7);
  write_numbered(dir / "b.h5", 7, 5);
  write_numbered(dir / "c.h5", 12, 9);
  test::write_file(dir / "list.txt", dir / "a.h5\n" + dir / "b.h5\n" + dir / "c.h5\n");
  return dir / "list.txt";
}

HDF5SourceOptions data_and_label() {
  HDF5SourceOptions o;
  o.datasets = {"data", "label"};
  return o;
}

// Row `index` of a source as (data values, label).
std::pair<std::vector<float>, float> row(HDF5Source& source, int index) {
  std::vector<float> data(source.row_size(0));
  float label = -1;
  float* outs[] = {data.data(), &label};
  source.read_row(index, outs);
  return {data, label};
}


// Batches of an HDF5Data layer over `list`: per forward, data then label values.
struct HDF5DataRun {
  test::LayerUnderTest t;
  Blob data, label;
  HDF5DataRun(const std::string& list, const std::string& extra, Context& ctx)
      : t(test::make_layer("{type: HDF5Data, top: [data, label], hdf5_data_param: {source: '" + list +
                           "', batch_size: 4, shuffle: true" + extra + "}}")) {
    t.layer->setup(ctx, {}, {&data, &label});
  }
  std::vector<float> forward(Context& ctx) {
    t.layer->forward(ctx, {}, {&data, &label});
    std::vector<float> v(data.cpu_data(), data.cpu_data() + data.count());
    v.insert(v.end(), label.cpu_data(), label.cpu_data() + label.count());
    return v;
  }
};

}  // namespace

TEST_CASE("EpochSampler grouped: every sample once per epoch, groups kept together, new orders each epoch") {
  const std::vector<int> sizes = {3, 5, 1, 4, 2};
  std::vector<int> group_of;
  for (int g = 0; g < static_cast<int>(sizes.size()); ++g) group_of.insert(group_of.end(), static_cast<size_t>(sizes[static_cast<size_t>(g)]), g);
  const int n = static_cast<int>(group_of.size());

  EpochSampler plain;
  plain.init_groups(sizes, false, 7);
  for (int i = 0; i < 2 * n; ++i) CHECK(plain.next() == i % n);  // unshuffled: index order, epoch after epoch

  EpochSampler s;
  s.init_groups(sizes, true, 7);
  std::vector<std::vector<int>> epochs(3);
  for (auto& e : epochs)
    for (int i = 0; i < n; ++i) e.push_back(s.next());
  CHECK(s.epoch() == 2);
  std::vector<int> in_order(static_cast<size_t>(n));
  std::iota(in_order.begin(), in_order.end(), 0);
  for (const auto& e : epochs) {
    std::vector<int> sorted = e;
    std::sort(sorted.begin(), sorted.end());
    CHECK(sorted == in_order);  // each sample exactly once
    CHECK(e != in_order);
    // The samples of a group come one after the other: the group changes once per group.
    int changes = 0;
    for (size_t i = 1; i < e.size(); ++i) changes += group_of[static_cast<size_t>(e[i])] != group_of[static_cast<size_t>(e[i - 1])];
    CHECK(changes == static_cast<int>(sizes.size()) - 1);
  }
  CHECK(epochs[0] != epochs[1]);
  CHECK(epochs[1] != epochs[2]);
  // The group order changes too, not only the order within groups.
  std::set<std::vector<int>> group_orders;
  EpochSampler many;
  many.init_groups(sizes, true, 11);
  for (int epoch = 0; epoch < 6; ++epoch) {
    std::vector<int> order;
    for (int i = 0; i < n; ++i) {
      const int g = group_of[static_cast<size_t>(many.next())];
      if (order.empty() || order.back() != g) order.push_back(g);
    }
    group_orders.insert(order);
  }
  CHECK(group_orders.size() > 1);

  CHECK_THROWS_AS(s.init_groups({3, 0, 2}, true, 1), Error);
  CHECK_THROWS_AS(s.init_groups({}, true, 1), Error);
}

TEST_CASE("EpochSampler: one group is the plain sampler, orders and saved state alike") {
  EpochSampler plain, grouped;
  plain.init(10, true, 99);
  grouped.init_groups({10}, true, 99);
  for (int i = 0; i < 25; ++i) {
    CHECK(plain.save() == grouped.save());
    CHECK(plain.next() == grouped.next());
  }
  // The flat state keeps its format: samples, epoch, position, stream.
  CHECK(plain.save().rfind("10\n2\n5\n", 0) == 0);
}

TEST_CASE("EpochSampler grouped: save and restore mid-epoch and mid-group continue with the same samples") {
  const std::vector<int> sizes = {4, 2, 5, 3};
  for (int stop : {0, 1, 3, 4, 6, 13, 14, 15, 20, 28}) {  // in groups, at group ends, at epoch ends
    INFO("stopped after " << stop);
    EpochSampler run;
    run.init_groups(sizes, true, 5);
    for (int i = 0; i < stop; ++i) run.next();
    const std::string state = run.save();
    CHECK(state.rfind("groups 4 4 2 5 3\n", 0) == 0);
    EpochSampler resumed;
    resumed.init_groups(sizes, true, 1234);  // another seed: the state decides
    resumed.restore(state);
    CHECK(resumed.epoch() == run.epoch());
    for (int i = 0; i < 30; ++i) CHECK(resumed.next() == run.next());
  }
  EpochSampler run;
  run.init_groups(sizes, true, 5);
  const std::string state = run.save();
  EpochSampler other;
  other.init_groups({4, 2, 4, 4}, true, 5);  // same total, other blocks
  CHECK_THROWS_WITH_AS(other.restore(state),
                       doctest::Contains("in 4 block(s) of 4, 2, 5, 3, but this source has 4 block(s) of 4, 2, 4, 4"), Error);
  other.init(14, true, 5);
  CHECK_THROWS_WITH_AS(other.restore(state), doctest::Contains("but this source has 1 block(s) of 14"), Error);
  CHECK_THROWS_WITH_AS(run.restore(other.save()), doctest::Contains("reads the 14 samples in 1 block(s) of 14"), Error);
  CHECK_THROWS_AS(run.restore("groups 4 4 2\n"), Error);
}

TEST_CASE(
    "EpochSampler window: W groups at a time mixed in one order, every sample once, the window kept by a resume") {
  const std::vector<int> sizes = {3, 5, 1, 4, 2, 3};  // 18 samples in 6 groups
  std::vector<int> group_of;
  for (int g = 0; g < static_cast<int>(sizes.size()); ++g)
    group_of.insert(group_of.end(), static_cast<size_t>(sizes[static_cast<size_t>(g)]), g);
  const int n = static_cast<int>(group_of.size());
  EpochSampler s;
  s.init_groups(sizes, true, 3, 2);
  int mixed = 0;  // positions where the group changes more often than a window's span allows
  for (int epoch = 0; epoch < 4; ++epoch) {
    std::vector<int> e;
    for (int i = 0; i < n; ++i) e.push_back(s.next());
    std::vector<int> sorted = e;
    std::sort(sorted.begin(), sorted.end());
    std::vector<int> in_order(static_cast<size_t>(n));
    std::iota(in_order.begin(), in_order.end(), 0);
    CHECK(sorted == in_order);  // each sample exactly once
    // The epoch falls into 3 windows of 2 groups: each window's samples come together.
    std::set<int> window_groups;
    size_t at = 0;
    for (int w = 0; w < 3; ++w) {
      std::set<int> groups;
      int count = 0;
      while (groups.size() <= 2 && at < e.size()) {
        const int g = group_of[static_cast<size_t>(e[at])];
        if (!groups.count(g) && groups.size() == 2) break;
        if (groups.insert(g).second) CHECK(!window_groups.count(g));  // a group in one window only
        ++count, ++at;
      }
      for (int g : groups) window_groups.insert(g);
      int expected = 0;
      for (int g : groups) expected += sizes[static_cast<size_t>(g)];
      CHECK(count == expected);
    }
    CHECK(at == e.size());
    // Within a window the two groups' samples interleave (one window would keep them apart).
    for (size_t i = 2; i < e.size(); ++i)
      mixed += group_of[static_cast<size_t>(e[i])] != group_of[static_cast<size_t>(e[i - 1])] &&
               group_of[static_cast<size_t>(e[i - 1])] != group_of[static_cast<size_t>(e[i - 2])];
  }
  CHECK(mixed > 0);

  // A resume takes the window from the state, mid-window included.
  for (int stop : {0, 2, 7, 8, 17, 18, 25}) {
    INFO("stopped after " << stop);
    EpochSampler run;
    run.init_groups(sizes, true, 9, 2);
    for (int i = 0; i < stop; ++i) run.next();
    const std::string state = run.save();
    CHECK(state.find("\nwindow 2\n") != std::string::npos);
    EpochSampler resumed;
    resumed.init_groups(sizes, true, 1, 2);  // another seed: the state decides
    resumed.restore(state);
    for (int i = 0; i < 40; ++i) CHECK(resumed.next() == run.next());
  }
  // A state saved without a window (a snapshot from before windows, or of an unshuffled run)
  // finishes its epoch one group at a time, as it ran; the epochs after it take the window.
  EpochSampler old_run;
  old_run.init_groups(sizes, true, 9);
  for (int i = 0; i < 5; ++i) old_run.next();
  CHECK(old_run.save().find("window") == std::string::npos);
  EpochSampler windowed;
  windowed.init_groups(sizes, true, 9, 4);
  windowed.restore(old_run.save());
  for (int i = 5; i < n; ++i) CHECK(windowed.next() == old_run.next());
  CHECK(windowed.save().find("window") == std::string::npos);  // the epoch ends with the next sample
  windowed.next();
  CHECK(windowed.epoch() == 1);
  CHECK(windowed.save().find("\nwindow 4\n") != std::string::npos);
  CHECK_THROWS_AS(windowed.restore("groups 6 3 5 1 4 2 3\nwindow 0\n18\n0\n0\n"), Error);
}

TEST_CASE("HDF5 source: int32 and uint8 labels, float64 data of rank 4 and rank 1") {
  test::TempDir dir;
  const std::vector<double> data_a = {-1, -0.75, -0.5, -0.25, 0, 0.25, 0.5, 0.75, 1, 1.25, 1.5, 1e10};
  const std::vector<int32_t> label_a = {-7, 0, 123456};
  const std::vector<double> data_b = {10, 10.5, 11, 11.5, 12, 12.5, 13, 13.5};
  const std::vector<uint8_t> label_b = {200, 3};
  write_h5(dir / "a.h5", {{"data", {3, 2, 1, 2}, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, data_a.data()},
                          {"label", {3}, H5T_STD_I32LE, H5T_NATIVE_INT32, label_a.data()}});
  write_h5(dir / "b.h5", {{"data", {2, 2, 1, 2}, H5T_IEEE_F64BE, H5T_NATIVE_DOUBLE, data_b.data()},
                          {"label", {2}, H5T_STD_U8LE, H5T_NATIVE_UINT8, label_b.data()}});
  // Relative paths resolve next to the list; comments and blank lines are skipped.
  test::write_file(dir / "list.txt", "# training files\na.h5\n\n  b.h5  \n");

  HDF5Source source(dir / "list.txt", data_and_label());
  REQUIRE(source.size() == 5);
  CHECK(source.num_files() == 2);
  CHECK(source.row_shape(0) == std::vector<int>{2, 1, 2});
  CHECK(source.row_size(0) == 4);
  CHECK(source.row_shape(1).empty());
  CHECK(source.row_size(1) == 1);
  std::vector<double> all_data = data_a;
  all_data.insert(all_data.end(), data_b.begin(), data_b.end());
  const std::vector<float> all_labels = {-7, 0, 123456, 200, 3};
  for (int i = 0; i < 5; ++i) {
    const auto [data, label] = row(source, i);
    for (size_t k = 0; k < 4; ++k) CHECK(data[k] == static_cast<float>(all_data[static_cast<size_t>(i) * 4 + k]));
    CHECK(label == all_labels[static_cast<size_t>(i)]);
  }

  // Through the layer: tops (batch, 2, 1, 2) and (batch), rows in file order.
  Context ctx(1);
  auto t = test::make_layer("{type: HDF5Data, top: [data, label], hdf5_data_param: {source: '" + dir / "list.txt" +
                            "', batch_size: 5}}");
  Blob data, label;
  t.layer->setup(ctx, {}, {&data, &label});
  CHECK(data.shape() == std::vector<int>{5, 2, 1, 2});
  CHECK(label.shape() == std::vector<int>{5});
  t.layer->forward(ctx, {}, {&data, &label});
  for (int i = 0; i < 20; ++i) CHECK(data.cpu_data()[i] == static_cast<float>(all_data[static_cast<size_t>(i)]));
  for (int i = 0; i < 5; ++i) CHECK(label.cpu_data()[i] == all_labels[static_cast<size_t>(i)]);

  // A rank-1 data top: one value per row, top (batch).
  const std::vector<double> scalars = {1.5, -2.25, 3};
  write_h5(dir / "r1.h5", {{"data", {3}, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, scalars.data()}});
  test::write_file(dir / "r1.txt", "r1.h5\n");
  auto r1 = test::make_layer("{type: HDF5Data, top: data, hdf5_data_param: {source: '" + dir / "r1.txt" +
                             "', batch_size: 2}}");
  Blob values;
  r1.layer->setup(ctx, {}, {&values});
  CHECK(values.shape() == std::vector<int>{2});
  r1.layer->forward(ctx, {}, {&values});
  test::check_values(values, {1.5f, -2.25f});
  r1.layer->forward(ctx, {}, {&values});
  test::check_values(values, {3.f, 1.5f});  // the next epoch starts
}

TEST_CASE("HDF5 source with small blocks over 3 files: a shuffled epoch reads each block once, in a new order") {
  test::TempDir dir;
  HDF5SourceOptions options = data_and_label();
  options.block_bytes = 3 * 3 * sizeof(float);  // 3 rows of data (2) + label (1)
  options.cached_blocks = 2;
  HDF5Source source(three_files(dir), options);
  REQUIRE(source.size() == 21);
  CHECK(source.block_sizes() == std::vector<int>{3, 3, 1, 3, 2, 3, 3, 3});
  EpochSampler sampler;
  sampler.init_groups(source.block_sizes(), true, 42);
  std::vector<std::vector<int>> epochs(2);
  for (int e = 0; e < 2; ++e) {
    for (int i = 0; i < 21; ++i) {
      const int index = sampler.next();
      const auto [data, label] = row(source, index);
      CHECK(data[0] == static_cast<float>(index));  // the row asked for, from the right file
      CHECK(data[1] == -static_cast<float>(index));
      CHECK(label == static_cast<float>(index));
      epochs[static_cast<size_t>(e)].push_back(index);
    }
    // Reads stay block-local: every block came from disk once this epoch (the second
    // may start with the blocks the first ended with, still cached).
    if (e == 0) CHECK(source.blocks_read() == 8);
    if (e == 1) CHECK(source.blocks_read() >= 14);
    CHECK(source.blocks_read() <= 8 * (e + 1));
  }
  std::vector<int> file_order(21);
  std::iota(file_order.begin(), file_order.end(), 0);
  for (const auto& e : epochs) {
    CHECK(e != file_order);
    CHECK(std::set<int>(e.begin(), e.end()).size() == 21);
  }
  CHECK(epochs[0] != epochs[1]);
  CHECK(source.describe(8) == "row 1 of HDF5 file '" + dir / "b.h5" + "' (" + dir / "list.txt" + ":2)");
}

TEST_CASE(
    "HDF5 source, shuffled over a window of blocks: rows of several blocks mixed, each block read once per epoch") {
  test::TempDir dir;
  HDF5SourceOptions options = data_and_label();
  options.block_bytes = 3 * 3 * sizeof(float);
  options.cached_blocks = 4 + 1;  // the window and the next block, as the layer keeps
  HDF5Source source(three_files(dir), options);
  EpochSampler sampler;
  sampler.init_groups(source.block_sizes(), true, 42, 4);
  std::vector<int> first_window;
  for (int i = 0; i < 21; ++i) {
    const int index = sampler.next();
    CHECK(row(source, index).first[0] == static_cast<float>(index));
    if (i < 6) first_window.push_back(index);
  }
  CHECK(source.blocks_read() == 8);
  // The first six rows come from more than two blocks (one block at a time gives at most two).
  std::set<int> blocks;
  const std::vector<int> starts = {0, 3, 6, 7, 10, 12, 15, 18, 21};
  for (int index : first_window)
    blocks.insert(static_cast<int>(std::upper_bound(starts.begin(), starts.end(), index) - starts.begin()));
  CHECK(blocks.size() > 2);
}

TEST_CASE("HDF5 source: a file with uneven datasets is skipped once or an error, rows of another shape an error") {
  test::TempDir dir;
  write_numbered(dir / "a.h5", 0, 4);
  write_numbered(dir / "b.h5", 100, 3, 3);     // data rows of 3 values, not 2
  write_numbered(dir / "c.h5", 200, 2, 2, 3);  // 2 data rows, 3 labels
  write_numbered(dir / "d.h5", 4, 2);
  test::write_file(dir / "list.txt", "a.h5\nc.h5\nd.h5\n");
  {
    test::CaptureLog log;
    HDF5Source source(dir / "list.txt", data_and_label());
    CHECK(source.size() == 6);
    CHECK(source.num_files() == 2);
    CHECK(source.skipped_files() == 1);
    for (int i = 0; i < 6; ++i) CHECK(row(source, i).second == static_cast<float>(i));  // a's rows, then d's
    const std::string text = log.text();
    CHECK(test::count_of(text, "c.h5") == 1);
    CHECK(text.find("list.txt:2: HDF5 file") != std::string::npos);
    CHECK(text.find("different numbers of rows") != std::string::npos);
  }
  // Rows of another shape than the first file's: which file is the odd one is not known, so this is no
  // bad sample to skip (skipped, the run trained on the first file alone when it was the odd one).
  test::write_file(dir / "shapes.txt", "a.h5\nb.h5\nd.h5\n");
  std::string want = "shapes.txt:2: HDF5 file '" + dir / "b.h5" + "': dataset 'data' has rows of shape (3) but the " +
                     "first file's (" + dir / "shapes.txt" + ":1: HDF5 file '" + dir / "a.h5" +
                     "') have (2); the files of a list hold rows of one shape: fix or leave out the odd one";
  CHECK_THROWS_WITH_AS(HDF5Source(dir / "shapes.txt", data_and_label()), doctest::Contains(want.c_str()), Error);
  HDF5SourceOptions fail = data_and_label();
  fail.skip_bad = false;
  test::write_file(dir / "list2.txt", "a.h5\nc.h5\n");
  want = "list2.txt:2: HDF5 file '" + dir / "c.h5" + "': its datasets have different numbers of rows ('data' 2, 'label' 3)";
  CHECK_THROWS_WITH_AS(HDF5Source(dir / "list2.txt", fail), doctest::Contains(want.c_str()), Error);

  // The layer: on_bad_sample: fail stops at setup with the layer's config position.
  Context ctx(1);
  auto t = test::make_layer("{type: HDF5Data, top: [data, label], hdf5_data_param: {source: '" + dir / "list.txt" +
                            "', batch_size: 2, on_bad_sample: fail}}");
  Blob data, label;
  want = dir / "c.h5";
  CHECK_THROWS_WITH_AS(t.layer->setup(ctx, {}, {&data, &label}), doctest::Contains(want.c_str()), ConfigError);

  // Only bad files: nothing to read.
  test::write_file(dir / "bad.txt", "c.h5\n");
  test::CaptureLog quiet;
  CHECK_THROWS_WITH_AS(HDF5Source(dir / "bad.txt", data_and_label()), doctest::Contains("no usable file"), Error);
}

TEST_CASE("HDF5 source errors: missing file with its list line, empty list, missing and string datasets") {
  test::TempDir dir;
  write_numbered(dir / "a.h5", 0, 2);
  test::write_file(dir / "list.txt", "a.h5\n\nmissing.h5\n");
  CHECK_THROWS_WITH_AS(HDF5Source(dir / "list.txt", data_and_label()),
                       doctest::Contains("list.txt:3: HDF5 file 'missing.h5' does not exist"), Error);

  const std::string absent = "cannot read the HDF5 file list '" + dir / "absent.txt" + "': No such file or directory";
  CHECK_THROWS_WITH_AS(HDF5Source(dir / "absent.txt", data_and_label()), doctest::Contains(absent.c_str()), Error);

  test::write_file(dir / "empty.txt", "# nothing\n\n");
  CHECK_THROWS_WITH_AS(HDF5Source(dir / "empty.txt", data_and_label()), doctest::Contains("names no files"), Error);

  HDF5SourceOptions other;
  other.datasets = {"data", "target"};
  test::write_file(dir / "one.txt", "a.h5\n");
  CHECK_THROWS_WITH_AS(HDF5Source(dir / "one.txt", other),
                       doctest::Contains("has no dataset 'target' (datasets are named after the tops; it has: data, label)"),
                       Error);
  // A group where a top's dataset is read (it was "missing dataset", without the list line).
  {
    io::H5File g(dir / "g.h5", io::H5File::Mode::Create);
    g.create_group("data");
    const std::vector<float> labels = {0, 1};
    g.write_floats("label", {2}, labels.data());
  }
  test::write_file(dir / "g.txt", "g.h5\n");
  const std::string group = "g.txt:1: HDF5 file '" + dir / "g.h5" +
                            "' has a group 'data' where a dataset is read (datasets are named after the tops; it has: "
                            "data, label)";
  CHECK_THROWS_WITH_AS(HDF5Source(dir / "g.txt", data_and_label()), doctest::Contains(group.c_str()), Error);

  // Strings are no numbers, whatever on_bad_sample says.
  const char names[2][8] = {"cat", "dog"};
  io::H5Handle string_type;
  {
    const std::lock_guard<std::recursive_mutex> lock(io::hdf5_mutex());
    string_type = io::H5Handle(H5Tcopy(H5T_C_S1), H5Tclose);
    H5Tset_size(string_type.get(), 8);
  }
  const std::vector<float> rows = {1, 2, 3, 4};
  write_h5(dir / "s.h5", {{"data", {2, 2}, H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, rows.data()},
                          {"label", {2}, string_type.get(), string_type.get(), names}});
  test::write_file(dir / "s.txt", "s.h5\n");
  const std::string want = "s.txt:1: HDF5 file '" + dir / "s.h5" + "': dataset 'label' holds fixed-length string values";
  CHECK_THROWS_WITH_AS(HDF5Source(dir / "s.txt", data_and_label()), doctest::Contains(want.c_str()), Error);

  // A numpy bool array, as h5py writes it: an enum of int8 FALSE 0, TRUE 1. Its way out is named.
  io::H5Handle bool_type;
  {
    const std::lock_guard<std::recursive_mutex> lock(io::hdf5_mutex());
    bool_type = io::H5Handle(H5Tenum_create(H5T_NATIVE_INT8), H5Tclose);
    const int8_t no = 0, yes = 1;
    H5Tenum_insert(bool_type.get(), "FALSE", &no);
    H5Tenum_insert(bool_type.get(), "TRUE", &yes);
  }
  const int8_t flags[2] = {0, 1};
  write_h5(dir / "b.h5", {{"data", {2, 2}, H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, rows.data()},
                          {"label", {2}, bool_type.get(), bool_type.get(), flags}});
  test::write_file(dir / "b.txt", "b.h5\n");
  CHECK_THROWS_WITH_AS(HDF5Source(dir / "b.txt", data_and_label()),
                       doctest::Contains("dataset 'label' holds enum values; HDF5Data reads numbers (integer or "
                                         "floating point) only (a numpy bool array is stored as an enum: write it "
                                         "with .astype('uint8') or .astype('float32'))"),
                       Error);
}

TEST_CASE("HDF5: a dataset compressed with a filter libhdf5 lacks is refused at setup, naming the filter") {
  // tests/data/hdf5/lzf.h5: h5py's lzf filter on 'data', none on 'label' (see its README).
  const std::string lzf = std::string(CREMA_SOURCE_DIR) + "/tests/data/hdf5/lzf.h5";
  test::TempDir dir;
  test::write_file(dir / "list.txt", lzf + "\n");
  const std::string want = "list.txt:1: HDF5 file '" + lzf +
                           "': dataset 'data' is compressed with the 'lzf' filter (HDF5 filter 32000), which this "
                           "HDF5 library lacks; rewrite it uncompressed or with gzip";
  CHECK_THROWS_WITH_AS(HDF5Source(dir / "list.txt", data_and_label()), doctest::Contains(want.c_str()), Error);
  // A read of it elsewhere (a weights file, a mean) says the same.
  const io::H5File file(lzf, io::H5File::Mode::Read);
  std::vector<float> out(16);
  CHECK_THROWS_WITH_AS(file.read_rows("data", 0, 1, out.data()),
                       doctest::Contains("cannot read rows 0 to 1 of dataset 'data': it is compressed with the 'lzf' "
                                         "filter (HDF5 filter 32000)"),
                       Error);
  file.read_rows("label", 1, 1, out.data());
  CHECK(out[0] == 1.f);
}

TEST_CASE("HDF5 source: a row that cannot be read at run time is a BadSample naming file and row") {
  test::TempDir dir;
  write_numbered(dir / "a.h5", 0, 3);
  write_numbered(dir / "b.h5", 3, 3);
  test::write_file(dir / "list.txt", "a.h5\nb.h5\n");
  HDF5Source source(dir / "list.txt", data_and_label());
  test::write_file(dir / "b.h5", "not HDF5 any more");  // replaced after setup
  CHECK(row(source, 2).second == 2.f);
  const std::string want = "row 1 of HDF5 file '" + dir / "b.h5" + "' (" + dir / "list.txt" + ":2) cannot be read";
  CHECK_THROWS_WITH_AS(row(source, 4), doctest::Contains(want.c_str()), BadSample);
  CHECK_THROWS_AS(row(source, 5), BadSample);  // the block's other rows too
}

TEST_CASE("a label out of range met by a classifier names the HDF5 file and row it came from") {
  test::TempDir dir;
  write_numbered(dir / "a.h5", 0, 3);  // labels 0, 1, 2
  write_numbered(dir / "b.h5", 3, 3);  // labels 3, 4, 5
  test::write_file(dir / "list.txt", dir / "a.h5\n" + dir / "b.h5\n");
  // Four classes: the first batch (rows 0-3) fits, the second (rows 4, 5, 0, 1) starts with label 4.
  test::TestNet t(
      "name: n\nlayer:\n"
      "  - {name: d, type: HDF5Data, top: [data, label], hdf5_data_param: {source: '" +
          dir / "list.txt" +
          "', batch_size: 4}}\n"
          "  - {name: ip, type: InnerProduct, bottom: data, top: ip, "
          "inner_product_param: {num_output: 4}}\n"
          "  - {name: loss, type: SoftmaxWithLoss, bottom: [ip, label], top: loss}\n",
      1);
  t.net.forward(t.ctx);
  const std::string want =
      "SoftmaxWithLoss layer 'loss': label 4 is out of range; labels must be class indices in "
      "[0, 4) (set ignore_label to skip a label value); it is the label of row 1 of HDF5 file '" +
      dir / "b.h5" + "' (" + dir / "list.txt" + ":2)";
  CHECK_THROWS_WITH_AS(t.net.forward(t.ctx), want.c_str(), BadLabel);
}

TEST_CASE("HDF5Data giving an LSTM its cont: rows are timesteps, read in order, none skipped, a bad flag named") {
  // Six timesteps of two streams, read three at a time (batch_size T = 3).
  test::TempDir dir;
  const auto write_sequences = [&](const std::string& name, std::vector<float> cont) {
    std::vector<float> x(12);
    for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(i);
    io::H5File f(dir / name, io::H5File::Mode::Create);
    f.write_floats("x", {6, 2, 1}, x.data());
    f.write_floats("cont", {6, 2}, cont.data());
    test::write_file(dir / (name + ".txt"), dir / name + "\n");
    return dir / (name + ".txt");
  };
  const auto net_yaml = [](const std::string& list, const std::string& extra) {
    return "name: n\nlayer:\n"
           "  - {name: d, type: HDF5Data, top: [x, cont], hdf5_data_param: {source: '" +
           list + "', batch_size: 3" + extra +
           "}}\n"
           "  - {name: lstm, type: LSTM, bottom: [x, cont], top: h, recurrent_param: {num_output: 2}}\n";
  };
  const std::vector<float> flags = {0, 0, 1, 1, 1, 1, 1, 0, 1, 1, 1, 1};
  {
    test::CaptureLog log;
    test::TestNet t(net_yaml(write_sequences("good.h5", flags), ""), 1);
    CHECK_MESSAGE(
        log.text().find("d: its samples are the timesteps of the sequences read by LSTM 'lstm' (one of its "
                        "tops is the cont): read in order, and a bad sample is an error") != std::string::npos,
        log.text());
    for (int batch = 0; batch < 2; ++batch) {
      t.net.forward(t.ctx);
      CHECK(t.net.blob("x")->cpu_data()[0] == static_cast<float>(6 * batch));  // row 3 batch
    }
  }
  // A flag of 2 in row 4 (the second batch's t 1, stream 1): named with the row it came from.
  std::vector<float> two = flags;
  two[9] = 2.f;
  const std::string list = write_sequences("two.h5", two);
  test::TestNet bad(net_yaml(list, ""), 1);
  bad.net.forward(bad.ctx);
  const std::string want =
      "LSTM layer 'lstm': bottom 1 (cont) holds 2 at (t 1, n 1); the sequence continuation flags "
      "are 0 where a sequence starts and 1 where it continues (values between scale the carried "
      "state); it is the value of row 4 of HDF5 file '" +
      dir / "two.h5" + "' (" + list + ":1)";
  CHECK_THROWS_WITH_AS(bad.net.forward(bad.ctx), want.c_str(), BadLabel);
  // A NaN row is not skipped (its timestep would go missing from every stream), and a
  // shuffle or a skip written on the layer is warned about.
  std::vector<float> nan = flags;
  nan[8] = std::nanf("");
  test::TestNet stop(net_yaml(write_sequences("nan.h5", nan), ""), 1);
  stop.net.forward(stop.ctx);
  CHECK_THROWS_WITH_AS(stop.net.forward(stop.ctx),
                       doctest::Contains("this layer's samples are the timesteps of the sequences read by LSTM 'lstm', "
                                         "so skipping one would join the timesteps on either side of it"),
                       Error);
  test::CaptureLog log;
  test::TestNet warned(net_yaml(write_sequences("w.h5", flags), ", shuffle: true, on_bad_sample: skip"), 1);
  CHECK_MESSAGE(log.text().find("d: shuffle: true reorders the timesteps of the sequences read by LSTM 'lstm'") !=
                    std::string::npos,
                log.text());
  CHECK_MESSAGE(
      log.text().find("d: on_bad_sample: skip drops a bad row, a timestep of every stream") != std::string::npos,
      log.text());
}

TEST_CASE("HDF5 source: a row holding NaN or infinity is a BadSample naming file, row and dataset") {
  // NaN reaches no loss intact (oneDNN's ReLU turns it into 0) and breaks the weights it
  // touches: the row is refused where it is read, like a row that cannot be read.
  test::TempDir dir;
  std::vector<float> data = {0, 1, 2, 3, 4, 5, 6, 7}, label = {0, 1, 2, 3};
  data[3] = std::nanf("");                             // row 1 of data
  label[2] = -std::numeric_limits<float>::infinity();  // row 2 of label
  {
    io::H5File f(dir / "a.h5", io::H5File::Mode::Create);
    f.write_floats("data", {4, 2}, data.data());
    f.write_floats("label", {4}, label.data());
  }
  test::write_file(dir / "list.txt", "a.h5\n");
  HDF5SourceOptions small = data_and_label();
  small.block_bytes = 1;  // a block per row: the rows after a bad one read as well
  for (const HDF5SourceOptions& options : {data_and_label(), small}) {
    HDF5Source source(dir / "list.txt", options);
    CHECK(row(source, 0).first == std::vector<float>{0, 1});
    const std::string file = "HDF5 file '" + dir / "a.h5" + "' (" + dir / "list.txt" + ":1)";
    CHECK_THROWS_WITH_AS(
        row(source, 1),
        doctest::Contains(("row 1 of " + file + ": dataset 'data' holds 1 NaN or infinite value(s) of 2").c_str()),
        BadSample);
    CHECK_THROWS_WITH_AS(
        row(source, 2),
        doctest::Contains(("row 2 of " + file + ": dataset 'label' holds 1 NaN or infinite value(s) of 1").c_str()),
        BadSample);
    CHECK(row(source, 3).second == 3.f);
  }
}

TEST_CASE("HDF5Data layer: threads 4 and threads 1 give the same batches") {
  test::TempDir dir;
  const std::string list = three_files(dir);
  Context ctx1(3), ctx4(3);
  HDF5DataRun one(list, ", threads: 1, prefetch: 2", ctx1), four(list, ", threads: 4", ctx4);
  std::set<float> labels;
  for (int b = 0; b < 12; ++b) {  // a little over two epochs
    INFO("batch " << b);
    const std::vector<float> batch = one.forward(ctx1);
    CHECK(batch == four.forward(ctx4));
    if (b < 5) labels.insert(batch.end() - 4, batch.end());
  }
  CHECK(labels.size() == 20);  // 20 of the first 21 rows: no repeats within the epoch
}

TEST_CASE("HDF5Data layer: a state saved mid-epoch resumes with the same rows") {
  test::TempDir dir;
  const std::string list = three_files(dir);
  Context ctx(5);
  HDF5DataRun run(list, "", ctx);
  run.forward(ctx);
  run.forward(ctx);
  const std::string state = run.t.layer->save_state();
  std::vector<std::vector<float>> after;
  for (int b = 0; b < 6; ++b) after.push_back(run.forward(ctx));

  Context other(77);  // another seed: the saved state decides
  HDF5DataRun resumed(list, ", threads: 2", other);
  resumed.forward(other);  // already reading ahead when the state comes
  resumed.t.layer->restore_state(state);
  for (int b = 0; b < 6; ++b) CHECK(resumed.forward(other) == after[static_cast<size_t>(b)]);
  CHECK(resumed.t.layer->data_stats().batches >= 6);
}

// On a GPU the prefetcher copies each batch to the device on its own stream, and the
// layer's forward only queues a device-to-device copy: no host-to-device transfer in
// the step, and the same batches as on the CPU, also once the buffer sets (prefetch
// + 2) are reused.
TEST_CASE("GPU: HDF5Data stages its batches on the device: the CPU's batches, no host-to-device copy in a step") {
  SKIP_WITHOUT_DEVICE();
  test::TempDir dir;
  const std::string list = three_files(dir);
  Context cpu(3);
  auto gpu = Context::gpu(0, 3);
  HDF5DataRun on_cpu(list, ", threads: 2, prefetch: 2", cpu), on_gpu(list, ", threads: 2, prefetch: 2", *gpu);
  for (int b = 0; b < 12; ++b) {
    INFO("batch " << b);
    const long h2d = SyncedMemory::host_to_device_copies();
    on_gpu.t.layer->forward(*gpu, {}, {&on_gpu.data, &on_gpu.label});
    CHECK(SyncedMemory::host_to_device_copies() == h2d);
    CHECK(on_gpu.data.data_memory()->head() == SyncedMemory::Head::AtGpu);
    std::vector<float> got(on_gpu.data.cpu_data(), on_gpu.data.cpu_data() + on_gpu.data.count());
    got.insert(got.end(), on_gpu.label.cpu_data(), on_gpu.label.cpu_data() + on_gpu.label.count());
    CHECK(got == on_cpu.forward(cpu));
  }
  // A resume on the device: the saved state restarts the staging too.
  const std::string state = on_gpu.t.layer->save_state();
  const std::vector<float> next = on_cpu.forward(cpu);
  on_gpu.t.layer->restore_state(state);
  CHECK(on_gpu.forward(*gpu) == next);
}
