// Training metrics: the CSV files and TensorBoard events written beside the snapshots
// (io/metrics.hpp, io/tensorboard.hpp), their encoding against TensorBoard's own writer,
// and what a resumed run does to them.
#include <doctest/doctest.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include <algorithm>
#include <cmath>
#include <csignal>
#include <filesystem>
#include <limits>
#include <sstream>

#include "engine/solver.hpp"
#include "io/files.hpp"
#include "io/metrics.hpp"
#include "io/tensorboard.hpp"
#include "io/yaml_config.hpp"
#include "solver_test_util.hpp"
#include "test_util.hpp"

using namespace crema;
namespace fs = std::filesystem;
using test::crema_cmd;

namespace {

MetricsRow row(int iter, int test_net, std::vector<std::pair<std::string, std::optional<double>>> values) {
  return MetricsRow{iter, test_net, 1796322488.0 + iter, std::move(values)};
}

// The CSV without the columns that differ between runs (times and speeds).
std::string stable_columns(const std::string& csv) {
  std::stringstream in(csv);
  std::string line, out;
  std::vector<bool> keep;
  while (std::getline(in, line)) {
    std::vector<std::string> cells;
    std::stringstream fields(line);
    for (std::string c; std::getline(fields, c, ',');) cells.push_back(c);
    if (line.back() == ',') cells.emplace_back();
    if (keep.empty())
      for (const auto& c : cells) keep.push_back(c != "wall_time" && c != "iter_per_s" && c != "data_wait_ms");
    for (size_t i = 0; i < cells.size(); ++i)
      if (i < keep.size() && keep[i]) out += cells[i] + ",";
    out += "\n";
  }
  return out;
}

bool tensorboard_installed() { return test::run(test::reference_python() + " -c 'import tensorboard'").status == 0; }

}  // namespace

TEST_CASE("TensorBoard records: CRC-32C's check value, and byte for byte what TensorBoard's own writer makes") {
  CHECK(io::crc32c("123456789") == 0xe3069283u);  // the published CRC-32C check value
  CHECK(io::crc32c("") == 0u);
  // Four records made by TensorBoard's protobuf classes and RecordWriter
  // (scripts/golden/make_tensorboard_golden.py).
  const std::string golden = test::read_file(test::source_dir() + "/tests/data/golden/tensorboard_events.bin");
  REQUIRE(golden.size() == 220);
  const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
  const std::string ours =
      io::tf_record(io::file_version_event(1796322488.5)) + io::tf_record(io::session_start_event(1796322489.25, 200)) +
      io::tf_record(io::scalars_event(1796322490.0, 0, {{"train/loss", 2.387383f}, {"train/lr", 0.01f}})) +
      io::tf_record(io::scalars_event(1796322491.125, 300, {{"test/accuracy[3]", 0.815f}, {"test/x", nan}, {"test/y", -inf}}));
  CHECK(ours == golden);
}

TEST_CASE("the solver metrics key takes a list of kinds, one kind, or none, and a wrong kind names its line") {
  const std::string net = "net: {name: n, layer: [{name: d, type: Input, top: d, input_param: {shape: {dim: [1]}}}]}\n"
                          "base_lr: 0.1\nmax_iter: 10\n";
  auto parse = [&](const std::string& rest) { return SolverSpec::parse(io::parse_yaml(net + rest, "solver.yaml")); };
  const SolverSpec plain = parse("");
  CHECK((plain.metrics_csv && plain.metrics_tensorboard));
  const SolverSpec csv = parse("metrics: csv\n");
  CHECK((csv.metrics_csv && !csv.metrics_tensorboard));
  const SolverSpec tb = parse("metrics: [tensorboard]\n");
  CHECK((!tb.metrics_csv && tb.metrics_tensorboard));
  const SolverSpec none = parse("metrics: none\n");
  CHECK((!none.metrics_csv && !none.metrics_tensorboard));
  CHECK_THROWS_WITH_AS(parse("metrics: [csv, tensorbord]\n"),
                       doctest::Contains("solver.yaml:4:16: metrics[1]: unknown value 'tensorbord' (did you mean 'tensorboard'?)"),
                       ConfigError);
  CHECK_THROWS_WITH_AS(parse("metrics: [none, csv]\n"), doctest::Contains("none cannot be combined"), ConfigError);
  // An empty list or a kind twice is a slip, not a choice.
  CHECK_THROWS_WITH_AS(parse("metrics: []\n"), doctest::Contains("write metrics: none to write no metrics files"),
                       ConfigError);
  CHECK_THROWS_WITH_AS(parse("metrics: [csv, csv]\n"),
                       doctest::Contains("solver.yaml:4:16: metrics[1]: metrics: csv is listed twice"), ConfigError);
}

