// Integer convolutions on one code path (results defined by the naive loops of the tests):
//   QConv (domain "engine"): x, x_scale, x_zp, w, w_scale, w_zp, y_scale, y_zp, [bias], [sum,
//     sum_scale, sum_zp]; attrs requant (fixed|float), scale_bits, out_min, out_max + Conv attrs.
//   QLinearConv (ONNX): inputs 0..8 as QConv; float requantization, full output range.
//   ConvInteger (ONNX): x, w, [x_zp], [w_zp] -> int32 accumulators, no requantization.
// Omitted zero points are 0 (only y_zero_point, which gives the output type, is required).
// acc[n, oc, p] = sum over (c, tap) of (x - x_zp) * (w[oc] - w_zp[oc]) + bias[oc]   (int32)
// then requantized per output channel (ops/qgemm_core.h, quant/fixedpoint.h).
//
// Per group: acc[Mg, cols] = W'[Mg, Cg*k] x col[Cg*k, cols] with W' = w - w_zp and col the
// im2col matrix of x - x_zp (int16; padding is 0, i.e. the zero point), by the integer GEMM of
// ops/igemm.h (SIMD paths chosen at run time, ENGINE_ISA; W' packed once per call). The columns
// of one work item are a range of output rows of one image, or, for small outputs, all positions
// of several images side by side; items run in parallel. Rows of accumulators are requantized with
// SIMD (ops/irequant.h) where the path has it. Depthwise convs (one input channel per group) use
// direct loops.
#include <algorithm>
#include <cstdint>
#include <limits>
#include <memory>
#include <utility>
#include <vector>

#include "ops/conv_geom.h"
#include "ops/ops.h"
#include "ops/qgemm_core.h"

