// SIMD requantization of one row of int32 accumulators that share an output channel (used by
// OutputWriter in ops/qgemm_core.h). Bit-identical to the scalar math of ChannelRequant, i.e. of
// quant/fixedpoint.h:
//   fixed: y = clamp(zp + apply_multiplier(acc + bias, fm)
//                    [+ apply_multiplier(sum - sum_zp, sum_fm)], lo, hi)      (int64 sum)
//   float: y = zp + nearbyint(min(max(float(acc + bias) * m [+ float(sum - sum_zp) * sum_m],
//                                     lo - zp), hi - zp))                     (float32)
// The path follows igemm_isa() (ops/igemm.h): avx2 and avx512_vnni use 8-lane AVX2 code, the
// reference path has none (the caller keeps its scalar loop).
#pragma once

#include <cstdint>
#include <vector>

#include "quant/fixedpoint.h"

namespace engine {

enum class Q8Type { None, U8, I8 };

struct RequantRow {
  bool fixed = true;
  quant::FixedMultiplier fm, sum_fm;  // fixed mode
  float m = 0, sum_m = 0;             // float mode
  int32_t zp = 0, lo = 0, hi = 255;   // output zero point and range (lo <= hi)
  int32_t bias = 0, sum_zp = 0;
};

// The constants of one fixed multiplier as the SIMD code applies it (see irequant.cpp): left shift
// with saturation bounds over / under, then the rounding right shift with mask / half. ok = false
// for multipliers decompose_multiplier never produces (q < 0, exp > 30 or < -31), which the SIMD
// code does not handle.
struct FixedLane {
  bool ok = true;
  int32_t q = 0, lsh = 0, rsh = 0, over = 0, under = 0, mask = 0, half = 0;
};
FixedLane fixed_lane(quant::FixedMultiplier f);

// Per-lane constants of a row of accumulators that belong to consecutive output channels (one
// pixel of a channels-last tensor). Arrays are indexed by channel and readable up to a multiple
// of 8 past the last channel used. off[c] is added to the accumulator (wrapping) before the
// multiplier; fixed mode reads the lane arrays (any_left / any_right: some lane shifts), float
// mode reads m. common gives zp, lo, hi and the sum's multiplier and zero point.
// ChannelLaneTables builds one.
struct ChannelLanes {
  bool fixed = true, any_left = false, any_right = false;
  const int32_t *off = nullptr, *q = nullptr, *lsh = nullptr, *rsh = nullptr, *over = nullptr,
                *under = nullptr, *mask = nullptr, *half = nullptr;
  const float* m = nullptr;
  // The AVX-512 fixed-point multiply in one rounding (irequant_avx512.h): per channel c, 64-bit
  // nudge 2^30 + 2^(30 + rsh) (just 2^30 if rsh = 0) and shift 31 + rsh, split by parity
  // ([0]: even channels, [1]: odd ones) and indexed by c / 2.
  const uint64_t* nudge64[2] = {nullptr, nullptr};
  const uint64_t* shift64[2] = {nullptr, nullptr};
  // The lean form (fixed mode; every channel's q is 0 or it has no left shift and a right shift
  // of 1 to 22, so |apply_multiplier(x)| <= 2^30; the output zero point zp >= 0): the nudges
  // above plus zp * 2^shift, so that one rounding also adds zp (irequant_avx512.h,
  // apply_lean16). lean false: null.
  bool lean = false;
  const uint64_t* nudge64z[2] = {nullptr, nullptr};
  // Float mode's lean form: every channel multiplier is in [0, 1/2) and the sum's below 2^20, so
  // the rounded value plus zp fits in int32 and the saturating packs can clamp.
  bool float_lean = false;
  RequantRow common;
  FixedLane sum_lane;  // fixed_lane(common.sum_fm), computed once
  // Fixed mode, the residual sum's term apply_multiplier(s - sum_zp, sum_fm) for every sum byte
  // s, as int16 split into bytes: [U8 sums: 256 low bytes, 256 high bytes][I8 sums: the same],
  // indexed by the raw byte. Set only when the CPU has AVX-512 VBMI (the lookup is VPERMI2B),
  // every term fits in int16 and every channel's multiplier is below 1/2 (|apply_multiplier(x)|
  // <= 2^30 for every int32 x), so that the two terms add without int32 overflow; else null.
  const uint8_t* sum_lut = nullptr;
};

// The one-rounding constants of a multiplier with right shift rsh (see ChannelLanes::nudge64).
inline uint64_t fixed_nudge64(int32_t rsh) {
  return (uint64_t(1) << 30) + (rsh > 0 ? uint64_t(1) << (30 + rsh) : 0);
}
inline uint64_t fixed_shift64(int32_t rsh) {
  return uint64_t(31 + rsh);
}

// Owns the per-channel arrays of a ChannelLanes, padded by 16 channels: built from each channel's
// RequantRow (its bias is not used: off[c], wrapping, carries the bias) and the sum / range
// constants of rows[0]. Movable (the arrays move with it), not copyable.
class ChannelLaneTables {
 public:
  ChannelLaneTables() = default;
  ChannelLaneTables(const std::vector<RequantRow>& rows, const std::vector<int32_t>& off);
  ChannelLaneTables(ChannelLaneTables&&) = default;
  ChannelLaneTables& operator=(ChannelLaneTables&&) = default;
  ChannelLaneTables(const ChannelLaneTables&) = delete;
  ChannelLaneTables& operator=(const ChannelLaneTables&) = delete;
  const ChannelLanes& lanes() const { return lanes_; }
  // False when a fixed multiplier is one the SIMD code does not take (FixedLane::ok).
  bool simd() const { return simd_; }

