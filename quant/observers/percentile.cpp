// percentile: two-sided quantiles of the histogram. hi = value below which p % of the values lie,
// lo = value below which (100 - p) % lie; a single-signed tensor keeps its exact extreme on the
// side of zero (non-negative data: lo = min).
#include <algorithm>

#include "core/error.h"
#include "quant/observers/observers.h"

namespace engine::quant {

ObserverInfo percentile_observer() {
  return {"percentile",
          "histogram quantiles: lo at (100-p)%, hi at p% (option percentile, default 99.99)",
          [](const TensorStats& s, const QTarget&, const ObserverOptions& o) {
            ENGINE_CHECK(o.percentile >= 50 && o.percentile <= 100,
                         "observer percentile: percentile must be in [50, 100], got ",
                         o.percentile);
            const double p = o.percentile / 100;
            double lo = obs::hist_quantile(s, 1 - p), hi = obs::hist_quantile(s, p);
            if (p >= 1) lo = s.min(), hi = s.max();
            if (s.min() >= 0) lo = s.min();
            if (s.max() <= 0) hi = s.max();
            lo = std::clamp(lo, s.min(), s.max());
            hi = std::clamp(hi, lo, s.max());
            return Range{lo, hi};
          }};
}

}  // namespace engine::quant
