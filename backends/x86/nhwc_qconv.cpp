// NhwcQConv (domain "engine", made by the lower-onednn pass from QConv / QLinearConv): a 2-D
// integer convolution on channels-last uint8 / int8 activations, bit-exact with the reference
// QConv (ops/qconv.cpp) in both requantization modes. Inputs as QConv: x [N,H,W,C], x_scale,
// x_zp, w [M,C/group,kH,kW] int8, w_scale, w_zp (all zero), y_scale, y_zp, [bias int32],
// [sum [N,OH,OW,M], sum_scale, sum_zp], [add_y_scale, add_y_zp]; output [N,OH,OW,M]. Attributes
// as QConv (requant, scale_bits, out_min, out_max) plus the Conv ones. Every input but x and sum
// is a constant.
// Without add_y_scale the sum is added before rounding (QConv's sum). With it (group 1 only; made
// by the fuse-qconv-qadd pass from NhwcQConv -> QAdd / QLinearAdd in float mode) the conv output
// is requantized to (y_scale, y_zp) first and then added to the sum as a float QAdd would
// (QAddFloat: the same bytes as the two nodes), into (add_y_scale, add_y_zp) clamped to the
// attributes add_out_min / add_out_max: each finished block of output rows is added while it is
// still in cache, and the intermediate tensor never goes to memory.
//
// group == 1: the u8 x s8 GEMM of u8s8_gemm.h with one row per output pixel. The A rows are the
// input pixels themselves for 1x1 / stride-1 / unpadded convs (uint8, C a multiple of 4); other
// uint8 convs with C a multiple of 4 give the GEMM one pointer per kernel tap and pixel (the
// input pixel's C channels, or a pixel of zero points in padding: no im2col copy); the rest use
// an NHWC im2col (each kernel tap is a contiguous run of C bytes; padding holds the zero point).
// uint8 convs with C not a multiple of 4 (the 3-channel stems) take one pointer per kernel row
// ("row taps"): the KW * C input bytes of a kernel row are contiguous in NHWC, read as Cr =
// KW * C rounded up to 4 bytes whose last Cr - KW * C weights are zero (7x7 stem: K = 7 x 24
// instead of an im2col of 147 bytes per pixel); rows that cross the left or right border, or the
// end of x, are assembled in a small per-block buffer, rows above or below the input point at a
// row of zero points.
// Activations enter the GEMM as uint8: int8 ones are shifted by 128 (x ^ 0x80) with their zero
// point. sum_k (x - x_zp) * w = sum_k x * w - x_zp * colsum(w), so the per-channel constant
// bias - x_zp * colsum(w) (wrapping int32) is added before requantization, which runs on each
// finished register tile (ops/irequant.h, per-channel lanes).
// Depthwise (one input channel per group, M == C): per output pixel, loops over the taps
// vectorized over channels, int32 x * w (x_zp * sum(w) folded into the bias); padding taps read a
// row of zero points.
// Other grouped convs and weights with zero points are not lowered (they stay on QConv).
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <memory>
#include <mutex>
#include <type_traits>

#include "backends/onednn/onednn.h"
#include "backends/registry.h"
#include "backends/x86/u8s8_gemm.h"
#include "core/simd_diagnostics.h"
#include "ops/conv_geom.h"
#include "ops/qgemm_core.h"
#include "ops/qpertensor.h"

#if defined(__GNUC__) && defined(__x86_64__)
#include <immintrin.h>
#endif

