// The crema executable driven as a user drives it: training, exact resume, signals,
// the test and time subcommands, and the errors people make.
#include <dlfcn.h>
#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/stat.h>

#include <cctype>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <opencv2/imgcodecs.hpp>
#include <regex>
#include <sstream>
#include <thread>

#include "engine/cuda/cuda_runtime_api.hpp"
#include "engine/math.hpp"
#include "engine/net.hpp"
#include "engine/solver.hpp"
#include "io/checkpoint.hpp"
#include "io/files.hpp"
#include "io/hdf5.hpp"
#include "io/job_config.hpp"
#include "test_util.hpp"

using namespace crema;
namespace fs = std::filesystem;

namespace {

using test::crema_cmd;

// "Iteration N ..., loss = X" lines: N -> the printed X.
std::map<int, std::string> printed_losses(const std::string& log) {
  std::map<int, std::string> out;
  static const std::regex re(R"(Iteration (\d+)[^\n]*, loss = ([-0-9.eE+naif]+))");
  for (auto it = std::sregex_iterator(log.begin(), log.end(), re); it != std::sregex_iterator(); ++it)
    out[std::stoi((*it)[1])] = (*it)[2];
  return out;
}

void check_same_weights(const std::string& a, const std::string& b) {
  const auto wa = io::load_weights(a), wb = io::load_weights(b);
  REQUIRE(wa.size() == wb.size());
  size_t compared = 0;
  for (size_t i = 0; i < wa.size(); ++i) {
    REQUIRE(wa[i].layer == wb[i].layer);
    REQUIRE(wa[i].blobs.size() == wb[i].blobs.size());
    for (size_t j = 0; j < wa[i].blobs.size(); ++j) {
      const Blob& x = wa[i].blobs[j].second;
      const Blob& y = wb[i].blobs[j].second;
      REQUIRE(x.shape() == y.shape());
      int differing = 0;
      for (int k = 0; k < x.count(); ++k) differing += x.cpu_data()[k] != y.cpu_data()[k];
      INFO("layer " << wa[i].layer << " blob " << j);
      CHECK(differing == 0);
      compared += static_cast<size_t>(x.count());
    }
  }
  CHECK(compared > 0);
}

using test::ToyJob;

}  // namespace

TEST_CASE("crema --version names the version and the CUDA build") {
  const auto r = test::run(crema_cmd("--version"));
  CHECK(r.status == 0);
  CHECK(r.output.find("crema 0.") != std::string::npos);
  CHECK(r.output.find("CUDA") != std::string::npos);
}

TEST_CASE("training learns, and 30 + resume 30 equals 60 straight, bit for bit") {
  ToyJob job(60);
  const auto straight = test::run(crema_cmd("train " + job.solver + " --set snapshot_prefix=" + (job.dir / "a/toy")));
  REQUIRE_MESSAGE(straight.status == 0, straight.output);
  const auto first = test::run(crema_cmd("train " + job.solver + " --set max_iter=30 --set snapshot_prefix=" + (job.dir / "b/toy")));
  REQUIRE_MESSAGE(first.status == 0, first.output);
  REQUIRE(fs::exists(job.dir / "b/toy_iter_30.solverstate.h5"));
  const auto resumed = test::run(crema_cmd("train " + job.solver + " --set snapshot_prefix=" + (job.dir / "b/toy") +
                                           " --snapshot " + (job.dir / "b/toy_iter_30.solverstate.h5")));
  REQUIRE_MESSAGE(resumed.status == 0, resumed.output);
  check_same_weights(job.dir / "a/toy_iter_60.caffemodel.h5", job.dir / "b/toy_iter_60.caffemodel.h5");

  const auto a = printed_losses(straight.output), b = printed_losses(resumed.output);
  int compared = 0;
  for (const auto& [iter, loss] : b) {
    if (iter <= 30) continue;
    REQUIRE(a.count(iter));
    CHECK_MESSAGE(a.at(iter) == loss, "iteration " << iter);
    ++compared;
  }
  CHECK(compared >= 6);
  // The display line says how long the run has left, as --time-limit takes a duration.
  std::smatch left;
  REQUIRE_MESSAGE(
      std::regex_search(straight.output, left,
                        std::regex(R"(Iteration 55 \([^)\n]*ms/iter, (\d+h\d\dm|\d+m\d\ds|\d+s) left\), loss = )")),
      straight.output);
  CHECK(std::stoi(left[1]) < 60);  // 5 more toy iterations
  // It really learned: the final test accuracy is far above chance (10%).
  std::smatch m;
  const std::string& out = straight.output;
  REQUIRE(std::regex_search(out, m, std::regex(R"(Iteration 60, Testing net[\s\S]*accuracy = ([0-9.]+))")));
  CHECK(std::stod(m[1]) > 0.5);
}

TEST_CASE("resuming with another solver type or a foreign net is refused clearly") {
  ToyJob job(10);
  REQUIRE(test::run(crema_cmd("train " + job.solver)).status == 0);
  const std::string state = job.dir / "snap/toy_iter_10.solverstate.h5";
  REQUIRE(fs::exists(state));
  const std::string change = " --set net.layer[2].convolution_param.num_output=5";
  const auto r = test::run(crema_cmd("train " + job.solver + change + " --snapshot " + state));
  CHECK(r.status == 1);
  CHECK(r.output.find("conv") != std::string::npos);
  CHECK(r.output.find("terminate") == std::string::npos);
  // The advice is a command that works (it once said --reinit, which --snapshot refuses):
  // a new run from the snapshot's weights, with the changed layer re-learnt.
  std::smatch advice;
  REQUIRE_MESSAGE(std::regex_search(r.output, advice,
                                    std::regex("the net changed since the snapshot was written\\. "
                                               "Resume with the net it was written with, or start a "
                                               "new run from its weights, re-learning those layers: "
                                               "crema (train [^\\n]*--reinit conv,fc1)\\n")),
                  r.output);
  CHECK(advice[1].str().find("--set 'net.layer[2].convolution_param.num_output=5'") != std::string::npos);
  // Under a prefix of its own: the new run must not overwrite the snapshot it starts from.
  CHECK(advice[1].str().find("snapshot_prefix=" + (job.dir / "snap/toy_reinit")) != std::string::npos);
  const auto before = test::read_file(job.dir / "snap/toy_iter_10.caffemodel.h5");
  const auto fresh = test::run(crema_cmd(advice[1].str()));
  CHECK_MESSAGE(fresh.status == 0, fresh.output);
  CHECK(fs::exists(job.dir / "snap/toy_reinit_iter_10.caffemodel.h5"));
  CHECK(test::read_file(job.dir / "snap/toy_iter_10.caffemodel.h5") == before);
  CHECK(std::regex_search(fresh.output.c_str(), std::regex(R"(conv\s+re-initialised from its fillers)")));
  CHECK(std::regex_search(fresh.output.c_str(), std::regex(R"(fc1\s+re-initialised from its fillers)")));
  CHECK(std::regex_search(fresh.output.c_str(), std::regex(R"(fc2\s+loaded from \S+toy_iter_10\.caffemodel\.h5)")));
  // The run's own snapshot_prefix is replaced in the advice, not given twice.
  const auto prefixed = test::run(crema_cmd(
      "train " + job.solver + change + " --set snapshot_prefix=" + (job.dir / "snap/toy") + " --snapshot " + state));
  CHECK(prefixed.status == 1);
  const size_t first = prefixed.output.find("snapshot_prefix=");
  REQUIRE(first != std::string::npos);
  CHECK_MESSAGE(prefixed.output.find("snapshot_prefix=", first + 1) == std::string::npos, prefixed.output);
  // No layer fits: not a --reinit of every layer (a fresh start in disguise), but another net.
  const auto foreign = test::run(crema_cmd(
      "train " + job.solver + change + " --set net.layer[6].inner_product_param.num_output=12 --snapshot " + state));
  CHECK(foreign.status == 1);
  CHECK_MESSAGE(foreign.output.find("none of the snapshot's weights fit this net, so it was written for another one") !=
                    std::string::npos,
                foreign.output);
  CHECK(foreign.output.find("--reinit") == std::string::npos);
}

