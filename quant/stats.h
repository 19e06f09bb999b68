// Streaming statistics of one float tensor over calibration batches. Memory is constant in the
// number of batches: running min/max/moments, averages of per-batch extremes, exponential moving
// averages of extremes, and a symmetric histogram whose range doubles (merging bin pairs) when
// a value falls outside it. Observers (observer.h) turn these statistics into a clipping range.
#pragma once

#include <cstdint>
#include <vector>

#include <nlohmann/json.hpp>

namespace engine::quant {

struct StatsOptions {
  double ema_alpha = 0.9;       // ema = alpha * ema + (1 - alpha) * new extreme
  bool ema_per_sample = false;  // update the EMA once per sample (leading dim) instead of per batch
  int bins = 4096;              // histogram bins over [-R, R] (a multiple of 4, >= 4)
};

class TensorStats {
 public:
  explicit TensorStats(StatsOptions opt = {});
  // One batch: n values, `samples` = leading-dim count (n divisible by samples). NaN and +-inf
  // values are ignored; a batch with no finite value does not count as a batch.
  void observe(const float* data, int64_t n, int64_t samples = 1);

  const StatsOptions& options() const { return opt_; }
  int64_t count() const { return count_; }
  int64_t zeros() const { return zeros_; }  // values exactly 0 (ReLU outputs): exact in any grid
  int64_t batches() const { return batches_; }
  double min() const { return min_; }
  double max() const { return max_; }
  double mean() const;
  double stddev() const;
  double batch_min_avg() const;  // mean over batches of each batch's min
  double batch_max_avg() const;
  double ema_min() const { return ema_min_; }
  double ema_max() const { return ema_max_; }
  // Histogram: bins()[i] counts values in [-R + i*w, -R + (i+1)*w), w = 2R / bins.size().
  double hist_range() const { return R_; }
  const std::vector<int64_t>& hist() const { return hist_; }

  // Per-channel sums of an NCHW-like tensor (channels on axis 1): `outer` x `channels` x
  // `inner` values. Kept only for the inputs of Conv / Gemm, for bias correction.
  void observe_channels(const float* data, int64_t outer, int64_t channels, int64_t inner);
  std::vector<double> channel_mean() const;  // empty unless observe_channels was called

  nlohmann::json to_json() const;
  static TensorStats from_json(const nlohmann::json& j);  // throws engine::Error on bad fields

 private:
  StatsOptions opt_;
  int64_t count_ = 0, batches_ = 0, zeros_ = 0;
  double min_ = 0, max_ = 0, sum_ = 0, sumsq_ = 0;
  double batch_min_sum_ = 0, batch_max_sum_ = 0;
  double ema_min_ = 0, ema_max_ = 0;
  bool ema_init_ = false;
  double R_ = 0;
  std::vector<int64_t> hist_;
  std::vector<double> channel_sum_;
  int64_t channel_count_ = 0;  // values per channel so far
};

}  // namespace engine::quant
