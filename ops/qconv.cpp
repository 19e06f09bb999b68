// Integer convolutions on one code path (reference kernels, the oracle for the fast ones):
//   QConv (domain "engine"): x, x_scale, x_zp, w, w_scale, w_zp, y_scale, y_zp, [bias], [sum,
//     sum_scale, sum_zp]; attrs requant (fixed|float), scale_bits, out_min, out_max + Conv attrs.
//   QLinearConv (ONNX): inputs 0..8 as QConv; float requantization, full output range.
//   ConvInteger (ONNX): x, w, [x_zp], [w_zp] -> int32 accumulators, no requantization.
// Omitted zero points are 0 (only y_zero_point, which gives the output type, is required).
// acc[n, oc, p] = sum over (c, tap) of (x - x_zp) * (w[oc] - w_zp[oc]) + bias[oc]   (int32)
// then requantized per output channel (ops/qgemm_core.h, quant/fixedpoint.h).
//
// Per group: acc[Mg, cols] = W'[Mg, Cg*k] x col[Cg*k, cols] with W' = w - w_zp and col the
// im2col matrix of x - x_zp (int16; padding is 0, i.e. the zero point). The columns of one work
// item are a range of output rows of one image, or, for small outputs, all positions of several
// images side by side; items run in parallel. Depthwise convs (one input channel per group) use
// direct loops.
#include <algorithm>
#include <cstdint>
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

// One row of the im2col matrix (see ops/conv.cpp): x - x_zp under kernel tap kidx of channel
// plane xc, for output rows [r0, r1) (a row is one (z, y) pair of OW positions); 0 in padding.
template <class T>
void im2col_row(const ConvGeom& g, const T* xc, int32_t xzp, int64_t kidx, int64_t r0, int64_t r1,
                int16_t* dst) {
  const int64_t ID = g.in[0], IH = g.in[1], IW = g.in[2];
  const int64_t OH = g.out[1], OW = g.out[2];
  const int64_t KH = g.k[1], KW = g.k[2];
  const int64_t kz = kidx / (KH * KW), ky = (kidx / KW) % KH, kx = kidx % KW;
  const int64_t sx = g.s[2], ix0 = kx * g.d[2] - g.pb[2];
  int64_t lo, hi;
  valid_range(ix0, sx, IW, OW, lo, hi);
  for (int64_t r = r0; r < r1; ++r) {
    const int64_t oz = r / OH, oy = r % OH;
    const int64_t iz = oz * g.s[0] - g.pb[0] + kz * g.d[0];
    const int64_t iy = oy * g.s[1] - g.pb[1] + ky * g.d[1];
    int16_t* d = dst + (r - r0) * OW;
    if (iz < 0 || iz >= ID || iy < 0 || iy >= IH) {
      std::fill(d, d + OW, int16_t(0));
      continue;
    }
    const T* xrow = xc + (iz * IH + iy) * IW + ix0;
    std::fill(d, d + lo, int16_t(0));
    for (int64_t ox = lo; ox < hi; ++ox) d[ox] = int16_t(int32_t(xrow[ox * sx]) - xzp);
    std::fill(d + hi, d + OW, int16_t(0));
  }
}

// One input channel per group: direct loops over the kernel taps, one (image, channel) plane at
// a time; padded taps are skipped (they contribute (x_zp - x_zp) * w = 0).
template <class T>
void depthwise(const ConvGeom& g, const T* x, int32_t xzp, const int16_t* wq,
               const OutputWriter& out, int threads) {
  const int64_t Mg = g.M / g.group;
  const int64_t ID = g.in[0], IH = g.in[1], IW = g.in[2];
  const int64_t OD = g.out[0], OH = g.out[1], OW = g.out[2];
  const int64_t in_sz = g.in_size(), out_sz = g.out_size(), ksz = g.k_size();
  const int64_t sx = g.s[2];
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
        const int64_t kz = kidx / (g.k[1] * g.k[2]), ky = (kidx / g.k[2]) % g.k[1];
        const int64_t ix0 = (kidx % g.k[2]) * g.d[2] - g.pb[2];
        int64_t lo, hi;
        valid_range(ix0, sx, IW, OW, lo, hi);
        for (int64_t oz = 0; oz < OD; ++oz) {
          const int64_t iz = oz * g.s[0] - g.pb[0] + kz * g.d[0];
          if (iz < 0 || iz >= ID) continue;
          for (int64_t oy = 0; oy < OH; ++oy) {
            const int64_t iy = oy * g.s[1] - g.pb[1] + ky * g.d[1];
            if (iy < 0 || iy >= IH) continue;
            const T* xrow = xc + (iz * IH + iy) * IW + ix0;
            int32_t* arow = acc.data() + (oz * OH + oy) * OW;
            for (int64_t ox = lo; ox < hi; ++ox)
              arow[ox] = wrap_add(arow[ox], wv * (int32_t(xrow[ox * sx]) - xzp));
          }
        }
      }
      out.write(m, nm * out_sz, acc.data(), out_sz);
    }
  }
}

