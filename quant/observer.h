// Observers: named rules that turn a tensor's statistics into a clipping range. One small file
// per observer in quant/observers/, all listed in quant/observer.cpp.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "quant/qparams.h"
#include "quant/stats.h"

namespace engine::quant {

struct ObserverOptions {
  double percentile = 99.99;  // percentile: keep this % of values inside the range
  double n_std = 3.0;         // n_std: mean +- n_std * stddev
};

using ObserverFn = std::function<Range(const TensorStats&, const QTarget&, const ObserverOptions&)>;

struct ObserverInfo {
  std::string name;
  std::string description;  // one line, for --help and docs
  ObserverFn fn;
};

const std::vector<ObserverInfo>& all_observers();
// Throws engine::Error naming the known observers if `name` is unknown.
const ObserverInfo& find_observer(const std::string& name);
// The range chosen by observer `name`, always within [stats.min(), stats.max()] widened to
// include 0 for asymmetric targets is left to choose_qparams; never NaN.
Range compute_range(const std::string& name, const TensorStats& s, const QTarget& t,
                    const ObserverOptions& o = {});

}  // namespace engine::quant
