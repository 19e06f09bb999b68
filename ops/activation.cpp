// Activations: Relu family, Clip, sigmoid-likes, Tanh, Elu/Selu/Celu, Softplus/Softsign, Erf,
// Softmax / LogSoftmax. float16 tensors are computed in float32.
#include <algorithm>
#include <cmath>
#include <limits>
#include <type_traits>

#include "ops/broadcast.h"
#include "ops/ops.h"

namespace engine {
namespace {

using namespace bcast;

OpSchema schema(const char* op, int min_in, int max_in, InferFn infer, KernelFn kernel,
                std::function<void(const Node&)> validate = nullptr) {
  OpSchema s;
  s.op_type = op;
  s.min_inputs = min_in;
  s.max_inputs = max_in;
  s.infer = std::move(infer);
  s.kernel = std::move(kernel);
  s.validate = std::move(validate);
  return s;
}

InferFn same_as_input(TypeSet types) {
  return [types](InferContext& ctx) {
    check_type(ctx.dtype(0), types, "input 0");
    ctx.set_output(0, ctx.dtype(0), ctx.shape(0));
  };
}

// Elementwise activation y = f(x). make(kc) returns the elementwise function (reading the
// node's attributes once); it is called with float or double (float16 through float).
template <class Make>
void add_float_activation(OpRegistry& r, const char* name, Make make) {
  r.add(schema(name, 1, 1, same_as_input(kFloatTypes), [make](KernelContext& kc) {
    const auto f = make(kc);
    const Tensor& x = kc.in(0);
    Tensor& y = kc.out(0);
    if (x.dtype() == DType::F16) {
      unary_map(half_data(x), half_data(y), x.numel(),
                [&](uint16_t h) { return float_to_half(float(f(half_to_float(h)))); });
      return;
    }
    dispatch_float(x.dtype(), [&](auto tag) {
      using T = decltype(tag);
      unary_map(x.data<T>(), y.data<T>(), x.numel(), [&](T v) { return T(f(v)); });
    });
  }));
}

// Same for activations also defined on numeric (integer) types; f is called with the element
// type.
template <class Make>
void add_numeric_activation(OpRegistry& r, const char* name, TypeSet types, Make make) {
  r.add(schema(name, 1, 1, same_as_input(types), [make](KernelContext& kc) {
    const auto f = make(kc);
    const Tensor& x = kc.in(0);
    Tensor& y = kc.out(0);
    if (x.dtype() == DType::F16) {
      unary_map(half_data(x), half_data(y), x.numel(),
                [&](uint16_t h) { return float_to_half(float(f(half_to_float(h)))); });
      return;
    }
    dispatch_numeric(x.dtype(), [&](auto tag) {
      using T = decltype(tag);
      unary_map(x.data<T>(), y.data<T>(), x.numel(), [&](T v) { return T(f(v)); });
    });
  }));
}

// ---- PRelu: slope broadcasts (unidirectionally) to the input ----
// Older exporters (PyTorch with opset < 9) give a per-channel slope of shape [C] for an input
// [N,C,...]; that does not broadcast numpy-style, so it is read as [C,1,...,1] (the channel-wise
// meaning those models had).
Dims prelu_slope_shape(const Dims& x, const Dims& slope) {
  if (broadcastable_to(slope, x)) return slope;
  if (slope.size() == 1 && x.size() >= 2 && slope[0] == x[1]) {
    Dims d(x.size() - 1, 1);
    d[0] = slope[0];
    return d;
  }
  fail("slope shape ", dims_str(slope), " does not broadcast to input shape ", dims_str(x));
}

void prelu_infer(InferContext& ctx) {
  check_type(ctx.dtype(0), kFloatTypes | kSignedIntTypes, "input 0");
  ENGINE_CHECK(ctx.dtype(1) == ctx.dtype(0), "slope type ", dtype_name(ctx.dtype(1)),
               " differs from input type ", dtype_name(ctx.dtype(0)));
  prelu_slope_shape(ctx.shape(0), ctx.shape(1));
  ctx.set_output(0, ctx.dtype(0), ctx.shape(0));
}

void prelu_kernel(KernelContext& kc) {
  const Tensor& x = kc.in(0);
  const Tensor s = kc.in(1).reshaped(prelu_slope_shape(x.shape(), kc.in(1).shape()));
  Tensor& y = kc.out(0);
  auto run = [&](auto tag, const Tensor& xt, const Tensor& st, Tensor& yt) {
    using T = decltype(tag);
    binary_map(xt.data<T>(), xt.shape(), st.data<T>(), st.shape(), yt.data<T>(), yt.shape(),
               [](T v, T a) { return v < T(0) ? T(a * v) : v; });
  };
  if (x.dtype() == DType::F16) {
    const Tensor x32 = widen_half(x), s32 = widen_half(s);
    Tensor y32(DType::F32, y.shape());
    run(float{}, x32, s32, y32);
    narrow_to_half(y32, y);
    return;
  }
  dispatch_numeric(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    if constexpr (std::is_signed_v<T>) run(tag, x, s, y);
  });
}

// ---- Clip ----

void clip_infer(InferContext& ctx) {
  const DType t = ctx.dtype(0);
  check_type(t, kNumericTypes, "input 0");
  if (ctx.opset() >= 11) {
    for (int i = 1; i < 3; ++i) {
      if (!ctx.has_input(i)) continue;
      const char* what = i == 1 ? "min (input 1)" : "max (input 2)";
      ENGINE_CHECK(ctx.dtype(i) == t, what, " has type ", dtype_name(ctx.dtype(i)),
                   ", expected the input type ", dtype_name(t));
      ENGINE_CHECK(checked_numel(ctx.shape(i)) == 1, what, " must be a scalar, got shape ",
                   dims_str(ctx.shape(i)));
    }
  } else {
    ENGINE_CHECK(ctx.num_inputs() == 1,
                 "Clip before opset 11 takes min/max as attributes, "
                 "not inputs");
  }
  ctx.set_output(0, t, ctx.shape(0));
}

template <class T>
void clip_typed(KernelContext& kc, const Tensor& x, Tensor& y, double amin, double amax) {
  T lo = std::numeric_limits<T>::lowest(), hi = std::numeric_limits<T>::max();
  if constexpr (std::is_floating_point_v<T>) {
    lo = -std::numeric_limits<T>::infinity();
    hi = std::numeric_limits<T>::infinity();
  }
  if (kc.node.opset >= 11) {
    auto bound = [&](int i, T def) {
      if (!kc.has_input(i)) return def;
      const Tensor& b = kc.in(i);
      if (b.dtype() == DType::F16) return T(half_to_float(half_data(b)[0]));
      return T(b.get_as_double(0));
    };
    if constexpr (std::is_integral_v<T>) {
      // Integer bounds are read exactly (int64 values may not fit a double).
      if (kc.has_input(1)) lo = kc.in(1).data<T>()[0];
      if (kc.has_input(2)) hi = kc.in(2).data<T>()[0];
    } else {
      lo = bound(1, lo);
      hi = bound(2, hi);
    }
  } else {
    lo = saturate_cast<T>(amin);
    hi = saturate_cast<T>(amax);
  }
  // max then min: when min > max every value becomes max (ONNX spec).
  unary_map(x.data<T>(), y.data<T>(), x.numel(), [lo, hi](T v) {
    v = v < lo ? lo : v;
    return v > hi ? hi : v;
  });
}

void clip_kernel(KernelContext& kc) {
  const Tensor& x = kc.in(0);
  Tensor& y = kc.out(0);
  const double amin = kc.attrs().get_float("min", -std::numeric_limits<float>::infinity());
  const double amax = kc.attrs().get_float("max", std::numeric_limits<float>::infinity());
  if (x.dtype() == DType::F16) {
    const Tensor x32 = widen_half(x);
    Tensor y32(DType::F32, y.shape());
    clip_typed<float>(kc, x32, y32, amin, amax);
    narrow_to_half(y32, y);
    return;
  }
  dispatch_numeric(x.dtype(), [&](auto tag) { clip_typed<decltype(tag)>(kc, x, y, amin, amax); });
}

// ---- Softmax / LogSoftmax ----

struct SoftmaxLayout {
  int64_t outer = 1, n = 1, inner = 1;
};

// opset < 13: the input is coerced to 2-D [prod(d[:axis]), prod(d[axis:])] (axis default 1) and
// each row is normalized. opset >= 13: normalized along the single dimension `axis` (default -1).
SoftmaxLayout softmax_layout(const Node& node, const Dims& shape) {
  const int r = int(shape.size());
  ENGINE_CHECK(r >= 1, node.op_type, " needs an input of rank >= 1, got a scalar");
  SoftmaxLayout l;
  if (node.opset < 13) {
    int64_t axis = node.attrs.get_int("axis", 1);
    // axis == r is accepted: the coerced 2-D shape is [numel, 1].
    ENGINE_CHECK(axis >= -r && axis <= r, "attribute 'axis' = ", axis,
                 " is out of range for an input of rank ", r);
    if (axis < 0) axis += r;
    for (int d = 0; d < r; ++d) (d < axis ? l.outer : l.n) *= shape[size_t(d)];
  } else {
    int64_t axis = node.attrs.get_int("axis", -1);
    ENGINE_CHECK(axis >= -r && axis < r, "attribute 'axis' = ", axis,
                 " is out of range for an input of rank ", r);
    if (axis < 0) axis += r;
    for (int d = 0; d < r; ++d) {
      if (d < axis)
        l.outer *= shape[size_t(d)];
      else if (d == axis)
        l.n = shape[size_t(d)];
      else
        l.inner *= shape[size_t(d)];
    }
  }
  return l;
}

// Numerically stable: subtracts the maximum before exponentiating; sums in double.
// Work is split in tasks of (one outer index) x (a chunk of up to kChunk inner positions), so
// the inner loops run over contiguous memory whatever the axis.
template <class T>
void softmax_typed(const T* x, T* y, const SoftmaxLayout& l, bool log) {
  constexpr int64_t kChunk = 64;
  const int64_t chunks = (l.inner + kChunk - 1) / kChunk;
  if (l.n == 0) return;
  parallel_tasks(l.outer * chunks, l.n * std::min(l.inner, kChunk), [&](int64_t task) {
    const int64_t o = task / chunks, j0 = (task % chunks) * kChunk;
    const int64_t m = std::min(kChunk, l.inner - j0);
    const int64_t s = l.inner;
    const T* xb = x + o * l.n * l.inner + j0;
    T* yb = y + o * l.n * l.inner + j0;
    T mx[kChunk];
    double sum[kChunk];
    for (int64_t j = 0; j < m; ++j) {
      mx[j] = -std::numeric_limits<T>::infinity();
      sum[j] = 0;
    }
    for (int64_t k = 0; k < l.n; ++k)
      for (int64_t j = 0; j < m; ++j) {
        const T v = xb[k * s + j];
        if (v > mx[j] || std::isnan(v)) mx[j] = v;
      }
    for (int64_t k = 0; k < l.n; ++k)
      for (int64_t j = 0; j < m; ++j) {
        const T e = std::exp(xb[k * s + j] - mx[j]);
        sum[j] += double(e);
        if (!log) yb[k * s + j] = e;
      }
    if (log) {
      // (x - max) - log(sum): subtracting the max first keeps precision for large inputs.
      T lse[kChunk];
      for (int64_t j = 0; j < m; ++j) lse[j] = T(std::log(sum[j]));
      for (int64_t k = 0; k < l.n; ++k)
        for (int64_t j = 0; j < m; ++j) yb[k * s + j] = (xb[k * s + j] - mx[j]) - lse[j];
    } else {
      T inv[kChunk];
      for (int64_t j = 0; j < m; ++j) inv[j] = T(1.0 / sum[j]);
      for (int64_t k = 0; k < l.n; ++k)
        for (int64_t j = 0; j < m; ++j) yb[k * s + j] *= inv[j];
    }
  });
}

// Hardmax: 1 at the first maximum of each normalized slice, 0 elsewhere.
template <class T>
void hardmax_typed(const T* x, T* y, const SoftmaxLayout& l) {
  if (l.n == 0) return;
  parallel_tasks(l.outer * l.inner, l.n, [&](int64_t task) {
    const int64_t o = task / l.inner, j = task % l.inner;
    const T* xb = x + o * l.n * l.inner + j;
    T* yb = y + o * l.n * l.inner + j;
    int64_t best = 0;
    for (int64_t k = 1; k < l.n; ++k)
      if (xb[k * l.inner] > xb[best * l.inner]) best = k;
    for (int64_t k = 0; k < l.n; ++k) yb[k * l.inner] = k == best ? T(1) : T(0);
  });
}

void add_softmax(OpRegistry& r, const char* name, bool log, bool hard = false) {
  r.add(schema(
      name, 1, 1,
      [](InferContext& ctx) {
        check_type(ctx.dtype(0), kFloatTypes, "input 0");
        softmax_layout(ctx.node(), ctx.shape(0));  // validates axis
        ctx.set_output(0, ctx.dtype(0), ctx.shape(0));
      },
      [log, hard](KernelContext& kc) {
        const Tensor& x = kc.in(0);
        Tensor& y = kc.out(0);
        const SoftmaxLayout l = softmax_layout(kc.node, x.shape());
        if (x.dtype() == DType::F16) {
          const Tensor x32 = widen_half(x);
          Tensor y32(DType::F32, y.shape());
          if (hard)
            hardmax_typed(x32.data<float>(), y32.data<float>(), l);
          else
            softmax_typed(x32.data<float>(), y32.data<float>(), l, log);
          narrow_to_half(y32, y);
          return;
        }
        dispatch_float(x.dtype(), [&](auto tag) {
          using T = decltype(tag);
          if (hard)
            hardmax_typed(x.data<T>(), y.data<T>(), l);
          else
            softmax_typed(x.data<T>(), y.data<T>(), l, log);
        });
      }));
}

}  // namespace

