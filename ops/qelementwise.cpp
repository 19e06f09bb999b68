// Integer elementwise ops on per-tensor quantized uint8 / int8 tensors (design: quant_spec).
//
//  QAdd (engine), QLinearAdd (com.microsoft): a, a_scale, a_zp, b, b_scale, b_zp, y_scale, y_zp
//    with numpy broadcasting.
//    fixed (TFLite style): a' = (a - a_zp) << 20, b' likewise, t = 2 * max(a_s, b_s);
//      s = apply(a', a_s / t) + apply(b', b_s / t);  y = y_zp + apply(s, t / (2^20 * y_s))
//      (the 20-bit headroom keeps the sum exact enough that y is within one unit of the real sum)
//    float: y = y_zp + round_half_even(((a - a_zp) * a_s + (b - b_zp) * b_s) / y_s)  (float32)
//  QMul (engine), QLinearMul (com.microsoft): same inputs;
//    y = y_zp + requant((a - a_zp) * (b - b_zp), a_s * b_s / y_s)
//  QConcat (engine), QLinearConcat (com.microsoft): y_scale, y_zp, then (x, x_scale, x_zp)
//    triples; attr axis. Each input is requantized to the output scale:
//    fixed: y = y_zp + apply(x - x_zp, x_s / y_s)  (an exact copy when scale and zp agree)
//    float: y = y_zp + round_half_even((x - x_zp) * x_s / y_s)
//    Every input has only 256 possible values, so each input is mapped through a 256-entry
//    table computed with that formula.
//  QLut (engine): x, table (256 values of the output type): y = table[x - container_min(x)].
//
// Engine ops take attrs requant ("fixed" | "float"), scale_bits, out_min, out_max; the
// com.microsoft aliases always use float requantization and the full output range. Zero points
// are optional (0 when omitted); the output type is the type of y_zp (else that of the first
// data input). Scales are one positive float32 value.
#include <algorithm>
#include <array>
#include <string>
#include <vector>

#include "ops/broadcast.h"
#include "ops/ops.h"
#include "ops/qpertensor.h"

