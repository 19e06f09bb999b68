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

// y[i] = requant(acc[i], sum[i]) for i < n (sum may be null, type st). Returns false, writing
// nothing, when the path in use has no SIMD version.
bool requant_row_simd(const RequantRow& r, const int32_t* acc, int64_t n, void* y, Q8Type yt,
                      const void* sum, Q8Type st);

}  // namespace engine
