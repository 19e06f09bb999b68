// The registry the engine runs with: every reference kernel (ops/) plus the fast backends'
// kernels (backends/onednn and backends/x86: the NHWC ops made by the lower-onednn pass).
#pragma once

#include "core/op_registry.h"

namespace engine {

const OpRegistry& engine_registry();

namespace onednn {
void register_onednn_conv(OpRegistry& r);           // backends/onednn/conv.cpp: NhwcConv
void register_onednn_pool(OpRegistry& r);           // backends/onednn/pool.cpp: NhwcMaxPool, ...
void register_onednn_inner_product(OpRegistry& r);  // inner_product.cpp: DnnlGemm
}  // namespace onednn

namespace x86 {
void register_x86_int8(OpRegistry& r);    // backends/x86/nhwc_qconv.cpp: NhwcQConv
void register_x86_mbconv(OpRegistry& r);  // backends/x86/nhwc_mbconv.cpp: NhwcMBConv
void register_x86_stem(OpRegistry& r);    // backends/x86/nhwc_stem.cpp: NhwcStem
}  // namespace x86

}  // namespace engine