TEST_CASE(
    "an error in the middle of training snapshots the iteration it stopped in, which resumes exactly once fixed") {
  test::ToyJob job(40);
  // Sample 300 of the (unshuffled) training data gets label 12 of 10 classes: batch 18 of
  // 16 samples reads it, after the snapshot of iteration 10. The labels pass through a layer
  // (Power: x), so that net setup, which refuses an out-of-range label that a data layer hands
  // a classifier straight, leaves it to the batch that reads it, as it does an LMDB record's.
  std::string yaml = test::read_file(job.solver);
  yaml.insert(yaml.find("    - {name: acc,"), "    - {name: lab, type: Power, bottom: label, top: lab}\n");
  for (size_t at; (at = yaml.find("[fc2, label]")) != std::string::npos;) yaml.replace(at, 12, "[fc2, lab]");
  test::write_file(job.solver, yaml);
  const std::string labels = job.dir / "train-labels-idx1-ubyte";
  const auto set_label = [&](char label) {
    std::fstream f(labels, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(8 + 300);  // the IDX header, then one byte per label
    f.put(label);
  };
  set_label(12);
  const std::string state18 = job.dir / "snap/toy_iter_18.solverstate.h5";
  const auto bad = test::run(crema_cmd("train " + job.solver + " --set snapshot=10"));
  CHECK(bad.status == 1);
  CHECK_MESSAGE(bad.output.find("label 12 is out of range") != std::string::npos, bad.output);
  // The eight iterations since the snapshot of iteration 10 are kept.
  CHECK_MESSAGE(bad.output.find("Wrote a snapshot of iteration 18 as it began, to resume from once the cause of the "
                                "error below is fixed") != std::string::npos,
                bad.output);
  CHECK_MESSAGE(bad.output.find("Training stopped at iteration 18; the latest snapshot is of iteration 18. Once the "
                                "cause is fixed, resume with: crema train " +
                                job.solver + " --set snapshot=10 --snapshot " + state18) != std::string::npos,
                bad.output);
  REQUIRE(fs::exists(state18));
  // Resumed and failing again where it began: nothing new to keep, the snapshot it started from.
  const auto again = test::run(crema_cmd("train " + job.solver + " --snapshot " + state18));
  CHECK(again.status == 1);
  CHECK(again.output.find("Wrote a snapshot") == std::string::npos);
  CHECK_MESSAGE(again.output.find("Training stopped at iteration 18; the latest snapshot is of iteration 18. Once the "
                                  "cause is fixed, resume with: crema train " +
                                  job.solver + " --snapshot " + state18) != std::string::npos,
                again.output);
  // The data fixed, the printed command finishes the run as one that was never stopped:
  // iteration 18 is done whole, from the batch it failed on.
  set_label(3);
  const auto resumed = test::run(crema_cmd("train " + job.solver + " --set snapshot=10 --snapshot " + state18));
  REQUIRE_MESSAGE(resumed.status == 0, resumed.output);
  const auto straight = test::run(
      crema_cmd("train " + job.solver + " --set snapshot=10 --set snapshot_prefix=" + (job.dir / "straight/toy")));
  REQUIRE_MESSAGE(straight.status == 0, straight.output);
  check_same_weights(job.dir / "snap/toy_iter_40.caffemodel.h5", job.dir / "straight/toy_iter_40.caffemodel.h5");
}

TEST_CASE("under a virtual-memory limit crema trains, or says what the limit is too small for, and never hangs") {
  // OpenBLAS retries a refused work buffer (129 MiB per thread) for ever: while it loads, before
  // main, and at a product. A limit from too small to load the libraries up to plenty: each run
  // must end by itself, each with a clear line when it cannot train.
  test::ToyJob job(5);
  bool too_small_to_start = false, refused = false, trained = false;
  for (int mib = 700; mib <= 2600; mib += 50) {
    CAPTURE(mib);
    // (Without an OMP_NUM_THREADS of the caller's: that one would be kept, not replaced.)
    const auto r =
        test::run("ulimit -v " + std::to_string(mib * 1024) + "; unset OMP_NUM_THREADS; exec timeout -s KILL 60 " +
                  crema_cmd("train " + job.solver + " --overwrite"));
    CHECK_MESSAGE(r.status != 137, r.output);  // killed by the timeout: a hang
    if (r.status == 127) continue;             // the libraries do not fit: the loader says so
    if (r.output.find("is too small to start: crema's libraries take ") != std::string::npos) {
      CHECK(r.status == 1);
      too_small_to_start = true;
    } else if (r.output.find("MiB of memory needed to run even one thread (258 MiB of OpenBLAS work buffers per "
                             "thread") != std::string::npos) {
      CHECK(r.status == 1);
      refused = true;
    } else if (r.status == 0) {
      trained = true;
      break;
    } else {
      // Past OpenBLAS's buffers, the nets: out of memory, said as such.
      CHECK_MESSAGE(r.output.find("out of host memory") != std::string::npos, r.output);
      CHECK_MESSAGE(r.output.find("A virtual-memory limit (ulimit -v; SGE's h_vmem sets one) of ") != std::string::npos,
                    r.output);
    }
  }
  CHECK(too_small_to_start);
  CHECK(refused);
  CHECK(trained);
  // The same limits with OMP_NUM_THREADS set by the user (which crema then keeps, or replaces
  // when it is no count): they hung before main.
  const auto first = test::run("ulimit -v 960000; exec " + crema_cmd("--version"));
  const std::string take = "crema's libraries take ";
  REQUIRE_MESSAGE(first.output.find(take) != std::string::npos, first.output);
  const long libraries = std::atol(first.output.c_str() + first.output.find(take) + take.size());
  for (const std::string omp : {"1", "2", "abc", ""}) {
    CAPTURE(omp);
    const auto r = test::run("ulimit -v " + std::to_string((libraries + 60) * 1024) + "; OMP_NUM_THREADS=" + omp +
                             " exec timeout -s KILL 60 " + crema_cmd("train " + job.solver + " --overwrite"));
    CHECK(r.status == 1);
    CHECK_MESSAGE(r.output.find("is too small to start: crema's libraries take ") != std::string::npos, r.output);
  }
  // A data-size limit (PBS's pmem) counts private mappings too, OpenBLAS's buffers among them.
  const auto data_limited =
      test::run("ulimit -d 400000; exec timeout -s KILL 60 " + crema_cmd("train " + job.solver + " --overwrite"));
  CHECK_MESSAGE(data_limited.status != 137, data_limited.output);
  CHECK_MESSAGE(data_limited.output.find("a data-size limit (ulimit -d; PBS's pmem sets one) of 391 MiB is set") !=
                    std::string::npos,
                data_limited.output);
  // A thread count given on the command line is not lowered: refused, naming the way out.
  const auto many = test::run("ulimit -v 3000000; exec timeout -s KILL 60 " +
                              crema_cmd("train " + job.solver + " --overwrite --threads 64"));
  CHECK(many.status == 1);
  CHECK_MESSAGE(
      many.output.find("needed to run 64 threads (258 MiB of OpenBLAS work buffers per thread") != std::string::npos,
      many.output);
  CHECK_MESSAGE(many.output.find("for the nets at the least): a virtual-memory limit (ulimit -v; SGE's h_vmem sets "
                                 "one) of 2930 MiB is set") != std::string::npos,
                many.output);
  CHECK_MESSAGE(many.output.find("MiB are mapped already. Raise the limit to at least ") != std::string::npos,
                many.output);
  CHECK_MESSAGE(many.output.find(" MiB, or run fewer threads (--threads)") != std::string::npos, many.output);
}

TEST_CASE("a fresh start that would train wrongly in silence is warned about, and one without data refused") {
  test::ToyJob job(1);
  const std::string train = "train " + job.solver + " --overwrite";
  // No weight_filler (constant 0) on two layers, one feeding the other: the run stayed at chance.
  const std::string zero = "The weights of layers 'fc1', 'fc2' all start at 0 (no weight_filler";
  auto r = test::run(crema_cmd(train + " --unset net.layer[4].inner_product_param.weight_filler --unset "
                                       "net.layer[6].inner_product_param.weight_filler"));
  CHECK_MESSAGE(r.status == 0, r.output);
  CHECK_MESSAGE(r.output.find(zero) != std::string::npos, r.output);
  // Calibration: the top layer alone at 0 learns from its first update, as a logistic regression does.
  r = test::run(crema_cmd(train + " --unset net.layer[6].inner_product_param.weight_filler"));
  CHECK_MESSAGE(r.status == 0, r.output);
  CHECK_MESSAGE(r.output.find("all start at 0") == std::string::npos, r.output);
  CHECK_MESSAGE(r.output.find("negative rate") == std::string::npos, r.output);
  // A negative lr_mult climbs the loss (it was taken without a word, as decay_mult's is refused).
  r = test::run(crema_cmd(train + " --set 'net.layer[6].param=[{lr_mult: -1}]'"));
  CHECK_MESSAGE(r.status == 0, r.output);
  CHECK_MESSAGE(r.output.find("Layer 'fc2' parameter 0 learns at a negative rate (lr_mult -1)") != std::string::npos,
                r.output);
  // So does a negative loss_weight.
  r = test::run(crema_cmd(train + " --set net.layer[8].loss_weight=-1"));
  CHECK_MESSAGE(r.status == 0, r.output);
  CHECK_MESSAGE(
      r.output.find("Top 'loss' has a negative loss_weight (-1): training climbs that loss") != std::string::npos,
      r.output);
  // A loss_weight on Accuracy, which has no gradient, was added to the loss in silence.
  r = test::run(crema_cmd(train + " --set net.layer[7].loss_weight=1 --set net.layer[7].include.phase=TRAIN"));
  CHECK_MESSAGE(r.status == 2, r.output);
  CHECK_MESSAGE(r.output.find("(acc): loss_weight on an Accuracy layer: its output is piecewise constant and has no "
                              "gradient") != std::string::npos,
                r.output);
  // BatchNorm on global statistics nothing computed.
  std::string yaml = test::read_file(job.solver);
  const std::string relu = "    - {name: relu, type: ReLU";
  REQUIRE(yaml.find(relu) != std::string::npos);
  yaml.insert(
      yaml.find(relu),
      "    - {name: bn, type: BatchNorm, bottom: conv, top: conv, batch_norm_param: {use_global_stats: true}}\n");
  test::write_file(job.solver, yaml);
  r = test::run(crema_cmd(train));
  CHECK_MESSAGE(r.status == 0, r.output);
  CHECK_MESSAGE(r.output.find("BatchNorm 'bn' has use_global_stats: true in the TRAIN net, but no weights file gave "
                              "it statistics") != std::string::npos,
                r.output);
  // A TRAIN net fed by an Input layer alone trained on zeros to "Optimization Done".
  test::write_file(
      job.dir / "input.yaml",
      "net:\n  name: in\n  layer:\n"
      "    - {name: in, type: Input, top: [data, label], input_param: {shape: [{dim: [4, 3]}, {dim: [4]}]}}\n"
      "    - {name: fc, type: InnerProduct, bottom: data, top: fc,\n"
      "       inner_product_param: {num_output: 3, weight_filler: {type: xavier}}}\n"
      "    - {name: loss, type: SoftmaxWithLoss, bottom: [fc, label], top: loss}\n"
      "base_lr: 0.1\nmax_iter: 5\nsnapshot_prefix: " +
          (job.dir / "in") + "\n");
  r = test::run(crema_cmd("train " + (job.dir / "input.yaml")));
  CHECK(r.status == 2);
  CHECK_MESSAGE(r.output.find("input.yaml:4:7: net.layer[0] (in): the TRAIN net has no data layer (Data, ImageData, "
                              "HDF5Data, DummyData, …): an Input layer's tops stay zeros") != std::string::npos,
                r.output);
}

TEST_CASE("an IDX label out of a classifier's range is named in its labels file, and a big output is warned about") {
  test::ToyJob job(1);
  // It named the images file, which holds no labels.
  auto r = test::run(crema_cmd("train " + job.solver + " --set net.layer[6].inner_product_param.num_output=5"));
  CHECK(r.status == 2);
  CHECK_MESSAGE(r.output.find(" in IDX labels file '" + (job.dir / "train-labels-idx1-ubyte") +
                              "' is out of range for layer 'loss' (SoftmaxWithLoss)") != std::string::npos,
                r.output);
  // An output nobody reads, logged value by value: 16 × 32 values of fc1 made one line and one column each.
  r = test::run(crema_cmd("train " + job.solver +
                          " --set 'net.layer[7]={name: side, type: InnerProduct, bottom: fc1, top: side, "
                          "inner_product_param: {num_output: 8}}'"));
  CHECK_MESSAGE(r.status == 0, r.output);
  CHECK_MESSAGE(r.output.find("The TRAIN net's output 'side' holds 128 values, each logged at every display or test "
                              "pass and each a metrics column; if nothing is meant to read it, end it in a Silence "
                              "layer (bottom: side)") != std::string::npos,
                r.output);
}

TEST_CASE("OMP_NUM_THREADS sets the thread count without --threads, and crema's own restart's does not") {
  test::ToyJob job(2);
  const std::string time = crema_cmd("time --model " + job.solver + " --iterations 1");
  const auto env = test::run("OMP_NUM_THREADS=1 " + time);
  CHECK_MESSAGE(env.status == 0, env.output);
  CHECK_MESSAGE(
      env.output.find("Running 1 thread(s), as OMP_NUM_THREADS asks (--threads overrides it)") != std::string::npos,
      env.output);
  CHECK_MESSAGE(env.output.find("CPU with 1 thread(s)") != std::string::npos, env.output);
  const auto flag = test::run("OMP_NUM_THREADS=1 " + time + " --threads 2");
  CHECK_MESSAGE(flag.output.find("CPU with 2 thread(s)") != std::string::npos, flag.output);
  CHECK(flag.output.find("as OMP_NUM_THREADS asks") == std::string::npos);
  // Under a memory limit crema starts itself again with OMP_NUM_THREADS=1 (app/startup): not the user's.
  const auto restarted = test::run("ulimit -v 16000000; unset OMP_NUM_THREADS; exec " + time);
  CHECK_MESSAGE(restarted.status == 0, restarted.output);
  CHECK_MESSAGE(restarted.output.find("as OMP_NUM_THREADS asks") == std::string::npos, restarted.output);
  // (Fewer than the cores where their buffers do not all fit under the limit, but not the restart's one.)
  if (crema::available_cores() > 1)
    CHECK_MESSAGE(restarted.output.find("CPU with 1 thread(s)") == std::string::npos, restarted.output);
  // A user's count is lowered to what fits under a limit, as the default is (it was refused like --threads).
  const auto lowered = test::run("ulimit -v 3000000; OMP_NUM_THREADS=64 exec " + time);
  CHECK_MESSAGE(lowered.status == 0, lowered.output);
  CHECK_MESSAGE(lowered.output.find(" of 64 threads") != std::string::npos, lowered.output);
}

TEST_CASE("stack size and open-file limits crema cannot run under are refused or adjusted before anything runs") {
  test::ToyJob job(5);
  // Every thread's stack is the stack size limit: 128 KiB crashed in oneDNN without a word, and
  // 1 TiB stopped libgomp's threads ("Thread creation failed") or the data reader's.
  const auto tiny = test::run("ulimit -s 128; exec " + crema_cmd("train " + job.solver));
  CHECK(tiny.status == 1);
  CHECK_MESSAGE(tiny.output.find("crema: the stack size limit (ulimit -s) of 128 KiB, with a hard limit of 128 KiB, "
                                 "is too small for crema's threads; give it at least 1024 KiB") != std::string::npos,
                tiny.output);
  // A hard limit between 256 KiB and 1 MiB: raised to it once, then run with it (it started
  // itself again without end when the soft limit was the hard one).
  const auto small = test::run("ulimit -s 512; exec timeout 120 " + crema_cmd("train " + job.solver + " --overwrite"));
  CHECK_MESSAGE(small.status == 0, small.output);
  CHECK_MESSAGE(test::count_of(small.output, "crema: the stack size limit") == 1, small.output);
  CHECK_MESSAGE(small.output.find("crema: the stack size limit (ulimit -s) of 512 KiB is every thread's stack size, "
                                  "below the 1024 KiB crema's threads want, and its hard limit allows no more; "
                                  "running with it") != std::string::npos,
                small.output);
  const auto raised = test::run("bash -c 'ulimit -Ss 300; ulimit -Hs 512; exec timeout 120 " +
                                crema_cmd("train " + job.solver + " --overwrite'"));
  CHECK_MESSAGE(raised.status == 0, raised.output);
  CHECK_MESSAGE(raised.output.find("crema: the stack size limit (ulimit -s) of 512 KiB is every thread's stack size, "
                                   "below the 1024 KiB") != std::string::npos,
                raised.output);
  CHECK_MESSAGE(test::count_of(raised.output, "crema: the stack size limit") == 1, raised.output);
  // Under a memory limit too, which makes crema start itself again with OMP_NUM_THREADS=1.
  const auto limited = test::run("bash -c 'ulimit -s 512; ulimit -v 16000000; exec timeout 120 " +
                                 crema_cmd("train " + job.solver + " --overwrite'"));
  CHECK_MESSAGE(limited.status == 0, limited.output);
  CHECK_MESSAGE(test::count_of(limited.output, "crema: the stack size limit") == 1, limited.output);
  const auto huge = test::run("ulimit -s 1073741824; exec " + crema_cmd("train " + job.solver + " --overwrite"));
  CHECK_MESSAGE(huge.status == 0, huge.output);
  CHECK_MESSAGE(huge.output.find("crema: the stack size limit (ulimit -s) of 1073741824 KiB is every thread's stack "
                                 "size, too large for crema's threads: this run uses 8192 KiB") != std::string::npos,
                huge.output);
  // An open-file limit of 7 failed only the final snapshot, after the training.
  // (In a bash of its own: dash cannot redirect the popen's 2>&1 under so low a limit.)
  const auto files = test::run("bash -c 'ulimit -n 7; exec " + crema_cmd("train " + job.solver + " --overwrite'"));
  CHECK(files.status == 1);
  CHECK_MESSAGE(files.output.find("crema: the open-file limit (ulimit -n) is 7, with a hard limit of 7; crema needs "
                                  "at least 16 open files") != std::string::npos,
                files.output);
  const auto soft = test::run("bash -c 'ulimit -S -n 7; exec " + crema_cmd("train " + job.solver + " --overwrite'"));
  CHECK_MESSAGE(soft.status == 0, soft.output);  // raised to the hard limit
}

TEST_CASE("a run that diverges before its first snapshot says so once, without a second account of the stop") {
  test::ToyJob job(20);
  const auto r = test::run(crema_cmd("train " + job.solver + " --set base_lr=1e30"));
  CHECK(r.status == 1);
  CHECK_MESSAGE(r.output.find("training diverged at iteration ") != std::string::npos, r.output);
  CHECK_MESSAGE(r.output.find("no snapshot was written and earlier ones are kept") != std::string::npos, r.output);
  CHECK_MESSAGE(r.output.find("before its first snapshot") == std::string::npos, r.output);
}

TEST_CASE("a snapshot the disk cannot take stops training with the reason and the resume command, without a crash") {
  test::ToyJob job(20);
  // A file-size limit of 50 KB (dash counts 512-byte blocks) fails the weights file's write as
  // a full disk or a quota would; HDF5 then cannot close it, and its exit handler used to crash.
  const std::string limited = "ulimit -f 100; exec ";  // crema ignores SIGXFSZ itself
  const auto first = test::run(limited + crema_cmd("train " + job.solver + " --set max_iter=10"));
  CHECK(first.status == 1);
  CHECK_MESSAGE(first.output.find("MiB free there). Training stopped at iteration 10, before its first snapshot") !=
                    std::string::npos,
                first.output);
  REQUIRE(test::run(crema_cmd("train " + job.solver + " --set max_iter=10")).status == 0);
  const std::string state = job.dir / "snap/toy_iter_10.solverstate.h5";
  const auto full = test::run(limited + crema_cmd("train " + job.solver + " --snapshot " + state));
  CHECK(full.status == 1);
  CHECK_MESSAGE(full.output.find("toy_iter_20.caffemodel.h5.tmp-") != std::string::npos, full.output);
  CHECK_MESSAGE(
      full.output.find("(the file grew past the size this process may write (ulimit -f); ") != std::string::npos,
      full.output);
  CHECK_MESSAGE(full.output.find("MiB free there). Training stopped at iteration 20; the latest snapshot is of "
                                 "iteration 10. Once the cause is fixed, resume with: crema train " +
                                 job.solver + " --snapshot " + state) != std::string::npos,
                full.output);
  for (const auto& name : io::regular_file_names(job.dir / "snap"))
    CHECK_MESSAGE(name.find("_iter_20") == std::string::npos, name);  // no partial snapshot, under any name

  // The weights file written but not the solver state (Adam keeps two histories, so a limit
  // between the two files' sizes fails the state alone; a kill between the two writes is
  // the same): neither stays. A weights file alone once stayed, and every --resume of the
  // prefix after it was refused (a run's weights with nothing to continue from).
  const std::string adam = " --set type=Adam --set base_lr=0.001 --set max_iter=10 --set snapshot_prefix=";
  REQUIRE(test::run(crema_cmd("train " + job.solver + adam + (job.dir / "sized/toy"))).status == 0);
  const auto weights_size = fs::file_size(job.dir / "sized/toy_iter_10.caffemodel.h5");
  const auto state_size = fs::file_size(job.dir / "sized/toy_iter_10.solverstate.h5");
  REQUIRE(state_size > weights_size + 2048);
  const std::string between = "ulimit -f " + std::to_string((weights_size + state_size) / 2 / 512) + "; exec ";
  const auto cut = test::run(between + crema_cmd("train " + job.solver + adam + (job.dir / "pair/toy")));
  CHECK(cut.status == 1);
  CHECK_MESSAGE(cut.output.find("toy_iter_10.solverstate.h5.tmp-") != std::string::npos, cut.output);
  for (const auto& name : io::regular_file_names(job.dir / "pair"))
    CHECK_MESSAGE(name.find("_iter_10") == std::string::npos, name);
  const auto again = test::run(crema_cmd("train " + job.solver + adam + (job.dir / "pair/toy") + " --resume"));
  CHECK_MESSAGE(again.status == 0, again.output);
}

TEST_CASE("--unset removes a solver key for one run, and the commands crema prints keep it in its place") {
  test::ToyJob job(20);
  // The toy solver's momentum is refused by RMSProp: the message names --unset.
  const auto refused = test::run(crema_cmd("train " + job.solver + " --set type=RMSProp"));
  CHECK(refused.status == 2);
  CHECK_MESSAGE(refused.output.find("remove it (for one run: --unset momentum)") != std::string::npos, refused.output);
  const auto tilde = test::run(crema_cmd("train " + job.solver + " --set '~momentum'"));
  CHECK(tilde.status == 2);
  CHECK_MESSAGE(tilde.output.find("a key starts with no '~'; --unset momentum removes one") != std::string::npos,
                tilde.output);
  const auto typo = test::run(crema_cmd("train " + job.solver + " --unset momentun"));
  CHECK(typo.status == 2);
  CHECK_MESSAGE(typo.output.find("there is no key 'momentun' at the top level to remove (did you mean 'momentum'?)") !=
                    std::string::npos,
                typo.output);
  const std::string flags = " --set type=RMSProp --unset momentum --set snapshot=10 --threads 1";
  const auto trained = test::run(crema_cmd("train " + job.solver + flags));
  REQUIRE_MESSAGE(trained.status == 0, trained.output);
  // The resume command crema prints for a damaged latest snapshot repeats the --unset in order.
  fs::resize_file(job.dir / "snap/toy_iter_20.solverstate.h5", 3000);
  const auto r = test::run(crema_cmd("train " + job.solver + flags + " --set max_iter=30 --resume"));
  CHECK(r.status == 1);
  const std::string command = "crema train " + job.solver +
                              " --set type=RMSProp --unset momentum --set snapshot=10 --set max_iter=30 --threads 1 "
                              "--snapshot " +
                              (job.dir / "snap/toy_iter_10.solverstate.h5");
  CHECK_MESSAGE(r.output.find(command) != std::string::npos, r.output);
  const auto resumed = test::run(crema_cmd(command.substr(6)));
  CHECK_MESSAGE(resumed.status == 0, resumed.output);
}

TEST_CASE(
    "a damaged latest snapshot names the one before it with its command, and a state's weights found elsewhere are "
    "said") {
  test::ToyJob job(20);
  const std::string flags = " --set snapshot=10 --threads 1";
  REQUIRE(test::run(crema_cmd("train " + job.solver + flags)).status == 0);
  const std::string state10 = job.dir / "snap/toy_iter_10.solverstate.h5";
  fs::resize_file(job.dir / "snap/toy_iter_20.solverstate.h5", 3000);  // a disk fault, a copy cut short
  // Every requeued `--resume` stops on it the same way: the way on is named.
  const auto r = test::run(crema_cmd("train " + job.solver + flags + " --set max_iter=30 --resume"));
  CHECK(r.status == 1);
  const std::string command =
      "crema train " + job.solver + " --set snapshot=10 --set max_iter=30 --threads 1 --snapshot " + state10;
  CHECK_MESSAGE(r.output.find(". The snapshot before it, of iteration 10, resumes with: " + command +
                              " (--resume takes the latest, iteration 20, for as long as its files are there)") !=
                    std::string::npos,
                r.output);
  const auto earlier = test::run(crema_cmd(command.substr(6)));
  CHECK_MESSAGE(earlier.status == 0, earlier.output);
  // The weights given where the state goes: the state beside them is named.
  const auto weights = test::run(crema_cmd("train " + job.solver + flags + " --set max_iter=30 --snapshot " +
                                           (job.dir / "snap/toy_iter_10.caffemodel.h5")));
  CHECK(weights.status == 1);
  CHECK_MESSAGE(weights.output.find("these are weights: resume with the solver state beside them, --snapshot " +
                                    state10 + ", or start a new run from them with --weights") != std::string::npos,
                weights.output);
  // A weights file missing beside its state is looked for where the state names it (Caffe's
  // lookup): used, and said, as it may be another run's.
  fs::create_directories(job.dir / "moved");
  fs::copy_file(job.dir / "snap/toy_iter_30.solverstate.h5", job.dir / "moved/toy_iter_30.solverstate.h5");
  const auto moved = test::run(crema_cmd("train " + job.solver + flags +
                                         " --set max_iter=31 --set snapshot_prefix=" + (job.dir / "moved/toy") +
                                         " --snapshot " + (job.dir / "moved/toy_iter_30.solverstate.h5")));
  CHECK_MESSAGE(moved.status == 0, moved.output);
  CHECK_MESSAGE(moved.output.find("toy_iter_30.solverstate.h5: its weights file is not beside it (" +
                                  (job.dir / "moved/toy_iter_30.caffemodel.h5") + "); using '" +
                                  (job.dir / "snap/toy_iter_30.caffemodel.h5") + "', the path the state names") !=
                    std::string::npos,
                moved.output);
  // Another thread count orders the sums otherwise: the resume is not bit for bit, and says so.
  const auto threads =
      test::run(crema_cmd("train " + job.solver + " --threads 2 --set max_iter=31 --set snapshot_prefix=" +
                          (job.dir / "other/toy") + " --snapshot " + (job.dir / "snap/toy_iter_30.solverstate.h5")));
  CHECK_MESSAGE(threads.status == 0, threads.output);
  CHECK_MESSAGE(threads.output.find(
                    "toy_iter_30.solverstate.h5 was written by a run on the CPU with 1 thread, and this "
                    "one runs on the CPU with 2 threads: its sums come out in another order") != std::string::npos,
                threads.output);
  CHECK(moved.output.find("was written by a run on") == std::string::npos);  // the same count
}

TEST_CASE("a run without display says once that it will log no loss") {
  ToyJob job(10);
  const auto quiet = test::run(crema_cmd("train " + job.solver + " --unset display"));
  CHECK_MESSAGE(quiet.status == 0, quiet.output);
  CHECK_MESSAGE(test::count_of(quiet.output, "display is 0 (the default): the training loss is not logged") == 1,
                quiet.output);
  CHECK(quiet.output.find("Iteration 5 (") == std::string::npos);
  const auto shown = test::run(crema_cmd("train " + job.solver + " --overwrite"));
  CHECK_MESSAGE(shown.status == 0, shown.output);
  CHECK(shown.output.find("display is 0") == std::string::npos);
  CHECK(shown.output.find("Iteration 5 (") != std::string::npos);
  // Without random_seed the clock's seed is logged, and giving it draws the run again.
  const auto clock = test::run(crema_cmd("train " + job.solver + " --overwrite --unset random_seed"));
  REQUIRE_MESSAGE(clock.status == 0, clock.output);
  const std::string said = "(drawn from the clock; random_seed: ";
  const size_t at = clock.output.find(said);
  REQUIRE_MESSAGE(at != std::string::npos, clock.output);
  const std::string seed =
      clock.output.substr(at + said.size(), clock.output.find(' ', at + said.size()) - (at + said.size()));
  const auto again = test::run(crema_cmd("train " + job.solver + " --overwrite --set random_seed=" + seed));
  REQUIRE_MESSAGE(again.status == 0, again.output);
  const auto losses = [](const std::string& log) {
    std::string lines;
    std::istringstream in(log);
    for (std::string line; std::getline(in, line);)
      if (line.find(", loss = ") != std::string::npos) lines += line.substr(line.find(", loss = ")) + "\n";
    return lines;
  };
  CHECK(!losses(clock.output).empty());
  CHECK(losses(again.output) == losses(clock.output));
}

TEST_CASE("Ctrl-C stops with a snapshot, and resuming finishes exactly as an uninterrupted run") {
  ToyJob job(1000000);
  test::Child child({test::crema_binary(), "train", job.solver, "--set", "display=1"}, job.dir / "interrupted.log");
  REQUIRE(child.pid() > 0);
  REQUIRE_MESSAGE(child.wait_for_log("Iteration 45,", 60), child.log());
  child.signal(SIGINT);
  CHECK(child.wait() == 0);
  const std::string log = child.log();
  std::smatch m;
  REQUIRE_MESSAGE(std::regex_search(log, m, std::regex(R"(Resume with: .* --snapshot (\S+_iter_(\d+)\.solverstate\.h5))")), log);
  const std::string state = m[1];
  const int stopped = std::stoi(m[2]);
  REQUIRE(fs::exists(state));
  const int finish = stopped + 25;

  const auto resumed = test::run(crema_cmd("train " + job.solver + " --set max_iter=" + std::to_string(finish) +
                                           " --snapshot " + state));
  REQUIRE_MESSAGE(resumed.status == 0, resumed.output);
  const auto straight = test::run(crema_cmd("train " + job.solver + " --set max_iter=" + std::to_string(finish) +
                                            " --set snapshot_prefix=" + (job.dir / "straight/toy")));
  REQUIRE_MESSAGE(straight.status == 0, straight.output);
  check_same_weights(job.dir / ("snap/toy_iter_" + std::to_string(finish) + ".caffemodel.h5"),
                     job.dir / ("straight/toy_iter_" + std::to_string(finish) + ".caffemodel.h5"));
}

TEST_CASE("a first Ctrl-C on a terminal is answered at once, and never in a log that is no terminal") {
  ToyJob job(1000000);
  // One thread here and below: two on a loaded machine's two cores run many times slower.
  test::TerminalChild terminal({test::crema_binary(), "train", job.solver, "--set", "display=1", "--threads", "1"});
  if (terminal.pid() < 0) {
    MESSAGE("skipped: no pseudo-terminal to be had here (forkpty failed)");
    return;
  }
  REQUIRE_MESSAGE(terminal.wait_for_output("Iteration 20,", 60), terminal.output());
  terminal.signal(SIGINT);
  CHECK(terminal.wait() == 0);
  const std::string shown = terminal.output();
  CHECK_MESSAGE(
      shown.find("Ctrl-C: stopping once the current step is done (Ctrl-C again exits at once).") != std::string::npos,
      shown);
  CHECK_MESSAGE(shown.find("Resume with") != std::string::npos, shown);

  // Without a terminal (a job's log) the stop is said once, by the log line.
  test::Child plain({test::crema_binary(), "train", job.solver, "--set", "display=1", "--overwrite", "--threads", "1"},
                    job.dir / "plain.log");
  REQUIRE_MESSAGE(plain.wait_for_log("Iteration 20,", 60), plain.log());
  plain.signal(SIGINT);
  CHECK(plain.wait() == 0);
  CHECK(plain.log().find("SIGINT received: stopping") != std::string::npos);
  CHECK(plain.log().find("Ctrl-C: stopping") == std::string::npos);
}

TEST_CASE("SIGHUP snapshots and training goes on, SIGTERM stops with a snapshot") {
  ToyJob job(1000000);
  test::Child child({test::crema_binary(), "train", job.solver, "--set", "display=1"}, job.dir / "hup.log");
  REQUIRE_MESSAGE(child.wait_for_log("Iteration 20,", 60), child.log());
  child.signal(SIGHUP);
  REQUIRE_MESSAGE(child.wait_for_log("Snapshotting solver state", 30), child.log());
  // Still training afterwards.
  const std::string before = child.log();
  std::smatch m;
  REQUIRE(std::regex_search(before, m, std::regex(R"(toy_iter_(\d+)\.solverstate\.h5)")));
  const int snap_iter = std::stoi(m[1]);
  REQUIRE_MESSAGE(child.wait_for_log("Iteration " + std::to_string(snap_iter + 10) + ",", 30), child.log());
  child.signal(SIGTERM);
  CHECK(child.wait() == 0);
  CHECK(child.log().find("Resume with") != std::string::npos);
}

TEST_CASE("signals a launcher left blocked still stop training with a snapshot") {
  ToyJob job(1000000);
  // As a parent that blocks them (a launcher, a shell's trap) hands them down.
  test::Child child({test::crema_binary(), "train", job.solver, "--set", "display=1"}, job.dir / "blocked.log",
                    test::Child::Output::log, {SIGINT, SIGTERM, SIGHUP});
  REQUIRE_MESSAGE(child.wait_for_log("Iteration 20,", 60), child.log());
  child.signal(SIGTERM);
  CHECK(child.wait(120) == 0);
  CHECK_MESSAGE(child.log().find("SIGTERM received: stopping") != std::string::npos, child.log());
  CHECK(child.log().find("Resume with") != std::string::npos);
  // A command with no handlers (crema time) ends as the signal's default action has it,
  // rather than running on until a SIGKILL.
  test::Child timing(
      {test::crema_binary(), "time", "--model", job.solver, "--iterations", "100000000", "--threads", "1"},
      job.dir / "blocked_time.log", test::Child::Output::log, {SIGINT, SIGTERM, SIGHUP});
  REQUIRE_MESSAGE(timing.wait_for_log("Performing Forward", 60), timing.log());
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  timing.signal(SIGTERM);
  CHECK_MESSAGE(timing.wait(60) == 128 + SIGTERM, timing.log());
}

// A job whose reader gets stuck: small grey images listed in order (no shuffle), one list
// entry a FIFO that nobody writes, so opening it blocks as a read on a stalled network file
// system does. `train_stall` / `test_stall`: the FIFO's place in the TRAIN / TEST list (-1: none).
struct StalledReaderJob {
  test::TempDir dir;
  bool hdf5_output = false;  // the TRAIN net writes ip to out.h5 (HDF5Output)
  StalledReaderJob(int train_stall, int test_stall, bool with_output = false) : hdf5_output(with_output) {
    std::string train, test;
    for (int i = 0; i < 16; ++i) {
      cv::Mat m(4, 4, CV_8UC1);
      for (int p = 0; p < 16; ++p) m.data[p] = static_cast<uint8_t>((p == i % 3 ? 200 : 0) + (p * 7 + i * 13) % 40);
      REQUIRE(cv::imwrite(image(i), m));
      train += (i == train_stall ? fifo() : image(i)) + " " + std::to_string(i % 3) + "\n";
      if (i < 6) test += (i == test_stall ? fifo() : image(i)) + " " + std::to_string(i % 3) + "\n";
    }
    REQUIRE(::mkfifo(fifo().c_str(), 0600) == 0);
    test::write_file(dir / "train.txt", train);
    test::write_file(dir / "test.txt", test);
    test::write_file(dir / "solver.yaml", solver_yaml("snap/stall"));
    test::write_file(dir / "straight.yaml", solver_yaml("straight/stall"));
  }
  std::string image(int i) const { return dir / ("img" + std::to_string(i) + ".png"); }
  std::string fifo() const { return dir / "stalled.png"; }
  // The FIFO becomes the image it stands for, as a file system that comes back.
  void unstall(int i) const {
    fs::remove(fifo());
    fs::copy_file(image(i), fifo());
  }
  std::string solver_yaml(const std::string& prefix) const {
    const auto data = [&](const char* phase, const char* list) {
      return "    - {name: data, type: ImageData, top: [data, label], include: {phase: " + std::string(phase) +
             "}, image_data_param: {source: " + (dir / list) +
             ", batch_size: 2, shuffle: false, is_color: false, prefetch: 2}, transform_param: {scale: 0.004}}\n";
    };
    return "net:\n  name: stall\n  layer:\n" + data("TRAIN", "train.txt") + data("TEST", "test.txt") +
           "    - {name: ip, type: InnerProduct, bottom: data, top: ip, inner_product_param: {num_output: 3, "
           "weight_filler: {type: xavier}}}\n"
           "    - {name: loss, type: SoftmaxWithLoss, bottom: [ip, label], top: loss}\n" +
           (hdf5_output ? "    - {name: out, type: HDF5Output, bottom: [ip, label], include: {phase: TRAIN}, "
                          "hdf5_output_param: {file_name: " +
                              (dir / "out.h5") + "}}\n"
                        : "") +
           "base_lr: 0.1\nmomentum: 0.9\nlr_policy: fixed\ndisplay: 1\nmax_iter: 1000\ntest_iter: 2\n"
           "test_interval: 5\ntest_initialization: false\nsnapshot_after_train: true\nrandom_seed: "
           "5\nsnapshot_prefix: " +
           (dir / prefix) + "\n";
  }
  // Runs crema with `args` until `running` is in the log, waits a moment (the reader is stuck
  // by then) and sends SIGTERM; `after_stop` runs once `stopped` is in the log. Returns the log.
  std::string stop_while_stuck(const std::vector<std::string>& args, const std::string& running,
                               const std::string& stopped, const std::function<void()>& after_stop,
                               int expected_status) const {
    std::vector<std::string> argv{test::crema_binary()};
    argv.insert(argv.end(), args.begin(), args.end());
    test::Child child(argv, dir / "stall.log");
    REQUIRE_MESSAGE(child.wait_for_log(running, 60), child.log());
    std::this_thread::sleep_for(std::chrono::seconds(2));
    const auto signalled = std::chrono::steady_clock::now();
    child.signal(SIGTERM);
    REQUIRE_MESSAGE(child.wait_for_log(stopped, 30), child.log());
    after_stop();
    const int status = child.wait_at_most(60);
    const double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - signalled).count();
    CHECK_MESSAGE(status == expected_status, child.log());
    CHECK_MESSAGE(took < 30, took);  // the 10 s grace, and room for a loaded machine
    return child.log();
  }
  // With image `stalled` readable again, the run resumed from the stop's snapshot (of
  // `stopped`) and an uninterrupted one end on the same weights at `iter`.
  // `extra`: the stopped run's own options, given to both.
  void check_exact_resume(int stopped, int stalled, int iter, const std::string& extra = "") const {
    const std::string state = dir / ("snap/stall_iter_" + std::to_string(stopped) + ".solverstate.h5");
    REQUIRE(fs::exists(state));
    unstall(stalled);
    const std::string max_iter = " --set max_iter=" + std::to_string(iter) + extra;
    const auto resumed = test::run(crema_cmd("train " + (dir / "solver.yaml") + max_iter + " --snapshot " + state));
    REQUIRE_MESSAGE(resumed.status == 0, resumed.output);
    CHECK_MESSAGE(resumed.output.find("without letting go") == std::string::npos, resumed.output);
    const auto straight = test::run(crema_cmd("train " + (dir / "straight.yaml") + max_iter));
    REQUIRE_MESSAGE(straight.status == 0, straight.output);
    const std::string weights = "stall_iter_" + std::to_string(iter) + ".caffemodel.h5";
    check_same_weights(dir / ("snap/" + weights), dir / ("straight/" + weights));
    // The test passes from `stopped` on score the same batches (one pass reads 4 of the 6 test
    // images, so a test reader rewound to the wrong place scores others).
    const auto scores = [&](const std::string& log) {
      std::map<int, std::string> by_iter;
      std::smatch m;
      int at = -1;
      std::istringstream lines(log);
      for (std::string line; std::getline(lines, line);)
        if (std::regex_search(line, m, std::regex(R"(Iteration (\d+), Testing net)")))
          at = std::stoi(m[1]);
        else if (std::regex_search(line, m, std::regex(R"(Test net output #\d+: .*)")) && at >= stopped)
          by_iter[at] += m[0].str() + "\n";
      return by_iter;
    };
    const auto resumed_scores = scores(resumed.output);
    CHECK(resumed_scores.size() == static_cast<size_t>(iter / 5 - (stopped - 1) / 5));  // test_interval 5
    CHECK(resumed_scores == scores(straight.output));
  }
};

