// What the layers ask of oneDNN without including its headers.
#pragma once

#include <string>

namespace crema::onednn {

// "" where this CPU computes bf16 products natively (AVX512-BF16 or AMX), else why not.
std::string bf16_unsupported();

// Whether oneDNN's name of an implementation ("ref:any", "lrn_ref:any", "jit:avx512_core") is
// its reference code, which is correct but slow.
bool is_reference(const std::string& implementation);

}  // namespace crema::onednn
