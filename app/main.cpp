// crema's command line: parses options and hands each subcommand to app/commands.
// Every error a user can cause ends here as one line; config errors exit with 2.
#include <spdlog/sinks/base_sink.h>
#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>
#include <sys/resource.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <limits>
#include <map>
#include <mutex>
#include <new>
#include <optional>
#include <set>
#include <string_view>
#include <thread>

#include "app/classify.hpp"
#include "app/commands.hpp"
#include "app/convert.hpp"
#include "app/data_tools.hpp"
#include "app/device.hpp"
#include "app/imageset.hpp"
#include "app/signals.hpp"
#include "app/startup.hpp"
#include "engine/context.hpp"
#include "engine/error.hpp"
#include "engine/math.hpp"
#include "io/hdf5.hpp"
#include "io/job_config.hpp"

namespace {

// A job's time limit in seconds, as Slurm writes it (MM, MM:SS, HH:MM:SS, D-HH, D-HH:MM,
// D-HH:MM:SS; a bare number is minutes) or with units (3h50m, 90m, 45s, 1d12h); nothing
// when `text` is neither, or not positive.
std::optional<long long> parse_duration_s(const std::string& text) {
  const auto number = [](std::string_view s) -> std::optional<long long> {
    long long v = -1;
    const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (s.empty() || ec != std::errc() || end != s.data() + s.size() || v < 0 || v > 100000000) return std::nullopt;
    return v;
  };
  long long total = 0;
  if (!text.empty() && std::isalpha(static_cast<unsigned char>(text.back()))) {
    size_t at = 0;  // one or more <number><unit>, units in d, h, m, s
    while (at < text.size()) {
      const size_t unit = text.find_first_not_of("0123456789", at);
      if (unit == std::string::npos) return std::nullopt;
      const auto v = number(std::string_view(text).substr(at, unit - at));
      const std::string_view units = "dhms";
      const size_t k = units.find(text[unit]);
      if (!v || k == std::string_view::npos) return std::nullopt;
      total += *v * std::array<long long, 4>{86400, 3600, 60, 1}[k];
      at = unit + 1;
    }
  } else {
    std::string_view rest = text;
    long long days = 0;
    if (const size_t dash = rest.find('-'); dash != std::string_view::npos) {
      const auto d = number(rest.substr(0, dash));
      if (!d) return std::nullopt;
      days = *d;
      rest = rest.substr(dash + 1);
    }
    std::vector<long long> parts;
    for (size_t start = 0;;) {
      const size_t colon = rest.find(':', start);
      const auto v =
          number(rest.substr(start, colon == std::string_view::npos ? std::string_view::npos : colon - start));
      if (!v) return std::nullopt;
      parts.push_back(*v);
      if (colon == std::string_view::npos) break;
      start = colon + 1;
    }
    if (parts.size() > 3) return std::nullopt;
    // Slurm: after a day count, H, H:M or H:M:S; otherwise M, M:S or H:M:S.
    static const std::array<std::array<long long, 3>, 3> with_days = {{{3600}, {3600, 60}, {3600, 60, 1}}},
                                                         without = {{{60}, {60, 1}, {3600, 60, 1}}};
    const auto& scale = (text.find('-') != std::string::npos ? with_days : without)[parts.size() - 1];
    total = days * 86400;
    for (size_t i = 0; i < parts.size(); ++i) total += parts[i] * scale[i];
  }
  if (total <= 0) return std::nullopt;
  return total;
}

// The non-empty comma-separated entries of every option value, in order ("-weights a,b").
std::vector<std::string> split_commas(const std::vector<std::string>& in) {
  std::vector<std::string> out;
  for (const auto& s : in)
    for (auto& part : crema::split_commas(s))
      if (!part.empty()) out.push_back(std::move(part));
  return out;
}

// An option's comma-separated names. An empty one is a typo or an unset shell variable
// (`--weights "$MODEL"`), which skipping would turn into a silent default: training from
// random weights, or `--blobs ""` writing an empty file.
std::vector<std::string> names_of(const char* option, const std::vector<std::string>& given) {
  for (const std::string& list : given) {
    if (list.empty())
      throw crema::ConfigError(crema::Mark{}, option,
                               "an empty value (an unset shell variable?); give the names or leave the option out");
    if (list.front() == ',' || list.back() == ',' || list.find(",,") != std::string::npos)
      throw crema::ConfigError(crema::Mark{}, option,
                               "'" + list + "' has an empty name; give names separated by single commas");
  }
  return split_commas(given);
}

// Caffe's --stage and --level, for a command that builds its TRAIN or TEST net (`net`).
struct StateFlags {
  std::vector<std::string> stages;
  int level = 0;
  CLI::Option* level_option = nullptr;
  void add_to(CLI::App* cmd, const std::string& net, const CLI::Validator& any_level) {
    cmd->add_option("--stage", stages,
                    "Stage(s) of the " + net + " net's state, comma-separated (include/exclude rules)")
        ->allow_extra_args(false);
    level_option = cmd->add_option("--level", level, "Level of the " + net + " net's state (min_level/max_level rules)")
                       ->check(any_level);
  }
  // Into the command's options, once parsed.
  void read(std::vector<std::string>& to_stages, std::optional<int>& to_level) const {
    to_stages = names_of("--stage", stages);
    if (level_option->count() > 0) to_level = level;
  }
};

// --set key.path=value and --unset key.path, into one list in the order given, so that a
// later one acts on what an earlier one made (--unset weight_filler --set weight_filler.type=msra
// replaces the whole map); an --unset is kept as "~key.path" (io::apply_override).
void add_overrides(CLI::App* cmd, std::vector<std::string>& overrides, const std::string& file) {
  cmd->add_option_function<std::vector<std::string>>(
         "--set",
         [&overrides](const std::vector<std::string>& v) { overrides.insert(overrides.end(), v.begin(), v.end()); },
         "Override a key of " + file + ": --set key.path=value (repeatable)")
      ->type_name("KEY=VALUE")
      ->allow_extra_args(false)
      ->trigger_on_parse()
      ->check(
          [](const std::string& v) -> std::string {
            return v.rfind('~', 0) == 0 ? "a key starts with no '~'; --unset " + v.substr(1) + " removes one" : "";
          },
          "", "");
  cmd->add_option_function<std::vector<std::string>>(
         "--unset",
         [&overrides](const std::vector<std::string>& v) {
           for (const auto& key : v) overrides.push_back("~" + key);
         },
         "Remove a key or list item of " + file +
             ": --unset key.path (repeatable; --set and --unset apply in the order given)")
      ->type_name("KEY")
      ->allow_extra_args(false)
      ->trigger_on_parse();
}

// Each log line is a sign of progress for a command's setup watch (app/signals.hpp): a
// setup blocked in a read logs none.
class ProgressSink : public spdlog::sinks::base_sink<std::mutex> {
 protected:
  void sink_it_(const spdlog::details::log_msg&) override { crema::app::note_progress(); }
  void flush_() override {}
};

void setup_logging(const std::string& log_file) {
  std::vector<spdlog::sink_ptr> sinks;
  sinks.push_back(std::make_shared<ProgressSink>());
  sinks.push_back(std::make_shared<spdlog::sinks::stderr_sink_mt>());
  std::shared_ptr<spdlog::sinks::basic_file_sink_mt> file;
  if (!log_file.empty()) sinks.push_back(file = std::make_shared<spdlog::sinks::basic_file_sink_mt>(log_file, false));
  auto logger = std::make_shared<spdlog::logger>("crema", sinks.begin(), sinks.end());
  // A log file that cannot take a line (a full disk) is said once, in crema's words, and left
  // alone after: the run goes on with the terminal's log (spdlog would print its own error
  // for every line).
  if (file)
    logger->set_error_handler([file, log_file](const std::string& what) {
      static std::atomic<bool> said{false};  // two threads may fail on their lines at once
      file->set_level(spdlog::level::off);
      if (said.exchange(true)) return;
      std::string why = what;  // "Failed writing to file X: <reason>"
      if (const size_t colon = why.rfind(": "); colon != std::string::npos) why = why.substr(colon + 2);
      std::cerr << "crema: cannot write the --log file '" << log_file << "' (" << why
                << "); the log goes on here only\n";
    });
  // glog's layout, so Caffe's parse_log.py and similar tools read crema logs.
  logger->set_pattern("%L%m%d %H:%M:%S.%f %6t crema] %v");
  logger->flush_on(spdlog::level::info);
  spdlog::set_default_logger(logger);
}

// Why --log FILE must not be used, or "": the log is appended, so naming one of the
// command's own files (the solver, weights, a snapshot) would write log lines into it.
// `inputs`: the files the command reads (solver or model, weights, snapshot).
std::string log_file_problem(const std::string& log_file, const std::vector<std::string>& inputs) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::exists(log_file, ec)) return "";
  for (const std::string& input : inputs)
    if (!input.empty() && fs::equivalent(log_file, input, ec))
      return "'" + input + "' is also an input of this command, and the log is appended to its file";
  // A device or a FIFO is written as it is (a FIFO would also block the read below).
  if (!fs::is_regular_file(log_file, ec)) return "";
  // A config the inputs name (a solver's net file, the net of a deploy command) is lost
  // as surely as the solver itself; no log is named like one.
  if (fs::file_size(log_file, ec) > 0 && crema::io::config_format_for(log_file))
    return "it is a net or solver config (by its name), and the log is appended to it";
  std::ifstream in(log_file, std::ios::binary);
  char head[512];
  in.read(head, sizeof head);
  if (std::memchr(head, '\0', static_cast<size_t>(in.gcount())))
    return "it holds binary data (weights, a snapshot or a database?), and the log is appended to it";
  return "";
}

