#include "engine/net.hpp"

#include <spdlog/fmt/ranges.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <new>
#include <set>
#include <string_view>

#include "engine/error.hpp"
#include "engine/math.hpp"

#ifdef CREMA_WITH_CUDA
#include "engine/cuda/math_kernels.hpp"
#endif

namespace crema {

namespace {

// Mark of the i-th entry of a repeated key (bottom/top), for precise errors.
Mark entry_mark(const LayerSpec& spec, const std::string& key, size_t i) {
  if (!spec.config) return spec.mark;
  const Node* n = spec.config->find(key);
  if (!n) return spec.mark;
  if (n->is_seq() && i < n->items().size()) return n->items()[i].mark();
  return n->mark();
}

std::string split_layer_name(const std::string& layer, const std::string& blob, size_t top) {
  return blob + "_" + layer + "_" + std::to_string(top) + "_split";
}
std::string split_blob_name(const std::string& layer, const std::string& blob, size_t top, int k) {
  return split_layer_name(layer, blob, top) + "_" + std::to_string(k);
}

// What std::bad_alloc does not say: where the memory ran out, how large the layer's tops
// are, and what to do.
// A YAML list written without its brackets or commas: `bottom: fc, label` is one name, as is
// a `top: [data label]`; "" when the missing bottom `b` looks like neither.
std::string list_slip(const std::string& b, const std::vector<std::string>& blobs) {
  if (b.find(',') != std::string::npos)
    return "; '" + b + "' is one name: write a list of bottoms as [" + b + "] (brackets, or one '- ' item each)";
  for (const std::string& blob : blobs)
    if (blob.find(' ') != std::string::npos && (" " + blob + " ").find(" " + b + " ") != std::string::npos) {
      std::string listed;
      for (char c : blob) listed += c == ' ' ? std::string(", ") : std::string(1, c);
      return "; a top is named '" + blob + "', one name: a list of tops needs commas, [" + listed + "]";
    }
  return "";
}

OutOfHostMemory layer_out_of_host_memory(const Layer& layer, const char* during, const BlobVec& tops) {
  std::string shapes;
  for (const Blob* t : tops) shapes += (shapes.empty() ? "" : ", ") + t->shape_string();
  const std::string where = std::string(layer.type()) + " layer '" + layer.name() + "': out of host memory during " +
                            during + (shapes.empty() ? "" : " (tops " + shapes + ")");
  // What setup allocates, the parameters above all, does not shrink with the batch.
  if (std::string_view(during) == "setup")
    return OutOfHostMemory(where, address_space_limit_note(),
                           "what a layer allocates at setup (its parameters) grows with its num_output, kernel and "
                           "input size, not with batch_size: make the layer smaller, or use a machine with more "
                           "memory.");
  return OutOfHostMemory(where, address_space_limit_note());
}

}  // namespace

NetSpec NetSpec::parse(const Node& node) {
  NetSpec spec;
  MapReader r(&node);
  spec.mark = node.mark();
  spec.path = node.path();
  spec.name = r.get_string("name", "");
  spec.force_backward = r.get_bool("force_backward", false);
  MapReader st = r.sub("state");
  spec.state = parse_state_setting(st);
  spec.debug_info = r.get_bool("debug_info", false);
  const Node* layers = r.find("layer");
  if (!layers) {
    // A solver given where the net belongs (`net: lenet_solver.yaml`, `--model solver.yaml`).
    const Node* named = node.is_map() ? node.find("net") : nullptr;
    if (named || (node.is_map() && node.find("base_lr") && node.find("max_iter")))
      r.fail("layer", std::string("a net needs a 'layer' list; this looks like a solver (it has ") +
                          (named ? "net" : "base_lr and max_iter") +
                          "): give the net file here, or the solver to crema train");
    r.fail("layer", "a net needs a 'layer' list");
  }
  if (!layers->is_seq()) layers->fail("expected a list of layers");
  for (const auto& l : layers->items()) {
    if (!l.is_map()) l.fail("expected a layer map with at least 'name' and 'type'");
    spec.layers.push_back(parse_layer_spec(l));
  }
  r.finish();
  return spec;
}

void NetSpec::check_layer_params(const NetState* built, std::vector<const LayerSpec*>* caffe_only) const {
  for (const LayerSpec& layer : layers) {
    // A layer the command leaves out may be of a type crema lacks (Caffe's Python data layer
    // in a trainval net scored by `crema test`): only its keys are checked, where the type is known.
    if (built && !layer_included(layer, *built) && !LayerRegistry::instance().has(layer.type)) continue;
    if (caffe_only && !LayerRegistry::caffe_only(layer.type).empty()) {
      caffe_only->push_back(&layer);
      continue;
    }
    LayerRegistry::instance().create(layer);
  }
}

std::string NetSpec::stages_no_rule_names(const std::vector<std::string>& stages) const {
  std::set<std::string> named;
  for (const LayerSpec& layer : layers)
    for (const auto* rules : {&layer.include, &layer.exclude})
      for (const NetStateRule& rule : *rules) {
        named.insert(rule.stage.begin(), rule.stage.end());
        named.insert(rule.not_stage.begin(), rule.not_stage.end());
      }
  std::string said;
  for (const std::string& stage : stages) {
    if (named.count(stage)) continue;
    said += (said.empty() ? "" : "; ") +
            ("stage '" + stage + "' is named by no include/exclude rule of net '" + name + "', so it changes nothing");
    const std::string near = did_you_mean(stage, {named.begin(), named.end()});
    said += named.empty()  ? " (its layers have no stage rules)"
            : near.empty() ? " (its rules name " + fmt::format("{}", fmt::join(named, ", ")) + ")"
                           : near;
  }
  return said;
}

bool layer_included(const LayerSpec& spec, const NetState& state) {
  if (!spec.include.empty()) {
    for (const auto& rule : spec.include)
      if (rule_matches(rule, state)) return true;
    return false;
  }
  for (const auto& rule : spec.exclude)
    if (rule_matches(rule, state)) return false;
  return true;
}

std::vector<LayerSpec> insert_splits(const std::vector<LayerSpec>& layers) {
  using TopId = std::pair<size_t, size_t>;
  std::map<std::string, TopId> last_top;
  std::map<TopId, int> consumers;
  std::map<TopId, float> loss_weight;
  std::map<std::pair<size_t, size_t>, TopId> source_of_bottom;
  for (size_t i = 0; i < layers.size(); ++i) {
    const auto& l = layers[i];
    for (size_t j = 0; j < l.bottom.size(); ++j) {
      auto it = last_top.find(l.bottom[j]);
      if (it == last_top.end()) continue;  // reported with its position when the net is built
      source_of_bottom[{i, j}] = it->second;
      ++consumers[it->second];
    }
    for (size_t j = 0; j < l.top.size(); ++j) last_top[l.top[j]] = {i, j};
    for (size_t j = 0; j < l.top.size() && j < l.loss_weight.size(); ++j)
      if (l.loss_weight[j] != 0.f) {
        loss_weight[{i, j}] = l.loss_weight[j];
        ++consumers[{i, j}];
      }
  }
  std::vector<LayerSpec> out;
  std::map<TopId, int> next_split;
  for (size_t i = 0; i < layers.size(); ++i) {
    LayerSpec l = layers[i];
    for (size_t j = 0; j < l.bottom.size(); ++j) {
      auto it = source_of_bottom.find({i, j});
      if (it == source_of_bottom.end() || consumers[it->second] <= 1) continue;
      const auto& src = layers[it->second.first];
      l.bottom[j] = split_blob_name(src.name, l.bottom[j], it->second.second, next_split[it->second]++);
    }
    std::vector<LayerSpec> splits;
    for (size_t j = 0; j < l.top.size(); ++j) {
      const int count = consumers[{i, j}];
      if (count <= 1) continue;
      LayerSpec s;
      s.name = split_layer_name(l.name, l.top[j], j);
      s.type = "Split";
      s.inserted_split = true;
      s.bottom = {l.top[j]};
      for (int k = 0; k < count; ++k) s.top.push_back(split_blob_name(l.name, l.top[j], j, k));
      s.phase = l.phase;
      s.mark = l.mark;
      s.path = l.path;
      auto lw = loss_weight.find({i, j});
      if (lw != loss_weight.end()) {
        // The loss moves to the split's first output; the other outputs feed consumers.
        s.loss_weight.assign(static_cast<size_t>(count), 0.f);
        s.loss_weight[0] = lw->second;
        l.loss_weight[j] = 0.f;
        next_split[{i, j}] = 1;
      }
      splits.push_back(std::move(s));
    }
    out.push_back(std::move(l));
    for (auto& s : splits) out.push_back(std::move(s));
  }
  return out;
}

Net::Net(const NetSpec& spec, const NetState& state, Context& ctx, bool quiet)
    : name_(spec.name), state_(state), debug_info_(spec.debug_info) {
  // Filter by phase/level/stage and validate names among the layers that remain.
  std::vector<LayerSpec> kept;
  std::map<std::string, const LayerSpec*> seen;
  for (const auto& l : spec.layers) {
    if (!layer_included(l, state)) {
      // A bottom that only a left-out layer makes is the usual way a phase or stage goes wrong.
      for (const auto& t : l.top)
        left_out_tops_.emplace(t, std::pair{"layer '" + l.name + "' (" + l.mark.str() + ")", l.top});
      continue;
    }
    if (l.name.empty()) {
      // A misspelt name key (nmae:) leaves the layer without one: say the key written.
      if (l.config && l.config->is_map())
        for (const auto& [key, value] : l.config->entries())
          if (key != "name" && closest_match(key, {"name"}) == "name" &&
              std::find(common_layer_keys().begin(), common_layer_keys().end(), key) == common_layer_keys().end())
            throw ConfigError(value.key_mark(), l.path + "." + key,
                              "unknown key '" + key + "'" + did_you_mean(key, {"name"}));
      l.fail("every layer needs a non-empty 'name'");
    }
    auto [it, inserted] = seen.emplace(l.name, &l);
    if (!inserted) {
      // `phase: TRAIN` reads like include: {phase: TRAIN} but only sets the phase a layer runs in.
      const bool phase_for_include = (l.phase_given || it->second->phase_given) && l.include.empty() &&
                                     l.exclude.empty() && it->second->include.empty() && it->second->exclude.empty();
      l.fail("duplicate layer name '" + l.name + "' (also at " + it->second->mark.str() +
             "); layer names must be unique within a " + phase_name(state.phase) + " net" +
             (phase_for_include ? " (a layer's phase: sets the phase it runs in, not the net it is in: to keep a "
                                  "layer to one net, write include: {phase: TRAIN} or include: {phase: TEST})"
                                : ""));
    }
    kept.push_back(l);
    if (!l.phase_given) kept.back().phase = state.phase;
  }
  if (!quiet) spdlog::info("Initializing net '{}' for phase {} ({} layers)", name_, phase_name(state.phase), kept.size());
  specs_ = insert_splits(kept);
  auto net_layers = std::make_shared<std::vector<NetLayerRef>>();
  for (const auto& l : specs_) net_layers->push_back({l.name, l.type, l.config});
  static std::atomic<uint64_t> nets_built{0};
  const uint64_t serial = ++nets_built;
  for (auto& l : specs_) {
    l.net_layers = net_layers;
    l.net_serial = serial;
  }

  std::map<std::string, int> available;  // blob name -> id, produced and not yet consumed
  for (const auto& l : specs_) append_layer(l, ctx, available, quiet);
  left_out_tops_.clear();
  warn_unequal_sources();

  // Outputs: blobs nobody consumed, in name order as Caffe reports them. A loss on a
  // blob that other layers also read sits on the first top of the Split inserted for
  // it: the output is named after the user's blob ("ip"), not the split's top
  // ("ip_ip_0_split_0", which Caffe prints).
  std::map<std::string, int> named;
  for (const auto& [n, id] : available) {
    std::string shown = n;
    for (size_t i = 0; i < layers_.size(); ++i) {
      const LayerSpec& s = specs_[i];
      if (s.inserted_split && std::find(top_ids_[i].begin(), top_ids_[i].end(), id) != top_ids_[i].end())
        shown = s.bottom[0];
    }
    named.emplace(shown, id);
  }
  for (const auto& [n, id] : named) {
    output_names_.push_back(n);
    output_ids_.push_back(id);
    float w = 0.f;
    for (size_t i = 0; i < layers_.size(); ++i)
      for (size_t j = 0; j < top_ids_[i].size(); ++j)
        if (top_ids_[i][j] == id) w = layers_[i]->loss_weight(static_cast<int>(j));
    output_loss_weights_.push_back(w);
  }
  check_other_sizes();
  check_label_ranges();
  set_param_gradients();
  compute_backward_needs(spec.force_backward);

  if (!quiet) {
    long long memory = 0;
    for (const auto& b : blobs_) memory += b->count();
    spdlog::info("Memory required for data: {} bytes", memory * static_cast<long long>(sizeof(float)));
    spdlog::info("Network '{}' ({}) initialized: {} layers, {} parameters ({:.2f} MB)", name_,
                 phase_name(state.phase), layers_.size(), num_parameters(),
                 static_cast<double>(num_parameters()) * sizeof(float) / (1024.0 * 1024.0));
  }
}

namespace {

// Reshapes `layer` to its bottoms: the error of a layer refusing them, or empty.
std::string reshape_refusal(Layer& layer, const BlobVec& bottom, const BlobVec& top) {
  try {
    layer.reshape(bottom, top);
  } catch (const Error& e) {
    return e.what();
  }
  return {};
}

}  // namespace

std::pair<int, int> Net::maker_of(int id) const {
  for (int i = static_cast<int>(layers_.size()) - 1; i >= 0; --i) {
    const auto& tops = top_ids_[static_cast<size_t>(i)];
    const auto t = std::find(tops.begin(), tops.end(), id);
    if (t == tops.end()) continue;
    if (!specs_[static_cast<size_t>(i)].inserted_split) return {i, static_cast<int>(t - tops.begin())};
    id = bottom_ids_[static_cast<size_t>(i)][0];  // the split's input, made by an earlier layer
  }
  return {-1, -1};
}

std::string Net::label_origin(int i, int bottom, float value, const std::string& noun) const {
  const size_t k = static_cast<size_t>(i), b = static_cast<size_t>(bottom);
  if (bottom < 0 || bottom_ids_[k].size() <= b) return "";
  const auto [data, top] = maker_of(bottom_ids_[k][b]);
  if (data < 0) return "";
  // The first label of that value is the one the classifier met: they read the labels in order.
  const Blob& labels = *bottom_vecs_[k][b];
  if (labels.num_axes() < 1 || labels.count() == 0) return "";
  const float* v = labels.cpu_data();  // (N, per item)
  const int per_item = labels.count() / labels.shape(0);
  for (int j = 0; j < labels.count(); ++j)
    if (v[j] == value || (std::isnan(value) && std::isnan(v[j]))) {
      const std::string where = layers_[static_cast<size_t>(data)]->describe_taken(j / per_item);
      return where.empty() ? "" : "; it is the " + noun + " of " + where;
    }
  return "";
}

void Net::check_label_ranges() const {
  const auto origin = [&](int id) { return maker_of(id); };
  for (size_t i = 0; i < layers_.size(); ++i) {
    const std::optional<Layer::LabelUse> use = layers_[i]->label_use();
    if (!use || use->classes <= 0 || bottom_ids_[i].size() < 2) continue;
    const auto [data, top] = origin(bottom_ids_[i][1]);
    if (data < 0 || top != 1) continue;
    const std::optional<Layer::LabelExtent> labels = layers_[static_cast<size_t>(data)]->label_extent();
    if (!labels) continue;
    const bool low = labels->min < 0 && labels->min != use->ignore;
    const bool high = labels->max >= use->classes && labels->max != use->ignore;
    if (!low && !high) continue;
    // The scores by the name their maker gave them (a loss beside other readers reads a split's top).
    const auto [scorer, scorer_top] = origin(bottom_ids_[i][0]);
    const std::string scores = blob_names_[static_cast<size_t>(
        scorer >= 0 ? top_ids_[static_cast<size_t>(scorer)][static_cast<size_t>(scorer_top)] : bottom_ids_[i][0])];
    const int label = high ? labels->max : labels->min;
    specs_[static_cast<size_t>(data)].fail(
        "label " + std::to_string(label) + " of " + (high ? labels->max_sample : labels->min_sample) +
        " is out of range for layer '" + specs_[i].name + "' (" + layers_[i]->type() + "), whose scores '" + scores +
        "' have " + std::to_string(use->classes) + " classes (labels 0 to " + std::to_string(use->classes - 1) + ")" +
        (high ? ": fix the label, or give the layer making '" + scores + "' " + std::to_string(labels->max + 1) +
                    " outputs (num_output) if the data has that many classes"
              : ": labels count from 0; fix the label" +
                    (use->ignore ? std::string() : std::string(", or mark it ignored (loss_param.ignore_label)"))));
  }
}

void Net::check_other_sizes() {
  own_sizes_ = false;
  std::vector<size_t> own;
  for (size_t i = 0; i < layers_.size(); ++i)
    if (layers_[i]->gives_own_sizes()) own.push_back(i);
  if (own.empty()) return;
  // Their images' tops are made smaller for a moment (smaller, as a larger size would enlarge
  // every buffer for good) and the other layers reshaped. Each side loses its largest
  // power-of-two factor, at most 32 and at most half the side, and so stays a multiple of it:
  // a net that halves sizes and doubles them back (pooling, then upsampling added to the skip)
  // takes the probe where it takes images of the first one's factors.
  const auto cut_of = [](long long side) {
    long long cut = std::min(side & -side, 32LL);
    while (cut > 1 && cut > side / 2) cut /= 2;
    return cut;
  };
  std::vector<std::vector<int>> before;  // every blob's shape, put back afterwards
  for (const auto& blob : blobs_) before.push_back(blob->shape());
  std::vector<Blob*> probed;
  for (size_t i : own)
    for (Blob* top : top_vecs_[i])
      if (top->num_axes() == 4) probed.push_back(top);
  std::vector<std::vector<int>> probe;
  for (Blob* top : probed) probe.push_back(top->shape());
  for (size_t axis = 2; axis < 4; ++axis) {
    // Tops of related sizes (an image and its mask at half the resolution) lose one fraction,
    // that of the smallest side dividing theirs, so that they keep fitting each other. The
    // side stays a multiple of what its own cut would keep (the smaller side's cut keeps a
    // multiple of itself); a side of 1 is left as it is.
    std::vector<long long> sides;
    for (const auto& shape : probe) sides.push_back(shape[axis]);
    for (size_t k = 0; k < probe.size(); ++k) {
      const long long side = sides[k];
      if (side <= 1) continue;
      long long divisor = side;
      for (long long other : sides)
        if (other > 1 && other < divisor && side % other == 0) divisor = other;
      long long cut = side / divisor * cut_of(divisor);
      if ((side - cut) % cut_of(side) != 0) cut = cut_of(side);
      probe[k][axis] = static_cast<int>(side - cut);
    }
  }
  for (size_t k = 0; k < probed.size(); ++k) probed[k]->reshape(probe[k]);
  std::string refusing;
  for (size_t i = 0; i < layers_.size() && refusing.empty(); ++i)
    if (!layers_[i]->gives_own_sizes() && !reshape_refusal(*layers_[i], bottom_vecs_[i], top_vecs_[i]).empty())
      refusing = layers_[i]->name();
  // Outputs that follow the image cannot be averaged over batches (Solver, `crema test`).
  size_following_outputs_.clear();
  if (refusing.empty())
    for (size_t j = 0; j < output_ids_.size(); ++j) {
      const size_t id = static_cast<size_t>(output_ids_[j]);
      // The batch axis aside: a Filter keeps no item of the probe's empty selector.
      const auto rows = [](const std::vector<int>& shape) {
        return shape.empty() ? shape : std::vector<int>(shape.begin() + 1, shape.end());
      };
      if (rows(blobs_[id]->shape()) != rows(before[id]))
        size_following_outputs_ += (size_following_outputs_.empty() ? "'" : ", '") + output_names_[j] + "'";
    }
  for (size_t id = 0; id < blobs_.size(); ++id) blobs_[id]->reshape(before[id]);
  // As set up: they took these shapes then. A layer whose reshape reads values (Filter's
  // selector) may still size its tops otherwise, so every blob gets its shape back too.
  // Every forward reshapes again, so a refusal here (Filter's tops of no items) changes nothing.
  for (size_t i = 0; i < layers_.size(); ++i)
    if (!layers_[i]->gives_own_sizes()) reshape_refusal(*layers_[i], bottom_vecs_[i], top_vecs_[i]);
  for (size_t id = 0; id < blobs_.size(); ++id) blobs_[id]->reshape(before[id]);
  if (!refusing.empty()) {
    for (size_t i : own) layers_[i]->keep_one_size(refusing);
    return;
  }
  own_sizes_ = true;
  own_sizes_taken_.clear();
  for (size_t i : own)
    for (Blob* top : top_vecs_[i]) own_sizes_taken_.push_back(top->shape());
}

float Net::forward_own_sizes(Context& ctx) {
  // A batch is tried on the rest of the net before any of it runs, so the data layers run
  // first: they read no blob, so the layers between them find the same tops after them.
  // With a refused batch every one of them takes its next, so that samples pairing up by
  // position (an image and its mask or its targets) stay paired.
  int64_t images = 0;  // in the largest source giving its own sizes: one epoch of it
  for (const auto& layer : layers_)
    if (layer->gives_own_sizes()) images = std::max(images, layer->source_size());
  float loss = 0;
  for (int64_t refused = 0;; ++refused) {
    loss = 0;
    for (int i = 0; i < num_layers(); ++i)
      if (layers_[static_cast<size_t>(i)]->is_data()) loss += forward_layer(ctx, i);
    const std::string why = refusal_of_own_sizes();
    if (why.empty()) break;
    if (refused >= 2 * images)  // shuffled or not, every image of an epoch among them
      throw Error("the " + std::string(phase_name(state_.phase)) +
                  " net takes none of its images at their own sizes; the last one refused: " + why);
    for (const auto& layer : layers_)
      if (layer->gives_own_sizes()) layer->refuse_own_size(why);
  }
  for (int i = 0; i < num_layers(); ++i)
    if (!layers_[static_cast<size_t>(i)]->is_data()) loss += forward_layer(ctx, i);
  return loss;
}

std::string Net::refusal_of_own_sizes() {
  std::vector<std::vector<int>> shapes;
  for (size_t i = 0; i < layers_.size(); ++i)
    if (layers_[i]->gives_own_sizes())
      for (Blob* top : top_vecs_[i]) shapes.push_back(top->shape());
  if (shapes == own_sizes_taken_) return {};
  // Reshaping is what each forward does first; the forward after this one finds the shapes
  // set. The trial ends at a layer that cannot be reshaped ahead (its forward may then
  // still refuse the image, which stops the run as any error there).
  for (size_t i = 0; i < layers_.size(); ++i) {
    if (layers_[i]->is_data()) continue;
    if (!layers_[i]->reshape_is_trial_safe()) break;
    std::string why = reshape_refusal(*layers_[i], bottom_vecs_[i], top_vecs_[i]);
    if (!why.empty()) return why;
  }
  own_sizes_taken_ = std::move(shapes);
  return {};
}

void Net::refuse_size_following_outputs(const std::string& reporter) const {
  if (size_following_outputs_.empty()) return;
  throw Error(std::string("the ") + phase_name(state_.phase) + " net's output(s) " + size_following_outputs_ +
              " take the size of each image (a data layer with batch_size 1 gives each image at its own size), so " +
              reporter +
              " cannot average them over batches; consume them (a Silence layer takes them) or give the "
              "images one size");
}

void Net::warn_unequal_sources() const {
  // Data layers of one net pair up their batches by position (layers/prefetched_data_layer.hpp),
  // each reading on from where it stopped: they stay in step when their sources take the same
  // number of batches per epoch (a time-major sequence file of T rows per batch beside a label
  // file of one row per batch), and drift apart after the first epoch otherwise.
  std::string sizes;
  int64_t first = -1, first_batch = 0;
  bool differ = false, drift = false, shuffled = false;
  for (const auto& layer : layers_) {
    const Layer::DataStats stats = layer->data_stats();
    const int64_t n = stats.samples;
    if (n < 0) continue;
    shuffled |= stats.shuffled;
    if (first >= 0) {
      differ |= n != first;
      drift |= n * first_batch != first * stats.batch_size;  // batches per epoch, compared without rounding
    }
    if (first < 0) first = n, first_batch = stats.batch_size;
    sizes += (sizes.empty() ? "'" : ", '") + std::string(layer->name()) + "' " + std::to_string(n);
  }
  // Shuffled, each source's order is drawn for its own size: no pairs from the first batch on.
  if (differ && shuffled)
    spdlog::warn(
        "the {} net's data layers read sources of different sizes ({} samples): their samples pair up by position "
        "only in the same order, and shuffled sources of different sizes are in different orders from the first "
        "batch on, so no sample meets its pair; give them sources of one size{}",
        phase_name(state_.phase), sizes,
        drift ? " (shuffle: false keeps them in step only until the smallest source's first epoch ends)"
              : ", or shuffle: false to keep them in step");
  else if (drift)
    spdlog::warn(
        "the {} net's data layers read sources{} ({} samples) that take different numbers of batches per epoch: "
        "their batches pair up by position only until the smallest source's first epoch ends, after which they "
        "drift apart; give them sources of one size and one batch_size (or of sizes in the ratio of their "
        "batch_size)",
        phase_name(state_.phase), differ ? " of different sizes" : " of one size but with different batch_size", sizes);
}

std::string Net::left_out_maker(const std::string& blob) const {
  const auto it = left_out_tops_.find(blob);
  if (it == left_out_tops_.end()) return "";
  std::string stages;
  for (const auto& st : state_.stage) stages += (stages.empty() ? "" : ", ") + st;
  std::string message =
      ": " + it->second.first + " makes it, but its include/exclude rules leave it out of this net (phase " +
      phase_name(state_.phase) + ", level " + std::to_string(state_.level) + ", stages [" + stages + "])";
  // This net's twin of that layer (the TRAIN data layer of a TEST one) makes its other tops
  // but not this one: most often the top was left out there.
  for (const LayerSpec& l : specs_) {
    const auto makes = [&](const std::string& t) { return std::find(l.top.begin(), l.top.end(), t) != l.top.end(); };
    if (l.inserted_split || makes(blob)) continue;
    for (const std::string& other : it->second.second)
      if (other != blob && makes(other))
        return message + "; this net's layer '" + l.name + "' (" + l.mark.str() + ") makes '" + other +
               "' as that one does, but not '" + blob + "': if this net should have it, add it to that layer's tops";
  }
  return message;
}

void Net::refuse_loss_without_gradient(const Layer& layer, const LayerSpec& spec, size_t li) const {
  for (size_t j = 0; j < top_vecs_[li].size(); ++j) {
    if (layer.loss_weight(static_cast<int>(j)) == 0.f) continue;
    // A top that others read too hands its weight to the split inserted for them.
    const int maker = spec.inserted_split ? maker_of(bottom_ids_[li][0]).first : static_cast<int>(li);
    const Layer& made_by = maker == static_cast<int>(li) ? layer : *layers_[static_cast<size_t>(maker)];
    if (made_by.has_gradient()) continue;
    const std::string type = made_by.type();
    made_by.spec().fail("loss_weight on " +
                        std::string(std::string_view("AEIOU").find(type[0]) != std::string_view::npos ? "an " : "a ") +
                        type +
                        " layer: its output is piecewise constant and has no gradient, so it cannot be trained as a "
                        "loss (Caffe aborts in its backward); leave loss_weight out in the TRAIN net, and the top is "
                        "still logged as an output");
  }
}

void Net::refuse_late_in_place(const LayerSpec& spec, size_t li, const std::string& top, size_t j) const {
  // The user wrote the layer in place, but a layer before it reads the same blob: the split
  // inserted for those readers gave this layer one of its outputs as its bottom.
  for (const int bottom : bottom_ids_[li]) {
    int split = -1;
    for (size_t k = 0; k < li && split < 0; ++k) {
      const auto& tops = top_ids_[k];
      if (specs_[k].inserted_split && specs_[k].bottom[0] == top &&
          std::find(tops.begin(), tops.end(), bottom) != tops.end())
        split = static_cast<int>(k);
    }
    if (split < 0) continue;
    std::vector<std::string> readers;
    for (size_t k = 0; k < li; ++k)
      for (const int id : bottom_ids_[k]) {
        const auto& tops = top_ids_[static_cast<size_t>(split)];
        if (std::find(tops.begin(), tops.end(), id) != tops.end() &&
            std::find(readers.begin(), readers.end(), specs_[k].name) == readers.end())
          readers.push_back(specs_[k].name);
      }
    // The split was inserted for the blob's loss_weight alone: nothing read it yet.
    if (readers.empty())
      throw ConfigError(entry_mark(spec, "top", j), spec.path + " (" + spec.name + ").top",
                        "this layer works in place on '" + top + "', which has a loss_weight where it is made: the " +
                            "loss is of the blob before this layer, so give this layer a top of its own");
    throw ConfigError(entry_mark(spec, "top", j), spec.path + " (" + spec.name + ").top",
                      "this layer works in place on '" + top + "', but " +
                          fmt::format("'{}'", fmt::join(readers, "', '")) + (readers.size() == 1 ? " reads" : " read") +
                          " '" + top + "' before it, and an in-place layer must come before every other reader of " +
                          "its blob (Caffe refuses it too); move it above " +
                          (readers.size() == 1 ? "that layer" : "those layers") + ", or give it a top of its own");
  }
}

void Net::append_layer(const LayerSpec& spec, Context& ctx, std::map<std::string, int>& available, bool quiet) {
  const size_t li = layers_.size();
  auto layer = LayerRegistry::instance().create(spec);
  if (!layer->supports(ctx.device()))
    spec.fail(std::string(layer->type()) + " layer has no implementation for " + ctx.device().str() +
              "; run this net on the CPU (solver_mode: CPU)");
  bottom_vecs_.emplace_back();
  top_vecs_.emplace_back();
  bottom_ids_.emplace_back();
  top_ids_.emplace_back();
  for (size_t j = 0; j < spec.bottom.size(); ++j) {
    const std::string& b = spec.bottom[j];
    auto it = available.find(b);
    if (it == available.end()) {
      std::vector<std::string> candidates;
      for (const auto& [n, id] : available) candidates.push_back(n);
      const bool produced = blob_index_.count(b) > 0;
      // Made further down: layers run in the order written, as in Caffe.
      std::string later;
      for (size_t k = li + 1; k < specs_.size() && later.empty() && !produced; ++k)
        if (std::find(specs_[k].top.begin(), specs_[k].top.end(), b) != specs_[k].top.end())
          later = ": layer '" + specs_[k].name + "' (" + specs_[k].mark.str() +
                  ") makes it further down, and layers run in the order written; move this layer below it (where "
                  "that layer reads what this one makes, the two form a cycle, which a net cannot have)";
      throw ConfigError(entry_mark(spec, "bottom", j), spec.path + " (" + spec.name + ").bottom",
                        produced         ? "bottom '" + b + "' was already consumed by another layer"
                        : !later.empty() ? "bottom '" + b + "' is not produced by any earlier layer in the " +
                                               phase_name(state_.phase) + " net" + later
                                         : "bottom '" + b + "' is not produced by any earlier layer in the " +
                                               phase_name(state_.phase) + " net" + left_out_maker(b) +
                                               did_you_mean(b, candidates) + list_slip(b, candidates));
    }
    bottom_ids_[li].push_back(it->second);
    bottom_vecs_[li].push_back(blobs_[static_cast<size_t>(it->second)].get());
    available.erase(it);
  }
  auto add_top = [&](const std::string& top_name, size_t j) {
    // In place: the top reuses the bottom of the same name.
    for (size_t k = 0; k < spec.bottom.size(); ++k)
      if (spec.bottom[k] == top_name) {
        const int id = bottom_ids_[li][k];
        top_ids_[li].push_back(id);
        top_vecs_[li].push_back(blobs_[static_cast<size_t>(id)].get());
        available[top_name] = id;
        return;
      }
    if (!top_name.empty() && std::find(spec.top.begin(), spec.top.begin() + static_cast<long>(j), top_name) !=
                                 spec.top.begin() + static_cast<long>(j))
      throw ConfigError(entry_mark(spec, "top", j), spec.path + " (" + spec.name + ").top",
                        "top '" + top_name + "' is named twice in this layer's tops; give each top its own name");
    if (!top_name.empty() && blob_index_.count(top_name)) {
      refuse_late_in_place(spec, li, top_name, j);
      // Two data layers making the same blob: most often a TRAIN and a TEST source without include rules.
      std::string hint;
      for (size_t k = 0; k < li && hint.empty(); ++k) {
        const auto& tops = top_ids_[k];
        if (std::find(tops.begin(), tops.end(), blob_index_.at(top_name)) != tops.end() && layers_[k]->is_data() &&
            layer->is_data())
          hint = "; if layer '" + specs_[k].name + "' is for one phase and this one for the other, give each an " +
                 "include rule: include: {phase: TRAIN} on one, include: {phase: TEST} on the other";
      }
      throw ConfigError(entry_mark(spec, "top", j), spec.path + " (" + spec.name + ").top",
                        "top '" + top_name +
                            "' is already produced by another layer; only in-place layers (bottom == top) may reuse "
                            "a blob name" +
                            hint);
    }
    const int id = static_cast<int>(blobs_.size());
    const std::string name = top_name.empty() ? spec.name + "_top_" + std::to_string(j) : top_name;
    blobs_.push_back(std::make_shared<Blob>());
    blob_names_.push_back(name);
    blob_index_[name] = id;
    blob_need_backward_.push_back(false);
    top_ids_[li].push_back(id);
    top_vecs_[li].push_back(blobs_.back().get());
    available[name] = id;
  };
  for (size_t j = 0; j < spec.top.size(); ++j) add_top(spec.top[j], j);
  // Anonymous tops for layers that need more than were named (e.g. a loss's output).
  const int wanted = std::max(layer->exact_num_top(), layer->min_top());
  if (layer->auto_top_blobs())
    for (size_t j = spec.top.size(); static_cast<int>(j) < wanted; ++j) add_top("", j);

  if (!quiet) spdlog::info("Setting up {} ({})", spec.name, layer->type());
  try {
    layer->setup(ctx, bottom_vecs_[li], top_vecs_[li]);
  } catch (const ConfigError&) {
    throw;
  } catch (const Error& e) {
    spec.fail(e.what());  // e.g. a top too large: name the layer that asked for it
  } catch (const std::bad_alloc&) {
    // Not the config's fault (exit 1, not 2), and the tops have no shapes yet.
    throw layer_out_of_host_memory(*layer, "setup", {});
  }
  if (state_.phase == Phase::TRAIN) refuse_loss_without_gradient(*layer, spec, li);
  if (!quiet)
    for (size_t j = 0; j < top_vecs_[li].size(); ++j) {
      spdlog::info("Top shape: {}", top_vecs_[li][j]->shape_string());
      const float w = layer->loss_weight(static_cast<int>(j));
      if (w != 0.f) spdlog::info("    with loss weight {}", w);
    }
  layers_.push_back(std::move(layer));
  resolve_params(static_cast<int>(li));
}

void Net::resolve_params(int li) {
  Layer& layer = *layers_[static_cast<size_t>(li)];
  // The layer's own copy of the spec, as in Caffe's AppendParam: a layer may fix its
  // param entries in its constructor (BatchNorm gives its statistics lr_mult 0).
  const LayerSpec& spec = layer.spec();
  auto& blobs = layer.blobs();
  if (spec.param.size() > blobs.size())  // said at the first entry too many
    throw ConfigError(entry_mark(spec, "param", blobs.size()),
                      spec.path + " (" + spec.name + ").param[" + std::to_string(blobs.size()) + "]",
                      "has " + std::to_string(spec.param.size()) + " 'param' entries but the " + layer.type() +
                          " layer has " + std::to_string(blobs.size()) +
                          " parameter blob(s): one entry per blob, in order; remove the entries from this one on "
                          "(in a V1 net each blobs_lr or weight_decay line makes an entry)");
  param_shared_.emplace_back(blobs.size(), false);
  param_ids_.emplace_back(blobs.size(), -1);
  for (size_t j = 0; j < blobs.size(); ++j) {
    const ParamSpec ps = j < spec.param.size() ? spec.param[j] : ParamSpec{};
    if (!ps.name.empty()) {
      auto it = param_owner_by_name_.find(ps.name);
      if (it != param_owner_by_name_.end()) {
        const auto [owner_layer, owner_j] = it->second;
        const std::string owner_name = layer_name(owner_layer);
        const BlobPtr& owner = layers_[static_cast<size_t>(owner_layer)]->blobs()[static_cast<size_t>(owner_j)];
        if (ps.permissive ? owner->count() != blobs[j]->count() : owner->shape() != blobs[j]->shape())
          spec.fail("shared parameter '" + ps.name + "' has shape " + blobs[j]->shape_string() + " here but " +
                    owner->shape_string() + " in layer '" + owner_name + "'" +
                    (ps.permissive ? "" : " (share_mode: PERMISSIVE shares blobs of equal element count)"));
        if (owner->shape() == blobs[j]->shape()) {
          blobs[j] = owner;
        } else {  // PERMISSIVE: this layer's shape over the owner's memory
          blobs[j]->share_data(*owner);
          blobs[j]->share_diff(*owner);
        }
        param_shared_.back()[j] = true;
        const int id = param_ids_[static_cast<size_t>(owner_layer)][static_cast<size_t>(owner_j)];
        param_ids_.back()[j] = id;
        // Caffe's AppendParam: a multiplier written here applies if the owner left its
        // own at the default; two written ones must agree.
        const auto merge = [&](const char* key, bool given, float value, std::vector<float>& values,
                               std::vector<bool>& values_given) {
          if (!given) return;
          const size_t i = static_cast<size_t>(id);
          if (values_given[i] && values[i] != value)
            spec.fail("shared parameter '" + ps.name + "' has " + key + " " + fmt::format("{}", value) + " here but " +
                      fmt::format("{}", values[i]) + " in an earlier layer sharing it (e.g. '" + owner_name +
                      "'); give every layer the same " + key + " or write it once");
          values[i] = value;
          values_given[i] = true;
        };
        merge("lr_mult", ps.lr_mult_given, ps.lr_mult, params_lr_, params_lr_given_);
        merge("decay_mult", ps.decay_mult_given, ps.decay_mult, params_decay_, params_decay_given_);
        continue;
      }
      param_owner_by_name_[ps.name] = {li, static_cast<int>(j)};
    }
    param_ids_.back()[j] = static_cast<int>(learnable_params_.size());
    learnable_params_.push_back(blobs[j].get());
    params_lr_.push_back(ps.lr_mult);
    params_decay_.push_back(ps.decay_mult);
    params_lr_given_.push_back(ps.lr_mult_given);
    params_decay_given_.push_back(ps.decay_mult_given);
  }
}

void Net::set_param_gradients() {
  // After every layer is in: a later sharer may have changed a parameter's lr_mult.
  // A frozen parameter (lr_mult 0) computes no gradient in any layer that uses it.
  for (size_t li = 0; li < layers_.size(); ++li)
    for (size_t j = 0; j < param_ids_[li].size(); ++j)
      layers_[li]->set_param_propagate_down(static_cast<int>(j),
                                            params_lr_[static_cast<size_t>(param_ids_[li][j])] != 0.f);
}

bool Net::param_is_shared(int layer_index, int j) const {
  return param_shared_[static_cast<size_t>(layer_index)][static_cast<size_t>(j)];
}

void Net::compute_backward_needs(bool force_backward) {
  const size_t n = layers_.size();
  layer_need_backward_.assign(n, false);
  bottom_need_backward_.assign(n, {});
  for (size_t i = 0; i < n; ++i) {
    const LayerSpec& spec = specs_[i];
    bool need = false;
    auto& bnb = bottom_need_backward_[i];
    bnb.assign(bottom_ids_[i].size(), false);
    if (!spec.propagate_down.empty() && spec.propagate_down.size() != bottom_ids_[i].size())
      spec.fail("propagate_down has " + std::to_string(spec.propagate_down.size()) + " value(s) but the layer has " +
                std::to_string(bottom_ids_[i].size()) + " bottom(s)");
    for (size_t j = 0; j < bottom_ids_[i].size(); ++j) {
      bool b = blob_need_backward_[static_cast<size_t>(bottom_ids_[i][j])];
      if (!spec.propagate_down.empty()) b = b && spec.propagate_down[j];
      bnb[j] = b;
      need = need || b;
    }
    for (size_t j = 0; j < layers_[i]->blobs().size(); ++j)
      need = need || layers_[i]->param_propagate_down(static_cast<int>(j));
    layer_need_backward_[i] = need;
    if (need)
      for (int id : top_ids_[i]) blob_need_backward_[static_cast<size_t>(id)] = true;
  }
  // Skip layers whose outputs never reach a loss.
  std::set<int> under_loss, skip_backprop;
  for (size_t ii = n; ii-- > 0;) {
    bool contributes = false, skip_propagate = true;
    for (size_t j = 0; j < top_ids_[ii].size(); ++j) {
      const int id = top_ids_[ii][j];
      if (layers_[ii]->loss_weight(static_cast<int>(j)) != 0.f || under_loss.count(id)) {
        contributes = true;
        if (!skip_backprop.count(id)) skip_propagate = false;
      }
    }
    if (layer_need_backward_[ii] && skip_propagate) {
      layer_need_backward_[ii] = false;
      std::fill(bottom_need_backward_[ii].begin(), bottom_need_backward_[ii].end(), false);
    }
    if (!contributes) layer_need_backward_[ii] = false;
    for (size_t j = 0; j < bottom_ids_[ii].size(); ++j) {
      const int id = bottom_ids_[ii][j];
      if (contributes)
        under_loss.insert(id);
      else
        bottom_need_backward_[ii][j] = false;
      if (!bottom_need_backward_[ii][j]) skip_backprop.insert(id);
    }
  }
  if (force_backward) {
    for (size_t i = 0; i < n; ++i) {
      layer_need_backward_[i] = true;
      for (size_t j = 0; j < bottom_ids_[i].size(); ++j) {
        const bool allowed = layers_[i]->allow_force_backward(static_cast<int>(j));
        bottom_need_backward_[i][j] = bottom_need_backward_[i][j] || allowed;
        if (bottom_need_backward_[i][j]) blob_need_backward_[static_cast<size_t>(bottom_ids_[i][j])] = true;
      }
    }
  }
  // Caffe builds a training net that asks a layer for a gradient it refuses (a loss layer's
  // labels) and aborts at that layer's first backward pass ("cannot backpropagate to label
  // inputs"); a layer whose backward never runs (a test net, a monitor with loss_weight 0)
  // never gets there, so those still load, as in Caffe.
  if (state_.phase == Phase::TRAIN)
    for (size_t i = 0; i < n; ++i) {
      const LayerSpec& spec = specs_[i];
      if (!layer_need_backward_[i]) continue;
      for (size_t j = 0; j < spec.propagate_down.size(); ++j)
        if (spec.propagate_down[j] && layers_[i]->backward_refuses(static_cast<int>(j)))
          spec.fail("propagate_down is true for " + spec.bottom_label(j) + ", but a " + layers_[i]->type() +
                    " layer computes no gradient for that input (labels, indices, selectors); write false for it");
    }
}

namespace {
// Caffe's debug_info figure: the mean absolute value (asum / count), read on the host.
double mean_abs(const float* v, int n) {
  double sum = 0;
  for (int i = 0; i < n; ++i) sum += std::abs(static_cast<double>(v[i]));
  return n > 0 ? sum / n : 0.0;
}
}  // namespace

float Net::forward_layer(Context& ctx, int i) {
  const size_t k = static_cast<size_t>(i);
  float loss = 0;
  try {
    loss = layers_[k]->forward(ctx, bottom_vecs_[k], top_vecs_[k]);
  } catch (const std::bad_alloc&) {
    throw layer_out_of_host_memory(*layers_[k], "forward pass", top_vecs_[k]);
  } catch (const BadLabel& e) {  // the data layers know where each sample of the batch came from
    throw BadLabel(e.what() + label_origin(i, e.bottom(), e.value(), e.noun()), e.value(), e.bottom(), e.noun());
  }
  if (debug_info_) {
    for (size_t j = 0; j < top_vecs_[k].size(); ++j) {
      const Blob& top = *top_vecs_[k][j];
      spdlog::info("    [Forward] Layer {}, top blob {} data: {:.6g}", layer_name(i),
                   blob_names_[static_cast<size_t>(top_ids_[k][j])], mean_abs(top.cpu_data(), top.count()));
    }
    for (size_t j = 0; j < layers_[k]->blobs().size(); ++j) {
      const Blob& p = *layers_[k]->blobs()[j];
      spdlog::info("    [Forward] Layer {}, param blob {} data: {:.6g}", layer_name(i), j, mean_abs(p.cpu_data(), p.count()));
    }
  }
  return loss;
}

void Net::backward_layer(Context& ctx, int i) {
  const size_t k = static_cast<size_t>(i);
  if (!layer_need_backward_[k]) return;
  if (forward_only_)
    throw Error("net '" + name_ + "' shares activation memory between blobs (forward only); backward would read "
                "overwritten values");
  // A loss top's gradient is its loss weight (d total / d loss), written where the
  // backward pass reads it: on a GPU a host write would cost a copy and two waits for
  // the device every iteration.
  for (size_t j = 0; j < top_vecs_[k].size(); ++j) {
    const float w = layers_[k]->loss_weight(static_cast<int>(j));
    if (w == 0.f) continue;
    Blob& top = *top_vecs_[k][j];
    if (ctx.on_gpu()) {
#ifdef CREMA_WITH_CUDA
      cuda::gpu_set(*ctx.cuda(), top.count(), w, top.mutable_gpu_diff());
#endif
    } else {
      top.set_diff(w);
    }
  }
  try {
    layers_[k]->backward(ctx, top_vecs_[k], bottom_need_backward_[k], bottom_vecs_[k]);
  } catch (const std::bad_alloc&) {
    throw layer_out_of_host_memory(*layers_[k], "backward pass", top_vecs_[k]);
  }
  if (debug_info_) {
    for (size_t j = 0; j < bottom_vecs_[k].size(); ++j) {
      if (!bottom_need_backward_[k][j]) continue;
      const Blob& bottom = *bottom_vecs_[k][j];
      spdlog::info("    [Backward] Layer {}, bottom blob {} diff: {:.6g}", layer_name(i),
                   blob_names_[static_cast<size_t>(bottom_ids_[k][j])], mean_abs(bottom.cpu_diff(), bottom.count()));
    }
    for (size_t j = 0; j < layers_[k]->blobs().size(); ++j) {
      if (!layers_[k]->param_propagate_down(static_cast<int>(j))) continue;
      const Blob& p = *layers_[k]->blobs()[j];
      spdlog::info("    [Backward] Layer {}, param blob {} diff: {:.6g}", layer_name(i), j, mean_abs(p.cpu_diff(), p.count()));
    }
  }
}

std::string Net::param_owner(size_t id) const {
  for (size_t li = 0; li < layers_.size(); ++li)
    for (size_t j = 0; j < param_ids_[li].size(); ++j)
      if (!param_shared_[li][j] && param_ids_[li][j] == static_cast<int>(id))
        return "layer '" + layer_name(static_cast<int>(li)) + "' parameter " + std::to_string(j);
  return "parameter " + std::to_string(id);
}

void Net::log_update_debug_info() const {
  // Each learnable parameter once, under the layer that owns it.
  for (size_t li = 0; li < layers_.size(); ++li)
    for (size_t j = 0; j < param_ids_[li].size(); ++j) {
      if (param_shared_[li][j]) continue;
      const Blob& p = *layers_[li]->blobs()[j];
      spdlog::info("    [Update] Layer {}, param {} data: {:.6g}; diff: {:.6g}", layer_name(static_cast<int>(li)), j,
                   mean_abs(p.cpu_data(), p.count()), mean_abs(p.cpu_diff(), p.count()));
    }
}

float Net::forward(Context& ctx) {
  if (own_sizes_) return forward_own_sizes(ctx);
  float loss = 0;
  for (int i = 0; i < num_layers(); ++i) loss += forward_layer(ctx, i);
  return loss;
}

void Net::backward(Context& ctx) {
  for (int i = num_layers(); i-- > 0;) backward_layer(ctx, i);
}

void Net::clear_param_diffs() {
  for (Blob* p : learnable_params_) p->set_diff(0.f);
}

Net::MemoryPlan Net::reuse_activation_memory() {
  MemoryPlan plan;
  // Storage, not blob names: Split, Reshape and Flatten tops and in-place layers share
  // their bottom's buffer, so a buffer lives from the first layer writing any blob in
  // it to the last layer reading or writing one.
  struct Storage {
    std::shared_ptr<SyncedMemory> memory;
    std::vector<Blob*> blobs;
    int first = -1, last = -1;
    bool pinned = false;  // keeps its own buffer
  };
  std::vector<Storage> storages;
  std::map<const SyncedMemory*, size_t> index;
  auto storage_of = [&](Blob* b) -> Storage& {
    auto [it, added] = index.emplace(b->data_memory().get(), storages.size());
    if (added) storages.push_back(Storage{b->data_memory(), {}, -1, -1, false});
    Storage& s = storages[it->second];
    if (std::find(s.blobs.begin(), s.blobs.end(), b) == s.blobs.end()) s.blobs.push_back(b);
    return s;
  };
  for (int i = 0; i < num_layers(); ++i) {
    const size_t k = static_cast<size_t>(i);
    for (Blob* b : top_vecs_[k]) {
      Storage& s = storage_of(b);
      if (s.first < 0) s.first = i;
      s.last = i;
      if (layers_[k]->is_data() || bottom_vecs_[k].empty()) s.pinned = true;  // readers may keep batches there
    }
    for (Blob* b : bottom_vecs_[k]) {
      Storage& s = storage_of(b);
      if (s.first < 0) s.pinned = true;  // read before any layer wrote it
      s.last = i;
    }
  }
  // The bytes of every distinct buffer behind a blob.
  auto held_bytes = [this] {
    long long bytes = 0;
    std::set<const SyncedMemory*> distinct;
    for (const auto& blob : blobs_)
      if (distinct.insert(blob->data_memory().get()).second) bytes += static_cast<long long>(blob->data_memory()->size());
    return bytes;
  };
  plan.bytes_before = held_bytes();
  for (Blob* out : outputs()) storage_of(out).pinned = true;
  for (const auto& layer : layers_)
    for (const auto& p : layer->blobs())
      if (auto it = index.find(p->data_memory().get()); it != index.end()) storages[it->second].pinned = true;
  forward_only_ = true;

  // Greedy by first use: each storage takes the smallest free buffer (one whose last
  // occupant was last used before this storage is first written) that is large
  // enough, else the largest free one (grown), else a new one.
  struct Buffer {
    size_t bytes = 0;
    int free_after = -1;  // the last layer using its current occupant
    std::vector<Storage*> occupants;
  };
  std::vector<Buffer> buffers;
  std::vector<Storage*> order;
  for (Storage& s : storages)
    if (!s.pinned && s.first >= 0) order.push_back(&s);
  std::stable_sort(order.begin(), order.end(), [](const Storage* a, const Storage* b) { return a->first < b->first; });
  for (Storage* s : order) {
    const size_t bytes = s->memory->size();
    Buffer* best = nullptr;
    for (Buffer& b : buffers) {
      if (b.free_after >= s->first) continue;
      const bool fits = b.bytes >= bytes, best_fits = best && best->bytes >= bytes;
      if (!best || (fits && (!best_fits || b.bytes < best->bytes)) || (!fits && !best_fits && b.bytes > best->bytes))
        best = &b;
    }
    if (!best) best = &buffers.emplace_back();
    best->bytes = std::max(best->bytes, bytes);
    best->free_after = s->last;
    best->occupants.push_back(s);
  }
  for (Buffer& b : buffers) {
    auto memory = std::make_shared<SyncedMemory>(b.bytes);
    for (Storage* s : b.occupants)
      for (Blob* blob : s->blobs) blob->data_memory() = memory;
  }
  plan.bytes_after = held_bytes();
  plan.buffers = static_cast<int>(buffers.size());
  return plan;
}

void Net::share_weights_from(const Net& other) {
  for (auto& layer : layers_) {
    Layer* src = other.layer_by_name(layer->name());
    if (!src || src->blobs().empty()) continue;
    if (src->blobs().size() != layer->blobs().size())
      layer->spec().fail("has " + std::to_string(layer->blobs().size()) + " parameter blobs in the " +
                         phase_name(phase()) + " net but " + std::to_string(src->blobs().size()) + " in the " +
                         phase_name(other.phase()) + " net");
    for (size_t j = 0; j < layer->blobs().size(); ++j) {
      if (layer->blobs()[j]->shape() != src->blobs()[j]->shape())
        layer->spec().fail("parameter " + std::to_string(j) + " has shape " + layer->blobs()[j]->shape_string() +
                           " in the " + phase_name(phase()) + " net but " + src->blobs()[j]->shape_string() +
                           " in the " + phase_name(other.phase()) + " net");
      layer->blobs()[j]->share_data(*src->blobs()[j]);
    }
  }
}

Layer::DataStats Net::data_stats() const {
  Layer::DataStats sum;
  for (const auto& l : layers_) {
    const Layer::DataStats d = l->data_stats();
    sum.wait_seconds += d.wait_seconds;
    sum.batches += d.batches;
    sum.bad_samples += d.bad_samples;
  }
  return sum;
}

void Net::finish() {
  for (const auto& l : layers_) l->finish();
}

void Net::abandon() {
  for (const auto& l : layers_) l->abandon();
}

Net::~Net() {
  while (!layers_.empty()) layers_.pop_back();
}

std::string Net::await_data(int batches, const std::function<bool()>& give_up) {
  for (const auto& l : layers_)
    if (!l->await_batches(batches, give_up)) return l->name();
  return {};
}

Layer* Net::layer_by_name(const std::string& name) const {
  const int i = layer_index(name);
  return i < 0 ? nullptr : layers_[static_cast<size_t>(i)].get();
}

int Net::layer_index(const std::string& name) const {
  for (size_t i = 0; i < layers_.size(); ++i)
    if (layers_[i]->name() == name) return static_cast<int>(i);
  return -1;
}

Blob* Net::blob(const std::string& name) const {
  auto it = blob_index_.find(name);
  return it == blob_index_.end() ? nullptr : blobs_[static_cast<size_t>(it->second)].get();
}

std::vector<Blob*> Net::outputs() const {
  std::vector<Blob*> out;
  for (int id : output_ids_) out.push_back(blobs_[static_cast<size_t>(id)].get());
  return out;
}

long long Net::num_parameters() const {
  long long n = 0;
  for (const Blob* p : learnable_params_) n += p->count();
  return n;
}

}  // namespace crema
