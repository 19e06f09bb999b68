#include "backends/registry.h"

#include "ops/ops.h"

namespace engine {

const OpRegistry& engine_registry() {
  static const OpRegistry reg = [] {
    OpRegistry r;
    register_reference_ops(r);
    onednn::register_onednn_conv(r);
    onednn::register_onednn_pool(r);
    onednn::register_onednn_inner_product(r);
    x86::register_x86_int8(r);
    x86::register_x86_mbconv(r);
    x86::register_x86_stem(r);
    return r;
  }();
  return reg;
}

}  // namespace engine
