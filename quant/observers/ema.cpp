// ema: exponential moving average of the batch (or sample) extremes,
// ema = alpha * ema + (1 - alpha) * new, alpha = StatsOptions::ema_alpha.
#include "quant/observers/observers.h"

namespace engine::quant {

ObserverInfo ema_observer() {
  return {"ema",
          "moving average of batch min/max (StatsOptions ema_alpha; per batch or per sample)",
          [](const TensorStats& s, const QTarget&, const ObserverOptions&) {
            return Range{s.ema_min(), s.ema_max()};
          }};
}

}  // namespace engine::quant
