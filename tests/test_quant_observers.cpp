// Quantization parameters, streaming tensor statistics (moments, EMA, doubling histogram, JSON)
// and the observers. Expected values are hand-computed in the comments.
#include <doctest/doctest.h>

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <limits>
#include <numbers>
#include <random>
#include <vector>

#include "core/error.h"
#include "quant/observer.h"
#include "quant/qparams.h"
#include "quant/stats.h"

using namespace engine;
using namespace engine::quant;

namespace {

QTarget target(int bits, QMode m) {
  QTarget t;
  t.bits = bits;
  t.mode = m;
  return t;
}

void observe(TensorStats& s, const std::vector<float>& v, int64_t samples = 1) {
  s.observe(v.data(), int64_t(v.size()), samples);
}

// N(0, 1) samples from a fixed seed.
std::vector<float> gaussian(size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.0f, 1.0f);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

void check_finite_qparams(const ScaleZp& q, const QTarget& t) {
  CHECK(std::isfinite(q.scale));
  CHECK(q.scale > 0);
  CHECK(std::isfinite(1.0f / q.scale));
  CHECK(q.zero_point >= t.qmin());
  CHECK(q.zero_point <= t.qmax());
}

}  // namespace

TEST_CASE("QTarget ranges, dtypes and mode names") {
  CHECK(target(8, QMode::AsymU).qmin() == 0);
  CHECK(target(8, QMode::AsymU).qmax() == 255);
  CHECK(target(4, QMode::AsymU).qmax() == 15);
  CHECK(target(2, QMode::AsymU).qmax() == 3);
  CHECK(target(8, QMode::AsymS).qmin() == -128);
  CHECK(target(8, QMode::Sym).qmax() == 127);
  CHECK(target(4, QMode::Sym).qmin() == -8);
  CHECK(target(4, QMode::AsymS).qmax() == 7);
  CHECK(target(2, QMode::Sym).qmin() == -2);
  CHECK(target(2, QMode::AsymS).qmax() == 1);
  CHECK(target(8, QMode::AsymU).dtype() == DType::U8);
  CHECK(target(8, QMode::AsymS).dtype() == DType::I8);
  CHECK(target(8, QMode::Sym).dtype() == DType::I8);
  CHECK_THROWS_WITH_AS(target(1, QMode::Sym).qmin(), doctest::Contains("2..8"), Error);
  CHECK_THROWS_WITH_AS(target(9, QMode::AsymU).qmax(), doctest::Contains("got 9"), Error);
  CHECK_THROWS_AS(choose_qparams({0, 1}, target(16, QMode::Sym)), Error);
  for (const char* n : {"sym", "asym_u", "asym_s"}) CHECK(qmode_name(parse_qmode(n)) == n);
  CHECK_THROWS_WITH_AS(parse_qmode("int8"), doctest::Contains("sym, asym_u, asym_s"), Error);
}

