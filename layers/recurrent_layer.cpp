#include "layers/recurrent_layer.hpp"

#include <spdlog/fmt/fmt.h>

#include <cstring>
#include <map>
#include <sstream>

#include "engine/error.hpp"

namespace crema {

RecurrentParams RecurrentParams::parse(MapReader r) {
  RecurrentParams p;
  p.num_output = r.required("num_output").as_int();
  if (p.num_output <= 0) r.fail("num_output", "num_output (the hidden size) must be positive");
  p.weight_filler = FillerSpec::parse(r.sub("weight_filler"));
  p.bias_filler = FillerSpec::parse(r.sub("bias_filler"));
  // Caffe's debug_info prints its unrolled net's layers; crema has none, and the
  // net's own debug_info prints this layer's tops and parameters.
  r.get_bool("debug_info", false);
  p.expose_hidden = r.get_bool("expose_hidden", false);
  // PyTorch's LSTM/RNN arguments that have no key here, with crema's way to the same net.
  r.finish([](const std::string& key) -> std::string {
    static const std::map<std::string, std::string> ways = {
        {"batch_first",
         "crema's LSTM and RNN read time-major input, as Caffe's: x (T, N, ...) and cont (T, N); there is no "
         "batch_first: store the sequences time-major (README, Recurrent layers)"},
        {"num_layers",
         "one LSTM or RNN layer is one recurrent layer: stack as many, each reading the previous one's top"},
        {"bidirectional",
         "crema's recurrent layers run forward in time, as Caffe's: the backward direction is a second layer over the "
         "time-reversed sequence"},
        {"dropout", "PyTorch's dropout between stacked layers is a Dropout layer between them here"},
        {"input_size", "the input size comes from bottom 0's shape; leave it out"}};
    const auto it = ways.find(key);
    return it == ways.end() ? "" : "unknown key '" + key + "': " + it->second;
  });
  return p;
}

RecurrentLayer::RecurrentLayer(const LayerSpec& spec, int states)
    : Layer(spec), params_(RecurrentParams::parse(spec.params("recurrent_param"))), states_(states) {
  h_ = params_.num_output;
}

void RecurrentLayer::check_bottoms(const BlobVec& bottom) const {
  const Blob& x = *bottom[0];
  if (x.num_axes() < 2 || x.shape(0) < 1 || x.shape(1) < 1)
    spec_.fail(spec_.bottom_label(0) + " must be (timesteps T, streams N, ...) with T, N >= 1; got shape " + x.shape_string());
  const int t = x.shape(0), n = x.shape(1);
  const Blob& cont = *bottom[1];
  if (cont.num_axes() != 2 || cont.shape(0) != t || cont.shape(1) != n)
    spec_.fail(spec_.bottom_label(1) + " holds the sequence continuation flags and must be (T, N) = (" + std::to_string(t) + ", " +
               std::to_string(n) + ") like bottom 0's first axes; got shape " + cont.shape_string());
  if (has_static_ && (bottom[2]->num_axes() < 1 || bottom[2]->shape(0) != n))
    spec_.fail(spec_.bottom_label(2) + " is the static input and must be (N = " + std::to_string(n) + ", ...); got shape " +
               bottom[2]->shape_string());
  for (int k = 0; k < exposed(); ++k) {
    const size_t b = static_cast<size_t>(2 + has_static_ + k);
    if (bottom[b]->shape() != std::vector<int>{1, n, h_})
      spec_.fail(spec_.bottom_label(b) + " is an initial state (expose_hidden) and must be (1, N, num_output) = (1, " +
                 std::to_string(n) + ", " + std::to_string(h_) + "); got shape " + bottom[b]->shape_string());
  }
}

void RecurrentLayer::layer_setup(Context& ctx, const BlobVec& bottom, const BlobVec&) {
  has_static_ = static_cast<int>(bottom.size()) > 2 + exposed();
  check_bottoms(bottom);
  i_ = bottom[0]->count(2);
  s_ = has_static_ ? bottom[2]->count(1) : 0;
  const int g = gate_width();
  const std::string l = param_letter();
  std::vector<ParamBlobSpec> wanted = {{"W_x" + l + " (input weights)", {g, i_}, params_.weight_filler},
                                       {"b_" + l + " (bias)", {g}, params_.bias_filler}};
  if (has_static_) wanted.push_back({"W_x" + l + "_static (static input weights)", {g, s_}, params_.weight_filler});
  wanted.push_back({"W_h" + l + " (recurrent weights)", {g, h_}, params_.weight_filler});
  for (ParamBlobSpec& extra : extra_params()) wanted.push_back(std::move(extra));
  setup_param_blobs(spec_, blobs_, wanted, ctx.rng());
}

void RecurrentLayer::reshape(const BlobVec& bottom, const BlobVec& top) {
  check_bottoms(bottom);
  if (top[0] == bottom[0]) spec_.fail(std::string(type()) + " does not compute in place; give its top its own name");
  if (bottom[0]->count(2) != i_ || (has_static_ && bottom[2]->count(1) != s_))
    spec_.fail("was set up for " + std::to_string(i_) + " input values per timestep" +
               (has_static_ ? " and " + std::to_string(s_) + " static ones" : std::string()) + "; got bottoms of shape " +
               bottom[0]->shape_string() + (has_static_ ? " and " + bottom[2]->shape_string() : std::string()));
  t_ = bottom[0]->shape(0);
  n_ = bottom[0]->shape(1);
  const std::vector<int> state = {1, n_, h_};
  for (int k = 0; k < states_; ++k) {
    auto& carried = carried_[static_cast<size_t>(k)];
    if (carried.shape() != state) {  // new streams start from zero
      carried.reshape(state);
      carried.set_data(0.f);
    }
    initial_[static_cast<size_t>(k)].reshape(state);
  }
  conted_.reshape({t_, n_, h_});
  static_gates_.reshape({n_, gate_width()});
  top[0]->reshape({t_, n_, h_});
  for (int k = 0; k < exposed(); ++k) top[static_cast<size_t>(1 + k)]->reshape(state);
}

SequenceMath& RecurrentLayer::math(Context& ctx) {
  // The CPU's math holds only its cached products, valid in any context; the GPU's
  // holds ctx's stream and handles, so it is made for each pass.
  if (!math_ || ctx.on_gpu() || math_->gpu()) math_ = SequenceMath::for_context(ctx);
  return *math_;
}

void RecurrentLayer::check_cont(const SequenceMath& m, const Blob& cont) {
  cont_check_.reshape({2});
  const auto [position, value] = m.first_outside_unit(cont.count(), m.data(cont), m.mutable_data(cont_check_));
  if (position < 0) return;
  const int t = static_cast<int>(position / n_), n = static_cast<int>(position % n_);
  throw BadLabel(fmt::format("{} layer '{}': {} holds {} at (t {}, n {}); the sequence continuation flags are 0 where "
                             "a sequence starts and 1 where it continues (values between scale the carried state)",
                             type(), name(), spec_.bottom_label(1), value, t, n),
                 value, 1, "value");
}

void RecurrentLayer::forward_cpu(Context& ctx, const BlobVec& bottom, const BlobVec& top) {
  SequenceMath& m = math(ctx);
  check_cont(m, *bottom[1]);
  run_forward(m, bottom, top);
}

void RecurrentLayer::backward_cpu(Context& ctx, const BlobVec& top, const std::vector<bool>& propagate_down,
                                  const BlobVec& bottom) {
  run_backward(math(ctx), top, propagate_down, bottom);
}

#ifdef CREMA_WITH_CUDA
void RecurrentLayer::forward_gpu(Context& ctx, const BlobVec& bottom, const BlobVec& top) {
  SequenceMath& m = math(ctx);
  check_cont(m, *bottom[1]);
  run_forward(m, bottom, top);
}

void RecurrentLayer::backward_gpu(Context& ctx, const BlobVec& top, const std::vector<bool>& propagate_down,
                                  const BlobVec& bottom) {
  run_backward(math(ctx), top, propagate_down, bottom);
}
#endif

void RecurrentLayer::input_forward(const SequenceMath& m, const BlobVec& bottom, float* a) {
  const int g = gate_width(), rows = t_ * n_;
  m.gemm(false, true, rows, g, i_, 1.f, m.data(*bottom[0]), m.data(*blobs_[0]), 0.f, a);  // x (T N, I)
  m.add_to_rows(rows, g, m.data(*blobs_[1]), a);
  if (!has_static_) return;
  float* sg = m.mutable_data(static_gates_);  // (N, G)
  m.gemm(false, true, n_, g, s_, 1.f, m.data(*bottom[2]), m.data(*blobs_[2]), 0.f, sg);
  for (int t = 0; t < t_; ++t) m.add(n_ * g, sg, a + static_cast<long>(t) * n_ * g);
}

void RecurrentLayer::input_backward(const SequenceMath& m, const float* da, const std::vector<bool>& propagate_down,
                                    const BlobVec& bottom) {
  const int g = gate_width(), rows = t_ * n_;
  const float* x = m.data(*bottom[0]);  // (T N, I)
  if (param_propagate_down(0)) m.gemm(true, false, g, i_, rows, 1.f, da, x, 1.f, m.mutable_diff(*blobs_[0]));
  if (param_propagate_down(1)) m.add_column_sums(rows, g, da, m.mutable_diff(*blobs_[1]));
  if (propagate_down[0]) m.gemm(false, false, rows, i_, g, 1.f, da, m.data(*blobs_[0]), 0.f, m.mutable_diff(*bottom[0]));
  if (propagate_down[1]) m.set(bottom[1]->count(), 0.f, m.mutable_diff(*bottom[1]));  // cont: no gradient
  if (!has_static_ || (!param_propagate_down(2) && !propagate_down[2])) return;
  float* dsg = m.mutable_diff(static_gates_);  // (N, G): the static term's gradient, summed over time
  m.set(n_ * g, 0.f, dsg);
  for (int t = 0; t < t_; ++t) m.add(n_ * g, da + static_cast<long>(t) * n_ * g, dsg);
  if (param_propagate_down(2))
    m.gemm(true, false, g, s_, n_, 1.f, dsg, m.data(*bottom[2]), 1.f, m.mutable_diff(*blobs_[2]));
  if (propagate_down[2]) m.gemm(false, false, n_, s_, g, 1.f, dsg, m.data(*blobs_[2]), 0.f, m.mutable_diff(*bottom[2]));
}

void RecurrentLayer::recur_forward(const SequenceMath& m, int t, const float* cont, const float* h_prev, float* a_t) {
  float* conted = m.mutable_data(conted_) + t * step();  // (N, H)
  m.scale_rows(n_, h_, cont + static_cast<long>(t) * n_, h_prev, conted);
  m.gemm(false, true, n_, gate_width(), h_, 1.f, conted, m.data(*blobs_[static_cast<size_t>(w_h_index())]), 1.f, a_t);
}

void RecurrentLayer::recur_backward(const SequenceMath& m, int t, const float* cont, const float* da_t,
                                    float* dh_prev) {
  m.gemm(false, false, n_, h_, gate_width(), 1.f, da_t, m.data(*blobs_[static_cast<size_t>(w_h_index())]), 0.f,
         dh_prev);
  m.scale_rows(n_, h_, cont + static_cast<long>(t) * n_, dh_prev, dh_prev);
}

void RecurrentLayer::recur_param_backward(const SequenceMath& m, const float* da) {
  if (!param_propagate_down(w_h_index())) return;
  m.gemm(true, false, gate_width(), h_, t_ * n_, 1.f, da, m.data(conted_), 1.f,
         m.mutable_diff(*blobs_[static_cast<size_t>(w_h_index())]));
}

const float* RecurrentLayer::begin_state(const SequenceMath& m, const BlobVec& bottom, int k) {
  const Blob& from = exposed() ? *bottom[static_cast<size_t>(2 + has_static_ + k)] : carried_[static_cast<size_t>(k)];
  Blob& kept = initial_[static_cast<size_t>(k)];
  m.copy(static_cast<int>(step()), m.data(from), m.mutable_data(kept));
  return m.data(kept);
}

void RecurrentLayer::end_state(const SequenceMath& m, const BlobVec& top, int k, const float* state) {
  Blob& to = exposed() ? *top[static_cast<size_t>(1 + k)] : carried_[static_cast<size_t>(k)];
  m.copy(static_cast<int>(step()), state, m.mutable_data(to));
}

void RecurrentLayer::final_state_diff(const SequenceMath& m, const BlobVec& top, int k, float* dstate) {
  if (exposed())
    m.copy(static_cast<int>(step()), m.diff(*top[static_cast<size_t>(1 + k)]), dstate);
  else
    m.set(static_cast<int>(step()), 0.f, dstate);  // the next batch's gradient does not come back (truncated BPTT)
}

void RecurrentLayer::initial_state_diff(const SequenceMath& m, const std::vector<bool>& propagate_down,
                                        const BlobVec& bottom, int k, const float* dstate) {
  const size_t b = static_cast<size_t>(2 + has_static_ + k);
  if (exposed() && propagate_down[b]) m.copy(static_cast<int>(step()), dstate, m.mutable_diff(*bottom[b]));
}

// The carried states: a text header, then the floats' bytes.
std::string RecurrentLayer::save_state() const {
  if (exposed()) return {};
  std::string out = "recurrent-state " + std::to_string(states_) + ' ' + std::to_string(n_) + ' ' +
                    std::to_string(h_) + '\n';
  const size_t bytes = static_cast<size_t>(step()) * sizeof(float);
  for (int k = 0; k < states_; ++k)
    out.append(reinterpret_cast<const char*>(carried_[static_cast<size_t>(k)].cpu_data()), bytes);
  return out;
}

void RecurrentLayer::restore_state(const std::string& state) {
  const size_t end = state.find('\n');
  std::istringstream header(state.substr(0, end));
  std::string tag;
  int states = -1, n = -1, h = -1;
  header >> tag >> states >> n >> h;
  const bool parsed = end != std::string::npos && header && tag == "recurrent-state" && states >= 0 && n >= 0 && h >= 0;
  const size_t each = parsed ? static_cast<size_t>(n) * static_cast<size_t>(h) * sizeof(float) : 0;  // one state
  if (!parsed || state.size() - end - 1 != static_cast<size_t>(states) * each)
    throw Error("layer " + name() + ": the snapshot's recurrent state is damaged");
  // Other streams or another hidden size: the streams start again from zero.
  if (exposed() || states != states_ || n != n_ || h != h_) return;
  for (int k = 0; k < states_; ++k)
    std::memcpy(carried_[static_cast<size_t>(k)].mutable_cpu_data(), state.data() + end + 1 + k * each, each);
}

}  // namespace crema
