// Internal to quant/: the observer constructors (one file each, listed in quant/observer.cpp)
// and histogram helpers they share.
#pragma once

#include <vector>

#include "quant/observer.h"

namespace engine::quant {

ObserverInfo minmax_observer();
ObserverInfo ema_observer();
ObserverInfo avg_observer();
ObserverInfo n_std_observer();
ObserverInfo percentile_observer();
ObserverInfo entropy_observer();
ObserverInfo mse_observer();

namespace obs {

// Width of one histogram bin (2R / bins); 0 while R is 0.
double bin_width(const TensorStats& s);
// Histogram of |x|: bins/2 bins over [0, R] of width bin_width(s) (bin j: |x| in [j w, (j+1) w]).
// drop_zeros: leave out the values that are exactly 0 (counted in bin 0).
std::vector<int64_t> folded_hist(const TensorStats& s, bool drop_zeros);
// Value below which a fraction q (0..1) of the values lie, interpolated linearly inside the bin.
double hist_quantile(const TensorStats& s, double q);
// Smallest symmetric threshold T for which [max(min,-T), min(max,T)] is non-empty (>= 0).
double min_threshold(const TensorStats& s);
// [max(min, -T), min(max, T)] with T raised to min_threshold(s).
Range symmetric_clip(const TensorStats& s, double T);
// True if the data has a single sign (all >= 0 or all <= 0).
bool one_sided(const TensorStats& s);

}  // namespace obs
}  // namespace engine::quant
