// How far a quantized tensor is from its FP32 reference, and what a layer's weights look like to
// a quantizer: the numbers behind `engine debug` (api/debug.cpp).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/tensor.h"

namespace engine::quant {

// Streaming error statistics between a reference x and a test y (same length), over any number
// of batches: MSE, SQNR = 10 log10(sum x^2 / sum (x - y)^2), cosine similarity, max |x - y|.
struct ErrorStats {
  static constexpr double kExactDb = 200;  // SQNR reported when y == x exactly
  int64_t count = 0;
  double sum_ref2 = 0, sum_test2 = 0, sum_err2 = 0, dot = 0, max_abs = 0;

  void add(const float* ref, const float* test, int64_t n);
  void merge(const ErrorStats& o);
  double mse() const { return count ? sum_err2 / double(count) : 0; }
  double sqnr_db() const;
  double cosine() const;  // 1 when both are all zero
  nlohmann::json to_json() const;
};

// Per output channel of a weight tensor: the largest |w| (channels along `axis`).
std::vector<float> channel_abs_max(const Tensor& w, int axis);
// Per channel of an NCHW-like activation (axis 1; [N] or [N,C] too): max and min over the
// batch and the spatial positions; combined across batches by the caller.
void channel_min_max(const Tensor& x, std::vector<float>& mn, std::vector<float>& mx);

// The quantizer's view of one layer's weights.
struct WeightReport {
  int64_t channels = 0;
  std::vector<float> channel_max;  // max |w| per output channel
  double spread = 1;               // largest channel max / median channel max
  int64_t zero_channels = 0;       // channels whose weights are all 0
  ErrorStats error;                // float weights vs the dequantized integers
  bool per_channel = true;
};

// w: float weights; q: the integers; scale / zp: per tensor (1 element) or per channel along
// `axis`. Throws if the shapes disagree.
WeightReport analyze_weights(const Tensor& w, const Tensor& q, const Tensor& scale,
                             const Tensor& zp, int axis);

// Float copy of an integer tensor: (q - zero_point) * scale, per tensor.
Tensor dequantize_per_tensor(const Tensor& q, float scale, int32_t zero_point);

}  // namespace engine::quant
