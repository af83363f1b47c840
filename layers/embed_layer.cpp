#include "layers/embed_layer.hpp"

#include "engine/math.hpp"
#include "layers/index_value.hpp"
#include "layers/param_blobs.hpp"
#ifdef CREMA_WITH_CUDA
#include <string>

#include "engine/cuda/math_kernels.hpp"
#include "layers/cuda/blas_kernels.hpp"
#include "layers/cuda/catalog_kernels.hpp"
#include "layers/cuda/misc_kernels.hpp"
#endif

namespace crema {

namespace {
const char* const kIndexAdvice = "raise embed_param.input_dim above the largest index, or check the input data";
}  // namespace

EmbedParams EmbedParams::parse(MapReader r) {
  EmbedParams p;
  p.num_output = r.required("num_output").as_int();
  if (p.num_output <= 0) r.fail("num_output", "num_output must be positive");
  p.input_dim = r.required("input_dim").as_int();
  if (p.input_dim <= 0) r.fail("input_dim", "input_dim (the number of table rows) must be positive");
  p.bias_term = r.get_bool("bias_term", true);
  p.weight_filler = FillerSpec::parse(r.sub("weight_filler"));
  p.bias_filler = FillerSpec::parse(r.sub("bias_filler"));
  r.finish();
  return p;
}

EmbedLayer::EmbedLayer(const LayerSpec& spec) : Layer(spec), params_(EmbedParams::parse(spec.params("embed_param"))) {}

void EmbedLayer::layer_setup(Context& ctx, const BlobVec&, const BlobVec&) {
  std::vector<ParamBlobSpec> wanted = {{"weight", {params_.input_dim, params_.num_output}, params_.weight_filler}};
  if (params_.bias_term) wanted.push_back({"bias", {params_.num_output}, params_.bias_filler});
  setup_param_blobs(spec_, blobs_, wanted, ctx.rng());
}

void EmbedLayer::reshape(const BlobVec& bottom, const BlobVec& top) {
  std::vector<int> shape = bottom[0]->shape();
  shape.push_back(params_.num_output);
  top[0]->reshape(shape);
  index_check_.reshape({3});
#ifdef CREMA_WITH_CUDA
  reshape_index_scratch(*this, sort_scratch_, bottom[0]->count(), params_.input_dim);
#endif
}

int EmbedLayer::row(const Blob& indices, float value, long i) const {
  return read_index(*this, value, params_.input_dim, i, indices, 0, kIndexAdvice);
}

void EmbedLayer::forward_cpu(Context&, const BlobVec& bottom, const BlobVec& top) {
  const int m = bottom[0]->count(), n = params_.num_output;
  const float* index = bottom[0]->cpu_data();  // index: (M)
  const float* w = blobs_[0]->cpu_data();      // w: (input_dim, n)
  float* y = top[0]->mutable_cpu_data();       // y: (M, n)
  const float* bias = params_.bias_term ? blobs_[1]->cpu_data() : nullptr;  // bias: (n)
  for (int i = 0; i < m; ++i) {
    float* out = y + static_cast<long>(i) * n;  // (n)
    cpu_copy(n, w + static_cast<long>(row(*bottom[0], index[i], i)) * n, out);
    if (bias) cpu_axpy(n, 1.f, bias, out);
  }
}

void EmbedLayer::backward_cpu(Context&, const BlobVec& top, const std::vector<bool>& propagate_down,
                              const BlobVec& bottom) {
  const int m = bottom[0]->count(), n = params_.num_output;
  const float* index = bottom[0]->cpu_data();  // index: (M)
  const float* dy = top[0]->cpu_diff();        // dy: (M, n)
  if (param_propagate_down(0)) {
    float* dw = blobs_[0]->mutable_cpu_diff();  // dw: (input_dim, n), accumulates
    for (int i = 0; i < m; ++i)
      cpu_axpy(n, 1.f, dy + static_cast<long>(i) * n, dw + static_cast<long>(row(*bottom[0], index[i], i)) * n);
  }
  if (params_.bias_term && param_propagate_down(1)) {
    float* db = blobs_[1]->mutable_cpu_diff();  // db: (n), accumulates
    for (int i = 0; i < m; ++i) cpu_axpy(n, 1.f, dy + static_cast<long>(i) * n, db);
  }
  // The output is piecewise constant in the indices.
  if (propagate_down[0]) bottom[0]->set_diff(0.f);
}

#ifdef CREMA_WITH_CUDA
void EmbedLayer::forward_gpu(Context& ctx, const BlobVec& bottom, const BlobVec& top) {
  const cuda::CudaContext& c = *ctx.cuda();
  const int m = bottom[0]->count(), n = params_.num_output;
  const float* index = bottom[0]->gpu_data();  // index: (M)
  // Checked on the device, only the verdict comes back (waits for the stream).
  const cuda::BadIndex bad =
      cuda::find_bad_index(c, m, index, params_.input_dim, cuda::IndexRule::index, index_check_.mutable_gpu_data());
  if (bad.position >= 0) {
    row(*bottom[0], bad.value, static_cast<long>(bad.position));  // throws the CPU's message
    throw Error(std::string(type()) + " layer '" + name() + "': an index is out of range; " + kIndexAdvice);
  }
  // w: (input_dim, n); bias: (n) or none; y: (M, n)
  cuda::embed_forward(c, m, n, params_.input_dim, index, blobs_[0]->gpu_data(),
                      params_.bias_term ? blobs_[1]->gpu_data() : nullptr, top[0]->mutable_gpu_data());
}

void EmbedLayer::backward_gpu(Context& ctx, const BlobVec& top, const std::vector<bool>& propagate_down,
                              const BlobVec& bottom) {
  const cuda::CudaContext& c = *ctx.cuda();
  const int m = bottom[0]->count(), n = params_.num_output;
  const float* dy = top[0]->gpu_diff();  // dy: (M, n)
  // index: (M), checked by forward; dw: (input_dim, n), accumulates
  if (param_propagate_down(0))
    cuda::add_rows_by_index(c, m, n, params_.input_dim, dy, bottom[0]->gpu_data(),
                            reinterpret_cast<int*>(sort_scratch_.mutable_gpu_data()), blobs_[0]->mutable_gpu_diff());
  // db: (n) += the column sums of dy, seen as (M, n, 1)
  if (params_.bias_term && param_propagate_down(1))
    cuda::broadcast_reduce_gpu(c, m, n, 1, dy, nullptr, blobs_[1]->mutable_gpu_diff(), true);
  // The output is piecewise constant in the indices.
  if (propagate_down[0]) cuda::gpu_set(c, m, 0.f, bottom[0]->mutable_gpu_diff());
}
#endif

CREMA_REGISTER_LAYER("Embed", EmbedLayer);

}  // namespace crema
