// Tests of quant/fixedpoint.h against exact integer / long double arithmetic written here:
// multiplier decomposition, the two-stage fixed-point multiply (rounded high multiply, then
// rounding right shift), ties, saturation, float requantization and QuantizeLinear rounding.
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>

#include <doctest/doctest.h>

#include "quant/fixedpoint.h"

using namespace engine::quant;

namespace {

constexpr int32_t kMin = std::numeric_limits<int32_t>::min();
constexpr int32_t kMax = std::numeric_limits<int32_t>::max();

// round(p / 2^s), ties away from zero, exact (|p| < 2^126, s in [0, 100]).
__int128 div_pow2_round_away(__int128 p, int s) {
  if (s == 0) return p;
  const __int128 mag = p < 0 ? -p : p;
  const __int128 r = (mag + (__int128(1) << (s - 1))) >> s;
  return p < 0 ? -r : r;
}

// The documented two-stage algorithm, computed exactly:
//   high = round_away((clamp32(x * 2^left) * q) / 2^31);  y = round_away(high / 2^right)
int64_t two_stage(int32_t x, FixedMultiplier f) {
  if (f.q == 0) return 0;
  const int left = std::max(f.exp, 0), right = std::max(-f.exp, 0);
  __int128 xs = __int128(x) << left;
  if (xs > kMax) xs = kMax;
  if (xs < kMin) xs = kMin;
  const __int128 high = div_pow2_round_away(xs * f.q, 31);
  return int64_t(div_pow2_round_away(high, right));
}

// One exact rounding of x * q * 2^(exp - 31), ties away from zero.
int64_t single_rounding(int32_t x, FixedMultiplier f) {
  return int64_t(div_pow2_round_away(__int128(x) * f.q, 31 - f.exp));
}

double value_of(FixedMultiplier f) {
  return std::ldexp(double(f.q), f.exp - 31);
}

}  // namespace

TEST_CASE("decompose_multiplier: precision over 1e-8 .. 1e3 and bit widths") {
  std::mt19937 rng(7);
  std::uniform_real_distribution<double> lg(-8.0, 3.0);
  for (int bits : {31, 24, 16, 12, 8, 4, 2}) {
    for (int i = 0; i < 3000; ++i) {
      const double m = i < 12 ? std::pow(10.0, i - 8) : std::pow(10.0, lg(rng));
      const FixedMultiplier f = decompose_multiplier(m, bits);
      INFO("M=", m, " bits=", bits, " q=", f.q, " exp=", f.exp);
      REQUIRE(f.q >= (int32_t(1) << 30));             // normalized: q in [2^30, 2^31)
      CHECK(f.q % (int64_t(1) << (31 - bits)) == 0);  // only `bits` significant bits
      const double rel = std::abs(value_of(f) - m) / m;
      CHECK(rel <= (bits == 31 ? std::ldexp(1.0, -30) : std::ldexp(1.0, -(bits - 1))));
    }
  }
  // Powers of two are exact; rounding that carries into the next power of two renormalizes.
  CHECK(decompose_multiplier(0.5).q == (1 << 30));
  CHECK(decompose_multiplier(0.5).exp == 0);
  CHECK(decompose_multiplier(1.0).exp == 1);
  const FixedMultiplier c = decompose_multiplier(0.99999, 4);  // rounds up to 1.0
  CHECK(c.q == (1 << 30));
  CHECK(c.exp == 1);
  // Degenerate inputs contribute nothing; huge ones saturate.
  for (double m : {0.0, -1.0, std::nan(""), std::numeric_limits<double>::infinity(), 1e-10})
    CHECK(decompose_multiplier(m).q == 0);
  CHECK(decompose_multiplier(std::ldexp(1.0, 31)).q == kMax);
  CHECK(decompose_multiplier(std::ldexp(1.0, 31)).exp == 30);
}