TEST_CASE("choose_qparams: hand-computed cases per mode and bit width") {
  // sym: scale = max|x| / (2^(b-1) - 1), zp 0.
  auto q = choose_qparams({-1, 1}, target(8, QMode::Sym));
  CHECK(q.scale == float(1.0 / 127));
  CHECK(q.zero_point == 0);
  q = choose_qparams({-1, 0.5}, target(4, QMode::Sym));  // amax 1 / 7
  CHECK(q.scale == float(1.0 / 7));
  CHECK(q.zero_point == 0);
  q = choose_qparams({-3, 2}, target(2, QMode::Sym));  // amax 3 / 1
  CHECK(q.scale == 3.0f);
  q = choose_qparams({0.5, 4}, target(8, QMode::Sym));  // positive only: still 4 / 127
  CHECK(q.scale == float(4.0 / 127));

  // asym_u: [0, 2.55] -> 0.01, zp 0; [-1, 0] -> 1/255, zp 255.
  q = choose_qparams({0, 2.55}, target(8, QMode::AsymU));
  CHECK(q.scale == doctest::Approx(0.01).epsilon(1e-6));
  CHECK(q.zero_point == 0);
  q = choose_qparams({-1, 0}, target(8, QMode::AsymU));
  CHECK(q.scale == float(1.0 / 255));
  CHECK(q.zero_point == 255);
  q = choose_qparams({1, 2}, target(8, QMode::AsymU));  // widened to [0, 2]
  CHECK(q.scale == float(2.0 / 255));
  CHECK(q.zero_point == 0);
  q = choose_qparams({-1, 2}, target(4, QMode::AsymU));  // 3/15 = 0.2, zp = round(1/0.2) = 5
  CHECK(q.scale == 0.2f);
  CHECK(q.zero_point == 5);
  q = choose_qparams({-3, -1}, target(2, QMode::AsymU));  // [-3, 0] / 3 = 1, zp = 3
  CHECK(q.scale == 1.0f);
  CHECK(q.zero_point == 3);
  // zp = round(0 - (-0.3) / (1.2 / 255)) = round(63.75) = 64
  q = choose_qparams({-0.3, 0.9}, target(8, QMode::AsymU));
  CHECK(q.zero_point == 64);

  // asym_s: [-1, 0] -> zp = -128 + 255 = 127; [-1, 2] 4 bits -> zp = -8 + 5 = -3.
  q = choose_qparams({-1, 0}, target(8, QMode::AsymS));
  CHECK(q.scale == float(1.0 / 255));
  CHECK(q.zero_point == 127);
  q = choose_qparams({-1, 2}, target(4, QMode::AsymS));
  CHECK(q.scale == 0.2f);
  CHECK(q.zero_point == -3);
  q = choose_qparams({-1, 2}, target(2, QMode::AsymS));  // 3/3 = 1, zp = -2 + 1 = -1
  CHECK(q.scale == 1.0f);
  CHECK(q.zero_point == -1);
  q = choose_qparams({0, 2.55}, target(8, QMode::AsymS));  // zp = qmin when lo = 0
  CHECK(q.zero_point == -128);
  // A reversed range is reordered.
  q = choose_qparams({1, -1}, target(8, QMode::Sym));
  CHECK(q.scale == float(1.0 / 127));
}

TEST_CASE("choose_qparams: degenerate ranges stay finite") {
  const double inf = std::numeric_limits<double>::infinity();
  const double nan = std::numeric_limits<double>::quiet_NaN();
  for (int bits : {2, 4, 8})
    for (QMode m : {QMode::Sym, QMode::AsymU, QMode::AsymS}) {
      const QTarget t = target(bits, m);
      CAPTURE(bits);
      CAPTURE(qmode_name(m));
      auto z = choose_qparams({0, 0}, t);
      CHECK(z.scale == 1.0f);
      CHECK(z.zero_point == (m == QMode::Sym ? 0 : t.qmin()));  // real 0 representable
      for (Range r : {Range{0, 0}, Range{5, 5}, Range{-5, -5}, Range{1e-40, 1e-40},
                      Range{-1e-40, 1e-40}, Range{-inf, inf}, Range{0, inf}, Range{-inf, 0},
                      Range{nan, 1}, Range{nan, nan}, Range{-1e38, 3.4e38}})
        check_finite_qparams(choose_qparams(r, t), t);
      // Constant positive: range widened to [0, 5].
      auto c = choose_qparams({5, 5}, t);
      if (m == QMode::Sym) {
        CHECK(c.scale == float(5.0 / t.qmax()));
      } else {
        CHECK(c.scale == float(5.0 / (t.qmax() - t.qmin())));
        CHECK(c.zero_point == t.qmin());
      }
    }
  CHECK(choose_qparams({1e-40, 1e-40}, target(8, QMode::AsymU)).scale >= 1e-30f);
}

