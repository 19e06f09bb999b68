#include "ops/ops.h"

namespace engine {

void register_reference_ops(OpRegistry& r) {
  register_identity_ops(r);
  register_elementwise_ops(r);
  register_activation_ops(r);
  register_reduce_ops(r);
  register_conv_ops(r);
  register_gemm_ops(r);
  register_pool_ops(r);
  register_norm_ops(r);
  register_pad_resize_ops(r);
  register_shape_ops(r);
  register_quantize_linear_ops(r);
  register_qconv_ops(r);
  register_qgemm_ops(r);
  register_qelementwise_ops(r);
  register_qpool_ops(r);
}

const OpRegistry& reference_registry() {
  static const OpRegistry reg = [] {
    OpRegistry r;
    register_reference_ops(r);
    return r;
  }();
  return reg;
}

}  // namespace engine
