// NhwcStem (domain "engine", made by the fuse-stem pass from a lowered NhwcConv, the Transpose
// that feeds it and the NhwcMaxPool after it): a network's first convolution, whose input has
// few channels (at most 4: RGB images), on float32, as one node:
//   Y = maxpool(clamp(conv(X, W) + B, conv_min, conv_max))     (without a pool: no maxpool)
// Inputs: X, [N,C,H,W] when the attribute nchw is 1 (the graph input itself: no Transpose), else
// [N,H,W,C]; W [M,C,kh,kw] and B [M] (optional), constants. Attributes: the Conv's kernel_shape,
// strides, pads, dilations (1), auto_pad; conv_min / conv_max (Relu is [0, max], Clip its bounds,
// no activation [lowest, max]); for the pool, pool_kernel_shape, pool_strides, pool_pads and
// pool_auto_pad (no pool_kernel_shape: no pool). Y [N,PH,PW,M] (channels-last).
//
// Why: oneDNN 2.6 runs a 3-channel 7x7 stride-2 conv (the resnets' stem) at about 80 % of this
// machine's FMA peak, the input needs a Transpose to NHWC first, and the conv output (112 x 112 x
// 64 floats, 3.2 MB per image) goes to memory only for the max pool to read it back. Here a
// thread takes a range of output rows of one image: the input rows it needs are copied once into
// a zero-padded buffer in the input's own layout, each conv output row is computed into a ring of
// pool-height rows (in L2), and each pool output row is taken from the ring at once.
//
// The conv as register tiles (AVX-512F, like backends/x86/f32_gemm.h): R output pixels of a row
// x 16 V channels (6 x 64, 8 x 48, 12 x 32 or 12 x 16), the taps in segments that are contiguous
// in the padded buffer: with NCHW input, one segment per (channel, kernel row) holding the kw taps
// of a pixel (the next pixel's start stride floats further); with NHWC input, one per kernel row
// holding kw C taps. Weights are packed once by panels of the tile width in that tap order. The
// float sums run in another order than oneDNN's (tests compare with a tolerance).
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <vector>

#include "backends/registry.h"
#include "backends/x86/f32_gemm.h"
#include "backends/x86/image_rows.h"
#include "core/error.h"
#include "core/simd_diagnostics.h"
#include "ops/conv_geom.h"
#include "ops/pool_geom.h"

#if defined(__GNUC__) && defined(__x86_64__)
#include <immintrin.h>
#define ENGINE_ST_X86 1
#define ENGINE_ST_AVX512 __attribute__((target("avx2,fma,avx512f")))
#endif