TEST_CASE("a stop while a reader is stuck in a read snapshots the iteration exactly and ends the process") {
  // The reader's read used to hold the stop until the scheduler's SIGKILL took the run.
  StalledReaderJob job(8, -1);  // batches of two: iterations 0 to 3 run, the fifth batch waits
  const std::string log = job.stop_while_stuck(
      {"train", job.dir / "solver.yaml"}, "Iteration 3,", "Resume with:", [] {}, 0);
  CHECK_MESSAGE(log.find("Stopped at iteration 4 while data layer 'data' waited ") != std::string::npos, log);
  CHECK_MESSAGE(log.find("(a reader this slow may be stuck") != std::string::npos, log);
  CHECK_MESSAGE(log.find("Training stopped at iteration 4; snapshot written.") != std::string::npos, log);
  // The reader never comes back: crema ends without it.
  CHECK_MESSAGE(log.find("Training ended at iteration 4 with its snapshot written [data layer 'data' is still blocked "
                         "in a read 10 s later; crema exits without waiting for it]") != std::string::npos,
                log);
  CHECK(log.find("Iteration 4,") == std::string::npos);
  // The exit let go of the run's lock as a normal one does: the resume finds none left behind.
  CHECK_FALSE(fs::exists(job.dir / "snap/stall.lock"));
  job.check_exact_resume(4, 8, 9);  // nothing of iteration 4 was taken
}

TEST_CASE("a stop or --time-limit during a setup blocked in a read ends the run 10 s later, keeping nothing stale") {
  // The first image of the TRAIN list is the FIFO: the layer's setup, which reads the first
  // sample for its shape, blocks in it on the main thread, where no stop is polled. The job
  // once hung there until a second Ctrl-C or the scheduler's SIGKILL.
  StalledReaderJob job(0, -1);
  test::Child child({test::crema_binary(), "train", job.dir / "solver.yaml"}, job.dir / "setup.log");
  REQUIRE_MESSAGE(child.wait_for_log("Setting up data (ImageData)", 60), child.log());
  std::this_thread::sleep_for(std::chrono::seconds(1));
  const auto signalled = std::chrono::steady_clock::now();
  child.signal(SIGTERM);
  const int status = child.wait_at_most(60);
  const double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - signalled).count();
  CHECK_MESSAGE(status == 1, child.log());
  CHECK_MESSAGE(took > 9, took);
  CHECK_MESSAGE(took < 30, took);
  CHECK_MESSAGE(
      child.log().find("SIGTERM came during setup, which has made no progress for 10 s since (a read that "
                       "never returns: a data file on a stalled network file system, a FIFO with no "
                       "writer?), and nothing was trained yet, so crema exits without a snapshot") != std::string::npos,
      child.log());
  CHECK_FALSE(fs::exists(job.dir / "snap/stall.lock"));  // let go of, as at any forced exit

  const auto started = std::chrono::steady_clock::now();
  test::Child limited({test::crema_binary(), "train", job.dir / "solver.yaml", "--time-limit", "2s"},
                      job.dir / "limited.log");
  const int limited_status = limited.wait_at_most(60);
  const double limited_took = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  CHECK_MESSAGE(limited_status == 1, limited.log());
  CHECK_MESSAGE(limited_took < 40, limited_took);
  CHECK_MESSAGE(
      limited.log().find("--time-limit 2s passed in this run's setup, so it made no progress, and a requeued "
                         "job would do the same (raise --time-limit); setup has made no progress for 10 s since") !=
          std::string::npos,
      limited.log());
  CHECK(io::regular_file_names(job.dir / "snap").empty());
}

TEST_CASE("a stop while a reader is stuck on a later pass of an iteration (iter_size) undoes the iteration exactly") {
  // iter_size 3 over prefetch 2: iteration 1 begins with batches 3 and 4 ready; its third pass
  // needs batch 5 (images 10 and 11), whose read never ends. The stop used to wait for it.
  StalledReaderJob job(10, -1);
  const std::string log = job.stop_while_stuck(
      {"train", job.dir / "solver.yaml", "--set", "iter_size=3"}, "Iteration 0,", "Resume with:", [] {}, 0);
  CHECK_MESSAGE(log.find("Stopped at iteration 1 while data layer 'data' waited ") != std::string::npos, log);
  CHECK_MESSAGE(log.find("Stopped in iteration 1 after 2 of its 3 passes (iter_size): the iteration is undone") !=
                    std::string::npos,
                log);
  CHECK_MESSAGE(log.find("Training stopped at iteration 1; snapshot written.") != std::string::npos, log);
  CHECK(log.find("Iteration 1 (") == std::string::npos);   // no display: the iteration did not end
  job.check_exact_resume(1, 10, 7, " --set iter_size=3");  // the reader rewound to batch 3
}

