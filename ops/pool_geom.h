// Geometry of windowed pools (MaxPool, AveragePool, LpPool and their quantized variants), shared
// by ops/pool.cpp and ops/qpool.cpp. One generic N-d geometry over up to kMaxPoolSpatial spatial
// dims.
//
// Conventions (ONNX spec, which follows PyTorch):
//  - explicit pads: out = floor((in + pb + pe - ek) / s) + 1, ek = (k - 1) * d + 1;
//    with ceil_mode the division rounds up, but a last window that would start inside the right
//    padding (start >= in + pb in padded coordinates) is dropped;
//  - auto_pad SAME_UPPER / SAME_LOWER: out = ceil(in / s), total pad = (out - 1) * s + ek - in,
//    the odd extra cell going at the end (UPPER) or the beginning (LOWER); VALID: no padding;
//  - Window::padded counts the window taps inside the padded extent [-pb, in + pe) (taps beyond
//    the right pad that only exist because of ceil_mode are not counted, as in PyTorch): the
//    divisor of AveragePool with count_include_pad=1; Window::valid counts the taps inside the
//    input (count_include_pad=0).
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "core/graph.h"

namespace engine::pool {

constexpr int kMaxPoolSpatial = 6;
constexpr int64_t kMaxParam = int64_t(1) << 31;  // bound for kernel/stride/dilation/pad values

inline int64_t floor_div(int64_t a, int64_t b) {  // b > 0
  int64_t q = a / b;
  if ((a % b != 0) && (a < 0)) --q;
  return q;
}
inline int64_t ceil_div(int64_t a, int64_t b) {  // b > 0
  return -floor_div(-a, b);
}

enum class PoolKind { Max, Avg, Lp };

struct PoolGeom {
  int nd = 0;
  Dims in, out, kernel, stride, dil, pad_begin, pad_end;
  int64_t in_size = 1, out_size = 1;  // spatial element counts
  int64_t planes = 1;                 // N * C
};

inline std::vector<int64_t> ints_attr(const Node& node, const char* name, size_t n, int64_t def,
                                      int64_t lo) {
  std::vector<int64_t> v = node.attrs.get_ints(name, std::vector<int64_t>(n, def));
  ENGINE_CHECK(v.size() == n, "attribute '", name, "' has ", v.size(), " values, expected ", n,
               " (", name == std::string("pads") ? "2 * " : "", "number of spatial dims)");
  for (int64_t x : v)
    ENGINE_CHECK(x >= lo && x < kMaxParam, "attribute '", name, "' value ", x,
                 " is out of range (expected ", lo, " <= value < 2^31)");
  return v;
}

inline void check_pool_input(const Dims& x, const std::string& op) {
  ENGINE_CHECK(x.size() >= 3, op, ": input X must have rank >= 3 (N, C, spatial...), got shape ",
               dims_str(x));
  ENGINE_CHECK(int(x.size()) - 2 <= kMaxPoolSpatial, op, ": at most ", kMaxPoolSpatial,
               " spatial dims are supported, got shape ", dims_str(x));
  for (size_t i = 2; i < x.size(); ++i)
    ENGINE_CHECK(x[i] >= 1, op, ": spatial dims of X must be >= 1, got shape ", dims_str(x));
}

// Attribute checks that do not need shapes (validate).
inline void validate_pool_attrs(const Node& node, PoolKind kind) {
  const Attributes& a = node.attrs;
  const std::string ap = a.get_string("auto_pad", "NOTSET");
  ENGINE_CHECK(ap == "NOTSET" || ap == "SAME_UPPER" || ap == "SAME_LOWER" || ap == "VALID",
               "attribute auto_pad='", ap,
               "' is not supported (expected NOTSET, SAME_UPPER, SAME_LOWER or VALID)");
  ENGINE_CHECK(a.has("kernel_shape"), "required attribute 'kernel_shape' is missing");
  const int64_t ceil_mode = a.get_int("ceil_mode", 0);
  ENGINE_CHECK(ceil_mode == 0 || ceil_mode == 1, "attribute ceil_mode=", ceil_mode,
               " must be 0 or 1");
  if (kind == PoolKind::Max) {
    const int64_t so = a.get_int("storage_order", 0);
    ENGINE_CHECK(so == 0 || so == 1, "attribute storage_order=", so, " must be 0 or 1");
  }
  if (kind == PoolKind::Avg) {
    const int64_t cip = a.get_int("count_include_pad", 0);
    ENGINE_CHECK(cip == 0 || cip == 1, "attribute count_include_pad=", cip, " must be 0 or 1");
  }
  if (kind == PoolKind::Lp) {
    const int64_t p = a.get_int("p", 2);
    ENGINE_CHECK(p >= 1, "attribute p=", p, " must be >= 1");
  }
}

inline PoolGeom pool_geometry(const Node& node, const Dims& x) {
  check_pool_input(x, node.op_type);
  PoolGeom g;
  g.nd = int(x.size()) - 2;
  const size_t nd = size_t(g.nd);
  g.in.assign(x.begin() + 2, x.end());
  g.planes = x[0] * x[1];
  const std::vector<int64_t> k = node.attrs.get_ints("kernel_shape");
  ENGINE_CHECK(k.size() == nd, "attribute 'kernel_shape' has ", k.size(), " values but X has ", nd,
               " spatial dims (shape ", dims_str(x), ")");
  for (int64_t v : k)
    ENGINE_CHECK(v >= 1 && v < kMaxParam, "attribute 'kernel_shape' value ", v,
                 " is out of range (expected 1 <= value < 2^31)");
  g.kernel = k;
  g.stride = ints_attr(node, "strides", nd, 1, 1);
  g.dil = ints_attr(node, "dilations", nd, 1, 1);
  const std::string ap = node.attrs.get_string("auto_pad", "NOTSET");
  const bool ceil_mode = node.attrs.get_int("ceil_mode", 0) != 0;
  g.out.resize(nd);
  g.pad_begin.assign(nd, 0);
  g.pad_end.assign(nd, 0);
  std::vector<int64_t> pads;
  if (ap == "NOTSET") pads = ints_attr(node, "pads", 2 * nd, 0, 0);
  for (size_t i = 0; i < nd; ++i) {
    const int64_t in = g.in[i], s = g.stride[i];
    const int64_t ek = (g.kernel[i] - 1) * g.dil[i] + 1;
    int64_t out = 0;
    if (ap == "NOTSET") {
      const int64_t pb = pads[i], pe = pads[i + nd];
      const int64_t num = in + pb + pe - ek;
      if (ceil_mode) {
        out = ceil_div(num, s) + 1;
        // A window that would start inside the right padding is dropped.
        if (out >= 1 && (out - 1) * s >= in + pb) --out;
      } else {
        out = floor_div(num, s) + 1;
      }
      g.pad_begin[i] = pb;
      g.pad_end[i] = pe;
    } else if (ap == "VALID") {
      out = floor_div(in - ek, s) + 1;
    } else {  // SAME_UPPER / SAME_LOWER
      out = ceil_div(in, s);
      const int64_t total = std::max<int64_t>(0, (out - 1) * s + ek - in);
      const int64_t small = total / 2, big = total - total / 2;
      g.pad_begin[i] = ap == "SAME_UPPER" ? small : big;
      g.pad_end[i] = ap == "SAME_UPPER" ? big : small;
    }
    ENGINE_CHECK(out >= 1, "spatial dim ", i, " of X (size ", in, ") is too small for the window (",
                 "kernel ", g.kernel[i], ", dilation ", g.dil[i], ", pads ", g.pad_begin[i], "+",
                 g.pad_end[i], "): the output size would be ", out);
    g.out[i] = out;
  }
  g.in_size = checked_numel(g.in);
  g.out_size = checked_numel(g.out);
  return g;
}

inline Dims pool_out_shape(const Dims& x, const PoolGeom& g) {
  Dims s = {x[0], x[1]};
  s.insert(s.end(), g.out.begin(), g.out.end());
  return s;
}

// Window of one output position along one axis: first input coordinate, valid tap range
// [lo, hi) (taps inside the input) and number of taps inside the padded extent.
struct AxisWin {
  int64_t start = 0, lo = 0, hi = 0, padded = 0;
};
using WinTables = std::vector<std::vector<AxisWin>>;

inline WinTables window_tables(const PoolGeom& g) {
  WinTables t(static_cast<size_t>(g.nd));
  for (size_t i = 0; i < size_t(g.nd); ++i) {
    const int64_t s = g.stride[i], d = g.dil[i], k = g.kernel[i], in = g.in[i];
    t[i].resize(size_t(g.out[i]));
    for (int64_t o = 0; o < g.out[i]; ++o) {
      AxisWin& w = t[i][size_t(o)];
      w.start = o * s - g.pad_begin[i];
      w.lo = w.start >= 0 ? 0 : ceil_div(-w.start, d);
      w.hi = std::max(w.lo, std::min(k, floor_div(in - w.start - 1, d) + 1));
      w.padded =
          std::max<int64_t>(0, std::min(k, floor_div(in + g.pad_end[i] - w.start - 1, d) + 1));
    }
  }
  return t;
}

// The window of output position r (flat spatial index).
struct Window {
  std::array<int64_t, kMaxPoolSpatial> start{}, jlo{}, jhi{};
  int64_t valid = 1, padded = 1;
};

inline Window make_window(const PoolGeom& g, const WinTables& t, int64_t r) {
  Window w;
  for (int i = g.nd - 1; i >= 0; --i) {
    const int64_t o = r % g.out[size_t(i)];
    r /= g.out[size_t(i)];
    const AxisWin& a = t[size_t(i)][size_t(o)];
    w.start[size_t(i)] = a.start;
    w.jlo[size_t(i)] = a.lo;
    w.jhi[size_t(i)] = a.hi;
    w.valid *= a.hi - a.lo;
    w.padded *= a.padded;
  }
  return w;
}

// Calls f(row_major_offset, coords) for every tap of the window inside the input.
template <class F>
void for_each_tap(const PoolGeom& g, const Window& w, F&& f) {
  if (w.valid == 0) return;
  const size_t last = size_t(g.nd - 1);
  std::array<int64_t, kMaxPoolSpatial> j = w.jlo, c{};
  const int64_t dl = g.dil[last], sl = w.start[last];
  while (true) {
    int64_t base = 0;
    for (size_t i = 0; i < last; ++i) {
      c[i] = w.start[i] + j[i] * g.dil[i];
      base = (base + c[i]) * g.in[i + 1];
    }
    for (int64_t jj = w.jlo[last]; jj < w.jhi[last]; ++jj) {
      c[last] = sl + jj * dl;
      f(base + c[last], c);
    }
    int i = int(last) - 1;
    for (; i >= 0; --i) {
      if (++j[size_t(i)] < w.jhi[size_t(i)]) break;
      j[size_t(i)] = w.jlo[size_t(i)];
    }
    if (i < 0) break;
  }
}

}  // namespace engine::pool
