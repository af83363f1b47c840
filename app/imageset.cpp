#include "app/imageset.hpp"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <limits>
#include <memory>
#include <optional>
#include <sstream>
#include <vector>

#include "app/signals.hpp"
#include "datasets/cifar.hpp"
#include "datasets/epoch_sampler.hpp"
#include "datasets/image_source.hpp"
#include "datasets/list_file.hpp"
#include "datasets/ordered_pool.hpp"
#include "engine/error.hpp"
#include "engine/math.hpp"
#include "io/caffe_binary.hpp"
#include "io/datum.hpp"
#include "io/files.hpp"
#include "io/image.hpp"
#include "io/lmdb.hpp"

namespace crema::app {

namespace {

// The threads a tool's --threads asks for; 0 asks for one per core crema may run on.
int pool_threads(int asked) { return asked > 0 ? asked : available_cores(); }

namespace fs = std::filesystem;

// "28x28" -> {width 28, height 28}.
std::pair<int, int> parse_resize(const std::string& text) {
  int w = 0, h = 0;
  char x = 0, extra = 0;
  std::istringstream is(text);
  if (!(is >> w >> x >> h) || (x != 'x' && x != 'X') || (is >> extra) || w <= 0 || h <= 0)
    throw ConfigError(Mark{}, "--resize", "expected WIDTHxHEIGHT such as 28x28, got '" + text + "'");
  // Every image would fail to be made (each "could not be decoded"), and a database of such
  // records would not fit a Datum (its size is an int) anyway.
  if (static_cast<long long>(w) * h * 3 > std::numeric_limits<int>::max())
    throw ConfigError(Mark{}, "--resize",
                      text + " is " + std::to_string(static_cast<long long>(w) * h) +
                          " pixels per image, too many for a Datum's 2^31 bytes: give a smaller size");
  return {w, h};
}

// Caffe's --backend (convert_imageset, compute_image_mean) and convert_cifar_data's db_type.
void refuse_other_backend(const std::string& backend, const std::string& option) {
  if (!backend.empty() && backend != "lmdb")
    throw ConfigError(Mark{}, option,
                      "'" + backend + "': crema reads and writes LMDB only (give lmdb, or leave it out)");
}

// Caffe's --resize_width/--resize_height into crema's width and height (0: kept). Caffe
// resizes only when both are above 0, so one alone would silently resize nothing.
std::pair<int, int> caffe_resize(const ConvertImagesetOptions& opt) {
  if (opt.resize_width < 0 && opt.resize_height < 0) return {0, 0};
  if (!opt.resize.empty())
    throw ConfigError(Mark{}, "--resize", "give --resize WxH or Caffe's --resize_width and --resize_height, not both");
  const int w = std::max(opt.resize_width, 0), h = std::max(opt.resize_height, 0);
  if ((w > 0) != (h > 0)) {
    const std::string other = w > 0 ? "--resize_height" : "--resize_width";
    const bool other_zero = (w > 0 ? opt.resize_height : opt.resize_width) == 0;  // given as 0, not left out
    throw ConfigError(Mark{}, w > 0 ? "--resize_width" : "--resize_height",
                      (other_zero ? "given with " + other + " 0" : "given without " + other) +
                          ", which Caffe reads as 'keep each image's size'; give both above 0 (or --resize WxH)");
  }
  return w > 0 ? parse_resize(std::to_string(w) + "x" + std::to_string(h)) : std::pair{0, 0};
}

// The encoding a re-encoded image keeps: its file's extension, as Caffe guesses it.
std::string encoding_of(const std::string& path) {
  std::string ext = fs::path(path).extension().string();
  if (ext.size() > 1) ext = ext.substr(1);
  else ext = "png";
  return lowercase(ext);
}

// Runs `step` of a loop over an OrderedPool's results: whatever it throws (a stop, a damaged
// record, a full disk) unwinds through the pool, whose destructor joins its threads, so the
// exit is first arranged not to wait for one stuck in a read.
template <class F>
void exit_past_stuck_reads(F step) {
  try {
    step();
  } catch (const std::exception& e) {
    exit_past_blocked_reader(1, e.what());
    throw;
  }
}

// Caffe's key: the entry's position in the (shuffled) list, then its path.
std::string record_key(size_t position, const std::string& path) {
  char number[24];  // any size_t fits
  std::snprintf(number, sizeof number, "%08zu", position);
  return std::string(number) + "_" + path;
}

}  // namespace

int convert_imageset(const ConvertImagesetOptions& opt) {
  int width = 0, height = 0;
  if (!opt.resize.empty()) std::tie(width, height) = parse_resize(opt.resize);
  if (opt.resize_width >= 0 || opt.resize_height >= 0) std::tie(width, height) = caffe_resize(opt);
  refuse_other_backend(opt.backend, "--backend");
  std::string encode_type = lowercase(opt.encode_type);
  if (encode_type.starts_with(".")) encode_type.erase(0, 1);
  if (!encode_type.empty() && !io::can_encode_image(encode_type))
    throw ConfigError(Mark{}, "--encode_type",
                      "'" + opt.encode_type + "' is no image format OpenCV writes here; give png or jpg");
  const bool encoded = opt.encoded || !encode_type.empty();  // as Caffe's, which encodes whenever it is given
  std::vector<ListEntry> entries = read_list(opt.list);
  std::error_code ec;
  if (fs::exists(opt.output, ec))
    throw ConfigError(Mark{}, "",
                      "'" + opt.output +
                          "' already exists; convert-imageset writes a new LMDB directory and overwrites "
                          "nothing: remove it or choose another name");
  install_signal_handlers(default_signal_effects(), false);  // Ctrl-C, SIGTERM, …: stop, and remove the draft
  if (opt.shuffle) {
    // A seed from the clock is printed, so that the order can be made again with --seed.
    const auto clock = static_cast<uint64_t>(std::chrono::system_clock::now().time_since_epoch().count());
    const uint64_t seed = opt.seed >= 0 ? static_cast<uint64_t>(opt.seed) : clock % 2147483648u;
    spdlog::info("Shuffling data (seed {}; --seed {} gives this order again)", seed, seed);
    EpochSampler order;  // one epoch of a sampler is a seeded permutation
    order.init(static_cast<int>(entries.size()), true, seed);
    std::vector<ListEntry> shuffled;
    shuffled.reserve(entries.size());
    for (size_t i = 0; i < entries.size(); ++i) shuffled.push_back(std::move(entries[static_cast<size_t>(order.next())]));
    entries = std::move(shuffled);
  }
  spdlog::info("A total of {} images.", entries.size());

  const int channels = opt.gray ? 1 : 3;
  // An image made into a record, or why it cannot be one; on the pool's threads.
  struct Converted {
    std::string record;   // the encoded Datum
    std::string problem;  // non-empty: skipped for this reason
    int channels = 0, height = 0, width = 0;  // the decoded image's, for --check_size
  };
  const auto convert = [&](int64_t i) {
    const ListEntry& e = entries[static_cast<size_t>(i)];
    const std::string file = opt.root.empty() ? e.path : (fs::path(opt.root) / e.path).string();
    Converted out;
    io::Datum datum;
    datum.label = e.label;
    try {
      // The file is read once, and a truncated JPEG found before libjpeg decodes it (it would
      // fill the missing rows with grey, printing a line of its own that names no file).
      std::error_code unknown;  // a file that cannot be checked is reported by the read
      if (!fs::exists(file, unknown) && !unknown) throw Error("image '" + file + "' does not exist");
      if (fs::is_directory(file, unknown)) throw Error("image '" + file + "' is a folder, not an image");
      std::string bytes = io::read_file_bytes(file);
      if (io::is_truncated_jpeg(bytes))
        throw Error("image '" + file + "' is a truncated JPEG (no end marker after its image data)");
      io::ImageU8 img;
      io::decode_image(bytes, channels, "image '" + file + "'", img, height, width);
      out.channels = img.channels, out.height = img.height, out.width = img.width;
      if (encoded) {
        // The file as it is when it decodes as asked: not resized, as many channels as the
        // records hold, in the format asked for (Caffe's ReadImageToDatum); else the
        // converted image, encoded.
        datum.encoded = true;
        const std::string format = encode_type.empty() ? encoding_of(e.path) : encode_type;
        io::ImageU8 stored;
        const bool same_format = io::same_image_format(format, encoding_of(e.path));
        if (width <= 0 && height <= 0 && same_format) io::decode_image(bytes, 0, file, stored);
        const bool as_is = width <= 0 && height <= 0 && same_format && stored.channels == img.channels;
        datum.data = as_is ? std::move(bytes) : io::encode_image(img, format);
      } else {
        datum.channels = img.channels, datum.height = img.height, datum.width = img.width;
        datum.data.assign(img.data.begin(), img.data.end());
      }
    } catch (const Error& err) {
      out.problem = err.what();
      return out;
    }
    out.record = io::encode_datum(datum);
    return out;
  };
  const int threads = pool_threads(opt.threads);
  // Declared before the draft database, so that a stop removes the draft before this waits
  // for a reader stuck in a read.
  OrderedPool<Converted> pool(static_cast<int64_t>(entries.size()), threads, threads + 2, convert);
  io::LmdbDrafts db({opt.output});  // moved to opt.output only once complete
  size_t count = 0, skipped = 0;
  std::string first_size;  // --check_size: the first record's "channels x height x width"
  int first_line = 0;
  for (size_t i = 0; i < entries.size(); ++i) {
    std::optional<Converted> done;
    exit_past_stuck_reads([&] {
      if (poll_signal_action() != Solver::Action::Stop) done = pool.next(stop_requested);
      if (!done) {
        poll_signal_action();  // logs the signal
        throw Error("interrupted after " + std::to_string(i) + " of " + std::to_string(entries.size()) +
                    " images; nothing was written to '" + opt.output + "'");
      }
      if (done->problem.empty()) db[0].put(record_key(i, entries[i].path), done->record);
    });
    if (!done->problem.empty()) {
      spdlog::warn("{}:{}: {}; skipped", opt.list, entries[i].line, done->problem);
      ++skipped;
      continue;
    }
    if (opt.check_size) {
      const auto size_of = [](const Converted& c) {
        return std::to_string(c.channels) + " x " + std::to_string(c.height) + " x " + std::to_string(c.width);
      };
      if (count == 0) first_size = size_of(*done), first_line = entries[i].line;
      if (size_of(*done) != first_size)
        throw Error(opt.list + ":" + std::to_string(entries[i].line) + ": image '" + entries[i].path + "' is " +
                    size_of(*done) + " (channels x height x width) where line " + std::to_string(first_line) +
                    "'s is " + first_size + " (--check_size); nothing was written to '" + opt.output +
                    "'. Give --resize WxH for one size");
    }
    if (++count % 1000 == 0) spdlog::info("Processed {} files.", count);
  }
  if (count == 0)
    throw Error("none of the " + std::to_string(entries.size()) + " images listed in '" + opt.list +
                "' could be read (is ROOT '" + opt.root + "' right?); nothing was written");
  db.publish();
  if (count % 1000 != 0) spdlog::info("Processed {} files.", count);  // Caffe's closing line
  if (skipped > 0)
    spdlog::warn("{} of {} listed images could not be read and were skipped (see above)", skipped, entries.size());
  spdlog::info("Wrote {} {} records to {}", count, encoded ? "encoded" : "raw", opt.output);
  return 0;
}

int convert_cifar(const ConvertCifarOptions& opt) {
  std::vector<std::string> inputs;
  for (int k = 1; k <= 5; ++k)
    inputs.push_back((fs::path(opt.input) / ("data_batch_" + std::to_string(k) + ".bin")).string());
  inputs.push_back((fs::path(opt.input) / "test_batch.bin").string());
  refuse_other_backend(opt.db_type, "db_type");
  std::error_code ec;
  for (const std::string& file : inputs) {
    if (!fs::is_regular_file(file, ec))
      throw ConfigError(Mark{}, "",
                        "'" + file + "' " + (fs::exists(file, ec) ? "is not a file" : "does not exist") +
                            "; give the folder of CIFAR-10's binary batches (data_batch_1.bin … data_batch_5.bin, "
                            "test_batch.bin: what cifar-10-binary.tar.gz unpacks to, cifar-10-batches-bin)");
    // Before anything is written: a wrong last file would otherwise show after 50,000 records.
    if (const std::string problem = cifar10_batch_size_problem(file); !problem.empty())
      throw ConfigError(Mark{}, "", problem);
  }
  const std::string train_db = (fs::path(opt.output) / "cifar10_train_lmdb").string(),
                    test_db = (fs::path(opt.output) / "cifar10_test_lmdb").string();
  for (const std::string& db : {train_db, test_db})
    if (fs::exists(db, ec))
      throw ConfigError(Mark{}, "",
                        "'" + db +
                            "' already exists; convert-cifar writes new LMDB directories and overwrites "
                            "nothing: remove it or choose another output folder");
  install_signal_handlers(default_signal_effects(), false);  // Ctrl-C, SIGTERM, …: stop, and remove the drafts
  const bool made = !fs::exists(opt.output, ec);
  fs::create_directories(opt.output, ec);
  if (!fs::is_directory(opt.output, ec))
    throw ConfigError(Mark{}, "",
                      "cannot make the output folder '" + opt.output + "'" + (ec ? ": " + ec.message() : ""));
  // A folder this run made goes again if the run fails (fs::remove takes it only if empty).
  struct RemoveIfEmpty {
    std::string folder;
    bool armed;
    ~RemoveIfEmpty() {
      std::error_code ignored;
      if (armed) fs::remove(folder, ignored);
    }
  } made_folder{opt.output, made};
  io::LmdbDrafts dbs({train_db, test_db});  // both moved into place once complete
  io::Datum datum;
  datum.channels = kCifarChannels, datum.height = kCifarSide, datum.width = kCifarSide;
  size_t written[2] = {0, 0};
  // Caffe's keys: "%05d" of batch * 10,000 + position for training, the position for testing.
  const auto write = [&](size_t db, const std::string& file, int first_key) {
    const std::vector<CifarImage> images = read_cifar10_batch(file);
    for (size_t i = 0; i < images.size(); ++i) {
      if (poll_signal_action() == Solver::Action::Stop)
        throw Error("interrupted in '" + file + "'; nothing was written to '" + opt.output + "'");
      datum.label = images[i].label;
      datum.data = images[i].pixels;
      dbs[db].put(fmt::format("{:05d}", first_key + static_cast<int>(i)), io::encode_datum(datum));
    }
    written[db] += images.size();
  };
  spdlog::info("Writing Training data");
  for (int k = 0; k < 5; ++k) {
    spdlog::info("Training Batch {}", k + 1);
    write(0, inputs[static_cast<size_t>(k)], k * kCifarBatchImages);
  }
  spdlog::info("Writing Testing data");
  write(1, inputs[5], 0);
  dbs.publish();
  made_folder.armed = false;
  spdlog::info("Wrote {} training images to {} and {} test images to {} (3x32x32, RGB planes as CIFAR-10 stores them)",
               written[0], train_db, written[1], test_db);
  return 0;
}

namespace {
// An existing output is replaced only when it is a mean image, as an earlier run left it:
// anything else there (weights, a config, the database itself, all a slip of -o away) was
// written by someone and would be lost.
void refuse_replacing_other_than_mean(const std::string& output) {
  std::error_code ec;
  if (!fs::exists(output, ec) || (fs::is_regular_file(output, ec) && fs::file_size(output, ec) == 0)) return;
  if (fs::is_directory(output, ec))
    throw ConfigError(Mark{}, "--output", "'" + output + "' is a folder; give the mean image file to write in it");
  // Read only what could be a mean image: a 3 x 2048 x 2048 one is 48 MiB; a database or
  // weights file given by mistake may be many GiB.
  constexpr uintmax_t kLargestMean = uintmax_t{256} << 20;
  std::string why = "is no mean image (.binaryproto)";
  if (fs::is_regular_file(output, ec) && fs::file_size(output, ec) <= kLargestMean) {
    try {
      if (io::read_binaryproto(output).count() > 0) return;
    } catch (const Error&) {
      if (::access(output.c_str(), R_OK) != 0) why = "cannot be read to tell whether it is a mean image";
    }
  }
  throw ConfigError(Mark{}, "--output",
                    "'" + output + "' exists and " + why +
                        ": compute-mean would replace it; remove it first, or give the output another name");
}
}  // namespace

int compute_mean(const ComputeMeanOptions& opt) {
  refuse_other_backend(opt.backend, "--backend");
  if (opt.output.empty())  // Caffe's tool then only logs the channel means
    throw ConfigError(Mark{}, "--output",
                      "give the file to write the mean to: -o mean.binaryproto (or as the second argument, as "
                      "Caffe's compute_image_mean takes it)");
  refuse_replacing_other_than_mean(opt.output);
  // The sources the Data layer reads: an LMDB directory, else an IDX images file.
  std::error_code ec;
  if (!fs::exists(opt.db, ec))
    throw ConfigError(Mark{}, "", "'" + opt.db + "' does not exist; give an LMDB directory or an IDX images file");
  const bool lmdb = io::is_lmdb(opt.db);
  // What an ImageData layer reads (a list, a folder of class folders) is made a database first:
  // the mean needs every image at the size the net takes, which the conversion sets.
  const std::string kind = io::what_is(opt.db);
  const bool folder = kind == "a folder";
  if (folder || kind == "a text file" || kind == "an image")
    throw ConfigError(Mark{}, "",
                      "'" + opt.db + "' is " +
                          (folder               ? "a folder but no LMDB database"
                           : kind == "an image" ? "an image"
                                                : "a text file (an image list?)") +
                          ": compute-mean reads an LMDB database or an IDX images file. Convert the images first "
                          "(crema convert-imageset ROOT/ LIST.txt OUT_LMDB --resize WxH: a list of 'path label' lines" +
                          std::string(folder ? ", one per image of the class folders" : "") +
                          ", at the size the net takes), "
                          "then crema compute-mean OUT_LMDB -o mean.binaryproto; or give transform_param a "
                          "mean_value per channel instead");
  if (kind == "an HDF5 file" || kind == "a LevelDB database")
    throw ConfigError(Mark{}, "",
                      "'" + opt.db + "' is " + kind + ": compute-mean reads an LMDB database or an IDX images file" +
                          (kind == "an HDF5 file"
                               ? std::string(" (HDF5 data is read as it is stored: compute its mean with h5py, say)")
                               : std::string(" (LevelDB is not read: convert the images into an LMDB with crema "
                                             "convert-imageset)")));
  const std::unique_ptr<ImageSource> source =
      lmdb ? open_lmdb_source(opt.db, 0, false)  // encoded records as stored, as Caffe
           : open_idx_source(opt.db, "");
  if (source->size() == 0) throw Error("'" + opt.db + "' holds no images: there is nothing to average");
  std::vector<double> sum;  // (C, H, W); double: float sums of millions of pixels lose digits
  int channels = 0, height = 0, width = 0;
  // Records are read (and encoded ones decoded) on the pool's threads and summed here in
  // order, so the mean is the same for any number of threads.
  const int threads = pool_threads(opt.threads);
  OrderedPool<RawSample> pool(source->size(), threads, threads + 2, [&](int64_t i) {
    RawSample sample;
    source->read(static_cast<int>(i), sample);  // a damaged record stops the mean: it would be wrong without it
    return sample;
  });
  install_signal_handlers(default_signal_effects(), false);  // Ctrl-C, SIGTERM, …: stop, writing nothing
  for (int i = 0; i < source->size(); ++i) {
    RawSample sample;
    exit_past_stuck_reads([&] {
      // Checked before each record too: next() asks only while it waits.
      std::optional<RawSample> next;
      if (!stop_requested()) next = pool.next(stop_requested);
      if (!next) {
        poll_signal_action();  // logs the signal
        throw Error("interrupted after " + std::to_string(i) + " of " + std::to_string(source->size()) +
                    " records; nothing was written to '" + opt.output + "'");
      }
      sample = std::move(*next);
      if (i == 0) {
        channels = sample.channels, height = sample.height, width = sample.width;
        sum.assign(static_cast<size_t>(channels) * height * width, 0.0);
      } else if (sample.channels != channels || sample.height != height || sample.width != width) {
        throw Error(source->describe(i) + " is " + io::shape_text(sample.channels, sample.height, sample.width) +
                    " but the first record is " + io::shape_text(channels, height, width) +
                    "; a mean image needs images of one size (convert them with --resize WxH)");
      }
    });
    if (!sample.bytes.empty())
      for (size_t k = 0; k < sum.size(); ++k) sum[k] += sample.bytes[k];
    else
      for (size_t k = 0; k < sum.size(); ++k) sum[k] += sample.floats[k];
    if ((i + 1) % 10000 == 0) spdlog::info("Processed {} files.", i + 1);
  }
  const size_t count = static_cast<size_t>(source->size());
  std::vector<float> mean(sum.size());  // (C, H, W)
  for (size_t k = 0; k < sum.size(); ++k) mean[k] = static_cast<float>(sum[k] / static_cast<double>(count));
  io::write_file_atomically(opt.output, io::encode_mean_blob(channels, height, width, mean));
  if (count % 10000 != 0) spdlog::info("Processed {} files.", count);
  spdlog::info("Write to {}", opt.output);
  // Caffe's summary: one mean per channel, the numbers transform_param.mean_value takes.
  spdlog::info("Number of channels: {}", channels);
  const size_t plane = static_cast<size_t>(height) * width;
  for (int ch = 0; ch < channels; ++ch) {
    double s = 0;
    for (size_t k = 0; k < plane; ++k) s += mean[static_cast<size_t>(ch) * plane + k];
    spdlog::info("mean_value channel [{}]: {}", ch, s / static_cast<double>(plane));
  }
  return 0;
}

}  // namespace crema::app
