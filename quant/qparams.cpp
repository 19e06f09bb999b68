// Quantization targets and choose_qparams: real range -> (scale, zero point), always finite.
#include "quant/qparams.h"

#include <algorithm>
#include <cfloat>
#include <cmath>

#include "core/error.h"

namespace engine::quant {

namespace {

void check_bits(int bits) {
  ENGINE_CHECK(bits >= 2 && bits <= 8, "quantization bit width must be 2..8, got ", bits);
}

// Smallest scale we hand out: far above float underflow, and 1/scale stays finite in float.
constexpr double kMinScale = 1e-30;

// NaN -> 0, +-inf (and anything beyond float range) -> +-FLT_MAX.
double sanitize(double v) {
  if (std::isnan(v)) return 0.0;
  return std::clamp(v, -double(FLT_MAX), double(FLT_MAX));
}

}  // namespace

QMode parse_qmode(const std::string& s) {
  if (s == "sym") return QMode::Sym;
  if (s == "asym_u") return QMode::AsymU;
  if (s == "asym_s") return QMode::AsymS;
  fail("unknown quantization mode '", s, "' (expected one of: sym, asym_u, asym_s)");
}

std::string qmode_name(QMode m) {
  switch (m) {
    case QMode::Sym:
      return "sym";
    case QMode::AsymU:
      return "asym_u";
    case QMode::AsymS:
      return "asym_s";
  }
  return "?";
}

int32_t QTarget::qmin() const {
  check_bits(bits);
  return mode == QMode::AsymU ? 0 : -(int32_t(1) << (bits - 1));
}

int32_t QTarget::qmax() const {
  check_bits(bits);
  return mode == QMode::AsymU ? (int32_t(1) << bits) - 1 : (int32_t(1) << (bits - 1)) - 1;
}

DType QTarget::dtype() const {
  return mode == QMode::AsymU ? DType::U8 : DType::I8;
}

ScaleZp choose_qparams(Range r, const QTarget& t) {
  const int32_t qmin = t.qmin(), qmax = t.qmax();  // validates bits
  double lo = sanitize(r.lo), hi = sanitize(r.hi);
  if (lo > hi) std::swap(lo, hi);
  ScaleZp out;
  if (t.mode == QMode::Sym) {
    // Symmetric: zero point 0, the positive side uses 2^(b-1)-1 steps (e.g. 127 for 8 bits).
    const double amax = std::max(std::fabs(lo), std::fabs(hi));
    out.zero_point = 0;
    if (amax == 0) {
      out.scale = 1.0f;
      return out;
    }
    out.scale = float(std::max(amax / double(qmax), kMinScale));
    return out;
  }
  // Asymmetric: the range must contain 0 so that real 0 is exactly representable.
  lo = std::min(lo, 0.0);
  hi = std::max(hi, 0.0);
  const double range = hi - lo;  // <= 2 * FLT_MAX, finite in double
  if (range == 0) {
    out.scale = 1.0f;
    out.zero_point = qmin;  // real 0 -> qmin since lo == 0
    return out;
  }
  // Largest value: 2*FLT_MAX / 3 (bits 2) < FLT_MAX, so the float conversion is finite.
  out.scale = float(std::max(range / double(qmax - qmin), kMinScale));
  // Zero point from the stored float scale (what the kernels use), round half to even.
  const double zp = std::nearbyint(double(qmin) - lo / double(out.scale));
  out.zero_point = int32_t(std::clamp(zp, double(qmin), double(qmax)));
  return out;
}

}  // namespace engine::quant