TEST_CASE("metrics CSV: a header, a row per display, empty cells, nan and inf, quoted names") {
  test::TempDir dir;
  const std::string prefix = dir / "run";
  {
    io::MetricsWriter w(prefix, true, false, 2, 0, false);
    w.write(row(0, -1, {{"smoothed_loss", 2.5}, {"lr", 0.01}, {"iter_per_s", std::nullopt}, {"a,b", 1.0}}));
    w.write(row(10, -1, {{"smoothed_loss", std::nan("")}, {"lr", 0.01}, {"iter_per_s", 12.5}, {"a,b", -INFINITY}}));
    w.write(row(10, 1, {{"accuracy", 0.75}}));
  }
  CHECK(test::read_file(prefix + ".train.csv") ==
        "iter,wall_time,smoothed_loss,lr,iter_per_s,\"a,b\"\n"
        "0,1796322488.000,2.5,0.01,,1\n"
        "10,1796322498.000,nan,0.01,12.5,-inf\n");
  CHECK(test::read_file(prefix + ".test1.csv") == "iter,wall_time,accuracy\n10,1796322498.000,0.75\n");
  CHECK_FALSE(fs::exists(prefix + ".test.csv"));  // test net #0 wrote no row
  CHECK_FALSE(fs::exists(io::tensorboard_dir(prefix)));
}

TEST_CASE("a resumed run keeps the rows before its iteration and drops the rest, a row cut short included") {
  test::TempDir dir;
  const std::string prefix = dir / "run", path = prefix + ".train.csv";
  {
    io::MetricsWriter w(prefix, true, false, 0, 0, false);
    for (int it = 0; it <= 30; it += 10) w.write(row(it, -1, {{"smoothed_loss", it}}));
  }
  test::write_file(path, test::read_file(path) + "40,1796322528.0");  // killed in the middle of a row
  {
    io::MetricsWriter w(prefix, true, false, 0, 20, true);  // resumed from the snapshot at 20
    CHECK(test::read_file(path) == "iter,wall_time,smoothed_loss\n0,1796322488.000,0\n10,1796322498.000,10\n");
    w.write(row(20, -1, {{"smoothed_loss", 21}}));
  }
  CHECK(test::read_file(path) ==
        "iter,wall_time,smoothed_loss\n0,1796322488.000,0\n10,1796322498.000,10\n20,1796322508.000,21\n");

  // Resumed with other columns (an output added to the net): the earlier rows move aside.
  {
    io::MetricsWriter w(prefix, true, false, 0, 20, true);
    w.write(row(20, -1, {{"smoothed_loss", 22}, {"accuracy", 0.5}}));
  }
  CHECK(test::read_file(path) == "iter,wall_time,smoothed_loss,accuracy\n20,1796322508.000,22,0.5\n");
  CHECK(test::read_file(prefix + ".train.until_iter_20.csv") ==
        "iter,wall_time,smoothed_loss\n0,1796322488.000,0\n10,1796322498.000,10\n");

  // Saved again with CRLF line ends (a spreadsheet on Windows), same columns: the rows go on, in
  // CRLF (it was moved aside as if its columns had changed).
  test::write_file(path, "iter,wall_time,smoothed_loss,accuracy\r\n20,1796322508.000,22,0.5\r\n");
  {
    io::MetricsWriter w(prefix, true, false, 0, 30, true);
    w.write(row(30, -1, {{"smoothed_loss", 23}, {"accuracy", 0.75}}));
  }
  CHECK(test::read_file(path) ==
        "iter,wall_time,smoothed_loss,accuracy\r\n20,1796322508.000,22,0.5\r\n30,1796322518.000,23,0.75\r\n");
  CHECK_FALSE(fs::exists(prefix + ".train.until_iter_30.csv"));

  // A fresh run on the same prefix starts anew.
  {
    io::MetricsWriter w(prefix, true, false, 0, 0, false);
    CHECK_FALSE(fs::exists(path));
  }
}

