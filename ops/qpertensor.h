// Helpers for the per-tensor quantized elementwise and pooling kernels (ops/qelementwise.cpp,
// ops/qpool.cpp; namespace qpt): reading per-tensor scale / zero-point inputs, the requant /
// scale_bits / out_min / out_max attributes, and one Requantizer that maps an int32 accumulator to
// the output type with the math of quant/fixedpoint.h (no rounding of its own).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>

#include "core/op_registry.h"
#include "quant/fixedpoint.h"

namespace engine::qpt {

inline bool is_q8(DType t) {
  return t == DType::U8 || t == DType::I8;
}
inline void check_q8(DType t, const std::string& what) {
  ENGINE_CHECK(is_q8(t), what, " has type ", dtype_name(t), "; expected uint8 or int8");
}
inline int32_t container_min(DType t) {
  return t == DType::U8 ? 0 : -128;
}
inline int32_t container_max(DType t) {
  return t == DType::U8 ? 255 : 127;
}

// y[i] = quantize_value(x[i], scale, zp, qmin, qmax) for i < n into uint8 / int8 (`out`), with
// AVX2 where the integer kernels' ISA level allows it (ops/quantize_linear.cpp; bit-exact with
// the scalar formula).
void quantize_floats(const float* x, int64_t n, float scale, int32_t zp, int32_t qmin, int32_t qmax,
                     DType out, void* y);

// Float-mode QAdd of same-shape tensors (the ONNX QLinearAdd formula):
//   y[i] = quantize_value(dequantize_value(a[i], a_s, a_zp) + dequantize_value(b[i], b_s, b_zp),
//                         y_s, y_zp, lo, hi)
// Used by QAdd / QLinearAdd and by NhwcQConv's add after requantization, so both give the same
// bytes. run(): AVX2 where the integer kernels' ISA level allows it (ops/quantize_linear.cpp: the
// same float products, sum and quantization in registers), else run_tables.
struct QAddFloat {
  float ta[256], tb[256];  // dequantized values by raw byte (uint8 value, or int8 value + 256)
  DType at = DType::U8, bt = DType::U8, yt = DType::U8;
  float as = 1, bs = 1, ys = 1;
  int32_t za = 0, zb = 0, zy = 0, lo = 0, hi = 255;
  QAddFloat() = default;
  QAddFloat(DType at_, float as_, int32_t za_, DType bt_, float bs_, int32_t zb_, float ys_,
            int32_t zy_, int32_t lo_, int32_t hi_, DType yt_)
      : at(at_),
        bt(bt_),
        yt(yt_),
        as(as_),
        bs(bs_),
        ys(ys_),
        za(za_),
        zb(zb_),
        zy(zy_),
        lo(lo_),
        hi(hi_) {
    for (int v = 0; v < 256; ++v) {
      const auto value = [v](DType t) { return t == DType::U8 ? v : int32_t(int8_t(uint8_t(v))); };
      ta[v] = quant::dequantize_value(value(at), as, za);
      tb[v] = quant::dequantize_value(value(bt), bs, zb);
    }
  }
  // n values of a, b (raw bytes of their types) into y (yt); y may be a itself.
  void run(const uint8_t* a, const uint8_t* b, int64_t n, void* y) const;
  // The portable form: the two terms from the tables, the sum quantized by quantize_floats.
  void run_tables(const uint8_t* a, const uint8_t* b, int64_t n, void* y) const {
    constexpr int64_t kChunk = 1024;
    float real[kChunk];
    for (int64_t i0 = 0; i0 < n; i0 += kChunk) {
      const int64_t m = std::min(kChunk, n - i0);
      for (int64_t i = 0; i < m; ++i) real[i] = ta[a[i0 + i]] + tb[b[i0 + i]];
      quantize_floats(real, m, ys, zy, lo, hi, yt, static_cast<uint8_t*>(y) + i0);
    }
  }
};

// Calls f(T{}) with T = uint8_t or int8_t.
template <class F>
auto dispatch_q8(DType t, F&& f) {
  if (t == DType::U8) return f(uint8_t{});
  if (t == DType::I8) return f(int8_t{});
  fail("unsupported element type ", dtype_name(t), " (expected uint8 or int8)");
}

// Requantization settings of one node. `onnx_alias`: the node is an ONNX / com.microsoft QLinear*
// op, which always uses float requantization and the full range of the output type.
struct RequantAttrs {
  quant::RequantMode mode = quant::RequantMode::Fixed;
  int bits = 31;
  int32_t lo = 0, hi = 255;  // output clamp range
};

// Attribute checks that need no shapes (validate).
inline void validate_requant_attrs(const Node& node) {
  const std::string m = node.attrs.get_string("requant", "fixed");
  ENGINE_CHECK(m == "fixed" || m == "float", "attribute requant='", m,
               "' is not supported (expected 'fixed' or 'float')");
  const int64_t b = node.attrs.get_int("scale_bits", 31);
  ENGINE_CHECK(b >= 1 && b <= 31, "attribute scale_bits=", b, " must be in [1, 31]");
}

// Resolves the attributes for output type `out`; throws if out_min/out_max leave its range.
inline RequantAttrs requant_attrs(const Node& node, DType out, bool onnx_alias) {
  RequantAttrs r;
  const int64_t cmin = container_min(out), cmax = container_max(out);
  r.lo = int32_t(cmin);
  r.hi = int32_t(cmax);
  if (onnx_alias) {
    r.mode = quant::RequantMode::Float;
    return r;
  }
  r.mode = node.attrs.get_string("requant", "fixed") == "float" ? quant::RequantMode::Float
                                                                : quant::RequantMode::Fixed;
  r.bits = int(std::clamp<int64_t>(node.attrs.get_int("scale_bits", 31), 1, 31));
  const int64_t lo = node.attrs.get_int("out_min", cmin), hi = node.attrs.get_int("out_max", cmax);
  ENGINE_CHECK(lo >= cmin && hi <= cmax && lo <= hi, "attributes out_min=", lo, " / out_max=", hi,
               " must satisfy ", cmin, " <= out_min <= out_max <= ", cmax, " for output type ",
               dtype_name(out));
  r.lo = int32_t(lo);
  r.hi = int32_t(hi);
  return r;
}

// Only out_min / out_max (ops without requantization, e.g. QLut).
inline void check_out_range(const Node& node, DType out) {
  const int64_t cmin = container_min(out), cmax = container_max(out);
  const int64_t lo = node.attrs.get_int("out_min", cmin), hi = node.attrs.get_int("out_max", cmax);
  ENGINE_CHECK(lo >= cmin && hi <= cmax && lo <= hi, "attributes out_min=", lo, " / out_max=", hi,
               " must satisfy ", cmin, " <= out_min <= out_max <= ", cmax, " for output type ",
               dtype_name(out));
}

inline void check_scale_value(double s, const std::string& what) {
  ENGINE_CHECK(std::isfinite(s) && s > 0, what, " must be a positive finite number, got ", s);
}

// Scale input i: float32 with one element (per-tensor). Checks the value when it is known.
inline void infer_scale(const InferContext& ctx, int i, const std::string& what) {
  ENGINE_CHECK(ctx.has_input(i), "input ", what, " (", i, ") is required");
  ENGINE_CHECK(ctx.dtype(i) == DType::F32, "input ", what, " must be float32, got ",
               dtype_name(ctx.dtype(i)));
  ENGINE_CHECK(checked_numel(ctx.shape(i)) == 1, "input ", what,
               " must hold one value (per-tensor quantization only), got shape ",
               dims_str(ctx.shape(i)));
  if (const Tensor* v = ctx.value_or_null(i)) check_scale_value(v->get_as_double(0), what);
}

// Optional zero-point input i: one element of type `want` (the type of the tensor it belongs to).
inline void infer_zero_point(const InferContext& ctx, int i, DType want, const std::string& what) {
  if (!ctx.has_input(i)) return;
  ENGINE_CHECK(ctx.dtype(i) == want, "input ", what, " has type ", dtype_name(ctx.dtype(i)),
               ", expected ", dtype_name(want));
  ENGINE_CHECK(checked_numel(ctx.shape(i)) == 1, "input ", what,
               " must hold one value (per-tensor quantization only), got shape ",
               dims_str(ctx.shape(i)));
}

inline float scale_at(const KernelContext& kc, int i, const std::string& what) {
  const Tensor& t = kc.in(i);
  ENGINE_CHECK(t.dtype() == DType::F32 && t.numel() == 1, "input ", what,
               " must be one float32 value");
  const float s = t.data<float>()[0];
  check_scale_value(s, what);
  return s;
}

// 0 when the optional zero point is omitted.
inline int32_t zero_point_at(const KernelContext& kc, int i) {
  if (!kc.has_input(i)) return 0;
  const Tensor& t = kc.in(i);
  ENGINE_CHECK(is_q8(t.dtype()) && t.numel() == 1, "zero point input ", i,
               " must be one uint8/int8 value");
  return int32_t(t.get_as_int(0));
}

// y = clamp(zp + requant(acc), lo, hi) for one real multiplier M.
//   fixed: apply_multiplier(acc, decompose_multiplier(m_fixed, bits))
//   float: apply_float_multiplier(acc, m_float, lo - zp, hi - zp)
// m_fixed is M computed in double, m_float is M computed in float32 in the order the op's
// definition gives (callers compute both; only the one of the mode is used).
class Requantizer {
 public:
  Requantizer() = default;
  Requantizer(const RequantAttrs& ra, double m_fixed, float m_float, int32_t zp)
      : mode_(ra.mode), m_float_(m_float), zp_(zp), lo_(ra.lo), hi_(ra.hi) {
    if (mode_ == quant::RequantMode::Fixed) fm_ = quant::decompose_multiplier(m_fixed, ra.bits);
  }
  int32_t operator()(int32_t acc) const {
    int64_t v;
    if (mode_ == quant::RequantMode::Fixed)
      v = int64_t(zp_) + quant::apply_multiplier(acc, fm_);
    else
      v = int64_t(zp_) + quant::apply_float_multiplier(acc, m_float_, lo_ - zp_, hi_ - zp_);
    return int32_t(std::clamp<int64_t>(v, lo_, hi_));
  }

 private:
  quant::RequantMode mode_ = quant::RequantMode::Fixed;
  quant::FixedMultiplier fm_;
  float m_float_ = 0;
  int32_t zp_ = 0, lo_ = 0, hi_ = 255;
};

}  // namespace engine::qpt
