#include "layers/scale_layer.hpp"

#include "layers/param_blobs.hpp"
#ifdef CREMA_WITH_CUDA
#include "layers/cuda/blas_kernels.hpp"
#endif

namespace crema {

ScaleParams ScaleParams::parse(MapReader r) {
  ScaleParams p;
  p.operand = AxisOperandParams::parse(r, "filler", 1.f);
  p.bias_term = r.get_bool("bias_term", false);
  p.bias_filler = FillerSpec::parse(r.sub("bias_filler"));
  r.finish();
  return p;
}

ScaleLayer::ScaleLayer(const LayerSpec& spec) : Layer(spec), params_(ScaleParams::parse(spec.params("scale_param"))) {}

void ScaleLayer::layer_setup(Context& ctx, const BlobVec& bottom, const BlobVec&) {
  std::vector<ParamBlobSpec> wanted;
  std::vector<int> shape;
  if (bottom.size() > 1) {
    shape = bottom[1]->shape();
  } else {
    shape = AxisBroadcast::param_shape(spec_, *bottom[0], params_.operand.axis, params_.operand.num_axes);
    wanted.push_back({"scale", shape, params_.operand.filler});
  }
  if (params_.bias_term) wanted.push_back({"bias", shape, params_.bias_filler});
  setup_param_blobs(spec_, blobs_, wanted, ctx.rng());
}

void ScaleLayer::reshape(const BlobVec& bottom, const BlobVec& top) {
  broadcast_ = AxisBroadcast::of(spec_, *bottom[0], scale(bottom), params_.operand.axis,
                                 bottom.size() > 1 ? "the scale (bottom 1)" : "the scale blob");
  if (params_.bias_term && blobs_[static_cast<size_t>(bias_index())]->count() != broadcast_.dim)
    spec_.fail("the bias blob has shape " + blobs_[static_cast<size_t>(bias_index())]->shape_string() +
               " but the scale has " + std::to_string(broadcast_.dim) + " values");
  if (top[0] != bottom[0]) top[0]->reshape_like(*bottom[0]);
}

bool ScaleLayer::forward_blocked(const BlobVec& bottom, const BlobVec& top) {
  SyncedMemory& x_memory = *bottom[0]->data_memory();
  SyncedMemory& y_memory = *top[0]->data_memory();
  LayoutCopy* x = bottom.size() == 1 ? channel_blocked(x_memory, broadcast_, *bottom[0]) : nullptr;
  if (!x) return false;
  AxisBroadcast blocked = broadcast_;
  blocked.block = x->channel_block();
  LayoutCopy* kept = input_.layout_target(*bottom[0], *top[0], *x);
  const bool in_place = &x_memory == &y_memory;
  LayoutCopy& y = in_place ? *x_memory.mutable_layout() : top_out_.prepare(*x, y_memory);
  const float* b = params_.bias_term ? blobs_[static_cast<size_t>(bias_index())]->cpu_data() : nullptr;  // (dim)
  blocked.apply(x->floats(), blobs_[0]->cpu_data(), b, y.floats(), kept ? kept->floats() : nullptr);
  if (!in_place) top_out_.commit(y_memory);
  return true;
}

bool ScaleLayer::backward_blocked(const BlobVec& top, const std::vector<bool>& propagate_down,
                                  const BlobVec& bottom) {
  SyncedMemory& dy_memory = *top[0]->diff_memory();
  SyncedMemory& dx_memory = *bottom[0]->diff_memory();
  LayoutCopy* dy = bottom.size() == 1 ? channel_blocked(dy_memory, broadcast_, *top[0]) : nullptr;
  if (!dy) return false;
  LayoutCopy* x = input_.layout(*bottom[0], *top[0]);  // as at forward
  if (param_propagate_down(0) && !(x && x->same_layout(*dy))) return false;
  AxisBroadcast blocked = broadcast_;
  blocked.block = dy->channel_block();
  operand_gradients(blocked, dy->floats(), x ? x->floats() : nullptr, propagate_down, bottom);
  if (!propagate_down[0]) return true;
  const bool in_place = &dy_memory == &dx_memory;
  LayoutCopy& dx = in_place ? *dx_memory.mutable_layout() : bottom_diff_out_.prepare(*dy, dx_memory);
  blocked.apply(dy->floats(), blobs_[0]->cpu_data(), nullptr, dx.floats());
  if (!in_place) bottom_diff_out_.commit(dx_memory);
  return true;
}

void ScaleLayer::forward_cpu(Context&, const BlobVec& bottom, const BlobVec& top) {
  if (forward_blocked(bottom, top)) return;
  // In place, x is kept for backward in the same pass that scales it.
  float* kept = input_.copy_target(*bottom[0], *top[0]);  // (outer, dim, inner) or null
  const float* s = scale(bottom).cpu_data();                                                        // s: (dim)
  const float* b = params_.bias_term ? blobs_[static_cast<size_t>(bias_index())]->cpu_data() : nullptr;  // b: (dim)
  // x, y: (outer, dim, inner); y may alias x
  broadcast_.apply(bottom[0]->cpu_data(), s, b, top[0]->mutable_cpu_data(), kept);
}

void ScaleLayer::backward_cpu(Context&, const BlobVec& top, const std::vector<bool>& propagate_down,
                              const BlobVec& bottom) {
  if (backward_blocked(top, propagate_down, bottom)) return;
  const float* dy = top[0]->cpu_diff();               // dy: (outer, dim, inner)
  const float* x = input_.data(*bottom[0], *top[0]);  // x: (outer, dim, inner), as at forward
  // The operand gradients first: in place, dx overwrites dy.
  operand_gradients(broadcast_, dy, x, propagate_down, bottom);
  if (propagate_down[0]) broadcast_.apply(dy, scale(bottom).cpu_data(), nullptr, bottom[0]->mutable_cpu_diff());
}

void ScaleLayer::operand_gradients(const AxisBroadcast& view, const float* dy, const float* x,
                                   const std::vector<bool>& propagate_down, const BlobVec& bottom) {
  // Parameters accumulate; a scale bottom's gradient is written.
  float* db = params_.bias_term && param_propagate_down(bias_index())
                  ? blobs_[static_cast<size_t>(bias_index())]->mutable_cpu_diff()
                  : nullptr;  // (dim)
  float* ds = nullptr;        // (dim)
  if (bottom.size() > 1 && propagate_down[1]) ds = bottom[1]->mutable_cpu_diff();
  if (bottom.size() == 1 && param_propagate_down(0)) ds = blobs_[0]->mutable_cpu_diff();
  const bool accumulate_ds = bottom.size() == 1;
  if (db && ds)
    view.reduce_both(dy, x, db, true, ds, accumulate_ds);  // one pass over dy for both
  else if (db)
    view.reduce(dy, nullptr, db, true);
  else if (ds)
    view.reduce(dy, x, ds, accumulate_ds);
}

#ifdef CREMA_WITH_CUDA
void ScaleLayer::forward_gpu(Context& ctx, const BlobVec& bottom, const BlobVec& top) {
  const cuda::CudaContext& c = *ctx.cuda();
  input_.keep_gpu(c, *bottom[0], *top[0]);
  const float* s = scale(bottom).gpu_data();                                                        // s: (dim)
  const float* b = params_.bias_term ? blobs_[static_cast<size_t>(bias_index())]->gpu_data() : nullptr;  // b: (dim)
  // x, y: (outer, dim, inner); y may alias x
  cuda::broadcast_apply_gpu(c, broadcast_.outer, broadcast_.dim, broadcast_.inner, bottom[0]->gpu_data(), s, b,
                            top[0]->mutable_gpu_data());
}

void ScaleLayer::backward_gpu(Context& ctx, const BlobVec& top, const std::vector<bool>& propagate_down,
                              const BlobVec& bottom) {
  const cuda::CudaContext& c = *ctx.cuda();
  const AxisBroadcast& v = broadcast_;
  const float* dy = top[0]->gpu_diff();               // dy: (outer, dim, inner)
  const float* x = input_.gpu_data(*bottom[0], *top[0]);  // x: (outer, dim, inner), as at forward
  // The parameter gradients first: in place, dx overwrites dy.
  if (params_.bias_term && param_propagate_down(bias_index()))
    cuda::broadcast_reduce_gpu(c, v.outer, v.dim, v.inner, dy, nullptr,
                               blobs_[static_cast<size_t>(bias_index())]->mutable_gpu_diff(), true);
  if (bottom.size() > 1 && propagate_down[1])
    cuda::broadcast_reduce_gpu(c, v.outer, v.dim, v.inner, dy, x, bottom[1]->mutable_gpu_diff(), false);
  if (bottom.size() == 1 && param_propagate_down(0))
    cuda::broadcast_reduce_gpu(c, v.outer, v.dim, v.inner, dy, x, blobs_[0]->mutable_gpu_diff(), true);
  if (propagate_down[0])
    cuda::broadcast_apply_gpu(c, v.outer, v.dim, v.inner, dy, scale(bottom).gpu_data(), nullptr,
                              bottom[0]->mutable_gpu_diff());
}
#endif

CREMA_REGISTER_LAYER("Scale", ScaleLayer);

}  // namespace crema
