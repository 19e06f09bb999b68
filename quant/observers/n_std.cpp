// n_std: mean +- n * stddev, limited to the data's [min, max].
#include <algorithm>

#include "core/error.h"
#include "quant/observers/observers.h"

namespace engine::quant {

ObserverInfo n_std_observer() {
  return {"n_std", "mean +- n_std * stddev, within [min, max] (option n_std, default 3)",
          [](const TensorStats& s, const QTarget&, const ObserverOptions& o) {
            ENGINE_CHECK(o.n_std >= 0, "observer n_std: n_std must be >= 0, got ", o.n_std);
            const double m = s.mean(), d = o.n_std * s.stddev();
            return Range{std::max(s.min(), m - d), std::min(s.max(), m + d)};
          }};
}

}  // namespace engine::quant