namespace engine::x86 {
namespace {

using namespace qops;
using onednn::nchw_to_nhwc;
using onednn::nhwc_to_nchw;

constexpr const char* kOp = "NhwcQConv";

ConvGeom geometry(const Node& n, const Dims& x_nhwc, const Dims& w) {
  ENGINE_CHECK(x_nhwc.size() == 4, kOp, ": input x must have rank 4 (NHWC), got ",
               dims_str(x_nhwc));
  ENGINE_CHECK(w.size() == 4, kOp, ": weights must have rank 4, got ", dims_str(w));
  return conv_geometry(n, nhwc_to_nchw(x_nhwc), w);
}

bool depthwise(const ConvGeom& g) {
  return g.group > 1 && g.group == g.C && g.M == g.C;
}

// Clamp range of the add after requantization: attributes add_out_min / add_out_max.
std::pair<int32_t, int32_t> add_range(const Node& n, DType t) {
  const int64_t cmin = container_min(t), cmax = container_max(t);
  const int64_t lo = n.attrs.get_int("add_out_min", cmin),
                hi = n.attrs.get_int("add_out_max", cmax);
  ENGINE_CHECK(lo >= cmin && hi <= cmax && lo <= hi, kOp, " '", n.name,
               "': attributes add_out_min=", lo, " / add_out_max=", hi, " must satisfy ", cmin,
               " <= add_out_min <= add_out_max <= ", cmax, " for output type ", dtype_name(t));
  return {int32_t(lo), int32_t(hi)};
}

void infer(InferContext& ctx) {
  ENGINE_CHECK(is_q8(ctx.dtype(0)), kOp, ": x must be uint8 or int8, got ",
               dtype_name(ctx.dtype(0)));
  ENGINE_CHECK(ctx.dtype(3) == DType::I8, kOp, ": w must be int8, got ", dtype_name(ctx.dtype(3)));
  const ConvGeom g = geometry(ctx.node(), ctx.shape(0), ctx.shape(3));
  ENGINE_CHECK(g.nsp == 2 && (g.group == 1 || depthwise(g)), kOp,
               ": only 2-D convolutions with group 1 or depthwise");
  ENGINE_CHECK(ctx.has_input(7) && is_q8(ctx.dtype(7)), kOp,
               ": y_zero_point (uint8 or int8) is required");
  const Dims y = nchw_to_nhwc(g.out_shape());
  if (ctx.has_input(9))
    ENGINE_CHECK(ctx.shape(9) == y && is_q8(ctx.dtype(9)), kOp,
                 ": sum must be uint8/int8 with the output shape ", dims_str(y), ", got ",
                 dims_str(ctx.shape(9)));
  if (ctx.has_input(12)) {
    ENGINE_CHECK(g.group == 1 && ctx.has_input(9) && ctx.has_input(10), kOp,
                 ": add_y_scale (an add after requantization) needs group 1 and a sum");
    ENGINE_CHECK(ctx.has_input(13) && ctx.dtype(13) == ctx.dtype(7), kOp,
                 ": add_y_zero_point must be given with the type of y_zero_point");
    add_range(ctx.node(), ctx.dtype(7));
  }
  ctx.set_output(0, ctx.dtype(7), y);
}

// A constant input, or an error naming it.
const Tensor& constant(const InferContext& ctx, int i, const char* what) {
  const Tensor* t = ctx.value_or_null(i);
  ENGINE_CHECK(t, kOp, " '", ctx.node().name, "': ", what, " must be a constant");
  return *t;
}

struct State {
  ConvGeom g;
  bool dw = false, x_signed = false, direct = false;
  bool indirect = false;           // group 1, not direct: GEMM rows as pointers (no im2col)
  bool row_taps = false;           // indirect with one pointer per kernel row (Cr bytes)
  int64_t ind_taps = 0;            // indirect: pointers per GEMM row (KH * KW, or KH: row taps)
  int64_t row_bytes = 0;           // row taps: Cr, KW * C rounded up to a multiple of 4
  std::vector<uint8_t> pad_pixel;  // indirect: zero points that padding taps read (C or Cr)
  int32_t xzp = 0;                 // in the type of x
  uint8_t pad = 0;                 // the zero point as the GEMM's uint8 (x_zp, + 128 for int8 x)
  std::vector<int8_t> wk;          // group 1: K x M, k = (ky * KW + kx) * C + c (row taps:
                                   // k = ky * Cr + kx * C + c, zero for kx * C + c >= KW * C)
  U8s8Weights gemm;                // wk packed for the path in use at prepare
  std::vector<int32_t> dw_w;       // depthwise: taps x C
  std::vector<int32_t> dw_w16;     // the same as int16 in each low half, high half 0 (VPDPWSSD)
  std::vector<uint8_t> zrow;       // depthwise: an input row of zero points (x's type), for padding
  // Requantization: scalar (ChannelRequant) and per-channel SIMD lanes, padded by 16 channels.
  ChannelRequant rq;
  bool has_sum = false;  // the sum is added before rounding
  bool post = false;     // the sum is added after requantization (post_add)
  qpt::QAddFloat post_add;
  std::vector<int32_t> off;
  ChannelLaneTables lanes;
};

std::shared_ptr<const void> prepare(const InferContext& ctx) {
  const Node& n = ctx.node();
  auto st = std::make_shared<State>();
  const Tensor& W = constant(ctx, 3, "w");
  const ConvGeom g = geometry(n, ctx.shape(0), W.shape());
  st->g = g;
  st->dw = depthwise(g);
  st->x_signed = ctx.dtype(0) == DType::I8;
  const auto single = [&](int i) {
    return ctx.has_input(i) ? &constant(ctx, i, "a zero point") : nullptr;
  };
  st->xzp = zero_points_of(single(2), 1, kOp, "x_zero_point")[0];
  st->pad = uint8_t(st->x_signed ? st->xzp + 128 : st->xzp);
  for (int32_t z : zero_points_of(single(5), g.M, kOp, "w_zero_point"))
    ENGINE_CHECK(z == 0, kOp, " '", n.name, "': weight zero points must be 0");
  const int8_t* w = W.data<int8_t>();
  const int64_t KH = g.k[1], KW = g.k[2], taps = KH * KW, C = g.C, M = g.M;
  std::vector<int32_t> bias(size_t(M), 0);
  if (ctx.has_input(8)) {
    const Tensor& b = constant(ctx, 8, "bias");
    ENGINE_CHECK(b.dtype() == DType::I32 && b.numel() == M, kOp, ": bias must be int32 [", M, "]");
    std::copy(b.data<int32_t>(), b.data<int32_t>() + M, bias.begin());
  }
  const size_t padded = size_t(M + 16);
  st->off.assign(padded, 0);
  if (st->dw) {
    st->dw_w.assign(size_t(taps * C + 16), 0);  // SIMD weight rows read up to 16 past C
    for (int64_t c = 0; c < C; ++c)
      for (int64_t t = 0; t < taps; ++t) st->dw_w[size_t(t * C + c)] = w[c * taps + t];
    st->dw_w16.resize(st->dw_w.size());
    for (size_t i = 0; i < st->dw_w.size(); ++i)
      st->dw_w16[i] = int32_t(uint16_t(int16_t(st->dw_w[i])));
    st->zrow.assign(size_t(g.in[2] * C + 64), uint8_t(st->xzp));
    for (int64_t c = 0; c < C; ++c) {  // off = bias - x_zp * sum_t w (wrapping)
      uint32_t wsum = 0;
      for (int64_t t = 0; t < taps; ++t) wsum += uint32_t(st->dw_w[size_t(t * C + c)]);
      st->off[size_t(c)] = int32_t(uint32_t(bias[size_t(c)]) - uint32_t(st->xzp) * wsum);
    }
  } else {
    st->direct = KH == 1 && KW == 1 && g.s[1] == 1 && g.s[2] == 1 && g.pb[1] == 0 && g.pb[2] == 0 &&
                 g.pe[1] == 0 && g.pe[2] == 0 && !st->x_signed && C % 4 == 0;
    st->row_taps = !st->direct && !st->x_signed && C % 4 != 0 && g.d[2] == 1;
    // Row taps: kernel row ky is Cr GEMM depths, kx * C + c of them holding weights.
    const int64_t Cr = (KW * C + 3) / 4 * 4, K = st->row_taps ? KH * Cr : taps * C;
    st->wk.assign(size_t(K * M), 0);
    for (int64_t m = 0; m < M; ++m)
      for (int64_t c = 0; c < C; ++c)
        for (int64_t t = 0; t < taps; ++t) {
          const int64_t k = st->row_taps ? t / KW * Cr + t % KW * C + c : t * C + c;
          st->wk[size_t(k * M + m)] = w[(m * C + c) * taps + t];
        }
    st->gemm = U8s8Weights(K, M, st->wk.data(), M);
    if (st->gemm.isa() == IgemmIsa::Avx2) {
      static std::once_flag once;  // said once per process
      std::call_once(once, [] {
        std::fprintf(stderr,
                     "note: no VNNI on this CPU (or ENGINE_ISA=avx2): INT8 convolutions widen u8 x "
                     "s8 products to int16 (VPMADDWD; exact, no VPMADDUBSW saturation), same "
                     "results as the VNNI paths, about a third of their speed\n");
      });
    }
    const int32_t zp = st->pad;
    for (int64_t m = 0; m < M; ++m) {
      uint32_t colsum = 0;
      for (int64_t k = 0; k < K; ++k) colsum += uint32_t(int32_t(st->wk[size_t(k * M + m)]));
      st->off[size_t(m)] = int32_t(uint32_t(bias[size_t(m)]) - uint32_t(zp) * colsum);
    }
    st->ind_taps = st->row_taps ? KH : taps;
    st->indirect = !st->direct && !st->x_signed && U8s8Gemm::indirect_ok(st->gemm, st->ind_taps);
    st->row_bytes = Cr;
    if (st->indirect) st->pad_pixel.assign(size_t(st->row_taps ? Cr : C), st->pad);
  }
  // Requantization constants.
  const DType yt = ctx.dtype(7);
  const float xs = scales_of(constant(ctx, 1, "x_scale"), 1, kOp, "x_scale", false)[0];
  const float ys = scales_of(constant(ctx, 6, "y_scale"), 1, kOp, "y_scale", true)[0];
  const std::vector<float> ws = scales_of(constant(ctx, 4, "w_scale"), M, kOp, "w_scale", false);
  const int32_t yzp = zero_points_of(&constant(ctx, 7, "y_zero_point"), 1, kOp, "y_zero_point")[0];
  const RequantAttrs ra = requant_attrs(n, yt, false);
  st->rq = ChannelRequant(ra, xs, ws, ys, yzp);
  st->post = ctx.has_input(12);
  st->has_sum = ctx.has_input(9) && !st->post;
  if (st->post) {
    const auto [lo, hi] = add_range(n, yt);
    st->post_add =
        qpt::QAddFloat(yt, ys, yzp, ctx.dtype(9),
                       scales_of(constant(ctx, 10, "sum_scale"), 1, kOp, "sum_scale", true)[0],
                       zero_points_of(single(11), 1, kOp, "sum_zero_point")[0],
                       scales_of(constant(ctx, 12, "add_y_scale"), 1, kOp, "add_y_scale", true)[0],
                       zero_points_of(single(13), 1, kOp, "add_y_zero_point")[0], lo, hi, yt);
  }
  if (st->has_sum)
    st->rq.set_sum(scales_of(constant(ctx, 10, "sum_scale"), 1, kOp, "sum_scale", false)[0],
                   zero_points_of(single(11), 1, kOp, "sum_zero_point")[0], ys);
  std::vector<RequantRow> rows(static_cast<size_t>(M));
  for (int64_t c = 0; c < M; ++c) rows[size_t(c)] = st->rq.row(c, 0);
  st->lanes = ChannelLaneTables(rows, st->off);
  return st;
}

// Output writer: y[pixel][c] = requant(acc + off[c]) for a tile of consecutive pixels and
// channels [c0, c0 + n).
struct Writer {
  const State* st;
  uint8_t* y;
  const uint8_t* sum;
  Q8Type yt, sumt;
  DType sdt;
  const uint8_t* post_b = nullptr;  // the sum of an add after requantization (State::post)

