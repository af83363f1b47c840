// The cuDNN calls crema makes, emulated on the host (tests/cuda_emu/README.md):
// NCHW float convolution (groups, padding, stride, dilation) forward, backward data,
// filter and bias, cudnnAddTensor, 2-D max and average pooling, and cross-channel LRN,
// each written from cuDNN's documented definition. Each call checks its arguments at
// once and queues its work on the handle's stream, descriptors and scalars copied as
// they are at the call (tests/cuda_emu/emu_runtime.cpp, "queued work"). The algorithm queries
// answer a fixed list (a TF32 one, a non-deterministic one, two deterministic ones
// with and without workspace) so that crema's choice among them is exercised, and
// each call checks that its workspace is large enough and its data device memory.
// A convolution runs as on Ampere and later: in any math type but FMA (cuDNN's
// default DEFAULT included) its inputs are rounded to TF32; the queries offer the
// deterministic algorithm 1 in tensor-core math when the descriptor allows it, and the
// tensor-core-only algorithm refuses FMA math.
#include <cblas.h>
#include <cudnn.h>

#include <cmath>
#include <cstddef>
#include <limits>
#include <string>
#include <vector>

#include "tests/cuda_emu/emu_memory.hpp"

struct cudnnContext {
  cudaStream_t stream = nullptr;
};
struct cudnnTensorStruct {
  int n = 0, c = 0, h = 0, w = 0;
  bool set = false;
  size_t count() const { return static_cast<size_t>(n) * c * h * w; }
};
struct cudnnFilterStruct {
  int k = 0, c = 0, h = 0, w = 0;
  bool set = false;
  size_t count() const { return static_cast<size_t>(k) * c * h * w; }
};
struct cudnnConvolutionStruct {
  int pad_h = 0, pad_w = 0, stride_h = 1, stride_w = 1, dilation_h = 1, dilation_w = 1, groups = 1;
  cudnnMathType_t math = CUDNN_DEFAULT_MATH;  // cuDNN's default, which allows TF32 on Ampere and later
  bool set = false;
};
struct cudnnPoolingStruct {
  cudnnPoolingMode_t mode = CUDNN_POOLING_MAX;
  int window_h = 0, window_w = 0, pad_h = 0, pad_w = 0, stride_h = 1, stride_w = 1;
  bool set = false;
};
struct cudnnLRNStruct {  // cuDNN's defaults
  unsigned n = 5;
  double alpha = 1e-4, beta = 0.75, k = 2.0;
};

