#include <filesystem>
#include <vector>

#include "engine/error.hpp"
#include "io/hdf5.hpp"
#include "layer_test_util.hpp"
#include "test_util.hpp"

using namespace crema;
using test::set_values;

TEST_CASE("HDF5Output appends every batch to data and label, and renames the file into place at the end") {
  test::TempDir dir;
  const std::string path = dir / "out.h5";
  {
    auto t = test::make_layer("{type: HDF5Output, hdf5_output_param: {file_name: '" + path + "'}}");
    Blob data({2, 3}), label({2});
    Context ctx(1);
    t.layer->setup(ctx, {&data, &label}, {});
    for (int batch = 0; batch < 2; ++batch) {
      for (int i = 0; i < 6; ++i) data.mutable_cpu_data()[i] = static_cast<float>(batch * 6 + i);
      set_values(label, {static_cast<float>(batch * 2), static_cast<float>(batch * 2 + 1)});
      t.layer->forward(ctx, {&data, &label}, {});
    }
    // Until the layer is done, the rows live in a temporary file.
    CHECK_FALSE(std::filesystem::exists(path));
  }
  REQUIRE(std::filesystem::exists(path));
  for (const auto& entry : std::filesystem::directory_iterator(dir.path()))
    CHECK(entry.path().filename() == "out.h5");  // no temporary file left behind
  io::H5File f(path, io::H5File::Mode::Read);
  std::vector<int> shape;
  const std::vector<float> data = f.read_floats("data", &shape);
  CHECK(shape == std::vector<int>{4, 3});
  for (int i = 0; i < 12; ++i) CHECK(data[static_cast<size_t>(i)] == static_cast<float>(i));
  const std::vector<float> label = f.read_floats("label", &shape);
  CHECK(shape == std::vector<int>{4});
  CHECK(label == std::vector<float>{0, 1, 2, 3});
}

TEST_CASE("HDF5Output errors: missing folder, a folder at the name, one file twice, batch sizes, changing row shapes") {
  test::TempDir dir;
  CHECK_THROWS_WITH_AS(test::make_layer("{type: HDF5Output}"), doctest::Contains("file_name"), ConfigError);
  Context ctx(1);
  {
    // At setup, not when the spec is read (`crema convert` reads it where the folder may not be).
    auto t = test::make_layer("{type: HDF5Output, hdf5_output_param: {file_name: '" + (dir / "no/such/out.h5") + "'}}");
    Blob data({2, 3}), label({2});
    const std::string expected =
        "hdf5_output_param.file_name: folder '" + (dir / "no/such") + "' does not exist; create it or change file_name";
    CHECK_THROWS_WITH_AS(t.layer->setup(ctx, {&data, &label}, {}), doctest::Contains(expected.c_str()), ConfigError);
  }
  {
    // A folder at the name: said at setup (the run used to end with status 0, its rows lost).
    std::filesystem::create_directory(dir / "taken.h5");
    auto t = test::make_layer("{type: HDF5Output, hdf5_output_param: {file_name: '" + (dir / "taken.h5") + "'}}");
    Blob data({2, 3}), label({2});
    const std::string expected = "hdf5_output_param.file_name: cannot write '" + (dir / "taken.h5") +
                                 "': a directory of that name is in the way; remove it or choose another name";
    CHECK_THROWS_WITH_AS(t.layer->setup(ctx, {&data, &label}, {}), doctest::Contains(expected.c_str()), ConfigError);
  }
  {
    // Two layers writing one file.
    auto first = test::make_layer("{type: HDF5Output, hdf5_output_param: {file_name: '" + (dir / "one.h5") + "'}}");
    auto second = test::make_layer("{type: HDF5Output, hdf5_output_param: {file_name: '" + (dir / "one.h5") + "'}}");
    Blob data({2, 3}), label({2});
    first.layer->setup(ctx, {&data, &label}, {});
    CHECK_THROWS_WITH_AS(second.layer->setup(ctx, {&data, &label}, {}),
                         doctest::Contains("another HDF5Output layer of this run writes the same file"), ConfigError);
  }
  {
    auto t = test::make_layer("{type: HDF5Output, hdf5_output_param: {file_name: '" + (dir / "a.h5") + "'}}");
    Blob data({2, 3}), label({3});
    CHECK_THROWS_WITH_AS(t.layer->setup(ctx, {&data, &label}, {}), doctest::Contains("same batch size"), ConfigError);
  }
  {
    auto t = test::make_layer("{type: HDF5Output, hdf5_output_param: {file_name: '" + (dir / "b.h5") + "'}}");
    Blob data({2, 3}), label({2});
    t.layer->setup(ctx, {&data, &label}, {});
    t.layer->forward(ctx, {&data, &label}, {});
    data.reshape({2, 4});
    CHECK_THROWS_WITH_AS(t.layer->forward(ctx, {&data, &label}, {}),
                         doctest::Contains("bottom 0 has rows of shape 4 (4) but had 3 (3): an HDF5 dataset holds rows "
                                           "of one shape"),
                         Error);
  }
}
