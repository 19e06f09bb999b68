// Pooling: MaxPool (optional Indices output), AveragePool, LpPool and their Global variants.
//
// All windowed pools share one geometry (kernel_shape, strides, dilations, pads / auto_pad,
// ceil_mode; ops/pool_geom.h, also used by the quantized pools) and one generic N-d kernel.
// MaxPool / GlobalMaxPool also run on int8 / uint8 tensors (exact: no arithmetic involved).
//
// Conventions (ONNX spec, which follows PyTorch): see ops/pool_geom.h for window sizes and the
// count_include_pad divisor. AveragePool count_include_pad=1 divides by the number of window taps
// inside the padded extent, count_include_pad=0 by the taps inside the input.
//  - MaxPool Indices: flat index into X (N, C and spatial), spatial part row-major for
//    storage_order=0, column-major for storage_order=1.
#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "ops/conv_geom.h"
#include "ops/ops.h"
#include "ops/pool_geom.h"

namespace engine {
namespace {

using namespace pool;

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
  std::array<int64_t, kMaxPoolSpatial> cm{};
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
    std::array<int64_t, kMaxPoolSpatial> best_c{};
    for_each_tap(g, w, [&](int64_t off, const std::array<int64_t, kMaxPoolSpatial>& c) {
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

// Integer 2-D MaxPool without Indices (uint8 / int8 in INT8 graphs): output rows start at the
// lowest value and take the max of each tap's valid column range, so the inner loops have no
// branches. (Not for floats: NaN handling would differ from the tap-by-tap reference.)
template <class T>
void maxpool2d_int_kernel(const PoolGeom& g, const T* x, T* y) {
  const int64_t IH = g.in[0], IW = g.in[1], OH = g.out[0], OW = g.out[1];
  const int64_t sh = g.stride[0], sw = g.stride[1], dh = g.dil[0], dw = g.dil[1];
  const int64_t KH = g.kernel[0], KW = g.kernel[1];
  std::vector<int64_t> lo(static_cast<size_t>(KW)), hi(static_cast<size_t>(KW));
  for (int64_t k = 0; k < KW; ++k)
    valid_range(k * dw - g.pad_begin[1], sw, IW, OW, lo[size_t(k)], hi[size_t(k)]);
#pragma omp parallel for schedule(static) if (g.planes * OH * OW > 4096)
  for (int64_t p = 0; p < g.planes; ++p) {
    const T* xp = x + p * IH * IW;
    for (int64_t oh = 0; oh < OH; ++oh) {
      T* yr = y + (p * OH + oh) * OW;
      std::fill(yr, yr + OW, std::numeric_limits<T>::lowest());
      for (int64_t kh = 0; kh < KH; ++kh) {
        const int64_t ih = oh * sh - g.pad_begin[0] + kh * dh;
        if (ih < 0 || ih >= IH) continue;
        const T* xr = xp + ih * IW - g.pad_begin[1];
        for (int64_t k = 0; k < KW; ++k) {
          // Locals and __restrict: 1-byte types may alias anything, which would make the
          // compiler reload the bounds on every iteration.
          const T* __restrict xk = xr + k * dw;
          T* __restrict yo = yr;
          const int64_t l = lo[size_t(k)], h = hi[size_t(k)];
          if (sw == 1) {
            for (int64_t ow = l; ow < h; ++ow) yo[ow] = std::max(yo[ow], xk[ow]);
          } else {
            for (int64_t ow = l; ow < h; ++ow) yo[ow] = std::max(yo[ow], xk[ow * sw]);
          }
        }
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
          if constexpr (std::is_integral_v<T>) {
            if (g.nd == 2 && !idx) return maxpool2d_int_kernel<T>(g, x.data<T>(), y.data<T>());
          }
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