namespace engine::x86 {
namespace {

constexpr const char* kOp = "NhwcStem";
constexpr int64_t kMaxChannels = 4, kMaxKernel = 16;  // input channels; conv and pool kernel rows
constexpr int64_t kPanel = 4;                         // vectors of 16 channels per weight panel

struct Geometry {
  bool nchw = false;
  int64_t N = 0, C = 0, H = 0, W = 0, M = 0;
  int64_t kh = 1, kw = 1, sh = 1, sw = 1, pt = 0, pl = 0, OH = 0, OW = 0;  // conv
  bool pool = false;
  int64_t pkh = 1, pkw = 1, psh = 1, psw = 1, ppt = 0, ppl = 0, PH = 0, PW = 0;  // max pool
  // The padded input buffer: planes (C with NCHW, else 1) x rows x row floats (Wp pixels of cpp
  // floats: 1 with NCHW, C with NHWC).
  int64_t planes = 1, cpp = 1, Wp = 0;
  int64_t out_h() const { return pool ? PH : OH; }
  int64_t out_w() const { return pool ? PW : OW; }
};

// The pool attributes (pool_*) as a MaxPool node, for ops/pool_geom.
Node pool_node(const Node& n) {
  Node p;
  p.op_type = "MaxPool";
  p.name = n.name;
  for (const char* a : {"kernel_shape", "strides", "pads", "auto_pad"}) {
    const std::string key = std::string("pool_") + a;
    if (!n.attrs.has(key)) continue;
    if (std::string(a) == "auto_pad")
      p.attrs.set(a, n.attrs.get_string(key, "NOTSET"));
    else
      p.attrs.set(a, n.attrs.get_ints(key, {}));
  }
  return p;
}

Geometry geometry(const InferContext& ctx) {
  const Node& n = ctx.node();
  Geometry g;
  g.nchw = n.attrs.get_int("nchw", 0) != 0;
  ENGINE_CHECK(ctx.dtype(0) == DType::F32 && ctx.rank(0) == 4, kOp, " '", n.name,
               "': X must be a float32 rank-4 tensor, got ", dims_str(ctx.shape(0)));
  ENGINE_CHECK(ctx.dtype(1) == DType::F32 && ctx.rank(1) == 4, kOp, " '", n.name,
               "': W must be a float32 [M,C,kh,kw] tensor, got ", dims_str(ctx.shape(1)));
  const Dims& x = ctx.shape(0);
  const Dims xn = g.nchw ? x : Dims{x[0], x[3], x[1], x[2]};
  const ConvGeom c = conv_geometry(n, xn, ctx.shape(1));
  ENGINE_CHECK(c.nsp == 2 && c.group == 1 && c.d[1] == 1 && c.d[2] == 1, kOp, " '", n.name,
               "': only 2-D convolutions with one group and no dilation");
  ENGINE_CHECK(c.C >= 1 && c.C <= kMaxChannels && c.M >= 1, kOp, " '", n.name, "': needs 1 to ",
               kMaxChannels, " input channels and at least one output channel, got ", c.C, " and ",
               c.M);
  if (ctx.has_input(2))
    ENGINE_CHECK(ctx.dtype(2) == DType::F32 && ctx.shape(2) == Dims{c.M}, kOp, " '", n.name,
                 "': B must be float32 [", c.M, "], got ", dims_str(ctx.shape(2)));
  g.N = c.N, g.C = c.C, g.H = c.in[1], g.W = c.in[2], g.M = c.M;
  g.kh = c.k[1], g.kw = c.k[2], g.sh = c.s[1], g.sw = c.s[2], g.pt = c.pb[1], g.pl = c.pb[2];
  g.OH = c.out[1], g.OW = c.out[2];
  ENGINE_CHECK(g.kh <= kMaxKernel, kOp, " '", n.name, "': kernel height ", g.kh, " exceeds ",
               kMaxKernel);
  ENGINE_CHECK(g.OH >= 1 && g.OW >= 1, kOp, " '", n.name, "': empty conv output ",
               dims_str(c.out_shape()));
  g.pool = n.attrs.has("pool_kernel_shape");
  if (g.pool) {
    const pool::PoolGeom p = pool::pool_geometry(pool_node(n), {g.N, g.M, g.OH, g.OW});
    ENGINE_CHECK(p.nd == 2 && p.dil[0] == 1 && p.dil[1] == 1, kOp, " '", n.name,
                 "': only 2-D max pools without dilation");
    g.pkh = p.kernel[0], g.pkw = p.kernel[1], g.psh = p.stride[0], g.psw = p.stride[1];
    g.ppt = p.pad_begin[0], g.ppl = p.pad_begin[1], g.PH = p.out[0], g.PW = p.out[1];
    ENGINE_CHECK(g.pkh <= kMaxKernel, kOp, " '", n.name, "': pool kernel height ", g.pkh,
                 " exceeds ", kMaxKernel);
    // Every window must hold a conv output (an all-padding window has no maximum).
    ENGINE_CHECK(g.PH >= 1 && g.PW >= 1 && g.ppt < g.pkh && g.ppl < g.pkw &&
                     (g.PH - 1) * g.psh - g.ppt < g.OH && (g.PW - 1) * g.psw - g.ppl < g.OW,
                 kOp, " '", n.name, "': a max pool window lies entirely in the padding");
  }
  g.planes = g.nchw ? g.C : 1;
  g.cpp = g.nchw ? 1 : g.C;
  g.Wp = std::max(g.W + g.pl, (g.OW - 1) * g.sw + g.kw);
  return g;
}

void infer(InferContext& ctx) {
  const Geometry g = geometry(ctx);
  ctx.set_output(0, DType::F32, {g.N, g.out_h(), g.out_w(), g.M});
}

struct State {
  Geometry g;
  float lo = 0, hi = 0;
  Tensor w;     // panels of up to 4 vectors of 16 channels: taps x width floats each
  Tensor bias;  // [M rounded up to 16], zero-padded
};

// Tap t of segment s (in the padded buffer's order) -> the ONNX weight index of channel m.
int64_t weight_index(const Geometry& g, int64_t m, int64_t s, int64_t k) {
  const int64_t c = g.nchw ? s / g.kh : k % g.C, ky = g.nchw ? s % g.kh : s;
  const int64_t kx = g.nchw ? k : k / g.C;
  return ((m * g.C + c) * g.kh + ky) * g.kw + kx;
}

int64_t segments(const Geometry& g) {
  return g.planes * g.kh;
}

std::shared_ptr<const void> prepare(const InferContext& ctx) {
  auto st = std::make_shared<State>();
  const Geometry& g = st->g = geometry(ctx);
  const Node& n = ctx.node();
  st->lo = n.attrs.get_float("conv_min", std::numeric_limits<float>::lowest());
  st->hi = n.attrs.get_float("conv_max", std::numeric_limits<float>::max());
  ENGINE_CHECK(!(st->lo > st->hi), kOp, " '", n.name, "': conv_min exceeds conv_max");
  const Tensor* w = ctx.value_or_null(1);
  ENGINE_CHECK(w, kOp, " '", n.name, "': W must be a constant");
  const int64_t ld = f32_gemm_ld(g.M), L = g.kw * g.cpp, taps = segments(g) * L;
  st->w = Tensor(DType::F32, {taps * ld});
  float* p = st->w.data<float>();
  for (int64_t c0 = 0; c0 < ld; c0 += 16 * kPanel) {
    const int64_t width = std::min<int64_t>(16 * kPanel, ld - c0);
    float* panel = p + c0 * taps;
    for (int64_t s = 0; s < segments(g); ++s)
      for (int64_t k = 0; k < L; ++k)
        for (int64_t j = 0; j < width && c0 + j < g.M; ++j)
          panel[(s * L + k) * width + j] = w->data<float>()[weight_index(g, c0 + j, s, k)];
  }
  st->bias = Tensor(DType::F32, {ld});
  if (ctx.has_input(2)) {
    const Tensor* b = ctx.value_or_null(2);
    ENGINE_CHECK(b, kOp, " '", n.name, "': B must be a constant");
    std::copy(b->data<float>(), b->data<float>() + g.M, st->bias.data<float>());
  }
  return st;
}

#ifdef ENGINE_ST_X86
ENGINE_SIMD_WARNINGS_OFF

// One R x 16 V tile of a conv output row: pixels at out, out + ldo, ...; channels c0.. (left of
// them exist). seg[s] + off: segment s's first tap for the tile's first pixel; the next pixel's
// is P floats further.
template <int R, int V>
ENGINE_ST_AVX512 void tile(const float* const* seg, int64_t nseg, int64_t L, int64_t off, int64_t P,
                           const float* w, const float* bias, float lo, float hi, float* out,
                           int64_t ldo, int64_t left) {
  __m512 acc[R][V];
#pragma GCC unroll 4
  for (int v = 0; v < V; ++v) {
    const __m512 b = _mm512_loadu_ps(bias + 16 * v);
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) acc[r][v] = b;
  }
  for (int64_t s = 0; s < nseg; ++s) {
    const float* a = seg[s] + off;
    for (int64_t k = 0; k < L; ++k, w += 16 * V) {
      __m512 wv[V];
#pragma GCC unroll 4
      for (int v = 0; v < V; ++v) wv[v] = _mm512_loadu_ps(w + 16 * v);
#pragma GCC unroll 16
      for (int r = 0; r < R; ++r) {
        const __m512 x = _mm512_set1_ps(a[r * P + k]);
#pragma GCC unroll 4
        for (int v = 0; v < V; ++v) acc[r][v] = _mm512_fmadd_ps(x, wv[v], acc[r][v]);
      }
    }
  }
  const __m512 vlo = _mm512_set1_ps(lo), vhi = _mm512_set1_ps(hi);
#pragma GCC unroll 4
  for (int v = 0; v < V; ++v) {
    const int64_t rest = left - 16 * v;
    const __mmask16 m = rest >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << rest) - 1);
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r)
      _mm512_mask_storeu_ps(out + r * ldo + 16 * v, m,
                            _mm512_min_ps(vhi, _mm512_max_ps(vlo, acc[r][v])));
  }
}