TEST_CASE("a stop while a test net's reader is stuck ends the test pass with a snapshot, and the resume tests again") {
  StalledReaderJob job(-1, 2);  // the test pass at iteration 5 takes its first batch, the second waits
  const std::string log = job.stop_while_stuck(
      {"train", job.dir / "solver.yaml"}, "Iteration 5, Testing net (#0)", "Resume with:",
      [&] {
        // The reader comes back once the snapshot is written: crema then ends at once. (Without
        // O_NONBLOCK the open would wait for ever if crema were not reading.)
        int fd = -1;
        for (int i = 0; i < 500 && fd < 0; ++i) {
          fd = ::open(job.fifo().c_str(), O_WRONLY | O_NONBLOCK);
          if (fd < 0) std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
        REQUIRE(fd >= 0);
        ::close(fd);
      },
      0);
  CHECK_MESSAGE(log.find("Stopped at iteration 5 while data layer 'data' of a test net waited ") != std::string::npos,
                log);
  CHECK_MESSAGE(log.find("Test pass of net #0 interrupted after 1 of 2 batches") != std::string::npos, log);
  CHECK(log.find("still blocked") == std::string::npos);
  job.check_exact_resume(5, 2, 11);
}

TEST_CASE("a second Ctrl-C exits at once, status 130, naming the latest snapshot written") {
  // The reader stuck on the fifth batch holds the exit 10 s after the stop's snapshot: a
  // second Ctrl-C then comes after it for sure. It said "without a snapshot" whatever was on disk.
  StalledReaderJob job(8, -1);
  test::Child child({test::crema_binary(), "train", job.dir / "solver.yaml"}, job.dir / "twice.log");
  REQUIRE_MESSAGE(child.wait_for_log("Iteration 3,", 60), child.log());
  std::this_thread::sleep_for(std::chrono::seconds(2));
  child.signal(SIGINT);
  REQUIRE_MESSAGE(child.wait_for_log("Resume with:", 30), child.log());
  child.signal(SIGINT);
  CHECK(child.wait_at_most(60) == 130);
  const std::string log = child.log();
  CHECK_MESSAGE(
      log.find("Second interrupt: exiting now; the latest snapshot written is of iteration 4.\n") != std::string::npos,
      log);
  CHECK(fs::exists(job.dir / "snap/stall_iter_4.solverstate.h5"));
}

TEST_CASE("a run that finishes while its reader is stuck reading ahead still ends") {
  // Iterations 0 to 3 take images 0 to 7; the reader, working ahead, is stuck on image 8.
  StalledReaderJob job(8, -1, true);
  test::Child child(
      {test::crema_binary(), "train", job.dir / "solver.yaml", "--set", "max_iter=4", "--set", "display=3"},
      job.dir / "ahead.log");
  CHECK(child.wait_at_most(60) == 0);
  const std::string log = child.log();
  CHECK_MESSAGE(log.find("Optimization Done.") != std::string::npos, log);
  CHECK_MESSAGE(log.find("Training ended at iteration 4 with its snapshot written [a data reader is still blocked in "
                         "a read 10 s later; crema exits without waiting for it]") != std::string::npos,
                log);
  CHECK(fs::exists(job.dir / "snap/stall_iter_4.caffemodel.h5"));
  CHECK_FALSE(fs::exists(job.dir / "snap/stall.lock"));
  // The HDF5Output layer closes (and publishes its file) before the data layer waits.
  CHECK(fs::exists(job.dir / "out.h5"));
}

TEST_CASE("an HDF5Output file that cannot be put in place at the end fails the run, naming where its rows are") {
  StalledReaderJob job(-1, -1, true);  // no reader stuck: the TRAIN net writes ip to out.h5
  test::Child child({test::crema_binary(), "train", job.dir / "solver.yaml", "--set", "max_iter=100000000"},
                    job.dir / "blocked_output.log");
  REQUIRE_MESSAGE(child.wait_for_log("Iteration 5,", 60), child.log());
  // Something made at the name during the run (a folder, here): the rename cannot replace it.
  fs::create_directories(job.dir / "out.h5/inside");
  child.signal(SIGTERM);
  CHECK(child.wait() == 1);  // was 0: the failure was only logged as the net was destroyed
  const std::string log = child.log();
  CHECK_MESSAGE(log.find("out: cannot") != std::string::npos, log);
  std::smatch m;
  REQUIRE_MESSAGE(std::regex_search(log, m, std::regex(R"(the rows written are in '([^']+)')")), log);
  CHECK(fs::exists(std::string(m[1])));
  CHECK(fs::exists(job.dir / "snap"));  // the stop's snapshot was written before
  CHECK_MESSAGE(log.find("Resume with: ") != std::string::npos, log);  // and the way on is still said
}

TEST_CASE("extract-features stopped while its reader is stuck ends, writing nothing") {
  StalledReaderJob job(-1, 2);  // the TEST net's first batch is read, the second waits
  const std::string out = job.dir / "features.h5";
  const std::string log = job.stop_while_stuck(
      {"extract-features", "--model", job.dir / "solver.yaml", "--blobs", "ip", "--iterations", "2", "-o", out},
      "Extracting ip from 2 batches", "interrupted after 1 of 2 batches", [] {}, 1);
  CHECK_MESSAGE(log.find("SIGTERM received: stopping") != std::string::npos, log);
  CHECK_MESSAGE(log.find("interrupted after 1 of 2 batches; nothing was written to " + out +
                         " [data layer 'data' is still blocked in a read 10 s later; crema exits without waiting "
                         "for it]") != std::string::npos,
                log);
  CHECK_FALSE(fs::exists(out));
  for (const auto& name : io::regular_file_names(job.dir.path()))
    CHECK_MESSAGE(name.rfind("features.h5", 0) != 0, name);  // no draft left either
}

TEST_CASE("crema test stopped while its reader is stuck ends, saying the scores of the batch it did") {
  StalledReaderJob job(-1, 2);  // the TEST net's first batch is read, the second waits
  const std::string log = job.stop_while_stuck(
      {"test", "--model", job.dir / "solver.yaml", "--iterations", "2"},
      "Batch 0, loss = ", "interrupted after 1 of 2 batches", [] {}, 1);
  CHECK_MESSAGE(log.find("SIGTERM received: stopping") != std::string::npos, log);
  CHECK_MESSAGE(
      log.find("interrupted after 1 of 2 batches: the scores above are of that one batch only [data layer 'data' "
               "is still blocked in a read 10 s later; crema exits without waiting for it]") != std::string::npos,
      log);
  CHECK_MESSAGE(log.find("] loss = ") != std::string::npos, log);
}

TEST_CASE("a scheduler's warning signal stops with a snapshot though the log's reader is gone") {
  ToyJob job(1000000);
  // Slurm's --signal=USR1@T (SGE's and LSF's warnings too) killed crema without a snapshot, and
  // so did the first log line written after `| tee` ended (SIGPIPE).
  test::Child child({test::crema_binary(), "train", job.solver, "--set", "display=1", "--log", job.dir / "usr1.log"},
                    job.dir / "usr1.log", test::Child::Output::closed_pipe);
  REQUIRE(child.pid() > 0);
  REQUIRE_MESSAGE(child.wait_for_log("Iteration 20,", 60), child.log());
  child.signal(SIGUSR1);
  CHECK(child.wait() == 0);
  const std::string log = child.log();
  CHECK_MESSAGE(log.find("SIGUSR1 received: stopping") != std::string::npos, log);
  std::smatch m;
  REQUIRE_MESSAGE(std::regex_search(log, m, std::regex(R"(Resume with: .* --snapshot (\S+\.solverstate\.h5))")), log);
  CHECK(fs::exists(m[1].str()));
}

TEST_CASE("--signal-effect and Caffe's --sigint_effect and --sighup-effect choose what each signal does") {
  ToyJob job(1000000);
  test::Child child({test::crema_binary(), "train", job.solver, "--set", "display=1", "--sigint_effect", "snapshot",
                     "--sighup-effect", "stop", "--signal-effect", "TERM=none, sigusr2=snapshot"},
                    job.dir / "effects.log");
  REQUIRE_MESSAGE(child.wait_for_log("Iteration 20,", 60), child.log());
  child.signal(SIGINT);  // a snapshot, and training goes on
  REQUIRE_MESSAGE(child.wait_for_log("Snapshotting solver state", 30), child.log());
  std::smatch m;
  const std::string after_int = child.log();
  REQUIRE(std::regex_search(after_int, m, std::regex(R"(toy_iter_(\d+)\.solverstate\.h5)")));
  const int snap_iter = std::stoi(m[1]);
  CHECK(after_int.find("SIGINT received: a snapshot is written once the current iteration") != std::string::npos);
  REQUIRE_MESSAGE(child.wait_for_log("Iteration " + std::to_string(snap_iter + 5) + ",", 30), child.log());
  child.signal(SIGTERM);  // ignored
  const int term_iter = snap_iter + 5;
  REQUIRE_MESSAGE(child.wait_for_log("Iteration " + std::to_string(term_iter + 10) + ",", 30), child.log());
  child.signal(SIGUSR2);  // a snapshot too
  REQUIRE_MESSAGE(child.wait_for_log("SIGUSR2 received: a snapshot is written once the current iteration", 30),
                  child.log());
  REQUIRE_MESSAGE(child.wait_for_log("Iteration " + std::to_string(term_iter + 20) + ",", 30), child.log());
  child.signal(SIGHUP);  // stops
  CHECK(child.wait() == 0);
  const std::string log = child.log();
  CHECK(log.find("SIGTERM") == std::string::npos);
  CHECK_MESSAGE(log.find("SIGHUP received: stopping") != std::string::npos, log);
  CHECK(log.find("Resume with") != std::string::npos);

  const auto unknown = test::run(crema_cmd("train " + job.solver + " --signal-effect KILL=stop"));
  CHECK(unknown.status == 2);
  CHECK_MESSAGE(unknown.output.find("'KILL' is not a signal crema handles; give INT, TERM, HUP, USR1, USR2 or XCPU") !=
                    std::string::npos,
                unknown.output);
  const auto twice = test::run(crema_cmd("train " + job.solver + " --signal-effect INT=none --sigint-effect stop"));
  CHECK(twice.status == 2);
  CHECK_MESSAGE(twice.output.find("it gives SIGINT an effect twice") != std::string::npos, twice.output);
  const auto empty = test::run(crema_cmd("train " + job.solver + " --signal-effect ''"));  // was taken silently
  CHECK(empty.status == 2);
  CHECK_MESSAGE(empty.output.find("--signal-effect: an empty value") != std::string::npos, empty.output);
}

TEST_CASE("a snapshot folder removed during a run comes back with its lock and metrics files") {
  // A clean-up job (or a user) empties the run's folder: the run's open files went with it.
  ToyJob job(1000000);
  const std::string snap = job.dir / "snap";
  // One thread: two on a loaded machine's two cores can take a minute for 200 iterations.
  test::Child run(
      {test::crema_binary(), "train", job.solver, "--set", "display=1", "--set", "snapshot=200", "--threads", "1"},
      job.dir / "run.log");
  REQUIRE_MESSAGE(run.wait_for_log("Snapshotting solver state", 60), run.log());
  fs::rename(snap, snap + ".gone");  // at once, as the run keeps writing there
  fs::remove_all(snap + ".gone");
  // The lock is taken again at once: a second run under the prefix is still refused.
  REQUIRE_MESSAGE(run.wait_for_log("toy.lock was removed during the run; taken again", 30), run.log());
  CHECK(fs::exists(snap + "/toy.lock"));
  const auto second = test::run(crema_cmd("train " + job.solver + " --resume --set max_iter=3"));
  CHECK(second.status == 1);
  CHECK_MESSAGE(second.output.find("another crema run is training under the prefix") != std::string::npos,
                second.output);
  REQUIRE_MESSAGE(run.wait_for_log("toy.train.csv was removed during the run; the rows from iteration", 30), run.log());
  REQUIRE_MESSAGE(run.wait_for_log("the TensorBoard events file was removed during the run", 30), run.log());
  // A snapshot written once all that came back (not one the log held before).
  const auto snapshots = [&] { return test::count_of(run.log(), "Snapshotting solver state"); };
  const size_t before = snapshots();
  for (int i = 0; i < 3000 && snapshots() == before; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  REQUIRE(snapshots() > before);
  run.signal(SIGTERM);
  CHECK(run.wait() == 0);
  const std::string log = run.log();
  const std::string mark = "Snapshotting to HDF5 file ";
  const size_t at = log.rfind(mark) + mark.size();
  CHECK(fs::exists(log.substr(at, log.find('\n', at) - at)));  // the latest snapshot
  // The new CSV file starts with its header, then rows.
  const std::string csv = test::read_file(snap + "/toy.train.csv");
  CHECK(csv.rfind("iter,wall_time,smoothed_loss,", 0) == 0);
  CHECK(std::count(csv.begin(), csv.end(), '\n') > 2);
  CHECK_FALSE(fs::exists(snap + "/toy.lock"));  // let go at the end
  bool events = false;
  for (const auto& e : fs::directory_iterator(snap + "/toy.tensorboard")) events = events || e.is_regular_file();
  CHECK(events);
}

TEST_CASE("one run per snapshot_prefix: a second is refused while the first trains, and a killed one leaves no lock") {
  ToyJob job(1000000);
  const std::string lock = job.dir / "snap/toy.lock";
  {
    test::Child first({test::crema_binary(), "train", job.solver, "--set", "display=1"}, job.dir / "first.log");
    REQUIRE_MESSAGE(first.wait_for_log("Iteration 5,", 60), first.log());
    CHECK(test::read_file(lock).find("crema train " + job.solver + ", pid " + std::to_string(first.pid()) +
                                     " on host ") != std::string::npos);
    // A job submitted twice, or requeued while its first instance still runs.
    const auto second = test::run(crema_cmd("train " + job.solver + " --resume --set max_iter=3"));
    CHECK(second.status == 1);
    CHECK_MESSAGE(second.output.find("another crema run is training under the prefix '" + (job.dir / "snap/toy") +
                                     "' (crema train " + job.solver + ", pid " + std::to_string(first.pid())) !=
                      std::string::npos,
                  second.output);
    CHECK(second.output.find("give this run a prefix of its own (--set snapshot_prefix=" + (job.dir / "snap/toy_2") +
                             "). If that run is gone (its host crashed), remove " + lock) != std::string::npos);
    const auto overwrite = test::run(crema_cmd("train " + job.solver + " --overwrite --set max_iter=3"));
    CHECK(overwrite.status == 1);
    CHECK(overwrite.output.find("another crema run is training") != std::string::npos);
    first.signal(SIGINT);
    REQUIRE(first.wait() == 0);
  }
  CHECK_FALSE(fs::exists(lock));  // let go with the run
  std::smatch m;
  const std::string log = test::read_file(job.dir / "first.log");
  REQUIRE(std::regex_search(log, m, std::regex(R"(toy_iter_(\d+)\.solverstate\.h5)")));
  const std::string finish = std::to_string(std::stoi(m[1]) + 3);
  // Killed outright (SIGKILL, a node's crash): the file stays, the kernel let go of the lock.
  test::Child killed({test::crema_binary(), "train", job.solver, "--resume", "--set", "display=1"},
                     job.dir / "killed.log");
  REQUIRE_MESSAGE(killed.wait_for_log("Iteration " + std::string(m[1]) + ",", 60), killed.log());
  killed.signal(SIGKILL);
  killed.wait();
  CHECK(fs::exists(lock));
  // A kill in the middle of a snapshot leaves its temporary file; only this prefix's go.
  const std::string unfinished = job.dir / "snap/toy_iter_77.caffemodel.h5.tmp-12345",
                    other_prefix = job.dir / "snap/toy_2_iter_77.caffemodel.h5.tmp-12345",
                    not_temp = job.dir / "snap/toy_iter_77.caffemodel.h5.tmp-x";
  for (const std::string& f : {unfinished, other_prefix, not_temp}) test::write_file(f, std::string(2 << 20, 'w'));
  const auto resumed = test::run(crema_cmd("train " + job.solver + " --resume --set max_iter=" + finish));
  CHECK_MESSAGE(resumed.status == 0, resumed.output);
  CHECK(resumed.output.find("Optimization Done.") != std::string::npos);
  CHECK_MESSAGE(resumed.output.find("Removed " + unfinished +
                                    " (2.0 MiB), a snapshot file a killed run left unfinished") != std::string::npos,
                resumed.output);
  CHECK_FALSE(fs::exists(unfinished));
  CHECK(fs::exists(other_prefix));
  CHECK(fs::exists(not_temp));
  CHECK_MESSAGE(resumed.output.find(lock + " was left by a run that ended without letting go of it (crema train " +
                                    job.solver + ", pid " + std::to_string(killed.pid())) != std::string::npos,
                resumed.output);
  CHECK_FALSE(fs::exists(lock));
}

TEST_CASE("Ctrl-C during a long test pass stops at once with a snapshot, the resumed run tests again exactly") {
  ToyJob job(1000000);
  // 130 test images in batches of 50: a pass stopped after any batch but the 13th leaves the
  // reader mid-way, so a resume that did not rewind would score other images.
  test::write_toy_idx(job.dir.path().string(), "test", 130, 2);
  // A test pass far longer than any grace period a scheduler gives after SIGTERM.
  test::Child child({test::crema_binary(), "train", job.solver, "--set", "test_initialization=false", "--set",
                     "test_iter=100000000"},
                    job.dir / "in_test.log");
  REQUIRE_MESSAGE(child.wait_for_log("Iteration 20, Testing net", 60), child.log());
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  child.signal(SIGINT);
  CHECK(child.wait() == 0);
  const std::string log = child.log();
  CHECK_MESSAGE(log.find("interrupted after") != std::string::npos, log);
  CHECK(log.find("Iteration 21,") == std::string::npos);  // no further training step
  std::smatch m;
  REQUIRE_MESSAGE(std::regex_search(log, m, std::regex(R"(Resume with: .* --snapshot (\S+_iter_20\.solverstate\.h5))")), log);
  const std::string state = m[1];

  // Resumed with a short test pass, it scores iteration 20 as a run that was never stopped.
  const std::string common = " --set test_initialization=false --set test_iter=3 --set max_iter=30";
  const auto resumed = test::run(crema_cmd("train " + job.solver + common + " --snapshot " + state));
  REQUIRE_MESSAGE(resumed.status == 0, resumed.output);
  const auto straight = test::run(crema_cmd("train " + job.solver + common + " --set snapshot_prefix=" +
                                            (job.dir / "straight/toy")));
  REQUIRE_MESSAGE(straight.status == 0, straight.output);
  const auto scores = [](const std::string& out) {
    std::string s;
    std::smatch hit;
    for (auto it = out.cbegin(); std::regex_search(it, out.cend(), hit, std::regex(R"(Test net output #\d+: .*)"));
         it = hit[0].second)
      s += hit[0].str() + "\n";
    return s;
  };
  CHECK(scores(resumed.output).find("loss = ") != std::string::npos);
  CHECK(scores(resumed.output) == scores(straight.output));
  check_same_weights(job.dir / "snap/toy_iter_30.caffemodel.h5", job.dir / "straight/toy_iter_30.caffemodel.h5");
}

TEST_CASE("Ctrl-C in the final test pass names the crema test command that scores the final weights") {
  ToyJob job(20);  // the only test pass is the final one, at iteration 20
  auto stopped_in_final_test = [&](const std::vector<std::string>& extra, const std::string& log_name) {
    std::vector<std::string> args = {test::crema_binary(), "train", job.solver, "--set", "test_initialization=false",
                                     "--set", "test_iter=100000000"};
    args.insert(args.end(), extra.begin(), extra.end());
    test::Child child(args, job.dir / log_name);
    REQUIRE_MESSAGE(child.wait_for_log("Iteration 20, Testing net", 60), child.log());
    child.signal(SIGINT);
    CHECK(child.wait() == 0);
    const std::string log = child.log();
    CHECK_MESSAGE(log.find("interrupted after") != std::string::npos, log);
    CHECK(log.find("Resume with") == std::string::npos);  // a resume would have nothing to train
    return log;
  };
  const std::string log = stopped_in_final_test({"--set", "snapshot=10"}, "final_test.log");
  std::smatch m;
  REQUIRE_MESSAGE(std::regex_search(log, m, std::regex(R"(Score its weights with: (crema test .*))")), log);
  std::string command = m[1];
  // The run's --set overrides come along, so crema test builds the net training tested.
  CHECK(command.find("--iterations 100000000 --set test_initialization=false --set test_iter=100000000 --set "
                     "snapshot=10") != std::string::npos);
  command.replace(command.find("--iterations 100000000"), 22, "--iterations 2");
  const auto scored = test::run(test::crema_binary() + command.substr(5));
  REQUIRE_MESSAGE(scored.status == 0, scored.output);
  CHECK(scored.output.find("accuracy = ") != std::string::npos);

  // Without snapshot_after_train (and here with no periodic snapshots either: the start
  // warned that only a stop writes weights), the stop still leaves the final weights.
  fs::remove(job.dir / "snap/toy_iter_20.caffemodel.h5");
  const std::string none = stopped_in_final_test({"--set", "snapshot_after_train=false", "--set", "snapshot=0",
                                                  "--snapshot", job.dir / "snap/toy_iter_10.solverstate.h5"},
                                                 "no_final.log");
  CHECK_MESSAGE(none.find("only a stop by Ctrl-C or SIGTERM") != std::string::npos, none);
  CHECK_MESSAGE(none.find("Score its weights with: crema test") != std::string::npos, none);
  CHECK_MESSAGE(none.find("toy_iter_20.caffemodel.h5") != std::string::npos, none);
  CHECK(fs::exists(job.dir / "snap/toy_iter_20.caffemodel.h5"));
  CHECK(fs::exists(job.dir / "snap/toy_iter_20.solverstate.h5"));
}

TEST_CASE("SIGHUP in the final test pass writes the final weights when snapshot_after_train is off") {
  ToyJob job(20);
  // 20000 test batches: seconds, long enough for the signal to land in the pass.
  test::Child child({test::crema_binary(), "train", job.solver, "--set", "test_initialization=false", "--set",
                     "test_iter=20000", "--set", "snapshot=0", "--set", "snapshot_after_train=false"},
                    job.dir / "hup.log");
  REQUIRE_MESSAGE(child.wait_for_log("Iteration 20, Testing net", 60), child.log());
  child.signal(SIGHUP);
  CHECK(child.wait() == 0);
  const std::string log = child.log();
  CHECK_MESSAGE(log.find("SIGHUP received: a snapshot is written") != std::string::npos, log);
  CHECK_MESSAGE(log.find("Optimization Done.") != std::string::npos, log);
  CHECK(fs::exists(job.dir / "snap/toy_iter_20.caffemodel.h5"));
  CHECK(fs::exists(job.dir / "snap/toy_iter_20.solverstate.h5"));
}

TEST_CASE("a misspelt key prints file:line:col and a suggestion, exit status 2") {
  ToyJob job(10);
  std::string yaml = test::read_file(job.solver);
  yaml.replace(yaml.find("momentum:"), 9, "momentun:");
  test::write_file(job.solver, yaml);
  // Line of the typo, 1-based.
  int line = 1;
  for (size_t i = 0; i < yaml.find("momentun:"); ++i) line += yaml[i] == '\n';
  const auto r = test::run(crema_cmd("train " + job.solver));
  CHECK(r.status == 2);
  CHECK_MESSAGE(r.output.find(job.solver + ":" + std::to_string(line) + ":1") != std::string::npos, r.output);
  CHECK(r.output.find("did you mean 'momentum'") != std::string::npos);
  CHECK(r.output.find("terminate") == std::string::npos);
}

TEST_CASE("a missing data file is named, no stack trace, non-zero exit") {
  ToyJob job(10);
  fs::remove(job.dir / "train-images-idx3-ubyte");
  const auto r = test::run(crema_cmd("train " + job.solver));
  CHECK(r.status != 0);
  CHECK(r.output.find(job.dir / "train-images-idx3-ubyte") != std::string::npos);
  CHECK(r.output.find("terminate") == std::string::npos);
  CHECK(r.output.find("Aborted") == std::string::npos);
  // One error line.
  int error_lines = 0;
  for (size_t p = r.output.find("\nE"); p != std::string::npos; p = r.output.find("\nE", p + 1)) ++error_lines;
  CHECK(error_lines + (r.output.rfind("E", 0) == 0 ? 1 : 0) == 1);
}

TEST_CASE("--weights with --snapshot, and bad command lines, are refused") {
  ToyJob job(10);
  auto r = test::run(crema_cmd("train " + job.solver + " --weights a.h5 --snapshot b.solverstate.h5"));
  CHECK(r.status == 2);
  CHECK(r.output.find("not both") != std::string::npos);
  r = test::run(crema_cmd("train"));
  CHECK(r.status == 2);
  r = test::run(crema_cmd("train " + job.solver + " --set max_iter=abc"));
  CHECK(r.status == 2);
  CHECK(r.output.find("--set max_iter=abc") != std::string::npos);
  r = test::run(crema_cmd("train " + job.dir / "nope.yaml"));
  CHECK(r.status != 0);
  CHECK(r.output.find("nope.yaml") != std::string::npos);
}

TEST_CASE("a misspelt option or command is named with its closest spelling, in one line, exit status 2") {
  ToyJob job(10);
  auto r = test::run(crema_cmd("train " + job.solver + " --wieghts a.h5"));
  CHECK(r.status == 2);
  CHECK_MESSAGE(r.output.find("crema train: unknown option '--wieghts' (did you mean '--weights'?); 'crema train "
                              "--help' lists the options") != std::string::npos,
                r.output);
  r = test::run(crema_cmd("train " + job.solver + " --snapshto=x.solverstate.h5"));
  CHECK(r.status == 2);
  CHECK_MESSAGE(r.output.find("unknown option '--snapshto' (did you mean '--snapshot'?)") != std::string::npos,
                r.output);
  // train's solver, given twice or not at all (CLI11 said "--solver: At Most 1 required but received 2").
  r = test::run(crema_cmd("train " + job.solver + " --solver " + job.solver));
  CHECK(r.status == 2);
  CHECK_MESSAGE(r.output.find("crema train: the solver is given both as an argument and with --solver; give it once: "
                              "crema train SOLVER.yaml (or --solver SOLVER.yaml)") != std::string::npos,
                r.output);
  r = test::run(crema_cmd("train --set max_iter=5"));
  CHECK(r.status == 2);
  CHECK_MESSAGE(r.output.find("crema train: give the solver config: crema train SOLVER.yaml (or --solver "
                              "SOLVER.yaml)") != std::string::npos,
                r.output);
  r = test::run(crema_cmd("train --solver=" + job.solver + " --solver " + job.solver));
  CHECK(r.status == 2);
  CHECK_MESSAGE(r.output.find("crema train: the solver is given more than once; give it once") != std::string::npos,
                r.output);
  // Help lists the solver once, not as a required positional and a required --solver.
  r = test::run(crema_cmd("train --help"));
  CHECK(r.status == 0);
  CHECK_MESSAGE(r.output.find("REQUIRED") == std::string::npos, r.output);
  CHECK_MESSAGE(r.output.find("solver TEXT") != std::string::npos, r.output);
  CHECK_MESSAGE(r.output.find("--solver TEXT") == std::string::npos, r.output);
  r = test::run(crema_cmd("trian " + job.solver));
  CHECK(r.status == 2);
  CHECK_MESSAGE(
      r.output.find("crema: unknown command 'trian' (did you mean 'train'?); the commands are train, test,") !=
          std::string::npos,
      r.output);
  // Caffe's tools by their own names.
  r = test::run(crema_cmd("device_query"));
  CHECK(r.status == 2);
  CHECK_MESSAGE(r.output.find("crema: unknown command 'device_query' (Caffe's device_query is crema device); the "
                              "commands are") != std::string::npos,
                r.output);
  r = test::run(crema_cmd("classification"));
  CHECK_MESSAGE(r.output.find("(Caffe's classification is crema classify)") != std::string::npos, r.output);
  r = test::run(crema_cmd("convert_mnist_data"));
  CHECK_MESSAGE(r.output.find("(Caffe's convert_mnist_data is not needed: crema's Data layer reads MNIST's IDX files "
                              "as they are)") != std::string::npos,
                r.output);
  // The net without --model: said so, not only "--model is required".
  r = test::run(crema_cmd("time " + job.solver));
  CHECK(r.status == 2);
  CHECK_MESSAGE(
      r.output.find("crema time: give the net with --model (crema time --model " + job.solver) != std::string::npos,
      r.output);
  // `crema help` and `crema help train`, as git takes them.
  r = test::run(crema_cmd("help"));
  CHECK(r.status == 0);
  CHECK(r.output.find("convert-imageset") != std::string::npos);
  r = test::run(crema_cmd("help trian"));
  CHECK(r.status == 2);
  CHECK(r.output.find("crema help: unknown command 'trian' (did you mean 'train'?)") != std::string::npos);
  r = test::run(crema_cmd("help train"));
  CHECK(r.status == 0);
  CHECK(r.output.find("--snapshot") != std::string::npos);
  // An option of another subcommand: named, nothing suggested.
  r = test::run(crema_cmd("train " + job.solver + " --iterations 5"));
  CHECK(r.status == 2);
  CHECK_MESSAGE(r.output.find("crema train: unknown option '--iterations'; 'crema train --help'") != std::string::npos,
                r.output);
  // --gpu -1 was taken as "no GPU" and trained on the CPU.
  r = test::run(crema_cmd("train " + job.solver + " --gpu -1"));
  CHECK(r.status == 2);
  CHECK_MESSAGE(r.output.find("--gpu: Value -1 not in range 0 to 2147483647") != std::string::npos, r.output);
  r = test::run(crema_cmd("train " + job.solver + " --threads 0"));
  CHECK(r.status == 2);
  CHECK(r.output.find("--threads: Value 0 not in range 1") != std::string::npos);
  // A level beyond an int was "Could not convert: --level = …".
  r = test::run(crema_cmd("train " + job.solver + " --level -99999999999"));
  CHECK(r.status == 2);
  CHECK_MESSAGE(
      r.output.find("--level: Value -99999999999 not in range -2147483648 to 2147483647") != std::string::npos,
      r.output);
  // The readers `time --data` times run on the host: a --gpu was silently ignored.
  r = test::run(crema_cmd("time --data --model " + job.solver + " --gpu 0"));
  CHECK(r.status == 2);
  CHECK_MESSAGE((r.output.find("--data excludes --gpu") != std::string::npos ||
                 r.output.find("--gpu excludes --data") != std::string::npos),
                r.output);
  // A misspelt required option is the mistake, not the option it hides.
  r = test::run(crema_cmd("test --modle " + job.solver));
  CHECK(r.status == 2);
  CHECK_MESSAGE(r.output.find("crema test: unknown option '--modle' (did you mean '--model'?)") != std::string::npos,
                r.output);
  // A command's option before the command; an option's value that starts with '-'.
  r = test::run(crema_cmd("--threads 2 train " + job.solver));
  CHECK(r.status == 2);
  CHECK_MESSAGE(r.output.find("'--threads' is an option of the commands, not of crema itself: put it after the "
                              "command") != std::string::npos,
                r.output);
  r = test::run(crema_cmd("convert " + job.solver + " -o" + (job.dir / "c.yaml") + " --set -x --bogus"));
  CHECK(r.status == 2);
  CHECK_MESSAGE(r.output.find("crema convert: unknown option '--bogus'") != std::string::npos, r.output);
  // A flag takes no value: the option after it was once skipped as its value.
  r = test::run(crema_cmd("convert-imageset --gray --bogus a b c"));
  CHECK(r.status == 2);
  CHECK_MESSAGE(r.output.find("crema convert-imageset: unknown option '--bogus'") != std::string::npos, r.output);
  r = test::run(crema_cmd("convert-imageset a b c --shuffle --seed -1"));
  CHECK(r.status == 2);
  CHECK_MESSAGE(r.output.find("--seed: Value -1 not in range 0 to 9223372036854775807") != std::string::npos, r.output);
  // An output name taken by a directory: said so (the rename's failure once read "Success").
  fs::create_directories(job.dir / "taken.prototxt");
  r = test::run(crema_cmd("convert " + job.solver + " -o " + (job.dir / "taken.prototxt")));
  CHECK(r.status != 0);
  CHECK_MESSAGE(r.output.find("cannot write '" + (job.dir / "taken.prototxt") +
                              "': a directory of that name is in the way") != std::string::npos,
                r.output);
  // An output in a folder that does not exist: named, not its temporary file, before the
  // input is read (an ONNX export built the net first).
  r = test::run(crema_cmd("convert " + job.solver + " -o " + (job.dir / "nodir/c.yaml")));
  CHECK(r.status == 2);
  CHECK_MESSAGE(r.output.find("cannot write '" + (job.dir / "nodir/c.yaml") + "': the folder '" + (job.dir / "nodir") +
                              "' does not exist") != std::string::npos,
                r.output);
}

TEST_CASE("YAML mistakes are reported at the line to change, saying what to change") {
  ToyJob job(10);
  const std::string yaml = test::read_file(job.solver);
  auto line_of = [&](const std::string& text, const std::string& what) {
    int line = 1;
    for (size_t i = 0; i < text.find(what); ++i) line += text[i] == '\n';
    return std::to_string(line);
  };
  // A key without its colon: yaml-cpp stops a line later with "illegal map value".
  std::string bad = yaml;
  bad.replace(bad.find("max_iter:"), 9, "max_iter");
  test::write_file(job.solver, bad);
  auto r = test::run(crema_cmd("train " + job.solver));
  CHECK(r.status == 2);
  CHECK_MESSAGE(r.output.find(job.solver + ":" + line_of(bad, "max_iter") +
                              ":1: YAML syntax error: 'max_iter 10' has "
                              "no ':' after its key; write 'max_iter: 10'") != std::string::npos,
                r.output);
  // The same as the file's last line is no syntax error to YAML, but a key 'max_iter 10' with no
  // value (it was "unknown key 'max_iter 10' (did you mean 'max_iter'?)"); a layer's key too.
  bad = yaml;
  const size_t max_iter_line = bad.find("max_iter:");
  bad.erase(max_iter_line, bad.find('\n', max_iter_line) + 1 - max_iter_line);
  bad += "max_iter 10\n\n";
  test::write_file(job.solver, bad);
  r = test::run(crema_cmd("train " + job.solver));
  CHECK(r.status == 2);
  CHECK_MESSAGE(r.output.find(job.solver + ":" + line_of(bad, "max_iter") +
                              ":1: max_iter 10: 'max_iter 10' has no ':' after its key; write 'max_iter: 10'") !=
                    std::string::npos,
                r.output);
  bad = yaml + "display 1\n";
  test::write_file(job.solver, bad);
  r = test::run(crema_cmd("train " + job.solver));
  CHECK(r.status == 2);
  CHECK_MESSAGE(r.output.find("'display 1' has no ':' after its key; write 'display: 1'") != std::string::npos,
                r.output);
  // A tab in the indentation.
  bad = yaml;
  const size_t layer = bad.find("\n    - {name: conv");
  REQUIRE(layer != std::string::npos);
  bad.replace(layer + 1, 4, "\t");
  test::write_file(job.solver, bad);
  r = test::run(crema_cmd("train " + job.solver));
  CHECK(r.status == 2);
  CHECK_MESSAGE(r.output.find(":" + line_of(bad, "\t") +
                              ":1: YAML syntax error: a tab indents this line; YAML "
                              "indents with spaces only") != std::string::npos,
                r.output);
  // A comment after the key without ':' makes yaml-cpp stop there, saying "end of map not found".
  bad = yaml;
  bad.replace(bad.find("max_iter:"), 9, "max_iter");
  bad.insert(bad.find("\n", bad.find("max_iter")), "  # how long");
  test::write_file(job.solver, bad);
  r = test::run(crema_cmd("train " + job.solver));
  CHECK_MESSAGE(r.output.find(":" + line_of(bad, "max_iter") + ":1: YAML syntax error: 'max_iter 10' has no ':'") !=
                    std::string::npos,
                r.output);
  // A value holding ': ' unquoted, in a block list item; a block scalar's free text is not blamed.
  bad = yaml;
  bad.insert(bad.find("base_lr"), "note: |\n  free text here\n  \tand a tab\ntype: SGD: fast\n");
  test::write_file(job.solver, bad);
  r = test::run(crema_cmd("train " + job.solver));
  CHECK_MESSAGE(
      r.output.find(":" + line_of(bad, "type: SGD") +
                    ":1: YAML syntax error: a second ': ' in 'type: SGD: "
                    "fast'; a value containing ': ' must be quoted ('type: \"SGD: fast\"')") != std::string::npos,
      r.output);
  // A second document would be ignored.
  test::write_file(job.solver, yaml + "---\nmax_iter: 1\n");
  r = test::run(crema_cmd("train " + job.solver));
  CHECK(r.status == 2);
  CHECK_MESSAGE(r.output.find("a second YAML document starts here") != std::string::npos, r.output);
  // A --set value that is not YAML names its --set, not "<command line>:1:1".
  test::write_file(job.solver, yaml);
  r = test::run(crema_cmd("train " + job.solver + " --set 'base_lr=[1,'"));
  CHECK(r.status == 2);
  CHECK_MESSAGE(r.output.find("--set base_lr=[1,: base_lr: the value '[1,' is not valid YAML") != std::string::npos,
                r.output);
  CHECK(r.output.find("<command line>") == std::string::npos);
}

TEST_CASE("a net file may be a pipe, as the solver file may") {
  ToyJob job(10);
  const std::string yaml = test::read_file(job.solver);
  const size_t solver_keys = yaml.find("base_lr:");
  REQUIRE(yaml.rfind("net:\n", 0) == 0);
  test::write_file(job.dir / "net.yaml", yaml.substr(5, solver_keys - 5));
  test::write_file(job.dir / "piped.yaml", "net: /dev/stdin\n" + yaml.substr(solver_keys));
  // It used to say "net file '/dev/stdin' does not exist" of anything but a regular file.
  const auto r = test::run("cat " + (job.dir / "net.yaml") + " | " + crema_cmd("train " + job.dir / "piped.yaml"));
  CHECK_MESSAGE(r.status == 0, r.output);
  CHECK(r.output.find("Optimization Done.") != std::string::npos);
}

TEST_CASE("crema test scores a trained model, crema time prints per-layer times") {
  ToyJob job(40);
  REQUIRE(test::run(crema_cmd("train " + job.solver)).status == 0);
  const std::string weights = job.dir / "snap/toy_iter_40.caffemodel.h5";
  // The test subcommand accepts the solver file as the model (its net is used).
  auto r = test::run(crema_cmd("test --model " + job.solver + " --weights " + weights + " --iterations 2"));
  REQUIRE_MESSAGE(r.status == 0, r.output);
  std::smatch m;
  REQUIRE(std::regex_search(r.output, m, std::regex(R"(\] accuracy = ([0-9.]+))")));
  CHECK(std::stod(m[1]) > 0.3);
  CHECK(r.output.find("] loss = ") != std::string::npos);
  // Caffe's closing `Loss: X` (the weighted total), which log parsers read, equals the loss line.
  std::smatch total, each;
  REQUIRE(std::regex_search(r.output, total, std::regex(R"(\] Loss: ([0-9.e+-]+))")));
  REQUIRE(std::regex_search(r.output, each, std::regex(R"(\] loss = ([0-9.e+-]+))")));
  CHECK(std::stod(total[1]) == doctest::Approx(std::stod(each[1])).epsilon(1e-4));
  // --set reaches the model file as for train: a net key that does not exist is refused by name.
  r = test::run(crema_cmd("test --model " + job.solver + " --weights " + weights +
                          " --iterations 2 --set net.force_backwards=true"));
  CHECK(r.status != 0);
  CHECK_MESSAGE(r.output.find("force_backwards") != std::string::npos, r.output);
  // A layer renamed in the net (fc2 -> Fc2) is refused, pointing at the file's unused layer of its shapes.
  r = test::run(crema_cmd("test --model " + job.solver + " --weights " + weights +
                          " --iterations 1 --set net.layer[6].name=Fc2"));
  CHECK(r.status == 2);  // a mistake in the command: the weights of another net
  CHECK_MESSAGE(r.output.find("hold(s) no weights for layer 'Fc2': the scores would come from random parameters. Give "
                              "the weights this net was trained to (layers are matched by name); layer 'fc2' of " +
                              weights +
                              ", with parameters of the same shapes, is not used: if 'Fc2' is that layer renamed, give "
                              "it the name 'fc2'") != std::string::npos,
                r.output);

  r = test::run(crema_cmd("time --model " + job.solver + " --iterations 3"));
  REQUIRE_MESSAGE(r.status == 0, r.output);
  for (const char* text : {"conv\tforward:", "conv\tbackward:", "fc2\tforward:", "Average Forward pass:",
                           "Average Backward pass:", "Average Forward-Backward:", "Peak resident memory: "})
    CHECK_MESSAGE(r.output.find(text) != std::string::npos, text);
  CHECK(r.output.find("No layer of this net computes a gradient") == std::string::npos);
  // TEST runs forward only, and says so: no backward lines, no forward-backward summary.
  r = test::run(crema_cmd("time --model " + job.solver + " --iterations 2 --phase TEST"));
  REQUIRE_MESSAGE(r.status == 0, r.output);
  CHECK_MESSAGE(r.output.find("Iteration: 2 forward time: ") != std::string::npos, r.output);
  CHECK(r.output.find("Average Forward pass:") != std::string::npos);
  for (const char* text : {"backward", "Backward"}) CHECK_MESSAGE(r.output.find(text) == std::string::npos, text);
  // A deploy net (Caffe's, no loss) computes no gradient: its backward times of nothing are said
  // to be so, and force_backward times them.
  const std::string deploy = test::source_dir() + "/tests/data/caffe/lenet_deploy/lenet.prototxt";
  r = test::run(crema_cmd("time --model " + deploy + " --iterations 1"));
  REQUIRE_MESSAGE(r.status == 0, r.output);
  CHECK_MESSAGE(r.output.find("No layer of this net computes a gradient (it has no loss, as a deploy net, or") !=
                    std::string::npos,
                r.output);
  r = test::run(crema_cmd("time --model " + deploy + " --iterations 1 --set force_backward=true"));
  REQUIRE_MESSAGE(r.status == 0, r.output);
  CHECK(r.output.find("No layer of this net computes a gradient") == std::string::npos);
  // A net with no layers (in this phase) has nothing to time: averages of nothing read as a fast net.
  test::TempDir dir;
  test::write_file(dir / "empty.yaml", "name: empty\nlayer: []\n");
  r = test::run(crema_cmd("time --model " + (dir / "empty.yaml") + " --iterations 1"));
  CHECK(r.status == 2);
  CHECK_MESSAGE(r.output.find("has no layers, so there is nothing to time") != std::string::npos, r.output);
  // More threads than cores only take turns: said, not silently slower.
  const int cores = crema::available_cores();
  {
    r = test::run(crema_cmd("time --model " + job.solver + " --iterations 1 --threads " + std::to_string(cores + 1)));
    CHECK(r.status == 0);
    CHECK_MESSAGE(r.output.find("--threads " + std::to_string(cores + 1) + " is more than the " +
                                std::to_string(cores) + " CPU(s) crema may use here") != std::string::npos,
                  r.output);
  }
  // A job's share of the node (Slurm's cpuset; here taskset's): the default pool is that
  // size, not the node's (which made every OpenMP barrier spin on one core).
  r = test::run("taskset -c 0 " + crema_cmd("time --model " + job.solver + " --iterations 1"));
  REQUIRE_MESSAGE(r.status == 0, r.output);
  CHECK_MESSAGE(r.output.find("on the CPU with 1 thread(s)") != std::string::npos, r.output);
  r = test::run("taskset -c 0 " + crema_cmd("time --model " + job.solver + " --iterations 1 --threads 2"));
  CHECK_MESSAGE(r.output.find("--threads 2 is more than the 1 CPU(s) crema may use here") != std::string::npos,
                r.output);
}

TEST_CASE("a cgroup CPU quota (Docker's --cpus, a Kubernetes limit) bounds the cores crema counts") {
  test::TempDir dir;
  const std::string root = dir.path().string();
  const auto put = [&](const std::string& path, const std::string& text) {
    std::filesystem::create_directories(std::filesystem::path(root + path).parent_path());
    test::write_file(root + path, text);
  };
  // No cgroup files at all (not Linux's layout, or /proc not mounted): no quota.
  CHECK_FALSE(crema::cgroup_cpu_quota(root).has_value());

  SUBCASE("cgroup v2 in its own namespace (Docker, Podman): cpu.max at the mount's top") {
    put("/proc/self/cgroup", "0::/\n");
    put("/proc/self/mountinfo",
        "22 28 0:21 / /proc rw,nosuid - proc proc rw\n"
        "30 28 0:26 / /sys/fs/cgroup rw,nosuid shared:4 - cgroup2 cgroup2 rw,nsdelegate\n");
    put("/sys/fs/cgroup/cpu.max", "150000 100000\n");
    CHECK(crema::cgroup_cpu_quota(root).value_or(-1) == doctest::Approx(1.5));
    put("/sys/fs/cgroup/cpu.max", "max 100000\n");
    CHECK_FALSE(crema::cgroup_cpu_quota(root).has_value());
  }
  SUBCASE("cgroup v2 seen from the host (systemd, Slurm): the smallest quota on the way up holds") {
    put("/proc/self/cgroup", "0::/system.slice/job.scope\n");
    put("/proc/self/mountinfo", "30 28 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n");
    put("/sys/fs/cgroup/system.slice/job.scope/cpu.max", "max 100000\n");
    put("/sys/fs/cgroup/system.slice/cpu.max", "200000 50000\n");
    put("/sys/fs/cgroup/cpu.max", "max 100000\n");
    CHECK(crema::cgroup_cpu_quota(root).value_or(-1) == doctest::Approx(4.0));
    put("/sys/fs/cgroup/system.slice/job.scope/cpu.max", "250000 100000\n");
    CHECK(crema::cgroup_cpu_quota(root).value_or(-1) == doctest::Approx(2.5));
  }
  SUBCASE("cgroup v1 in a container: the mount shows the container's own folder as its top") {
    put("/proc/self/cgroup",
        "12:memory:/docker/abc\n4:cpu,cpuacct:/docker/abc\n3:cpuset:/docker/abc\n1:name=systemd:/docker/abc\n");
    put("/proc/self/mountinfo",
        "40 31 0:35 /docker/abc /sys/fs/cgroup/cpu,cpuacct ro,nosuid - cgroup cgroup rw,cpu,cpuacct\n"
        "41 31 0:36 /docker/abc /sys/fs/cgroup/cpuset ro,nosuid - cgroup cgroup rw,cpuset\n");
    put("/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us", "50000\n");
    put("/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_period_us", "100000\n");
    CHECK(crema::cgroup_cpu_quota(root).value_or(-1) == doctest::Approx(0.5));
    put("/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us", "-1\n");
    CHECK_FALSE(crema::cgroup_cpu_quota(root).has_value());
  }
  SUBCASE("cgroup v1 with a space in the mount point (written \\040 by the kernel)") {
    put("/proc/self/cgroup", "2:cpu:/batch/j1\n");
    put("/proc/self/mountinfo", "32 31 0:29 / /cg\\040roups/cpu rw - cgroup cgroup rw,cpu\n");
    put("/cg roups/cpu/batch/j1/cpu.cfs_quota_us", "300000\n");
    put("/cg roups/cpu/batch/j1/cpu.cfs_period_us", "100000\n");
    CHECK(crema::cgroup_cpu_quota(root).value_or(-1) == doctest::Approx(3.0));
  }
  // The process itself: whatever this machine sets, the count is at least 1 and at most the
  // CPUs of its affinity.
  CHECK(crema::available_cores() >= 1);
  CHECK(crema::available_cores() <= static_cast<int>(std::max(1u, std::thread::hardware_concurrency())));
}

TEST_CASE("asking for a GPU without a usable one gives one clear message") {
  std::string why;
  if (cuda::device_count(&why) > 0) {
    MESSAGE("SKIPPED: a CUDA device is present, so this no-device test does not apply");
    return;
  }
  ToyJob job(10);
  const auto r = test::run(crema_cmd("train " + job.solver + " --gpu 0"));
  CHECK(r.status == 1);
  CHECK(r.output.find("no usable CUDA device") != std::string::npos);
  CHECK_MESSAGE(r.output.find("; leave out --gpu to run on the CPU") != std::string::npos, r.output);
  CHECK(r.output.find("terminate") == std::string::npos);
  // A model-zoo solver as it is (solver_mode: GPU): the line is named, and the way to the CPU.
  const std::string zoo = job.dir / "zoo_solver.yaml";
  std::string yaml = test::read_file(job.solver);
  const int line = static_cast<int>(std::count(yaml.begin(), yaml.end(), '\n')) + 1;
  test::write_file(zoo, yaml + "solver_mode: GPU\n");
  const auto from_file = test::run(crema_cmd("train " + zoo));
  CHECK(from_file.status == 1);
  CHECK_MESSAGE(from_file.output.find(zoo + ":" + std::to_string(line) +
                                      ":14: solver_mode: GPU: no usable CUDA device") != std::string::npos,
                from_file.output);
  CHECK(from_file.output.find("to train on the CPU, give --set solver_mode=CPU") != std::string::npos);
  CHECK(test::run(crema_cmd("train " + zoo + " --set solver_mode=CPU")).status == 0);
  // Without a driver at all, the runtime's "driver version is insufficient" sent users to
  // upgrade one; said as it is instead.
  if (void* driver = ::dlopen("libcuda.so.1", RTLD_LAZY | RTLD_LOCAL); driver) {
    ::dlclose(driver);
  } else if (cuda::compiled_in()) {
    CHECK_MESSAGE(
        r.output.find("no NVIDIA driver is installed here (libcuda.so.1 cannot be loaded)") != std::string::npos,
        r.output);
    CHECK(r.output.find("insufficient") == std::string::npos);
  }
}

TEST_CASE("Caffe's solver key weights starts a fresh run from those files, before --weights") {
  ToyJob job(10);
  REQUIRE(test::run(crema_cmd("train " + job.solver)).status == 0);
  // A fine-tuning solver beside the first run's folder names its weights relative to itself;
  // layer_wise_reduce (Caffe's multi-GPU key) is accepted.
  std::string yaml = test::read_file(job.solver);
  yaml.replace(yaml.find("/snap/toy"), 9, "/tune/toy");
  test::write_file(job.dir / "tune.yaml", yaml + "weights: snap/toy_iter_10.caffemodel.h5\nlayer_wise_reduce: false\n");
  const std::string from = job.dir / "snap/toy_iter_10.caffemodel.h5";
  auto r = test::run("cd / && " + crema_cmd("train " + (job.dir / "tune.yaml")));
  REQUIRE_MESSAGE(r.status == 0, r.output);
  CHECK_MESSAGE(r.output.find("conv                 loaded from " + from) != std::string::npos, r.output);
  // --weights comes after them, and wins for the layers it holds.
  fs::copy_file(job.dir / "tune/toy_iter_10.caffemodel.h5", job.dir / "other.caffemodel.h5");
  r = test::run(
      crema_cmd("train " + (job.dir / "tune.yaml") + " --overwrite --weights " + (job.dir / "other.caffemodel.h5")));
  REQUIRE_MESSAGE(r.status == 0, r.output);
  CHECK_MESSAGE(
      r.output.find("conv                 loaded from " + (job.dir / "other.caffemodel.h5")) != std::string::npos,
      r.output);
  // A file that is not there is named at its line, before anything is built.
  test::write_file(job.dir / "missing.yaml", yaml + "weights: [snap/none.caffemodel]\n");
  r = test::run(crema_cmd("train " + (job.dir / "missing.yaml") + " --overwrite"));
  CHECK(r.status == 2);
  CHECK_MESSAGE(r.output.find("missing.yaml:") != std::string::npos, r.output);
  CHECK_MESSAGE(r.output.find("weights: 'snap/none.caffemodel' not found") != std::string::npos, r.output);
  // --reinit needs weights to re-learn layers of: the solver's count, none at all is refused.
  r = test::run(crema_cmd("train " + job.solver + " --resume --reinit fc2"));
  CHECK(r.status == 2);
  CHECK_MESSAGE(
      r.output.find("--reinit applies to layers loaded with --weights (or the solver's weights)") != std::string::npos,
      r.output);
  // On a resume, the solver's weights are not used, and said so.
  r = test::run(crema_cmd("train " + (job.dir / "tune.yaml") + " --resume --set max_iter=12"));
  REQUIRE_MESSAGE(r.status == 0, r.output);
  CHECK_MESSAGE(r.output.find("--resume: the solver's weights not used") != std::string::npos, r.output);
  // convert to another folder rewrites them as it rewrites the net path.
  fs::create_directory(job.dir / "elsewhere");
  r = test::run(crema_cmd("convert " + (job.dir / "tune.yaml") + " -o " + (job.dir / "elsewhere/tune.prototxt")));
  REQUIRE_MESSAGE(r.status == 0, r.output);
  CHECK_MESSAGE(
      test::read_file(job.dir / "elsewhere/tune.prototxt").find("weights: \"../snap/toy_iter_10.caffemodel.h5\"") !=
          std::string::npos,
      test::read_file(job.dir / "elsewhere/tune.prototxt"));
}

TEST_CASE("Caffe's single-dash flags (the model zoo's commands) are taken as the long options") {
  ToyJob job(10);
  auto r = test::run(crema_cmd("train -solver " + job.solver + " -sigint_effect stop -threads=1"));
  REQUIRE_MESSAGE(r.status == 0, r.output);
  const std::string weights = job.dir / "snap/toy_iter_10.caffemodel.h5";
  r = test::run(crema_cmd("test -model " + job.solver + " -weights " + weights + " -iterations 2"));
  CHECK_MESSAGE(r.status == 0, r.output);
  CHECK(r.output.find("accuracy = ") != std::string::npos);
  CHECK(test::run(crema_cmd("-version")).output.find("crema ") == 0);
  // A misspelt one gets the suggestion a misspelt --option gets, in the spelling written.
  r = test::run(crema_cmd("train -solverx " + job.solver));
  CHECK(r.status == 2);
  CHECK_MESSAGE(r.output.find("crema train: unknown option '-solverx' (did you mean '--solver'?)") != std::string::npos,
                r.output);
  // A value that starts with a dash is left as it is: here the log file '-weights'.
  r = test::run("cd " + job.dir.path().string() + " && " +
                crema_cmd("test --model " + job.solver + " --weights " + weights + " --iterations 1 --log -weights"));
  CHECK_MESSAGE(r.status == 0, r.output);
  CHECK(fs::exists(job.dir / "-weights"));
}

TEST_CASE("Caffe's --gpu 0,1 and --gpu all are refused as several devices, crema device --gpu all lists all") {
  for (const std::string command : {"train solver.yaml", "test --model m --weights w", "time --model m", "device"})
    for (const std::string devices : {"0,1", "all"}) {
      if (command == "device" && devices == "all") continue;
      const auto r = test::run(crema_cmd(command + " --gpu " + devices));
      CHECK(r.status == 2);
      CHECK_MESSAGE(
          r.output.find("--gpu: crema runs on one GPU per process: give one device number (e.g. --gpu 0); '" + devices +
                        "' (several devices at once, as in Caffe) is not supported") != std::string::npos,
          r.output);
    }
  const auto r = test::run(crema_cmd("time --model m --gpu -1"));
  CHECK(r.status == 2);
  CHECK(r.output.find("--gpu: Value -1 not in range") != std::string::npos);
  // As Caffe's device_query: the same as no --gpu.
  const auto all = test::run(crema_cmd("device --gpu all")), none = test::run(crema_cmd("device"));
  CHECK(all.status == none.status);
  CHECK(all.output == none.output);
}

TEST_CASE("fine-tuning: --weights reports each layer's source, --reinit re-learns a mismatched layer") {
  ToyJob job(20);
  REQUIRE(test::run(crema_cmd("train " + job.solver)).status == 0);
  const std::string weights = job.dir / "snap/toy_iter_20.caffemodel.h5";
  // fc1 shrinks from 32 to 16 outputs, so fc1 and fc2 no longer fit the file.
  const std::string retarget = " --set net.layer[4].inner_product_param.num_output=16 --set snapshot_prefix=" + (job.dir / "ft/toy");

  auto r = test::run(crema_cmd("train " + job.solver + retarget + " --weights " + weights));
  CHECK(r.status == 2);  // a mistake in the command, as the README's exit statuses say
  CHECK_MESSAGE(r.output.find("crema train: --weights: ") != std::string::npos, r.output);
  CHECK_MESSAGE(r.output.find("fc1") != std::string::npos, r.output);
  CHECK(r.output.find("32 256 (8192)") != std::string::npos);
  CHECK(r.output.find("16 256 (4096)") != std::string::npos);
  CHECK(r.output.find("--reinit fc1") != std::string::npos);

  r = test::run(crema_cmd("train " + job.solver + retarget + " --weights " + weights + " --reinit fc1,fc2"));
  REQUIRE_MESSAGE(r.status == 0, r.output);
  CHECK(std::regex_search(r.output, std::regex(R"(conv\s+loaded from \S+toy_iter_20\.caffemodel\.h5)")));
  CHECK(std::regex_search(r.output, std::regex(R"(fc1\s+re-initialised from its fillers)")));
  CHECK(std::regex_search(r.output, std::regex(R"(fc2\s+re-initialised from its fillers)")));

  r = test::run(crema_cmd("train " + job.solver + " --set snapshot_prefix=" + (job.dir / "typo/toy") + " --weights " +
                          weights + " --reinit fcc2"));
  CHECK(r.status == 2);
  CHECK(r.output.find("did you mean 'fc2'") != std::string::npos);
  // A layer without parameters: nothing to re-learn, most likely a slip (it passed silently).
  r = test::run(crema_cmd("train " + job.solver + " --set snapshot_prefix=" + (job.dir / "typo/toy") + " --weights " +
                          weights + " --reinit relu"));
  CHECK(r.status == 2);
  CHECK_MESSAGE(r.output.find("--reinit: names layer 'relu' (ReLU), which has no parameters to re-initialise; the "
                              "layers with parameters are conv, fc1, fc2") != std::string::npos,
                r.output);
  // An empty value (an unset shell variable) once trained from the fillers without a word.
  r = test::run(
      crema_cmd("train " + job.solver + " --set snapshot_prefix=" + (job.dir / "typo/toy") + " --weights ''"));
  CHECK(r.status == 2);
  CHECK_MESSAGE(r.output.find("--weights: an empty value (an unset shell variable?)") != std::string::npos, r.output);

  // A file none of whose layers the net has loads nothing: refused (Caffe trains from the
  // fillers, and so did crema, saying so only at info level); names differing only in
  // case are pointed out.
  // Only the layers with parameters: the file's data, relu, loss still match the net's (a
  // match of those once counted as loading something).
  io::Weights shouted = io::load_weights(weights);
  for (io::LayerWeights& lw : shouted)
    if (!lw.blobs.empty())
      for (char& c : lw.layer) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  io::save_weights(shouted, job.dir / "shouted.caffemodel.h5");
  r = test::run(crema_cmd("train " + job.solver + " --set snapshot_prefix=" + (job.dir / "typo/toy") + " --weights " +
                          (job.dir / "shouted.caffemodel.h5")));
  CHECK(r.status == 2);
  CHECK_MESSAGE(
      r.output.find("--weights: no layer with parameters of '" + (job.dir / "shouted.caffemodel.h5") +
                    "' is in the net, so it would load nothing (the file's: CONV, FC1, FC2; the net's: conv, fc1, "
                    "fc2) ('CONV' in the file, 'conv' in the net: layer names are compared with their case)") !=
          std::string::npos,
      r.output);
  // The same file named by the solver's `weights` key: said at that key, not as --weights.
  r = test::run(crema_cmd("train " + job.solver + " --set snapshot_prefix=" + (job.dir / "typo/toy") +
                          " --set weights=" + (job.dir / "shouted.caffemodel.h5")));
  CHECK(r.status == 2);
  CHECK_MESSAGE(r.output.find(": weights: no layer with parameters of '" + (job.dir / "shouted.caffemodel.h5")) !=
                    std::string::npos,
                r.output);
  CHECK_MESSAGE(r.output.find("--weights") == std::string::npos, r.output);
  // A first convolution taking colour images where the data gives grey ones: said so, with the keys.
  io::Weights colour = io::load_weights(weights);
  for (io::LayerWeights& lw : colour)
    if (lw.layer == "conv") lw.blobs[0].second = Blob({4, 3, 3, 3});
  io::save_weights(colour, job.dir / "colour.caffemodel.h5");
  r = test::run(crema_cmd("train " + job.solver + " --set snapshot_prefix=" + (job.dir / "typo/toy") + " --weights " +
                          (job.dir / "colour.caffemodel.h5")));
  CHECK(r.status == 2);
  CHECK_MESSAGE(r.output.find("layer 'conv' parameter 0 has shape 4 3 3 3 (108) in the file but 4 1 3 3 (36) in the "
                              "net; the weights take colour images (3 channels) and data layer 'd' (Data) gives grey "
                              "ones (1): set transform_param.force_color: true (for encoded records; raw ones keep "
                              "their channels, so convert the images again)") != std::string::npos,
                r.output);
  // One of several files loading nothing is as much a mistake.
  r = test::run(crema_cmd("train " + job.solver + " --set snapshot_prefix=" + (job.dir / "typo/toy") + " --weights " +
                          weights + "," + (job.dir / "shouted.caffemodel.h5")));
  CHECK(r.status == 2);
  CHECK(r.output.find("so it would load nothing") != std::string::npos);

  // A layer left at its fillers that lr_mult 0 freezes stays random for good: warned, also
  // when --reinit names it (as the advice for a mismatch says), since it cannot re-learn.
  r = test::run(crema_cmd("train " + job.solver + retarget + " --set max_iter=1 --overwrite --weights " + weights +
                          " --reinit fc1,fc2 --set 'net.layer[6].param=[{lr_mult: 0}, {lr_mult: 0}]'"));
  REQUIRE_MESSAGE(r.status == 0, r.output);
  CHECK(r.output.find("keeps its random filler initialisation") == std::string::npos);  // --reinit asked for them
  CHECK_MESSAGE(r.output.find("Layer 'fc2' is re-initialised from its fillers (--reinit) and lr_mult 0 on all its "
                              "parameters stops it from learning: it will stay random") != std::string::npos,
                r.output);
  CHECK(r.output.find("Layer 'fc1' is re-initialised") == std::string::npos);  // it learns
  r = test::run(crema_cmd(
      "train " + job.solver + " --set max_iter=1 --overwrite --set snapshot_prefix=" + (job.dir / "ft/toy") +
      " --weights " + weights +
      " --set 'net.layer[6]={name: fc3, type: InnerProduct, bottom: fc1, top: fc2, "
      "param: [{lr_mult: 0}, {lr_mult: 0}], inner_product_param: {num_output: 10, weight_filler: {type: xavier}}}'"));
  REQUIRE_MESSAGE(r.status == 0, r.output);
  CHECK_MESSAGE(r.output.find("Layer 'fc3' keeps its random filler initialisation and lr_mult 0 on all its parameters "
                              "stops it from learning") != std::string::npos,
                r.output);
  CHECK(r.output.find("Layer 'fc1' keeps") == std::string::npos);
  // The file's fc2 has the shapes of fc3: a renamed layer, most likely.
  CHECK_MESSAGE(r.output.find("Layer 'fc3' keeps its filler initialisation, while layer 'fc2' of " + weights +
                              ", with parameters of the same shapes, is not used: if it is that layer renamed, give "
                              "it the name 'fc2'") != std::string::npos,
                r.output);
  CHECK(r.output.find("Layer 'fc1' keeps its filler") == std::string::npos);
  // No weights file at all (a fine-tuning config run without its --weights): the frozen
  // layer is as random, and it was not warned.
  r = test::run(crema_cmd("train " + job.solver + " --set max_iter=1 --overwrite --set snapshot_prefix=" +
                          (job.dir / "scratch/toy") + " --set 'net.layer[6].param=[{lr_mult: 0}, {lr_mult: 0}]'"));
  REQUIRE_MESSAGE(r.status == 0, r.output);
  CHECK_MESSAGE(r.output.find("Layer 'fc2' keeps its random filler initialisation and lr_mult 0 on all its parameters "
                              "stops it from learning: it will stay random. No weights file was given (--weights, or "
                              "the solver's weights): start from one that holds it, or give it a learning rate") !=
                    std::string::npos,
                r.output);
  CHECK(r.output.find("Layer 'fc1' keeps") == std::string::npos);
  CHECK(r.output.find("Weights of the") == std::string::npos);
  // Fixed values on purpose (a constant kernel, FCN's bilinear upsampling): not warned.
  r = test::run(crema_cmd("train " + job.solver + " --set max_iter=1 --overwrite --set snapshot_prefix=" +
                          (job.dir / "ft/toy") + " --weights " + weights +
                          " --set 'net.layer[6]={name: fc3, type: InnerProduct, bottom: fc1, top: fc2, "
                          "param: [{lr_mult: 0}, {lr_mult: 0}], inner_product_param: {num_output: 10, weight_filler: "
                          "{type: constant, value: 0.1}}}'"));
  REQUIRE_MESSAGE(r.status == 0, r.output);
  CHECK(r.output.find("keeps its random filler initialisation") == std::string::npos);
}

TEST_CASE("a signal stops a long crema test between batches and it says the scores of the batches done") {
  ToyJob job(10);
  REQUIRE(test::run(crema_cmd("train " + job.solver + " --threads 1")).status == 0);
  // A pass far longer than the test waits; SIGINT's default action ended it with nothing said.
  test::Child child({test::crema_binary(), "test", "--model", job.solver, "--weights",
                     job.dir / "snap/toy_iter_10.caffemodel.h5", "--iterations", "100000000", "--threads", "1"},
                    job.dir / "score.log");
  REQUIRE_MESSAGE(child.wait_for_log("Batch 3,", 60), child.log());
  child.signal(SIGINT);
  CHECK(child.wait() == 1);
  const std::string log = child.log();
  std::smatch m;
  REQUIRE_MESSAGE(std::regex_search(log, m,
                                    std::regex(R"(interrupted after (\d+) of 100000000 batches: the scores )"
                                               R"(above are of those (\d+) batches only)")),
                  log);
  CHECK(m[1] == m[2]);
  const int done = std::stoi(m[1]);
  CHECK(done >= 4);
  // The summary is the mean over exactly the batches logged.
  CHECK_MESSAGE(log.find("Batch " + std::to_string(done - 1) + ", accuracy = ") != std::string::npos, log);
  CHECK(log.find("Batch " + std::to_string(done) + ", accuracy = ") == std::string::npos);
  double sum = 0;
  const std::regex batch(R"(Batch \d+, accuracy = ([0-9.e-]+))");
  for (auto it = std::sregex_iterator(log.begin(), log.end(), batch); it != std::sregex_iterator(); ++it)
    sum += std::stod((*it)[1]);
  REQUIRE_MESSAGE(std::regex_search(log, m, std::regex(R"(\] accuracy = ([0-9.e-]+)\n)")), log);
  CHECK(std::stod(m[1]) == doctest::Approx(sum / done).epsilon(1e-4));
}

TEST_CASE("--weights also reaches a layer only the TEST net has, as in Caffe") {
  ToyJob job(40);
  REQUIRE(test::run(crema_cmd("train " + job.solver)).status == 0);
  const std::string weights = job.dir / "snap/toy_iter_40.caffemodel.h5";
  // The TRAIN net learns a new classifier; the TEST net keeps the trained one under its old name.
  std::string yaml = test::read_file(job.solver);
  const size_t at = yaml.find("    - {name: fc2,");
  REQUIRE(at != std::string::npos);
  const size_t end = yaml.find('\n', at) + 1;
  std::string fc2 = yaml.substr(at, end - at), fresh = fc2;
  fc2.replace(fc2.find("bottom:"), 0, "include: {phase: TEST}, ");
  fresh.replace(fresh.find("fc2,"), 4, "fc2_new,");
  fresh.replace(fresh.find("bottom:"), 0, "include: {phase: TRAIN}, ");
  yaml.replace(at, end - at, fc2 + fresh);
  test::write_file(job.dir / "split.yaml", yaml);

  const auto r = test::run(crema_cmd("train " + job.dir / "split.yaml" + " --set max_iter=1 --set snapshot_prefix=" +
                                     (job.dir / "split/toy") + " --weights " + weights));
  REQUIRE_MESSAGE(r.status == 0, r.output);
  CHECK_MESSAGE(std::regex_search(r.output, std::regex(R"(fc2\s+loaded from \S+toy_iter_40\.caffemodel\.h5)")), r.output);
  CHECK(std::regex_search(r.output, std::regex(R"(fc2_new\s+kept at its filler initialisation)")));
  CHECK(r.output.find("ignored 'fc2'") == std::string::npos);
  // Tested before any step: only the loaded classifier scores far above chance.
  std::smatch m;
  REQUIRE(std::regex_search(r.output, m, std::regex(R"(Iteration 0, Testing net[\s\S]*?accuracy = ([0-9.]+))")));
  CHECK(std::stod(m[1]) > 0.5);

  // Snapshots keep the test-only layer, so a resumed run scores with it too.
  const io::Weights snap = io::load_weights(job.dir / "split/toy_iter_1.caffemodel.h5");
  CHECK(std::any_of(snap.begin(), snap.end(), [](const io::LayerWeights& l) { return l.layer == "fc2"; }));
  const auto resumed = test::run(crema_cmd("train " + job.dir / "split.yaml" + " --set max_iter=2 --set test_interval=1 " +
                                           "--set snapshot_prefix=" + (job.dir / "split/toy") + " --snapshot " +
                                           (job.dir / "split/toy_iter_1.solverstate.h5")));
  REQUIRE_MESSAGE(resumed.status == 0, resumed.output);
  REQUIRE(std::regex_search(resumed.output, m, std::regex(R"(Iteration 1, Testing net[\s\S]*?accuracy = ([0-9.]+))")));
  CHECK(std::stod(m[1]) > 0.5);
}

TEST_CASE("several test nets, one per test_iter with its test_state, crema test rebuilds them by stage") {
  ToyJob job(20);
  // The TEST data layer becomes two: validation images (stage val) and training images
  // (stage train_subset), as Caffe users score both.
  std::string yaml = test::read_file(job.solver);
  const size_t at = yaml.find("    - {name: d, type: Data, top: [data, label], include: {phase: TEST}");
  REQUIRE(at != std::string::npos);
  const size_t end = yaml.find('\n', yaml.find('\n', at) + 1) + 1;  // the layer spans two lines
  std::string val = yaml.substr(at, end - at), train = val;
  val.replace(val.find("{phase: TEST}"), 13, "{phase: TEST, stage: val}");
  train.replace(train.find("{phase: TEST}"), 13, "{phase: TEST, stage: train_subset}");
  train.replace(train.find("name: d,"), 8, "name: d_train,");
  train.replace(train.find("test-images"), 11, "train-images");
  yaml.replace(at, end - at, val + train);
  yaml.replace(yaml.find("test_iter: 2"), 12, "test_iter: [2, 3]\ntest_state: [{stage: [val]}, {stage: [train_subset]}]");
  test::write_file(job.dir / "two.yaml", yaml);

  const auto r = test::run(crema_cmd("train " + job.dir / "two.yaml" + " --set snapshot_prefix=" + (job.dir / "two/toy")));
  REQUIRE_MESSAGE(r.status == 0, r.output);
  std::smatch m;
  REQUIRE_MESSAGE(std::regex_search(r.output, m,
                                    std::regex(R"(Iteration 20, Testing net \(#0\)[\s\S]*?accuracy = ([0-9.]+)[\s\S]*?)"
                                               R"(Iteration 20, Testing net \(#1\)[\s\S]*?accuracy = ([0-9.]+))")),
                  r.output);
  const std::string val_accuracy = m[1];

  // crema test on the solver builds its first test net (stage val) and scores the same.
  const std::string weights = job.dir / "two/toy_iter_20.caffemodel.h5";
  auto t = test::run(crema_cmd("test --model " + job.dir / "two.yaml" + " --weights " + weights + " --iterations 2"));
  REQUIRE_MESSAGE(t.status == 0, t.output);
  REQUIRE(std::regex_search(t.output, m, std::regex(R"(crema\] accuracy = ([0-9.]+))")));  // the mean
  CHECK(m[1] == val_accuracy);
  // A stage on the command line selects layers as Caffe's --stage does: both data
  // layers now produce 'data', which names the conflict.
  t = test::run(crema_cmd("test --model " + job.dir / "two.yaml" + " --weights " + weights + " --stage train_subset"));
  CHECK(t.status != 0);
  CHECK_MESSAGE(t.output.find("d_train") != std::string::npos, t.output);
  CHECK(t.output.find("--stage:") == std::string::npos);  // a stage the rules name
  // A stage no rule names changes nothing (Caffe takes it without a word): most likely a slip.
  t = test::run(crema_cmd("test --model " + job.dir / "two.yaml" + " --weights " + weights +
                          " --iterations 1 --stage trian_subset,deploy"));
  REQUIRE_MESSAGE(t.status == 0, t.output);
  CHECK_MESSAGE(t.output.find("--stage: stage 'trian_subset' is named by no include/exclude rule of net 'toy', so it "
                              "changes nothing (did you mean 'train_subset'?); stage 'deploy' is named by no "
                              "include/exclude rule of net 'toy', so it changes nothing (its rules name train_subset, "
                              "val)") != std::string::npos,
                t.output);
  t = test::run(crema_cmd("test --model " + job.solver + " --weights " + weights + " --iterations 1 --stage deploy"));
  REQUIRE_MESSAGE(t.status == 0, t.output);
  CHECK_MESSAGE(t.output.find("stage 'deploy' is named by no include/exclude rule of net 'toy', so it changes nothing "
                              "(its layers have no stage rules)") != std::string::npos,
                t.output);

  // A stage the solver's own test_state misspells is said at its line, as --stage's is.
  std::string slip = yaml;
  slip.replace(slip.find("{stage: [val]}"), 14, "{stage: [vall]}");
  test::write_file(job.dir / "slip.yaml", slip);
  const auto slipped = test::run(crema_cmd("train " + job.dir / "slip.yaml" +
                                           " --set max_iter=1 --set snapshot_prefix=" + (job.dir / "slip/toy")));
  CHECK_MESSAGE(slipped.output.find("slip.yaml:") != std::string::npos, slipped.output);
  CHECK_MESSAGE(slipped.output.find(": test_state: stage 'vall' is named by no include/exclude rule of net 'toy', so "
                                    "it changes nothing (did you mean 'val'?)") != std::string::npos,
                slipped.output);
  CHECK(slipped.output.find("train_subset' is named") == std::string::npos);

  // A test_state count that does not match test_iter is refused.
  const auto bad = test::run(crema_cmd("train " + job.dir / "two.yaml" + " --set test_iter=[2]"));
  CHECK(bad.status == 2);
  CHECK(bad.output.find("test_state has 2 entries but test_iter has 1") != std::string::npos);
}

TEST_CASE("snapshot_prefix: unset is beside the solver, a directory gets the solver's name, as in Caffe") {
  ToyJob job(10);
  std::string yaml = test::read_file(job.solver);
  yaml.erase(yaml.find("snapshot_prefix:"), yaml.find('\n', yaml.find("snapshot_prefix:")) - yaml.find("snapshot_prefix:") + 1);
  fs::create_directories(job.dir / "jobs/a");
  test::write_file(job.dir / "jobs/a/solver.yaml", yaml);
  auto r = test::run(crema_cmd("train " + job.dir / "jobs/a/solver.yaml"));
  REQUIRE_MESSAGE(r.status == 0, r.output);
  CHECK(fs::exists(job.dir / "jobs/a/solver_iter_10.caffemodel.h5"));
  CHECK(fs::exists(job.dir / "jobs/a/solver_iter_10.solverstate.h5"));
  fs::create_directories(job.dir / "out");
  for (const std::string& dir : {job.dir / "out", job.dir / "new/"}) {
    r = test::run(crema_cmd("train " + job.dir / "jobs/a/solver.yaml" + " --set snapshot_prefix=" + dir));
    REQUIRE_MESSAGE(r.status == 0, r.output);
    CHECK_MESSAGE(fs::exists(fs::path(dir) / "solver_iter_10.caffemodel.h5"), r.output);
  }
  // A name too long for the file system is refused before training, not at the first snapshot.
  r = test::run(crema_cmd("train " + job.dir / "jobs/a/solver.yaml" +
                          " --set snapshot_prefix=" + (job.dir / std::string(240, 'y'))));
  CHECK(r.status == 2);
  CHECK_MESSAGE(r.output.find("snapshot_prefix: '" + (job.dir / std::string(240, 'y')) +
                              "' is too long: snapshot files "
                              "such as 'yyy") != std::string::npos,
                r.output);
  CHECK(r.output.find("Iteration 0") == std::string::npos);
  // A file where the folder should be: the reason, at the prefix, exit 2.
  r = test::run(crema_cmd("train " + job.dir / "jobs/a/solver.yaml" +
                          " --set snapshot_prefix=" + (job.dir / "jobs/a/solver.yaml/run")));
  CHECK(r.status == 2);
  CHECK_MESSAGE(r.output.find("snapshot_prefix: cannot write snapshots to '" + (job.dir / "jobs/a/solver.yaml") +
                              "': ") != std::string::npos,
                r.output);
  // '~' is the shell's: a config's would make a folder named "~".
  r = test::run(crema_cmd("train " + job.dir / "jobs/a/solver.yaml" + " --set 'snapshot_prefix=~/runs/x'"));
  CHECK(r.status == 2);
  CHECK_MESSAGE(r.output.find("starts with '~', which only a shell expands") != std::string::npos, r.output);
  // A missing snapshot or weights file is named before the nets are built, as a command-line mistake.
  for (const std::string option : {"--snapshot", "--weights"}) {
    r = test::run(crema_cmd("train " + job.dir / "jobs/a/solver.yaml" + " " + option + " " + (job.dir / "nope.h5")));
    CHECK(r.status == 2);
    CHECK_MESSAGE(
        r.output.find(option + ": '" + (job.dir / "nope.h5") + "' does not exist; give ") != std::string::npos,
        r.output);
    CHECK(r.output.find("Creating training net") == std::string::npos);
  }
  // Caffe's file name, typed by habit, where crema wrote its .h5 twin: that file is named.
  test::write_file(job.dir / "w.caffemodel.h5", "");
  r = test::run(crema_cmd("train " + job.dir / "jobs/a/solver.yaml" + " --weights " + (job.dir / "w.caffemodel")));
  CHECK(r.status == 2);
  CHECK_MESSAGE(r.output.find("--weights: '" + (job.dir / "w.caffemodel") + "' does not exist, but '" +
                              (job.dir / "w.caffemodel.h5") +
                              "' does: crema writes its snapshots in HDF5; give that file") != std::string::npos,
                r.output);
}

TEST_CASE("an HDF5Output writing the net's own data or weights file is refused, and the file kept") {
  test::TempDir dir;
  {
    io::H5File f(dir / "d.h5", io::H5File::Mode::Create);
    const std::vector<float> data(12, 0.5f), label(3, 1.f);
    f.write_floats("data", {3, 4}, data.data());
    f.write_floats("label", {3}, label.data());
  }
  test::write_file(dir / "list.txt", dir / "d.h5" + "\n");
  const auto net = [&](const std::string& out) {
    return "layer:\n"
           "  - {name: d, type: HDF5Data, top: [data, label], hdf5_data_param: {source: " +
           (dir / "list.txt") +
           ", batch_size: 3}}\n"
           "  - {name: ip, type: InnerProduct, bottom: data, top: ip, inner_product_param: {num_output: 2}}\n"
           "  - {name: out, type: HDF5Output, bottom: [ip, label], hdf5_output_param: {file_name: " +
           out + "}}\n";
  };
  test::write_file(dir / "over_data.yaml", net(dir / "d.h5"));
  auto r = test::run(crema_cmd("test --model " + (dir / "over_data.yaml") + " --iterations 1"));
  CHECK(r.status == 2);
  CHECK_MESSAGE(r.output.find("layer[2] (out): it writes '" + (dir / "d.h5") +
                              "', which this command reads (layer 'd' of the TEST net reads its samples from it): the "
                              "output would replace it") != std::string::npos,
                r.output);
  std::vector<int> shape;
  CHECK(io::H5File(dir / "d.h5", io::H5File::Mode::Read).read_floats("data", &shape).size() == 12);
  // The weights file given with --weights.
  Context ctx(1);
  test::write_file(dir / "plain.yaml", net(dir / "plain.h5"));
  Net plain(NetSpec::parse(*io::load_net_config(dir / "plain.yaml")), NetState{Phase::TEST, 0, {}}, ctx, true);
  io::save_weights(plain, dir / "w.caffemodel.h5");
  test::write_file(dir / "over_weights.yaml", net(dir / "w.caffemodel.h5"));
  r = test::run(crema_cmd("test --model " + (dir / "over_weights.yaml") + " --weights " + (dir / "w.caffemodel.h5") +
                          " --iterations 1"));
  CHECK(r.status == 2);
  CHECK_MESSAGE(r.output.find("which this command reads (the weights given with --weights)") != std::string::npos,
                r.output);
  CHECK(io::load_weights(dir / "w.caffemodel.h5").size() == 3);
}

TEST_CASE("train refuses an HDF5Output over its --weights before --overwrite deletes anything") {
  ToyJob job(2);
  REQUIRE(test::run(crema_cmd("train " + job.solver)).status == 0);
  const std::string weights = job.dir / "w.caffemodel.h5";
  fs::copy_file(job.dir / "snap/toy_iter_2.caffemodel.h5", weights);
  std::string yaml = test::read_file(job.solver);
  const std::string loss = "    - {name: loss,";
  REQUIRE(yaml.find(loss) != std::string::npos);
  yaml.insert(yaml.find(loss),
              "    - {name: out, type: HDF5Output, bottom: [fc2, label], include: {phase: TRAIN}, "
              "hdf5_output_param: {file_name: " +
                  weights + "}}\n");
  test::write_file(job.dir / "out.yaml", yaml);
  const auto r = test::run(crema_cmd("train " + job.dir / "out.yaml" + " --overwrite --weights " + weights +
                                     " --set snapshot_prefix=" + (job.dir / "snap/toy")));
  CHECK(r.status == 2);
  CHECK_MESSAGE(r.output.find("(out): it writes '" + weights +
                              "', which this command reads (the weights given with "
                              "--weights)") != std::string::npos,
                r.output);
  CHECK_MESSAGE(r.output.find("--overwrite: deleted") == std::string::npos, r.output);
  CHECK(fs::exists(job.dir / "snap/toy_iter_2.solverstate.h5"));
  CHECK(io::load_weights(weights).size() > 0);
}

TEST_CASE("a layer name with '/' is warned about once: Caffe's loader skips its escaped group") {
  ToyJob job(2);
  const auto r =
      test::run(crema_cmd("train " + job.solver + " --set 'net.layer[2].name=block/conv' --set test_interval=0"));
  REQUIRE_MESSAGE(r.status == 0, r.output);
  CHECK(test::count_of(r.output, "are stored in the snapshots with '/' as %2F") == 1);
  CHECK_MESSAGE(r.output.find("layer name(s) with '/' (block/conv) are stored in the snapshots with '/' as %2F "
                              "(block%2Fconv): crema reads them back, but Caffe's HDF5 loader does not find them") !=
                    std::string::npos,
                r.output);
}

TEST_CASE("debug_info logs each layer's data and gradient magnitudes and each update, as Caffe") {
  ToyJob job(2);
  const auto r = test::run(crema_cmd("train " + job.solver + " --set debug_info=true --set test_interval=0 --set test_iter=[]"));
  REQUIRE_MESSAGE(r.status == 0, r.output);
  const std::string num = R"(([0-9.e+-]+|nan|inf))";
  std::smatch m;
  REQUIRE_MESSAGE(std::regex_search(r.output, m, std::regex(R"(\[Forward\] Layer conv, top blob conv data: )" + num)),
                  r.output.substr(0, 3000));
  CHECK(std::stod(m[1]) > 0);
  CHECK(std::regex_search(r.output, std::regex(R"(\[Forward\] Layer fc1, param blob 0 data: )" + num)));
  CHECK(std::regex_search(r.output, std::regex(R"(\[Backward\] Layer fc2, bottom blob fc1 diff: )" + num)));
  CHECK(std::regex_search(r.output, std::regex(R"(\[Backward\] Layer conv, param blob 1 diff: )" + num)));
  REQUIRE(std::regex_search(r.output, m, std::regex(R"(\[Update\] Layer fc2, param 0 data: )" + num + "; diff: " + num)));
  CHECK(std::stod(m[2]) > 0);  // a step was taken
  // The data layer needs no gradient: no backward line for its tops.
  CHECK(r.output.find("[Backward] Layer conv, bottom blob data") == std::string::npos);
}

TEST_CASE("the final in-run test scores the final snapshot, BatchNorm included: crema test on it agrees") {
  ToyJob job(20);  // still learning: a loss far above float rounding
  std::string yaml = test::read_file(job.solver);
  const size_t relu = yaml.find("    - {name: relu,");
  REQUIRE(relu != std::string::npos);
  yaml.insert(relu, "    - {name: bn, type: BatchNorm, bottom: conv, top: conv}\n");
  test::write_file(job.solver, yaml);
  const auto r = test::run(crema_cmd("train " + job.solver));
  REQUIRE_MESSAGE(r.status == 0, r.output);
  // The 100 test images are 2 batches, so every pass, in the run or not, sees them all from the start.
  std::smatch in_run, tested;
  REQUIRE(std::regex_search(r.output, in_run,
                            std::regex(R"(Iteration 20, Testing net[\s\S]*?accuracy = ([0-9.]+)[\s\S]*?loss = ([0-9.e+-]+))")));
  const auto t = test::run(crema_cmd("test --model " + job.solver + " --weights " + (job.dir / "snap/toy_iter_20.caffemodel.h5") +
                                     " --iterations 2"));
  REQUIRE_MESSAGE(t.status == 0, t.output);
  // The means, not the per-batch lines ("Batch 0, accuracy = …").
  REQUIRE(std::regex_search(t.output, tested,
                            std::regex(R"(crema\] accuracy = ([0-9.]+)[\s\S]*?crema\] loss = ([0-9.e+-]+))")));
  CHECK(in_run[1] == tested[1]);
  CHECK(in_run[2] == tested[2]);
}

TEST_CASE("review regressions: bad inputs end with one clear error, never a crash") {
  ToyJob job(10);
  // test_iter 0 used to read past the scores.
  auto r = test::run(crema_cmd("train " + job.solver + " --set test_iter=0"));
  CHECK(r.status == 2);
  CHECK(r.output.find("test_iter") != std::string::npos);
  // An unopenable --log file used to terminate.
  r = test::run(crema_cmd("train " + job.solver + " --log " + job.dir.path().string()));
  CHECK(r.status == 2);
  CHECK(r.output.find("--log") != std::string::npos);
  CHECK(r.output.find("terminate") == std::string::npos);
  // --log appends: naming the solver (or weights) wrote log lines into it.
  const std::string solver_before = test::read_file(job.solver);
  r = test::run(crema_cmd("train " + job.solver + " --log " + job.solver));
  CHECK(r.status == 2);
  CHECK_MESSAGE(
      r.output.find("crema: --log '" + job.solver + "': '" + job.solver +
                    "' is also an input of this command, and the log is appended to its file") != std::string::npos,
      r.output);
  CHECK(test::read_file(job.solver) == solver_before);
  test::write_file(job.dir / "w.bin", std::string("\x89HDF\r\n\x1a\n\0\0", 10));
  r = test::run(crema_cmd("train " + job.solver + " --log=" + (job.dir / "w.bin")));
  CHECK(r.status == 2);
  CHECK_MESSAGE(r.output.find("it holds binary data") != std::string::npos, r.output);
  // A log file that cannot take the lines (here /dev/full, which used to be "binary data"; a full
  // disk the same) is said once, and the run goes on (spdlog printed "[*** LOG ERROR ***]" per line).
  if (std::filesystem::exists("/dev/full")) {
    r = test::run(crema_cmd("train " + job.solver + " --set display=1 --set snapshot_prefix=" + (job.dir / "full/toy") +
                            " --log /dev/full"));
    CHECK_MESSAGE(r.status == 0, r.output);
    CHECK_MESSAGE(r.output.find("crema: cannot write the --log file '/dev/full' (No space left on device); the log "
                                "goes on here only") != std::string::npos,
                  r.output);
    CHECK(r.output.find("cannot write the --log file", r.output.find("cannot write the --log file") + 1) ==
          std::string::npos);
    CHECK(r.output.find("LOG ERROR") == std::string::npos);
    CHECK(r.output.find("Optimization Done") != std::string::npos);
  }
  // A huge list index used to escape as std::stoi's exception.
  r = test::run(crema_cmd("train " + job.solver + " --set 'net.layer[99999999999].name=x'"));
  CHECK(r.status == 2);
  // Recursive YAML aliases and absurdly nested prototxt used to overflow the stack.
  test::write_file(job.dir / "r.yaml", "a: &x [1, *x]\n");
  r = test::run(crema_cmd("convert " + (job.dir / "r.yaml") + " -o " + (job.dir / "r.prototxt")));
  CHECK(r.status == 2);
  CHECK(r.output.find("nested") != std::string::npos);
  std::string deep;
  for (int i = 0; i < 5000; ++i) deep += "a {";
  for (int i = 0; i < 5000; ++i) deep += "}";
  test::write_file(job.dir / "d.prototxt", deep + "\n");
  r = test::run(crema_cmd("convert " + (job.dir / "d.prototxt") + " -o " + (job.dir / "d.yaml")));
  CHECK(r.status == 2);
  CHECK(r.output.find("nested") != std::string::npos);
  // An IDX header whose dimensions multiply past any real file.
  const unsigned char header[] = {0, 0, 8, 3, 0x40, 0, 0, 0, 0x40, 0, 0, 0, 0x40, 0, 0, 0};
  test::write_file(job.dir / "train-images-idx3-ubyte", std::string(reinterpret_cast<const char*>(header), 16));
  r = test::run(crema_cmd("train " + job.solver));
  CHECK(r.status != 0);
  CHECK_MESSAGE(r.output.find("corrupt") != std::string::npos, r.output);
  CHECK(r.output.find("terminate") == std::string::npos);
  // A count of 0 used to be "not in range 0.000000 to 17976931348623157…" (309 digits).
  r = test::run(crema_cmd("test --model " + job.solver + " --iterations 0"));
  CHECK(r.status == 2);
  CHECK_MESSAGE(r.output.find("not in range 1 to 2147483647") != std::string::npos, r.output);
  // /dev/zero as the solver used to fill the memory and end in std::bad_alloc.
  r = test::run(crema_cmd("train /dev/zero"));
  CHECK(r.status == 2);  // a mistake in the command, as a config path that names nothing
  CHECK_MESSAGE(r.output.find("is larger than 64 MiB, so it is not a config") != std::string::npos, r.output);
  r = test::run(crema_cmd("train " + job.dir / "nope.yaml"));
  CHECK(r.status == 2);
  CHECK_MESSAGE(r.output.find(job.dir / "nope.yaml" + ": no such file; check the path") != std::string::npos, r.output);
  r = test::run(crema_cmd("test --model " + job.dir.path().string()));
  CHECK(r.status == 2);
  CHECK_MESSAGE(r.output.find(": this is a folder; give the solver or net file in it") != std::string::npos, r.output);
#if !defined(__SANITIZE_ADDRESS__)  // ASan's shadow memory needs more address space than the limit below
  // `crema time` of a net of Input `shape` and layer `layer` under a 2.5 GB address-space limit.
  const auto time_limited = [&](const std::string& shape, const std::string& layer) {
    test::write_file(job.dir / "big.yaml",
                     "name: big\nlayer:\n- {name: data, type: Input, top: data, input_param: "
                     "{shape: {dim: " +
                         shape + "}}}\n- " + layer + "\n");
    return test::run("(ulimit -v 2500000; exec " +
                     crema_cmd("time --model " + (job.dir / "big.yaml") + " --iterations 1") + ")");
  };
  // Host memory running out in a layer used to be "unexpected error: std::bad_alloc": a 3.6 GB top.
  r = time_limited("[1, 1, 100, 100]",
                   "{name: tile, type: Tile, bottom: data, top: tiled, tile_param: {axis: 1, "
                   "tiles: 90000}}");
  CHECK(r.status == 1);
  CHECK_MESSAGE(r.output.find("Tile layer 'tile': out of host memory during forward pass (tops 1 90000 100 100 (900000000)") !=
                    std::string::npos,
                r.output);
  CHECK(r.output.find("reduce batch_size") != std::string::npos);
  CHECK(r.output.find("bad_alloc") == std::string::npos);
  // At setup it is the parameters, which a smaller batch does not shrink: 4.6 GB of weights.
  r = time_limited("[1, 576]",
                   "{name: fc, type: InnerProduct, bottom: data, top: fc, inner_product_param: "
                   "{num_output: 2000000}}");
  CHECK(r.status == 1);
  CHECK_MESSAGE(r.output.find("InnerProduct layer 'fc': out of host memory during setup; what a layer allocates at "
                              "setup (its parameters) grows with its num_output") != std::string::npos,
                r.output);
  CHECK(r.output.find("reduce batch_size") == std::string::npos);
#endif
}

TEST_CASE("data read more than once per pass or batch, and a run that keeps no weights, are said") {
  ToyJob job(1);
  // 3 test batches of 50 over 100 test samples: Caffe's trap, scores that count half the set twice.
  auto r = test::run(crema_cmd("train " + job.solver + " --set test_iter=3 --set max_iter=20"));
  REQUIRE_MESSAGE(r.status == 0, r.output);
  CHECK_MESSAGE(r.output.find("test net #0: test_iter 3 x batch_size 50 = 150 samples per pass, but layer 'd' (") !=
                    std::string::npos,
                r.output);
  CHECK(r.output.find("holds 100: the pass goes round the data 1.5 times, so some samples weigh more than others in "
                      "its scores; set test_iter 2 (100 samples) to read each at most once") != std::string::npos);
  // Twice over exactly: every sample weighs the same, so a note, not a warning.
  r = test::run(crema_cmd("train " + job.solver + " --set test_iter=4 --set max_iter=20 --overwrite"));
  REQUIRE_MESSAGE(r.status == 0, r.output);
  CHECK_MESSAGE(
      r.output.find("test net #0: test_iter 4 x batch_size 50 reads each of the 100 samples of layer 'd' (") !=
          std::string::npos,
      r.output);
  CHECK(r.output.find("samples per pass") == std::string::npos);
  r = test::run(crema_cmd("test --model " + job.solver + " --weights " + (job.dir / "snap/toy_iter_20.caffemodel.h5") +
                          " --iterations 1"));
  REQUIRE_MESSAGE(r.status == 0, r.output);
  CHECK_MESSAGE(r.output.find("crema test: --iterations 1 x batch_size 50 reads 50 of the 100 samples of layer 'd'") !=
                    std::string::npos,
                r.output);
  // The exact pass (test_iter 2 x 50) says nothing.
  r = test::run(crema_cmd("train " + job.solver +
                          " --set net.layer[0].data_param.batch_size=500 --set snapshot=0 "
                          "--set snapshot_after_train=false --overwrite"));
  REQUIRE_MESSAGE(r.status == 0, r.output);
  CHECK(r.output.find("samples per pass") == std::string::npos);
  CHECK_MESSAGE(r.output.find("batch_size 500 is larger than the 400 samples of its source") != std::string::npos,
                r.output);
  CHECK(r.output.find("this run writes no weights") != std::string::npos);
}

TEST_CASE("resume: the printed command keeps --set overrides, changes are named, a finished run is left alone") {
  ToyJob job(1000000);
  test::Child child({test::crema_binary(), "train", job.solver, "--set", "base_lr=0.02", "--set", "display=1"},
                    job.dir / "run.log");
  REQUIRE_MESSAGE(child.wait_for_log("Iteration 15,", 60), child.log());
  child.signal(SIGTERM);
  REQUIRE(child.wait() == 0);
  std::smatch m;
  const std::string log = child.log();
  REQUIRE(std::regex_search(log, m, std::regex(R"(Resume with: (crema train .*) --snapshot (\S+))")));
  CHECK(m[1].str().find("--set base_lr=0.02 --set display=1") != std::string::npos);
  const std::string state = m[2];
  std::smatch it;
  REQUIRE(std::regex_search(state, it, std::regex(R"(_iter_(\d+)\.solverstate\.h5)")));
  const std::string finish = std::to_string(std::stoi(it[1]) + 10);
  // Resuming with another base_lr is allowed but named.
  const std::string args = "train " + job.solver + " --set base_lr=0.03 --set display=1 --set max_iter=" + finish;
  auto r = test::run(crema_cmd(args + " --snapshot " + state));
  REQUIRE_MESSAGE(r.status == 0, r.output);
  CHECK(r.output.find("base_lr (0.02 -> 0.03)") != std::string::npos);
  // Resuming a snapshot that already reached max_iter trains nothing and says so.
  r = test::run(crema_cmd(args + " --snapshot " + (job.dir / ("snap/toy_iter_" + finish + ".solverstate.h5"))));
  CHECK(r.status == 0);
  CHECK(r.output.find("nothing left to train") != std::string::npos);
  CHECK(r.output.find("Snapshotting") == std::string::npos);
  // With max_iter set below the snapshot's iteration, the suggested value must reach past it
  // (it once suggested 2 x max_iter: --set max_iter=2 for a snapshot at iteration 10+).
  const std::string last = job.dir / ("snap/toy_iter_" + finish + ".solverstate.h5");
  r = test::run(crema_cmd("train " + job.solver + " --set max_iter=1 --snapshot " + last));
  CHECK(r.status == 0);
  const std::string twice = std::to_string(2 * std::stoi(finish));
  CHECK_MESSAGE(r.output.find("e.g. --set max_iter=" + twice + ", to train on") != std::string::npos, r.output);
}

TEST_CASE("a fresh run never overwrites an earlier run's snapshots: --resume continues it, --overwrite starts anew") {
  ToyJob job(10);
  const std::string snap = job.dir / "snap";
  REQUIRE(test::run(crema_cmd("train " + job.solver + " --set snapshot=5")).status == 0);
  const std::string state10 = snap + "/toy_iter_10.solverstate.h5";
  const auto weights10 = test::read_file(snap + "/toy_iter_10.caffemodel.h5");

  // Run again as it was (a requeued job, a config run twice): refused, the files untouched.
  const std::string again = "train " + job.solver + " --set snapshot=5 --set max_iter=20";
  auto r = test::run(crema_cmd(again));
  CHECK(r.status == 2);
  CHECK_MESSAGE(r.output.find("snapshot_prefix: snapshots of an earlier run exist under the prefix '" + snap +
                              "/toy' (iterations 5 and 10; the latest: " + state10 +
                              "), and a new run would overwrite them. Continue that run with --resume (from its latest "
                              "snapshot) or --snapshot FILE; start anew over it with --overwrite") != std::string::npos,
                r.output);
  CHECK(r.output.find("Snapshotting") == std::string::npos);
  CHECK(test::read_file(snap + "/toy_iter_10.caffemodel.h5") == weights10);

  // --resume takes the latest by iteration (10, although "5" sorts after "10" by name), and
  // a finished run's --resume trains nothing, so a job script can always say --resume.
  r = test::run(crema_cmd(again + " --resume"));
  REQUIRE_MESSAGE(r.status == 0, r.output);
  CHECK_MESSAGE(r.output.find("Resuming from " + state10) != std::string::npos, r.output);
  CHECK(r.output.find("later than the one resumed") == std::string::npos);
  CHECK(fs::exists(snap + "/toy_iter_20.solverstate.h5"));
  r = test::run(crema_cmd(again + " --resume --weights " + snap + "/toy_iter_5.caffemodel.h5"));
  CHECK(r.status == 0);
  CHECK_MESSAGE(r.output.find("--resume: --weights not used; the run continues from its snapshot of iteration 20") !=
                    std::string::npos,
                r.output);
  CHECK(r.output.find("nothing left to train") != std::string::npos);

  // Resuming an earlier snapshot on purpose: the later ones are named, as --resume would
  // take them up while this run has not passed them.
  r = test::run(crema_cmd("train " + job.solver + " --set max_iter=12 --snapshot " + state10));
  REQUIRE_MESSAGE(r.status == 0, r.output);
  CHECK_MESSAGE(r.output.find("the prefix '" + snap +
                              "/toy' holds snapshots later than the one resumed (iteration 10): iterations 15 and 20, "
                              "of the run this one replaces from there on") != std::string::npos,
                r.output);

  // With one of the others, it is one or the other.
  r = test::run(crema_cmd(again + " --resume --overwrite"));
  CHECK(r.status == 2);
  CHECK(r.output.find("give either --resume (continue the earlier run) or --overwrite") != std::string::npos);
  r = test::run(crema_cmd(again + " --resume --snapshot " + state10));
  CHECK(r.status == 2);
  CHECK(r.output.find("give either --snapshot (resume from that file) or --resume") != std::string::npos);

  // --overwrite would delete a --weights file of the earlier run: refused, saying how to
  // start from it instead.
  const std::string from = snap + "/toy_iter_10.caffemodel.h5";
  r = test::run(crema_cmd("train " + job.solver + " --set max_iter=5 --overwrite --weights " + from));
  CHECK(r.status == 2);
  CHECK_MESSAGE(r.output.find("--weights: '" + from +
                              "' is a snapshot of the earlier run that --overwrite deletes; "
                              "start from it under a prefix of its own: --weights " +
                              from + " --set snapshot_prefix=" + snap + "/toy_2") != std::string::npos,
                r.output);
  CHECK(test::read_file(from) == weights10);
  const std::string base = job.dir / "base.caffemodel.h5";
  fs::copy_file(from, base);

  // --overwrite starts anew and first deletes the earlier run's snapshots and metrics: a
  // later --resume must not take up its iteration 20, nor TensorBoard mix its curves in.
  // (The resume from 10 above removed an events file that held nothing before iteration 10.)
  // A file of the user's under a metrics name, without crema's header, is not the run's.
  test::write_file(snap + "/toy.test7.csv", "my notes\n");
  r = test::run(crema_cmd("train " + job.solver + " --set max_iter=5 --overwrite"));
  REQUIRE_MESSAGE(r.status == 0, r.output);
  CHECK_MESSAGE(r.output.find("--overwrite: deleted the earlier run's 10 snapshot files (5 snapshots, iterations 5 "
                              "to 20) and 4 other files (metrics, class list) under " +
                              snap + "/toy\n") != std::string::npos,
                r.output);
  for (const char* gone : {"10.caffemodel.h5", "12.caffemodel.h5", "15.solverstate.h5", "20.caffemodel.h5"})
    CHECK_MESSAGE(!fs::exists(snap + "/toy_iter_" + gone), gone);
  CHECK(fs::exists(snap + "/toy_iter_5.solverstate.h5"));
  CHECK(test::read_file(snap + "/toy.test7.csv") == "my notes\n");
  int event_files = 0;
  for (const auto& e : fs::directory_iterator(snap + "/toy.tensorboard")) event_files += e.is_regular_file();
  CHECK(event_files == 1);

  // Weights without a solver state: --resume has nothing to continue from, and says so.
  fs::remove(snap + "/toy_iter_5.solverstate.h5");
  r = test::run(crema_cmd(again + " --resume"));
  CHECK(r.status == 2);
  CHECK_MESSAGE(r.output.find("weights of an earlier run exist under the prefix '" + snap +
                              "/toy' (iteration 5; the latest: " + snap +
                              "/toy_iter_5.caffemodel.h5) but no solver state, so --resume has nothing to continue "
                              "from") != std::string::npos,
                r.output);
  CHECK(r.output.find("starts anew") == std::string::npos);

  // --resume where nothing was written yet starts anew, from --weights when given.
  r = test::run(crema_cmd("train " + job.solver + " --resume --set snapshot_prefix=" + (job.dir / "ft/toy") +
                          " --weights " + base));
  REQUIRE_MESSAGE(r.status == 0, r.output);
  CHECK(r.output.find("--resume: no snapshot under " + (job.dir / "ft/toy") + " yet, so the run starts anew") !=
        std::string::npos);
  CHECK(std::regex_search(r.output, std::regex(R"(fc2\s+loaded from \S+base\.caffemodel\.h5)")));
  CHECK(fs::exists(job.dir / "ft/toy_iter_10.solverstate.h5"));
}

TEST_CASE("--time-limit stops with a snapshot (exit 75) and --resume finishes as an uninterrupted run") {
  ToyJob job(1000000);
  // No test pass at iteration 0: on a loaded machine it could outlast the limit (tested below).
  // One thread: two on a loaded machine's two cores run ~10x slower, and the pace line
  // needs 11 iterations within the limit.
  const auto limited = test::run(crema_cmd(
      "train " + job.solver + " --set display=1 --set test_initialization=false --threads 1 --time-limit 6s"));
  CHECK(limited.status == 75);
  std::smatch m;
  REQUIRE_MESSAGE(
      std::regex_search(
          limited.output, m,
          std::regex(
              R"(--time-limit 6s has passed \((\d+) s since the start\) at iteration (\d+): stopping with a snapshot)")),
      limited.output);
  CHECK(std::stoi(m[1]) >= 6);
  const int stopped = std::stoi(m[2]);
  CHECK(stopped > 0);
  // Said once, as soon as the pace is known: the limit comes before max_iter.
  // Test passes are counted (once one is timed: this run has none at iteration 0).
  std::smatch told;
  REQUIRE_MESSAGE(
      std::regex_search(limited.output, told,
                        std::regex(R"(--time-limit 6s: at \S+ s per iteration (?:and \S+ s per test pass \((\d+) to )"
                                   R"(go\)|\((\d+) test passes to go, not timed yet, not counted\)) the (\d+) )"
                                   R"(iterations left take )"
                                   R"(about \S+, but the limit comes in \S+: expect a stop with a snapshot )"
                                   R"(near iteration (\d+) of 1000000 \(exit status 75)")),
      limited.output);
  CHECK(std::stoi(told[4]) > 0);
  CHECK(told.position(0) < m.position(0));
  // The passes to go (timed, or not yet when the estimate comes before the first at
  // iteration 20): at each multiple of test_interval from the iteration the estimate was
  // made at, and the final one at max_iter.
  const int at = 1000000 - std::stoi(told[3]);
  int to_go = 0;
  for (int k = at; k <= 1000000; ++k) to_go += k % 20 == 0;
  CHECK(std::stoi(told[1].matched ? told[1].str() : told[2].str()) == to_go);
  CHECK(fs::exists(job.dir / ("snap/toy_iter_" + std::to_string(stopped) + ".solverstate.h5")));
  CHECK(limited.output.find("Resume with: ") != std::string::npos);

  const std::string finish =
      " --set max_iter=" + std::to_string(stopped + 7) + " --set test_initialization=false --threads 1";
  const auto resumed = test::run(crema_cmd("train " + job.solver + finish + " --resume --time-limit 1-00:00:00"));
  REQUIRE_MESSAGE(resumed.status == 0, resumed.output);
  const auto straight =
      test::run(crema_cmd("train " + job.solver + finish + " --set snapshot_prefix=" + (job.dir / "straight/toy")));
  REQUIRE_MESSAGE(straight.status == 0, straight.output);
  const std::string last = "_iter_" + std::to_string(stopped + 7) + ".caffemodel.h5";
  check_same_weights(job.dir / ("snap/toy" + last), job.dir / ("straight/toy" + last));

  // A limit that passes before the first iteration (here in the test pass at iteration 0)
  // would stop every requeued job at the same place: an error, not a 75.
  const auto stuck =
      test::run(crema_cmd("train " + job.solver + " --set test_iter=[100000] --time-limit 1s --overwrite"));
  CHECK(stuck.status == 1);
  CHECK_MESSAGE(stuck.output.find("--time-limit 1s passed before this run finished an iteration (in its setup, waiting "
                                  "for its first batch, or the test pass at iteration 0), so it made no progress") !=
                    std::string::npos,
                stuck.output);
  CHECK_FALSE(fs::exists(job.dir / "snap/toy_iter_0.solverstate.h5"));  // a snapshot of no progress is not written
  // The same in the passes of the first iteration (iter_size): the iteration is not finished.
  const auto long_iteration = test::run(crema_cmd(
      "train " + job.solver + " --set iter_size=1000000 --set test_initialization=false --time-limit 1s --overwrite"));
  CHECK(long_iteration.status == 1);
  CHECK_MESSAGE(long_iteration.output.find("--time-limit 1s passed before this run finished an iteration (in its "
                                           "setup, waiting for its first batch, the test pass at iteration 0, or that "
                                           "iteration's 1000000 passes (iter_size)), so it made no progress") !=
                    std::string::npos,
                long_iteration.output);
  CHECK_FALSE(fs::exists(job.dir / "snap/toy_iter_0.solverstate.h5"));

  // A limit that passes in the final test pass: training is complete, its weights written
  // (snapshot_after_train off: the stop writes them), exit 0, and the log says so.
  const auto final_test = test::run(crema_cmd("train " + job.solver +
                                              " --set max_iter=20 --set test_initialization=false --set "
                                              "test_iter=[100000000] --set snapshot=0 --set snapshot_after_train=false "
                                              "--threads 1 --time-limit 6s --overwrite"));
  CHECK_MESSAGE(final_test.status == 0, final_test.output);
  CHECK_MESSAGE(final_test.output.find("--time-limit 6s has passed") != std::string::npos, final_test.output);
  CHECK(final_test.output.find("in the final test pass: stopping it; training is complete (exit status 0)") !=
        std::string::npos);
  CHECK(final_test.output.find("Score its weights with: crema test") != std::string::npos);
  CHECK(fs::exists(job.dir / "snap/toy_iter_20.caffemodel.h5"));

  // Slurm's forms and units are read; anything else is refused before training, naming them.
  const std::vector<std::pair<std::string, int>> forms = {{"90", 5400},     {"1:30", 90},      {"2:00:00", 7200},
                                                          {"1-2", 93600},   {"1-0:30", 88200}, {"1-0:0:30", 86430},
                                                          {"3h50m", 13800}, {"1d12h", 129600}, {"45s", 45}};
  for (const auto& [limit, seconds] : forms) {
    const auto r = test::run(crema_cmd("train " + job.solver + " --set max_iter=1 --overwrite --time-limit " + limit));
    CHECK_MESSAGE(r.status == 0, limit << ": " << r.output);
    CHECK_MESSAGE(r.output.find("--time-limit " + limit + ": training stops with a snapshot once " +
                                std::to_string(seconds) + " s have passed") != std::string::npos,
                  limit << ": " << r.output);
  }
  for (const std::string limit : {"0", "0:00", "3 hours", "1:2:3:4", "1.5h", "h", "-5", "1-", "5x"}) {
    const auto r = test::run(crema_cmd("train " + job.solver + " --time-limit '" + limit + "'"));
    CHECK(r.status == 2);
    CHECK_MESSAGE(r.output.find("--time-limit: '" + limit +
                                "' is not a positive duration; write it as Slurm does (MM, MM:SS, HH:MM:SS, D-HH, "
                                "D-HH:MM:SS) or with units (3h50m, 90m, 45s, 1d12h)") != std::string::npos,
                  limit << ": " << r.output);
  }
}

TEST_CASE("train takes Caffe's --solver, --stage and --level: the TRAIN net's state only, kept in the snapshot") {
  ToyJob job(1000000);
  std::string yaml = test::read_file(job.solver);
  const std::string loss_line = "    - {name: loss,";
  REQUIRE(yaml.find(loss_line) != std::string::npos);
  yaml.insert(yaml.find(loss_line),
              "    - {name: staged, type: Silence, bottom: fc1, include: {phase: TRAIN, stage: extra}}\n"
              "    - {name: leveled, type: Silence, bottom: conv, include: {phase: TRAIN, min_level: 2}}\n"
              "    - {name: test_staged, type: Silence, bottom: fc1, include: {phase: TEST, stage: extra}}\n");
  test::write_file(job.solver, yaml);
  auto r = test::run(crema_cmd("train --solver " + job.solver + " --set max_iter=1"));
  REQUIRE_MESSAGE(r.status == 0, r.output);
  CHECK(r.output.find("Setting up staged") == std::string::npos);
  CHECK(r.output.find("Setting up leveled") == std::string::npos);
  // The limit must pass after the first iteration (else exit 1, no progress), on a loaded machine too.
  r = test::run(crema_cmd("train " + job.solver + " --stage extra --level 2 --threads 1 --time-limit 5s --overwrite"));
  CHECK_MESSAGE(r.status == 75, r.output);
  CHECK(r.output.find("Setting up staged") != std::string::npos);
  CHECK(r.output.find("Setting up leveled") != std::string::npos);
  CHECK(r.output.find("Setting up test_staged") == std::string::npos);  // not the TEST net's
  std::smatch m;
  REQUIRE_MESSAGE(
      std::regex_search(r.output, m, std::regex(R"(Resume with: crema (train .*_iter_(\d+)\.solverstate\.h5))")),
      r.output);
  CHECK_MESSAGE(m[1].str().find(" --stage extra --level 2 --snapshot ") != std::string::npos, m[1].str());
  const std::string finish = " --set max_iter=" + std::to_string(std::stoi(m[2]) + 5);
  const auto resumed = test::run(crema_cmd(m[1].str() + finish));
  CHECK_MESSAGE(resumed.status == 0, resumed.output);
  CHECK(resumed.output.find("Resuming from") != std::string::npos);
  CHECK(resumed.output.find("Setting up staged") != std::string::npos);
  CHECK_FALSE(std::regex_search(resumed.output, std::regex("The config differs[^\\n]*train_state")));
  // The snapshot keeps them: a resume without them is told what changed.
  const auto without =
      test::run(crema_cmd("train " + job.solver + " --resume --set max_iter=" + std::to_string(std::stoi(m[2]) + 8)));
  CHECK(without.status == 0);
  CHECK_MESSAGE(std::regex_search(without.output, std::regex("The config differs from the one this snapshot was "
                                                             "written with: [^\\n]*train_state\\.level")),
                without.output);
}

TEST_CASE("a resume warns of config changes that change the training, and only notes those that do not") {
  ToyJob job(10);
  REQUIRE(test::run(crema_cmd("train " + job.solver + " --threads 1")).status == 0);
  const std::string state = job.dir / "snap/toy_iter_10.solverstate.h5";
  // Training on (max_iter, under lr_policy inv), elsewhere, reporting more often: the steps are the same.
  auto r =
      test::run(crema_cmd("train " + job.solver + " --snapshot " + state +
                          " --threads 1 --set max_iter=12 --set display=2 --set snapshot_format=HDF5 --set device_id=1"
                          " --set test_initialization=false --set snapshot_prefix=" +
                          (job.dir / "moved/toy")));
  REQUIRE_MESSAGE(r.status == 0, r.output);
  // Caffe's train_quick.sh resumes with a solver adding snapshot_format: HDF5; a device_id on the CPU.
  CHECK_MESSAGE(r.output.find("The config differs") == std::string::npos, r.output);
  CHECK_MESSAGE(std::regex_search(r.output, std::regex("Changed since the snapshot, in when the run stops, reports and "
                                                       "snapshots only \\(the steps are the same\\): [^\\n]*display "
                                                       "\\(")),
                r.output);
  CHECK(std::regex_search(r.output, std::regex("only \\(the steps are the same\\): [^\\n]*max_iter \\(10 -> 12\\)")));
  // A rate changes the steps: warned, and the notes stay apart.
  r = test::run(
      crema_cmd("train " + job.solver + " --snapshot " + state +
                " --threads 1 --set max_iter=12 --set base_lr=0.01 --set snapshot_prefix=" + (job.dir / "moved2/toy")));
  REQUIRE_MESSAGE(r.status == 0, r.output);
  CHECK_MESSAGE(std::regex_search(r.output, std::regex("The config differs from the one this snapshot was written "
                                                       "with: base_lr \\(0.05 -> 0.01\\)\\. The run continues")),
                r.output);
}

TEST_CASE("snapshot_keep: N keeps the latest N snapshots on disk, a resumed run's included") {
  ToyJob job(30);
  const std::string snap = job.dir / "snap/toy_iter_";
  auto r = test::run(crema_cmd("train " + job.solver + " --set snapshot=5 --set snapshot_keep=2"));
  REQUIRE_MESSAGE(r.status == 0, r.output);
  for (int iter = 5; iter <= 30; iter += 5)
    for (const char* kind : {".caffemodel.h5", ".solverstate.h5"})
      CHECK_MESSAGE(fs::exists(snap + std::to_string(iter) + kind) == (iter >= 25), iter << kind);
  CHECK(r.output.find("snapshot_keep 2: removed the snapshot of iteration 15") != std::string::npos);
  // Resumed, it goes on from what is there; at most N of them stay.
  r = test::run(
      crema_cmd("train " + job.solver + " --set snapshot=5 --set snapshot_keep=1 --set max_iter=40 --resume"));
  REQUIRE_MESSAGE(r.status == 0, r.output);
  CHECK_MESSAGE(r.output.find("snapshot_keep 1: removed the snapshots of iterations 25 and 30") != std::string::npos,
                r.output);
  for (int iter : {25, 30, 35}) CHECK_FALSE(fs::exists(snap + std::to_string(iter) + ".solverstate.h5"));
  CHECK(fs::exists(snap + "40.solverstate.h5"));
  r = test::run(crema_cmd("train " + job.solver + " --set snapshot_keep=-1 --overwrite"));
  CHECK(r.status == 2);
  CHECK(r.output.find("snapshot_keep: must be 0 (keep every snapshot) or how many of the latest snapshots to keep") !=
        std::string::npos);
}

TEST_CASE("every shipped config parses, and the benchmark net runs under crema time") {
  int solvers = 0, bench_nets = 0;
  for (const auto& entry : fs::recursive_directory_iterator(test::source_dir() + "/configs")) {
    const std::string path = entry.path().string();
    if (entry.path().parent_path().filename() == "bench") {
      INFO(path);
      CHECK(!NetSpec::parse(*io::load_net_config(path)).layers.empty());
      ++bench_nets;
      continue;
    }
    if (entry.path().filename().string().find("_solver.yaml") == std::string::npos) continue;
    INFO(path);
    // The net is loaded and checked key by key; data files are opened only when a net is built.
    const auto root = io::load_solver_config(path);
    const SolverSpec spec = SolverSpec::parse(*root);
    const NetSpec net = NetSpec::parse(*spec.net);
    CHECK(!net.layers.empty());
    ++solvers;
  }
  CHECK(solvers >= 4);
  CHECK(bench_nets == 6);  // the nets of scripts/bench/suite.py
  const auto r = test::run(crema_cmd("time --model " + test::source_dir() + "/configs/bench/lenet_b64.yaml --iterations 2"));
  REQUIRE_MESSAGE(r.status == 0, r.output);
  CHECK(r.output.find("Average Forward-Backward:") != std::string::npos);
}

// DNNL_MAX_CPU_ISA makes oneDNN see an older CPU: the refusal a user without
// AVX512-BF16 or AMX gets, one line naming the file, line and layer, and an exit code.
TEST_CASE("precision bf16 on a CPU without bf16 is refused at net setup, naming the layer") {
  const auto r = test::run("DNNL_MAX_CPU_ISA=AVX2 " + crema_cmd("time --model " + test::source_dir() +
                                                                "/configs/bench/lenet_b64.yaml --iterations 1 --precision bf16"));
  CHECK(r.status != 0);
  CHECK(r.output.find("lenet_b64.yaml:") != std::string::npos);
  CHECK(r.output.find("(conv1): precision: bf16 is refused: this CPU has neither AVX512-BF16 nor AMX") !=
        std::string::npos);
  CHECK(r.output.find("use precision: fp32") != std::string::npos);
}

// TF32 exists on tensor cores only: on the CPU it is refused before anything is built,
// naming the solver file and line (train), or the flag (time).
TEST_CASE("precision tf32 on the CPU is refused with one line naming where it was asked for") {
  ToyJob job(10);
  std::string yaml = test::read_file(job.solver);
  yaml += "precision: tf32\n";
  test::write_file(job.solver, yaml);
  int line = 1;
  for (size_t i = 0; i < yaml.find("precision: tf32"); ++i) line += yaml[i] == '\n';
  const auto r = test::run(crema_cmd("train " + job.solver));
  CHECK(r.status != 0);
  CHECK_MESSAGE(r.output.find(job.solver + ":" + std::to_string(line) + ":") != std::string::npos, r.output);
  // Once "precision: precision: tf32 runs …" (the key path, then a message repeating it).
  CHECK_MESSAGE(r.output.find(":" + std::to_string(line) +
                              ":12: precision: tf32 runs on a GPU's tensor cores; train "
                              "with solver_mode: GPU") != std::string::npos,
                r.output);
  CHECK(r.output.find("terminate") == std::string::npos);

  const auto t = test::run(crema_cmd("time --model " + test::source_dir() +
                                     "/configs/bench/lenet_b64.yaml --iterations 1 --precision tf32"));
  CHECK(t.status != 0);
  CHECK_MESSAGE(t.output.find("--precision tf32 runs on a GPU's tensor cores; give --gpu N too") != std::string::npos,
                t.output);
  // The solver file timed on the CPU: its tf32 becomes fp32, said, as crema test does
  // (time once ignored the solver's precision silently).
  const auto solver_time = test::run(crema_cmd("time --model " + job.solver + " --iterations 1"));
  REQUIRE_MESSAGE(solver_time.status == 0, solver_time.output);
  CHECK(solver_time.output.find("the solver's precision: tf32 applies on a GPU; timing on the CPU in fp32") !=
        std::string::npos);
  CHECK(solver_time.output.find("Timing the TRAIN phase in fp32 on the CPU") != std::string::npos);
  const auto data_time = test::run(crema_cmd("time --data --model " + job.solver + " --precision bf16"));
  CHECK(data_time.status == 2);
  CHECK(data_time.output.find("--precision excludes --data") != std::string::npos);
}

TEST_CASE("train says where Caffe's defaults differ from PyTorch's, and points config keys given as options at --set") {
  test::ToyJob job(4);
  const auto r = test::run(
      crema_cmd("train " + job.solver + " --set type=Adam --set momentum=0 --set base_lr=0.001 --set warmup_iter=10"));
  CHECK_MESSAGE(r.status == 0, r.output);
  CHECK_MESSAGE(
      r.output.find("Adam with momentum (beta1) 0, Caffe's default when it is not given") != std::string::npos,
      r.output);
  CHECK_MESSAGE(
      r.output.find("warmup_iter 10 is beyond max_iter 4: the rate never reaches base_lr") != std::string::npos,
      r.output);
  for (const auto& [option, set] : {std::pair<std::string, std::string>{"--lr 0.1", "--set base_lr=0.1"},
                                    {"--max_iter=7", "--set max_iter=7"},
                                    {"-base_lr 0.5", "--set base_lr=0.5"},
                                    {"--momentum 0.8", "--set momentum=0.8"},  // a key of one word
                                    // Epochs are not carried over as iterations (it said --set max_iter=3).
                                    {"--epochs 3",
                                     "--set max_iter=N, where N counts iterations: 3 epochs × "
                                     "training samples ÷ batch_size"}}) {
    const auto given = test::run(crema_cmd("train " + job.solver + " " + option));
    CHECK(given.status == 2);
    CHECK_MESSAGE(given.output.find("(a config key is set with --set: " + set + ")") != std::string::npos,
                  given.output);
  }
  // Other tools' options that are no config keys get crema's way, not a --set that fails.
  for (const auto& [option, said] : {std::pair<std::string, std::string>{"-log_dir /tmp/x", "--log FILE writes a copy"},
                                     {"--gpu_id 0", "crema's spelling: --gpu N"},
                                     {"--batch_size 32", "--set net.layer[I].data_param.batch_size=N"}}) {
    const auto given = test::run(crema_cmd("train " + job.solver + " " + option));
    CHECK(given.status == 2);
    CHECK_MESSAGE(given.output.find(said) != std::string::npos, given.output);
    CHECK_MESSAGE(given.output.find("a config key is set with --set") == std::string::npos, given.output);
  }
  // Only where the command has the option: convert has no --gpu (nor a gpu_id key to --set).
  const auto no_gpu = test::run(crema_cmd("convert " + job.solver + " -o x.prototxt --gpu_id 0"));
  CHECK(no_gpu.status == 2);
  CHECK_MESSAGE(no_gpu.output.find("crema convert: unknown option '--gpu_id'; ") != std::string::npos, no_gpu.output);
  const auto classify = test::run(crema_cmd("classify --model " + job.solver + " --batch_size 3 x.png"));
  CHECK_MESSAGE(classify.output.find("(crema's spelling: --batch-size N)") != std::string::npos, classify.output);
  const auto in_file = test::run(crema_cmd("train " + job.solver + " --set epochs=3"));
  CHECK_MESSAGE(
      in_file.output.find("unknown key 'epochs' (did you mean 'max_iter'? crema uses Caffe's names; "
                          "max_iter counts iterations: epochs × training samples ÷ batch_size)") != std::string::npos,
      in_file.output);
}

TEST_CASE("a config mistake is said before an earlier run's snapshots stop a fresh run") {
  test::ToyJob job(2);
  REQUIRE(test::run(crema_cmd("train " + job.solver)).status == 0);
  // The earlier run's refusal came first; taking its way on (--overwrite) then met the typo.
  const auto r = test::run(crema_cmd("train " + job.solver + " --set net.layer[4].type=Linear"));
  CHECK(r.status == 2);
  CHECK_MESSAGE(r.output.find("unknown layer type 'Linear' (did you mean 'InnerProduct'?") != std::string::npos,
                r.output);
  CHECK(r.output.find("snapshots of an earlier run exist") == std::string::npos);
  CHECK(fs::exists(job.dir / "snap/toy_iter_2.caffemodel.h5"));
}