 private:
  // With every channel multiplier below 1/2 (fixed mode): ChannelLanes::sum_lut, and
  // ChannelLanes::lean when right shifts are at most 22 and zp >= 0.
  void build_sum_lut();
  void build_lean(size_t M);
  std::vector<int32_t> off_, q_, lsh_, rsh_, over_, under_, mask_, half_;
  std::vector<uint64_t> nudge64_[2], shift64_[2], nudge64z_[2];
  std::vector<float> m_;
  std::vector<uint8_t> sum_lut_;
  ChannelLanes lanes_;
  bool simd_ = true;
};

// A tile of accumulators: `rows` rows of channels [c0, c0 + n), row r at acc + r * lda; its
// outputs at y + r * ldy, and the optional sum input laid out like y.
struct ChannelTile {
  const int32_t* acc = nullptr;
  int64_t lda = 0, rows = 1;
  void* y = nullptr;
  const void* sum = nullptr;
  int64_t ldy = 0;
};

// The sum terms of a tile's residual input (ChannelLanes::sum_lut): out[r * 64 + i] = the int16
// term of sum[r * ldy + i] for r < rows, i < n <= 64 (the rest of each 64 is unspecified). lut:
// the half of sum_lut for the sum's type. Needs AVX-512 VBMI: only when sum_lut is set.
void sum_terms_rows(const uint8_t* sum, int64_t ldy, int rows, int n, const uint8_t* lut,
                    int16_t* out);

// y[r][i] = requant(acc[r][i] + off[c0 + i], sum[r][i]) with the constants of channel c0 + i,
// i < n. Returns false, writing nothing, when the path in use has no SIMD version.
bool requant_channels_simd(const ChannelLanes& t, int64_t c0, int64_t n, const ChannelTile& tile,
                           Q8Type yt, Q8Type st);

// Whether the lean form (ChannelLanes::lean) must clamp: the output range is narrower than the
// type's, which the saturating packs give.
inline bool lean_clamps(const ChannelLanes& t, Q8Type yt) {
  const bool u8 = yt == Q8Type::U8;
  return t.common.lo > (u8 ? 0 : -128) || t.common.hi < (u8 ? 255 : 127);
}

// True when requant_channels_simd takes t on the avx512_vnni path for output type yt (what the
// GEMM micro-kernel that requantizes from registers needs, see backends/x86/u8s8_gemm.h).
bool requant_channels_fusable(const ChannelLanes& t, Q8Type yt);

// y[i] = requant(acc[i], sum[i]) for i < n (sum may be null, type st). Returns false, writing
// nothing, when the path in use has no SIMD version.
bool requant_row_simd(const RequantRow& r, const int32_t* acc, int64_t n, void* y, Q8Type yt,
                      const void* sum, Q8Type st);

}  // namespace engine