template <int V>
constexpr int rows_for() {
  return V == 4 ? 6 : V == 3 ? 8 : 12;
}

struct RowArgs {
  const float* const* seg;
  int64_t nseg, L, P;
  const float* bias;
  float lo, hi;
  int64_t ldo;
};

template <int V, int R>
ENGINE_ST_AVX512 void tail(const RowArgs& a, int64_t x0, int64_t rows, const float* w, int64_t c0,
                           float* out, int64_t left) {
  if constexpr (R > 0) {
    if (rows == R)
      tile<R, V>(a.seg, a.nseg, a.L, x0 * a.P, a.P, w, a.bias + c0, a.lo, a.hi, out + x0 * a.ldo,
                 a.ldo, left);
    else
      tail<V, R - 1>(a, x0, rows, w, c0, out, left);
  }
}

// Pixels [0, OW) of one conv output row, channels c0 .. c0 + 16 V (panel w), into out + c0.
template <int V>
ENGINE_ST_AVX512 void panel_row(const RowArgs& a, int64_t OW, const float* w, int64_t c0,
                                float* out, int64_t M) {
  constexpr int R = rows_for<V>();
  float* o = out + c0;
  const int64_t left = M - c0;
  int64_t x = 0;
  for (; x + R <= OW; x += R)
    tile<R, V>(a.seg, a.nseg, a.L, x * a.P, a.P, w, a.bias + c0, a.lo, a.hi, o + x * a.ldo, a.ldo,
               left);
  if (x < OW) tail<V, R - 1>(a, x, OW - x, w, c0, o, left);
}

