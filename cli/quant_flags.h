// Quantization flags shared by run / eval / quantize / bench, and the one function that turns a
// loaded FP32 model into an INT8 one from them (calibration source, observers, config files).
#pragma once

#include <CLI/CLI.hpp>

#include <string>
#include <vector>

#include "engine/engine.h"

namespace engine::cli {

struct PreprocessFlags;

struct QuantFlags {
  // Calibration data.
  std::string calib;
  int64_t calib_size = 0;
  double calib_fraction = 0;
  int64_t calib_noise = 0;
  int64_t calib_batch = 32;
  uint64_t calib_seed = 0;
  // Observers and targets.
  std::string observer = "minmax", weight_observer = "minmax";
  double alpha = 0.9;
  std::string ema_per = "batch";
  double percentile = 99.99, n_std = 3.0;
  bool per_tensor = false;
  int bits_w = 8, bits_a = 8;
  std::string mode_w = "sym", mode_a = "asym_u";
  bool reduce_range = false;
  std::string requant = "fixed";
  int scale_bits = 31;
  // Files and partial quantization.
  std::string stats_out, stats_in, config;
  std::vector<std::string> exclude;
  bool keep_first_last = false;
  std::string quantize_from;
  bool report = false;
  bool equalize = false, bias_correct = false;

  void add(CLI::App* cmd);
  quant::QuantConfig config_from_flags() const;
};

// Quantizes `fp32` per the flags (the caller checked that INT8 was asked for). Prints a summary
// to stderr (unless quiet) and writes --stats-out.
Model quantize_with_flags(const Model& fp32, const QuantFlags& q, const PreprocessFlags& pre,
                          bool quiet = false, QuantizeReport* report = nullptr);

}  // namespace engine::cli
