// cuDNN convolution: descriptors, algorithm choice under a workspace limit, and the
// five calls Convolution and Deconvolution need. Everything runs on the context's
// stream, to which the cuDNN handle is bound.
#include <cuda_runtime.h>
#include <cudnn.h>

#include <algorithm>
#include <string>
#include <vector>

#include "engine/cuda/cuda_runtime_api.hpp"
#include "layers/cuda/cudnn_conv.hpp"
#include "layers/cuda/cudnn_descriptors.hpp"

namespace crema::cuda {

// The math type a convolution runs with is the descriptor's when it is called, and cuDNN
// wants the one its search reported with each algorithm (as PyTorch sets it): FP32 runs
// everything in FMA math, where no tensor core rounds an input; TF32 (precision: tf32)
// takes the search's math type, under which Ampere and later round inputs to 10-bit
// mantissas on tensor cores.
template <typename Algo>
struct Choice {
  Algo algo;
  cudnnMathType_t math;
};

namespace {

// The first (fastest by cuDNN's estimate) usable algorithm whose workspace fits
// `limit`, preferring deterministic ones (some backward algorithms sum with atomics, so
// two runs of one config would differ in the last bits and a resumed run would not
// repeat an uninterrupted one); else `fallback` (which needs the least workspace). In
// FP32 only algorithms reported without tensor-core math qualify; under TF32 tensor-core
// math too, but never CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION, which may convert to FP16.
template <typename Perf, typename Algo>
Choice<Algo> pick(const Perf* perf, int returned, size_t limit, bool tf32, Algo fallback) {
  const cudnnMathType_t fp32_math = CUDNN_FMA_MATH;
  const auto allowed = [tf32](cudnnMathType_t m) {
    return m == CUDNN_DEFAULT_MATH || m == CUDNN_FMA_MATH || (tf32 && m == CUDNN_TENSOR_OP_MATH);
  };
  for (const bool need_determinism : {true, false})
    for (int i = 0; i < returned; ++i)
      if (perf[i].status == CUDNN_STATUS_SUCCESS && perf[i].memory <= limit && allowed(perf[i].mathType) &&
          (!need_determinism || perf[i].determinism == CUDNN_DETERMINISTIC))
        return {perf[i].algo, tf32 ? perf[i].mathType : fp32_math};
  return {fallback, tf32 ? CUDNN_DEFAULT_MATH : fp32_math};
}

const float kOne = 1.f, kZero = 0.f;
}  // namespace

struct CudnnConvolution::Impl {
  TensorDescriptor input, output, bias;
  FilterDescriptor filter;
  ConvolutionDescriptor conv;
  bool prepared = false;
  ConvShape shape;
  size_t limit = 0;
  bool tf32 = false;
  int searches = 0;
  Choice<cudnnConvolutionFwdAlgo_t> fwd{CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM, CUDNN_FMA_MATH};
  Choice<cudnnConvolutionBwdDataAlgo_t> bwd_data{CUDNN_CONVOLUTION_BWD_DATA_ALGO_0, CUDNN_FMA_MATH};
  Choice<cudnnConvolutionBwdFilterAlgo_t> bwd_filter{CUDNN_CONVOLUTION_BWD_FILTER_ALGO_0, CUDNN_FMA_MATH};
  // What the three chosen algorithms need of the context's shared workspace.
  size_t workspace_bytes = 0;

  // Sets `bias` to (1, channels of the top, 1, 1) and returns the top's descriptor.
  cudnnTensorDescriptor_t describe_bias(bool on_input) {
    set_nchw(bias, 1, on_input ? shape.in_channels : shape.out_channels, 1, 1);
    return on_input ? input.get() : output.get();
  }

  // Every call but prepare() runs the descriptors and algorithms of one prepared shape; after a
  // prepare() that threw they describe none.
  void require_prepared() const {
    if (!prepared) throw Error("a cuDNN convolution was run before its shape was prepared (or after that failed)");
  }

