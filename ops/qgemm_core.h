// Shared core of the integer convolution and matrix-multiply kernels (ops/qconv.cpp,
// ops/qgemm.cpp):
//   - igemm_s16 / igemm_packed (ops/igemm.h): C[M,N] = A[M,K] x B[K,N] with int16 operands and
//     int32 accumulation, SIMD paths chosen at run time (ENGINE_ISA);
//   - scale / zero-point inputs that are per tensor or per output channel;
//   - ChannelRequant: int32 accumulator -> quantized output, per channel, with the math of
//     quant/fixedpoint.h (no rounding of its own) and an optional residual ("sum") input;
//     OutputWriter runs contiguous rows through the bit-identical SIMD version (ops/irequant.h).
// Operands are stored as int16 after subtracting their zero points: (x - x_zp) and (w - w_zp)
// both lie in [-255, 255], so the GEMM needs no zero-point correction terms and padding is 0.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "core/op_registry.h"
#include "ops/igemm.h"
#include "ops/irequant.h"
#include "quant/fixedpoint.h"

namespace engine::qops {

inline bool is_q8(DType t) {
  return t == DType::U8 || t == DType::I8;
}
inline int32_t container_min(DType t) {
  return t == DType::U8 ? 0 : -128;
}
inline int32_t container_max(DType t) {
  return t == DType::U8 ? 255 : 127;
}
// Calls f(T{}) with T = uint8_t or int8_t.
template <class F>
auto dispatch_q8(DType t, F&& f) {
  if (t == DType::U8) return f(uint8_t{});
  if (t == DType::I8) return f(int8_t{});
  fail("unsupported element type ", dtype_name(t), " (expected uint8 or int8)");
}

// ---------------------------------------------------------------- requant attributes

struct RequantAttrs {
  quant::RequantMode mode = quant::RequantMode::Fixed;
  int bits = 31;             // scale_bits (fixed mode)
  int32_t lo = 0, hi = 255;  // out_min / out_max
};

// Attribute checks that need no shapes (validate of the engine-domain ops).
inline void validate_requant_attrs(const Node& node) {
  const std::string m = node.attrs.get_string("requant", "fixed");
  ENGINE_CHECK(m == "fixed" || m == "float", "attribute requant='", m,
               "' is not supported (expected 'fixed' or 'float')");
  const int64_t b = node.attrs.get_int("scale_bits", 31);
  ENGINE_CHECK(b >= 1 && b <= 31, "attribute scale_bits=", b, " must be in [1, 31]");
}

// requant / scale_bits / out_min / out_max for output type `out` (throws if out_min / out_max
// leave its range). `onnx_op`: ONNX QLinear* ops always use float requantization and the full
// range of the output type.
inline RequantAttrs requant_attrs(const Node& node, DType out, bool onnx_op) {
  RequantAttrs r;
  const int64_t cmin = container_min(out), cmax = container_max(out);
  r.lo = int32_t(cmin);
  r.hi = int32_t(cmax);
  if (onnx_op) {
    r.mode = quant::RequantMode::Float;
    return r;
  }
  validate_requant_attrs(node);
  r.mode = node.attrs.get_string("requant", "fixed") == "float" ? quant::RequantMode::Float
                                                                : quant::RequantMode::Fixed;
  r.bits = int(node.attrs.get_int("scale_bits", 31));
  const int64_t lo = node.attrs.get_int("out_min", cmin), hi = node.attrs.get_int("out_max", cmax);
  ENGINE_CHECK(lo >= cmin && hi <= cmax && lo <= hi, "attributes out_min=", lo, " / out_max=", hi,
               " must satisfy ", cmin, " <= out_min <= out_max <= ", cmax, " for output type ",
               dtype_name(out));
  r.lo = int32_t(lo);
  r.hi = int32_t(hi);
  return r;
}

// Accumulators wrap modulo 2^32 on overflow (as int32 hardware does) instead of being undefined.
inline int32_t wrap_add(int32_t a, int32_t b) {
  return int32_t(uint32_t(a) + uint32_t(b));
}

// ---------------------------------------------------------------- scale / zero-point inputs

// One value: shape [] or [1].
inline bool is_single(const Dims& d) {
  return d.size() <= 1 && checked_numel(d) == 1;
}

// Inference check of scale / zero-point input i named `what` of op `op`: present (unless
// `optional`), of type `want` (`why` explains it, e.g. "the dtype of x"), and one value, or, when
// channels >= 0, one value per channel (shape [channels]; `per` names the channels).
inline void check_qparam(const InferContext& ctx, int i, const char* op, const char* what,
                         DType want, const std::string& why, int64_t channels = -1,
                         const char* per = "", bool optional = false) {
  if (!ctx.has_input(i)) {
    ENGINE_CHECK(optional, op, ": input ", what, " (", i, ") is required");
    return;
  }
  ENGINE_CHECK(ctx.dtype(i) == want, op, ": ", what, " must have ", why, ", got ",
               dtype_name(ctx.dtype(i)));
  const Dims& s = ctx.shape(i);
  if (channels < 0) {
    ENGINE_CHECK(is_single(s), op, ": ", what, " must be a scalar (per-tensor), got shape ",
                 dims_str(s));
  } else {
    ENGINE_CHECK(is_single(s) || (s.size() == 1 && s[0] == channels), op, ": ", what,
                 " must be a scalar or have shape [", channels, "] (one per ", per, "), got shape ",
                 dims_str(s));
  }
}

inline void check_scale_input(const InferContext& ctx, int i, const char* op, const char* what,
                              int64_t channels = -1, const char* per = "") {
  check_qparam(ctx, i, op, what, DType::F32, "type float32", channels, per);
}

// Scale input expanded to n values. `positive`: must be > 0 (divisors), else >= 0.
inline std::vector<float> scales_of(const Tensor& t, int64_t n, const char* op, const char* what,
                                    bool positive) {
  ENGINE_CHECK(t.dtype() == DType::F32 && (t.numel() == 1 || t.numel() == n), op, ": ", what,
               " must be float32 with 1 or ", n, " values");
  std::vector<float> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    const float s = t.data<float>()[t.numel() == 1 ? 0 : i];
    ENGINE_CHECK(std::isfinite(s) && (positive ? s > 0 : s >= 0), op, ": ", what, " must be ",
                 positive ? "positive" : "non-negative", " and finite, got ", s);
    v[size_t(i)] = s;
  }
  return v;
}

