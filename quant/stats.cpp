// Streaming tensor statistics: two passes over each batch (moments/extremes, then histogram),
// both parallel and deterministic (fixed-size chunks combined in order; integer bin counts).
#include "quant/stats.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/error.h"

namespace engine::quant {

namespace {

constexpr int64_t kChunk = int64_t(1) << 16;  // elements per partial sum (fixed: determinism)

struct Partial {
  float mn = std::numeric_limits<float>::infinity();
  float mx = -std::numeric_limits<float>::infinity();
  double sum = 0, sumsq = 0;
  int64_t cnt = 0, zeros = 0;
};

void validate(const StatsOptions& o, const char* what) {
  ENGINE_CHECK(o.bins >= 4 && o.bins % 4 == 0, what,
               ": histogram bins must be a multiple of 4 (>= 4), got ", o.bins);
  ENGINE_CHECK(o.ema_alpha >= 0 && o.ema_alpha <= 1, what, ": ema_alpha must be in [0, 1], got ",
               o.ema_alpha);
}

}  // namespace

TensorStats::TensorStats(StatsOptions opt) : opt_(opt) {
  validate(opt_, "tensor stats options");
  hist_.assign(size_t(opt_.bins), 0);
}

double TensorStats::mean() const {
  return count_ ? sum_ / double(count_) : 0.0;
}

double TensorStats::stddev() const {
  if (!count_) return 0.0;
  const double m = mean();
  return std::sqrt(std::max(0.0, sumsq_ / double(count_) - m * m));
}

double TensorStats::batch_min_avg() const {
  return batches_ ? batch_min_sum_ / double(batches_) : 0;
}
double TensorStats::batch_max_avg() const {
  return batches_ ? batch_max_sum_ / double(batches_) : 0;
}

void TensorStats::observe(const float* data, int64_t n, int64_t samples) {
  ENGINE_CHECK(n >= 0, "observe: negative element count ", n);
  ENGINE_CHECK(samples >= 1 && n % samples == 0, "observe: ", n, " values cannot be split into ",
               samples, " samples");
  if (n == 0) return;
  ENGINE_CHECK(data != nullptr, "observe: null data pointer");

  // Pass 1: extremes and moments over chunks that never straddle a sample (per-sample EMA needs
  // each sample's extremes). NaN and +-inf are skipped.
  const int64_t segs = opt_.ema_per_sample ? samples : 1;
  const int64_t seg_len = n / segs;
  const int64_t cps = (seg_len + kChunk - 1) / kChunk;  // chunks per segment
  const int64_t nchunks = segs * cps;
  std::vector<Partial> parts(size_t(nchunks), Partial{});
#pragma omp parallel for schedule(static) if (n > kChunk)
  for (int64_t c = 0; c < nchunks; ++c) {
    const int64_t s = c / cps, k = c % cps;
    const int64_t b = s * seg_len + k * kChunk, e = std::min(b + kChunk, (s + 1) * seg_len);
    Partial p;
    for (int64_t i = b; i < e; ++i) {
      const float v = data[i];
      if (!std::isfinite(v)) continue;
      p.mn = std::min(p.mn, v);
      p.mx = std::max(p.mx, v);
      p.sum += v;
      p.sumsq += double(v) * double(v);
      ++p.cnt;
      p.zeros += v == 0;
    }
    parts[size_t(c)] = p;
  }
  Partial tot;
  for (const Partial& p : parts) {
    tot.mn = std::min(tot.mn, p.mn);
    tot.mx = std::max(tot.mx, p.mx);
    tot.sum += p.sum;
    tot.sumsq += p.sumsq;
    tot.cnt += p.cnt;
    tot.zeros += p.zeros;
  }
  if (tot.cnt == 0) return;  // nothing finite: the batch does not count

  min_ = count_ ? std::min(min_, double(tot.mn)) : tot.mn;
  max_ = count_ ? std::max(max_, double(tot.mx)) : tot.mx;
  count_ += tot.cnt;
  zeros_ += tot.zeros;
  sum_ += tot.sum;
  sumsq_ += tot.sumsq;
  ++batches_;
  batch_min_sum_ += tot.mn;
  batch_max_sum_ += tot.mx;

  // EMA of extremes: the first update initializes; then ema = alpha * ema + (1 - alpha) * new.
  auto ema_update = [&](double mn, double mx) {
    if (!ema_init_) {
      ema_min_ = mn;
      ema_max_ = mx;
      ema_init_ = true;
      return;
    }
    ema_min_ = opt_.ema_alpha * ema_min_ + (1 - opt_.ema_alpha) * mn;
    ema_max_ = opt_.ema_alpha * ema_max_ + (1 - opt_.ema_alpha) * mx;
  };
  if (!opt_.ema_per_sample) {
    ema_update(tot.mn, tot.mx);
  } else {
    for (int64_t s = 0; s < segs; ++s) {
      Partial seg;
      for (int64_t k = 0; k < cps; ++k) {
        const Partial& p = parts[size_t(s * cps + k)];
        seg.mn = std::min(seg.mn, p.mn);
        seg.mx = std::max(seg.mx, p.mx);
        seg.cnt += p.cnt;
      }
      if (seg.cnt) ema_update(seg.mn, seg.mx);
    }
  }

  // Pass 2: histogram over [-R, R]. R is fixed by the first non-zero batch and doubles (merging
  // bin pairs into the central half, exactly) whenever a value exceeds it.
  const double amax = std::max(std::fabs(double(tot.mn)), std::fabs(double(tot.mx)));
  const int64_t bins = int64_t(hist_.size()), half = bins / 2;
  if (amax > R_) {
    if (R_ == 0) {
      R_ = amax;  // earlier values were all 0: they sit in bin `half` for any R
    } else {
      while (amax > R_) {
        std::vector<int64_t> h2(hist_.size(), 0);
        for (int64_t k = 0; k < bins; ++k) h2[size_t(bins / 4 + k / 2)] += hist_[size_t(k)];
        hist_.swap(h2);
        R_ *= 2;
      }
    }
  }
  if (R_ == 0) {  // every finite value is 0
    hist_[size_t(half)] += tot.cnt;
    return;
  }
  const double inv = double(half) / R_;  // bin k = floor((x + R) / w), w = R / half
  auto bin_of = [&](float v) {
    const double t = double(v) * inv + double(half);
    return std::clamp(int64_t(t), int64_t(0), bins - 1);  // x == R -> last bin
  };
  if (n <= kChunk) {
    for (int64_t i = 0; i < n; ++i)
      if (std::isfinite(data[i])) ++hist_[size_t(bin_of(data[i]))];
    return;
  }
#pragma omp parallel
  {
    std::vector<int64_t> local(hist_.size(), 0);
#pragma omp for schedule(static)
    for (int64_t i = 0; i < n; ++i)
      if (std::isfinite(data[i])) ++local[size_t(bin_of(data[i]))];
#pragma omp critical(engine_quant_hist_merge)
    for (int64_t k = 0; k < bins; ++k) hist_[size_t(k)] += local[size_t(k)];
  }
}

void TensorStats::observe_channels(const float* data, int64_t outer, int64_t channels,
                                   int64_t inner) {
  ENGINE_CHECK(channels > 0 && outer >= 0 && inner >= 0, "observe_channels: bad shape");
  if (channel_sum_.empty()) channel_sum_.assign(size_t(channels), 0.0);
  ENGINE_CHECK(int64_t(channel_sum_.size()) == channels, "observe_channels: ", channels,
               " channels, earlier batches had ", channel_sum_.size());
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t c = 0; c < channels; ++c) {
      const float* p = data + (o * channels + c) * inner;
      double s = 0;
      for (int64_t i = 0; i < inner; ++i) s += std::isfinite(p[i]) ? p[i] : 0.0f;
      channel_sum_[size_t(c)] += s;
    }
  channel_count_ += outer * inner;
}