TEST_CASE("the metrics line names only the CSV files that will get rows") {
  test::TempDir dir;
  io::MetricsWriter w(dir / "run", true, false, 2, 0, false);
  const auto said = [&](bool train_rows, bool test_rows) {
    test::CaptureLog log;
    w.announce(train_rows, test_rows);
    return log.text();
  };
  const auto contains = [](const std::string& text, const std::string& part) {
    return text.find(part) != std::string::npos;
  };
  const std::string train = dir / "run.train.csv", test0 = dir / "run.test.csv", test1 = dir / "run.test1.csv";
  CHECK(contains(said(true, true), "Metrics: " + train + ", " + test0 + ", " + test1 + "\n"));
  // display: 0 (the files were named, and never made).
  CHECK(contains(said(false, true), "Metrics: " + test0 + ", " + test1 + "\n"));
  CHECK(contains(said(true, false), "Metrics: " + train + "\n"));
  CHECK(contains(said(false, false), "Metrics: no CSV rows come in this run (display: 0, and no test_interval)"));
  // Rows meant for a file already said to be left out (a file of the user's there): no line
  // that blames display.
  test::write_file(dir / "mine.train.csv", "my,notes\n");
  io::MetricsWriter mine(dir / "mine", true, false, 0, 0, false);
  test::CaptureLog log;
  mine.announce(true, false);
  CHECK_MESSAGE(!contains(log.text(), "Metrics:"), log.text());
}

