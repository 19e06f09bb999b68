// Integer average pools on per-tensor quantized uint8 / int8 tensors (design: quant_spec).
//
//  QAveragePool, QGlobalAveragePool (engine) and QLinearAveragePool, QLinearGlobalAveragePool
//  (com.microsoft): inputs x, x_scale, x_zp, y_scale, y_zp; AveragePool attributes (geometry
//  shared with the float pools, ops/pool_geom.h).
//    acc = sum over the window of (x - x_zp)                  (int32, exact)
//    y   = y_zp + requant(acc, x_s / (y_s * count))           (one rounding)
//  count follows ONNX count_include_pad (taps inside the padded extent, or inside the input).
//  fixed: apply_multiplier(acc, decompose_multiplier(M, scale_bits)) with M in double;
//  float: apply_float_multiplier(acc, x_s / (y_s * count)) evaluated in float32.
//  The com.microsoft ops always use float mode and the full output range. The global pools also
//  take channels_last = 1 (X [N, spatial..., C] -> Y [N, 1..., C]; the lowering uses it on NHWC
//  values); the windowed ones only channels_last = 0 (NCHW).
#include <algorithm>
#include <limits>
#include <string>

#include "ops/ops.h"
#include "ops/pool_geom.h"
#include "ops/qpertensor.h"