// CLI::Range on a whole-number option calls 1e3 or 2.5 "not in range" (it is no integer at
// all): said as such here; a whole number outside says CLI11's "Value V not in range L to H".
CLI::Validator whole_number(long long lo, long long hi) {
  return CLI::Validator(
      [lo, hi](std::string& v) -> std::string {
        char* end = nullptr;
        errno = 0;
        const long long n = std::strtoll(v.c_str(), &end, 10);
        if (v.empty() || *end != '\0') return "'" + v + "' is not a whole number";
        if (errno == ERANGE || n < lo || n > hi)
          return "Value " + v + " not in range " + std::to_string(lo) + " to " + std::to_string(hi);
        return "";
      },
      "INT");
}

bool is_number(const std::string& s) {
  char* end = nullptr;
  std::strtod(s.c_str(), &end);
  return !s.empty() && *end == '\0';
}

// CLI11 lists unexpected arguments last-first and suggests nothing (and a misspelt
// required option only shows as "--model is required"), while the usual cause is one
// misspelt option or command: name the first such with its closest real spelling.
// "" when every option and command is known (an extra positional argument, a bad value).
// Caffe's flags are gflags, which take one dash as two: the model zoo's instructions write
// `caffe train -solver S -weights W -gpu 0`. A single-dash word that is a long option's name
// (of the command, or of crema before it: -version) is taken as that option; anything else
// is left for CLI11 (-ofile).
std::vector<std::string> with_caffe_single_dash_flags(CLI::App& app, int argc, char** argv) {
  std::vector<std::string> args(argv, argv + argc);
  CLI::App* sub = nullptr;
  bool value_next = false;  // the previous word was an option that takes the next as its value
  for (size_t i = 1; i < args.size(); ++i) {
    std::string& arg = args[i];
    if (arg == "--") break;
    if (std::exchange(value_next, false)) continue;
    if (!sub && arg[0] != '-') {
      const auto found = app.get_subcommands([&](CLI::App* c) { return c->get_name() == arg; });
      sub = found.empty() ? nullptr : found.front();
      continue;
    }
    if (arg.size() < 2 || arg[0] != '-' || !std::isalpha(static_cast<unsigned char>(arg[arg[1] == '-' ? 2 : 1])))
      continue;
    const size_t eq = arg.find('=');
    const auto option = [&](const std::string& name) {
      const CLI::Option* o = sub ? sub->get_option_no_throw(name) : nullptr;
      return o != nullptr ? o : app.get_option_no_throw(name);
    };
    const CLI::Option* o = arg[1] == '-' || arg.size() == 2 ? option(arg.substr(0, eq)) : nullptr;  // --name, -o
    if (o == nullptr && arg[1] != '-' && (o = option("-" + arg.substr(0, eq))))
      arg = "-" + arg;  // -name, and -n for a one-letter long option (preview's --n)
    value_next = o != nullptr && eq == std::string::npos && o->get_items_expected_min() > 0;
  }
  return args;
}