TEST_CASE("a metrics file that cannot be written is reported once and training goes on") {
  test::TempDir dir;
  auto warnings = [](const test::CaptureLog& log) { return test::count_of(log.text(), "cannot write metrics to"); };
  {
    test::CaptureLog log;
    io::MetricsWriter w(dir / "missing/run", true, false, 0, 0, false);  // its directory does not exist
    CHECK_NOTHROW(w.write(row(0, -1, {{"smoothed_loss", 1}})));
    CHECK_NOTHROW(w.write(row(10, -1, {{"smoothed_loss", 1}})));
    CHECK(warnings(log) == 1);
    CHECK(log.text().find("No such file or directory") != std::string::npos);
  }
  {
    // A full disk: past 64 bytes every write of this process fails (EFBIG, SIGXFSZ ignored).
    test::CaptureLog log;
    io::MetricsWriter w(dir / "run", true, false, 0, 0, false);
    rlimit saved{};
    ::getrlimit(RLIMIT_FSIZE, &saved);
    const auto previous_handler = std::signal(SIGXFSZ, SIG_IGN);
    rlimit small = saved;
    small.rlim_cur = 64;
    ::setrlimit(RLIMIT_FSIZE, &small);
    for (int it = 0; it < 4; ++it) CHECK_NOTHROW(w.write(row(it * 10, -1, {{"smoothed_loss", 1}})));
    ::setrlimit(RLIMIT_FSIZE, &saved);
    std::signal(SIGXFSZ, previous_handler);
    CHECK(warnings(log) == 1);
    CHECK(log.text().find("File too large") != std::string::npos);
    CHECK(test::read_file(dir / "run.train.csv").rfind("iter,wall_time,smoothed_loss\n0,", 0) == 0);
  }
  for (const bool resumed : {false, true}) {
    // A file of the user's under the name, without crema's header: it was replaced by a fresh
    // run (and moved aside by a resume). It stays as it is, and no rows go there.
    test::CaptureLog log;
    const std::string mine = dir / (resumed ? "mine_resumed.test.csv" : "mine.train.csv");
    test::write_file(mine, "my,own,data\n1,2,3\n");
    io::MetricsWriter w(dir / (resumed ? "mine_resumed" : "mine"), true, false, 1, resumed ? 20 : 0, resumed);
    w.announce(true, true);  // names the run's other file only
    const std::string text = log.text(), line = text.substr(text.find("Metrics: "));
    CHECK_MESSAGE(line.substr(0, line.find('\n')).find(mine) == std::string::npos, line);
    CHECK_NOTHROW(w.write(row(20, -1, {{"smoothed_loss", 1}})));
    CHECK_NOTHROW(w.write(row(20, 0, {{"accuracy", 0.5}})));
    CHECK(test::read_file(mine) == "my,own,data\n1,2,3\n");
    CHECK(warnings(log) == 1);
    CHECK_MESSAGE(log.text().find("cannot write metrics to " + mine + ": a file crema did not write is there") !=
                      std::string::npos,
                  log.text());
    const std::string other = dir / (resumed ? "mine_resumed.train.csv" : "mine.test.csv");
    CHECK(test::read_file(other).rfind("iter,wall_time,", 0) == 0);  // the run's other file is written
    for (const auto& e : fs::directory_iterator(dir.path()))
      CHECK_MESSAGE(e.path().filename().string().find("until_iter") == std::string::npos, e.path());
  }
  {
    // A FIFO where the file should be: opening it would wait for a reader, so it is left alone.
    test::CaptureLog log;
    REQUIRE(::mkfifo((dir / "pipe.train.csv").c_str(), 0644) == 0);
    io::MetricsWriter w(dir / "pipe", true, false, 0, 0, true);
    CHECK_NOTHROW(w.write(row(0, -1, {{"smoothed_loss", 1}})));
    CHECK(log.text().find("not a regular file") != std::string::npos);
  }
}

TEST_CASE("metrics rows: the log's numbers, outputs by name, an element per column, no clash with the fixed columns") {
  test::QuietLog quiet;
  auto job = test::make_job(R"(
net:
  name: n
  layer:
    - {name: x, type: DummyData, top: [x, y], dummy_data_param: {shape: [{dim: [4, 3]}, {dim: [4, 2]}], data_filler: {type: gaussian}}}
    - {name: fc, type: InnerProduct, bottom: x, top: fc, inner_product_param: {num_output: 2, weight_filler: {type: gaussian}}}
    - {name: lr, type: EuclideanLoss, bottom: [fc, y], top: lr}
    - {name: pair, type: Reduction, bottom: y, top: pair, reduction_param: {axis: 1}}
base_lr: 0.01
max_iter: 4
display: 2
test_iter: 1
test_interval: 2
test_compute_loss: true
)");
  std::vector<MetricsRow> rows;
  job->solver->on_metrics = [&rows](const MetricsRow& r) { rows.push_back(r); };
  job->solver->solve();
  auto names = [](const MetricsRow& r) {
    std::vector<std::string> n;
    for (const auto& [name, value] : r.values) n.push_back(name);
    return n;
  };
  // Test passes at 0, 2, 4 and displays at 0, 2 plus the final loss line at 4, in log order.
  REQUIRE(rows.size() == 6);
  const std::vector<int> iters = {0, 0, 2, 2, 4, 4}, nets = {0, -1, 0, -1, 0, -1};
  for (size_t i = 0; i < rows.size(); ++i) {
    CHECK(rows[i].iter == iters[i]);
    CHECK(rows[i].test_net == nets[i]);
  }
  const std::vector<std::string> train = {"smoothed_loss", "lr", "iter_per_s", "data_wait_ms", "output_lr", "pair[0]",
                                          "pair[1]", "pair[2]", "pair[3]"};
  CHECK(names(rows[1]) == train);
  CHECK(names(rows[5]) == train);
  CHECK(names(rows[0]) == std::vector<std::string>{"test_loss", "output_lr", "pair[0]", "pair[1]", "pair[2]", "pair[3]"});
  // The displayed numbers: the rate, the smoothed loss the log printed; nothing to time at first.
  CHECK(rows[1].values[1].second == doctest::Approx(0.01));
  CHECK(rows[1].values[0].second == doctest::Approx(job->solver->displayed_losses()[0].second));
  CHECK_FALSE(rows[1].values[2].second.has_value());
  CHECK(rows[3].values[2].second.has_value());
  CHECK_FALSE(rows[5].values[1].second.has_value());  // the final loss line has no update
}

