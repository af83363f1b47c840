// The logistic function as Caffe computes it, 0.5 tanh(x / 2) + 0.5, which cannot
// overflow for large |x|. Shared by the layers that apply a sigmoid inside
// (Swish, SigmoidCrossEntropyLoss).
#pragma once

#include <cmath>

namespace crema {

inline float sigmoid(float x) { return 0.5f * std::tanh(0.5f * x) + 0.5f; }

}  // namespace crema