std::vector<double> TensorStats::channel_mean() const {
  std::vector<double> m = channel_sum_;
  for (double& v : m) v = channel_count_ ? v / double(channel_count_) : 0.0;
  return m;
}

// ---- JSON ----

nlohmann::json TensorStats::to_json() const {
  nlohmann::json j;
  j["options"] = {
      {"ema_alpha", opt_.ema_alpha}, {"ema_per_sample", opt_.ema_per_sample}, {"bins", opt_.bins}};
  j["count"] = count_;
  j["zeros"] = zeros_;
  j["batches"] = batches_;
  j["min"] = min_;
  j["max"] = max_;
  j["sum"] = sum_;
  j["sumsq"] = sumsq_;
  j["batch_min_sum"] = batch_min_sum_;
  j["batch_max_sum"] = batch_max_sum_;
  j["ema_init"] = ema_init_;
  j["ema_min"] = ema_min_;
  j["ema_max"] = ema_max_;
  j["hist_range"] = R_;
  j["hist"] = hist_;
  if (!channel_sum_.empty()) {
    j["channel_sum"] = channel_sum_;
    j["channel_count"] = channel_count_;
  }
  return j;
}

namespace {

const nlohmann::json& field(const nlohmann::json& j, const char* key) {
  ENGINE_CHECK(j.is_object(), "tensor stats: expected a JSON object, got ", j.type_name());
  auto it = j.find(key);
  ENGINE_CHECK(it != j.end(), "tensor stats: missing field '", key, "'");
  return *it;
}

double get_double(const nlohmann::json& j, const char* key) {
  const auto& v = field(j, key);
  ENGINE_CHECK(v.is_number(), "tensor stats: field '", key, "' must be a number, got ",
               v.type_name());
  const double d = v.get<double>();
  ENGINE_CHECK(std::isfinite(d), "tensor stats: field '", key, "' must be finite");
  return d;
}

int64_t get_int(const nlohmann::json& j, const char* key) {
  const auto& v = field(j, key);
  ENGINE_CHECK(v.is_number_integer(), "tensor stats: field '", key, "' must be an integer, got ",
               v.type_name());
  const int64_t i = v.get<int64_t>();
  ENGINE_CHECK(i >= 0, "tensor stats: field '", key, "' must be >= 0, got ", i);
  return i;
}

bool get_bool(const nlohmann::json& j, const char* key) {
  const auto& v = field(j, key);
  ENGINE_CHECK(v.is_boolean(), "tensor stats: field '", key, "' must be true or false, got ",
               v.type_name());
  return v.get<bool>();
}

}  // namespace

