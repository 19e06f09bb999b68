// NhwcConv (domain "engine", made by the lower-onednn pass): a float32 2-D Conv / FusedConv on
// channels-last activations. Inputs: X [N,H,W,C], W [M,C/group,kH,kW] (ONNX layout, constant),
// optional B [M] (constant), optional Sum [N,OH,OW,M]; output Y [N,OH,OW,M] =
// act(conv(X, W) + B + Sum), with FusedConv's attributes (activation, act_alpha, act_beta).
//
// prepare builds the oneDNN convolution once per shape with weights in the layout oneDNN chose
// (format_tag::any), reordered once; bias copied once; Sum as a sum post-op and the activation
// as eltwise post-ops, so the whole node is one primitive call.
//
// Except where our own AVX-512F kernels are faster (see own_kernel below): a 1x1 conv (no
// padding, one group) with no activation, Relu or Clip that adds a residual Sum or has a stride
// runs on backends/x86/f32_gemm.h. oneDNN 2.6's NHWC 1x1 kernel is up to 60 % slower with a sum
// post-op than without (resnet50's 56x56 blocks: 3.5 ms instead of 2.2 ms per 4 images on one
// core); ours prefetches the Sum lines and reads them in place, at the cost without a Sum. With
// a stride (resnets' downsample convs) oneDNN's kernel is slow too; ours gathers the strided
// pixels of each chunk of rows into a small buffer first. And larger kernels on small maps (the
// resnets' 7x7 stage at batch 1) run on f32_conv, which reads each weight from memory once.
#include <cstring>
#include <limits>

#include "backends/onednn/onednn.h"
#include "backends/registry.h"
#include "backends/x86/f32_gemm.h"
#include "ops/activation_fn.h"
#include "ops/conv_geom.h"