namespace engine {
namespace {

using namespace qpt;
namespace q = quant;

constexpr const char* kMs = "com.microsoft";
constexpr int kAddShift = 20;  // TFLite's left_shift for 8-bit add

// ---- QAdd / QMul ----

enum class BinKind { Add, Mul };

void qbinary_infer(InferContext& ctx, bool alias) {
  check_q8(ctx.dtype(0), "input A");
  check_q8(ctx.dtype(3), "input B");
  infer_scale(ctx, 1, "A_scale");
  infer_zero_point(ctx, 2, ctx.dtype(0), "A_zero_point");
  infer_scale(ctx, 4, "B_scale");
  infer_zero_point(ctx, 5, ctx.dtype(3), "B_zero_point");
  infer_scale(ctx, 6, "Y_scale");
  const DType out = ctx.has_input(7) ? ctx.dtype(7) : ctx.dtype(0);
  check_q8(out, "input Y_zero_point");
  infer_zero_point(ctx, 7, out, "Y_zero_point");
  requant_attrs(ctx.node(), out, alias);
  ctx.set_output(0, out, bcast::broadcast_shape(ctx.shape(0), ctx.shape(3)));
}

void qbinary_kernel(KernelContext& kc, BinKind kind, bool alias) {
  const Tensor& a = kc.in(0);
  const Tensor& b = kc.in(3);
  Tensor& y = kc.out(0);
  const float as = scale_at(kc, 1, "A_scale"), bs = scale_at(kc, 4, "B_scale"),
              ys = scale_at(kc, 6, "Y_scale");
  const int32_t za = zero_point_at(kc, 2), zb = zero_point_at(kc, 5), zy = zero_point_at(kc, 7);
  const RequantAttrs ra = requant_attrs(kc.node, y.dtype(), alias);
  const bool fixed = ra.mode == q::RequantMode::Fixed;

  // Add, fixed mode: input multipliers (both <= 1/2) and the output multiplier.
  const double twice_max = 2.0 * std::max(double(as), double(bs));
  const q::FixedMultiplier ma = q::decompose_multiplier(double(as) / twice_max, ra.bits);
  const q::FixedMultiplier mb = q::decompose_multiplier(double(bs) / twice_max, ra.bits);
  const Requantizer add_out(ra, twice_max / (double(1 << kAddShift) * double(ys)), 0.f, zy);
  // Mul: one multiplier (float mode: a_s * b_s / y_s evaluated in float32).
  const Requantizer mul_out(ra, double(as) * double(bs) / double(ys), as * bs / ys, zy);

  dispatch_q8(a.dtype(), [&](auto ta) {
    using TA = decltype(ta);
    dispatch_q8(b.dtype(), [&](auto tb) {
      using TB = decltype(tb);
      dispatch_q8(y.dtype(), [&](auto ty) {
        using TY = decltype(ty);
        auto op = [&](TA va, TB vb) -> TY {
          const int32_t da = int32_t(va) - za, db = int32_t(vb) - zb;
          if (kind == BinKind::Mul) return TY(mul_out(da * db));
          if (fixed) {
            const int32_t sa = q::apply_multiplier(da * (1 << kAddShift), ma);
            const int32_t sb = q::apply_multiplier(db * (1 << kAddShift), mb);
            return TY(add_out(sa + sb));
          }
          const float real = q::dequantize_value(va, as, za) + q::dequantize_value(vb, bs, zb);
          return TY(q::quantize_value(real, ys, zy, ra.lo, ra.hi));
        };
        if (a.shape() != b.shape()) {
          bcast::binary_map(a.data<TA>(), a.shape(), b.data<TB>(), b.shape(), y.data<TY>(),
                            y.shape(), op);
          return;
        }
        // Same shapes: blocks in parallel (float Add: QAddFloat, bit-exact with op()).
        const TA* pa = a.data<TA>();
        const TB* pb = b.data<TB>();
        TY* py = y.data<TY>();
        constexpr int64_t kBlock = 4096;
        const int64_t n = y.numel(), blocks = (n + kBlock - 1) / kBlock;
        const bool table = kind == BinKind::Add && !fixed;
        const QAddFloat add =
            table ? QAddFloat(a.dtype(), as, za, b.dtype(), bs, zb, ys, zy, ra.lo, ra.hi, y.dtype())
                  : QAddFloat();
#pragma omp parallel for num_threads(std::max(1, kc.num_threads)) if (blocks > 1)
        for (int64_t blk = 0; blk < blocks; ++blk) {
          const int64_t i0 = blk * kBlock, i1 = std::min(n, i0 + kBlock);
          if (table)
            add.run(reinterpret_cast<const uint8_t*>(pa + i0),
                    reinterpret_cast<const uint8_t*>(pb + i0), i1 - i0, py + i0);
          else
            for (int64_t i = i0; i < i1; ++i) py[i] = op(pa[i], pb[i]);
        }
      });
    });
  });
}

void add_qbinary(OpRegistry& r, const char* op, const char* domain, BinKind kind, bool alias) {
  OpSchema s;
  s.op_type = op;
  s.domain = domain;
  s.min_inputs = 7;  // the output zero point may be omitted
  s.max_inputs = 8;
  s.validate = validate_requant_attrs;
  s.infer = [alias](InferContext& ctx) { qbinary_infer(ctx, alias); };
  s.kernel = [kind, alias](KernelContext& kc) { qbinary_kernel(kc, kind, alias); };
  r.add(std::move(s));
}

// ---- QConcat ----

// Inputs 2 + 3k, 3 + 3k, 4 + 3k are x, x_scale, x_zp of concatenated tensor k (the last zero
// point may be left out entirely). Returns the number of concatenated tensors, ceil((n - 2) / 3).
int concat_count(int num_inputs) {
  ENGINE_CHECK(num_inputs >= 4 && (num_inputs - 2) % 3 != 1,
               "expected inputs Y_scale, Y_zero_point, then (X, X_scale, X_zero_point) triples; "
               "got ",
               num_inputs, " inputs");
  return num_inputs / 3;  // == ceil((n - 2) / 3) as (n - 2) % 3 is 0 or 2
}

int64_t concat_axis(const Node& node, int rank) {
  ENGINE_CHECK(node.attrs.has("axis"), "required attribute 'axis' is missing");
  int64_t axis = node.attrs.get_int("axis");
  ENGINE_CHECK(axis >= -rank && axis < rank, "attribute axis=", axis, " is out of range for rank ",
               rank);
  return axis < 0 ? axis + rank : axis;
}

void qconcat_infer(InferContext& ctx, bool alias) {
  const int n = concat_count(ctx.num_inputs());
  infer_scale(ctx, 0, "Y_scale");
  ENGINE_CHECK(ctx.has_input(2), "input X (2) is required");
  const DType out = ctx.has_input(1) ? ctx.dtype(1) : ctx.dtype(2);
  check_q8(out, "input Y_zero_point");
  infer_zero_point(ctx, 1, out, "Y_zero_point");
  requant_attrs(ctx.node(), out, alias);
  const Dims& first = ctx.shape(2);
  const int rank = int(first.size());
  ENGINE_CHECK(rank >= 1, "inputs must have rank >= 1, got a scalar");
  const int64_t axis = concat_axis(ctx.node(), rank);
  Dims y = first;
  y[size_t(axis)] = 0;
  for (int k = 0; k < n; ++k) {
    const int xi = 2 + 3 * k;
    const std::string name = str_cat("X", k);
    ENGINE_CHECK(ctx.has_input(xi), "input ", name, " (", xi, ") is required");
    check_q8(ctx.dtype(xi), str_cat("input ", name));
    infer_scale(ctx, xi + 1, name + "_scale");
    infer_zero_point(ctx, xi + 2, ctx.dtype(xi), name + "_zero_point");
    const Dims& s = ctx.shape(xi);
    ENGINE_CHECK(int(s.size()) == rank, "input ", name, " has shape ", dims_str(s),
                 " but the first input has shape ", dims_str(first), " (ranks differ)");
    for (int d = 0; d < rank; ++d)
      ENGINE_CHECK(d == axis || s[size_t(d)] == first[size_t(d)], "input ", name, " has shape ",
                   dims_str(s), ", incompatible with ", dims_str(first), " for concat on axis ",
                   axis);
    y[size_t(axis)] += s[size_t(axis)];
  }
  ctx.set_output(0, out, y);
}

void qconcat_kernel(KernelContext& kc, bool alias) {
  const int n = concat_count(int(kc.inputs.size()));
  Tensor& y = kc.out(0);
  const float ys = scale_at(kc, 0, "Y_scale");
  const int32_t zy = zero_point_at(kc, 1);
  const RequantAttrs ra = requant_attrs(kc.node, y.dtype(), alias);
  const int64_t axis = concat_axis(kc.node, y.rank());
  int64_t outer = 1, inner = 1;
  for (int64_t d = 0; d < axis; ++d) outer *= y.dim(int(d));
  for (int d = int(axis) + 1; d < y.rank(); ++d) inner *= y.dim(d);
  const int64_t y_row = y.dim(int(axis)) * inner;  // output elements per outer index
  if (y.numel() == 0) return;

  dispatch_q8(y.dtype(), [&](auto ty) {
    using TY = decltype(ty);
    int64_t col = 0;  // offset of input k inside an output row
    for (int k = 0; k < n; ++k) {
      const Tensor& x = kc.in(2 + 3 * k);
      const float xs = scale_at(kc, 3 + 3 * k, str_cat("X", k, "_scale"));
      const int32_t zx = zero_point_at(kc, 4 + 3 * k);
      const int32_t xmin = container_min(x.dtype());
      // table[v - xmin] = requantized v, for all 256 values of the input type.
      std::array<TY, 256> table{};
      const Requantizer rq(ra, double(xs) / double(ys), 0.f, zy);
      for (int32_t v = xmin; v <= container_max(x.dtype()); ++v) {
        const int32_t r =
            ra.mode == q::RequantMode::Fixed
                ? rq(v - zx)
                : q::quantize_value(q::dequantize_value(v, xs, zx), ys, zy, ra.lo, ra.hi);
        table[size_t(v - xmin)] = TY(r);
      }
      const int64_t x_row = x.dim(int(axis)) * inner;
      dispatch_q8(x.dtype(), [&](auto tx) {
        using TX = decltype(tx);
        const TX* xp = x.data<TX>();
        TY* yp = y.data<TY>() + col;
        bcast::parallel_tasks(outer, x_row, [&](int64_t o) {
          const TX* src = xp + o * x_row;
          TY* dst = yp + o * y_row;
          for (int64_t i = 0; i < x_row; ++i) dst[i] = table[size_t(int32_t(src[i]) - xmin)];
        });
      });
      col += x_row;
    }
  });
}

void add_qconcat(OpRegistry& r, const char* op, const char* domain, bool alias) {
  OpSchema s;
  s.op_type = op;
  s.domain = domain;
  s.min_inputs = 4;
  s.max_inputs = 2 + 3 * 4096;
  s.validate = [](const Node& node) {
    validate_requant_attrs(node);
    ENGINE_CHECK(node.attrs.has("axis"), "required attribute 'axis' is missing");
  };
  s.infer = [alias](InferContext& ctx) { qconcat_infer(ctx, alias); };
  s.kernel = [alias](KernelContext& kc) { qconcat_kernel(kc, alias); };
  r.add(std::move(s));
}

// ---- QLut ----

void add_qlut(OpRegistry& r) {
  OpSchema s;
  s.op_type = "QLut";
  s.domain = "engine";
  s.min_inputs = s.max_inputs = 2;
  s.infer = [](InferContext& ctx) {
    check_q8(ctx.dtype(0), "input X");
    check_q8(ctx.dtype(1), "input table");
    ENGINE_CHECK(ctx.shape(1) == Dims{256}, "input table must have shape [256], got ",
                 dims_str(ctx.shape(1)));
    check_out_range(ctx.node(), ctx.dtype(1));
    ctx.set_output(0, ctx.dtype(1), ctx.shape(0));
  };
  s.kernel = [](KernelContext& kc) {
    const Tensor& x = kc.in(0);
    const Tensor& t = kc.in(1);
    Tensor& y = kc.out(0);
    const DType ot = t.dtype();
    const int64_t lo = kc.attrs().get_int("out_min", container_min(ot));
    const int64_t hi = kc.attrs().get_int("out_max", container_max(ot));
    const int32_t xmin = container_min(x.dtype());
    dispatch_q8(ot, [&](auto ty) {
      using TY = decltype(ty);
      std::array<TY, 256> table{};
      for (size_t i = 0; i < 256; ++i) table[i] = TY(std::clamp<int64_t>(t.data<TY>()[i], lo, hi));
      dispatch_q8(x.dtype(), [&](auto tx) {
        using TX = decltype(tx);
        bcast::unary_map(x.data<TX>(), y.data<TY>(), x.numel(),
                         [&](TX v) { return table[size_t(int32_t(v) - xmin)]; });
      });
    });
  };
  r.add(std::move(s));
}

}  // namespace

void register_qelementwise_ops(OpRegistry& r) {
  add_qbinary(r, "QAdd", "engine", BinKind::Add, false);
  add_qbinary(r, "QMul", "engine", BinKind::Mul, false);
  add_qbinary(r, "QLinearAdd", kMs, BinKind::Add, true);
  add_qbinary(r, "QLinearMul", kMs, BinKind::Mul, true);
  add_qconcat(r, "QConcat", "engine", false);
  add_qconcat(r, "QLinearConcat", kMs, true);
  add_qlut(r);
}

}  // namespace engine