namespace {

using crema_emu::device_data;

cudnnStatus_t bad(const std::string& what) {
  crema_emu::report(what);
  return CUDNN_STATUS_BAD_PARAM;
}
cudnnStatus_t memory_fault() { return CUDNN_STATUS_EXECUTION_FAILED; }

float scalar(const void* p) { return *static_cast<const float*>(p); }

// out = alpha v + beta out, not reading out when beta is 0 (it may hold NaN).
void blend(float* out, double v, float alpha, float beta) {
  *out = static_cast<float>(alpha * v + (beta == 0.f ? 0.0 : static_cast<double>(beta) * *out));
}

size_t at(const cudnnTensorStruct& t, int n, int c, int h, int w) {
  return ((static_cast<size_t>(n) * t.c + c) * t.h + h) * t.w + w;
}

// The workspace each algorithm needs: the list's deterministic algorithm 1 needs some,
// algorithm 0 (every fallback crema names) none.
size_t workspace_for(int algo) { return algo == 0 ? 0 : algo == 1 ? 4096 : algo == 2 ? (1 << 20) : (64 << 20); }

// The algorithms the queries offer, fastest first, with the math type each is offered
// in: algorithm 3 needs tensor cores; the deterministic algorithm 1 runs on them when
// the descriptor allows it (any math type but FMA).
struct OfferedAlgorithm {
  int algo;
  cudnnDeterminism_t determinism;
  cudnnMathType_t math;
};
constexpr int kTensorOnly = 3;
std::vector<OfferedAlgorithm> offered(cudnnMathType_t descriptor_math) {
  const bool tensor_cores = descriptor_math != CUDNN_FMA_MATH;
  return {{kTensorOnly, CUDNN_NON_DETERMINISTIC, CUDNN_TENSOR_OP_MATH},
          {2, CUDNN_NON_DETERMINISTIC, CUDNN_DEFAULT_MATH},
          {1, CUDNN_DETERMINISTIC, tensor_cores ? CUDNN_TENSOR_OP_MATH : CUDNN_FMA_MATH},
          {0, CUDNN_DETERMINISTIC, CUDNN_DEFAULT_MATH}};
}

// Whether a convolution runs on TF32 tensor cores: the descriptor's math type at the
// call allows it (anything but FMA, as on Ampere and later). The tensor-core-only
// algorithm cannot run in FMA math: a finding.
bool runs_tf32(int algo, const cudnnConvolutionStruct& c, const char* call, bool* ok) {
  *ok = !(algo == kTensorOnly && c.math == CUDNN_FMA_MATH);
  if (!*ok)
    crema_emu::report(std::string(call) + ": algorithm " + std::to_string(algo) +
                      " was offered with CUDNN_TENSOR_OP_MATH, but the descriptor is in CUDNN_FMA_MATH");
  return c.math != CUDNN_FMA_MATH;
}

// x as the call's products see it: the device's values, or TF32-rounded copies.
struct Operand {
  const float* p;
  std::vector<float> rounded;
  Operand(const void* x, size_t n, bool tf32) : p(static_cast<const float*>(x)) {
    if (tf32) {
      rounded = crema_emu::to_tf32(p, n);
      p = rounded.data();
    }
  }
};

// What the MaxCount queries answer: more than the headers' *_ALGO_COUNT, as cuDNN's
// lists can be (an algorithm in more than one math type), so that a request for only
// *_ALGO_COUNT entries, which cuDNN would answer with a list cut short, is a finding.
constexpr int kListLonger = 2;

template <typename Perf, typename Algo>
void algorithm_list(const cudnnConvolutionStruct& c, Perf* perf, int requested, int max_count, const char* call,
                    int* returned) {
  if (requested < max_count)
    crema_emu::report(std::string(call) + ": asked for " + std::to_string(requested) +
                      " algorithms, fewer than the MaxCount query's " + std::to_string(max_count) +
                      ", so the list may be cut short");
  *returned = 0;
  for (const auto& e : offered(c.math)) {
    if (*returned >= requested) break;
    Perf& p = perf[(*returned)++];
    p = Perf{};
    p.algo = static_cast<Algo>(e.algo);
    p.status = CUDNN_STATUS_SUCCESS;
    p.time = 1.f + static_cast<float>(*returned);
    p.memory = workspace_for(e.algo);
    p.determinism = e.determinism;
    p.mathType = e.math;
  }
}

// The output size of a convolution along one axis.
int conv_out(int in, int pad, int kernel, int stride, int dilation) {
  return (in + 2 * pad - (dilation * (kernel - 1) + 1)) / stride + 1;
}

// Checks a convolution's descriptors against each other.
bool conv_consistent(const cudnnTensorStruct& x, const cudnnFilterStruct& w, const cudnnConvolutionStruct& c,
                     const cudnnTensorStruct& y, const char* call, std::string* why) {
  if (!x.set || !w.set || !c.set || !y.set) {
    *why = std::string(call) + ": a descriptor was never set";
    return false;
  }
  if (x.c != w.c * c.groups || w.k % c.groups != 0 || y.c != w.k || y.n != x.n ||
      y.h != conv_out(x.h, c.pad_h, w.h, c.stride_h, c.dilation_h) ||
      y.w != conv_out(x.w, c.pad_w, w.w, c.stride_w, c.dilation_w)) {
    *why = std::string(call) + ": x " + std::to_string(x.n) + "x" + std::to_string(x.c) + "x" + std::to_string(x.h) +
           "x" + std::to_string(x.w) + ", filter " + std::to_string(w.k) + "x" + std::to_string(w.c) + "x" +
           std::to_string(w.h) + "x" + std::to_string(w.w) + " in " + std::to_string(c.groups) + " groups and y " +
           std::to_string(y.n) + "x" + std::to_string(y.c) + "x" + std::to_string(y.h) + "x" + std::to_string(y.w) +
           " do not fit together";
    return false;
  }
  return true;
}

bool workspace_ok(int algo, const void* workspace, size_t bytes, const char* call) {
  const size_t need = workspace_for(algo);
  if (bytes < need) {
    crema_emu::report(std::string(call) + ": algorithm " + std::to_string(algo) + " needs " +
                                                 std::to_string(need) + " bytes of workspace, given " +
                                                 std::to_string(bytes));
    return false;
  }
  return need == 0 || device_data(workspace, need, std::string(call) + " workspace");
}

// A convolution as products with the columns of each image and group: col is
// (C/groups * kh * kw) x (oh * ow), an input value (or 0 in the padding) for each
// filter tap and output position.
struct ConvGeometry {
  const cudnnTensorStruct& x;
  const cudnnFilterStruct& w;
  const cudnnConvolutionStruct& c;
  const cudnnTensorStruct& y;
  int out_per_group() const { return w.k / c.groups; }
  int taps() const { return w.c * w.h * w.w; }  // rows of col
  int positions() const { return y.h * y.w; }   // columns of col
  // Input element of tap row r at output position p of image n, group g; -1 in the padding.
  long input_index(int n, int g, int r, int p) const {
    const int kw = r % w.w, kh = r / w.w % w.h, ci = r / (w.w * w.h);
    const int ih = p / y.w * c.stride_h - c.pad_h + kh * c.dilation_h;
    const int iw = p % y.w * c.stride_w - c.pad_w + kw * c.dilation_w;
    if (ih < 0 || ih >= x.h || iw < 0 || iw >= x.w) return -1;
    return static_cast<long>(at(x, n, g * w.c + ci, ih, iw));
  }
  void im2col(const float* xs, int n, int g, std::vector<float>* col) const {
    col->assign(static_cast<size_t>(taps()) * positions(), 0.f);
    for (int r = 0; r < taps(); ++r)
      for (int p = 0; p < positions(); ++p)
        if (const long i = input_index(n, g, r, p); i >= 0) (*col)[static_cast<size_t>(r) * positions() + p] = xs[i];
  }
  void col2im_add(const std::vector<float>& col, int n, int g, float* xs) const {
    for (int r = 0; r < taps(); ++r)
      for (int p = 0; p < positions(); ++p)
        if (const long i = input_index(n, g, r, p); i >= 0) xs[i] += col[static_cast<size_t>(r) * positions() + p];
  }
  // Offsets of group g's filters and of image n, group g's outputs.
  size_t filter_offset(int g) const { return static_cast<size_t>(g) * out_per_group() * taps(); }
  size_t output_offset(int n, int g) const {
    return (static_cast<size_t>(n) * y.c + static_cast<size_t>(g) * out_per_group()) * positions();
  }
};

// The clipped window of output position (oh, ow).
struct Window {
  int h0, h1, w0, w1;
};
Window window(const cudnnPoolingStruct& p, const cudnnTensorStruct& x, int oh, int ow) {
  const int h0 = oh * p.stride_h - p.pad_h, w0 = ow * p.stride_w - p.pad_w;
  return Window{std::max(h0, 0), std::min(h0 + p.window_h, x.h), std::max(w0, 0), std::min(w0 + p.window_w, x.w)};
}
double average_divisor(const cudnnPoolingStruct& p, const Window& win) {
  if (p.mode == CUDNN_POOLING_AVERAGE_COUNT_INCLUDE_PADDING) return static_cast<double>(p.window_h) * p.window_w;
  return static_cast<double>(win.h1 - win.h0) * (win.w1 - win.w0);
}

int pool_out(int in, int pad, int window_size, int stride) { return 1 + (in + 2 * pad - window_size) / stride; }

}  // namespace

