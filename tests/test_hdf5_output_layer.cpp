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
    // Until the command is done with the layer, the rows live in a temporary file.
    CHECK_FALSE(std::filesystem::exists(path));
    t.layer->finish();
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
    // Two layers writing one file; one layer in two nets (no include rule) gets the rule to write.
    const std::string one = "hdf5_output_param: {file_name: '" + (dir / "one.h5") + "'}}";
    auto first = test::make_layer("{name: a, type: HDF5Output, " + one);
    // Spelt otherwise, the same file.
    auto second = test::make_layer("{name: b, type: HDF5Output, hdf5_output_param: {file_name: '" +
                                   dir.path().string() + "/./one.h5'}}");
    auto again = test::make_layer("{name: a, type: HDF5Output, " + one, Phase::TEST);
    Blob data({2, 3}), label({2});
    first.layer->setup(ctx, {&data, &label}, {});
    CHECK_THROWS_WITH_AS(second.layer->setup(ctx, {&data, &label}, {}),
                         doctest::Contains(("HDF5Output layer 'a' of this run writes '" + dir.path().string() +
                                            "/./one.h5" + "' too; give each layer its own file_name")
                                               .c_str()),
                         ConfigError);
    CHECK_THROWS_WITH_AS(again.layer->setup(ctx, {&data, &label}, {}),
                         doctest::Contains(("layer 'a' is in more than one net of this run (the TRAIN net and a "
                                            "TEST net, or two TEST nets), and each would write '" +
                                            (dir / "one.h5") + "'; keep it in one: include: {phase: TEST} (or TRAIN)")
                                               .c_str()),
                         ConfigError);
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

TEST_CASE("HDF5Output leaves an earlier file as it was when the command fails or keeps no outputs") {
  test::TempDir dir;
  const std::string path = dir / "out.h5";
  const auto earlier = [&] {
    io::H5File f(path, io::H5File::Mode::Create);
    const float value = 42.f;
    f.write_floats("data", {1}, &value);
  };
  const auto holds_earlier = [&] {
    io::H5File f(path, io::H5File::Mode::Read);
    std::vector<int> shape;
    return f.read_floats("data", &shape) == std::vector<float>{42.f};
  };
  const auto files = [&] {
    size_t n = 0;
    for ([[maybe_unused]] const auto& entry : std::filesystem::directory_iterator(dir.path())) ++n;
    return n;
  };
  earlier();
  Context ctx(1);
  Blob data({2, 3}), label({2});
  const std::string yaml = "{name: out, type: HDF5Output, hdf5_output_param: {file_name: '" + path + "'}}";
  {
    // Set up, then a later layer's setup failed: nothing written, nothing left.
    auto t = test::make_layer(yaml);
    t.layer->setup(ctx, {&data, &label}, {});
  }
  CHECK(holds_earlier());
  CHECK(files() == 1);
  {
    // crema time: its passes are no outputs.
    auto t = test::make_layer(yaml);
    t.layer->setup(ctx, {&data, &label}, {});
    t.layer->forward(ctx, {&data, &label}, {});
    t.layer->abandon();
  }
  CHECK(holds_earlier());
  CHECK(files() == 1);
  {
    // A command that failed after some batches: the rows are kept aside, and said where.
    test::CaptureLog log;
    {
      auto t = test::make_layer(yaml);
      t.layer->setup(ctx, {&data, &label}, {});
      t.layer->forward(ctx, {&data, &label}, {});
    }
    CHECK_MESSAGE(
        log.text().find("out: the command ended before it was done with the net, so '" + path +
                        "' is left as it was; the 2 row(s) written are in '" + path + ".tmp-") != std::string::npos,
        log.text());
  }
  CHECK(holds_earlier());
  CHECK(files() == 2);
}
