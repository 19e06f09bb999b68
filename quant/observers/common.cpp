// Histogram helpers shared by the histogram-based observers.
#include <algorithm>
#include <cmath>

#include "quant/observers/observers.h"

namespace engine::quant::obs {

double bin_width(const TensorStats& s) {
  return 2 * s.hist_range() / double(s.hist().size());
}

std::vector<int64_t> folded_hist(const TensorStats& s, bool drop_zeros) {
  const auto& h = s.hist();
  const size_t half = h.size() / 2;
  std::vector<int64_t> f(half);
  // Bin half+j holds x in [j w, (j+1) w); bin half-1-j holds x in [-(j+1) w, -j w).
  for (size_t j = 0; j < half; ++j) f[j] = h[half + j] + h[half - 1 - j];
  if (drop_zeros) f[0] -= s.zeros();
  return f;
}

double hist_quantile(const TensorStats& s, double q) {
  const auto& h = s.hist();
  const double total = double(s.count());
  if (total == 0 || s.hist_range() == 0) return 0;
  const double target = std::clamp(q, 0.0, 1.0) * total, w = bin_width(s);
  if (target <= 0) return s.min();
  double cum = 0;
  for (size_t k = 0; k < h.size(); ++k) {
    const double c = double(h[k]);
    if (c > 0 && cum + c >= target) {
      const double left = -s.hist_range() + double(k) * w;
      return left + (target - cum) / c * w;
    }
    cum += c;
  }
  return s.max();
}

double min_threshold(const TensorStats& s) {
  return std::max({s.min(), -s.max(), 0.0});
}

Range symmetric_clip(const TensorStats& s, double T) {
  T = std::max(T, min_threshold(s));
  return {std::max(s.min(), -T), std::min(s.max(), T)};
}

bool one_sided(const TensorStats& s) {
  return s.min() >= 0 || s.max() <= 0;
}

}  // namespace engine::quant::obs
