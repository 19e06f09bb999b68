// The one place that says which kernels run on this CPU (`engine inspect --kernels`): CPU
// features, the integer GEMM / requantization path (ops/igemm.h; ENGINE_ISA forces a lower one)
// and the oneDNN version and instruction set used for float convolutions, pools and inner
// products (ONEDNN_MAX_CPU_ISA limits it).
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace engine {

// (what, choice) rows in display order.
std::vector<std::pair<std::string, std::string>> kernel_selection();

}  // namespace engine