namespace engine {
namespace {

using namespace qpt;
using namespace pool;

constexpr const char* kMs = "com.microsoft";
// Largest window whose sum of (x - x_zp) (|.| <= 255) fits an int32.
constexpr int64_t kMaxTaps = std::numeric_limits<int32_t>::max() / 255;

void validate_qpool(const Node& node, bool global) {
  validate_requant_attrs(node);
  const int64_t cl = node.attrs.get_int("channels_last", 0);
  if (global)
    ENGINE_CHECK(cl == 0 || cl == 1, "attribute channels_last=", cl, " must be 0 or 1");
  else
    ENGINE_CHECK(cl == 0, "attribute channels_last=", cl,
                 " is not supported: only channels_last=0 (NCHW input) is implemented");
  if (!global) validate_pool_attrs(node, PoolKind::Avg);
}

// Checks the quantization inputs; returns the output type.
DType infer_qparams(const InferContext& ctx, bool alias) {
  check_q8(ctx.dtype(0), "input X");
  infer_scale(ctx, 1, "x_scale");
  infer_zero_point(ctx, 2, ctx.dtype(0), "x_zero_point");
  infer_scale(ctx, 3, "y_scale");
  const DType out = ctx.has_input(4) ? ctx.dtype(4) : ctx.dtype(0);
  check_q8(out, "input y_zero_point");
  infer_zero_point(ctx, 4, out, "y_zero_point");
  requant_attrs(ctx.node(), out, alias);
  return out;
}

struct QPoolParams {
  float xs = 1, ys = 1;
  int32_t zx = 0, zy = 0;
  RequantAttrs ra;
  // The requantizer for a window of `count` taps.
  Requantizer for_count(int64_t count) const {
    return Requantizer(ra, double(xs) / (double(ys) * double(count)), xs / (ys * float(count)), zy);
  }
};

QPoolParams qpool_params(const KernelContext& kc, bool alias) {
  QPoolParams p;
  p.xs = scale_at(kc, 1, "x_scale");
  p.ys = scale_at(kc, 3, "y_scale");
  p.zx = zero_point_at(kc, 2);
  p.zy = zero_point_at(kc, 4);
  p.ra = requant_attrs(kc.node, kc.out(0).dtype(), alias);
  return p;
}

template <class TX, class TY>
void qavgpool_kernel(const PoolGeom& g, const TX* x, TY* y, bool count_include_pad,
                     const QPoolParams& p) {
  const int64_t total = g.planes * g.out_size;
  const WinTables tables = window_tables(g);
#pragma omp parallel for schedule(static)
  for (int64_t t = 0; t < total; ++t) {
    const int64_t plane = t / g.out_size;
    const Window w = make_window(g, tables, t % g.out_size);
    const TX* xp = x + plane * g.in_size;
    int32_t acc = 0;
    for_each_tap(g, w, [&](int64_t off, const auto&) { acc += int32_t(xp[off]) - p.zx; });
    const int64_t n = count_include_pad ? w.padded : w.valid;
    // A window entirely inside the padding (count 0) has nothing to average: y = y_zp.
    y[t] = TY(n > 0 ? p.for_count(n)(acc) : std::clamp(p.zy, p.ra.lo, p.ra.hi));
  }
}

// Channels last: x [N, n pixels, C]; the same int32 sums, accumulated over a row of channels.
template <class TX, class TY>
void qglobal_kernel_nhwc(const TX* x, TY* y, int64_t N, int64_t n, int64_t C,
                         const QPoolParams& p) {
  const Requantizer rq = p.for_count(n);
  constexpr int64_t kCols = 256;  // channels per work item
  const int64_t col_blocks = (C + kCols - 1) / kCols;
#pragma omp parallel for schedule(static) if (N * col_blocks > 1)
  for (int64_t it = 0; it < N * col_blocks; ++it) {
    const int64_t b = it / col_blocks, c0 = it % col_blocks * kCols, m = std::min(kCols, C - c0);
    int32_t acc[kCols] = {};
    for (int64_t i = 0; i < n; ++i) {
      const TX* xp = x + (b * n + i) * C + c0;
      for (int64_t c = 0; c < m; ++c) acc[c] += int32_t(xp[c]);
    }
    for (int64_t c = 0; c < m; ++c) y[b * C + c0 + c] = TY(rq(acc[c] - int32_t(n) * p.zx));
  }
}

template <class TX, class TY>
void qglobal_kernel(const TX* x, TY* y, int64_t planes, int64_t n, const QPoolParams& p) {
  const Requantizer rq = p.for_count(n);
#pragma omp parallel for schedule(static)
  for (int64_t c = 0; c < planes; ++c) {
    const TX* xp = x + c * n;
    int32_t acc = 0;
    for (int64_t i = 0; i < n; ++i) acc += int32_t(xp[i]) - p.zx;
    y[c] = TY(rq(acc));
  }
}

void add_qavgpool(OpRegistry& r, const char* op, const char* domain, bool alias) {
  OpSchema s;
  s.op_type = op;
  s.domain = domain;
  s.min_inputs = 4;  // y_zero_point may be omitted
  s.max_inputs = 5;
  s.validate = [](const Node& node) { validate_qpool(node, false); };
  s.infer = [alias](InferContext& ctx) {
    const DType out = infer_qparams(ctx, alias);
    const PoolGeom g = pool_geometry(ctx.node(), ctx.shape(0));
    int64_t taps = 1;
    for (int64_t k : g.kernel) taps = std::min(taps * k, kMaxTaps + 1);
    ENGINE_CHECK(taps <= kMaxTaps, "kernel_shape ", dims_str(g.kernel), " has more than ", kMaxTaps,
                 " taps: the int32 window sum could overflow");
    ctx.set_output(0, out, pool_out_shape(ctx.shape(0), g));
  };
  s.kernel = [alias](KernelContext& kc) {
    const Tensor& x = kc.in(0);
    Tensor& y = kc.out(0);
    const PoolGeom g = pool_geometry(kc.node, x.shape());
    const QPoolParams p = qpool_params(kc, alias);
    const bool cip = kc.attrs().get_int("count_include_pad", 0) != 0;
    dispatch_q8(x.dtype(), [&](auto tx) {
      using TX = decltype(tx);
      dispatch_q8(y.dtype(), [&](auto ty) {
        using TY = decltype(ty);
        qavgpool_kernel<TX, TY>(g, x.data<TX>(), y.data<TY>(), cip, p);
      });
    });
  };
  r.add(std::move(s));
}

void add_qglobal_avgpool(OpRegistry& r, const char* op, const char* domain, bool alias) {
  OpSchema s;
  s.op_type = op;
  s.domain = domain;
  s.min_inputs = 4;
  s.max_inputs = 5;
  s.validate = [](const Node& node) { validate_qpool(node, true); };
  s.infer = [alias](InferContext& ctx) {
    const DType out = infer_qparams(ctx, alias);
    const Dims& x = ctx.shape(0);
    const bool cl = ctx.node().attrs.get_int("channels_last", 0) == 1;
    ENGINE_CHECK(x.size() >= 3, "input X must have rank >= 3 (",
                 cl ? "N, spatial..., C" : "N, C, spatial...", "), got shape ", dims_str(x));
    Dims y = x;
    int64_t n = 1;
    for (size_t i = cl ? 1 : 2; i < x.size() - (cl ? 1 : 0); ++i) {
      ENGINE_CHECK(x[i] >= 1, "spatial dims of X must be >= 1, got shape ", dims_str(x));
      n = std::min(n * x[i], kMaxTaps + 1);
      y[i] = 1;
    }
    ENGINE_CHECK(n <= kMaxTaps, "X has more than ", kMaxTaps,
                 " spatial elements per channel: the int32 sum could overflow");
    ctx.set_output(0, out, y);
  };
  s.kernel = [alias](KernelContext& kc) {
    const Tensor& x = kc.in(0);
    Tensor& y = kc.out(0);
    const bool cl = kc.attrs().get_int("channels_last", 0) == 1;
    const int64_t C = cl ? x.dim(x.rank() - 1) : x.dim(1), planes = x.dim(0) * C;
    if (planes == 0) return;
    const int64_t n = x.numel() / planes;
    const QPoolParams p = qpool_params(kc, alias);
    dispatch_q8(x.dtype(), [&](auto tx) {
      using TX = decltype(tx);
      dispatch_q8(y.dtype(), [&](auto ty) {
        using TY = decltype(ty);
        if (cl)
          qglobal_kernel_nhwc<TX, TY>(x.data<TX>(), y.data<TY>(), x.dim(0), n, C, p);
        else
          qglobal_kernel<TX, TY>(x.data<TX>(), y.data<TY>(), planes, n, p);
      });
    });
  };
  r.add(std::move(s));
}

}  // namespace

void register_qpool_ops(OpRegistry& r) {
  add_qavgpool(r, "QAveragePool", "engine", false);
  add_qglobal_avgpool(r, "QGlobalAveragePool", "engine", false);
  add_qavgpool(r, "QLinearAveragePool", kMs, true);
  add_qglobal_avgpool(r, "QLinearGlobalAveragePool", kMs, true);
}

}  // namespace engine