TEST_CASE("TensorStats: histogram doubling keeps counts and bins (bins = 8)") {
  StatsOptions o;
  o.bins = 8;
  TensorStats s(o);
  // R = 1, w = 0.25: -1 -> bin 0; 0.1 -> 4; 0.9 -> 7; 1.0 (== R) -> last bin 7.
  observe(s, {-1.0f, 0.1f, 0.9f, 1.0f});
  CHECK(s.hist_range() == 1.0);
  CHECK(s.hist() == std::vector<int64_t>{1, 0, 0, 0, 1, 0, 0, 2});
  // 3.0 > R: R -> 2 (old bin k -> 2 + k/2: [0,0,1,0,1,2,0,0]) -> 4 ([0,0,0,1,3,0,0,0]),
  // w = 1; then 3.0 -> bin 7, -0.3 -> bin 3. The value 1.0 (closed last bin at R = 1) stays in
  // the merged bin [0, 1).
  observe(s, {3.0f, -0.3f});
  CHECK(s.hist_range() == 4.0);
  CHECK(s.hist() == std::vector<int64_t>{0, 0, 0, 2, 3, 0, 0, 1});
  CHECK(s.count() == 6);
  CHECK(s.min() == -1.0);
  CHECK(s.max() == 3.0);

  // All-zero first batch: R stays 0, zeros wait in the centre bin (bin of 0 for every R).
  TensorStats z(o);
  observe(z, {0, 0});
  CHECK(z.hist_range() == 0);
  CHECK(z.zeros() == 2);
  observe(z, {2, -2});
  CHECK(z.hist_range() == 2);
  CHECK(z.hist() == std::vector<int64_t>{1, 0, 0, 0, 2, 0, 0, 1});

  // NaN and inf are skipped; a batch of only NaN does not count.
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  TensorStats n(o);
  observe(n, {nan, 1, inf, -3, -inf});
  CHECK(n.count() == 2);
  CHECK(n.zeros() == 0);
  CHECK(n.min() == -3);
  CHECK(n.max() == 1);
  CHECK(n.mean() == -1);
  observe(n, {nan});
  CHECK(n.batches() == 1);
  int64_t total = 0;
  for (auto c : n.hist()) total += c;
  CHECK(total == 2);

  CHECK_THROWS_WITH_AS(n.observe(nullptr, 5, 2), doctest::Contains("2 samples"), Error);
  StatsOptions bad;
  bad.bins = 6;
  CHECK_THROWS_WITH_AS(TensorStats{bad}, doctest::Contains("multiple of 4"), Error);
}

TEST_CASE("TensorStats: streaming equals one batch of all the data") {
  // First batch holds the global extremes, so R is fixed by it and no doubling happens.
  std::vector<float> all = gaussian(200000, 7);
  all[0] = 6.5f;
  all[1] = -7.25f;
  TensorStats one, many;
  one.observe(all.data(), int64_t(all.size()));
  for (size_t b = 0; b < all.size(); b += 1000) many.observe(all.data() + b, 1000);
  CHECK(many.batches() == 200);
  CHECK(one.count() == many.count());
  CHECK(one.min() == -7.25);
  CHECK(many.max() == 6.5);
  CHECK(one.hist_range() == 7.25);
  CHECK(many.hist_range() == 7.25);
  CHECK(one.hist() == many.hist());
  CHECK(one.mean() == doctest::Approx(many.mean()).epsilon(1e-12));
  CHECK(one.stddev() == doctest::Approx(many.stddev()).epsilon(1e-12));
  // Against a naive double loop.
  double sum = 0, sumsq = 0;
  for (float v : all) sum += v, sumsq += double(v) * v;
  const double mean = sum / double(all.size());
  CHECK(one.mean() == doctest::Approx(mean).epsilon(1e-12));
  CHECK(one.stddev() ==
        doctest::Approx(std::sqrt(sumsq / double(all.size()) - mean * mean)).epsilon(1e-9));
  // Naive histogram: bin = floor((x + R) / w), clamped.
  std::vector<int64_t> h(4096, 0);
  for (float v : all) {
    int64_t k = int64_t(std::floor((double(v) + 7.25) / (14.5 / 4096)));
    h[size_t(std::clamp<int64_t>(k, 0, 4095))]++;
  }
  CHECK(h == one.hist());
}

