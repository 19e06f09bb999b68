// Quantization targets and the mapping from a real range to (scale, zero point).
#pragma once

#include <cstdint>
#include <string>

#include "core/dtype.h"

namespace engine::quant {

// sym: int8, zero point 0, scale = max|x| / (2^(b-1) - 1).
// asym_u: uint8 [0, 2^b - 1].  asym_s: int8 [-2^(b-1), 2^(b-1) - 1].
enum class QMode { Sym, AsymU, AsymS };
QMode parse_qmode(const std::string& s);  // "sym" | "asym_u" | "asym_s"; throws otherwise
std::string qmode_name(QMode m);

struct QTarget {
  int bits = 8;  // 2..8, stored in 8-bit containers
  QMode mode = QMode::AsymU;
  int32_t qmin() const;
  int32_t qmax() const;
  DType dtype() const;  // UInt8 for asym_u, Int8 otherwise
};

struct Range {
  double lo = 0, hi = 0;
};

struct ScaleZp {
  float scale = 1.0f;
  int32_t zero_point = 0;
};

// Never returns a zero, negative, inf or NaN scale: an all-zero range gives scale 1.
ScaleZp choose_qparams(Range r, const QTarget& t);

}  // namespace engine::quant