TEST_CASE("the metrics files of a stopped and resumed run equal an uninterrupted run's") {
  test::ToyJob job(60);
  const auto straight = test::run(crema_cmd("train " + job.solver + " --set snapshot_prefix=" + (job.dir / "a/toy")));
  REQUIRE_MESSAGE(straight.status == 0, straight.output);
  // A run that gets to 50 (snapshots every 20) and dies in the middle of writing a row...
  const auto first = test::run(crema_cmd("train " + job.solver + " --set max_iter=50 --set snapshot=20 --set snapshot_prefix=" +
                                         (job.dir / "b/toy")));
  REQUIRE_MESSAGE(first.status == 0, first.output);
  test::write_file(job.dir / "b/toy.train.csv", test::read_file(job.dir / "b/toy.train.csv") + "55,17");
  // ... is resumed from its snapshot at 40 and finishes.
  const auto resumed = test::run(crema_cmd("train " + job.solver + " --set snapshot_prefix=" + (job.dir / "b/toy") +
                                           " --snapshot " + (job.dir / "b/toy_iter_40.solverstate.h5")));
  REQUIRE_MESSAGE(resumed.status == 0, resumed.output);
  CHECK(resumed.output.find("toy.train.csv: kept the 8 rows before iteration 40") != std::string::npos);
  for (const std::string file : {"toy.train.csv", "toy.test.csv"}) {
    const std::string a = test::read_file(job.dir / ("a/" + file)), b = test::read_file(job.dir / ("b/" + file));
    INFO(file);
    CHECK(stable_columns(a) == stable_columns(b));
    CHECK(std::count(a.begin(), a.end(), '\n') == (file == "toy.train.csv" ? 14 : 5));  // header + 0..60 by 5 + final; 0..60 by 20
  }
  // The toy net's outputs: the train file has the loss, the test file accuracy and loss.
  CHECK(test::read_file(job.dir / "a/toy.train.csv").rfind("iter,wall_time,smoothed_loss,lr,iter_per_s,data_wait_ms,loss\n", 0) == 0);
  CHECK(test::read_file(job.dir / "a/toy.test.csv").rfind("iter,wall_time,accuracy,loss\n", 0) == 0);

}

