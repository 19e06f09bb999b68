// NhwcMBConv (domain "engine", made by the fuse-mbconv pass from lowered NhwcConv nodes): a
// MobileNetV2 inverted-residual block on channels-last float32 activations, as one node:
//   E = clamp(X * W_exp + B_exp, exp_min, exp_max)        1x1 expansion (absent: E = X)
//   D = clamp(depthwise3x3(E) + B_dw, dw_min, dw_max)      pad 1, stride 1 or 2
//   Y = clamp(D * W_proj + B_proj + Sum, proj_min, proj_max)  1x1 projection, optional Sum
// Inputs: X [N,H,W,Cin], W_exp [Cexp,Cin,1,1] (optional), B_exp [Cexp], W_dw [Cexp,1,3,3], B_dw
// [Cexp], W_proj [Cout,Cexp,1,1], B_proj [Cout], Sum [N,Ho,Wo,Cout] (optional); every input but
// X and Sum is a constant; biases optional. Attributes: stride (1 or 2) and the six clamp bounds
// (Relu is [0, max], Clip its bounds, no activation [lowest, max]). Cexp must be a multiple of 16.
//
// Why: on large maps the expanded tensor (112 x 112 x 96 floats, 4.8 MB per image, in
// mobilenet_v2) does not fit in the caches; three separate convs write it to memory and read it
// back. Here a thread works on a range of output rows of one image: the expanded input rows it
// needs are computed into a ring of three rows (in L2), the depthwise output row goes to a
// one-row buffer (L1) and is projected straight away. The expanded tensor never exists.
// The float sums run in another order than oneDNN's, so results differ from the unfused convs in
// the last bits (tests compare with a tolerance).
//
// Kernels: AVX-512F only (the pass fuses only on CPUs that have it). The 1x1 convs are the
// register-tile GEMM of backends/x86/f32_gemm.h (bias, Sum and clamp applied on the registers); the
// depthwise conv keeps its 9 weight vectors of 16 channels in registers and does 8 output pixels at
// a time (8 independent FMA chains: an FMA waits 4 cycles for its sum). Weights and scratch rows
// are 64-byte aligned: unaligned rows (malloc's 16 bytes) made the depthwise loads 1.6x slower.
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>

#include "backends/registry.h"
#include "backends/x86/f32_gemm.h"
#include "backends/x86/image_rows.h"
#include "core/error.h"
#include "core/simd_diagnostics.h"

#if defined(__GNUC__) && defined(__x86_64__)
#include <immintrin.h>
#define ENGINE_MB_X86 1
#define ENGINE_MB_AVX512 __attribute__((target("avx2,fma,avx512f")))
#endif