TEST_CASE("TensorStats: EMA per batch vs per sample, avg of batch extremes (alpha 0.5)") {
  // Three batches of two samples of two values.
  const std::vector<std::vector<float>> batches = {{1, 4, -2, 3}, {0, 8, -1, 2}, {5, 6, 4, 10}};
  StatsOptions pb, ps;
  pb.ema_alpha = ps.ema_alpha = 0.5;
  ps.ema_per_sample = true;
  TensorStats b(pb), s(ps);
  for (const auto& v : batches) {
    observe(b, v, 2);
    observe(s, v, 2);
  }
  // Per batch: extremes (-2,4), (-1,8), (4,10): init (-2,4); (-1.5, 6); (1.25, 8).
  CHECK(b.ema_min() == -1.5 * 0.5 + 4 * 0.5);
  CHECK(b.ema_min() == 1.25);
  CHECK(b.ema_max() == 8);
  // Per sample: (1,4) (-2,3) (0,8) (-1,2) (5,6) (4,10):
  // min 1 -> -0.5 -> -0.25 -> -0.625 -> 2.1875 -> 3.09375
  // max 4 -> 3.5 -> 5.75 -> 3.875 -> 4.9375 -> 7.46875
  CHECK(s.ema_min() == 3.09375);
  CHECK(s.ema_max() == 7.46875);
  // avg: batch mins (-2, -1, 4), maxes (4, 8, 10).
  CHECK(b.batch_min_avg() == doctest::Approx(1.0 / 3));
  CHECK(b.batch_max_avg() == doctest::Approx(22.0 / 3));
  const QTarget t = target(8, QMode::AsymU);
  Range r = compute_range("ema", s, t);
  CHECK(r.lo == 3.09375);
  CHECK(r.hi == 7.46875);
  r = compute_range("avg", s, t);
  CHECK(r.lo == doctest::Approx(1.0 / 3));
  CHECK(r.hi == doctest::Approx(22.0 / 3));
  r = compute_range("minmax", s, t);
  CHECK(r.lo == -2);
  CHECK(r.hi == 10);
}

TEST_CASE("observers: n_std and percentile") {
  // 1000 zeros and 1000 twos: mean 1, std 1.
  std::vector<float> v(2000, 0.0f);
  for (size_t i = 1000; i < v.size(); ++i) v[i] = 2;
  TensorStats s;
  observe(s, v);
  const QTarget t = target(8, QMode::Sym);
  ObserverOptions o;
  o.n_std = 0.5;
  Range r = compute_range("n_std", s, t, o);
  CHECK(r.lo == doctest::Approx(0.5));
  CHECK(r.hi == doctest::Approx(1.5));
  o.n_std = 3;  // clamped to [min, max]
  r = compute_range("n_std", s, t, o);
  CHECK(r.lo == 0);
  CHECK(r.hi == 2);

  // 0..9999: the 99th percentile lies between 9899 and 9900; lo = min for non-negative data.
  std::vector<float> u(10000);
  for (size_t i = 0; i < u.size(); ++i) u[i] = float(i);
  TensorStats p;
  observe(p, u);
  const double w = 2 * 9999.0 / 4096;
  o.percentile = 99;
  r = compute_range("percentile", p, t, o);
  CHECK(r.lo == 0);
  CHECK(std::abs(r.hi - 9899.5) < w);
  // Two-sided: -5000..4999, 1 % and 99 % at about -4900 and 4899.
  for (auto& x : u) x -= 5000;
  TensorStats p2;
  observe(p2, u);
  r = compute_range("percentile", p2, t, o);
  CHECK(std::abs(r.lo - (-4900.0)) < 5000.0 / 2048);
  CHECK(std::abs(r.hi - 4899.5) < 5000.0 / 2048);
  o.percentile = 100;
  r = compute_range("percentile", p2, t, o);
  CHECK(r.lo == -5000);
  CHECK(r.hi == 4999);
  o.percentile = 30;
  CHECK_THROWS_WITH_AS(compute_range("percentile", p2, t, o), doctest::Contains("[50, 100]"),
                       Error);
}