// Zero-point input expanded to n values (zeros when omitted).
inline std::vector<int32_t> zero_points_of(const Tensor* t, int64_t n, const char* op,
                                           const char* what) {
  std::vector<int32_t> v(static_cast<size_t>(n), 0);
  if (!t) return v;
  ENGINE_CHECK(t->numel() == 1 || t->numel() == n, op, ": ", what, " must have 1 or ", n,
               " values");
  for (int64_t i = 0; i < n; ++i) v[size_t(i)] = int32_t(t->get_as_int(t->numel() == 1 ? 0 : i));
  return v;
}

// ---------------------------------------------------------------- requantization

// Maps an int32 accumulator of output channel ch to the output type:
//   fixed: y = clamp(y_zp + apply_multiplier(acc, decompose(in_s * w_s[ch] / y_s, bits))
//                    [+ apply_multiplier(sum - sum_zp, decompose(sum_s / y_s, bits))], lo, hi)
//   float: y = y_zp + round_half_even(clamp(acc * m[ch] [+ (sum - sum_zp) * m_sum],
//                                           lo - y_zp, hi - y_zp))
// Fixed multipliers are computed in double; float ones in float32 as in_s * w_s[ch] / y_s.
class ChannelRequant {
 public:
  ChannelRequant() = default;
  ChannelRequant(const RequantAttrs& ra, float in_scale, const std::vector<float>& w_scales,
                 float y_scale, int32_t y_zp)
      : ra_(ra), zp_(y_zp) {
    for (float ws : w_scales) {
      if (ra.mode == quant::RequantMode::Fixed)
        fm_.push_back(
            quant::decompose_multiplier(double(in_scale) * double(ws) / double(y_scale), ra.bits));
      else
        fmul_.push_back(in_scale * ws / y_scale);
    }
  }
  // The residual input: adds (s - sum_zp) * sum_scale / y_scale before rounding / clamping.
  void set_sum(float sum_scale, int32_t sum_zp, float y_scale) {
    sum_zp_ = sum_zp;
    sum_fm_ = quant::decompose_multiplier(double(sum_scale) / double(y_scale), ra_.bits);
    sum_m_ = sum_scale / y_scale;
  }

  // The constants of channel ch for requant_row_simd (ops/irequant.h).
  RequantRow row(int64_t ch, int32_t bias) const {
    RequantRow r;
    r.fixed = ra_.mode == quant::RequantMode::Fixed;
    if (r.fixed)
      r.fm = fm_[size_t(ch)];
    else
      r.m = fmul_[size_t(ch)];
    r.sum_fm = sum_fm_;
    r.sum_m = sum_m_;
    r.zp = zp_;
    r.lo = ra_.lo;
    r.hi = ra_.hi;
    r.bias = bias;
    r.sum_zp = sum_zp_;
    return r;
  }

