// oneDNN convolution for Convolution and Deconvolution on the CPU, behind a plain
// interface (the layers do not include oneDNN's headers). As with cuDNN, the
// convolution is described from its own point of view (layers/conv_shape.hpp):
// Deconvolution runs forward as backward_data and backward_data as forward.
// Primitives are built once per shape with the layouts oneDNN prefers and kept
// until the shape changes. Filters and biases are the caller's plain (Co, Ci/G, kh,
// kw) and (Co) buffers; activations are blob memories, (N, C, H, W) when read plain,
// which may arrive in and are left in oneDNN's blocked layouts (onednn_common.hpp).
#pragma once

#include <memory>
#include <string>

#include "engine/synced_memory.hpp"
#include "layers/conv_shape.hpp"

namespace crema::onednn {

class Convolution {
 public:
  Convolution();
  ~Convolution();
  Convolution(const Convolution&) = delete;
  Convolution& operator=(const Convolution&) = delete;

  // Builds the primitives for `shape` (with a bias on the conv output when
  // `with_bias`) unless they are built for it already. Returns "" or, when oneDNN
  // cannot compute this convolution, why.
  // With `bf16`, the input, filter and output gradient are rounded to bfloat16; the
  // products accumulate, and outputs and gradients stay, in fp32.
  std::string prepare(const ConvShape& shape, bool with_bias, bool bf16 = false);
  // How many times prepare() built primitives (tests: once per distinct shape).
  int builds() const;

  // output (num, Co, OH, OW) = conv(input (num, Ci, H, W), filter) [+ bias (Co)], overwritten
  void forward(SyncedMemory& input, const float* filter, const float* bias, SyncedMemory& output);
  // input_diff (num, Ci, H, W) = convᵀ(output_diff (num, Co, OH, OW), filter), overwritten
  void backward_data(SyncedMemory& output_diff, const float* filter, SyncedMemory& input_diff);
  // filter_diff (Co, Ci/G, kh, kw) += from input and output_diff; bias_diff (Co) +=
  // output_diff summed over (num, OH, OW) when not null (needs with_bias).
  void backward_weights(SyncedMemory& input, SyncedMemory& output_diff, float* filter_diff, float* bias_diff);
  // Both gradients of a convolution after forward(input): input_diff as backward_data
  // (skipped when null), then filter_diff and bias_diff as backward_weights (skipped
  // when both are null). Copies to oneDNN's layouts made for forward's input and for
  // the data gradient's output_diff are reused where the layouts agree, so `input`
  // must hold what it held at forward, as Caffe's backward assumes.
  void backward(SyncedMemory& input, SyncedMemory& output_diff, const float* filter, float* filter_diff,
                float* bias_diff, SyncedMemory* input_diff);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace crema::onednn
