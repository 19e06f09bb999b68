// Pooling: MaxPool (optional Indices output), AveragePool, LpPool and their Global variants.
//
// All windowed pools share one geometry (kernel_shape, strides, dilations, pads / auto_pad,
// ceil_mode) and one generic N-d kernel over up to kMaxSpatial spatial dims (1-D, 2-D, 3-D ...).
//
// Conventions (ONNX spec, which follows PyTorch):
//  - explicit pads: out = floor((in + pb + pe - ek) / s) + 1, ek = (k - 1) * d + 1;
//    with ceil_mode the division rounds up, but a last window that would start inside the right
//    padding (start >= in + pb in padded coordinates) is dropped;
//  - auto_pad SAME_UPPER / SAME_LOWER: out = ceil(in / s), total pad = (out - 1) * s + ek - in,
//    the odd extra cell going at the end (UPPER) or the beginning (LOWER); VALID: no padding;
//  - AveragePool count_include_pad=1 divides by the number of window taps inside the padded
//    extent [-pb, in + pe) (taps beyond the right pad that only exist because of ceil_mode are
//    not counted, as in PyTorch); count_include_pad=0 divides by the taps inside the input;
//  - MaxPool Indices: flat index into X (N, C and spatial), spatial part row-major for
//    storage_order=0, column-major for storage_order=1.
#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "ops/ops.h"