TEST_CASE("TensorBoard shows a resumed run's metrics exactly, the replaced events purged") {
  test::ToyJob job(30);
  const auto first = test::run(crema_cmd("train " + job.solver + " --set snapshot=10"));
  REQUIRE_MESSAGE(first.status == 0, first.output);
  const auto resumed = test::run(crema_cmd("train " + job.solver + " --snapshot " + (job.dir / "snap/toy_iter_10.solverstate.h5")));
  REQUIRE_MESSAGE(resumed.status == 0, resumed.output);
  size_t event_files = 0;
  for (const auto& e : fs::directory_iterator(job.dir / "snap/toy.tensorboard"))
    event_files += e.path().filename().string().rfind("events.out.tfevents.", 0) == 0;
  CHECK(event_files == 2);
  if (!tensorboard_installed()) {
    MESSAGE("SKIPPED: reading the events with TensorBoard needs its Python package (scripts/install_test_references.sh)");
    return;
  }
  // The first run's events from iteration 10 on are purged by the resumed run's SessionLog
  // START, so TensorBoard shows one value per CSV cell, the same float.
  const auto check = test::run(test::reference_python() + " " + test::source_dir() + "/tests/tensorboard_check.py " +
                               (job.dir / "snap/toy.tensorboard") + " train=" + (job.dir / "snap/toy.train.csv") +
                               " test=" + (job.dir / "snap/toy.test.csv"));
  CHECK_MESSAGE(check.status == 0, check.output);
  CHECK(check.output.find("values compared; agree") != std::string::npos);
  // TensorBoard's default loader ignores SessionLog: the first run's file itself must have
  // lost its events from iteration 10 on, or its curve would show them beside the new ones.
  const auto raw = test::run(test::reference_python() + " " + test::source_dir() +
                             "/tests/tensorboard_check.py --raw " + (job.dir / "snap/toy.tensorboard") +
                             " train=" + (job.dir / "snap/toy.train.csv") + " test=" + (job.dir / "snap/toy.test.csv"));
  CHECK_MESSAGE(raw.status == 0, raw.output);
  CHECK(raw.output.find("values compared; agree") != std::string::npos);
}

TEST_CASE("keep_events_before cuts an events file back to a step, a record cut short included") {
  test::TempDir dir;
  std::string path;
  {
    io::EventFileWriter writer(dir.path().string(), 1796322488.0);
    path = writer.path();
    writer.write_event(io::session_start_event(1796322488.0, 0));
    for (int step : {0, 5, 10, 15})
      writer.write_event(io::scalars_event(1796322489.0 + step, step, {{"train/loss", 1.0f / (step + 1)}}));
  }
  const std::string whole = test::read_file(path);
  const std::string fifteen = io::tf_record(io::scalars_event(1796322504.0, 15, {{"train/loss", 1.0f / 16}}));
  const std::string ten = io::tf_record(io::scalars_event(1796322499.0, 10, {{"train/loss", 1.0f / 11}}));
  REQUIRE(whole.size() > ten.size() + fifteen.size());
  const std::string before_ten = whole.substr(0, whole.size() - ten.size() - fifteen.size());
  CHECK(io::keep_events_before(path, 16) == 0);  // nothing at 16 or later: untouched
  CHECK(test::read_file(path) == whole);
  // A kill in the middle of a record leaves part of one: of its header, all of the header
  // (whose checksum then holds) and part of the event, all but the event's checksum.
  for (const size_t part : {size_t{9}, size_t{12}, size_t{13}, size_t{15}, size_t{20}, fifteen.size() - 1}) {
    INFO("a record cut after " << part << " bytes");
    test::write_file(path, whole + fifteen.substr(0, part));
    CHECK(io::keep_events_before(path, 16) == 1);  // only the part
    CHECK(test::read_file(path) == whole);
    test::write_file(path, whole + fifteen.substr(0, part));
    CHECK(io::keep_events_before(path, 10) == 3);  // 10, 15 and the part
    CHECK(test::read_file(path) == before_ten);
  }
  CHECK(io::keep_events_before(path, 10) == 0);
  // A record whose bytes changed with all of them there is damage, not a kill's cut: the
  // events after it may be good, so the file is left as it is.
  for (const size_t at : {size_t{3}, size_t{10}, size_t{20}, ten.size() - 2}) {
    INFO("a byte changed at " << at);
    std::string damaged = before_ten + ten + fifteen;
    damaged[before_ten.size() + at] ^= 0x01;
    test::write_file(path, damaged);
    std::string error;
    try {
      io::keep_events_before(path, 12);
    } catch (const Error& e) {
      error = e.what();
    }
    CHECK_MESSAGE(error.find("is damaged at byte " + std::to_string(before_ten.size()) + " (") != std::string::npos,
                  error);
    CHECK(test::read_file(path) == damaged);
  }
  test::write_file(path, before_ten);
  // The rewrite's temporary name has no "tfevents" in it (TensorBoard would read it).
  CHECK(io::regular_file_names(dir.path().string()).size() == 1);
  // Nothing left before the step but the version and SessionLog events: the file goes.
  CHECK(io::keep_events_before(path, 0) == 4);
  CHECK_FALSE(fs::exists(path));

  // MetricsWriter: a resumed run cuts the earlier files back to its iteration, a fresh run
  // removes them (as it does the CSV files).
  const std::string prefix = dir / "run";
  const auto events_files = [&] {
    std::vector<std::string> files;
    for (const std::string& name : io::regular_file_names(prefix + ".tensorboard")) files.push_back(name);
    std::sort(files.begin(), files.end());
    return files;
  };
  {
    io::MetricsWriter w(prefix, false, true, 0, 0, false);
    for (int it = 0; it <= 30; it += 10) w.write(row(it, -1, {{"smoothed_loss", it}}));
  }
  REQUIRE(events_files().size() == 1);
  const std::string first = prefix + ".tensorboard/" + events_files()[0];
  const size_t first_size = test::read_file(first).size();
  {
    io::MetricsWriter w(prefix, false, true, 0, 20, true);
    CHECK(test::read_file(first).size() < first_size);  // 20 and 30 gone
    CHECK(io::keep_events_before(first, 20) == 0);
    w.write(row(20, -1, {{"smoothed_loss", 21}}));
  }
  CHECK(events_files().size() == 2);
  {
    io::MetricsWriter w(prefix, false, true, 0, 0, false);
    REQUIRE(events_files().size() == 1);  // its own, which may reuse the first's name (the same second)
    CHECK(test::read_file(prefix + ".tensorboard/" + events_files()[0]).find("train/smoothed_loss") ==
          std::string::npos);
  }
}