  // The add after requantization on pixels [p0, p0 + rows), channels [c0, c1), once written.
  void post_add(int64_t p0, int64_t rows, int64_t c0, int64_t c1) const {
    const int64_t M = st->g.M;
    if (c0 == 0 && c1 == M) {  // whole rows: one contiguous run
      st->post_add.run(y + p0 * M, post_b + p0 * M, rows * M, y + p0 * M);
      return;
    }
    for (int64_t r = p0; r < p0 + rows; ++r)
      st->post_add.run(y + r * M + c0, post_b + r * M + c0, c1 - c0, y + r * M + c0);
  }

  void tile(int64_t pixel, int64_t rows, int64_t c0, const int32_t* acc, int64_t lda,
            int64_t n) const {
    const int64_t M = st->g.M, at = pixel * M + c0;
    // The next tile of this panel: the following `rows` pixels.
    prefetch_rows(y + at, sum ? sum + at : nullptr, M, rows, 2 * rows, n);
    ChannelTile t;
    t.acc = acc, t.lda = lda, t.rows = rows, t.y = y + at, t.ldy = M;
    t.sum = sum ? sum + at : nullptr;
    if (st->lanes.simd() && requant_channels_simd(st->lanes.lanes(), c0, n, t, yt, sumt)) return;
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t i = 0; i < n; ++i) {
        const int64_t c = c0 + i, o = at + r * M + i;
        const int32_t a = wrap_add(acc[r * lda + i], st->off[size_t(c)]);
        int32_t v;
        if (!sum)
          v = st->rq(a, c);
        else
          v = st->rq(a, sdt == DType::U8 ? int32_t(sum[o]) : int32_t(int8_t(sum[o])), c);
        y[o] = uint8_t(v);  // the low byte: the int8 value for int8 outputs
      }
  }
};

struct SinkCtx {
  const Writer* w;
  int64_t r0;  // first pixel of the GEMM rows
};

void sink(void* ctx, int64_t r0, int64_t rows, int64_t c0, int64_t cols, const int32_t* tile,
          int64_t ldt) {
  const auto* s = static_cast<const SinkCtx*>(ctx);
  s->w->tile(s->r0 + r0, rows, c0, tile, ldt, cols);
}

// n bytes, n small (a few kernel taps of a few channels): overlapping fixed-size copies instead
// of a memcpy call.
inline void copy_small(uint8_t* d, const uint8_t* s, int64_t n) {
  if (n >= 16) {
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) std::memcpy(d + i, s + i, 16);
    if (i < n) std::memcpy(d + n - 16, s + n - 16, 16);
  } else if (n >= 8) {
    std::memcpy(d, s, 8);
    std::memcpy(d + n - 8, s + n - 8, 8);
  } else if (n >= 4) {
    std::memcpy(d, s, 4);
    std::memcpy(d + n - 4, s + n - 4, 4);
  } else {
    for (int64_t i = 0; i < n; ++i) d[i] = s[i];
  }
}

