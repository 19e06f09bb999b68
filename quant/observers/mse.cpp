// mse: the clipping range minimizing the expected squared quantization error, estimated from the
// histogram with the values spread uniformly inside each bin (exactly-zero values have no error:
// 0 is on every grid). For a candidate range, choose_qparams gives the real grid (scale s, zero
// point rounding included): points s*Z between L = (qmin - zp) s and H = (qmax - zp) s. Per bin
// [a, b] holding n values:
//   error = n / (b - a) * ( integral over [a,b] inside [L,H] of (x - s round(x/s))^2
//                         + integral over x > H of (x - H)^2 + integral over x < L of (L - x)^2 )
// with the rounding integral in closed form (F below). Candidates: thresholds T at bin edges from
// the smallest non-empty range up to max|x|; sym clips to [-T, T], asymmetric targets shrink both
// ends of [min(min,0), max(max,0)] by T / max|x|. Search: every `step`-th candidate, then every
// candidate around the best one. Ties keep the wider range (unclipped [min, max] is scored first).
#include <algorithm>
#include <cmath>
#include <limits>

#include "quant/observers/observers.h"

namespace engine::quant {

namespace {

// F(x) = integral_0^x (t - s round(t/s))^2 dt = k s^3/12 + r^3/3 with k = round(x/s), r = x - k s.
double round_err_integral(double x, double s) {
  const double k = std::nearbyint(x / s), r = x - k * s;
  return k * s * s * s / 12 + r * r * r / 3;
}

struct Bin {
  double a, b, n;
};

double expected_error(const std::vector<Bin>& bins, double s, double L, double H) {
  double total = 0;
  for (const Bin& bn : bins) {
    const double a = bn.a, b = bn.b;
    double e = 0;
    const double u = std::max(a, L), v = std::min(b, H);
    if (u < v) e += round_err_integral(v, s) - round_err_integral(u, s);
    if (b > H) {
      const double c = std::max(a, H) - H;
      e += ((b - H) * (b - H) * (b - H) - c * c * c) / 3;
    }
    if (a < L) {
      const double c = L - std::min(b, L);
      e += ((L - a) * (L - a) * (L - a) - c * c * c) / 3;
    }
    total += bn.n * std::max(0.0, e) / (b - a);
  }
  return total;
}

Range mse_range(const TensorStats& s, const QTarget& t, const ObserverOptions&) {
  const auto& h = s.hist();
  const int64_t nb = int64_t(h.size()), half = nb / 2;
  const double R = s.hist_range(), w = obs::bin_width(s);
  const double amax = std::max(std::fabs(s.min()), std::fabs(s.max()));
  if (R == 0 || amax == 0) return {s.min(), s.max()};
  std::vector<Bin> bins;  // non-empty bins, exact zeros removed
  for (int64_t k = 0; k < nb; ++k) {
    const double n = double(h[size_t(k)] - (k == half ? s.zeros() : 0));
    if (n > 0) bins.push_back({-R + double(k) * w, -R + double(k + 1) * w, n});
  }
  if (bins.empty()) return {s.min(), s.max()};

  const double lo0 = std::min(s.min(), 0.0), hi0 = std::max(s.max(), 0.0);
  auto candidate = [&](double T) {
    if (t.mode == QMode::Sym) return obs::symmetric_clip(s, T);
    const double f = std::clamp(T / amax, 0.0, 1.0);
    return Range{std::clamp(f * lo0, s.min(), s.max()), std::clamp(f * hi0, s.min(), s.max())};
  };
  auto error = [&](const Range& r) {
    const ScaleZp qp = choose_qparams(r, t);
    const double sc = qp.scale;
    return expected_error(bins, sc, double(t.qmin() - qp.zero_point) * sc,
                          double(t.qmax() - qp.zero_point) * sc);
  };
  // Candidate thresholds T_i = max(T0, i * w) for i in [i0, i1), then amax itself (scored first).
  const double T0 = obs::min_threshold(s);
  const int64_t i0 = std::max<int64_t>(1, int64_t(std::floor(T0 / w)));
  const int64_t i1 = std::max(i0, int64_t(std::ceil(amax / w)));
  auto T_of = [&](int64_t i) { return std::min(amax, std::max(T0, double(i) * w)); };

  Range best_r = {s.min(), s.max()};
  double best = error(best_r);
  int64_t best_i = i1;
  auto consider = [&](int64_t i) {
    const Range r = candidate(T_of(i));
    if (r.lo > r.hi) return;
    const double e = error(r);
    if (e < best) best = e, best_r = r, best_i = i;
  };
  const int64_t step = std::max<int64_t>(1, (i1 - i0) / 256);
  for (int64_t i = i0; i < i1; i += step) consider(i);
  if (step > 1) {
    const int64_t c = best_i;
    for (int64_t i = std::max(i0, c - step + 1); i < std::min(i1, c + step); ++i) consider(i);
  }
  return best_r;
}

}  // namespace

ObserverInfo mse_observer() {
  return {"mse", "clipping range minimizing histogram-estimated squared quantization error",
          mse_range};
}

}  // namespace engine::quant