TEST_CASE(
    "metrics_files_on_disk lists a prefix's CSV files (crema's by their header), their asides and crema's events files "
    "only") {
  test::TempDir dir;
  fs::create_directories(dir / "run.tensorboard");
  for (const char* name :
       {"run.train.csv", "run.test.csv", "run.test1.csv", "run.train.until_iter_20.csv", "run.test.until_iter_20.2.csv",
        "run.tensorboard/events.out.tfevents.1796322488.host.7.crema",
        // Not the run's metrics: another prefix, other files, another writer's events.
        "run_2.train.csv", "run.train.csv.bak", "run.classes.txt", "run_iter_5.caffemodel.h5",
        "run.tensorboard/events.out.tfevents.1796322488.host.v2", "run.tensorboard/notes.txt"})
    test::write_file(dir / name, std::string(name).ends_with(".csv") ? "iter,wall_time,loss\n1,0.5,2\n" : "x");
  // Under a metrics name but not crema's (no header of its), and one cut short before its header.
  test::write_file(dir / "run.test7.csv", "my notes\n");
  test::write_file(dir / "run.test3.csv", "");
  const auto files = io::metrics_files_on_disk(dir / "run");
  const std::vector<std::string> want = {dir / "run.tensorboard/events.out.tfevents.1796322488.host.7.crema",
                                         dir / "run.test.csv",
                                         dir / "run.test.until_iter_20.2.csv",
                                         dir / "run.test1.csv",
                                         dir / "run.test3.csv",
                                         dir / "run.train.csv",
                                         dir / "run.train.until_iter_20.csv"};
  CHECK(files == want);
  CHECK(io::metrics_files_on_disk(dir / "none").empty());
}