// Copies n input bytes as the GEMM's uint8 (int8 inputs shifted by 128).
inline void copy_input(const State& st, const uint8_t* src, int64_t n, uint8_t* d) {
  if (!st.x_signed) {
    copy_small(d, src, n);
    return;
  }
  for (int64_t c = 0; c < n; ++c) d[c] = uint8_t(src[c] ^ 0x80u);
}

// Output pixel p as (n, oy, ox), advanced one pixel at a time (the GEMM rows of a row block).
struct PixelCursor {
  int64_t OH, OW, n, oy, ox;
  PixelCursor(const ConvGeom& g, int64_t p)
      : OH(g.out[1]), OW(g.out[2]), n(p / (OH * OW)), oy(p / OW % OH), ox(p % OW) {}
  void next() {
    if (++ox < OW) return;
    ox = 0;
    if (++oy == OH) oy = 0, ++n;
  }
};

// im2col rows for pixels [p0, p0 + rows): row r holds, for each tap, the C input bytes (as the
// GEMM's uint8), or the zero point in padding; Kp - K trailing bytes are zero. Taps of one kernel
// row that lie inside the input are adjacent pixels (dilation 1): one copy of KW * C bytes.
void im2col(const State& st, const uint8_t* x, int64_t p0, int64_t rows, uint8_t* A, int64_t lda) {
  const ConvGeom& g = st.g;
  const int64_t C = g.C, IH = g.in[1], IW = g.in[2];
  const int64_t KH = g.k[1], KW = g.k[2], K = KH * KW * C;
  PixelCursor px(g, p0);
  for (int64_t r = 0; r < rows; ++r, px.next()) {
    const int64_t n = px.n, oy = px.oy, ox = px.ox;
    const int64_t ix0 = ox * g.s[2] - g.pb[2];
    const bool row_inside = g.d[2] == 1 && ix0 >= 0 && ix0 + KW <= IW;
    uint8_t* d = A + r * lda;
    for (int64_t ky = 0; ky < KH; ++ky) {
      const int64_t iy = oy * g.s[1] - g.pb[1] + ky * g.d[1];
      if (iy < 0 || iy >= IH) {
        std::memset(d, st.pad, size_t(KW * C));
        d += KW * C;
        continue;
      }
      const uint8_t* src_row = x + (n * IH + iy) * IW * C;
      if (row_inside) {
        copy_input(st, src_row + ix0 * C, KW * C, d);
        d += KW * C;
        continue;
      }
      for (int64_t kx = 0; kx < KW; ++kx, d += C) {
        const int64_t ix = ix0 + kx * g.d[2];
        if (ix < 0 || ix >= IW)
          std::memset(d, st.pad, size_t(C));
        else
          copy_input(st, src_row + ix * C, C, d);
      }
    }
    std::memset(A + r * lda + K, 0, size_t(lda - K));
  }
}

// The indirect GEMM rows of pixels [p0, p0 + rows): for each tap, a pointer to the input
// pixel's C channels, or to the zero-point pixel in padding (uint8 x only).
void indirection(const State& st, const uint8_t* x, int64_t p0, int64_t rows, const uint8_t** ind) {
  const ConvGeom& g = st.g;
  const int64_t C = g.C, IH = g.in[1], IW = g.in[2];
  const int64_t KH = g.k[1], KW = g.k[2];
  PixelCursor px(g, p0);
  for (int64_t r = 0; r < rows; ++r, px.next()) {
    const int64_t n = px.n, oy = px.oy, ox = px.ox;
    for (int64_t ky = 0; ky < KH; ++ky) {
      const int64_t iy = oy * g.s[1] - g.pb[1] + ky * g.d[1];
      const bool row_in = iy >= 0 && iy < IH;
      for (int64_t kx = 0; kx < KW; ++kx) {
        const int64_t ix = ox * g.s[2] - g.pb[2] + kx * g.d[2];
        *ind++ =
            row_in && ix >= 0 && ix < IW ? x + ((n * IH + iy) * IW + ix) * C : st.pad_pixel.data();
      }
    }
  }
}