// train's solver: positional or --solver (Caffe's spelling), once.
std::string train_solver_count_error(int positionals, int solver_flags) {
  if (positionals + solver_flags == 0)
    return "crema train: give the solver config: crema train SOLVER.yaml (or --solver SOLVER.yaml)";
  return "crema train: the solver is given " +
         std::string(positionals > 0 && solver_flags > 0 ? "both as an argument and with --solver" : "more than once") +
         "; give it once: crema train SOLVER.yaml (or --solver SOLVER.yaml)";
}

std::string explain_unexpected(CLI::App& app, int argc, char** argv) {
  const std::vector<CLI::App*> subs = app.get_subcommands([](CLI::App*) { return true; });
  std::vector<std::string> commands;
  for (const CLI::App* c : subs) commands.push_back(c->get_name());
  auto option_names = [](const CLI::App& a) {
    std::vector<std::string> names = {"--help"};
    for (const CLI::Option* o : a.get_options()) {
      for (const std::string& n : o->get_lnames()) names.push_back("--" + n);
      for (const std::string& n : o->get_snames()) names.push_back("-" + n);
    }
    return names;
  };
  CLI::App* sub = nullptr;
  std::string config_positional;  // a config file given without --model (crema time lenet.yaml)
  bool model_given = false;
  int solver_flags = 0;
  int positionals = 0;  // after the command
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--") break;
    CLI::App& at = sub ? *sub : app;
    const std::string where = sub ? "crema " + sub->get_name() : std::string("crema");
    if (arg.size() > 1 && arg[0] == '-' && !is_number(arg)) {
      // --name=value, or -o with its value attached (-ofile); a single-dash word that starts
      // with no short option is a long one misspelt in gflags' style (-solverx).
      std::string name = arg[1] == '-' ? arg.substr(0, arg.find('=')) : arg.substr(0, 2);
      std::string written = name;
      if (arg[1] != '-' && arg.size() > 2 && !at.get_option_no_throw(name)) {
        written = arg.substr(0, arg.find('='));
        name = "-" + written;
      }
      if (name == "-h" || name == "--help") continue;
      model_given |= name == "--model";
      solver_flags += sub && name == "--solver";
      if (const CLI::Option* o = at.get_option_no_throw(name)) {
        // Its value is the next argument, whatever it looks like (--set -x, --log -f).
        if (o->get_items_expected_min() > 0 && name.size() == arg.size()) ++i;  // not a flag
        continue;
      }
      if (!sub)
        for (const CLI::App* c : subs)
          if (c->get_option_no_throw(name))
            return "crema: '" + name +
                   "' is an option of the commands, not of crema itself: put it after the command "
                   "(crema " +
                   c->get_name() + " … " + name + " …)";
      // "-x" is a distance of one from every short option: no suggestion for those.
      const bool word = name.find_first_not_of('-') != std::string::npos && name.size() > 2;
      std::string hint = word ? crema::did_you_mean(name, option_names(at)) : "";
      // A config key written as an option (--base_lr=0.1, --max_iter 10, PyTorch's --lr):
      // crema's own options use dashes, config keys underscores.
      const std::string key = name.substr(name.find_first_not_of('-'));
      const std::string& caffe = crema::caffe_name_for(key);
      const bool elsewhere = std::any_of(subs.begin(), subs.end(), [&](const CLI::App* c) {
        return c->get_option_no_throw(name) != nullptr;  // another command's option (train --iterations)
      });
      // Options other tools take that are no config keys here (glog's, Caffe's, PyTorch scripts'),
      // each with this command's way where it has the option that hint needs.
      const bool is_train = sub && sub->get_name() == "train";
      const std::string lower = crema::lowercase(key);
      const std::string batch_key = std::string("a key of the net's data layer I: --set ") + (is_train ? "net." : "") +
                                    "layer[I].data_param.batch_size=N, image_data_param or hdf5_data_param for "
                                    "those layers" +
                                    (is_train ? "" : ", net.layer[I]… when the file is a solver");
      const struct {
        const char* name;
        const char* needs;  // the option of this command the hint names
        std::string hint;
      } other_tools[] = {
          {"log_dir", "--log", "crema logs to stderr and reads no glog flags: --log FILE writes a copy"},
          {"logtostderr", "--log", "not needed: crema logs to stderr, and --log FILE writes a copy"},
          {"alsologtostderr", "--log", "not needed: crema logs to stderr, and --log FILE writes a copy"},
          {"gpu_id", "--gpu", "crema's spelling: --gpu N"},
          {"batch_size", "--batch-size", "crema's spelling: --batch-size N"},
          {"batch_size", "--set", batch_key},
      };
      bool other_tool = false;
      std::string tool_hint;
      for (const auto& t : other_tools) {
        if (lower != t.name) continue;
        other_tool = true;
        if (tool_hint.empty() && at.get_option_no_throw(t.needs)) tool_hint = t.hint;
      }
      // The solver's keys of one word, which the underscore test below does not catch.
      static const std::set<std::string> one_word_keys = {"momentum",  "momentum2", "gamma",  "power",
                                                          "display",   "type",      "delta",  "stepsize",
                                                          "stepvalue", "precision", "metrics"};
      if (word && !tool_hint.empty()) {
        hint = " (" + tool_hint + ")";
      } else if (word && !elsewhere && !other_tool && at.get_option_no_throw("--set") &&
                 (key.find('_') != std::string::npos || !caffe.empty() || one_word_keys.count(key))) {
        const size_t eq = arg.find('=');
        const std::string value = eq != std::string::npos ? arg.substr(eq + 1)
                                  : i + 1 < argc          ? std::string(argv[i + 1])
                                                          : "VALUE";
        const bool epochs = caffe == "max_iter" && crema::lowercase(key).find("epoch") != std::string::npos;
        hint = epochs ? " (a config key is set with --set: --set max_iter=N, where N counts iterations: " + value +
                            " epochs × training samples ÷ batch_size)"
                      : " (a config key is set with --set: --set " + (caffe.empty() ? key : caffe) + "=" + value + ")";
      }
      return where + ": unknown option '" + written + "'" + hint + "; '" + where + " --help' lists the options";
    }
    if (!sub) {
      if (std::find(commands.begin(), commands.end(), arg) == commands.end()) {
        std::string list;
        for (const auto& c : commands) list += (list.empty() ? "" : ", ") + c;
        // Caffe's tools by their own names (build/tools/…), as its users type them.
        static const std::map<std::string, std::string> caffe_tools = {{"device_query", "device"},
                                                                       {"compute_image_mean", "compute-mean"},
                                                                       {"convert_imageset", "convert-imageset"},
                                                                       {"extract_features", "extract-features"},
                                                                       {"convert_cifar_data", "convert-cifar"},
                                                                       {"upgrade_net_proto_text", "convert"},
                                                                       {"upgrade_solver_proto_text", "convert"},
                                                                       {"upgrade_net_proto_binary", "convert"},
                                                                       {"classification", "classify"},
                                                                       {"draw_net", "convert NET -o NET.dot"},
                                                                       {"draw_net.py", "convert NET -o NET.dot"},
                                                                       {"convert_mnist_data",
                                                                        "not needed: crema's Data layer reads MNIST's "
                                                                        "IDX files as they are"}};
        const auto tool = caffe_tools.find(arg);
        const std::string hint = tool != caffe_tools.end()
                                     ? " (Caffe's " + arg + " is " +
                                           (tool->second.starts_with("not needed") ? "" : "crema ") + tool->second + ")"
                                     : crema::did_you_mean(arg, commands);
        return "crema: unknown command '" + arg + "'" + hint + "; the commands are " + list +
               " ('crema --help' describes them)";
      }
      sub = app.get_subcommand(arg);
    } else {
      ++positionals;
      if (config_positional.empty() && crema::io::config_format_for(arg)) config_positional = arg;
    }
  }
  if (sub && sub->get_name() == "train" && (positionals + solver_flags != 1))
    return train_solver_count_error(positionals, solver_flags);
  if (sub && !model_given && !config_positional.empty() && sub->get_option_no_throw("--model"))
    return "crema " + sub->get_name() + ": give the net with --model (crema " + sub->get_name() + " --model " +
           config_positional + " …)";
  return "";
}

}  // namespace