namespace engine {
namespace {

using namespace qops;

enum class Kind { QConv, QLinearConv, ConvInteger };

const char* kind_name(Kind k) {
  return k == Kind::QConv ? "QConv" : k == Kind::QLinearConv ? "QLinearConv" : "ConvInteger";
}

// Input positions of each op.
struct Slots {
  int x = 0, x_scale = -1, x_zp = -1, w = -1, w_scale = -1, w_zp = -1, y_scale = -1, y_zp = -1,
      bias = -1, sum = -1, sum_scale = -1, sum_zp = -1;
};
Slots slots(Kind k) {
  if (k == Kind::ConvInteger) return Slots{0, -1, 2, 1, -1, 3, -1, -1, -1, -1, -1, -1};
  Slots s{0, 1, 2, 3, 4, 5, 6, 7, 8, -1, -1, -1};
  if (k == Kind::QConv) s.sum = 9, s.sum_scale = 10, s.sum_zp = 11;
  return s;
}

void qconv_infer(InferContext& ctx, Kind kind) {
  const char* op = kind_name(kind);
  const Slots s = slots(kind);
  const DType xt = ctx.dtype(s.x), wt = ctx.dtype(s.w);
  ENGINE_CHECK(is_q8(xt), op, ": x must be uint8 or int8, got ", dtype_name(xt));
  ENGINE_CHECK(is_q8(wt), op, ": w must be uint8 or int8, got ", dtype_name(wt));
  const ConvGeom g = conv_geometry(ctx.node(), ctx.shape(s.x), ctx.shape(s.w));
  const std::string x_dt = str_cat("the dtype of x (", dtype_name(xt), ")");
  const std::string w_dt = str_cat("the dtype of w (", dtype_name(wt), ")");
  const bool integer = kind == Kind::ConvInteger;
  // Omitted zero points are 0 (ConvInteger; tolerated for the others too).
  check_qparam(ctx, s.x_zp, op, "x_zero_point", xt, x_dt, -1, "", true);
  check_qparam(ctx, s.w_zp, op, "w_zero_point", wt, w_dt, g.M, "output channel", true);
  DType out = DType::I32;
  if (!integer) {
    check_scale_input(ctx, s.x_scale, op, "x_scale");
    check_scale_input(ctx, s.w_scale, op, "w_scale", g.M, "output channel");
    check_scale_input(ctx, s.y_scale, op, "y_scale");
    ENGINE_CHECK(ctx.has_input(s.y_zp), op, ": input y_zero_point (", s.y_zp, ") is required");
    out = ctx.dtype(s.y_zp);
    ENGINE_CHECK(is_q8(out), op, ": y_zero_point must be uint8 or int8 (it gives the output type)",
                 ", got ", dtype_name(out));
    check_qparam(ctx, s.y_zp, op, "y_zero_point", out, "type uint8 or int8");
    if (ctx.has_input(s.bias))
      ENGINE_CHECK(
          ctx.dtype(s.bias) == DType::I32 && ctx.rank(s.bias) == 1 && ctx.shape(s.bias)[0] == g.M,
          op, ": bias must be int32 with shape [", g.M, "] (one per output channel), got ",
          dtype_name(ctx.dtype(s.bias)), " ", dims_str(ctx.shape(s.bias)));
    requant_attrs(ctx.node(), out, kind == Kind::QLinearConv);  // checks out_min / out_max
  }
  if (s.sum >= 0 && ctx.has_input(s.sum)) {
    const DType st = ctx.dtype(s.sum);
    ENGINE_CHECK(is_q8(st), op, ": sum must be uint8 or int8, got ", dtype_name(st));
    ENGINE_CHECK(ctx.shape(s.sum) == g.out_shape(), op, ": sum must have the output shape ",
                 dims_str(g.out_shape()), ", got ", dims_str(ctx.shape(s.sum)));
    check_scale_input(ctx, s.sum_scale, op, "sum_scale");
    check_qparam(ctx, s.sum_zp, op, "sum_zero_point", st,
                 str_cat("the dtype of sum (", dtype_name(st), ")"), -1, "", true);
  }
  ctx.set_output(0, out, g.out_shape());
}

// Where the kernel taps read, for output rows [r0, r1) (a row is one (z, y) pair of OW
// positions), shared by all channels and images: per tap, the valid range [lo, hi) of output x
// and the input x of output x = 0; per (tap, row), the offset of the input row in a channel plane,
// or -1 when the row lies in the padding.
// Short output rows (OW < kShortRow) use per-position tables instead (row overheads dominate
// there): the offset of every position's input in the channel plane (0 in padding) and a mask
// that keeps (-1) or zeroes (0) the value, so the copy loop has no branch.
constexpr int64_t kShortRow = 16;

struct TapTable {
  int64_t r0 = 0, rows = 0, seg = 0;     // seg: positions per image (rows x OW)
  std::vector<int64_t> lo, hi, x0, row;  // row: [tap * rows + r - r0]
  std::vector<int32_t> pos;              // short rows: [tap * seg + p]
  std::vector<int16_t> keep;             // short rows: [tap * seg + p]
};

TapTable tap_table(const ConvGeom& g, int64_t r0, int64_t r1, bool short_rows = true) {
  const int64_t ID = g.in[0], IH = g.in[1], IW = g.in[2], OH = g.out[1], OW = g.out[2];
  const int64_t KH = g.k[1], KW = g.k[2], ksz = g.k_size();
  TapTable t;
  t.r0 = r0;
  t.rows = r1 - r0;
  t.lo.resize(size_t(ksz));
  t.hi.resize(size_t(ksz));
  t.x0.resize(size_t(ksz));
  t.row.resize(size_t(ksz * t.rows));
  for (int64_t kidx = 0; kidx < ksz; ++kidx) {
    const int64_t kz = kidx / (KH * KW), ky = (kidx / KW) % KH, kx = kidx % KW;
    const size_t i = size_t(kidx);
    t.x0[i] = kx * g.d[2] - g.pb[2];
    valid_range(t.x0[i], g.s[2], IW, OW, t.lo[i], t.hi[i]);
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t oz = r / OH, oy = r % OH;
      const int64_t iz = oz * g.s[0] - g.pb[0] + kz * g.d[0];
      const int64_t iy = oy * g.s[1] - g.pb[1] + ky * g.d[1];
      const bool in = iz >= 0 && iz < ID && iy >= 0 && iy < IH;
      t.row[size_t(kidx * t.rows + r - r0)] = in ? (iz * IH + iy) * IW : -1;
    }
  }
  t.seg = t.rows * OW;
  if (!short_rows || OW >= kShortRow || g.in_size() > std::numeric_limits<int32_t>::max()) return t;
  t.pos.assign(size_t(ksz * t.seg), 0);
  t.keep.assign(size_t(ksz * t.seg), 0);
  for (int64_t kidx = 0; kidx < ksz; ++kidx)
    for (int64_t r = 0; r < t.rows; ++r) {
      const int64_t row = t.row[size_t(kidx * t.rows + r)], base = (kidx * t.rows + r) * OW;
      if (row < 0) continue;
      for (int64_t ox = t.lo[size_t(kidx)]; ox < t.hi[size_t(kidx)]; ++ox) {
        t.pos[size_t(base + ox)] = int32_t(row + t.x0[size_t(kidx)] + ox * g.s[2]);
        t.keep[size_t(base + ox)] = -1;
      }
    }
  return t;
}

// One row of the im2col matrix (see ops/conv.cpp): x - x_zp under kernel tap kidx of channel
// plane xc, for the rows of table t; 0 in padding.
template <class T>
void im2col_row(const ConvGeom& g, const TapTable& t, const T* xc, int32_t xzp, int64_t kidx,
                int16_t* dst) {
  if (!t.pos.empty()) {
    const int32_t* pos = t.pos.data() + kidx * t.seg;
    const int16_t* keep = t.keep.data() + kidx * t.seg;
    for (int64_t p = 0; p < t.seg; ++p) dst[p] = int16_t((int32_t(xc[pos[p]]) - xzp) & keep[p]);
    return;
  }
  const int64_t OW = g.out[2], sx = g.s[2];
  const size_t i = size_t(kidx);
  const int64_t lo = t.lo[i], hi = t.hi[i];
  const int64_t* rows = t.row.data() + kidx * t.rows;
  for (int64_t r = 0; r < t.rows; ++r) {
    int16_t* d = dst + r * OW;
    if (rows[r] < 0) {
      std::fill(d, d + OW, int16_t(0));
      continue;
    }
    const T* xrow = xc + rows[r] + t.x0[i];
    std::fill(d, d + lo, int16_t(0));
    if (sx == 1) {  // contiguous: vectorizes
      for (int64_t ox = lo; ox < hi; ++ox) d[ox] = int16_t(int32_t(xrow[ox]) - xzp);
    } else {
      for (int64_t ox = lo; ox < hi; ++ox) d[ox] = int16_t(int32_t(xrow[ox * sx]) - xzp);
    }
    std::fill(d + hi, d + OW, int16_t(0));
  }
}

// One input channel per group: direct loops over the kernel taps, one (image, channel) plane at
// a time, reading through the tap table of all output rows (built once per call); padded taps
// are skipped (they contribute (x_zp - x_zp) * w = 0). Accumulators add as uint32 (wrapping
// modulo 2^32 like every integer path; each product fits int32).
template <class T>
void depthwise(const ConvGeom& g, const T* x, int32_t xzp, const int16_t* wq,
               const OutputWriter& out, int threads) {
  const int64_t Mg = g.M / g.group, OW = g.out[2], sx = g.s[2];
  const int64_t in_sz = g.in_size(), out_sz = g.out_size(), ksz = g.k_size();
  const TapTable t = tap_table(g, 0, g.out[0] * g.out[1], /*short_rows=*/false);
#pragma omp parallel num_threads(std::max(1, threads))
  {
    std::vector<int32_t> acc(static_cast<size_t>(out_sz));
#pragma omp for schedule(static)
    for (int64_t nm = 0; nm < g.N * g.M; ++nm) {
      const int64_t n = nm / g.M, m = nm % g.M;
      const T* xc = x + (n * g.C + m / Mg) * in_sz;
      std::fill(acc.begin(), acc.end(), 0);
      for (int64_t kidx = 0; kidx < ksz; ++kidx) {
        const int32_t wv = wq[m * ksz + kidx];
        if (wv == 0) continue;
        const size_t i = size_t(kidx);
        const int64_t lo = t.lo[i], hi = t.hi[i];
        const int64_t* rows = t.row.data() + kidx * t.rows;
        for (int64_t r = 0; r < t.rows; ++r) {
          if (rows[r] < 0) continue;
          const T* __restrict xrow = xc + rows[r] + t.x0[i];
          uint32_t* __restrict arow = reinterpret_cast<uint32_t*>(acc.data()) + r * OW;
          if (sx == 1) {  // contiguous: vectorizes
            for (int64_t ox = lo; ox < hi; ++ox)
              arow[ox] += uint32_t(wv * (int32_t(xrow[ox]) - xzp));
          } else {
            for (int64_t ox = lo; ox < hi; ++ox)
              arow[ox] += uint32_t(wv * (int32_t(xrow[ox * sx]) - xzp));
          }
        }
      }
      out.write(m, nm * out_sz, acc.data(), out_sz);
    }
  }
}

// A per-thread buffer of at least n elements (contents undefined), kept across calls: OpenMP
// reuses its threads, so convolutions neither allocate nor zero-fill their im2col matrices.
template <class T>
T* scratch(size_t n) {
  thread_local std::vector<T> buf;
  if (buf.size() < n) buf.resize(n);
  return buf.data();
}

// Per group, the GEMM A operand W'[Mg, Cg * k] packed for the integer GEMM path in use.
std::vector<IgemmPackedA> pack_weights(const ConvGeom& g, const int16_t* wq) {
  const int64_t Mg = g.M / g.group, Kg = (g.C / g.group) * g.k_size();
  std::vector<IgemmPackedA> v;
  for (int64_t gi = 0; gi < g.group; ++gi) v.emplace_back(Mg, Kg, wq + gi * Mg * Kg, Kg);
  return v;
}

bool is_depthwise(const ConvGeom& g) {
  return g.C / g.group == 1 && g.group > 1;
}

// Splits [0, n) into `parts` nearly equal ranges; returns range i.
std::pair<int64_t, int64_t> part(int64_t n, int64_t parts, int64_t i) {
  return {i * n / parts, (i + 1) * n / parts};
}

template <class T>
void conv_gemm(const ConvGeom& g, const T* x, int32_t xzp, const int16_t* wq,
               const OutputWriter& out, int threads,
               const std::vector<IgemmPackedA>* packed = nullptr) {
  const int64_t Cg = g.C / g.group, Mg = g.M / g.group;
  const int64_t in_sz = g.in_size(), out_sz = g.out_size(), ksz = g.k_size(), Kg = Cg * ksz;
  const int64_t OW = g.out[2], R = g.out[0] * g.out[1];
  // Work items: im2col matrices of about 512 KB (at least 256 columns; L2-sized): ranges of output
  // rows of one image, or, for small outputs, all positions of several images side by side. With
  // threads, the number of items is rounded up to a multiple of the thread count (balanced).
  const int64_t target = std::max<int64_t>(256, (int64_t(1) << 18) / std::max<int64_t>(1, Kg));
  int64_t n_chunks = g.N, r_chunks = 1;
  if (out_sz >= target)
    r_chunks = ceil_div_pos(R, std::clamp<int64_t>(ceil_div_pos(target, OW), 1, R));
  else
    n_chunks = ceil_div_pos(g.N, std::clamp<int64_t>(target / out_sz, 1, g.N));
  if (threads > 1 && r_chunks == 1 && n_chunks < g.N)
    n_chunks = std::min(g.N, ceil_div_pos(n_chunks, threads) * threads);
  if (threads > 1 && r_chunks > 1 && (g.N * r_chunks) % threads != 0)
    r_chunks = std::min(R, ceil_div_pos(r_chunks, threads) * threads);
  const int64_t items = n_chunks * r_chunks;
  const int64_t max_cols = ceil_div_pos(g.N, n_chunks) * ceil_div_pos(R, r_chunks) * OW;

  // The weights of each group, packed once for all work items (or once per plan: `packed`).
  std::vector<IgemmPackedA> own;
  if (!packed) own = pack_weights(g, wq);
  const std::vector<IgemmPackedA>& wpack = packed ? *packed : own;

  auto run_item = [&](int64_t item, int16_t* col, int32_t* acc, int inner_threads) {
    const auto [n0, n1] = part(g.N, n_chunks, item / r_chunks);
    const auto [r0, r1] = part(R, r_chunks, item % r_chunks);
    const int64_t nb = n1 - n0, seg = (r1 - r0) * OW, ncol = nb * seg;  // columns per image, all
    const TapTable taps = tap_table(g, r0, r1);
    for (int64_t gi = 0; gi < g.group; ++gi) {
      for (int64_t j = 0; j < nb; ++j)
        for (int64_t row = 0; row < Kg; ++row) {
          const T* xc = x + ((n0 + j) * g.C + gi * Cg + row / ksz) * in_sz;
          im2col_row(g, taps, xc, xzp, row % ksz, col + row * ncol + j * seg);
        }
      igemm_packed(wpack[size_t(gi)], ncol, col, ncol, acc, ncol, inner_threads);
      for (int64_t m = 0; m < Mg; ++m) {
        const int64_t oc = gi * Mg + m;
        for (int64_t j = 0; j < nb; ++j)
          out.write(oc, ((n0 + j) * g.M + oc) * out_sz + r0 * OW, acc + m * ncol + j * seg, seg);
      }
    }
  };
  const size_t col_size = size_t(Kg * max_cols), acc_size = size_t(Mg * max_cols);
  if (threads <= 1 || items == 1) {  // one item: the GEMM itself runs in parallel
    int16_t* col = scratch<int16_t>(col_size);
    int32_t* acc = scratch<int32_t>(acc_size);
    for (int64_t it = 0; it < items; ++it) run_item(it, col, acc, threads);
    return;
  }
#pragma omp parallel num_threads(threads)
  {
    int16_t* col = scratch<int16_t>(col_size);
    int32_t* acc = scratch<int32_t>(acc_size);
#pragma omp for schedule(dynamic)
    for (int64_t it = 0; it < items; ++it) run_item(it, col, acc, 1);
  }
}

// w - w_zp[oc] as int16, [M, weights per output channel].
std::vector<int16_t> weights_minus_zp(const Tensor& W, const std::vector<int32_t>& wzp, int64_t M) {
  const int64_t Kw = W.numel() / std::max<int64_t>(1, M);
  std::vector<int16_t> wq(size_t(W.numel()));
  dispatch_q8(W.dtype(), [&](auto tw) {
    const auto* w = W.data<decltype(tw)>();
    for (int64_t oc = 0; oc < M; ++oc)
      for (int64_t i = oc * Kw; i < (oc + 1) * Kw; ++i)
        wq[size_t(i)] = int16_t(w[i] - wzp[size_t(oc)]);
  });
  return wq;
}

// Built once per plan when the weights and their zero points are constants: w - w_zp, and the
// packed GEMM operand (for the GEMM path in use then; a kernel that finds another path in use,
// e.g. after a test switched ENGINE_ISA, packs again).
struct QConvPrepared {
  std::vector<int16_t> wq;
  std::vector<IgemmPackedA> packed;  // empty for depthwise convs
  IgemmIsa isa = IgemmIsa::Reference;
};

std::shared_ptr<const void> qconv_prepare(const InferContext& ctx, Kind kind) {
  const Slots s = slots(kind);
  const Tensor* W = ctx.value_or_null(s.w);
  if (!W || (s.w_zp >= 0 && ctx.has_input(s.w_zp) && !ctx.value_or_null(s.w_zp))) return nullptr;
  const ConvGeom g = conv_geometry(ctx.node(), ctx.shape(s.x), W->shape());
  if (g.M == 0) return nullptr;
  const Tensor* zp = s.w_zp >= 0 ? ctx.value_or_null(s.w_zp) : nullptr;
  auto p = std::make_shared<QConvPrepared>();
  p->wq = weights_minus_zp(*W, zero_points_of(zp, g.M, kind_name(kind), "w_zero_point"), g.M);
  p->isa = igemm_isa();
  if (!is_depthwise(g)) p->packed = pack_weights(g, p->wq.data());
  return p;
}

void qconv_kernel(KernelContext& kc, Kind kind) {
  const char* op = kind_name(kind);
  const Slots s = slots(kind);
  const Tensor& X = kc.in(s.x);
  const Tensor& W = kc.in(s.w);
  Tensor& Y = kc.out(0);
  const ConvGeom g = conv_geometry(kc.node, X.shape(), W.shape());
  const int64_t Kw = W.numel() / std::max<int64_t>(1, g.M);  // weights per output channel
  if (g.N == 0 || g.M == 0 || g.out_size() == 0) return;
  igemm_isa();  // throws on a bad ENGINE_ISA here rather than inside a parallel region

  const auto single = [&](int i) { return kc.has_input(i) ? &kc.in(i) : nullptr; };
  const int32_t xzp = zero_points_of(single(s.x_zp), 1, op, "x_zero_point")[0];
  const auto* prep = static_cast<const QConvPrepared*>(kc.state);
  std::vector<int16_t> own_wq;
  if (!prep)
    own_wq = weights_minus_zp(W, zero_points_of(single(s.w_zp), g.M, op, "w_zero_point"), g.M);
  const int16_t* wq = prep ? prep->wq.data() : own_wq.data();
  ENGINE_CHECK(int64_t(prep ? prep->wq.size() : own_wq.size()) == g.M * Kw, op,
               ": weights do not match the prepared plan");
  const std::vector<IgemmPackedA>* packed =
      prep && !prep->packed.empty() && prep->isa == igemm_isa() ? &prep->packed : nullptr;

  OutputWriter out;
  out.y = &Y;
  if (kind != Kind::ConvInteger) {
    const float xs = scales_of(kc.in(s.x_scale), 1, op, "x_scale", false)[0];
    const float ys = scales_of(kc.in(s.y_scale), 1, op, "y_scale", true)[0];
    const std::vector<float> ws = scales_of(kc.in(s.w_scale), g.M, op, "w_scale", false);
    const int32_t yzp = zero_points_of(&kc.in(s.y_zp), 1, op, "y_zero_point")[0];
    out.rq = ChannelRequant(requant_attrs(kc.node, Y.dtype(), kind == Kind::QLinearConv), xs, ws,
                            ys, yzp);
    if (kc.has_input(s.bias)) {
      ENGINE_CHECK(kc.in(s.bias).numel() == g.M, op, ": bias must have ", g.M, " values");
      out.bias = kc.in(s.bias).data<int32_t>();
    }
    if (s.sum >= 0 && kc.has_input(s.sum)) {
      out.sum = &kc.in(s.sum);
      ENGINE_CHECK(out.sum->shape() == Y.shape() && is_q8(out.sum->dtype()), op,
                   ": sum must be uint8/int8 with the output shape");
      out.rq.set_sum(scales_of(kc.in(s.sum_scale), 1, op, "sum_scale", false)[0],
                     zero_points_of(single(s.sum_zp), 1, op, "sum_zero_point")[0], ys);
    }
  }
  dispatch_q8(X.dtype(), [&](auto tx) {
    const auto* x = X.data<decltype(tx)>();
    if (is_depthwise(g))
      depthwise(g, x, xzp, wq, out, kc.num_threads);
    else
      conv_gemm(g, x, xzp, wq, out, kc.num_threads, packed);
  });
}

void add_qconv(OpRegistry& r, Kind kind, const char* domain) {
  OpSchema s;
  s.op_type = kind_name(kind);
  s.domain = domain;
  s.min_inputs = kind == Kind::ConvInteger ? 2 : 8;
  s.max_inputs = kind == Kind::ConvInteger ? 4 : kind == Kind::QLinearConv ? 9 : 12;
  s.validate = [kind](const Node& n) {
    conv_validate_attrs(n);
    if (kind == Kind::QConv) validate_requant_attrs(n);
  };
  s.infer = [kind](InferContext& ctx) { qconv_infer(ctx, kind); };
  s.kernel = [kind](KernelContext& kc) { qconv_kernel(kc, kind); };
  s.prepare = [kind](const InferContext& ctx) { return qconv_prepare(ctx, kind); };
  r.add(std::move(s));
}

}  // namespace

void register_qconv_ops(OpRegistry& r) {
  add_qconv(r, Kind::QConv, "engine");
  add_qconv(r, Kind::QLinearConv, "");
  add_qconv(r, Kind::ConvInteger, "");
}

}  // namespace engine