TEST_CASE("apply_multiplier: equals the exact two-stage rounding, close to one rounding") {
  std::mt19937 rng(11);
  std::uniform_real_distribution<double> lg(-8.0, 3.0);
  std::uniform_int_distribution<int32_t> any(kMin, kMax);
  std::uniform_int_distribution<int32_t> small(-70000, 70000);
  int64_t off_by_one = 0, compared = 0;  // for multipliers below 2^-7 (typical conv values)
  for (int bits : {31, 16, 8}) {
    for (int i = 0; i < 40000; ++i) {
      const FixedMultiplier f = decompose_multiplier(std::pow(10.0, lg(rng)), bits);
      const int32_t x = i % 2 ? any(rng) : small(rng);
      const int32_t got = apply_multiplier(x, f);
      INFO("x=", x, " q=", f.q, " exp=", f.exp);
      REQUIRE(int64_t(got) == two_stage(x, f));
      // Where x * 2^exp does not overflow int32: symmetric, and one exact rounding differs by at
      // most 1 (not at all without a right shift).
      const __int128 shifted = __int128(x) << std::max(f.exp, 0);
      if (x != kMin && shifted <= kMax && shifted > kMin) {
        CHECK(apply_multiplier(-x, f) == -got);
        const int64_t one = single_rounding(x, f);
        CHECK(std::abs(got - one) <= (f.exp >= 0 ? 0 : 1));
        if (f.exp <= -7) {
          off_by_one += got != one;
          ++compared;
        }
      }
    }
  }
  // The double rounding is rare: about 2^(exp-1) of inputs, under 2^-8 here.
  CHECK(compared > 10000);
  CHECK(off_by_one < compared / 100);
}

TEST_CASE("apply_multiplier: exact ties round away from zero") {
  // M = 1/2: right shift 0, the tie is decided by the high multiply.
  const FixedMultiplier half = decompose_multiplier(0.5);
  CHECK(apply_multiplier(1, half) == 1);
  CHECK(apply_multiplier(3, half) == 2);
  CHECK(apply_multiplier(-1, half) == -1);
  CHECK(apply_multiplier(-3, half) == -2);
  // M = 3/4, x = +-2 -> +-1.5.
  const FixedMultiplier q34 = decompose_multiplier(0.75);
  CHECK(apply_multiplier(2, q34) == 2);
  CHECK(apply_multiplier(-2, q34) == -2);
  // M = 2^-4: x = 8 -> 0.5, x = -24 -> -1.5, x = 40 -> 2.5.
  const FixedMultiplier s4 = decompose_multiplier(1.0 / 16);
  CHECK(apply_multiplier(8, s4) == 1);
  CHECK(apply_multiplier(-8, s4) == -1);
  CHECK(apply_multiplier(-24, s4) == -2);
  CHECK(apply_multiplier(40, s4) == 3);
  CHECK(apply_multiplier(6, s4) == 0);
  // The documented double rounding: 7 / 16 = 0.4375, high multiply 7 / 2 = 3.5 -> 4, then
  // 4 / 8 = 0.5 -> 1 (one exact rounding would give 0). gemmlowp / TFLite do the same.
  CHECK(apply_multiplier(7, s4) == 1);
  CHECK(apply_multiplier(-7, s4) == -1);
  // Random exact ties: M = (2j+1) / 2^s, x = (2i+1) * 2^(s-1) gives x * M = (2i+1)(2j+1) / 2.
  std::mt19937 rng(3);
  for (int t = 0; t < 5000; ++t) {
    const int s = 1 + int(rng() % 20);
    const int64_t j = int64_t(rng() % 1000), i = int64_t(rng() % 1000) - 500;
    const double m = double(2 * j + 1) / std::ldexp(1.0, s);
    const int64_t x = (2 * i + 1) << (s - 1);
    if (x < kMin || x > kMax) continue;
    const int64_t num = (2 * i + 1) * (2 * j + 1);  // x * M = num / 2, num odd
    const int64_t want = num > 0 ? (num + 1) / 2 : (num - 1) / 2;
    INFO("x=", x, " M=", m);
    CHECK(apply_multiplier(int32_t(x), decompose_multiplier(m)) == want);
  }
}