TEST_CASE("observers: entropy and mse clip outliers, mse leaves uniform data unclipped") {
  // 10^6 N(0,1) values plus three outliers at 20 sigma (R = 20: the smallest entropy candidate,
  // 128 of 2048 |x| bins, is 1.25 sigma, so the lower bound is not forced).
  std::vector<float> g = gaussian(1000000, 3);
  g[0] = 20;
  g[1] = -20;
  g[2] = 20;
  TensorStats s;
  observe(s, g);
  for (QMode m : {QMode::Sym, QMode::AsymS, QMode::AsymU}) {
    CAPTURE(qmode_name(m));
    const QTarget t = target(8, m);
    Range e = compute_range("entropy", s, t);
    CHECK(e.hi > 2.5);
    CHECK(e.hi < 10);
    CHECK(e.lo < -2.5);
    CHECK(e.lo > -10);
    Range q = compute_range("mse", s, t);
    CHECK(q.hi > 2.5);
    CHECK(q.hi < 10);
    CHECK(q.lo < -2.5);
    CHECK(q.lo > -10);
  }
  // 4 bits: coarser grid, tighter clipping than 8 bits.
  CHECK(compute_range("mse", s, target(4, QMode::Sym)).hi <
        compute_range("mse", s, target(8, QMode::Sym)).hi);

  // Uniform: the optimum clips ~0.6 % at 8 bits (noise (T/127)^2/12 vs clipping), so T > 0.98.
  std::vector<float> u(100000);
  for (size_t i = 0; i < u.size(); ++i) u[i] = -1.0f + 2.0f * float(i) / float(u.size() - 1);
  TensorStats us;
  observe(us, u);
  for (QMode m : {QMode::Sym, QMode::AsymU}) {
    Range r = compute_range("mse", us, target(8, m));
    CHECK(r.hi > 0.98);
    CHECK(r.lo < -0.98);
  }
  // Non-negative uniform data with asym_u: hi near max, lo = min.
  for (auto& x : u) x = (x + 1) / 2;
  TensorStats pos;
  observe(pos, u);
  Range r = compute_range("mse", pos, target(8, QMode::AsymU));
  CHECK(r.lo == 0);
  CHECK(r.hi > 0.98);
  r = compute_range("entropy", pos, target(8, QMode::AsymU));
  CHECK(r.lo == 0);
  CHECK(r.hi > 0.9);  // 256 levels; nothing to gain from clipping uniform data
}

TEST_CASE("observers: exact zeros (ReLU) change neither entropy nor mse") {
  // relu(g) and the positive part of g alone have the same histogram except for the zeros.
  std::vector<float> g = gaussian(400000, 5), relu, pos;
  for (float x : g) {
    relu.push_back(std::max(x, 0.0f));
    if (x > 0) pos.push_back(x);
  }
  TensorStats a, b;
  observe(a, relu);
  observe(b, pos);
  CHECK(a.zeros() == int64_t(relu.size() - pos.size()));
  CHECK(a.hist_range() == b.hist_range());
  for (QTarget t : {target(8, QMode::Sym), target(8, QMode::AsymU), target(4, QMode::AsymU)})
    for (const char* name : {"entropy", "mse"}) {
      CAPTURE(name);
      const Range ra = compute_range(name, a, t), rb = compute_range(name, b, t);
      CHECK(ra.lo == 0);
      CHECK(ra.hi == rb.hi);
    }
  // Without the zero spike in P/Q, 8-bit KL keeps well beyond 3 sigma of a half-normal.
  CHECK(compute_range("entropy", a, target(8, QMode::Sym)).hi > 3.5);
}

namespace {

// Naive TensorRT KL search over a |x| histogram f (P and Q materialized, as in the TensorRT /
// MXNet description): returns the best bin count i.
int64_t naive_kl_bins(const std::vector<double>& f, int64_t levels) {
  const double eps = 1e-4;
  auto smooth = [&](std::vector<double> d) {
    double sum = 0, zeros = 0;
    for (double v : d) sum += v, zeros += v == 0;
    for (double& v : d) v = (v == 0 ? eps : v * (sum - eps * zeros) / sum) / sum;
    return d;
  };
  const int64_t nb = int64_t(f.size());
  double best = 1e300;
  int64_t best_i = nb;
  for (int64_t i = levels; i <= nb; ++i) {
    std::vector<double> p(f.begin(), f.begin() + i), q(size_t(i), 0.0);
    for (int64_t k = i; k < nb; ++k) p[size_t(i - 1)] += f[size_t(k)];
    const int64_t m = i / levels;
    for (int64_t j = 0; j < levels; ++j) {
      const int64_t b = j * m, e = j == levels - 1 ? i : b + m;
      double sum = 0, nz = 0;
      for (int64_t k = b; k < e; ++k) sum += f[size_t(k)], nz += p[size_t(k)] != 0;
      for (int64_t k = b; k < e; ++k)
        if (p[size_t(k)] != 0) q[size_t(k)] = sum / nz;
    }
    const std::vector<double> ps = smooth(p), qs = smooth(q);
    double kl = 0;
    for (int64_t k = 0; k < i; ++k) kl += ps[size_t(k)] * std::log(ps[size_t(k)] / qs[size_t(k)]);
    if (kl < best) best = kl, best_i = i;
  }
  return best_i;
}

}  // namespace