// Conv output row cy (its input rows start at buffer row b0) into out (OW x M floats).
ENGINE_ST_AVX512 void conv_row(const State& st, const float* buf, int64_t rows, int64_t b0,
                               float* out) {
  const Geometry& g = st.g;
  const int64_t row_len = g.Wp * g.cpp, L = g.kw * g.cpp, taps = segments(g) * L;
  const float* seg[kMaxChannels * kMaxKernel];
  const int64_t nseg = segments(g);
  for (int64_t s = 0; s < nseg; ++s) {
    const int64_t p = s / g.kh, ky = s % g.kh;
    seg[s] = buf + (p * rows + b0 + ky) * row_len;
  }
  const RowArgs a{seg, nseg, L, g.sw * g.cpp, st.bias.data<float>(), st.lo, st.hi, g.M};
  const int64_t ld = f32_gemm_ld(g.M);
  for (int64_t c0 = 0; c0 < ld; c0 += 16 * kPanel) {
    const float* w = st.w.data<float>() + c0 * taps;
    switch (std::min<int64_t>(kPanel, (ld - c0) / 16)) {
      case 4:
        panel_row<4>(a, g.OW, w, c0, out, g.M);
        break;
      case 3:
        panel_row<3>(a, g.OW, w, c0, out, g.M);
        break;
      case 2:
        panel_row<2>(a, g.OW, w, c0, out, g.M);
        break;
      default:
        panel_row<1>(a, g.OW, w, c0, out, g.M);
        break;
    }
  }
}

// Pool output row: the maximum over conv rows rows[0 .. nr) (OW x M floats each) and each
// window's columns.
ENGINE_ST_AVX512 void pool_row(const Geometry& g, const float* const* rows, int64_t nr, float* y) {
  for (int64_t px = 0; px < g.PW; ++px) {
    const int64_t x0 = px * g.psw - g.ppl;
    const int64_t xs = std::max<int64_t>(0, x0), xe = std::min(g.OW, x0 + g.pkw);
    for (int64_t c = 0; c < g.M; c += 16) {
      const int64_t rest = g.M - c;
      const __mmask16 m = rest >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << rest) - 1);
      __m512 v = _mm512_set1_ps(-std::numeric_limits<float>::infinity());
      for (int64_t r = 0; r < nr; ++r)
        for (int64_t x = xs; x < xe; ++x)
          v = _mm512_max_ps(v, _mm512_maskz_loadu_ps(m, rows[r] + x * g.M + c));
      _mm512_mask_storeu_ps(y + px * g.M + c, m, v);
    }
  }
}

ENGINE_SIMD_WARNINGS_ON

// Input rows iy0 .. iy0 + rows of image x into buf, zero-padded (rows outside the image, and
// columns left of pl and right of W + pl, are zeros).
void fill_input(const Geometry& g, const float* x, int64_t iy0, int64_t rows, float* buf) {
  const int64_t row_len = g.Wp * g.cpp;
  for (int64_t p = 0; p < g.planes; ++p)
    for (int64_t b = 0; b < rows; ++b) {
      float* d = buf + (p * rows + b) * row_len;
      const int64_t iy = iy0 + b;
      if (iy < 0 || iy >= g.H) {
        std::fill(d, d + row_len, 0.0f);
        continue;
      }
      std::fill(d, d + g.pl * g.cpp, 0.0f);
      const float* s = g.nchw ? x + (p * g.H + iy) * g.W : x + iy * g.W * g.C;
      std::memcpy(d + g.pl * g.cpp, s, size_t(g.W * g.cpp) * sizeof(float));
      std::fill(d + (g.pl + g.W) * g.cpp, d + row_len, 0.0f);
    }
}