namespace engine::onednn {
namespace {

using tag = dnnl::memory::format_tag;
using dt = dnnl::memory::data_type;

// The clamp bounds of activation a for the own kernels: false when they cannot apply it.
bool own_bounds(const Activation& a, float& lo, float& hi) {
  lo = -std::numeric_limits<float>::infinity(), hi = std::numeric_limits<float>::infinity();
  switch (a.kind) {
    case ActKind::None:
      return true;
    case ActKind::Relu:
      lo = 0.0f;
      return true;
    case ActKind::Clip:  // min(beta, max(alpha, v)): the same as Clip when alpha > beta too
      lo = a.alpha, hi = a.beta;
      return true;
    default:
      return false;
  }
}

// Which own kernel runs conv g (float32, NHWC), if any (with its clamp bounds in lo / hi).
// - Gemm (x86::f32_gemm): 1x1 convs with a Sum and at least 256 output pixels, or strided. Below
//   256 pixels each weight is used by few rows and comes from memory, which oneDNN streams better
//   than this row-chunk GEMM (resnet50's 7x7 layers at batch 1: 0.43 ms against 0.36 ms), and
//   oneDNN's sum penalty is small. Strided convs at any size (resnet18's 7x7 downsample conv, 4
//   images, one core: 0.33 ms against 0.39 ms; at batch 1 no slower).
// - Conv (x86::f32_conv): larger kernels with at most kSmallRows output pixels in the batch,
//   where weight traffic dominates and f32_conv reads each weight from memory once. resnet18 /
//   resnet50's 7x7 3x3 convs at batch 1, two threads: 0.65-0.70 ms against 0.76-0.92 ms. Not
//   above: 14x14 at batch 1 (196 rows) was 5-10 % slower than oneDNN, 7x7 at batch 4 equal, at
//   batch 8 12 % slower.
enum class Own { None, Gemm, Conv };
constexpr int64_t kSmallRows = 64;

Own own_kernel(const ConvGeom& g, bool has_sum, const Activation& a, float& lo, float& hi) {
  if (g.nsp != 2 || g.group != 1 || g.C <= 0 || g.M <= 0 || !x86::f32_kernels_available() ||
      !own_bounds(a, lo, hi))
    return Own::None;
  const bool strided = g.s[1] > 1 || g.s[2] > 1;
  const bool unpadded = g.pb[1] == 0 && g.pb[2] == 0 && g.pe[1] == 0 && g.pe[2] == 0;
  const int64_t rows = g.N * g.out_size();
  if (g.k_size() == 1 && unpadded && (strided || (has_sum && rows >= 256))) return Own::Gemm;
  if (g.k_size() > 1 && g.d[1] == 1 && g.d[2] == 1 && rows <= kSmallRows) return Own::Conv;
  return Own::None;
}

struct ConvState : WeightedPrimitive {
  bool has_sum = false;
  // The own paths (no oneDNN primitive): packed weights and bias, clamp bounds, geometry.
  Own own = Own::None;
  Tensor w_own, b_own;
  float lo = 0, hi = 0;
  int64_t sh = 1, sw = 1, kh = 1, kw = 1, pt = 0, pl = 0;
};

ConvGeom geometry(const Node& n, const Dims& x_nhwc, const Dims& w) {
  nchw_dims_of_nhwc(x_nhwc, "NhwcConv: input X");
  ENGINE_CHECK(w.size() == 4, "NhwcConv: weights must have rank 4, got ", dims_str(w));
  return conv_geometry(n, nhwc_to_nchw(x_nhwc), w);
}

void infer(InferContext& ctx) {
  ENGINE_CHECK(ctx.dtype(0) == DType::F32 && ctx.dtype(1) == DType::F32,
               "NhwcConv: X and W must be float32");
  const ConvGeom g = geometry(ctx.node(), ctx.shape(0), ctx.shape(1));
  ENGINE_CHECK(g.nsp == 2, "NhwcConv: only 2-D convolutions");
  if (ctx.has_input(2))
    ENGINE_CHECK(ctx.shape(2) == Dims{g.M}, "NhwcConv: bias must have shape [", g.M, "], got ",
                 dims_str(ctx.shape(2)));
  const Dims y = nchw_to_nhwc(g.out_shape());
  if (ctx.has_input(3))
    ENGINE_CHECK(ctx.shape(3) == y, "NhwcConv: Sum (input 3) must have the output shape ",
                 dims_str(y), ", got ", dims_str(ctx.shape(3)));
  ctx.set_output(0, DType::F32, y);
}

std::shared_ptr<const void> prepare(const InferContext& ctx) {
  const Node& n = ctx.node();
  const Dims& w = ctx.shape(1);
  const ConvGeom g = geometry(n, ctx.shape(0), w);
  const Tensor* wt = ctx.value_or_null(1);
  ENGINE_CHECK(wt, "NhwcConv: weights must be a constant");
  auto st = std::make_shared<ConvState>();
  st->has_sum = ctx.has_input(3);
  st->own = own_kernel(g, st->has_sum, activation_from_attrs(n.attrs), st->lo, st->hi);
  if (st->own != Own::None) {
    st->sh = g.s[1], st->sw = g.s[2], st->kh = g.k[1], st->kw = g.k[2];
    st->pt = g.pb[1], st->pl = g.pb[2];
    st->w_own = x86::f32_conv_pack(wt->data<float>(), g.M, g.C, g.k[1], g.k[2]);
    const dnnl::memory b = constant_bias(ctx, 2, g.M, "NhwcConv");
    st->b_own = x86::f32_gemm_bias(static_cast<const float*>(b.get_data_handle()), g.M);
    return st;
  }
  const dnnl::memory::dims src{g.N, g.C, g.in[1], g.in[2]}, dst{g.N, g.M, g.out[1], g.out[2]};
  st->src_md = dnnl::memory::desc(src, dt::f32, tag::nhwc);
  st->dst_md = dnnl::memory::desc(dst, dt::f32, tag::nhwc);
  const bool grouped = g.group > 1;
  const dnnl::memory::dims wdims =
      grouped ? dnnl::memory::dims{g.group, g.M / g.group, w[1], w[2], w[3]}
              : dnnl::memory::dims{w[0], w[1], w[2], w[3]};
  const dnnl::memory::desc w_any(wdims, dt::f32, tag::any);
  const dnnl::memory::desc b_md({g.M}, dt::f32, tag::x);
  const dnnl::memory::dims strides{g.s[1], g.s[2]}, dil{g.d[1] - 1, g.d[2] - 1},
      pl{g.pb[1], g.pb[2]}, pr{g.pe[1], g.pe[2]};

  dnnl::primitive_attr attr = base_attr();
  dnnl::post_ops po;
  // The residual Sum as a sum post-op (dst += conv): the kernel first puts Sum in dst, and the
  // memory planner usually makes that free by giving Sum and Y one buffer (inplace_input = 3).
  // (A binary-add post-op reading Sum in place would avoid the copy, but oneDNN 2.6 then leaves
  // its fast brgconv kernels for the slower jit ones.)
  if (st->has_sum) po.append_sum(1.0f);
  append_activation(po, activation_from_attrs(n.attrs));
  attr.set_post_ops(po);

  const dnnl::convolution_forward::desc d(dnnl::prop_kind::forward_inference,
                                          dnnl::algorithm::convolution_direct, st->src_md, w_any,
                                          b_md, st->dst_md, strides, dil, pl, pr);
  const dnnl::convolution_forward::primitive_desc pd(d, attr, cpu_engine());
  st->prim = dnnl::convolution_forward(pd);
  st->scratch_md = pd.scratchpad_desc();

  // Weights: ONNX OIHW (goihw when grouped) -> oneDNN's chosen layout, once.
  const dnnl::memory::desc w_user(wdims, dt::f32, grouped ? tag::goihw : tag::oihw);
  st->weights = shared_weights(*wt, w_user, pd.weights_desc());
  st->bias = constant_bias(ctx, 2, g.M, "NhwcConv");
  return st;
}

void kernel(KernelContext& kc) {
  const auto* st = static_cast<const ConvState*>(kc.state);
  ENGINE_CHECK(st, "NhwcConv: not prepared");
  if (st->own != Own::None) {
    const Tensor& x = kc.in(0);
    Tensor& y = kc.out(0);
    const int64_t H = x.shape()[1], W = x.shape()[2], C = x.shape()[3], M = y.shape()[3];
    x86::F32Gemm g;
    g.a = x.data<float>(), g.lda = g.K = C;
    g.w = st->w_own.data<float>(), g.bias = st->b_own.data<float>();
    g.N = M, g.lo = st->lo, g.hi = st->hi;
    g.c = y.data<float>(), g.ldc = M;
    if (st->has_sum) g.sum = kc.in(3).data<float>(), g.lds = M;
    if (st->own == Own::Conv) {
      x86::F32Conv cv;
      cv.g = g, cv.g.K = st->kh * st->kw * C;
      cv.x = x.data<float>(), cv.n = x.shape()[0], cv.h = H, cv.w = W, cv.c = C;
      cv.kh = st->kh, cv.kw = st->kw, cv.sh = st->sh, cv.sw = st->sw, cv.pt = st->pt,
      cv.pl = st->pl, cv.oh = y.shape()[1], cv.ow = y.shape()[2];
      x86::f32_conv_parallel(cv, kc.num_threads);
      return;
    }
    if (st->sh > 1 || st->sw > 1) {  // output pixel (n, y, x) reads input pixel (n, sh y, sw x)
      g.map_h = y.shape()[1], g.map_w = y.shape()[2];
      g.a_image = H * W * C, g.a_row = st->sh * W * C, g.lda = st->sw * C;
    }
    x86::f32_gemm_parallel(g, y.numel() / M, kc.num_threads);
    return;
  }
  if (st->has_sum && kc.in(3).raw() != kc.out(0).raw())
    std::memcpy(kc.out(0).raw(), kc.in(3).raw(), kc.out(0).nbytes());
  st->run(kc.in(0), kc.out(0));
}

}  // namespace

void register_onednn_conv(OpRegistry& r) {
  OpSchema s;
  s.op_type = "NhwcConv";
  s.domain = "engine";
  s.min_inputs = 2;
  s.max_inputs = 4;
  s.validate = [](const Node& n) {
    conv_validate_attrs(n);
    activation_from_attrs(n.attrs);
  };
  s.infer = infer;
  s.prepare = prepare;
  s.kernel = kernel;
  s.inplace_input = 3;
  r.add(std::move(s));
}

}  // namespace engine::onednn
