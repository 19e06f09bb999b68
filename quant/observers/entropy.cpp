// entropy: TensorRT-style KL-divergence calibration on the histogram of |x|.
//
// For each candidate threshold i (in bins, from `levels` to all bins of the |x| histogram):
//   P = bins [0, i) with the counts beyond i (outliers) added to bin i-1;
//   Q = bins [0, i) (without outliers) merged into `levels` buckets of i/levels bins (the last
//       bucket takes the remainder), each bucket's count spread evenly over the bins where P is
//       non-zero (bins where P is 0 stay 0);
//   both smoothed (empty bins get eps = 1e-4 counts, taken proportionally from the others) and
//   normalized; KL(P || Q) = sum P log(P / Q).
// The threshold T = i * bin width with the smallest KL wins. levels = 2^bits for an asymmetric
// target on single-signed data (the whole grid covers [0, T]), otherwise 2^(bits-1).
// Values exactly 0 are left out (as ncnn / caffe-int8-convert-tools do): they are exact in any
// grid, and the ReLU spike at 0 would otherwise dominate bucket 0 of Q and force tiny thresholds.
#include <algorithm>
#include <cmath>
#include <limits>

#include "quant/observers/observers.h"

namespace engine::quant {

namespace {

constexpr double kEps = 1e-4;

// The |x| histogram with prefix sums, so that a candidate costs O(levels).
struct Folded {
  std::vector<int64_t> f;
  std::vector<double> pre;    // pre[k] = sum f[0..k)
  std::vector<double> plogp;  // plogp[k] = sum f log f over [0, k)
  std::vector<int64_t> nz;    // nz[k] = number of non-zero f in [0, k)
};

// KL(P || Q) for candidate i without materializing P and Q. With Sp = sum P = total,
// Sq = sum Q = sum of the first i bins and zp / zq the empty-bin counts, smoothing maps
// v -> (v == 0 ? eps : v * kv) / S with kv = (S - eps * z) / S. Then
//   bins where P is 0 (Q is 0 too): each (eps/Sp) log(Sq/Sp);
//   bins k < i-1 with P > 0: sum pn log pn (from the f log f prefix sums) minus, per bucket,
//     (sum of pn in the bucket) * log(qn of the bucket), qn = (bucket sum / non-zero bins) kq / Sq;
//   bin i-1 (holding the outliers) on its own.
double kl_for(const Folded& h, int64_t i, int64_t levels) {
  const double total = h.pre.back(), sliced = h.pre[size_t(i)], outliers = total - sliced;
  if (sliced <= 0) return std::numeric_limits<double>::infinity();  // Q empty
  const int64_t merged = i / levels;
  const double f_last = double(h.f[size_t(i - 1)]), p_last = f_last + outliers;
  const bool last_only_outliers = f_last == 0 && outliers > 0;
  const int64_t nnz_p = h.nz[size_t(i)] + (last_only_outliers ? 1 : 0);
  // Q is 0 where P is 0, and also at bin i-1 if only outliers reach it (empty last bucket).
  const int64_t last_b = (levels - 1) * merged;
  const double last_sum = h.pre[size_t(i)] - h.pre[size_t(last_b)];
  const int64_t nnz_q = nnz_p - (last_sum == 0 && p_last > 0 ? 1 : 0);
  const double Sp = total, Sq = sliced;
  const double kp = (Sp - kEps * double(i - nnz_p)) / Sp, kq = (Sq - kEps * double(i - nnz_q)) / Sq;
  const double cp = kp / Sp;  // pn = p * cp

  double kl = double(i - nnz_p) * (kEps / Sp) * std::log(Sq / Sp);
  // Bins [0, i-1): sum pn log pn = cp * (sum f log f + log(cp) * sum f).
  kl += cp * (h.plogp[size_t(i - 1)] + std::log(cp) * h.pre[size_t(i - 1)]);
  for (int64_t j = 0; j < levels; ++j) {
    const int64_t b = j * merged, e = (j == levels - 1) ? i : b + merged;
    const double bs = h.pre[size_t(e)] - h.pre[size_t(b)];
    if (bs <= 0) continue;
    const int64_t cnt =
        h.nz[size_t(e)] - h.nz[size_t(b)] + ((e == i && last_only_outliers) ? 1 : 0);
    const double qn = bs / double(cnt) * kq / Sq;
    const double inner = bs - (e == i ? f_last : 0.0);  // bin i-1 is handled below
    if (inner > 0) kl -= cp * inner * std::log(qn);
    if (e == i && p_last > 0) kl += cp * p_last * std::log(cp * p_last / qn);
  }
  if (last_sum == 0 && p_last > 0) kl += cp * p_last * std::log(cp * p_last / (kEps / Sq));
  return kl;
}

Range entropy_range(const TensorStats& s, const QTarget& t, const ObserverOptions&) {
  const int levels = (t.mode != QMode::Sym && obs::one_sided(s)) ? 1 << t.bits : 1 << (t.bits - 1);
  Folded h;
  h.f = obs::folded_hist(s, /*drop_zeros=*/true);
  const int64_t nb = int64_t(h.f.size());
  if (s.hist_range() == 0 || nb <= levels) return {s.min(), s.max()};
  h.pre.assign(size_t(nb) + 1, 0.0);
  h.plogp.assign(size_t(nb) + 1, 0.0);
  h.nz.assign(size_t(nb) + 1, 0);
  for (int64_t k = 0; k < nb; ++k) {
    const double v = double(h.f[size_t(k)]);
    h.pre[size_t(k) + 1] = h.pre[size_t(k)] + v;
    h.plogp[size_t(k) + 1] = h.plogp[size_t(k)] + (v > 0 ? v * std::log(v) : 0.0);
    h.nz[size_t(k) + 1] = h.nz[size_t(k)] + (v > 0);
  }
  // Candidates: every bin count from `levels` to nb (strided for very fine histograms).
  const int64_t step = std::max<int64_t>(1, (nb - levels) / 4096);
  double best = std::numeric_limits<double>::infinity();
  int64_t best_i = nb;
  for (int64_t i = levels; i <= nb; i = (i < nb && i + step > nb) ? nb : i + step) {
    const double kl = kl_for(h, i, levels);
    if (kl < best) best = kl, best_i = i;
  }
  return obs::symmetric_clip(s, double(best_i) * obs::bin_width(s));
}

}  // namespace

ObserverInfo entropy_observer() {
  return {"entropy", "TensorRT-style KL-divergence threshold on the |x| histogram", entropy_range};
}

}  // namespace engine::quant