// Output rows [y0, y1) of one image.
void run_rows(const State& st, const float* x, float* y, int64_t y0, int64_t y1, Tensor& scratch) {
  const Geometry& g = st.g;
  int64_t c0 = y0, c1 = y1;  // conv rows needed
  if (g.pool) {
    c0 = std::max<int64_t>(0, y0 * g.psh - g.ppt);
    c1 = std::min(g.OH, (y1 - 1) * g.psh - g.ppt + g.pkh);
  }
  const int64_t rows = (c1 - c0 - 1) * g.sh + g.kh, row_len = g.Wp * g.cpp;
  const int64_t in_floats = g.planes * rows * row_len, ring_row = g.OW * g.M;
  const int64_t need = (in_floats + 15) / 16 * 16 + (g.pool ? g.pkh * ring_row : 0);
  if (scratch.numel() < need) scratch = Tensor(DType::F32, {need});
  float* buf = scratch.data<float>();
  fill_input(g, x, c0 * g.sh - g.pt, rows, buf);
  if (!g.pool) {
    for (int64_t cy = c0; cy < c1; ++cy)
      conv_row(st, buf, rows, (cy - c0) * g.sh, y + cy * ring_row);
    return;
  }
  float* ring = buf + (in_floats + 15) / 16 * 16;
  int64_t next = c0;
  const float* window[kMaxKernel];
  for (int64_t py = y0; py < y1; ++py) {
    const int64_t ws = std::max<int64_t>(0, py * g.psh - g.ppt),
                  we = std::min(g.OH, py * g.psh - g.ppt + g.pkh);
    for (; next < we; ++next)
      conv_row(st, buf, rows, (next - c0) * g.sh, ring + (next % g.pkh) * ring_row);
    for (int64_t r = ws; r < we; ++r) window[r - ws] = ring + (r % g.pkh) * ring_row;
    pool_row(g, window, we - ws, y + py * g.PW * g.M);
  }
}
#endif  // ENGINE_ST_X86

void kernel(KernelContext& kc) {
  const auto* st = static_cast<const State*>(kc.state);
  ENGINE_CHECK(st, kOp, ": not prepared");
#ifdef ENGINE_ST_X86
  ENGINE_CHECK(__builtin_cpu_supports("avx512f"), kOp, ": needs a CPU with AVX-512F");
  const Geometry& g = st->g;
  const float* x = kc.in(0).data<float>();
  float* y = kc.out(0).data<float>();
  // With a pool, row ranges of one image recompute the conv rows their windows share.
  const int64_t in_img = g.C * g.H * g.W, out_img = g.out_h() * g.out_w() * g.M;
  for_image_rows(g.N, g.out_h(), kc.num_threads, [&](int64_t n, int64_t y0, int64_t y1) {
    thread_local Tensor scratch;
    run_rows(*st, x + n * in_img, y + n * out_img, y0, y1, scratch);
  });
#else
  fail(kOp, ": needs an x86-64 build");
#endif
}

void validate(const Node& n) {
  conv_validate_attrs(n);
  const float lo = n.attrs.get_float("conv_min", std::numeric_limits<float>::lowest()),
              hi = n.attrs.get_float("conv_max", std::numeric_limits<float>::max());
  ENGINE_CHECK(!(lo > hi), kOp, " '", n.name, "': conv_min (", lo, ") exceeds conv_max (", hi, ")");
  if (n.attrs.has("pool_kernel_shape"))
    pool::validate_pool_attrs(pool_node(n), pool::PoolKind::Max);
}

}  // namespace

void register_x86_stem(OpRegistry& r) {
  OpSchema s;
  s.op_type = kOp;
  s.domain = "engine";
  s.min_inputs = 2;
  s.max_inputs = 3;
  s.validate = validate;
  s.infer = infer;
  s.prepare = prepare;
  s.kernel = kernel;
  s.available = f32_kernels_available;
  r.add(std::move(s));
}

}  // namespace engine::x86