// Row taps (State::row_taps): for pixels [p0, p0 + rows), one pointer per kernel row to its Cr
// bytes, KW * C of them the input pixels of the row (the rest multiply zero weights). Rows that
// cross a border of x, or whose Cr bytes would run past the end of x (xbytes), are assembled in
// `scratch` (rows * KH * Cr bytes); rows outside the input point at Cr zero points.
void row_indirection(const State& st, const uint8_t* x, int64_t xbytes, int64_t p0, int64_t rows,
                     const uint8_t** ind, uint8_t* scratch) {
  const ConvGeom& g = st.g;
  const int64_t C = g.C, IH = g.in[1], IW = g.in[2];
  const int64_t KH = g.k[1], KW = g.k[2], Cr = st.row_bytes;
  const uint8_t* pad = st.pad_pixel.data();
  // Per kernel row, set at each output row: the input row (nullptr: outside the input). Pixels
  // with 0 <= ix0 <= last read every kernel row in place (inside the row's pixels and inside x).
  thread_local std::vector<const uint8_t*> row_buf;
  row_buf.resize(size_t(KH));
  const uint8_t** row_ptr = row_buf.data();
  int64_t last = -1;
  PixelCursor px(g, p0);
  for (int64_t r = 0; r < rows; ++r, px.next()) {
    if (r == 0 || px.ox == 0) {
      last = IW - KW;
      for (int64_t ky = 0; ky < KH; ++ky) {
        const int64_t iy = px.oy * g.s[1] - g.pb[1] + ky * g.d[1];
        const int64_t row = (px.n * IH + iy) * IW;
        const bool in = iy >= 0 && iy < IH;
        row_ptr[ky] = in ? x + row * C : nullptr;
        if (in) last = std::min(last, xbytes >= Cr ? (xbytes - Cr) / C - row : -1);
      }
    }
    const int64_t ix0 = px.ox * g.s[2] - g.pb[2];
    if (ix0 >= 0 && ix0 <= last) {
      for (int64_t ky = 0; ky < KH; ++ky) ind[ky] = row_ptr[ky] ? row_ptr[ky] + ix0 * C : pad;
      ind += KH;
      continue;
    }
    // Crosses a border or the end of x: zero points around the pixels inside.
    for (int64_t ky = 0; ky < KH; ++ky, ++ind) {
      const uint8_t* src = row_ptr[ky];
      if (!src) {
        *ind = pad;
        continue;
      }
      uint8_t* d = scratch + (r * KH + ky) * Cr;
      std::fill(d, d + Cr, st.pad);
      for (int64_t kx = std::max<int64_t>(0, -ix0); kx < KW && ix0 + kx < IW; ++kx)
        std::copy(src + (ix0 + kx) * C, src + (ix0 + kx + 1) * C, d + kx * C);
      *ind = d;
    }
  }
}

// Pixels per thread up to which the GEMM splits a layer into one contiguous pixel range per
// thread (covers every layer of a 224x224 batch-1 run) when that gives each thread at least 8
// row tiles (fewer: the tile count's remainder unbalances the threads, as on 7x7 maps).
constexpr int64_t kLocalPixels = 16384;

void run_gemm(const State& st, const U8s8Weights& w, const uint8_t* x, const Writer& out,
              int threads) {
  const ConvGeom& g = st.g;
  const int64_t P = g.N * g.out[1] * g.out[2], Kp = w.padded_depth();
  const int64_t mr = U8s8Gemm::row_tile(w);
  // Row blocks of about 128 KB of A (L2, next to one weight panel), a multiple of the tile height.
  int64_t rb = std::clamp<int64_t>((int64_t(1) << 17) / Kp / mr * mr, mr, 32 * mr);
  const int nt = std::max(1, threads);
  const int64_t panels = w.panels();
  // Too few row blocks for the threads (7x7 maps at batch 1): split the column panels too when
  // they divide evenly or are many; else use smaller row blocks, down to the row tiles (160
  // columns = 3 panels on 2 threads went 64 / 96, 5 of them 2 / 3).
  if ((P + rb - 1) / rb < 2 * nt && panels % nt != 0 && panels < 4 * nt) {
    const int64_t tiles = (P + mr - 1) / mr;
    rb = std::min(rb, std::max<int64_t>(1, tiles / (2 * nt)) * mr);
  }
  const int64_t row_blocks = (P + rb - 1) / rb;
  int64_t groups = 1;
  if (row_blocks < 2 * nt) groups = std::min(panels, (2 * nt + row_blocks - 1) / row_blocks);
  const int64_t items = row_blocks * groups;
  // Full tiles are requantized inside the micro-kernel where the path has that (avx512_vnni).
  const bool fuse = st.lanes.simd() && requant_channels_fusable(st.lanes.lanes(), out.yt);
  const auto block = [&](int64_t r0, int64_t rows, int64_t p0, int64_t p1) {
    SinkCtx ctx{&out, r0};
    FusedOutput f;
    f.lanes = &st.lanes.lanes(), f.y = out.y + r0 * g.M, f.ldy = g.M;
    f.sum = out.sum ? out.sum + r0 * g.M : nullptr, f.sum_type = out.sumt, f.y_type = out.yt;
    const FusedOutput* fused = fuse ? &f : nullptr;
    if (st.direct) {
      U8s8Gemm::run(w, x + r0 * g.C, g.C, rows, p0, p1, sink, &ctx, fused);
    } else if (st.indirect) {
      const int64_t taps = st.ind_taps;
      thread_local std::vector<const uint8_t*> ind;
      if (ind.size() < size_t(rb * taps)) ind.resize(size_t(rb * taps));
      if (st.row_taps) {
        thread_local std::vector<uint8_t> scratch;
        if (scratch.size() < size_t(rb * taps * st.row_bytes))
          scratch.resize(size_t(rb * taps * st.row_bytes));
        row_indirection(st, x, g.N * g.in[1] * g.in[2] * g.C, r0, rows, ind.data(), scratch.data());
      } else {
        indirection(st, x, r0, rows, ind.data());
      }
      U8s8Gemm::run_indirect(w, ind.data(), taps, rows, p0, p1, sink, &ctx, fused);
    } else {
      thread_local std::vector<uint8_t> A;
      if (A.size() < size_t(rb * Kp)) A.resize(size_t(rb * Kp));
      im2col(st, x, r0, rows, A.data(), Kp);
      U8s8Gemm::run(w, A.data(), Kp, rows, p0, p1, sink, &ctx, fused);
    }
    if (st.post) out.post_add(r0, rows, w.panel_begin(p0), w.panel_end(p1 - 1));
  };
  if (nt > 1 && (st.direct || st.indirect) && P <= nt * kLocalPixels && P >= 8 * nt * mr) {
    // Small layers (batch 1): thread t takes pixels [t P / nt, (t + 1) P / nt) (tile aligned),
    // all channels, the same split in every layer and as the depthwise rows, so a layer reads
    // mostly what its own core wrote; across cores the activations move through L3 (mobilenet_v2
    // batch 1 gained little from a second thread with interleaved blocks).
#pragma omp parallel for num_threads(nt) schedule(static, 1)
    for (int t = 0; t < nt; ++t) {
      const int64_t b = P * t / nt / mr * mr, e = t + 1 == nt ? P : P * (t + 1) / nt / mr * mr;
      for (int64_t r0 = b; r0 < e; r0 += rb) block(r0, std::min(rb, e - r0), 0, panels);
    }
    return;
  }
#pragma omp parallel for num_threads(nt) schedule(dynamic) if (nt > 1 && items > 1)
  for (int64_t it = 0; it < items; ++it) {
    const int64_t b = it / groups, gi = it % groups;
    const int64_t r0 = b * rb;
    block(r0, std::min(rb, P - r0), gi * panels / groups, (gi + 1) * panels / groups);
  }
}