void register_activation_ops(OpRegistry& r) {
  add_numeric_activation(r, "Relu", kFloatTypes | kSignedIntTypes, [](const KernelContext&) {
    return [](auto v) {
      using T = decltype(v);
      if constexpr (std::is_unsigned_v<T>)
        return v;
      else
        return v < T(0) ? T(0) : v;
    };
  });
  add_float_activation(r, "LeakyRelu", [](const KernelContext& kc) {
    const float alpha = kc.attrs().get_float("alpha", 0.01f);
    return [alpha](auto v) { return v < 0 ? decltype(v)(alpha) * v : v; };
  });
  r.add(schema("PRelu", 2, 2, prelu_infer, prelu_kernel));
  r.add(schema("Clip", 1, 3, clip_infer, clip_kernel));
  add_float_activation(r, "Sigmoid", [](const KernelContext&) {
    return [](auto v) {
      using T = decltype(v);
      if (v >= 0) return T(1) / (T(1) + std::exp(-v));
      const T e = std::exp(v);
      return e / (T(1) + e);
    };
  });
  add_float_activation(r, "HardSigmoid", [](const KernelContext& kc) {
    const float alpha = kc.attrs().get_float("alpha", 0.2f);
    const float beta = kc.attrs().get_float("beta", 0.5f);
    return [alpha, beta](auto v) {
      using T = decltype(v);
      return std::max(T(0), std::min(T(1), T(alpha) * v + T(beta)));
    };
  });
  add_float_activation(r, "HardSwish", [](const KernelContext&) {
    return [](auto v) {
      using T = decltype(v);
      return v * std::max(T(0), std::min(T(1), v / T(6) + T(0.5)));
    };
  });
  add_float_activation(r, "Tanh",
                       [](const KernelContext&) { return [](auto v) { return std::tanh(v); }; });
  add_float_activation(r, "Elu", [](const KernelContext& kc) {
    const float alpha = kc.attrs().get_float("alpha", 1.0f);
    return [alpha](auto v) {
      using T = decltype(v);
      return v < 0 ? T(alpha) * std::expm1(v) : v;
    };
  });
  add_float_activation(r, "Selu", [](const KernelContext& kc) {
    const float alpha = kc.attrs().get_float("alpha", 1.67326319217681884765625f);
    const float gamma = kc.attrs().get_float("gamma", 1.05070102214813232421875f);
    return [alpha, gamma](auto v) {
      using T = decltype(v);
      return v > 0 ? T(gamma) * v : T(gamma) * T(alpha) * std::expm1(v);
    };
  });
  add_float_activation(r, "Celu", [](const KernelContext& kc) {
    const float alpha = kc.attrs().get_float("alpha", 1.0f);
    return [alpha](auto v) {
      using T = decltype(v);
      return v > 0 ? v : T(alpha) * std::expm1(v / T(alpha));
    };
  });
  add_float_activation(r, "ThresholdedRelu", [](const KernelContext& kc) {
    const float alpha = kc.attrs().get_float("alpha", 1.0f);
    return [alpha](auto v) { return v > decltype(v)(alpha) ? v : decltype(v)(0); };
  });
  add_float_activation(r, "Softplus", [](const KernelContext&) {
    return [](auto v) { return v > 0 ? v + std::log1p(std::exp(-v)) : std::log1p(std::exp(v)); };
  });
  add_float_activation(r, "Softsign", [](const KernelContext&) {
    return [](auto v) { return v / (decltype(v)(1) + std::abs(v)); };
  });
  add_float_activation(r, "Erf",
                       [](const KernelContext&) { return [](auto v) { return std::erf(v); }; });
  add_numeric_activation(r, "Shrink", kNumericTypes, [](const KernelContext& kc) {
    const double bias = kc.attrs().get_float("bias", 0.0f);
    const double lambd = kc.attrs().get_float("lambd", 0.5f);
    return [bias, lambd](auto v) {
      using T = decltype(v);
      const double d = double(v);
      return d < -lambd  ? saturate_cast<T>(d + bias)
             : d > lambd ? saturate_cast<T>(d - bias)
                         : T(0);
    };
  });
  add_softmax(r, "Softmax", false);
  add_softmax(r, "LogSoftmax", true);
  add_softmax(r, "Hardmax", false, true);
}

}  // namespace engine