TensorStats TensorStats::from_json(const nlohmann::json& j) {
  const auto& o = field(j, "options");
  StatsOptions opt;
  opt.ema_alpha = get_double(o, "ema_alpha");
  opt.ema_per_sample = get_bool(o, "ema_per_sample");
  const int64_t bins = get_int(o, "bins");
  ENGINE_CHECK(bins <= (int64_t(1) << 24), "tensor stats: field 'bins' too large: ", bins);
  opt.bins = int(bins);
  validate(opt, "tensor stats");
  TensorStats s(opt);
  s.count_ = get_int(j, "count");
  s.zeros_ = get_int(j, "zeros");
  s.batches_ = get_int(j, "batches");
  s.min_ = get_double(j, "min");
  s.max_ = get_double(j, "max");
  s.sum_ = get_double(j, "sum");
  s.sumsq_ = get_double(j, "sumsq");
  s.batch_min_sum_ = get_double(j, "batch_min_sum");
  s.batch_max_sum_ = get_double(j, "batch_max_sum");
  s.ema_init_ = get_bool(j, "ema_init");
  s.ema_min_ = get_double(j, "ema_min");
  s.ema_max_ = get_double(j, "ema_max");
  s.R_ = get_double(j, "hist_range");
  ENGINE_CHECK(s.R_ >= 0, "tensor stats: field 'hist_range' must be >= 0, got ", s.R_);
  ENGINE_CHECK(s.min_ <= s.max_, "tensor stats: field 'min' (", s.min_, ") exceeds 'max' (", s.max_,
               ")");
  ENGINE_CHECK(s.batches_ <= s.count_, "tensor stats: field 'batches' (", s.batches_,
               ") exceeds 'count' (", s.count_, ")");
  const auto& h = field(j, "hist");
  ENGINE_CHECK(h.is_array() && int64_t(h.size()) == bins,
               "tensor stats: field 'hist' must be an array of ", bins, " counts (options.bins)");
  int64_t total = 0;
  for (size_t k = 0; k < h.size(); ++k) {
    ENGINE_CHECK(h[k].is_number_integer() && h[k].get<int64_t>() >= 0,
                 "tensor stats: field 'hist' entry ", k, " must be a non-negative integer");
    s.hist_[k] = h[k].get<int64_t>();
    total += s.hist_[k];
  }
  ENGINE_CHECK(s.zeros_ <= s.hist_[size_t(bins / 2)], "tensor stats: field 'zeros' (", s.zeros_,
               ") exceeds the centre bin of 'hist' (", s.hist_[size_t(bins / 2)], ")");
  ENGINE_CHECK(total == s.count_, "tensor stats: field 'hist' holds ", total,
               " values but 'count' is ", s.count_);
  if (j.contains("channel_sum")) {
    const auto& c = field(j, "channel_sum");
    ENGINE_CHECK(c.is_array() && !c.empty() && c.size() <= (size_t(1) << 24),
                 "tensor stats: field 'channel_sum' must be a non-empty array");
    for (size_t k = 0; k < c.size(); ++k) {
      ENGINE_CHECK(c[k].is_number() && std::isfinite(c[k].get<double>()),
                   "tensor stats: field 'channel_sum' entry ", k, " must be a finite number");
      s.channel_sum_.push_back(c[k].get<double>());
    }
    s.channel_count_ = get_int(j, "channel_count");
  }
  return s;
}

}  // namespace engine::quant