TEST_CASE("observers: entropy equals a naive KL search (bins = 128)") {
  std::mt19937 rng(21);
  std::normal_distribution<float> nd(0, 1);
  std::exponential_distribution<float> ed(1);
  for (int kind = 0; kind < 4; ++kind)
    for (int bits : {4, 5}) {
      CAPTURE(kind);
      CAPTURE(bits);
      std::vector<float> v(20000);
      for (auto& x : v) {
        const float g = nd(rng);
        x = kind == 0 ? g : kind == 1 ? g * std::fabs(nd(rng)) : kind == 2 ? ed(rng) : -ed(rng);
      }
      v[7] = kind == 3 ? -12.0f : 12.0f;  // one outlier
      StatsOptions o;
      o.bins = 128;
      TensorStats s(o);
      observe(s, v);
      std::vector<double> f(64);
      for (size_t j = 0; j < 64; ++j) f[j] = double(s.hist()[64 + j] + s.hist()[63 - j]);
      const QTarget t = target(bits, kind >= 2 ? QMode::AsymU : QMode::Sym);
      const int64_t levels = kind >= 2 ? int64_t(1) << bits : int64_t(1) << (bits - 1);
      const double T = double(naive_kl_bins(f, levels)) * s.hist_range() / 64;
      const Range r = compute_range("entropy", s, t);
      CHECK(T < 11);  // the outlier is clipped: a real choice was made
      const double Tc = std::max({T, s.min(), -s.max(), 0.0});  // non-empty range
      CHECK(r.lo == doctest::Approx(std::max(s.min(), -Tc)));
      CHECK(r.hi == doctest::Approx(std::min(s.max(), Tc)));
    }
}

TEST_CASE("observers: mse on N(0,1) matches the analytic optimum (sym, 4 bits)") {
  // Grid for threshold T: s = T/7, points -8s..7s. Expected error per value:
  //   tail(7s) + tail(8s) + s^2/12 * P(-8s < x < 7s),
  //   tail(a) = E[(x - a)^2; x > a] = (1 + a^2) Q(a) - a phi(a), Q = upper normal tail.
  auto Q = [](double a) { return 0.5 * std::erfc(a / std::sqrt(2.0)); };
  auto phi = [](double a) { return std::exp(-a * a / 2) / std::sqrt(2 * std::numbers::pi); };
  auto tail = [&](double a) { return (1 + a * a) * Q(a) - a * phi(a); };
  double best_T = 0, best = 1e300;
  for (double T = 1; T < 5; T += 1e-4) {
    const double s = T / 7, e = tail(7 * s) + tail(8 * s) + s * s / 12 * (1 - Q(7 * s) - Q(8 * s));
    if (e < best) best = e, best_T = T;
  }
  TensorStats st;
  observe(st, gaussian(1000000, 9));
  const Range r = compute_range("mse", st, target(4, QMode::Sym));
  CHECK(r.hi == doctest::Approx(best_T).epsilon(0.02));
  CHECK(r.lo == doctest::Approx(-best_T).epsilon(0.02));
}