// Depthwise. acc[c] = sum over taps of x * w; the zero point term -x_zp * sum_t w[t][c] is folded
// into off[c], and taps in the padding read zero points ((x_zp - x_zp) * w = 0, as the
// reference). Work unit: one output row x one block of L channels. The block's weights stay in
// registers; each output pixel is one widening load and one multiply-add per tap (on AVX-512
// VNNI, 3x3 interior pixels go four at a time: group4); the block's OW x L accumulators (in L1)
// are requantized together.
//
// Ops: L lanes of int32. load_x(p, n) widens n <= L input values (n < L: the channel tail),
// load_w(p) reads L weights (the weight rows are padded), madd(acc, x, w) = acc + x * w wrapping
// (|x * w| <= 32640), store(p, v) writes L accumulators; weights(st) is the weight table load_w
// reads, kGroups whether Ops has group4.
//
// dw_block / dw_row are always inlined into the ISA wrappers below (core/simd_diagnostics.h).
ENGINE_SIMD_WARNINGS_OFF
struct DwScalar {
  static constexpr int L = 1;
  static constexpr bool kGroups = false;  // no group4 (below)
  using V = uint32_t;
  static const int32_t* weights(const State& st) { return st.dw_w.data(); }
  static V zero() { return 0; }
  template <class T>
  static V load_x(const T* p, int64_t) {
    return uint32_t(int32_t(*p));
  }
  static V load_w(const int32_t* p) { return uint32_t(*p); }
  static V madd(V a, V x, V w) { return a + x * w; }
  static void store(int32_t* p, V v) { *p = int32_t(v); }
};

template <class Ops, class T, int KH, int KW>
[[gnu::always_inline]] inline void dw_block(const State& st, const T* x, int64_t r, int64_t c,
                                            int32_t* tile, const Writer& out) {
  using V = typename Ops::V;
  constexpr int L = Ops::L;
  const ConvGeom& g = st.g;
  const int64_t C = g.C, IH = g.in[1], IW = g.in[2], OH = g.out[1], OW = g.out[2];
  const int64_t kh = KH ? KH : g.k[1], kw = KW ? KW : g.k[2];
  const int64_t sx = g.s[2], dx = g.d[2], px = g.pb[2], n = std::min<int64_t>(L, C - c);
  const T* zrow = reinterpret_cast<const T*>(st.zrow.data());  // IW x C zero points
  // Weights in registers for fixed kernel sizes (a lambda would not inherit the ISA target).
  constexpr bool kRegs = KH * KW > 0;
  V wr[kRegs ? KH * KW : 1];
  if constexpr (kRegs)
    for (int t = 0; t < KH * KW; ++t) wr[t] = Ops::load_w(Ops::weights(st) + t * C + c);
#define ENGINE_DW_WEIGHT(t) \
  (kRegs ? wr[kRegs ? (t) : 0] : Ops::load_w(Ops::weights(st) + (t)*C + c))
  const int64_t b = r / OH, oy = r % OH;
  constexpr int kMaxRows = 16;
  const T* rows_fixed[kMaxRows];
  std::vector<const T*> rows_dyn;
  const T** rows = rows_fixed;
  if (kh > kMaxRows) rows_dyn.resize(size_t(kh)), rows = rows_dyn.data();
  for (int64_t ky = 0; ky < kh; ++ky) {
    const int64_t iy = oy * g.s[1] - g.pb[1] + ky * g.d[1];
    rows[ky] = (iy >= 0 && iy < IH ? x + (b * IH + iy) * IW * C : zrow) + c;
  }
  for (int64_t ox = 0; ox < OW; ++ox) {
    const int64_t ix0 = ox * sx - px;
    if constexpr (Ops::kGroups && KH == 3 && KW == 3) {
      // Four interior pixels of a full channel block at once (stride 1 or 2, no dilation).
      // (Eight were no faster: the requantization of the tile, not the sums, bounds the time.)
      if (n == L && dx == 1 && (sx == 1 || sx == 2) && ox + 4 <= OW && ix0 >= 0 &&
          ix0 + 3 * sx + 2 < IW) {
        if (sx == 1)
          Ops::template group4<T, 1>(rows, ix0 * C, C, wr, tile + ox * L);
        else
          Ops::template group4<T, 2>(rows, ix0 * C, C, wr, tile + ox * L);
        ox += 3;
        continue;
      }
    }
    V acc = Ops::zero();
    if (ix0 >= 0 && ix0 + (kw - 1) * dx < IW) {
      for (int64_t ky = 0; ky < kh; ++ky)
        for (int64_t kx = 0; kx < kw; ++kx)
          acc = Ops::madd(acc, Ops::load_x(rows[ky] + (ix0 + kx * dx) * C, n),
                          ENGINE_DW_WEIGHT(ky * kw + kx));
    } else {
      for (int64_t ky = 0; ky < kh; ++ky)
        for (int64_t kx = 0; kx < kw; ++kx) {
          const int64_t ix = ix0 + kx * dx;
          const T* p = ix >= 0 && ix < IW ? rows[ky] + ix * C : zrow + c;
          acc = Ops::madd(acc, Ops::load_x(p, n), ENGINE_DW_WEIGHT(ky * kw + kx));
        }
    }
    Ops::store(tile + ox * L, acc);
  }
  out.tile(r * OW, OW, c, tile, L, n);
#undef ENGINE_DW_WEIGHT
}

