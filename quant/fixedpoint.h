// Requantization math, shared by the reference integer kernels (ops/) and the fast kernels
// (backends/). Two modes:
//
// 1. Fixed point (gemmlowp / TFLite style, the default). A real multiplier M > 0 (for a conv:
//    M = s_in * s_w[oc] / s_out) is written M = q * 2^-31 * 2^e with an int32 q in [2^30, 2^31)
//    and an integer exponent e. Applying it to an int32 accumulator x:
//        y = rounding_right_shift(saturating_rounding_doubling_high_mul(x << max(e,0), q),
//        max(-e,0))
//    i.e. one 32x32->64 multiply keeping the rounded high half, then a right shift rounding half
//    away from zero. `bits` < 31 keeps only the top `bits` bits of q (coarser multipliers, as in
//    hardware with narrow multipliers). Multipliers too small to represent (e < -31) flush to 0.
//
// 2. Float: y = round_half_to_even(float(x) * m) with m = float(M), which is how ONNX
//    QLinearConv / QLinearMatMul and ONNX Runtime define requantization.
//
// Both then add the output zero point and saturate to [qmin, qmax].
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>

namespace engine::quant {

enum class RequantMode { Fixed, Float };

struct FixedMultiplier {
  int32_t q = 0;  // 0 (M == 0 or flushed) or in [2^(31-bits) .. 2^31) with only `bits` top bits
  int exp = 0;    // M ~= q * 2^(exp - 31); exp > 0 means a left shift
};

// Decomposes M >= 0 (finite). bits in [1, 31]. M >= 2^30 saturates to the largest multiplier.
inline FixedMultiplier decompose_multiplier(double m, int bits = 31) {
  FixedMultiplier f;
  if (!(m > 0) || !std::isfinite(m)) return f;  // 0, negative, NaN: no contribution
  bits = std::clamp(bits, 1, 31);
  int e = 0;
  const double frac = std::frexp(m, &e);  // m = frac * 2^e, frac in [0.5, 1)
  int64_t q = std::llround(frac * double(int64_t(1) << bits));
  if (q == (int64_t(1) << bits)) {  // rounding carried into the next power of two
    q /= 2;
    ++e;
  }
  q <<= (31 - bits);
  if (e < -31) return {};  // below 2^-32: flushes to zero for every int32 input
  if (e > 30) return {std::numeric_limits<int32_t>::max(), 30};
  f.q = int32_t(q);
  f.exp = e;
  return f;
}

// round(a * b / 2^31), ties away from zero; the single overflow case saturates.
// (gemmlowp's nudge for negative products is 1 - 2^30, which rounds their ties toward zero, i.e.
// -0.5 -> 0; the symmetric nudge here makes apply_multiplier(-x) == -apply_multiplier(x).)
inline int32_t saturating_rounding_doubling_high_mul(int32_t a, int32_t b) {
  if (a == std::numeric_limits<int32_t>::min() && b == std::numeric_limits<int32_t>::min())
    return std::numeric_limits<int32_t>::max();
  const int64_t ab = int64_t(a) * int64_t(b);
  const int64_t nudge = ab >= 0 ? (int64_t(1) << 30) : -(int64_t(1) << 30);
  return int32_t((ab + nudge) / (int64_t(1) << 31));  // division truncates toward zero
}

// x / 2^shift rounded to nearest, ties away from zero. shift in [0, 31].
inline int32_t rounding_right_shift(int32_t x, int shift) {
  if (shift <= 0) return x;
  const int32_t mask = int32_t((int64_t(1) << shift) - 1);
  const int32_t remainder = x & mask;
  const int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
  return (x >> shift) + (remainder > threshold ? 1 : 0);
}

// x * M with M given as a FixedMultiplier. Two roundings (high multiply, then shift), as in
// gemmlowp / TFLite: when exp < 0 the result can differ from round(x * M) by one unit, if |x * M|
// lies less than 2^(exp-1) below a .5 boundary (a fraction of about 2^(exp-1) of random inputs);
// exact ties of x * M round away from zero.
inline int32_t apply_multiplier(int32_t x, FixedMultiplier f) {
  if (f.q == 0) return 0;
  const int left = f.exp > 0 ? f.exp : 0;
  const int right = f.exp > 0 ? 0 : -f.exp;
  int64_t shifted = int64_t(x) * (int64_t(1) << left);
  shifted = std::clamp<int64_t>(shifted, std::numeric_limits<int32_t>::min(),
                                std::numeric_limits<int32_t>::max());
  const int32_t high = saturating_rounding_doubling_high_mul(int32_t(shifted), f.q);
  return right > 31 ? 0 : rounding_right_shift(high, right);
}

// Float mode: round_half_to_even(x * m), computed in float32 as ONNX Runtime does, clamped to
// [lo, hi] (the output range minus the zero point) before the conversion so it never overflows.
inline int32_t apply_float_multiplier(int32_t x, float m, int32_t lo, int32_t hi) {
  float v = float(x) * m;
  v = std::min(std::max(v, float(lo)), float(hi));
  return int32_t(std::nearbyint(v));  // default rounding mode: to nearest, ties to even
}

// QuantizeLinear: saturate(round_half_to_even(x / scale) + zero_point) into [qmin, qmax].
inline int32_t quantize_value(float x, float scale, int32_t zero_point, int32_t qmin,
                              int32_t qmax) {
  float v = x / scale;
  if (std::isnan(v)) return std::clamp(zero_point, qmin, qmax);
  v = std::min(std::max(v, float(qmin) - float(zero_point)), float(qmax) - float(zero_point));
  return std::clamp(int32_t(std::nearbyint(v)) + zero_point, qmin, qmax);
}

inline float dequantize_value(int32_t q, float scale, int32_t zero_point) {
  return float(q - zero_point) * scale;
}

}  // namespace engine::quant