TEST_CASE("TensorStats JSON round trip and errors") {
  StatsOptions o;
  o.bins = 64;
  o.ema_alpha = 0.3;
  o.ema_per_sample = true;
  TensorStats s(o);
  std::vector<float> g = gaussian(6000, 11);
  for (size_t b = 0; b < g.size(); b += 1500) s.observe(g.data() + b, 1500, 3);
  const std::string text = s.to_json().dump();
  const TensorStats r = TensorStats::from_json(nlohmann::json::parse(text));
  CHECK(r.options().bins == 64);
  CHECK(r.options().ema_alpha == 0.3);
  CHECK(r.options().ema_per_sample);
  CHECK(r.count() == s.count());
  CHECK(r.zeros() == s.zeros());
  CHECK(r.batches() == 4);
  CHECK(r.min() == s.min());
  CHECK(r.max() == s.max());
  CHECK(r.mean() == s.mean());
  CHECK(r.stddev() == s.stddev());
  CHECK(r.batch_min_avg() == s.batch_min_avg());
  CHECK(r.batch_max_avg() == s.batch_max_avg());
  CHECK(r.ema_min() == s.ema_min());
  CHECK(r.ema_max() == s.ema_max());
  CHECK(r.hist_range() == s.hist_range());
  CHECK(r.hist() == s.hist());
  CHECK(r.to_json() == s.to_json());
  // Streaming continues after a reload exactly as without it.
  TensorStats r2 = r;
  s.observe(g.data(), 300, 3);
  r2.observe(g.data(), 300, 3);
  CHECK(r2.to_json() == s.to_json());

  auto bad = [&](auto edit, const char* needle) {
    nlohmann::json j = s.to_json();
    edit(j);
    CHECK_THROWS_WITH_AS(TensorStats::from_json(j), doctest::Contains(needle), Error);
  };
  bad([](nlohmann::json& j) { j.erase("hist"); }, "missing field 'hist'");
  bad([](nlohmann::json& j) { j["count"] = "many"; }, "'count' must be an integer");
  bad([](nlohmann::json& j) { j["count"] = -1; }, "'count' must be >= 0");
  bad([](nlohmann::json& j) { j["min"] = nullptr; }, "'min' must be a number");
  bad([](nlohmann::json& j) { j["options"].erase("ema_alpha"); }, "'ema_alpha'");
  bad([](nlohmann::json& j) { j["options"]["bins"] = 10; }, "multiple of 4");
  bad([](nlohmann::json& j) { j["hist"].erase(0); }, "64 counts");
  bad([](nlohmann::json& j) { j["hist"][5] = j["hist"][5].get<int64_t>() + 1; }, "'count' is");
  bad([](nlohmann::json& j) { j["hist"][5] = -1; }, "entry 5");
  bad([](nlohmann::json& j) { j["zeros"] = j["count"]; }, "'zeros'");
  bad([](nlohmann::json& j) { j["ema_init"] = 1; }, "'ema_init' must be true or false");
  bad([](nlohmann::json& j) { j = nlohmann::json::array(); }, "JSON object");
}

TEST_CASE("observers: degenerate data gives finite ranges inside [min, max]") {
  CHECK(all_observers().size() == 7);
  std::vector<std::string> names;
  for (const auto& o : all_observers()) names.push_back(o.name);
  CHECK(names ==
        std::vector<std::string>{"minmax", "ema", "avg", "n_std", "percentile", "entropy", "mse"});
  const std::vector<std::vector<float>> cases = {
      {},  {0, 0, 0}, {5, 5, 5}, {-3, -3},           {1e-40f, 1e-40f},
      {7}, {-1, 0},   {0, 2},    {3e38f, -3e38f, 1}, {std::numeric_limits<float>::quiet_NaN()}};
  for (size_t c = 0; c < cases.size(); ++c)
    for (const auto& info : all_observers())
      for (QTarget t : {target(8, QMode::Sym), target(8, QMode::AsymU), target(4, QMode::AsymS),
                        target(2, QMode::Sym)}) {
        CAPTURE(c);
        CAPTURE(info.name);
        TensorStats s;
        if (!cases[c].empty()) observe(s, cases[c]);
        const Range r = info.fn(s, t, {});
        CHECK(std::isfinite(r.lo));
        CHECK(std::isfinite(r.hi));
        CHECK(r.lo <= r.hi);
        if (s.count() == 0 || (s.min() == 0 && s.max() == 0)) {
          CHECK(r.lo == 0);
          CHECK(r.hi == 0);
        } else {
          CHECK(r.lo >= s.min());
          CHECK(r.hi <= s.max());
        }
        if (c == 2) {  // constant 5: every observer returns [5, 5]
          CHECK(r.lo == 5);
          CHECK(r.hi == 5);
        }
        check_finite_qparams(choose_qparams(r, t), t);
      }
}

TEST_CASE("observers: unknown names and bad targets") {
  TensorStats s;
  observe(s, {1, 2});
  CHECK_THROWS_WITH_AS(find_observer("kl"),
                       doctest::Contains("minmax, ema, avg, n_std, percentile, entropy, mse"),
                       Error);
  CHECK_THROWS_WITH_AS(compute_range("max", s, target(8, QMode::Sym)),
                       doctest::Contains("unknown observer 'max'"), Error);
  CHECK_THROWS_WITH_AS(compute_range("minmax", s, target(9, QMode::Sym)), doctest::Contains("2..8"),
                       Error);
  ObserverOptions o;
  o.n_std = -1;
  CHECK_THROWS_AS(compute_range("n_std", s, target(8, QMode::Sym), o), Error);
  CHECK(!find_observer("entropy").description.empty());
}