// One output row, all channel blocks; 3x3 and 5x5 kernels get unrolled tap loops.
template <class Ops, class T>
[[gnu::always_inline]] inline void dw_row(const State& st, const T* x, int64_t r, int64_t c0,
                                          int64_t c1, int32_t* tile, const Writer& out) {
  const int64_t KH = st.g.k[1], KW = st.g.k[2];
  for (int64_t c = c0; c < c1; c += Ops::L) {
    if (KH == 3 && KW == 3)
      dw_block<Ops, T, 3, 3>(st, x, r, c, tile, out);
    else if (KH == 5 && KW == 5)
      dw_block<Ops, T, 5, 5>(st, x, r, c, tile, out);
    else
      dw_block<Ops, T, 0, 0>(st, x, r, c, tile, out);
  }
}

#if defined(__GNUC__) && defined(__x86_64__)
#define ENGINE_DW_AVX2 __attribute__((target("avx2")))
#define ENGINE_DW_AVX512 __attribute__((target("avx2,avx512f,avx512bw,avx512vl,avx512vnni")))

// 8 lanes: VPMOVZXBD / VPMOVSXBD, VPMULLD, VPADDD; a channel tail goes through a copy.
struct DwAvx2 {
  static constexpr int L = 8;
  static constexpr bool kGroups = false;
  using V = __m256i;
  static const int32_t* weights(const State& st) { return st.dw_w.data(); }
  ENGINE_DW_AVX2 static V zero() { return _mm256_setzero_si256(); }
  template <class T>
  ENGINE_DW_AVX2 static V load_x(const T* p, int64_t n) {
    __m128i b;
    if (n == 8) {
      b = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(p));
    } else {
      alignas(16) T tmp[16] = {};
      std::memcpy(tmp, p, size_t(n));
      b = _mm_load_si128(reinterpret_cast<const __m128i*>(tmp));
    }
    return std::is_signed_v<T> ? _mm256_cvtepi8_epi32(b) : _mm256_cvtepu8_epi32(b);
  }
  ENGINE_DW_AVX2 static V load_w(const int32_t* p) {
    return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
  }
  ENGINE_DW_AVX2 static V madd(V a, V x, V w) {
    return _mm256_add_epi32(a, _mm256_mullo_epi32(x, w));
  }
  ENGINE_DW_AVX2 static void store(int32_t* p, V v) {
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), v);
  }
};

// 16 lanes, masked loads for the channel tail.
ENGINE_SIMD_WARNINGS_OFF
struct DwAvx512 {
  static constexpr int L = 16;
  static constexpr bool kGroups = true;
  using V = __m512i;
  static const int32_t* weights(const State& st) { return st.dw_w16.data(); }
  ENGINE_DW_AVX512 static V zero() { return _mm512_setzero_si512(); }
  template <class T>
  ENGINE_DW_AVX512 static V load_x(const T* p, int64_t n) {
    const __m128i b = n == 16 ? _mm_loadu_si128(reinterpret_cast<const __m128i*>(p))
                              : _mm_maskz_loadu_epi8(__mmask16((1u << n) - 1), p);
    return std::is_signed_v<T> ? _mm512_cvtepi8_epi32(b) : _mm512_cvtepu8_epi32(b);
  }
  ENGINE_DW_AVX512 static V load_w(const int32_t* p) { return _mm512_loadu_si512(p); }
  // x and w are int16 in the low half of each lane, w's high half 0: VPDPWSSD adds x * w + 0.
  ENGINE_DW_AVX512 static V madd(V a, V x, V w) { return _mm512_dpwssd_epi32(a, x, w); }
  // The accumulators of 4 output pixels (stride S) of one full channel block of a 3x3 kernel:
  // rows[ky] + at is the first tap of the first pixel. Each input pixel is loaded once for the
  // (up to) three outputs it feeds; four independent sums.
  template <class T, int S>
  ENGINE_DW_AVX512 static void group4(const T* const* rows, int64_t at, int64_t C, const V* w,
                                      int32_t* out) {
    constexpr int P = 4;
    V a[P] = {zero(), zero(), zero(), zero()};
#pragma GCC unroll 3
    for (int ky = 0; ky < 3; ++ky) {
      const T* r = rows[ky] + at;
#pragma GCC unroll 9
      for (int j = 0; j < S * (P - 1) + 3; ++j) {
        const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(r + j * C));
        const V x = std::is_signed_v<T> ? _mm512_cvtepi8_epi32(b) : _mm512_cvtepu8_epi32(b);
#pragma GCC unroll 4
        for (int p = 0; p < P; ++p)
          if (j - S * p >= 0 && j - S * p < 3) a[p] = madd(a[p], x, w[3 * ky + j - S * p]);
      }
    }
#pragma GCC unroll 4
    for (int p = 0; p < P; ++p) store(out + p * L, a[p]);
  }
  ENGINE_DW_AVX512 static void store(int32_t* p, V v) {
    _mm512_storeu_si512(p, v);
  }
};

