// What the layers ask of oneDNN without including its headers.
#pragma once

#include <string>

namespace crema::onednn {

// "" where this CPU computes bf16 products natively (AVX512-BF16 or AMX), else why not.
std::string bf16_unsupported();

}  // namespace crema::onednn