namespace engine {
namespace {

constexpr int kMaxSpatial = 6;
constexpr int64_t kMaxParam = int64_t(1) << 31;  // bound for kernel/stride/dilation/pad values

int64_t floor_div(int64_t a, int64_t b) {  // b > 0
  int64_t q = a / b;
  if ((a % b != 0) && (a < 0)) --q;
  return q;
}
int64_t ceil_div(int64_t a, int64_t b) {
  return -floor_div(-a, b);
}  // b > 0

enum class PoolKind { Max, Avg, Lp };

struct PoolGeom {
  int nd = 0;
  Dims in, out, kernel, stride, dil, pad_begin, pad_end;
  int64_t in_size = 1, out_size = 1;  // spatial element counts
  int64_t planes = 1;                 // N * C
};

std::vector<int64_t> ints_attr(const Node& node, const char* name, size_t n, int64_t def,
                               int64_t lo) {
  std::vector<int64_t> v = node.attrs.get_ints(name, std::vector<int64_t>(n, def));
  ENGINE_CHECK(v.size() == n, "attribute '", name, "' has ", v.size(), " values, expected ", n,
               " (", name == std::string("pads") ? "2 * " : "", "number of spatial dims)");
  for (int64_t x : v)
    ENGINE_CHECK(x >= lo && x < kMaxParam, "attribute '", name, "' value ", x,
                 " is out of range (expected ", lo, " <= value < 2^31)");
  return v;
}

void check_pool_input(const Dims& x, const std::string& op) {
  ENGINE_CHECK(x.size() >= 3, op, ": input X must have rank >= 3 (N, C, spatial...), got shape ",
               dims_str(x));
  ENGINE_CHECK(int(x.size()) - 2 <= kMaxSpatial, op, ": at most ", kMaxSpatial,
               " spatial dims are supported, got shape ", dims_str(x));
  for (size_t i = 2; i < x.size(); ++i)
    ENGINE_CHECK(x[i] >= 1, op, ": spatial dims of X must be >= 1, got shape ", dims_str(x));
}

// Attribute checks that do not need shapes (validate).
void validate_pool_attrs(const Node& node, PoolKind kind) {
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

PoolGeom pool_geometry(const Node& node, const Dims& x) {
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

Dims pool_out_shape(const Dims& x, const PoolGeom& g) {
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

WinTables window_tables(const PoolGeom& g) {
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
  std::array<int64_t, kMaxSpatial> start{}, jlo{}, jhi{};
  int64_t valid = 1, padded = 1;
};

Window make_window(const PoolGeom& g, const WinTables& t, int64_t r) {
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
  std::array<int64_t, kMaxSpatial> j = w.jlo, c{};
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

template <class T>
T lowest_value() {
  if constexpr (std::numeric_limits<T>::has_infinity) return -std::numeric_limits<T>::infinity();
  return std::numeric_limits<T>::lowest();
}

template <class T>
void maxpool_kernel(const PoolGeom& g, const T* x, T* y, int64_t* idx, int storage_order) {
  const int64_t total = g.planes * g.out_size;
  const WinTables tables = window_tables(g);
  // Column-major spatial strides for storage_order=1.
  std::array<int64_t, kMaxSpatial> cm{};
  int64_t acc = 1;
  for (int i = 0; i < g.nd; ++i) {
    cm[size_t(i)] = acc;
    acc *= g.in[size_t(i)];
  }
#pragma omp parallel for schedule(static)
  for (int64_t t = 0; t < total; ++t) {
    const int64_t plane = t / g.out_size;
    const Window w = make_window(g, tables, t % g.out_size);
    const T* xp = x + plane * g.in_size;
    T best = lowest_value<T>();
    int64_t best_off = -1;
    std::array<int64_t, kMaxSpatial> best_c{};
    for_each_tap(g, w, [&](int64_t off, const std::array<int64_t, kMaxSpatial>& c) {
      if (best_off < 0 || xp[off] > best) {
        best = xp[off];
        best_off = off;
        best_c = c;
      }
    });
    y[t] = best;
    if (idx) {
      if (best_off < 0) {
        idx[t] = -1;
      } else if (storage_order == 0) {
        idx[t] = plane * g.in_size + best_off;
      } else {
        int64_t o = 0;
        for (int i = 0; i < g.nd; ++i) o += best_c[size_t(i)] * cm[size_t(i)];
        idx[t] = plane * g.in_size + o;
      }
    }
  }
}

template <class T>
void avgpool_kernel(const PoolGeom& g, const T* x, T* y, bool count_include_pad) {
  const int64_t total = g.planes * g.out_size;
  const WinTables tables = window_tables(g);
#pragma omp parallel for schedule(static)
  for (int64_t t = 0; t < total; ++t) {
    const int64_t plane = t / g.out_size;
    const Window w = make_window(g, tables, t % g.out_size);
    const T* xp = x + plane * g.in_size;
    double sum = 0;
    for_each_tap(g, w, [&](int64_t off, const auto&) { sum += double(xp[off]); });
    const int64_t n = count_include_pad ? w.padded : w.valid;
    y[t] = n > 0 ? T(sum / double(n)) : std::numeric_limits<T>::quiet_NaN();
  }
}

double lp_term(double v, int64_t p) {
  const double a = std::abs(v);
  if (p == 1) return a;
  if (p == 2) return a * a;
  return std::pow(a, double(p));
}
double lp_root(double s, int64_t p) {
  if (p == 1) return s;
  if (p == 2) return std::sqrt(s);
  return std::pow(s, 1.0 / double(p));
}

template <class T>
void lppool_kernel(const PoolGeom& g, const T* x, T* y, int64_t p) {
  const int64_t total = g.planes * g.out_size;
  const WinTables tables = window_tables(g);
#pragma omp parallel for schedule(static)
  for (int64_t t = 0; t < total; ++t) {
    const int64_t plane = t / g.out_size;
    const Window w = make_window(g, tables, t % g.out_size);
    const T* xp = x + plane * g.in_size;
    double sum = 0;
    for_each_tap(g, w, [&](int64_t off, const auto&) { sum += lp_term(double(xp[off]), p); });
    y[t] = T(lp_root(sum, p));
  }
}

void check_float_type(DType t, const std::string& op) {
  ENGINE_CHECK(t == DType::F32 || t == DType::F64, op, ": input X must be float or double, got ",
               dtype_name(t));
}

// ---- windowed pools ----

void add_windowed_pool(OpRegistry& r, const std::string& op, PoolKind kind) {
  OpSchema s;
  s.op_type = op;
  s.min_inputs = s.max_inputs = 1;
  s.min_outputs = 1;
  s.max_outputs = kind == PoolKind::Max ? 2 : 1;
  s.validate = [kind](const Node& node) { validate_pool_attrs(node, kind); };
  s.infer = [kind, op](InferContext& ctx) {
    const DType t = ctx.dtype(0);
    if (kind == PoolKind::Max) {
      ENGINE_CHECK(t == DType::F32 || t == DType::F64 || t == DType::I8 || t == DType::U8, op,
                   ": input X must be float, double, int8 or uint8, got ", dtype_name(t));
    } else {
      check_float_type(t, op);
    }
    const PoolGeom g = pool_geometry(ctx.node(), ctx.shape(0));
    const Dims out = pool_out_shape(ctx.shape(0), g);
    ctx.set_output(0, t, out);
    if (ctx.num_outputs() > 1) ctx.set_output(1, DType::I64, out);
  };
  s.kernel = [kind](KernelContext& kc) {
    const Tensor& x = kc.in(0);
    const PoolGeom g = pool_geometry(kc.node, x.shape());
    Tensor& y = kc.out(0);
    if (kind == PoolKind::Max) {
      int64_t* idx = nullptr;
      if (kc.outputs.size() > 1 && kc.outputs[1]) idx = kc.out(1).data<int64_t>();
      const int so = int(kc.attrs().get_int("storage_order", 0));
      dispatch_dtype(x.dtype(), [&](auto tag) {
        using T = decltype(tag);
        if constexpr (std::is_same_v<T, float> || std::is_same_v<T, double> ||
                      std::is_same_v<T, int8_t> || std::is_same_v<T, uint8_t>) {
          maxpool_kernel<T>(g, x.data<T>(), y.data<T>(), idx, so);
        } else {
          fail("MaxPool: unsupported element type ", dtype_name(x.dtype()));
        }
      });
    } else if (kind == PoolKind::Avg) {
      const bool cip = kc.attrs().get_int("count_include_pad", 0) != 0;
      if (x.dtype() == DType::F32)
        avgpool_kernel<float>(g, x.data<float>(), y.data<float>(), cip);
      else
        avgpool_kernel<double>(g, x.data<double>(), y.data<double>(), cip);
    } else {
      const int64_t p = kc.attrs().get_int("p", 2);
      if (x.dtype() == DType::F32)
        lppool_kernel<float>(g, x.data<float>(), y.data<float>(), p);
      else
        lppool_kernel<double>(g, x.data<double>(), y.data<double>(), p);
    }
  };
  r.add(std::move(s));
}

// ---- global pools ----

template <class T>
void global_kernel(const T* x, T* y, int64_t planes, int64_t n, PoolKind kind, int64_t p) {
#pragma omp parallel for schedule(static)
  for (int64_t c = 0; c < planes; ++c) {
    const T* xp = x + c * n;
    if (kind == PoolKind::Max) {
      T best = xp[0];
      for (int64_t i = 1; i < n; ++i)
        if (xp[i] > best) best = xp[i];
      y[c] = best;
    } else if (kind == PoolKind::Avg) {
      double sum = 0;
      for (int64_t i = 0; i < n; ++i) sum += double(xp[i]);
      y[c] = T(sum / double(n));
    } else {
      double sum = 0;
      for (int64_t i = 0; i < n; ++i) sum += lp_term(double(xp[i]), p);
      y[c] = T(lp_root(sum, p));
    }
  }
}

void add_global_pool(OpRegistry& r, const std::string& op, PoolKind kind) {
  OpSchema s;
  s.op_type = op;
  s.min_inputs = s.max_inputs = 1;
  s.min_outputs = s.max_outputs = 1;
  if (kind == PoolKind::Lp) {
    s.validate = [](const Node& node) {
      const int64_t p = node.attrs.get_int("p", 2);
      ENGINE_CHECK(p >= 1, "attribute p=", p, " must be >= 1");
    };
  }
  s.infer = [kind, op](InferContext& ctx) {
    const DType t = ctx.dtype(0);
    if (kind == PoolKind::Max) {
      ENGINE_CHECK(t == DType::F32 || t == DType::F64 || t == DType::I8 || t == DType::U8, op,
                   ": input X must be float, double, int8 or uint8, got ", dtype_name(t));
    } else {
      check_float_type(t, op);
    }
    const Dims& x = ctx.shape(0);
    ENGINE_CHECK(x.size() >= 2, op, ": input X must have rank >= 2 (N, C, spatial...), got shape ",
                 dims_str(x));
    Dims out = x;
    for (size_t i = 2; i < out.size(); ++i) {
      ENGINE_CHECK(x[i] >= 1, op, ": spatial dims of X must be >= 1, got shape ", dims_str(x));
      out[i] = 1;
    }
    ctx.set_output(0, t, out);
  };
  s.kernel = [kind](KernelContext& kc) {
    const Tensor& x = kc.in(0);
    Tensor& y = kc.out(0);
    const int64_t planes = x.dim(0) * x.dim(1);
    if (planes == 0) return;
    const int64_t n = x.numel() / planes;
    const int64_t p = kc.attrs().get_int("p", 2);
    dispatch_dtype(x.dtype(), [&](auto tag) {
      using T = decltype(tag);
      if constexpr (std::is_same_v<T, float> || std::is_same_v<T, double>) {
        global_kernel<T>(x.data<T>(), y.data<T>(), planes, n, kind, p);
      } else if constexpr (std::is_same_v<T, int8_t> || std::is_same_v<T, uint8_t>) {
        if (kind == PoolKind::Max)
          global_kernel<T>(x.data<T>(), y.data<T>(), planes, n, kind, p);
        else
          fail("unsupported element type ", dtype_name(x.dtype()));
      } else {
        fail("unsupported element type ", dtype_name(x.dtype()));
      }
    });
  };
  r.add(std::move(s));
}

}  // namespace

void register_pool_ops(OpRegistry& r) {
  add_windowed_pool(r, "MaxPool", PoolKind::Max);
  add_windowed_pool(r, "AveragePool", PoolKind::Avg);
  add_windowed_pool(r, "LpPool", PoolKind::Lp);
  add_global_pool(r, "GlobalMaxPool", PoolKind::Max);
  add_global_pool(r, "GlobalAveragePool", PoolKind::Avg);
  add_global_pool(r, "GlobalLpPool", PoolKind::Lp);
}

}  // namespace engine