int main(int argc, char** argv) {
  crema::io::skip_hdf5_exit_cleanup();  // first: a failed write must end in its message, not a crash
  crema::app::install_process_signal_handlers();
  // A run keeps a few dozen files open (data, metrics, HDF5, libraries'): a low soft limit
  // (ulimit -n 5) failed only the final snapshot, after the training. It is raised as far as
  // the hard limit allows; a hard limit that low is refused before anything runs.
  if (rlimit files{}; getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur < 256) {
    const rlim_t was = files.rlim_cur;
    files.rlim_cur = std::min<rlim_t>(files.rlim_max, 1024);
    if (files.rlim_cur < 16 || setrlimit(RLIMIT_NOFILE, &files) != 0) {
      std::cerr << "crema: the open-file limit (ulimit -n) is " << was << ", with a hard limit of " << files.rlim_max
                << "; crema needs at least 16 open files\n";
      return 1;
    }
  }
  CLI::App app{"crema: train Caffe-style neural networks from YAML or prototxt configs"};
  app.require_subcommand(0, 1);
  bool show_version = false;
  app.add_flag("--version", show_version, "Print the version and the compiled-in backends");
  int threads = 0;
  std::string log_file;

  // CLI::PositiveNumber says "Value 0 not in range 0.000000 to 1.79…e308" (309 digits).
  const auto at_least_one = whole_number(1, std::numeric_limits<int>::max());
  // A whole number: without it, one too large for an int was only "Could not convert".
  const auto any_level = whole_number(std::numeric_limits<int>::min(), std::numeric_limits<int>::max());
  // "nan" and "inf" parse as numbers, and then every output is made up.
  const CLI::Validator finite_number(
      [](std::string& v) -> std::string {
        try {
          size_t used = 0;
          const float x = std::stof(v, &used);
          return used == v.size() && std::isfinite(x) ? std::string() : "expected a finite number, got '" + v + "'";
        } catch (const std::exception&) {
          return "expected a finite number, got '" + v + "'";
        }
      },
      "FINITE");
  // Caffe's `--gpu 0,1` and `--gpu all` train on several devices at once; crema runs on
  // one, and says so rather than "not in range".
  const CLI::Validator device_id(
      [](std::string& v) -> std::string {
        if (v.find(',') != std::string::npos || v == "all")
          return "crema runs on one GPU per process: give one device number (e.g. --gpu 0); '" + v +
                 "' (several devices at once, as in Caffe) is not supported";
        return whole_number(0, std::numeric_limits<int>::max())(v);
      },
      "", "device id");
  crema::app::TrainOptions train;
  // Repeatable options take one value each (allow_extra_args(false)): otherwise a vector
  // option swallows the positional arguments after it (classify's images).
  std::vector<std::string> train_weights;
  auto* train_cmd = app.add_subcommand("train", "Train a net from a solver config");
  // Positional, or --solver as Caffe's `caffe train --solver=…` spells it: two options on one
  // value, so that help lists the solver once; explain_unexpected requires exactly one of them.
  train_cmd->add_option("solver", train.solver,
                        "Solver config (YAML or prototxt); required (--solver SOLVER also works)");
  train_cmd->add_option("--solver", train.solver, "The solver config, as Caffe spells it")->group("");
  StateFlags train_state;
  train_state.add_to(train_cmd, "TRAIN", any_level);
  train_cmd->add_option("--weights", train_weights, "Initial weights (.caffemodel or .caffemodel.h5), comma-separated; later files win")->allow_extra_args(false);
  std::vector<std::string> train_reinit;
  train_cmd->add_option("--reinit", train_reinit, "Layers to re-initialise from their fillers instead of loading them")->allow_extra_args(false);
  train_cmd->add_option("--snapshot", train.snapshot, "Resume from a .solverstate or .solverstate.h5");
  train_cmd
      ->add_option("--time-limit", train.time_limit,
                   "Stop with a snapshot (exit 75) once this much time has passed: Slurm's 3:50:00, 1-12:00:00, 90 "
                   "(minutes), or 3h50m, 45s")
      ->check(CLI::Validator(
          [](std::string& v) -> std::string {
            if (parse_duration_s(v)) return {};
            return "'" + v +
                   "' is not a positive duration; write it as Slurm does (MM, MM:SS, HH:MM:SS, D-HH, D-HH:MM:SS) "
                   "or with units (3h50m, 90m, 45s, 1d12h)";
          },
          "", "duration"));
  // Caffe's --sigint_effect/--sighup_effect (either spelling), and crema's for every signal.
  const auto effect_check = CLI::IsMember({"stop", "snapshot", "none"});
  std::string sigint_effect, sighup_effect;
  std::vector<std::string> signal_effects;
  train_cmd
      ->add_option("--sigint-effect,--sigint_effect", sigint_effect,
                   "What Ctrl-C (SIGINT) does: stop (with a snapshot; the default), snapshot (and go on) or none")
      ->check(effect_check);
  train_cmd
      ->add_option("--sighup-effect,--sighup_effect", sighup_effect,
                   "What SIGHUP does: snapshot (and go on; the default), stop (with a snapshot) or none")
      ->check(effect_check);
  train_cmd
      ->add_option("--signal-effect", signal_effects,
                   "SIG=EFFECT[,…] for INT, TERM, HUP, USR1, USR2, XCPU: stop, snapshot or none (default: HUP "
                   "snapshots, the others stop)")
      ->allow_extra_args(false)
      ->check(CLI::Validator(
          [](std::string& v) -> std::string {
            crema::app::SignalEffects effects;
            return crema::app::apply_signal_effects(split_commas({v}), effects);
          },
          "", "SIG=EFFECT"));
  train_cmd->add_flag("--resume", train.resume,
                      "Resume from the latest snapshot under snapshot_prefix if there is one, else start anew");
  train_cmd->add_flag("--overwrite", train.overwrite,
                      "Start anew although snapshot_prefix holds an earlier run's snapshots, deleting them and its "
                      "metrics first");
  add_overrides(train_cmd, train.overrides, "the solver (net.… for its net's)");
  train_cmd->add_option("--gpu", train.gpu, "GPU device id (overrides solver_mode)")->check(device_id);
  train_cmd
      ->add_option("--threads", threads,
                   "CPU threads (default: OMP_NUM_THREADS when set, else every core this process may use)")
      ->check(at_least_one);
  train_cmd->add_option("--log", log_file, "Also write the log to this file");

  crema::app::TestOptions test;
  std::vector<std::string> test_weights;
  auto* test_cmd = app.add_subcommand("test", "Score a trained net (TEST phase)");
  test_cmd->add_option("--model", test.model, "Net or solver config (YAML or prototxt)")->required();
  test_cmd->add_option("--weights", test_weights, "Weights (.caffemodel or .caffemodel.h5), comma-separated")->allow_extra_args(false);
  test_cmd->add_option("--iterations", test.iterations, "Batches to run")->check(at_least_one);
  add_overrides(test_cmd, test.overrides, "the --model file (a solver file's as for train)");
  StateFlags test_state;
  test_state.add_to(test_cmd, "TEST", any_level);
  test_cmd->add_option("--gpu", test.gpu, "GPU device id")->check(device_id);
  test_cmd
      ->add_option("--threads", threads,
                   "CPU threads (default: OMP_NUM_THREADS when set, else every core this process may use)")
      ->check(at_least_one);
  test_cmd->add_option("--log", log_file, "Also write the log to this file");

  crema::app::ExtractOptions extract;
  std::vector<std::string> extract_weights, extract_blobs, extract_outputs;
  auto* extract_cmd = app.add_subcommand(
      "extract-features", "Write blobs of the TEST net for every sample to HDF5 or LMDB (Caffe's extract_features)");
  extract_cmd->add_option("--model", extract.net.model, "Net or solver config (YAML or prototxt)")->required();
  extract_cmd->add_option("--weights", extract_weights, "Weights (.caffemodel or .caffemodel.h5), comma-separated")
      ->allow_extra_args(false);
  extract_cmd->add_option("--blobs", extract_blobs, "Blobs to write, comma-separated (e.g. fc7,prob)")
      ->required()
      ->allow_extra_args(false);
  extract_cmd->add_option("--iterations", extract.net.iterations, "Batches to run")->check(at_least_one);
  extract_cmd
      ->add_option("-o,--output", extract_outputs,
                   "One HDF5 file (FEATURES.h5) for all blobs, or one new LMDB folder per blob, comma-separated")
      ->required()
      ->allow_extra_args(false);
  add_overrides(extract_cmd, extract.net.overrides, "the --model file");
  StateFlags extract_state;
  extract_state.add_to(extract_cmd, "TEST", any_level);
  extract_cmd->add_option("--gpu", extract.net.gpu, "GPU device id")->check(device_id);
  extract_cmd
      ->add_option("--threads", threads,
                   "CPU threads (default: OMP_NUM_THREADS when set, else every core this process may use)")
      ->check(at_least_one);
  extract_cmd->add_option("--log", log_file, "Also write the log to this file");

  crema::app::TimeOptions time;
  auto* time_cmd = app.add_subcommand("time", "Benchmark each layer's forward and backward pass");
  time_cmd->add_option("--model", time.model, "Net or solver config (YAML or prototxt)")->required();
  time_cmd->add_option("--iterations", time.iterations, "Iterations to time")->check(at_least_one);
  time_cmd->add_option("--phase", time.phase, "TRAIN (forward+backward) or TEST")
      ->transform(CLI::IsMember({"TRAIN", "TEST"}, CLI::ignore_case));
  auto* time_gpu = time_cmd->add_option("--gpu", time.gpu, "GPU device id")->check(device_id);
  auto* time_precision =
      time_cmd
          ->add_option("--precision", time.precision,
                       "fp32; bf16 (CPU): convolutions and inner products in bfloat16; tf32 (GPU): on tensor cores "
                       "(default: a solver file's precision, else fp32)")
          ->check(CLI::IsMember(crema::precision_names()));
  add_overrides(time_cmd, time.overrides, "the --model file");
  bool time_data = false;
  time_cmd->add_flag("--data", time_data, "Time the data layers alone (samples per second), not the net")
      ->excludes(time_precision)
      ->excludes(time_gpu);  // the readers compute nothing, on the host

  crema::app::PreviewOptions preview;
  auto* preview_cmd = app.add_subcommand("preview", "Write transformed samples of a net's data layer as PNG files");
  preview_cmd->add_option("--model", preview.model, "Net or solver config (YAML or prototxt)")->required();
  preview_cmd->add_option("--out", preview.out, "Folder for the PNG files (created)")->required();
  preview_cmd->add_option("--n", preview.count, "Samples to write")->check(at_least_one);
  preview_cmd->add_option("--phase", preview.phase, "TRAIN (augmented) or TEST")
      ->transform(CLI::IsMember({"TRAIN", "TEST"}, CLI::ignore_case));
  add_overrides(preview_cmd, preview.overrides, "the --model file");
  time_cmd
      ->add_option("--threads", threads,
                   "CPU threads (default: OMP_NUM_THREADS when set, else every core this process may use)")
      ->check(at_least_one);

  crema::app::ConvertOptions convert;
  auto* convert_cmd = app.add_subcommand("convert", "Convert a net or solver between prototxt and YAML, upgrading old Caffe formats");
  convert_cmd->add_option("input", convert.input, "Net or solver (.prototxt or .yaml), or binary weights (.caffemodel)")->required();
  convert_cmd
      ->add_option("-o,--output", convert.output,
                   "Output file: .yaml/.yml for YAML, .prototxt/.pt for prototxt, .caffemodel.h5 for weights, "
                   ".onnx for an ONNX model of a deploy net (with --weights), .dot/.gv for a Graphviz drawing")
      ->required();
  std::vector<std::string> convert_weights;
  convert_cmd->add_option("--weights", convert_weights, "For .onnx: the weights (.caffemodel or .caffemodel.h5), comma-separated")
      ->allow_extra_args(false);
  add_overrides(convert_cmd, convert.overrides, "the net, for .onnx and .dot");
  auto* convert_rankdir =
      convert_cmd
          ->add_option("--rankdir", convert.rankdir,
                       "For .dot: the graph's direction, LR (left to right, the default), RL, TB or BT")
          ->check(CLI::IsMember({"TB", "BT", "LR", "RL"}));
  StateFlags convert_state;
  convert_state.add_to(convert_cmd, "exported (TEST)", any_level);

  crema::app::ClassifyOptions classify;
  std::vector<std::string> classify_weights, classify_mean;
  auto* classify_cmd = app.add_subcommand("classify", "Print the top classes for images (Caffe's classification example)");
  classify_cmd->add_option("--model", classify.model, "Deploy net starting with an Input layer (YAML or prototxt)")->required();
  classify_cmd->add_option("--weights", classify_weights, "Weights (.caffemodel or .caffemodel.h5), comma-separated")->allow_extra_args(false);
  classify_cmd->add_option("--mean-value", classify_mean, "Mean subtracted per channel: one value or one per channel")->allow_extra_args(false);
  classify_cmd->add_option("--mean-file", classify.mean_file, "Mean image (.binaryproto); its per-channel means are used");
  classify_cmd->add_option("--scale", classify.scale, "Multiplier applied after the mean (e.g. 0.00390625)")
      ->check(finite_number);
  classify_cmd->add_option("--labels", classify.labels, "Text file with one class name per line");
  auto* classify_top_k =
      classify_cmd->add_option("--top-k", classify.top_k, "Classes printed per image (default 5)")->check(at_least_one);
  classify_cmd->add_option("--batch-size", classify.batch_size, "Images per forward pass (default 32)")
      ->check(at_least_one);
  classify_cmd->add_option("--gpu", classify.gpu, "GPU device id")->check(device_id);
  classify_cmd
      ->add_option("--threads", threads,
                   "CPU threads (default: OMP_NUM_THREADS when set, else every core this process may use)")
      ->check(at_least_one);
  classify_cmd->add_option("images", classify.images, "Image files (JPEG, PNG, ...)")->required();
  StateFlags classify_state;
  classify_state.add_to(classify_cmd, "TEST", any_level);

  crema::app::ConvertImagesetOptions imageset;
  auto* imageset_cmd = app.add_subcommand("convert-imageset", "Write listed images into an LMDB of Caffe Datums (Caffe's convert_imageset)");
  imageset_cmd->add_option("root", imageset.root, "Folder the list's paths are relative to")->required();
  imageset_cmd->add_option("list", imageset.list, "List file: one 'path label' per line")->required();
  imageset_cmd->add_option("output", imageset.output, "New LMDB directory (must not exist)")->required();
  imageset_cmd->add_option("--resize", imageset.resize, "Resize every image to WIDTHxHEIGHT, e.g. 256x256");
  imageset_cmd->add_flag("--gray", imageset.gray, "Store grey images (1 channel) instead of BGR");
  auto* shuffle_flag = imageset_cmd->add_flag("--shuffle", imageset.shuffle, "Shuffle the list before writing");
  imageset_cmd->add_flag("--encoded", imageset.encoded, "Store the image files (JPEG/PNG) instead of raw pixels");
  imageset_cmd->add_option("--seed", imageset.seed, "Seed for --shuffle (default: from the clock, printed)")
      ->check(whole_number(0, std::numeric_limits<int64_t>::max()))
      ->needs(shuffle_flag);  // alone it would be ignored
  imageset_cmd
      ->add_option("--threads", imageset.threads,
                   "Threads reading and decoding images (default: one per core crema may run on)")
      ->check(whole_number(1, 256));
  // Caffe's spellings, so that create_imagenet.sh's command line runs as written.
  imageset_cmd
      ->add_option("--resize_width", imageset.resize_width, "Caffe's: resize to this width (with --resize_height)")
      ->check(whole_number(0, 1 << 20));
  imageset_cmd
      ->add_option("--resize_height", imageset.resize_height, "Caffe's: resize to this height (with --resize_width)")
      ->check(whole_number(0, 1 << 20));
  imageset_cmd->add_flag("--check_size", imageset.check_size, "Stop at an image whose size differs from the first's");
  imageset_cmd->add_option("--encode_type", imageset.encode_type, "Store images encoded in this format (png, jpg)");
  imageset_cmd->add_option("--backend", imageset.backend, "lmdb (Caffe's; the only kind crema writes)");

  crema::app::ConvertCifarOptions cifar;
  auto* cifar_cmd = app.add_subcommand(
      "convert-cifar", "Write CIFAR-10's binary batches into a training and a test LMDB (Caffe's convert_cifar_data)");
  cifar_cmd->add_option("input", cifar.input, "Folder of data_batch_1.bin … data_batch_5.bin and test_batch.bin")
      ->required();
  cifar_cmd->add_option("output", cifar.output, "Folder for cifar10_train_lmdb and cifar10_test_lmdb")->required();
  cifar_cmd->add_option("db_type", cifar.db_type, "lmdb (Caffe's third argument; the only kind crema writes)");

  crema::app::ComputeMeanOptions mean;
  auto* mean_cmd = app.add_subcommand("compute-mean", "Write the mean image of an LMDB as a .binaryproto (Caffe's compute_image_mean)");
  mean_cmd->add_option("db", mean.db, "LMDB of Datums, or an IDX images file")->required();
  auto* mean_output = mean_cmd->add_option("-o,--output", mean.output, "Output mean file (.binaryproto)");
  // Caffe's compute_image_mean takes it as its second argument.
  mean_cmd->add_option("output_file", mean.output, "The output mean file, as Caffe's second argument")
      ->excludes(mean_output);
  mean_cmd->add_option("--backend", mean.backend, "lmdb (Caffe's; an IDX file needs none)");
  mean_cmd
      ->add_option("--threads", mean.threads,
                   "Threads reading and decoding records (default: one per core crema may run on)")
      ->check(whole_number(1, 256));

  crema::app::DeviceOptions device;
  auto* device_cmd = app.add_subcommand("device", "Describe the CUDA devices (Caffe's device_query)");
  // As Caffe's device_query, `--gpu all` lists every device (as no --gpu does).
  const CLI::Validator device_or_all(
      [device_id](std::string& v) -> std::string {
        if (v == "all") {
          v = "-1";
          return {};
        }
        return device_id(v);
      },
      "", "device id or all");
  device_cmd->add_option("--gpu", device.gpu, "Only this device id (all: every device)")->transform(device_or_all);

  // `crema help [COMMAND]`, as git and many tools take it, is `crema [COMMAND] --help`.
  if (argc >= 2 && std::string(argv[1]) == "help") {
    std::vector<std::string> names;
    for (const CLI::App* sub : app.get_subcommands([](CLI::App*) { return true; })) {
      names.push_back(sub->get_name());
      if (argc >= 3 && sub->get_name() == argv[2]) {
        std::cout << sub->help();
        return 0;
      }
    }
    if (argc >= 3) {
      std::cerr << "crema help: unknown command '" << argv[2] << "'" << crema::did_you_mean(argv[2], names)
                << "; 'crema --help' lists the commands\n";
      return 2;
    }
    std::cout << app.help();
    return 0;
  }

  std::vector<std::string> arg_words = with_caffe_single_dash_flags(app, argc, argv);
  std::vector<char*> arg_pointers;
  for (std::string& w : arg_words) arg_pointers.push_back(w.data());
  argv = arg_pointers.data();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help and --version are "errors" with status 0, and print what was asked for.
    const std::string why = e.get_exit_code() != 0 ? explain_unexpected(app, argc, argv) : "";
    if (!why.empty()) {
      std::cerr << why << "\n";
      return 2;
    }
    if (e.get_exit_code() == 0) return app.exit(e);
    // CLI11's own words ("--top-k: Value 0 not in range …", "images is required"), said as
    // crema says its errors: the command first, then where to look.
    std::string where = "crema";
    for (int i = 1; i < argc && std::string_view(argv[i]) != "--"; ++i)
      if (!app.get_subcommands([&](CLI::App* c) { return c->get_name() == argv[i]; }).empty()) {
        where += " " + std::string(argv[i]);
        break;
      }
    std::cerr << where << ": " << e.what() << "; '" << where << " --help' lists the options\n";
    return 2;
  }
  if (train_cmd->parsed()) {
    const auto positional = static_cast<int>(train_cmd->get_option("solver")->count());
    const auto flags = static_cast<int>(train_cmd->get_option("--solver")->count());
    if (positional + flags != 1) {
      std::cerr << train_solver_count_error(positional, flags) << "\n";
      return 2;
    }
  }
  if (show_version) {
    std::cout << crema::app::version_text();
    return 0;
  }
  if (app.get_subcommands().empty()) {  // no command given
    std::cout << app.help();
    return 2;
  }
  try {
    std::vector<std::string> inputs =
        app.got_subcommand(train_cmd) ? split_commas(train_weights) : split_commas(test_weights);
    inputs.insert(inputs.end(), {train.solver, train.snapshot, test.model, extract.net.model});
    for (const auto& list : {extract_weights, extract_outputs})
      for (const auto& f : split_commas(list)) inputs.push_back(f);
    if (const std::string why = log_file_problem(log_file, inputs); !log_file.empty() && !why.empty()) {
      std::cerr << "crema: --log '" << log_file << "': " << why << "; give the log a file of its own\n";
      return 2;
    }
    setup_logging(log_file);
  } catch (const spdlog::spdlog_ex& e) {
    // spdlog says "Failed opening file X for writing: <reason>": the reason is what is new.
    std::string why = e.what();
    if (const size_t colon = why.rfind(": "); colon != std::string::npos) why = why.substr(colon + 2);
    std::cerr << "crema: cannot open the --log file '" << log_file << "': " << why << "\n";
    return 2;
  }
  // Without --threads, a count in OMP_NUM_THREADS is the user's, as for PyTorch and every OpenMP
  // program (a job script's way to share a node), unless crema's own restart put it there.
  const bool runs_nets = app.got_subcommand(train_cmd) || app.got_subcommand(test_cmd) ||
                         app.got_subcommand(extract_cmd) || app.got_subcommand(classify_cmd) ||
                         app.got_subcommand(time_cmd);
  std::string threads_flag = "--threads " + std::to_string(threads);
  bool threads_from_env = false;  // lowered to what fits under a memory limit, as the default is
  if (runs_nets && threads <= 0 && !std::getenv(crema::app::kRestartThreadsMark))
    if (const unsigned long n = crema::app::omp_threads(std::getenv("OMP_NUM_THREADS")); n > 0) {
      if (n > 256) {
        spdlog::warn("OMP_NUM_THREADS={} is more than the 256 threads crema runs; running the default", n);
      } else {
        threads = static_cast<int>(n);
        threads_from_env = true;
        threads_flag = "OMP_NUM_THREADS=" + std::to_string(n);
        spdlog::info("Running {} thread(s), as OMP_NUM_THREADS asks (--threads overrides it)", n);
      }
    }
  unsetenv(crema::app::kRestartThreadsMark);
  if (const int cores = crema::available_cores(); threads > cores)
    spdlog::warn(
        "{} is more than the {} CPU(s) crema may use here (its CPU affinity, and its cgroup's CPU quota if "
        "one is set): the threads take turns, and each step runs slower than with --threads {}",
        threads_flag, cores, cores);
  crema::set_num_threads(threads);
  try {
    // The commands that run nets: OpenBLAS's buffers are taken before anything is built (the
    // others leave OpenBLAS as it loaded).
    if (app.got_subcommand(train_cmd) || app.got_subcommand(test_cmd) || app.got_subcommand(extract_cmd) ||
        app.got_subcommand(classify_cmd) || (app.got_subcommand(time_cmd) && !time_data))
      crema::reserve_blas_buffers(threads <= 0 || threads_from_env);
    if (app.got_subcommand(train_cmd)) {
      train.threads = threads;
      train.weights = names_of("--weights", train_weights);
      train.reinit = names_of("--reinit", train_reinit);
      if (!train.time_limit.empty()) train.time_limit_s = *parse_duration_s(train.time_limit);
      train_state.read(train.stages, train.level);
      if (!sigint_effect.empty()) signal_effects.push_back("INT=" + sigint_effect);
      if (!sighup_effect.empty()) signal_effects.push_back("HUP=" + sighup_effect);
      if (const std::string why =
              crema::app::apply_signal_effects(names_of("--signal-effect", signal_effects), train.signal_effects);
          !why.empty())
        throw crema::ConfigError(crema::Mark{}, "--signal-effect", why);
      return crema::app::train(train);
    }
    if (app.got_subcommand(test_cmd)) {
      test.weights = names_of("--weights", test_weights);
      crema::app::refuse_missing_weights(test.weights);
      test_state.read(test.stages, test.level);
      return crema::app::test(test);
    }
    if (app.got_subcommand(extract_cmd)) {
      extract.net.weights = names_of("--weights", extract_weights);
      crema::app::refuse_missing_weights(extract.net.weights);
      extract_state.read(extract.net.stages, extract.net.level);
      extract.blobs = names_of("--blobs", extract_blobs);
      extract.outputs = names_of("-o", extract_outputs);
      return crema::app::extract_features(extract);
    }
    if (app.got_subcommand(convert_cmd)) {
      convert.weights = names_of("--weights", convert_weights);
      convert.rankdir_given = convert_rankdir->count() > 0;
      convert_state.read(convert.stages, convert.level);
      return crema::app::convert(convert);
    }
    if (app.got_subcommand(imageset_cmd)) return crema::app::convert_imageset(imageset);
    if (app.got_subcommand(cifar_cmd)) return crema::app::convert_cifar(cifar);
    if (app.got_subcommand(mean_cmd)) return crema::app::compute_mean(mean);
    if (app.got_subcommand(classify_cmd)) {
      classify.weights = names_of("--weights", classify_weights);
      classify_state.read(classify.stages, classify.level);
      classify.top_k_given = classify_top_k->count() > 0;
      crema::app::refuse_missing_weights(classify.weights);
      for (const auto& v : split_commas(classify_mean)) {
        size_t used = 0;
        try {
          classify.mean_value.push_back(std::stof(v, &used));
        } catch (const std::exception&) {
          used = 0;
        }
        if (used == 0 || used != v.size() || !std::isfinite(classify.mean_value.back()))  // "1abc" is not 1
          throw crema::ConfigError(crema::Mark{}, "--mean-value", "expected finite numbers, got '" + v + "'");
      }
      return crema::app::classify(classify);
    }
    if (app.got_subcommand(preview_cmd)) return crema::app::preview(preview);
    if (app.got_subcommand(device_cmd)) return crema::app::device(device);
    if (time_data) return crema::app::time_data({time.model, time.iterations, time.phase, time.overrides});
    return crema::app::time(time);
  } catch (const crema::ConfigError& e) {
    // A mistake in the options is said with the command, as the parser's own are.
    std::string what = e.what();
    if (static const std::string unnamed = crema::Mark{}.str() + ": "; what.rfind(unnamed, 0) == 0)
      what.replace(0, unnamed.size(), "crema " + app.get_subcommands().front()->get_name() + ": ");
    spdlog::error("{}", what);
    return 2;
  } catch (const crema::Error& e) {
    spdlog::error("{}", e.what());
    return 1;
  } catch (const std::filesystem::filesystem_error& e) {  // a path the system refused: name it plainly
    spdlog::error("{}: {}", e.path1().string(), e.code().message());
    return 1;
  } catch (const std::bad_alloc&) {  // outside a layer (which names itself, engine/net.cpp)
    spdlog::error(
        "out of host memory; reduce batch_size in the data layers (or the input shapes), or use a machine "
        "with more memory.{}",
        crema::address_space_limit_note());
    return 1;
  } catch (const std::exception& e) {
    spdlog::error("unexpected error: {}", e.what());
    return 1;
  }
}