template <class T>
ENGINE_DW_AVX512 void dw_row_avx512(const State& st, const T* x, int64_t r, int64_t c0, int64_t c1,
                                    int32_t* tile, const Writer& out) {
  dw_row<DwAvx512>(st, x, r, c0, c1, tile, out);
}
ENGINE_SIMD_WARNINGS_ON

template <class T>
ENGINE_DW_AVX2 void dw_row_avx2(const State& st, const T* x, int64_t r, int64_t c0, int64_t c1,
                                int32_t* tile, const Writer& out) {
  dw_row<DwAvx2>(st, x, r, c0, c1, tile, out);
}
#endif

// Work items: output rows, or, when there are few rows for the threads (7x7 maps: 7 rows on 2
// threads left one thread 4 rows and the other 3, slower than one thread), output rows x blocks
// of 64 channels, in row-major order (a static split still gives each thread a contiguous range
// of pixels, as the small GEMM layers).
template <class T>
void run_depthwise(const State& st, const T* x, const Writer& out, int threads) {
  const int64_t R = st.g.N * st.g.out[1], C = st.g.C;
  const int nt = std::max(1, threads);
  constexpr int64_t kBlock = 64;  // a multiple of every path's lane count
  const int64_t cb = R < 8 * nt ? (C + kBlock - 1) / kBlock : 1, width = cb == 1 ? C : kBlock;
  const IgemmIsa isa = igemm_isa();
#pragma omp parallel num_threads(nt) if (nt > 1)
  {
    std::vector<int32_t> tile(size_t(st.g.out[2] * 16));
#pragma omp for schedule(static)
    for (int64_t it = 0; it < R * cb; ++it) {
      const int64_t r = it / cb, c0 = it % cb * width, c1 = std::min(C, c0 + width);
#if defined(__GNUC__) && defined(__x86_64__)
      if (isa == IgemmIsa::Avx512Vnni)
        dw_row_avx512(st, x, r, c0, c1, tile.data(), out);
      else if (isa >= IgemmIsa::Avx2)
        dw_row_avx2(st, x, r, c0, c1, tile.data(), out);
      else
#endif
        dw_row<DwScalar>(st, x, r, c0, c1, tile.data(), out);
    }
  }
}
ENGINE_SIMD_WARNINGS_ON

Q8Type q8type(DType t) {
  return t == DType::U8 ? Q8Type::U8 : Q8Type::I8;
}

void kernel(KernelContext& kc) {
  const auto* st = static_cast<const State*>(kc.state);
  ENGINE_CHECK(st, kOp, " '", kc.node.name, "': not prepared");
  const Tensor& X = kc.in(0);
  Tensor& Y = kc.out(0);
  ENGINE_CHECK(nhwc_to_nchw(X.shape()) == Dims({st->g.N, st->g.C, st->g.in[1], st->g.in[2]}), kOp,
               " '", kc.node.name, "': input shape ", dims_str(X.shape()),
               " differs from the prepared plan");
  if (Y.numel() == 0) return;
  const IgemmIsa isa = igemm_isa();  // throws on a bad ENGINE_ISA here, outside parallel regions
  Writer out{st,       static_cast<uint8_t*>(Y.raw()), nullptr, q8type(Y.dtype()), Q8Type::None,
             DType::U8};
  if (st->has_sum || st->post) {
    const Tensor& S = kc.in(9);
    ENGINE_CHECK(S.shape() == Y.shape(), kOp, ": sum must have the output shape");
    if (st->post) {
      out.post_b = static_cast<const uint8_t*>(S.raw());
    } else {
      out.sum = static_cast<const uint8_t*>(S.raw());
      out.sumt = q8type(S.dtype());
      out.sdt = S.dtype();
    }
  }
  if (st->dw) {
    dispatch_q8(X.dtype(),
                [&](auto tx) { run_depthwise(*st, X.data<decltype(tx)>(), out, kc.num_threads); });
    return;
  }
  const auto* x = static_cast<const uint8_t*>(X.raw());
  if (st->gemm.isa() == isa) {
    run_gemm(*st, st->gemm, x, out, kc.num_threads);
    return;
  }
  // The path changed since prepare (tests and benchmarks switch ENGINE_ISA): pack again.
  const U8s8Weights w(st->gemm.depth(), st->g.M, st->wk.data(), st->g.M);
  run_gemm(*st, w, x, out, kc.num_threads);
}

}  // namespace

void register_x86_int8(OpRegistry& r) {
  OpSchema s;
  s.op_type = "NhwcQConv";
  s.domain = "engine";
  s.min_inputs = 8;
  s.max_inputs = 14;
  s.validate = [](const Node& n) {
    conv_validate_attrs(n);
    validate_requant_attrs(n);
  };
  s.infer = infer;
  s.prepare = prepare;
  s.kernel = kernel;
  r.add(std::move(s));
}

}  // namespace engine::x86
