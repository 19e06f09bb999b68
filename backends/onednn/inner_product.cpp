// DnnlGemm (domain "engine", made by the lower-onednn pass): a float32 Gemm / FusedGemm with
// constant weights on oneDNN's inner product: Y [M,N] = act(A [M,K] x B + C), with B constant
// ([K,N], or [N,K] when transB = 1), C absent or a constant of N values, alpha = beta = 1 and
// transA = 0 (the pass lowers nothing else). Weights reordered once per plan into oneDNN's
// layout, so large classifier layers (vgg16's 25088 x 4096) are not repacked on every run.

#include "backends/onednn/onednn.h"
#include "backends/registry.h"
#include "ops/activation_fn.h"

namespace engine::onednn {
namespace {

using tag = dnnl::memory::format_tag;
using dt = dnnl::memory::data_type;

using IpState = WeightedPrimitive;

struct Dims3 {
  int64_t M, K, N;
};

Dims3 geometry(const InferContext& ctx) {
  const Dims &a = ctx.shape(0), &b = ctx.shape(1);
  ENGINE_CHECK(a.size() == 2 && b.size() == 2, "DnnlGemm: A and B must be 2-D, got ", dims_str(a),
               " and ", dims_str(b));
  const bool tb = ctx.attrs().get_int("transB", 0) != 0;
  const Dims3 d{a[0], a[1], tb ? b[0] : b[1]};
  ENGINE_CHECK((tb ? b[1] : b[0]) == d.K, "DnnlGemm: A ", dims_str(a), " and B ", dims_str(b),
               " (transB=", tb, ") do not multiply");
  if (ctx.has_input(2))
    ENGINE_CHECK(checked_numel(ctx.shape(2)) == d.N, "DnnlGemm: C must hold ", d.N,
                 " values, got shape ", dims_str(ctx.shape(2)));
  return d;
}

void infer(InferContext& ctx) {
  ENGINE_CHECK(ctx.dtype(0) == DType::F32 && ctx.dtype(1) == DType::F32,
               "DnnlGemm: A and B must be float32");
  const Dims3 d = geometry(ctx);
  ctx.set_output(0, DType::F32, {d.M, d.N});
}

std::shared_ptr<const void> prepare(const InferContext& ctx) {
  const Dims3 d = geometry(ctx);
  const Tensor* bt = ctx.value_or_null(1);
  ENGINE_CHECK(bt, "DnnlGemm: B must be a constant");
  auto st = std::make_shared<IpState>();
  st->src_md = dnnl::memory::desc({d.M, d.K}, dt::f32, tag::nc);
  st->dst_md = dnnl::memory::desc({d.M, d.N}, dt::f32, tag::nc);
  const dnnl::memory::desc w_any({d.N, d.K}, dt::f32, tag::any);
  const dnnl::memory::desc b_md({d.N}, dt::f32, tag::x);
  dnnl::primitive_attr attr = base_attr();
  dnnl::post_ops po;
  append_activation(po, activation_from_attrs(ctx.attrs()));
  attr.set_post_ops(po);
  const dnnl::inner_product_forward::desc desc(dnnl::prop_kind::forward_inference, st->src_md,
                                               w_any, b_md, st->dst_md);
  const dnnl::inner_product_forward::primitive_desc pd(desc, attr, cpu_engine());
  st->prim = dnnl::inner_product_forward(pd);
  st->scratch_md = pd.scratchpad_desc();
  // oneDNN weights are logically [N, K] ("oi"); B [K, N] is the "io" layout of the same.
  const bool tb = ctx.attrs().get_int("transB", 0) != 0;
  const dnnl::memory::desc w_user({d.N, d.K}, dt::f32, tb ? tag::oi : tag::io);
  st->weights = shared_weights(*bt, w_user, pd.weights_desc());
  st->bias = constant_bias(ctx, 2, d.N, "DnnlGemm");
  return st;
}

void kernel(KernelContext& kc) {
  const auto* st = static_cast<const IpState*>(kc.state);
  ENGINE_CHECK(st, "DnnlGemm: not prepared");
  st->run(kc.in(0), kc.out(0));
}

}  // namespace

void register_onednn_inner_product(OpRegistry& r) {
  OpSchema s;
  s.op_type = "DnnlGemm";
  s.domain = "engine";
  s.min_inputs = 2;
  s.max_inputs = 3;
  s.validate = [](const Node& n) { activation_from_attrs(n.attrs); };
  s.infer = infer;
  s.prepare = prepare;
  s.kernel = kernel;
  r.add(std::move(s));
}

}  // namespace engine::onednn