  int32_t operator()(int32_t acc, int64_t ch) const {
    if (ra_.mode == quant::RequantMode::Fixed)
      return clamp(int64_t(zp_) + quant::apply_multiplier(acc, fm_[size_t(ch)]));
    return zp_ + quant::apply_float_multiplier(acc, fmul_[size_t(ch)], ra_.lo - zp_, ra_.hi - zp_);
  }
  int32_t operator()(int32_t acc, int32_t sum, int64_t ch) const {
    const int32_t ds = sum - sum_zp_;
    if (ra_.mode == quant::RequantMode::Fixed)
      return clamp(int64_t(zp_) + quant::apply_multiplier(acc, fm_[size_t(ch)]) +
                   quant::apply_multiplier(ds, sum_fm_));
    float v = float(acc) * fmul_[size_t(ch)] + float(ds) * sum_m_;
    v = std::min(std::max(v, float(ra_.lo - zp_)), float(ra_.hi - zp_));
    return zp_ + int32_t(std::nearbyint(v));  // ties to even (default rounding mode)
  }

 private:
  int32_t clamp(int64_t v) const { return int32_t(std::clamp<int64_t>(v, ra_.lo, ra_.hi)); }
  RequantAttrs ra_;
  int32_t zp_ = 0;
  std::vector<quant::FixedMultiplier> fm_;
  std::vector<float> fmul_;
  quant::FixedMultiplier sum_fm_;
  float sum_m_ = 0;
  int32_t sum_zp_ = 0;
};

// Writes accumulators of one output channel to the output tensor: adds the int32 bias, then
// stores them as int32 (ConvInteger / MatMulInteger) or requantizes them (with the optional sum,
// read at the same offsets as the output). Never throws (types are checked before).
struct OutputWriter {
  const int32_t* bias = nullptr;  // per channel, or nullptr
  ChannelRequant rq;
  Tensor* y = nullptr;          // int32, uint8 or int8
  const Tensor* sum = nullptr;  // uint8 / int8 with y's shape, or nullptr

  // y[off + i] = out(acc[i * stride]) for i < count, channel ch.
  void write(int64_t ch, int64_t off, const int32_t* acc, int64_t count, int64_t stride = 1) const {
    const int32_t b = bias ? bias[ch] : 0;
    if (y->dtype() == DType::I32) {
      int32_t* yp = y->data<int32_t>() + off;
      for (int64_t i = 0; i < count; ++i) yp[i] = wrap_add(acc[i * stride], b);
    } else if (stride == 1 && write_simd(ch, off, acc, count, b)) {
      return;
    } else if (y->dtype() == DType::U8) {
      write_q(static_cast<uint8_t*>(y->raw()) + off, ch, off, acc, count, stride, b);
    } else {
      write_q(static_cast<int8_t*>(y->raw()) + off, ch, off, acc, count, stride, b);
    }
  }

 private:
  // Contiguous accumulators: the SIMD requantization of the path in use, if it has one.
  bool write_simd(int64_t ch, int64_t off, const int32_t* acc, int64_t count, int32_t b) const {
    const auto q8 = [](DType t) { return t == DType::U8 ? Q8Type::U8 : Q8Type::I8; };
    return requant_row_simd(rq.row(ch, b), acc, count, static_cast<uint8_t*>(y->raw()) + off,
                            q8(y->dtype()),
                            sum ? static_cast<const uint8_t*>(sum->raw()) + off : nullptr,
                            sum ? q8(sum->dtype()) : Q8Type::None);
  }

  template <class TY>
  void write_q(TY* yp, int64_t ch, int64_t off, const int32_t* acc, int64_t count, int64_t stride,
               int32_t b) const {
    if (!sum) {
      for (int64_t i = 0; i < count; ++i) yp[i] = TY(rq(wrap_add(acc[i * stride], b), ch));
    } else if (sum->dtype() == DType::U8) {
      const uint8_t* s = static_cast<const uint8_t*>(sum->raw()) + off;
      for (int64_t i = 0; i < count; ++i)
        yp[i] = TY(rq(wrap_add(acc[i * stride], b), int32_t(s[i]), ch));
    } else {
      const int8_t* s = static_cast<const int8_t*>(sum->raw()) + off;
      for (int64_t i = 0; i < count; ++i)
        yp[i] = TY(rq(wrap_add(acc[i * stride], b), int32_t(s[i]), ch));
    }
  }
};

}  // namespace engine::qops