TEST_CASE("apply_multiplier: saturation, M > 1 and tiny multipliers") {
  CHECK(saturating_rounding_doubling_high_mul(kMin, kMin) == kMax);  // the only overflow
  CHECK(saturating_rounding_doubling_high_mul(kMin, kMax) == -kMax);
  CHECK(saturating_rounding_doubling_high_mul(kMax, kMax) == kMax - 1);
  // Largest multiplier below 1 applied to INT32_MIN: -2^31 * (1 - 2^-31) = -2^31 + 1.
  CHECK(apply_multiplier(kMin, FixedMultiplier{kMax, 0}) == kMin + 1);
  CHECK(apply_multiplier(kMin, decompose_multiplier(0.5)) == -(1 << 30));
  // M > 1 (left shift) is exact while x * 2^exp fits in int32.
  std::mt19937 rng(5);
  for (double m : {1.0, 1.5, 3.7, 100.25, 12345.678}) {
    const FixedMultiplier f = decompose_multiplier(m);
    REQUIRE(f.exp >= 1);
    const int32_t lim = int32_t(kMax >> f.exp);
    for (int t = 0; t < 2000; ++t) {
      const int32_t x = int32_t(int64_t(rng() % (2 * uint32_t(lim) + 1)) - lim);
      CHECK(int64_t(apply_multiplier(x, f)) == single_rounding(x, f));
    }
    // Beyond that the shifted value saturates: the result keeps the sign and is >= 2^30 in
    // magnitude, i.e. any 8-bit output clamps to its bound.
    CHECK(apply_multiplier(kMax, f) >= (1 << 30));
    CHECK(apply_multiplier(kMin, f) <= -(1 << 30));
  }
  // Multipliers below 2^-32 flush to 0 (|x * M| < 1/2 for every int32 x); just above they act.
  CHECK(decompose_multiplier(std::ldexp(1.0, -33)).q == 0);
  CHECK(apply_multiplier(kMax, decompose_multiplier(std::ldexp(1.0, -33))) == 0);
  CHECK(apply_multiplier(kMax, decompose_multiplier(1e-10)) == 0);
  const FixedMultiplier tiny = decompose_multiplier(1.5 * std::ldexp(1.0, -32));
  CHECK(tiny.exp == -31);
  CHECK(apply_multiplier(kMax, tiny) == 1);   // 0.75 -> 1
  CHECK(apply_multiplier(kMin, tiny) == -1);  // -0.75 -> -1
  CHECK(apply_multiplier(1000, tiny) == 0);
  CHECK(apply_multiplier(12345, FixedMultiplier{}) == 0);
}

TEST_CASE("rounding_right_shift: ties away from zero") {
  struct Case {
    int32_t x;
    int shift;
    int32_t want;
  };
  const Case cases[] = {{5, 1, 3},
                        {-5, 1, -3},
                        {3, 1, 2},
                        {-3, 1, -2},
                        {7, 2, 2},
                        {-7, 2, -2},
                        {6, 2, 2},
                        {-6, 2, -2},
                        {2, 2, 1},
                        {-2, 2, -1},
                        {1, 2, 0},
                        {-1, 2, 0},
                        {5, 2, 1},
                        {-5, 2, -1},
                        {42, 0, 42},
                        {kMin, 31, -1},
                        {kMax, 31, 1},
                        {kMax, 1, 1 << 30},
                        {kMin, 1, -(1 << 30)}};
  for (const Case& c : cases) {
    INFO("x=", c.x, " shift=", c.shift);
    CHECK(rounding_right_shift(c.x, c.shift) == c.want);
  }
  std::mt19937 rng(9);
  for (int t = 0; t < 20000; ++t) {
    const int32_t x = int32_t(rng());
    const int s = int(rng() % 32);
    CHECK(int64_t(rounding_right_shift(x, s)) == int64_t(div_pow2_round_away(x, s)));
  }
}

