// What Convolution and Deconvolution share (Caffe's BaseConvolutionLayer): the
// convolution_param message, the geometry, the parameter blobs and the per-image
// matrix products. A convolution of one image with G groups is, per group g,
//   out_g (Co/G, S_out) = W_g (Co/G, Ci/G*kh*kw) · im2col(in)_g (Ci/G*kh*kw, S_out)
// Deconvolution runs the same products with forward and backward swapped, so the
// "conv input" (the image im2col reads) is its top; reverse_dimensions() says which.
// Only two spatial axes (4-D blobs with axis 1) are implemented.
#pragma once

#include <vector>

#include "engine/filler.hpp"
#include "engine/layer.hpp"
#include "layers/conv_shape.hpp"
#include "layers/engine_choice.hpp"
#include "layers/im2col.hpp"
#include "layers/onednn/onednn_conv.hpp"

#include <memory>

#ifdef CREMA_WITH_CUDA
#include "layers/cuda/cudnn_conv.hpp"
#endif

namespace crema {

struct ConvolutionParams {
  int num_output = 0;
  bool bias_term = true;
  // As written: empty (default), one value for every spatial axis, or one per axis;
  // kernel_h/kernel_w (likewise pad_*, stride_*) are stored here as two values.
  std::vector<int> kernel_size, pad, stride, dilation;
  int group = 1;
  int axis = 1;
  FillerSpec weight_filler, bias_filler;
  Engine engine = Engine::DEFAULT;  // on a GPU only cuDNN runs a convolution; CAFFE is refused there
  // The most workspace cuDNN's algorithms may use, in MiB; faster algorithms often need more.
  int cudnn_workspace_limit_mb = 512;

  // Im2col reads the same message without num_output.
  static ConvolutionParams parse(MapReader r, bool needs_num_output = true);
  // Kernel, pad, stride and dilation per spatial axis (two axes; channels and size
  // left 0); fails at `spec` when a value list does not fit two axes.
  ConvGeometry spatial_geometry(const LayerSpec& spec) const;
};

// Convolution's output size (out_h, out_w) for geometry `g` on an in_h x in_w image;
// fails at `spec` when the kernel does not fit the padded image.
std::vector<int> conv_output_size(ConvGeometry g, int in_h, int in_w, const LayerSpec& spec);

class BaseConvolutionLayer : public Layer {
 public:
  explicit BaseConvolutionLayer(const LayerSpec& spec);
  // Bottom i → top i, all with the same weights.
  int min_bottom() const override { return 1; }
  int min_top() const override { return 1; }
  void reshape(const BlobVec& bottom, const BlobVec& top) override;
  bool supports(const Device& d) const override { return cpu_or_cuda(d); }
  // Whether the CPU runs oneDNN (after reshape), and how many times it built
  // primitives (once per distinct shape).
  bool uses_onednn() const { return use_onednn_; }
  int onednn_builds() const { return onednn_ ? onednn_->builds() : 0; }
#ifdef CREMA_WITH_CUDA
  // How many times cuDNN algorithms were chosen (once per distinct shape); 0 before
  // the first GPU forward.
  int cudnn_algorithm_searches() const { return cudnn_ ? cudnn_->algorithm_searches() : 0; }
#endif

 protected:
  void layer_setup(Context& ctx, const BlobVec& bottom, const BlobVec& top) override;
  // false: Convolution; true: Deconvolution (im2col works on the top).
  virtual bool reverse_dimensions() const = 0;
  // Output spatial size (out_h, out_w) from geometry_ kernel/pad/stride/dilation and
  // the bottom's spatial size.
  virtual std::vector<int> output_spatial_shape(int in_h, int in_w) const = 0;

  // Every bottom through the products, forward and backward swapped when reversed.
  void forward_cpu(Context& ctx, const BlobVec& bottom, const BlobVec& top) override;
  void backward_cpu(Context& ctx, const BlobVec& top, const std::vector<bool>& propagate_down,
                    const BlobVec& bottom) override;
#ifdef CREMA_WITH_CUDA
  // cuDNN on the whole batch of each bottom, forward and backward swapped when reversed.
  void forward_gpu(Context& ctx, const BlobVec& bottom, const BlobVec& top) override;
  void backward_gpu(Context& ctx, const BlobVec& top, const std::vector<bool>& propagate_down,
                    const BlobVec& bottom) override;
#endif

  // The whole convolution of this shape, as cuDNN and oneDNN take it (set by reshape).
  ConvShape conv_shape() const;
  // Forward and backward through oneDNN, forward and backward swapped when reversed.
  void forward_onednn(const BlobVec& bottom, const BlobVec& top);
  void backward_onednn(const BlobVec& top, const std::vector<bool>& propagate_down, const BlobVec& bottom);

  // The per-image products. `input` is the conv input (what im2col reads), `output`
  // the conv output, whichever of bottom/top each is.
  // The conv input as a column matrix, in col_buffer_ (or the input itself for 1x1).
  const float* columns(const float* input);
  // output (Co, S_out) = W · im2col(input)
  void forward_gemm(const float* input, const float* weights, float* output);
  // output (Co, S_out) += bias (Co) on every position
  void forward_bias(float* output, const float* bias) const;
  // input_diff (Ci, H, W) = col2im(Wᵀ · output_diff)
  void backward_gemm(const float* output_diff, const float* weights, float* input_diff);
  // weight_diff (Co, Ci/G, kh, kw) += output_diff · im2col(input)ᵀ
  void weight_gemm(const float* input, const float* output_diff, float* weight_diff);
  // bias_diff (Co) += output_diff summed over positions
  void backward_bias(float* bias_diff, const float* output_diff) const;

  // Kernel, pad, stride and dilation per spatial axis; channels/height/width are the
  // conv input's (set by reshape).
  const ConvGeometry& geometry() const { return geometry_; }

  ConvolutionParams params_;
  int axis_ = 1;                      // the channel axis, canonical
  int channels_ = 0;                  // channels of the bottom
  int num_ = 0;                       // images per bottom: the product of the axes before `axis`
  int bottom_dim_ = 0, top_dim_ = 0;  // floats per image in a bottom / top
  int out_spatial_dim_ = 0;           // positions per channel of the top

 private:
  ConvGeometry geometry_;
  int conv_in_channels_ = 0, conv_out_channels_ = 0;
  int conv_out_spatial_dim_ = 0;                                // columns of the column buffer
  int kernel_dim_ = 0;                                          // rows of the column buffer per group: Ci/G*kh*kw
  int weight_offset_ = 0, col_offset_ = 0, output_offset_ = 0;  // per-group strides
  // 1x1 kernel, stride 1, no padding: im2col would be a copy, so it is skipped.
  bool is_1x1_ = false;
  Blob col_buffer_;  // (Ci*kh*kw, S_out); the reference only
  // oneDNN's primitives on the CPU, made at setup for engine DEFAULT or ONEDNN;
  // use_onednn_ is false (DEFAULT only) while the shape is one oneDNN cannot compute.
  std::unique_ptr<onednn::Convolution> onednn_;
  bool use_onednn_ = false;
  bool bf16_ = false;  // precision: bf16 (oneDNN only)
#ifdef CREMA_WITH_CUDA
  // The current shape for cuDNN (the conv's own input/output view); chooses the
  // algorithms again only when the shape changed since the last call.
  cuda::CudnnConvolution& cudnn(Context& ctx);
  std::unique_ptr<cuda::CudnnConvolution> cudnn_;
#endif
};

}  // namespace crema