const char* cudnnGetErrorString(cudnnStatus_t s) {
  static thread_local std::string text;
  switch (s) {
    case CUDNN_STATUS_SUCCESS: return "CUDNN_STATUS_SUCCESS";
    case CUDNN_STATUS_NOT_SUPPORTED: return "CUDNN_STATUS_NOT_SUPPORTED (emulated cuDNN)";
    case CUDNN_STATUS_BAD_PARAM: text = "CUDNN_STATUS_BAD_PARAM"; break;
    default: text = "CUDNN_STATUS_EXECUTION_FAILED"; break;
  }
  text += " (emulated cuDNN: " + crema_emu::latest_finding() + ")";
  return text.c_str();
}
size_t cudnnGetVersion() { return CUDNN_VERSION; }

cudnnStatus_t cudnnCreate(cudnnHandle_t* h) {
  *h = new cudnnContext();
  return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnDestroy(cudnnHandle_t h) {
  delete h;
  return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnSetStream(cudnnHandle_t h, cudaStream_t s) {
  h->stream = s;
  return CUDNN_STATUS_SUCCESS;
}

#define CREMA_EMU_DESCRIPTOR(Type, Struct, Create, Destroy) \
  cudnnStatus_t Create(Type* d) {                           \
    *d = new Struct();                                      \
    return CUDNN_STATUS_SUCCESS;                            \
  }                                                         \
  cudnnStatus_t Destroy(Type d) {                           \
    delete d;                                               \
    return CUDNN_STATUS_SUCCESS;                            \
  }
CREMA_EMU_DESCRIPTOR(cudnnTensorDescriptor_t, cudnnTensorStruct, cudnnCreateTensorDescriptor,
                     cudnnDestroyTensorDescriptor)
CREMA_EMU_DESCRIPTOR(cudnnFilterDescriptor_t, cudnnFilterStruct, cudnnCreateFilterDescriptor,
                     cudnnDestroyFilterDescriptor)
CREMA_EMU_DESCRIPTOR(cudnnConvolutionDescriptor_t, cudnnConvolutionStruct, cudnnCreateConvolutionDescriptor,
                     cudnnDestroyConvolutionDescriptor)
CREMA_EMU_DESCRIPTOR(cudnnPoolingDescriptor_t, cudnnPoolingStruct, cudnnCreatePoolingDescriptor,
                     cudnnDestroyPoolingDescriptor)
CREMA_EMU_DESCRIPTOR(cudnnLRNDescriptor_t, cudnnLRNStruct, cudnnCreateLRNDescriptor, cudnnDestroyLRNDescriptor)
#undef CREMA_EMU_DESCRIPTOR

cudnnStatus_t cudnnSetTensor4dDescriptor(cudnnTensorDescriptor_t d, cudnnTensorFormat_t format, cudnnDataType_t type,
                                         int n, int c, int h, int w) {
  if (format != CUDNN_TENSOR_NCHW || type != CUDNN_DATA_FLOAT) return CUDNN_STATUS_NOT_SUPPORTED;
  if (n <= 0 || c <= 0 || h <= 0 || w <= 0)
    return bad("cudnnSetTensor4dDescriptor: " + std::to_string(n) + "x" + std::to_string(c) + "x" + std::to_string(h) +
               "x" + std::to_string(w) + " has an empty dimension");
  *d = cudnnTensorStruct{n, c, h, w, true};
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnSetFilter4dDescriptor(cudnnFilterDescriptor_t d, cudnnDataType_t type, cudnnTensorFormat_t format,
                                         int k, int c, int h, int w) {
  if (format != CUDNN_TENSOR_NCHW || type != CUDNN_DATA_FLOAT) return CUDNN_STATUS_NOT_SUPPORTED;
  if (k <= 0 || c <= 0 || h <= 0 || w <= 0) return bad("cudnnSetFilter4dDescriptor: an empty dimension");
  *d = cudnnFilterStruct{k, c, h, w, true};
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnSetConvolution2dDescriptor(cudnnConvolutionDescriptor_t d, int pad_h, int pad_w, int u, int v,
                                              int dilation_h, int dilation_w, cudnnConvolutionMode_t mode,
                                              cudnnDataType_t type) {
  if (mode != CUDNN_CROSS_CORRELATION || type != CUDNN_DATA_FLOAT) return CUDNN_STATUS_NOT_SUPPORTED;
  if (pad_h < 0 || pad_w < 0 || u <= 0 || v <= 0 || dilation_h <= 0 || dilation_w <= 0)
    return bad("cudnnSetConvolution2dDescriptor: a negative pad or a non-positive stride or dilation");
  d->pad_h = pad_h;
  d->pad_w = pad_w;
  d->stride_h = u;
  d->stride_w = v;
  d->dilation_h = dilation_h;
  d->dilation_w = dilation_w;
  d->set = true;
  return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnSetConvolutionGroupCount(cudnnConvolutionDescriptor_t d, int groups) {
  if (groups <= 0) return bad("cudnnSetConvolutionGroupCount: " + std::to_string(groups));
  d->groups = groups;
  return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnSetConvolutionMathType(cudnnConvolutionDescriptor_t d, cudnnMathType_t math) {
  if (math != CUDNN_DEFAULT_MATH && math != CUDNN_TENSOR_OP_MATH && math != CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION &&
      math != CUDNN_FMA_MATH)
    return bad("cudnnSetConvolutionMathType: math type " + std::to_string(static_cast<int>(math)));
  d->math = math;
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnGetConvolution2dForwardOutputDim(const cudnnConvolutionDescriptor_t c,
                                                    const cudnnTensorDescriptor_t x, const cudnnFilterDescriptor_t w,
                                                    int* n, int* k, int* h, int* wo) {
  if (!c->set || !x->set || !w->set) return bad("cudnnGetConvolution2dForwardOutputDim: a descriptor was never set");
  if (x->c != w->c * c->groups)
    return bad("cudnnGetConvolution2dForwardOutputDim: input channels != filter's x groups");
  *n = x->n;
  *k = w->k;
  *h = conv_out(x->h, c->pad_h, w->h, c->stride_h, c->dilation_h);
  *wo = conv_out(x->w, c->pad_w, w->w, c->stride_w, c->dilation_w);
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnGetConvolutionForwardAlgorithmMaxCount(cudnnHandle_t, int* count) {
  *count = CUDNN_CONVOLUTION_FWD_ALGO_COUNT + kListLonger;
  return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnGetConvolutionBackwardDataAlgorithmMaxCount(cudnnHandle_t, int* count) {
  *count = CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT + kListLonger;
  return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnGetConvolutionBackwardFilterAlgorithmMaxCount(cudnnHandle_t, int* count) {
  *count = CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT + kListLonger;
  return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnGetConvolutionForwardAlgorithm_v7(cudnnHandle_t, const cudnnTensorDescriptor_t,
                                                     const cudnnFilterDescriptor_t,
                                                     const cudnnConvolutionDescriptor_t c,
                                                     const cudnnTensorDescriptor_t, const int requested, int* returned,
                                                     cudnnConvolutionFwdAlgoPerf_t* perf) {
  algorithm_list<cudnnConvolutionFwdAlgoPerf_t, cudnnConvolutionFwdAlgo_t>(
      *c, perf, requested, CUDNN_CONVOLUTION_FWD_ALGO_COUNT + kListLonger, "cudnnGetConvolutionForwardAlgorithm_v7",
      returned);
  return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnGetConvolutionBackwardDataAlgorithm_v7(cudnnHandle_t, const cudnnFilterDescriptor_t,
                                                          const cudnnTensorDescriptor_t,
                                                          const cudnnConvolutionDescriptor_t c,
                                                          const cudnnTensorDescriptor_t, const int requested,
                                                          int* returned, cudnnConvolutionBwdDataAlgoPerf_t* perf) {
  algorithm_list<cudnnConvolutionBwdDataAlgoPerf_t, cudnnConvolutionBwdDataAlgo_t>(
      *c, perf, requested, CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT + kListLonger,
      "cudnnGetConvolutionBackwardDataAlgorithm_v7", returned);
  return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnGetConvolutionBackwardFilterAlgorithm_v7(cudnnHandle_t, const cudnnTensorDescriptor_t,
                                                            const cudnnTensorDescriptor_t,
                                                            const cudnnConvolutionDescriptor_t c,
                                                            const cudnnFilterDescriptor_t, const int requested,
                                                            int* returned, cudnnConvolutionBwdFilterAlgoPerf_t* perf) {
  algorithm_list<cudnnConvolutionBwdFilterAlgoPerf_t, cudnnConvolutionBwdFilterAlgo_t>(
      *c, perf, requested, CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT + kListLonger,
      "cudnnGetConvolutionBackwardFilterAlgorithm_v7", returned);
  return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnGetConvolutionForwardWorkspaceSize(cudnnHandle_t, const cudnnTensorDescriptor_t,
                                                      const cudnnFilterDescriptor_t, const cudnnConvolutionDescriptor_t,
                                                      const cudnnTensorDescriptor_t, cudnnConvolutionFwdAlgo_t algo,
                                                      size_t* bytes) {
  *bytes = workspace_for(algo);
  return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnGetConvolutionBackwardDataWorkspaceSize(cudnnHandle_t, const cudnnFilterDescriptor_t,
                                                           const cudnnTensorDescriptor_t,
                                                           const cudnnConvolutionDescriptor_t,
                                                           const cudnnTensorDescriptor_t,
                                                           cudnnConvolutionBwdDataAlgo_t algo, size_t* bytes) {
  *bytes = workspace_for(algo);
  return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnGetConvolutionBackwardFilterWorkspaceSize(cudnnHandle_t, const cudnnTensorDescriptor_t,
                                                             const cudnnTensorDescriptor_t,
                                                             const cudnnConvolutionDescriptor_t,
                                                             const cudnnFilterDescriptor_t,
                                                             cudnnConvolutionBwdFilterAlgo_t algo, size_t* bytes) {
  *bytes = workspace_for(algo);
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnConvolutionForward(cudnnHandle_t handle, const void* alpha, const cudnnTensorDescriptor_t xd,
                                      const void* x, const cudnnFilterDescriptor_t wd, const void* w,
                                      const cudnnConvolutionDescriptor_t cd, cudnnConvolutionFwdAlgo_t algo,
                                      void* workspace, size_t workspace_bytes, const void* beta,
                                      const cudnnTensorDescriptor_t yd, void* y) {
  std::string why;
  if (!conv_consistent(*xd, *wd, *cd, *yd, "cudnnConvolutionForward", &why)) return bad(why);
  bool math_ok = true;
  const bool tf32 = runs_tf32(algo, *cd, "cudnnConvolutionForward", &math_ok);
  if (!math_ok) return CUDNN_STATUS_NOT_SUPPORTED;
  if (!workspace_ok(algo, workspace, workspace_bytes, "cudnnConvolutionForward") ||
      !device_data(x, xd->count() * 4, "cudnnConvolutionForward x") ||
      !device_data(w, wd->count() * 4, "cudnnConvolutionForward w") ||
      !device_data(y, yd->count() * 4, "cudnnConvolutionForward y"))
    return memory_fault();
  // Descriptors and scalars as they are now: the call reads them before it returns.
  crema_emu::enqueue(handle->stream,
                     [=, xd_ = *xd, wd_ = *wd, cd_ = *cd, yd_ = *yd, alpha_ = scalar(alpha), beta_ = scalar(beta)] {
                       const ConvGeometry geo{xd_, wd_, cd_, yd_};
                       const int kg = geo.out_per_group(), q = geo.taps(), p = geo.positions();
                       const crema_emu::SingleThreadedBlas one_thread;
                       const Operand xs(x, xd_.count(), tf32), ws(w, wd_.count(), tf32);
                       std::vector<float> sum(yd_.count()), col;
                       for (int n = 0; n < yd_.n; ++n)
                         for (int g = 0; g < cd_.groups; ++g) {
                           geo.im2col(xs.p, n, g, &col);
                           // y[n, group g] (kg x p) = w[group g] (kg x q) col (q x p)
                           cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, kg, p, q, 1.f,
                                       ws.p + geo.filter_offset(g), q, col.data(), p, 0.f,
                                       sum.data() + geo.output_offset(n, g), p);
                         }
                       auto* ys = static_cast<float*>(y);
                       for (size_t i = 0; i < sum.size(); ++i) blend(&ys[i], sum[i], alpha_, beta_);
                     });
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnConvolutionBackwardData(cudnnHandle_t handle, const void* alpha, const cudnnFilterDescriptor_t wd,
                                           const void* w, const cudnnTensorDescriptor_t dyd, const void* dy,
                                           const cudnnConvolutionDescriptor_t cd, cudnnConvolutionBwdDataAlgo_t algo,
                                           void* workspace, size_t workspace_bytes, const void* beta,
                                           const cudnnTensorDescriptor_t dxd, void* dx) {
  std::string why;
  if (!conv_consistent(*dxd, *wd, *cd, *dyd, "cudnnConvolutionBackwardData", &why)) return bad(why);
  bool math_ok = true;
  const bool tf32 = runs_tf32(algo, *cd, "cudnnConvolutionBackwardData", &math_ok);
  if (!math_ok) return CUDNN_STATUS_NOT_SUPPORTED;
  if (!workspace_ok(algo, workspace, workspace_bytes, "cudnnConvolutionBackwardData") ||
      !device_data(w, wd->count() * 4, "cudnnConvolutionBackwardData w") ||
      !device_data(dy, dyd->count() * 4, "cudnnConvolutionBackwardData dy") ||
      !device_data(dx, dxd->count() * 4, "cudnnConvolutionBackwardData dx"))
    return memory_fault();
  // Descriptors and scalars as they are now: the call reads them before it returns.
  crema_emu::enqueue(handle->stream,
                     [=, wd_ = *wd, dyd_ = *dyd, cd_ = *cd, dxd_ = *dxd, alpha_ = scalar(alpha), beta_ = scalar(beta)] {
                       const ConvGeometry geo{dxd_, wd_, cd_, dyd_};
                       const int kg = geo.out_per_group(), q = geo.taps(), p = geo.positions();
                       const crema_emu::SingleThreadedBlas one_thread;
                       const Operand ws(w, wd_.count(), tf32), dys(dy, dyd_.count(), tf32);
                       std::vector<float> sum(dxd_.count(), 0.f), col(static_cast<size_t>(q) * p);
                       for (int n = 0; n < dyd_.n; ++n)
                         for (int g = 0; g < cd_.groups; ++g) {
                           // col (q x p) = w[group g]^T (q x kg) dy[n, group g] (kg x p), then back onto the image
                           cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, q, p, kg, 1.f,
                                       ws.p + geo.filter_offset(g), q, dys.p + geo.output_offset(n, g), p, 0.f,
                                       col.data(), p);
                           geo.col2im_add(col, n, g, sum.data());
                         }
                       auto* dxs = static_cast<float*>(dx);
                       for (size_t i = 0; i < sum.size(); ++i) blend(&dxs[i], sum[i], alpha_, beta_);
                     });
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnConvolutionBackwardFilter(cudnnHandle_t handle, const void* alpha, const cudnnTensorDescriptor_t xd,
                                             const void* x, const cudnnTensorDescriptor_t dyd, const void* dy,
                                             const cudnnConvolutionDescriptor_t cd,
                                             cudnnConvolutionBwdFilterAlgo_t algo, void* workspace,
                                             size_t workspace_bytes, const void* beta,
                                             const cudnnFilterDescriptor_t dwd, void* dw) {
  std::string why;
  if (!conv_consistent(*xd, *dwd, *cd, *dyd, "cudnnConvolutionBackwardFilter", &why)) return bad(why);
  bool math_ok = true;
  const bool tf32 = runs_tf32(algo, *cd, "cudnnConvolutionBackwardFilter", &math_ok);
  if (!math_ok) return CUDNN_STATUS_NOT_SUPPORTED;
  if (!workspace_ok(algo, workspace, workspace_bytes, "cudnnConvolutionBackwardFilter") ||
      !device_data(x, xd->count() * 4, "cudnnConvolutionBackwardFilter x") ||
      !device_data(dy, dyd->count() * 4, "cudnnConvolutionBackwardFilter dy") ||
      !device_data(dw, dwd->count() * 4, "cudnnConvolutionBackwardFilter dw"))
    return memory_fault();
  // Descriptors and scalars as they are now: the call reads them before it returns.
  crema_emu::enqueue(handle->stream,
                     [=, xd_ = *xd, dyd_ = *dyd, cd_ = *cd, dwd_ = *dwd, alpha_ = scalar(alpha), beta_ = scalar(beta)] {
                       const ConvGeometry geo{xd_, dwd_, cd_, dyd_};
                       const int kg = geo.out_per_group(), q = geo.taps(), p = geo.positions();
                       const crema_emu::SingleThreadedBlas one_thread;
                       const Operand xs(x, xd_.count(), tf32), dys(dy, dyd_.count(), tf32);
                       std::vector<float> sum(dwd_.count(), 0.f), col;
                       for (int n = 0; n < dyd_.n; ++n)
                         for (int g = 0; g < cd_.groups; ++g) {
                           geo.im2col(xs.p, n, g, &col);
                           // dw[group g] (kg x q) += dy[n, group g] (kg x p) col^T (p x q)
                           cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, kg, q, p, 1.f,
                                       dys.p + geo.output_offset(n, g), p, col.data(), p, 1.f,
                                       sum.data() + geo.filter_offset(g), q);
                         }
                       auto* dws = static_cast<float*>(dw);
                       for (size_t i = 0; i < sum.size(); ++i) blend(&dws[i], sum[i], alpha_, beta_);
                     });
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnConvolutionBackwardBias(cudnnHandle_t handle, const void* alpha, const cudnnTensorDescriptor_t dyd,
                                           const void* dy, const void* beta, const cudnnTensorDescriptor_t dbd,
                                           void* db) {
  if (!dyd->set || !dbd->set || dbd->n != 1 || dbd->c != dyd->c || dbd->h != 1 || dbd->w != 1)
    return bad("cudnnConvolutionBackwardBias: the bias must be 1 x C x 1 x 1 for dy's C");
  if (!device_data(dy, dyd->count() * 4, "cudnnConvolutionBackwardBias dy") ||
      !device_data(db, dbd->count() * 4, "cudnnConvolutionBackwardBias db"))
    return memory_fault();
  // Descriptors and scalars as they are now: the call reads them before it returns.
  crema_emu::enqueue(handle->stream, [=, dyd_ = *dyd, alpha_ = scalar(alpha), beta_ = scalar(beta)] {
    const auto* dys = static_cast<const float*>(dy);
    auto* dbs = static_cast<float*>(db);
    for (int c = 0; c < dyd_.c; ++c) {
      double sum = 0;
      for (int n = 0; n < dyd_.n; ++n)
        for (int h = 0; h < dyd_.h; ++h)
          for (int w = 0; w < dyd_.w; ++w) sum += dys[at(dyd_, n, c, h, w)];
      blend(&dbs[c], sum, alpha_, beta_);
    }
  });
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnAddTensor(cudnnHandle_t handle, const void* alpha, const cudnnTensorDescriptor_t ad, const void* a,
                             const void* beta, const cudnnTensorDescriptor_t cd, void* c) {
  const auto fits = [](int from, int to) { return from == 1 || from == to; };
  if (!ad->set || !cd->set || !fits(ad->n, cd->n) || !fits(ad->c, cd->c) || !fits(ad->h, cd->h) || !fits(ad->w, cd->w))
    return bad("cudnnAddTensor: A does not broadcast to C");
  if (!device_data(a, ad->count() * 4, "cudnnAddTensor A") || !device_data(c, cd->count() * 4, "cudnnAddTensor C"))
    return memory_fault();
  // Descriptors and scalars as they are now: the call reads them before it returns.
  crema_emu::enqueue(handle->stream, [=, ad_ = *ad, cd_ = *cd, alpha_ = scalar(alpha), beta_ = scalar(beta)] {
    const auto* as = static_cast<const float*>(a);
    auto* cs = static_cast<float*>(c);
    for (int n = 0; n < cd_.n; ++n)
      for (int ch = 0; ch < cd_.c; ++ch)
        for (int h = 0; h < cd_.h; ++h)
          for (int w = 0; w < cd_.w; ++w)
            blend(&cs[at(cd_, n, ch, h, w)],
                  as[at(ad_, ad_.n == 1 ? 0 : n, ad_.c == 1 ? 0 : ch, ad_.h == 1 ? 0 : h, ad_.w == 1 ? 0 : w)], alpha_,
                  beta_);
  });
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnSetPooling2dDescriptor(cudnnPoolingDescriptor_t d, cudnnPoolingMode_t mode, cudnnNanPropagation_t,
                                          int window_h, int window_w, int pad_h, int pad_w, int stride_h,
                                          int stride_w) {
  if (mode != CUDNN_POOLING_MAX && mode != CUDNN_POOLING_AVERAGE_COUNT_INCLUDE_PADDING &&
      mode != CUDNN_POOLING_AVERAGE_COUNT_EXCLUDE_PADDING)
    return CUDNN_STATUS_NOT_SUPPORTED;
  if (window_h <= 0 || window_w <= 0 || pad_h < 0 || pad_w < 0 || stride_h <= 0 || stride_w <= 0 || pad_h >= window_h ||
      pad_w >= window_w)
    return bad("cudnnSetPooling2dDescriptor: a bad window, padding or stride");
  *d = cudnnPoolingStruct{mode, window_h, window_w, pad_h, pad_w, stride_h, stride_w, true};
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnGetPooling2dForwardOutputDim(const cudnnPoolingDescriptor_t p, const cudnnTensorDescriptor_t x,
                                                int* n, int* c, int* h, int* w) {
  if (!p->set || !x->set) return bad("cudnnGetPooling2dForwardOutputDim: a descriptor was never set");
  *n = x->n;
  *c = x->c;
  *h = pool_out(x->h, p->pad_h, p->window_h, p->stride_h);
  *w = pool_out(x->w, p->pad_w, p->window_w, p->stride_w);
  return CUDNN_STATUS_SUCCESS;
}

namespace {
bool pool_consistent(const cudnnPoolingStruct& p, const cudnnTensorStruct& x, const cudnnTensorStruct& y,
                     const char* call) {
  if (p.set && x.set && y.set && y.n == x.n && y.c == x.c && y.h == pool_out(x.h, p.pad_h, p.window_h, p.stride_h) &&
      y.w == pool_out(x.w, p.pad_w, p.window_w, p.stride_w))
    return true;
  bad(std::string(call) + ": y's shape is not the pooling's output of x");
  return false;
}
}  // namespace

cudnnStatus_t cudnnPoolingForward(cudnnHandle_t handle, const cudnnPoolingDescriptor_t pd, const void* alpha,
                                  const cudnnTensorDescriptor_t xd, const void* x, const void* beta,
                                  const cudnnTensorDescriptor_t yd, void* y) {
  if (!pool_consistent(*pd, *xd, *yd, "cudnnPoolingForward")) return CUDNN_STATUS_BAD_PARAM;
  if (!device_data(x, xd->count() * 4, "cudnnPoolingForward x") ||
      !device_data(y, yd->count() * 4, "cudnnPoolingForward y"))
    return memory_fault();
  // Descriptors and scalars as they are now: the call reads them before it returns.
  crema_emu::enqueue(handle->stream,
                     [=, pd_ = *pd, xd_ = *xd, yd_ = *yd, alpha_ = scalar(alpha), beta_ = scalar(beta)] {
                       const auto* xs = static_cast<const float*>(x);
                       auto* ys = static_cast<float*>(y);
                       for (int n = 0; n < yd_.n; ++n)
                         for (int c = 0; c < yd_.c; ++c)
                           for (int oh = 0; oh < yd_.h; ++oh)
                             for (int ow = 0; ow < yd_.w; ++ow) {
                               const Window win = window(pd_, xd_, oh, ow);
                               double v = pd_.mode == CUDNN_POOLING_MAX ? -std::numeric_limits<double>::max() : 0.0;
                               for (int h = win.h0; h < win.h1; ++h)
                                 for (int w = win.w0; w < win.w1; ++w) {
                                   const double e = xs[at(xd_, n, c, h, w)];
                                   if (pd_.mode == CUDNN_POOLING_MAX) {
                                     if (e > v) v = e;  // a NaN is not propagated
                                   } else {
                                     v += e;
                                   }
                                 }
                               if (pd_.mode != CUDNN_POOLING_MAX) v /= average_divisor(pd_, win);
                               blend(&ys[at(yd_, n, c, oh, ow)], v, alpha_, beta_);
                             }
                     });
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnPoolingBackward(cudnnHandle_t handle, const cudnnPoolingDescriptor_t pd, const void* alpha,
                                   const cudnnTensorDescriptor_t yd, const void* y, const cudnnTensorDescriptor_t dyd,
                                   const void* dy, const cudnnTensorDescriptor_t xd, const void* x, const void* beta,
                                   const cudnnTensorDescriptor_t dxd, void* dx) {
  if (!pool_consistent(*pd, *xd, *yd, "cudnnPoolingBackward") ||
      !pool_consistent(*pd, *dxd, *dyd, "cudnnPoolingBackward"))
    return CUDNN_STATUS_BAD_PARAM;
  if (!device_data(y, yd->count() * 4, "cudnnPoolingBackward y") ||
      !device_data(dy, dyd->count() * 4, "cudnnPoolingBackward dy") ||
      !device_data(x, xd->count() * 4, "cudnnPoolingBackward x") ||
      !device_data(dx, dxd->count() * 4, "cudnnPoolingBackward dx"))
    return memory_fault();
  // Descriptors and scalars as they are now: the call reads them before it returns.
  crema_emu::enqueue(handle->stream, [=, pd_ = *pd, yd_ = *yd, dyd_ = *dyd, xd_ = *xd, dxd_ = *dxd,
                                      alpha_ = scalar(alpha), beta_ = scalar(beta)] {
    const auto* xs = static_cast<const float*>(x);
    const auto* ys = static_cast<const float*>(y);
    const auto* dys = static_cast<const float*>(dy);
    std::vector<double> sum(dxd_.count(), 0.0);
    for (int n = 0; n < yd_.n; ++n)
      for (int c = 0; c < yd_.c; ++c)
        for (int oh = 0; oh < yd_.h; ++oh)
          for (int ow = 0; ow < yd_.w; ++ow) {
            const Window win = window(pd_, xd_, oh, ow);
            const double g = dys[at(dyd_, n, c, oh, ow)];
            if (pd_.mode == CUDNN_POOLING_MAX) {
              // To the first element of the window equal to the output (the maximum).
              const float m = ys[at(yd_, n, c, oh, ow)];
              bool found = false;
              for (int h = win.h0; h < win.h1 && !found; ++h)
                for (int w = win.w0; w < win.w1 && !found; ++w)
                  if (xs[at(xd_, n, c, h, w)] == m) {
                    sum[at(dxd_, n, c, h, w)] += g;
                    found = true;
                  }
            } else {
              const double share = g / average_divisor(pd_, win);
              for (int h = win.h0; h < win.h1; ++h)
                for (int w = win.w0; w < win.w1; ++w) sum[at(dxd_, n, c, h, w)] += share;
            }
          }
    auto* dxs = static_cast<float*>(dx);
    for (size_t i = 0; i < sum.size(); ++i) blend(&dxs[i], sum[i], alpha_, beta_);
  });
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnSetLRNDescriptor(cudnnLRNDescriptor_t d, unsigned n, double alpha, double beta, double k) {
  if (n < CUDNN_LRN_MIN_N || n > CUDNN_LRN_MAX_N || k < CUDNN_LRN_MIN_K || beta < CUDNN_LRN_MIN_BETA)
    return bad("cudnnSetLRNDescriptor: lrnN " + std::to_string(n) + ", k " + std::to_string(k) + ", beta " +
               std::to_string(beta) + " outside cuDNN's limits");
  *d = cudnnLRNStruct{n, alpha, beta, k};
  return CUDNN_STATUS_SUCCESS;
}

namespace {
bool same_shape(const cudnnTensorStruct& a, const cudnnTensorStruct& b) {
  return b.set && a.n == b.n && a.c == b.c && a.h == b.h && a.w == b.w;
}

// k + alpha / N * (sum of x^2 over the channel window of c), cuDNN's window being
// [c - floor((N - 1) / 2), c + N - 1 - floor((N - 1) / 2)].
double lrn_scale(const cudnnLRNStruct& l, const cudnnTensorStruct& t, const float* x, int n, int c, int h, int w) {
  const int behind = static_cast<int>((l.n - 1) / 2), ahead = static_cast<int>(l.n) - 1 - behind;
  double sum = 0;
  for (int j = std::max(0, c - behind); j <= std::min(t.c - 1, c + ahead); ++j) {
    const double v = x[at(t, n, j, h, w)];
    sum += v * v;
  }
  return l.k + l.alpha / l.n * sum;
}
}  // namespace

cudnnStatus_t cudnnLRNCrossChannelForward(cudnnHandle_t handle, cudnnLRNDescriptor_t ld, cudnnLRNMode_t mode,
                                          const void* alpha, const cudnnTensorDescriptor_t xd, const void* x,
                                          const void* beta, const cudnnTensorDescriptor_t yd, void* y) {
  if (mode != CUDNN_LRN_CROSS_CHANNEL_DIM1) return CUDNN_STATUS_NOT_SUPPORTED;
  if (!xd->set || !same_shape(*xd, *yd)) return bad("cudnnLRNCrossChannelForward: x and y differ in shape");
  if (!device_data(x, xd->count() * 4, "cudnnLRNCrossChannelForward x") ||
      !device_data(y, yd->count() * 4, "cudnnLRNCrossChannelForward y"))
    return memory_fault();
  // Descriptors and scalars as they are now: the call reads them before it returns.
  crema_emu::enqueue(handle->stream, [=, ld_ = *ld, xd_ = *xd, alpha_ = scalar(alpha), beta_ = scalar(beta)] {
    const auto* xs = static_cast<const float*>(x);
    std::vector<double> out(xd_.count());
    for (int n = 0; n < xd_.n; ++n)
      for (int c = 0; c < xd_.c; ++c)
        for (int h = 0; h < xd_.h; ++h)
          for (int w = 0; w < xd_.w; ++w)
            out[at(xd_, n, c, h, w)] =
                xs[at(xd_, n, c, h, w)] * std::pow(lrn_scale(ld_, xd_, xs, n, c, h, w), -ld_.beta);
    auto* ys = static_cast<float*>(y);
    for (size_t i = 0; i < out.size(); ++i) blend(&ys[i], out[i], alpha_, beta_);
  });
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnLRNCrossChannelBackward(cudnnHandle_t handle, cudnnLRNDescriptor_t ld, cudnnLRNMode_t mode,
                                           const void* alpha, const cudnnTensorDescriptor_t yd, const void* y,
                                           const cudnnTensorDescriptor_t dyd, const void* dy,
                                           const cudnnTensorDescriptor_t xd, const void* x, const void* beta,
                                           const cudnnTensorDescriptor_t dxd, void* dx) {
  if (mode != CUDNN_LRN_CROSS_CHANNEL_DIM1) return CUDNN_STATUS_NOT_SUPPORTED;
  if (!xd->set || !same_shape(*xd, *yd) || !same_shape(*xd, *dyd) || !same_shape(*xd, *dxd))
    return bad("cudnnLRNCrossChannelBackward: the tensors differ in shape");
  const size_t bytes = xd->count() * 4;
  if (!device_data(y, bytes, "cudnnLRNCrossChannelBackward y") ||
      !device_data(dy, bytes, "cudnnLRNCrossChannelBackward dy") ||
      !device_data(x, bytes, "cudnnLRNCrossChannelBackward x") ||
      !device_data(dx, bytes, "cudnnLRNCrossChannelBackward dx"))
    return memory_fault();
  // Descriptors and scalars as they are now: the call reads them before it returns.
  crema_emu::enqueue(handle->stream, [=, ld_ = *ld, xd_ = *xd, alpha_ = scalar(alpha), beta_ = scalar(beta)] {
    const auto* xs = static_cast<const float*>(x);
    const auto* ys = static_cast<const float*>(y);
    const auto* dys = static_cast<const float*>(dy);
    const cudnnTensorStruct& t = xd_;
    const int behind = static_cast<int>((ld_.n - 1) / 2), ahead = static_cast<int>(ld_.n) - 1 - behind;
    std::vector<double> out(t.count());
    // dx_c = dy_c s_c^-beta - 2 alpha beta / N x_c sum over the j whose window holds c of
    // dy_j y_j / s_j, with y as given (cuDNN reads it, it does not recompute it).
    for (int n = 0; n < t.n; ++n)
      for (int h = 0; h < t.h; ++h)
        for (int w = 0; w < t.w; ++w)
          for (int c = 0; c < t.c; ++c) {
            double cross = 0;
            for (int j = std::max(0, c - ahead); j <= std::min(t.c - 1, c + behind); ++j)
              cross += static_cast<double>(dys[at(t, n, j, h, w)]) * ys[at(t, n, j, h, w)] /
                       lrn_scale(ld_, t, xs, n, j, h, w);
            const size_t i = at(t, n, c, h, w);
            out[i] = dys[i] * std::pow(lrn_scale(ld_, t, xs, n, c, h, w), -ld_.beta) -
                     2.0 * ld_.alpha * ld_.beta / ld_.n * xs[i] * cross;
          }
    auto* dxs = static_cast<float*>(dx);
    for (size_t i = 0; i < out.size(); ++i) blend(&dxs[i], out[i], alpha_, beta_);
  });
  return CUDNN_STATUS_SUCCESS;
}
