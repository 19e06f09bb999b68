#include "quant/compare.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "quant/fixedpoint.h"

namespace engine::quant {

void ErrorStats::add(const float* ref, const float* test, int64_t n) {
  double r2 = 0, t2 = 0, e2 = 0, d = 0, mx = max_abs;
  for (int64_t i = 0; i < n; ++i) {
    const double x = ref[i], y = test[i], e = x - y;
    r2 += x * x;
    t2 += y * y;
    e2 += e * e;
    d += x * y;
    mx = std::max(mx, std::abs(e));
  }
  count += n;
  sum_ref2 += r2;
  sum_test2 += t2;
  sum_err2 += e2;
  dot += d;
  max_abs = mx;
}

void ErrorStats::merge(const ErrorStats& o) {
  count += o.count;
  sum_ref2 += o.sum_ref2;
  sum_test2 += o.sum_test2;
  sum_err2 += o.sum_err2;
  dot += o.dot;
  max_abs = std::max(max_abs, o.max_abs);
}

double ErrorStats::sqnr_db() const {
  if (sum_err2 <= 0) return kExactDb;
  if (sum_ref2 <= 0) return -kExactDb;
  return std::clamp(10.0 * std::log10(sum_ref2 / sum_err2), -kExactDb, kExactDb);
}

double ErrorStats::cosine() const {
  if (sum_ref2 <= 0 && sum_test2 <= 0) return 1;
  if (sum_ref2 <= 0 || sum_test2 <= 0) return 0;
  return dot / std::sqrt(sum_ref2 * sum_test2);
}

nlohmann::json ErrorStats::to_json() const {
  return {{"mse", mse()},
          {"sqnr_db", sqnr_db()},
          {"cosine", cosine()},
          {"max_abs_error", max_abs},
          {"elements", count}};
}

namespace {

// (outer, channels, inner) of a tensor split at `axis`.
void split_at(const Dims& d, int axis, int64_t& outer, int64_t& ch, int64_t& inner) {
  ENGINE_CHECK(axis >= 0 && axis < int(d.size()), "channel axis ", axis, " is outside shape ",
               dims_str(d));
  outer = inner = 1;
  ch = d[size_t(axis)];
  for (int i = 0; i < axis; ++i) outer *= d[size_t(i)];
  for (size_t i = size_t(axis) + 1; i < d.size(); ++i) inner *= d[i];
}

}  // namespace

std::vector<float> channel_abs_max(const Tensor& w, int axis) {
  int64_t outer = 0, ch = 0, inner = 0;
  split_at(w.shape(), axis, outer, ch, inner);
  std::vector<float> m(static_cast<size_t>(ch), 0.0f);
  const float* p = w.data<float>();
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t c = 0; c < ch; ++c)
      for (int64_t i = 0; i < inner; ++i)
        m[size_t(c)] = std::max(m[size_t(c)], std::abs(p[(o * ch + c) * inner + i]));
  return m;
}

void channel_min_max(const Tensor& x, std::vector<float>& mn, std::vector<float>& mx) {
  if (x.rank() < 2 || x.dtype() != DType::F32) return;
  int64_t outer = 0, ch = 0, inner = 0;
  split_at(x.shape(), 1, outer, ch, inner);
  if (mn.empty()) {
    mn.assign(size_t(ch), INFINITY);
    mx.assign(size_t(ch), -INFINITY);
  }
  ENGINE_CHECK(int64_t(mn.size()) == ch, "channel count changed between batches: ", mn.size(),
               " then ", ch);
  const float* p = x.data<float>();
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t c = 0; c < ch; ++c) {
      float lo = mn[size_t(c)], hi = mx[size_t(c)];
      for (int64_t i = 0; i < inner; ++i) {
        const float v = p[(o * ch + c) * inner + i];
        lo = std::min(lo, v);
        hi = std::max(hi, v);
      }
      mn[size_t(c)] = lo;
      mx[size_t(c)] = hi;
    }
}

WeightReport analyze_weights(const Tensor& w, const Tensor& q, const Tensor& scale,
                             const Tensor& zp, int axis) {
  ENGINE_CHECK(w.shape() == q.shape(), "weights ", dims_str(w.shape()), " and their integers ",
               dims_str(q.shape()), " differ in shape");
  int64_t outer = 0, ch = 0, inner = 0;
  split_at(w.shape(), axis, outer, ch, inner);
  const bool per_channel = scale.numel() > 1;
  ENGINE_CHECK(!per_channel || scale.numel() == ch, "weight scales: ", scale.numel(),
               " values for ", ch, " channels");
  WeightReport r;
  r.channels = ch;
  r.per_channel = per_channel;
  r.channel_max = channel_abs_max(w, axis);
  std::vector<float> sorted = r.channel_max;
  std::sort(sorted.begin(), sorted.end());
  const double median = sorted[sorted.size() / 2], top = sorted.back();
  r.spread = top <= 0 ? 1 : median > 0 ? top / median : INFINITY;
  for (float m : r.channel_max) r.zero_channels += m == 0;
  const float* x = w.data<float>();
  std::vector<float> deq(static_cast<size_t>(inner));
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t c = 0; c < ch; ++c) {
      const int64_t k = per_channel ? c : 0;
      const double s = scale.get_as_double(k);
      const double z = double(zp.get_as_int(zp.numel() > 1 ? k : 0));
      const int64_t base = (o * ch + c) * inner;
      for (int64_t i = 0; i < inner; ++i)
        deq[size_t(i)] = float((double(q.get_as_int(base + i)) - z) * s);
      r.error.add(x + base, deq.data(), inner);
    }
  return r;
}

Tensor dequantize_per_tensor(const Tensor& q, float scale, int32_t zero_point) {
  Tensor f(DType::F32, q.shape());
  float* o = f.data<float>();
  const int64_t n = q.numel();
  if (q.dtype() == DType::U8) {  // the common cases without a per-element type switch
    const uint8_t* p = q.data<uint8_t>();
    for (int64_t i = 0; i < n; ++i) o[i] = dequantize_value(p[i], scale, zero_point);
  } else if (q.dtype() == DType::I8) {
    const int8_t* p = q.data<int8_t>();
    for (int64_t i = 0; i < n; ++i) o[i] = dequantize_value(p[i], scale, zero_point);
  } else {
    for (int64_t i = 0; i < n; ++i)
      o[i] = dequantize_value(int32_t(q.get_as_int(i)), scale, zero_point);
  }
  return f;
}

}  // namespace engine::quant
