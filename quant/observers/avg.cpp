// avg: mean over batches of each batch's min and max.
#include "quant/observers/observers.h"

namespace engine::quant {

ObserverInfo avg_observer() {
  return {"avg", "average over batches of the batch min and batch max",
          [](const TensorStats& s, const QTarget&, const ObserverOptions&) {
            return Range{s.batch_min_avg(), s.batch_max_avg()};
          }};
}

}  // namespace engine::quant