  // The descriptor in the math type `math` was chosen with.
  cudnnConvolutionDescriptor_t conv_in(cudnnMathType_t math) {
    CREMA_CUDA_CHECK(cudnnSetConvolutionMathType(conv.get(), math));
    return conv.get();
  }
};

CudnnConvolution::CudnnConvolution() : impl_(std::make_unique<Impl>()) {}
CudnnConvolution::~CudnnConvolution() = default;

int CudnnConvolution::algorithm_searches() const { return impl_->searches; }

void CudnnConvolution::prepare(const CudaContext& ctx, const ConvShape& s, size_t limit, bool tf32) {
  Impl& m = *impl_;
  if (m.prepared && m.limit == limit && m.tf32 == tf32 && m.shape == s) return;
  // The descriptors change from here on: until the new shape is fully prepared, a call
  // with the old one (after a caught error) must not run them.
  m.prepared = false;
  const cudnnHandle_t h = cudnn_handle(ctx);
  set_nchw(m.input, s.num, s.in_channels, s.in_h, s.in_w);
  set_nchw(m.output, s.num, s.out_channels, s.out_h, s.out_w);
  CREMA_CUDA_CHECK(cudnnSetFilter4dDescriptor(m.filter.get(), CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, s.out_channels,
                                              s.in_channels / s.group, s.kernel_h, s.kernel_w));
  CREMA_CUDA_CHECK(cudnnSetConvolution2dDescriptor(m.conv.get(), s.pad_h, s.pad_w, s.stride_h, s.stride_w, s.dilation_h,
                                                   s.dilation_w, CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
  CREMA_CUDA_CHECK(cudnnSetConvolutionGroupCount(m.conv.get(), s.group));
  // The searches report the algorithms the descriptor's math type allows.
  CREMA_CUDA_CHECK(cudnnSetConvolutionMathType(m.conv.get(), tf32 ? CUDNN_DEFAULT_MATH : CUDNN_FMA_MATH));
  // cuDNN must agree with the layer's output size, or the layer's shape rule and
  // cuDNN's differ and the results would be garbage.
  int n = 0, c = 0, oh = 0, ow = 0;
  CREMA_CUDA_CHECK(
      cudnnGetConvolution2dForwardOutputDim(m.conv.get(), m.input.get(), m.filter.get(), &n, &c, &oh, &ow));
  if (n != s.num || c != s.out_channels || oh != s.out_h || ow != s.out_w)
    throw Error("cuDNN computes a convolution output of " + std::to_string(n) + "x" + std::to_string(c) + "x" +
                std::to_string(oh) + "x" + std::to_string(ow) + " where the layer expects " + std::to_string(s.num) +
                "x" + std::to_string(s.out_channels) + "x" + std::to_string(s.out_h) + "x" + std::to_string(s.out_w) +
                "; this geometry cannot run on cuDNN");

  // Room for every entry this cuDNN can list: its lists may hold more than the headers'
  // *_ALGO_COUNT algorithms (an algorithm in more than one math type), and a shorter
  // request cuts a list short, perhaps before every algorithm that fits the limit.
  int fwd_max = 0, data_max = 0, filter_max = 0, returned = 0;
  CREMA_CUDA_CHECK(cudnnGetConvolutionForwardAlgorithmMaxCount(h, &fwd_max));
  CREMA_CUDA_CHECK(cudnnGetConvolutionBackwardDataAlgorithmMaxCount(h, &data_max));
  CREMA_CUDA_CHECK(cudnnGetConvolutionBackwardFilterAlgorithmMaxCount(h, &filter_max));
  std::vector<cudnnConvolutionFwdAlgoPerf_t> fwd(static_cast<size_t>(std::max(fwd_max, 1)));
  std::vector<cudnnConvolutionBwdDataAlgoPerf_t> bwd_data(static_cast<size_t>(std::max(data_max, 1)));
  std::vector<cudnnConvolutionBwdFilterAlgoPerf_t> bwd_filter(static_cast<size_t>(std::max(filter_max, 1)));
  CREMA_CUDA_CHECK(cudnnGetConvolutionForwardAlgorithm_v7(h, m.input.get(), m.filter.get(), m.conv.get(),
                                                          m.output.get(), static_cast<int>(fwd.size()), &returned,
                                                          fwd.data()));
  m.fwd = pick(fwd.data(), returned, limit, tf32, CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM);
  CREMA_CUDA_CHECK(cudnnGetConvolutionBackwardDataAlgorithm_v7(h, m.filter.get(), m.output.get(), m.conv.get(),
                                                               m.input.get(), static_cast<int>(bwd_data.size()),
                                                               &returned, bwd_data.data()));
  m.bwd_data = pick(bwd_data.data(), returned, limit, tf32, CUDNN_CONVOLUTION_BWD_DATA_ALGO_0);
  CREMA_CUDA_CHECK(cudnnGetConvolutionBackwardFilterAlgorithm_v7(h, m.input.get(), m.output.get(), m.conv.get(),
                                                                 m.filter.get(), static_cast<int>(bwd_filter.size()),
                                                                 &returned, bwd_filter.data()));
  m.bwd_filter = pick(bwd_filter.data(), returned, limit, tf32, CUDNN_CONVOLUTION_BWD_FILTER_ALGO_0);

  size_t fwd_bytes = 0, data_bytes = 0, filter_bytes = 0;
  CREMA_CUDA_CHECK(cudnnGetConvolutionForwardWorkspaceSize(h, m.input.get(), m.filter.get(), m.conv_in(m.fwd.math),
                                                           m.output.get(), m.fwd.algo, &fwd_bytes));
  CREMA_CUDA_CHECK(cudnnGetConvolutionBackwardDataWorkspaceSize(
      h, m.filter.get(), m.output.get(), m.conv_in(m.bwd_data.math), m.input.get(), m.bwd_data.algo, &data_bytes));
  CREMA_CUDA_CHECK(cudnnGetConvolutionBackwardFilterWorkspaceSize(h, m.input.get(), m.output.get(),
                                                                  m.conv_in(m.bwd_filter.math), m.filter.get(),
                                                                  m.bwd_filter.algo, &filter_bytes));
  m.workspace_bytes = std::max({fwd_bytes, data_bytes, filter_bytes});
  ctx.workspace(m.workspace_bytes);  // allocated now, so that a shortage shows at setup

  m.shape = s;
  m.limit = limit;
  m.tf32 = tf32;
  m.prepared = true;
  ++m.searches;
}

void CudnnConvolution::forward(const CudaContext& ctx, const float* input, const float* filter, float* output) {
  Impl& m = *impl_;
  m.require_prepared();
  CREMA_CUDA_CHECK(cudnnConvolutionForward(cudnn_handle(ctx), &kOne, m.input.get(), input, m.filter.get(), filter,
                                           m.conv_in(m.fwd.math), m.fwd.algo, ctx.workspace(m.workspace_bytes),
                                           m.workspace_bytes, &kZero, m.output.get(), output));
}

void CudnnConvolution::backward_data(const CudaContext& ctx, const float* output_diff, const float* filter,
                                     float* input_diff) {
  Impl& m = *impl_;
  m.require_prepared();
  CREMA_CUDA_CHECK(cudnnConvolutionBackwardData(
      cudnn_handle(ctx), &kOne, m.filter.get(), filter, m.output.get(), output_diff, m.conv_in(m.bwd_data.math),
      m.bwd_data.algo, ctx.workspace(m.workspace_bytes), m.workspace_bytes, &kZero, m.input.get(), input_diff));
}

void CudnnConvolution::backward_filter(const CudaContext& ctx, const float* input, const float* output_diff,
                                       float* filter_diff) {
  Impl& m = *impl_;
  m.require_prepared();
  // beta 1: parameter gradients accumulate over bottoms and iterations (the solver zeroes them).
  CREMA_CUDA_CHECK(cudnnConvolutionBackwardFilter(
      cudnn_handle(ctx), &kOne, m.input.get(), input, m.output.get(), output_diff, m.conv_in(m.bwd_filter.math),
      m.bwd_filter.algo, ctx.workspace(m.workspace_bytes), m.workspace_bytes, &kOne, m.filter.get(), filter_diff));
}

void CudnnConvolution::add_bias(const CudaContext& ctx, bool on_input, const float* bias, float* top) {
  Impl& m = *impl_;
  m.require_prepared();
  const cudnnTensorDescriptor_t top_desc = m.describe_bias(on_input);
  CREMA_CUDA_CHECK(cudnnAddTensor(cudnn_handle(ctx), &kOne, m.bias.get(), bias, &kOne, top_desc, top));
}

void CudnnConvolution::backward_bias(const CudaContext& ctx, bool on_input, const float* top_diff, float* bias_diff) {
  Impl& m = *impl_;
  m.require_prepared();
  const cudnnTensorDescriptor_t top_desc = m.describe_bias(on_input);
  CREMA_CUDA_CHECK(
      cudnnConvolutionBackwardBias(cudnn_handle(ctx), &kOne, top_desc, top_diff, &kOne, m.bias.get(), bias_diff));
}

}  // namespace crema::cuda