TEST_CASE("apply_float_multiplier: round half to even in float32, clamped") {
  CHECK(apply_float_multiplier(5, 0.5f, -128, 127) == 2);
  CHECK(apply_float_multiplier(7, 0.5f, -128, 127) == 4);
  CHECK(apply_float_multiplier(-5, 0.5f, -128, 127) == -2);
  CHECK(apply_float_multiplier(-7, 0.5f, -128, 127) == -4);
  CHECK(apply_float_multiplier(3, 0.5f, -128, 127) == 2);
  CHECK(apply_float_multiplier(1, 0.5f, -128, 127) == 0);
  CHECK(apply_float_multiplier(11, 0.25f, -128, 127) == 3);  // 2.75
  CHECK(apply_float_multiplier(1000, 1.0f, -128, 127) == 127);
  CHECK(apply_float_multiplier(-1000, 1.0f, -128, 127) == -128);
  CHECK(apply_float_multiplier(kMax, 1.0f, -10, 245) == 245);
  CHECK(apply_float_multiplier(kMin, 1.0f, -10, 245) == -10);
  // The product is computed in float32: 16777217 is not representable, float(x) = 16777216.
  CHECK(apply_float_multiplier(16777217, 1.0f, -(1 << 25), 1 << 25) == 16777216);
}

TEST_CASE("quantize_value: true division, ties to even, saturation, NaN") {
  CHECK(quantize_value(2.5f, 1.0f, 0, -128, 127) == 2);
  CHECK(quantize_value(3.5f, 1.0f, 0, -128, 127) == 4);
  CHECK(quantize_value(-2.5f, 1.0f, 0, -128, 127) == -2);
  CHECK(quantize_value(0.5f, 1.0f, 128, 0, 255) == 128);
  CHECK(quantize_value(1.5f, 1.0f, 128, 0, 255) == 130);
  CHECK(quantize_value(0.3f, 0.1f, 10, 0, 255) == 13);
  // x / s is exactly -115.5 (rounds to the even -116), x * (1 / s) is -115.49999 (would be -115).
  CHECK(quantize_value(-0x1.d91688p-4f, 0x1.0624dep-10f, 0, -128, 127) == -116);
  CHECK(quantize_value(-0x1.c8b43ap-4f, 0x1.0624dep-10f, 0, -128, 127) == -112);
  // Saturation, including values whose quotient overflows int32 and infinities.
  CHECK(quantize_value(1e20f, 0.01f, 3, 0, 255) == 255);
  CHECK(quantize_value(-1e20f, 0.01f, 3, 0, 255) == 0);
  CHECK(quantize_value(200.0f, 1.0f, 100, 0, 255) == 255);
  CHECK(quantize_value(-200.0f, 1.0f, -100, -128, 127) == -128);
  CHECK(quantize_value(std::numeric_limits<float>::infinity(), 1.0f, 0, -128, 127) == 127);
  CHECK(quantize_value(-std::numeric_limits<float>::infinity(), 1.0f, 0, -128, 127) == -128);
  CHECK(quantize_value(std::nanf(""), 1.0f, 7, -128, 127) == 7);
  CHECK(quantize_value(std::nanf(""), 1.0f, 7, 0, 3) == 3);  // zero point outside a narrow range
  // Narrow ranges (bit widths < 8 in 8-bit containers).
  CHECK(quantize_value(100.0f, 1.0f, 0, -8, 7) == 7);
  CHECK(dequantize_value(130, 0.5f, 128) == 1.0f);
  CHECK(dequantize_value(-128, 0.25f, 0) == -32.0f);
}
