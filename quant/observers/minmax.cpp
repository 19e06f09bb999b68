// minmax: the exact extremes seen over all calibration batches.
#include "quant/observers/observers.h"

namespace engine::quant {

ObserverInfo minmax_observer() {
  return {"minmax", "[min, max] over all calibration data",
          [](const TensorStats& s, const QTarget&, const ObserverOptions&) {
            return Range{s.min(), s.max()};
          }};
}

}  // namespace engine::quant
