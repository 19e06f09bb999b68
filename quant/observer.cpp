// The observer list (explicit: static-initializer registration is dropped from static libraries)
// and the safety net every observer goes through.
#include "quant/observer.h"

#include <algorithm>
#include <cmath>
#include <sstream>

#include "core/error.h"
#include "quant/observers/observers.h"

namespace engine::quant {

namespace {

// Wraps an observer: empty or all-zero statistics give {0, 0}; the result is clamped into
// [min, max] and ordered; NaN falls back to [min, max].
ObserverInfo guarded(ObserverInfo info) {
  ObserverFn raw = std::move(info.fn);
  info.fn = [raw](const TensorStats& s, const QTarget& t, const ObserverOptions& o) -> Range {
    t.qmin();  // validates the bit width
    if (s.count() == 0 || (s.min() == 0 && s.max() == 0)) return {0, 0};
    Range r = raw(s, t, o);
    if (std::isnan(r.lo) || std::isnan(r.hi)) return {s.min(), s.max()};
    r.lo = std::clamp(r.lo, s.min(), s.max());
    r.hi = std::clamp(r.hi, s.min(), s.max());
    if (r.lo > r.hi) std::swap(r.lo, r.hi);
    return r;
  };
  return info;
}

}  // namespace

const std::vector<ObserverInfo>& all_observers() {
  static const std::vector<ObserverInfo> list = [] {
    std::vector<ObserverInfo> v = {minmax_observer(), ema_observer(),        avg_observer(),
                                   n_std_observer(),  percentile_observer(), entropy_observer(),
                                   mse_observer()};
    for (auto& o : v) o = guarded(std::move(o));
    return v;
  }();
  return list;
}

const ObserverInfo& find_observer(const std::string& name) {
  for (const auto& o : all_observers())
    if (o.name == name) return o;
  std::ostringstream known;
  for (const auto& o : all_observers()) known << (known.tellp() > 0 ? ", " : "") << o.name;
  fail("unknown observer '", name, "' (known: ", known.str(), ")");
}

Range compute_range(const std::string& name, const TensorStats& s, const QTarget& t,
                    const ObserverOptions& o) {
  return find_observer(name).fn(s, t, o);
}

}  // namespace engine::quant