namespace engine::x86 {
namespace {

constexpr const char* kOp = "NhwcMBConv";

struct Clamp {
  float lo = std::numeric_limits<float>::lowest(), hi = std::numeric_limits<float>::max();
};

Clamp clamp_attrs(const Node& n, const std::string& prefix) {
  Clamp c;
  c.lo = n.attrs.get_float(prefix + "_min", c.lo);
  c.hi = n.attrs.get_float(prefix + "_max", c.hi);
  ENGINE_CHECK(!(c.lo > c.hi), kOp, ": ", prefix, "_min (", c.lo, ") exceeds ", prefix, "_max (",
               c.hi, ")");
  return c;
}

struct Geometry {
  int64_t N = 0, H = 0, W = 0, Cin = 0, Cexp = 0, Cout = 0, Ho = 0, Wo = 0, stride = 1;
  bool expand = false, sum = false;
};

Geometry geometry(const InferContext& ctx) {
  const Node& n = ctx.node();
  Geometry g;
  ENGINE_CHECK(ctx.dtype(0) == DType::F32 && ctx.rank(0) == 4, kOp,
               ": X must be a float32 [N,H,W,C] tensor, got ", dims_str(ctx.shape(0)));
  const Dims& x = ctx.shape(0);
  g.N = x[0], g.H = x[1], g.W = x[2], g.Cin = x[3];
  g.stride = n.attrs.get_int("stride", 1);
  ENGINE_CHECK(g.stride == 1 || g.stride == 2, kOp, ": stride must be 1 or 2, got ", g.stride);
  auto check_f32 = [&](int i, const Dims& want, const char* what) {
    ENGINE_CHECK(ctx.has_input(i), kOp, ": ", what, " (input ", i, ") is missing");
    ENGINE_CHECK(ctx.dtype(i) == DType::F32 && ctx.shape(i) == want, kOp, ": ", what, " (input ", i,
                 ") must be float32 ", dims_str(want), ", got ", dims_str(ctx.shape(i)));
  };
  ENGINE_CHECK(ctx.has_input(3) && ctx.rank(3) == 4, kOp, ": W_dw (input 3) must have rank 4");
  g.Cexp = ctx.shape(3)[0];
  check_f32(3, {g.Cexp, 1, 3, 3}, "W_dw");
  ENGINE_CHECK(g.Cexp > 0 && g.Cexp % 16 == 0, kOp, ": the expanded channels (", g.Cexp,
               ") must be a positive multiple of 16");
  g.expand = ctx.has_input(1);
  if (g.expand)
    check_f32(1, {g.Cexp, g.Cin, 1, 1}, "W_exp");
  else
    ENGINE_CHECK(g.Cin == g.Cexp, kOp, ": without W_exp, X must have ", g.Cexp, " channels, got ",
                 g.Cin);
  ENGINE_CHECK(ctx.has_input(5) && ctx.rank(5) == 4, kOp, ": W_proj (input 5) must have rank 4");
  g.Cout = ctx.shape(5)[0];
  check_f32(5, {g.Cout, g.Cexp, 1, 1}, "W_proj");
  if (ctx.has_input(2)) check_f32(2, {g.Cexp}, "B_exp");
  if (ctx.has_input(4)) check_f32(4, {g.Cexp}, "B_dw");
  if (ctx.has_input(6)) check_f32(6, {g.Cout}, "B_proj");
  ENGINE_CHECK(g.H >= 1 && g.W >= 1 && g.Cin >= 1 && g.Cout >= 1, kOp,
               ": empty input or output: X ", dims_str(x));
  g.Ho = (g.H - 1) / g.stride + 1;
  g.Wo = (g.W - 1) / g.stride + 1;
  g.sum = ctx.has_input(7);
  if (g.sum) check_f32(7, {g.N, g.Ho, g.Wo, g.Cout}, "Sum");
  return g;
}

void infer(InferContext& ctx) {
  const Geometry g = geometry(ctx);
  ctx.set_output(0, DType::F32, {g.N, g.Ho, g.Wo, g.Cout});
}

// Weights and scratch rows are float Tensors: zero-filled and 64-byte aligned (core/tensor.cpp),
// so every pixel row starts on a cache line when its channels are a multiple of 16 (a vector
// load that crosses two cache lines costs two).
Tensor floats(int64_t n) {
  return Tensor(DType::F32, {n});
}

struct State {
  Geometry g;
  Clamp exp, dw, proj;
  Tensor w1, b1;  // f32_gemm_pack(W_exp), [Cexp]
  Tensor wd, bd;  // [9][Cexp], [Cexp]
  Tensor w2, b2;  // f32_gemm_pack(W_proj), [Cout rounded up to 16] (zero beyond Cout)
};

// v = the n values of constant input i (zeros when it is absent), then zeros up to `padded`.
void constant_or_zeros(Tensor& v, const InferContext& ctx, int i, int64_t n, int64_t padded) {
  v = floats(padded);
  if (ctx.has_input(i)) {
    const Tensor* t = ctx.value_or_null(i);
    ENGINE_CHECK(t, kOp, ": input ", i, " must be a constant");
    std::copy(t->data<float>(), t->data<float>() + n, v.data<float>());
  }
}

const float* constant_data(const InferContext& ctx, int i, const char* what) {
  const Tensor* t = ctx.value_or_null(i);
  ENGINE_CHECK(t, kOp, ": ", what, " (input ", i, ") must be a constant");
  return t->data<float>();
}

std::shared_ptr<const void> prepare(const InferContext& ctx) {
  auto st = std::make_shared<State>();
  const Geometry g = st->g = geometry(ctx);
  st->exp = clamp_attrs(ctx.node(), "exp");
  st->dw = clamp_attrs(ctx.node(), "dw");
  st->proj = clamp_attrs(ctx.node(), "proj");
  if (g.expand) {
    st->w1 = f32_gemm_pack(constant_data(ctx, 1, "W_exp"), g.Cexp, g.Cin);
    constant_or_zeros(st->b1, ctx, 2, g.Cexp, g.Cexp);
  }
  const float* wd = constant_data(ctx, 3, "W_dw");
  st->wd = floats(9 * g.Cexp);
  for (int64_t c = 0; c < g.Cexp; ++c)
    for (int t = 0; t < 9; ++t) st->wd.data<float>()[t * g.Cexp + c] = wd[c * 9 + t];
  constant_or_zeros(st->bd, ctx, 4, g.Cexp, g.Cexp);
  st->w2 = f32_gemm_pack(constant_data(ctx, 5, "W_proj"), g.Cout, g.Cexp);
  constant_or_zeros(st->b2, ctx, 6, g.Cout, f32_gemm_ld(g.Cout));
  return st;
}

#ifdef ENGINE_MB_X86
ENGINE_SIMD_WARNINGS_OFF

// 16 channels of P depthwise output pixels (stride S) whose taps start at offset x0 of the three
// rows r[]. P = 8 independent sums keep both FMA pipes busy (an FMA waits 4 cycles for its sum).
template <int S, int P>
__attribute__((always_inline)) ENGINE_MB_AVX512 inline void dw_pixels(const float* const (&r)[3],
                                                                      int64_t x0, int64_t C,
                                                                      const __m512 (&w)[9],
                                                                      __m512 b, __m512 lo,
                                                                      __m512 hi, float* out) {
  __m512 a[P];
#pragma GCC unroll 8
  for (int p = 0; p < P; ++p) a[p] = b;
#pragma GCC unroll 3
  for (int ky = 0; ky < 3; ++ky)
#pragma GCC unroll 3
    for (int kx = 0; kx < 3; ++kx)
#pragma GCC unroll 8
      for (int p = 0; p < P; ++p)
        a[p] =
            _mm512_fmadd_ps(_mm512_loadu_ps(r[ky] + x0 + (S * p + kx) * C), w[3 * ky + kx], a[p]);
#pragma GCC unroll 8
  for (int p = 0; p < P; ++p)
    _mm512_storeu_ps(out + p * C, _mm512_min_ps(_mm512_max_ps(a[p], lo), hi));
}

// P output pixels from ox, every channel.
template <int S, int P>
__attribute__((always_inline)) ENGINE_MB_AVX512 inline void dw_block(const float* const in[3],
                                                                     int64_t ox, int64_t C,
                                                                     const float* wd,
                                                                     const float* bd, __m512 lo,
                                                                     __m512 hi, float* out) {
  for (int64_t c = 0; c < C; c += 16) {
    __m512 w[9];
    for (int t = 0; t < 9; ++t) w[t] = _mm512_loadu_ps(wd + t * C + c);
    const __m512 b = _mm512_loadu_ps(bd + c);
    const float* const r[3] = {in[0] + c, in[1] + c, in[2] + c};
    dw_pixels<S, P>(r, S * ox * C, C, w, b, lo, hi, out + ox * C + c);
  }
}

// One depthwise output row: in[ky] are the three input rows (W + 2 pixels of C channels, the
// first and last pixel zero), out gets Wo pixels.
template <int S>
ENGINE_MB_AVX512 void dw_row(const float* const in[3], int64_t Wo, int64_t C, const float* wd,
                             const float* bd, Clamp cl, float* out) {
  const __m512 lo = _mm512_set1_ps(cl.lo), hi = _mm512_set1_ps(cl.hi);
  // Pixels outer, channels inner: the rows are read front to back (prefetch-friendly), and
  // each input line is used again by the next group of pixels while it is still in L1.
  int64_t ox = 0;
  for (; ox + 8 <= Wo; ox += 8) dw_block<S, 8>(in, ox, C, wd, bd, lo, hi, out);
  for (; ox + 4 <= Wo; ox += 4) dw_block<S, 4>(in, ox, C, wd, bd, lo, hi, out);
  for (; ox < Wo; ++ox) dw_block<S, 1>(in, ox, C, wd, bd, lo, hi, out);
}

// Output rows [oy0, oy1) of one image. buf: scratch of 4 (W + 2) Cexp + Wo Cexp floats.
ENGINE_MB_AVX512 void run_rows(const State& st, const float* x, const float* sum, float* y,
                               int64_t oy0, int64_t oy1, float* buf) {
  const Geometry& g = st.g;
  const int64_t row = (g.W + 2) * g.Cexp;
  float* ring = buf;            // 3 rows
  float* zero = buf + 3 * row;  // a row of zeros (padding above and below)
  float* dwo = buf + 4 * row;   // the depthwise output row
  std::fill(zero, zero + row, 0.0f);
  for (int i = 0; i < 3; ++i) {  // the padding pixels of the ring rows
    std::fill(ring + i * row, ring + i * row + g.Cexp, 0.0f);
    std::fill(ring + i * row + (g.W + 1) * g.Cexp, ring + (i + 1) * row, 0.0f);
  }
  int64_t held[3] = {-1, -1, -1};  // input row in each ring slot
  for (int64_t oy = oy0; oy < oy1; ++oy) {
    const float* in[3];
    for (int ky = 0; ky < 3; ++ky) {
      const int64_t iy = g.stride * oy - 1 + ky;
      if (iy < 0 || iy >= g.H) {
        in[ky] = zero;
        continue;
      }
      float* r = ring + (iy % 3) * row;
      if (held[iy % 3] != iy) {
        const float* xr = x + iy * g.W * g.Cin;
        if (g.expand) {
          F32Gemm e;
          e.a = xr, e.lda = e.K = g.Cin;
          e.w = st.w1.data<float>(), e.bias = st.b1.data<float>(), e.N = g.Cexp;
          e.lo = st.exp.lo, e.hi = st.exp.hi;
          e.c = r + g.Cexp, e.ldc = g.Cexp;
          f32_gemm(e, g.W);
        } else {
          std::memcpy(r + g.Cexp, xr, size_t(g.W * g.Cexp) * sizeof(float));
        }
        held[iy % 3] = iy;
      }
      in[ky] = r;
    }
    if (g.stride == 1)
      dw_row<1>(in, g.Wo, g.Cexp, st.wd.data<float>(), st.bd.data<float>(), st.dw, dwo);
    else
      dw_row<2>(in, g.Wo, g.Cexp, st.wd.data<float>(), st.bd.data<float>(), st.dw, dwo);
    F32Gemm p;
    p.a = dwo, p.lda = p.K = g.Cexp;
    p.w = st.w2.data<float>(), p.bias = st.b2.data<float>(), p.N = g.Cout;
    p.lo = st.proj.lo, p.hi = st.proj.hi;
    p.c = y + oy * g.Wo * g.Cout, p.ldc = g.Cout;
    if (sum) p.sum = sum + oy * g.Wo * g.Cout, p.lds = g.Cout;
    f32_gemm(p, g.Wo);
  }
}

ENGINE_SIMD_WARNINGS_ON
#endif  // ENGINE_MB_X86

void kernel(KernelContext& kc) {
  const auto* st = static_cast<const State*>(kc.state);
  ENGINE_CHECK(st, kOp, ": not prepared");
#ifdef ENGINE_MB_X86
  ENGINE_CHECK(__builtin_cpu_supports("avx512f"), kOp, ": needs a CPU with AVX-512F");
  const Geometry& g = st->g;
  const float* x = kc.in(0).data<float>();
  const float* sum = st->g.sum ? kc.in(7).data<float>() : nullptr;
  float* y = kc.out(0).data<float>();
  // Row ranges of one image recompute the one or two expanded rows they share.
  const size_t scratch = size_t(4 * (g.W + 2) * g.Cexp + g.Wo * g.Cexp);
  const int64_t in_img = g.H * g.W * g.Cin, out_img = g.Ho * g.Wo * g.Cout;
  for_image_rows(g.N, g.Ho, kc.num_threads, [&](int64_t n, int64_t oy0, int64_t oy1) {
    thread_local Tensor buf;
    if (size_t(buf.numel()) < scratch) buf = floats(int64_t(scratch));
    run_rows(*st, x + n * in_img, sum ? sum + n * out_img : nullptr, y + n * out_img, oy0, oy1,
             buf.data<float>());
  });
#else
  fail(kOp, ": needs an x86-64 build");
#endif
}

}  // namespace

void register_x86_mbconv(OpRegistry& r) {
  OpSchema s;
  s.op_type = kOp;
  s.domain = "engine";
  s.min_inputs = 7;
  s.max_inputs = 8;
  s.validate = [](const Node& n) {
    const int64_t stride = n.attrs.get_int("stride", 1);
    ENGINE_CHECK(stride == 1 || stride == 2, kOp, ": stride must be 1 or 2, got ", stride);
    for (const char* p : {"exp", "dw", "proj"}) clamp_attrs(n, p);
  };
  s.infer = infer;
  s.prepare = prepare;
  s.kernel = kernel;
  s.available = f32_kernels_available;
  r.add(std::move(s));
}

}  // namespace engine::x86
