// Shared plumbing of the oneDNN backend (oneDNN 2.6, OpenMP runtime): the CPU engine, execution
// with a per-thread stream and a caller-owned scratchpad, and dims conversion.
//
// Primitives are created once per execution plan (OpSchema::prepare) with
// scratchpad_mode::user, so one primitive can run on several threads at once: each call brings
// its own scratchpad (a per-thread buffer) and its own memory handles. The thread count is
// OpenMP's, which the executor sets per run.
#pragma once

#include <memory>
#include <oneapi/dnnl/dnnl.hpp>
#include <unordered_map>

#include "core/op_registry.h"
#include "core/tensor.h"
#include "ops/activation_fn.h"

namespace engine::onednn {

dnnl::engine& cpu_engine();

// Attributes every primitive of this backend starts from (user scratchpad).
dnnl::primitive_attr base_attr();

// Runs p; adds DNNL_ARG_SCRATCHPAD from a per-thread buffer of scratchpad_md's size.
void execute(const dnnl::primitive& p, std::unordered_map<int, dnnl::memory> args,
             const dnnl::memory::desc& scratchpad_md);

// A memory object over a tensor's buffer (no copy).
dnnl::memory wrap(const dnnl::memory::desc& md, const Tensor& t);

// Post-ops computing a fused node's activation (ops/activation_fn.h) after the primitive.
void append_activation(dnnl::post_ops& po, const Activation& a);

// Constant weights `w` (layout user_md) reordered into layout md. Plans of different input shapes
// that want the same layout share one copy (a process-wide cache keyed by the weights' address
// and md, holding weak references): a model run at many batch sizes keeps one reordered copy of
// vgg16's 550 MB of weights, not one per shape.
std::shared_ptr<const dnnl::memory> shared_weights(const Tensor& w,
                                                   const dnnl::memory::desc& user_md,
                                                   const dnnl::memory::desc& md);

// A primitive with constant weights and bias (convolution, inner product), built by an op's
// prepare: run() binds the activations and executes it.
struct WeightedPrimitive {
  dnnl::primitive prim;
  dnnl::memory::desc src_md, dst_md, scratch_md;
  std::shared_ptr<const dnnl::memory> weights;
  dnnl::memory bias;
  void run(const Tensor& src, Tensor& dst) const;
};

// The bias of n values from constant input `input` of ctx (float32), or zeros when the input is
// omitted. `op` names the op in errors.
dnnl::memory constant_bias(const InferContext& ctx, int input, int64_t n, const char* op);

// NHWC shape [N,H,W,C] -> oneDNN logical dims {N,C,H,W}; checks rank 4.
dnnl::memory::dims nchw_dims_of_nhwc(const Dims& nhwc, const char* what);
// [N,C,H,W] -> [N,H,W,C] and back.
Dims nchw_to_nhwc(const Dims& d);
Dims nhwc_to_nchw(const Dims& d);

}  // namespace engine::onednn