template <class T>
void conv_gemm(const ConvGeom& g, const T* x, int32_t xzp, const int16_t* wq,
               const OutputWriter& out, int threads) {
  const int64_t Cg = g.C / g.group, Mg = g.M / g.group;
  const int64_t in_sz = g.in_size(), out_sz = g.out_size(), ksz = g.k_size(), Kg = Cg * ksz;
  const int64_t OW = g.out[2], R = g.out[0] * g.out[1];
  // Columns per work item: im2col matrices of about 2 MB, at least 256 columns.
  const int64_t target = std::max<int64_t>(256, (int64_t(1) << 20) / std::max<int64_t>(1, Kg));
  int64_t imgs = 1, rows = R;
  if (out_sz >= target)
    rows = std::clamp<int64_t>(ceil_div_pos(target, OW), 1, R);
  else
    imgs = std::clamp<int64_t>(target / out_sz, 1, g.N);
  const int64_t n_chunks = ceil_div_pos(g.N, imgs), r_chunks = ceil_div_pos(R, rows);
  const int64_t items = n_chunks * r_chunks, max_cols = imgs * rows * OW;

  auto run_item = [&](int64_t item, std::vector<int16_t>& col, std::vector<int32_t>& acc,
                      int inner_threads) {
    const int64_t n0 = (item / r_chunks) * imgs, nb = std::min(imgs, g.N - n0);
    const int64_t r0 = (item % r_chunks) * rows, r1 = std::min(R, r0 + rows);
    const int64_t seg = (r1 - r0) * OW, ncol = nb * seg;  // columns per image, in total
    for (int64_t gi = 0; gi < g.group; ++gi) {
      for (int64_t j = 0; j < nb; ++j)
        for (int64_t row = 0; row < Kg; ++row) {
          const T* xc = x + ((n0 + j) * g.C + gi * Cg + row / ksz) * in_sz;
          im2col_row(g, xc, xzp, row % ksz, r0, r1, col.data() + row * ncol + j * seg);
        }
      igemm_s16(Mg, ncol, Kg, wq + gi * Mg * Kg, Kg, col.data(), ncol, acc.data(), ncol,
                inner_threads);
      for (int64_t m = 0; m < Mg; ++m) {
        const int64_t oc = gi * Mg + m;
        for (int64_t j = 0; j < nb; ++j)
          out.write(oc, ((n0 + j) * g.M + oc) * out_sz + r0 * OW, acc.data() + m * ncol + j * seg,
                    seg);
      }
    }
  };
  const size_t col_size = size_t(Kg * max_cols), acc_size = size_t(Mg * max_cols);
  if (threads <= 1 || items == 1) {  // one item: the GEMM itself runs in parallel
    std::vector<int16_t> col(col_size);
    std::vector<int32_t> acc(acc_size);
    for (int64_t it = 0; it < items; ++it) run_item(it, col, acc, threads);
    return;
  }
#pragma omp parallel num_threads(threads)
  {
    std::vector<int16_t> col(col_size);
    std::vector<int32_t> acc(acc_size);
#pragma omp for schedule(dynamic)
    for (int64_t it = 0; it < items; ++it) run_item(it, col, acc, 1);
  }
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

  const auto single = [&](int i) { return kc.has_input(i) ? &kc.in(i) : nullptr; };
  const int32_t xzp = zero_points_of(single(s.x_zp), 1, op, "x_zero_point")[0];
  const std::vector<int32_t> wzp = zero_points_of(single(s.w_zp), g.M, op, "w_zero_point");
  std::vector<int16_t> wq(size_t(W.numel()));  // w - w_zp[oc]
  dispatch_q8(W.dtype(), [&](auto tw) {
    const auto* w = W.data<decltype(tw)>();
    for (int64_t i = 0; i < W.numel(); ++i) wq[size_t(i)] = int16_t(w[i] - wzp[size_t(i / Kw)]);
  });

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
    if (g.C / g.group == 1 && g.group > 1)
      depthwise(g, x, xzp, wq.data(), out, kc.num_threads);
    else
      conv_gemm(g, x, xzp, wq.data(), out, kc.num_threads);
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
  r.add(std::move(s));
}

}  // namespace

void register_qconv_ops(OpRegistry& r) {
  add_qconv(r, Kind::QConv, "engine");
  add_qconv(r, Kind::QLinearConv, "");
  add_qconv(r, Kind::ConvInteger, "");
}

}  // namespace engine
