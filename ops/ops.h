// Reference operators. Each ops/<name>.cpp defines register_<name>(OpRegistry&) which adds the
// op's schema (validation, shape inference, reference kernel). register_reference_ops adds all.
#pragma once

#include "core/op_registry.h"

namespace engine {

// Shared by every command: the registry holding all reference kernels.
const OpRegistry& reference_registry();
void register_reference_ops(OpRegistry& r);

// One function per op family file.
void register_elementwise_ops(OpRegistry& r);  // ops/elementwise.cpp: unary + binary math, Cast
void register_activation_ops(OpRegistry& r);   // ops/activation.cpp: Relu ... Softmax
void register_reduce_ops(OpRegistry& r);       // ops/reduce.cpp: ReduceMean ...
void register_conv_ops(OpRegistry& r);         // ops/conv.cpp: Conv, ConvTranspose
void register_gemm_ops(OpRegistry& r);         // ops/gemm.cpp: Gemm, MatMul
void register_pool_ops(OpRegistry& r);         // ops/pool.cpp: Max/Average/Global pools
void register_norm_ops(OpRegistry& r);         // ops/batchnorm.cpp: BatchNormalization
void register_pad_resize_ops(OpRegistry& r);   // ops/pad_resize.cpp: Pad, Resize, Upsample
void register_shape_ops(OpRegistry& r);        // ops/shape_ops.cpp: Reshape, Transpose, ...
void register_identity_ops(OpRegistry& r);     // ops/identity.cpp: Identity, Dropout
// Integer ops (see quant/fixedpoint.h for the requantization math).
void register_quantize_linear_ops(OpRegistry& r);  // ops/quantize_linear.cpp: Q/DQ
void register_qconv_ops(OpRegistry& r);            // ops/qconv.cpp: QConv, QLinearConv, ConvInteger
void register_qgemm_ops(OpRegistry& r);  // ops/qgemm.cpp: QGemm, QLinearMatMul, MatMulInteger
void register_qelementwise_ops(OpRegistry& r);  // ops/qelementwise.cpp: QAdd, QMul, QConcat, QLut
void register_qpool_ops(OpRegistry& r);         // ops/qpool.cpp: QAveragePool, QGlobalAveragePool

}  // namespace engine
