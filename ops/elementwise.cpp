// Elementwise math: binary arithmetic with numpy broadcasting (Add, Sub, Mul, Div, Mod, Pow),
// comparisons and logic (bool output), variadic Max/Min/Sum/Mean, Where, unary math, Cast.
// float16 tensors are computed in float32.
#include <cmath>
#include <cstring>
#include <limits>
#include <type_traits>

#include "ops/broadcast.h"
#include "ops/ops.h"

namespace engine {
namespace {

using namespace bcast;

constexpr int kManyInputs = std::numeric_limits<int>::max();

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

// Legacy (opset < 7) broadcasting: with broadcast=1, B's dims line up with A's starting at
// `axis` (default: B is a suffix of A, which is numpy broadcasting). Expressed as numpy
// broadcasting by giving B trailing 1-dims; the wrapped infer/kernel then see that shape.
bool is_legacy_broadcast(const Node& n) {
  return n.opset < 7 && n.attrs.get_int("broadcast", 0) != 0 && n.attrs.has("axis");
}

Dims legacy_b_shape(const Node& n, const Dims& a, const Dims& b) {
  int64_t axis = n.attrs.get_int("axis");
  const int64_t ra = int64_t(a.size()), rb = int64_t(b.size());
  if (axis < 0) axis += ra;
  ENGINE_CHECK(axis >= 0 && axis + rb <= ra, "legacy broadcast: axis ", n.attrs.get_int("axis"),
               " does not place B ", dims_str(b), " inside A ", dims_str(a));
  Dims d = b;
  d.resize(size_t(ra - axis), 1);
  return d;
}

OpSchema with_legacy_broadcast(OpSchema s) {
  InferFn infer = s.infer;
  KernelFn kernel = s.kernel;
  s.infer = [infer](InferContext& ctx) {
    if (!is_legacy_broadcast(ctx.node()) || ctx.num_inputs() != 2) return infer(ctx);
    std::vector<InferContext::Input> in;
    for (int i = 0; i < 2; ++i) in.push_back({ctx.dtype(i), ctx.shape(i), ctx.value_or_null(i)});
    in[1].shape = legacy_b_shape(ctx.node(), ctx.shape(0), ctx.shape(1));
    Tensor reshaped;
    if (in[1].value) {
      reshaped = in[1].value->reshaped(in[1].shape);
      in[1].value = &reshaped;
    }
    InferContext inner(ctx.node(), in);
    infer(inner);
    for (int i = 0; i < ctx.num_outputs(); ++i)
      ctx.set_output(i, inner.outputs()[size_t(i)].dtype, inner.outputs()[size_t(i)].shape);
  };
  s.kernel = [kernel](KernelContext& kc) {
    if (!is_legacy_broadcast(kc.node) || kc.inputs.size() != 2) return kernel(kc);
    const Tensor b = kc.in(1).reshaped(legacy_b_shape(kc.node, kc.in(0).shape(), kc.in(1).shape()));
    KernelContext inner{kc.node, {kc.inputs[0], &b}, kc.outputs, kc.num_threads};
    kernel(inner);
  };
  return s;
}

// All inputs of a broadcasting op: same type (in `types`), shapes broadcast together.
// Returns the common input type.
DType infer_broadcast(InferContext& ctx, TypeSet types, DType out_type) {
  const DType t = ctx.dtype(0);
  check_type(t, types, "input 0");
  std::vector<Dims> shapes;
  for (int i = 0; i < ctx.num_inputs(); ++i) {
    ENGINE_CHECK(ctx.has_input(i), "input ", i, " is missing");
    ENGINE_CHECK(ctx.dtype(i) == t, "inputs must have the same type: input 0 is ", dtype_name(t),
                 ", input ", i, " is ", dtype_name(ctx.dtype(i)));
    shapes.push_back(ctx.shape(i));
  }
  ctx.set_output(0, out_type == DType::Undefined ? t : out_type, broadcast_shapes(shapes));
  return t;
}

// ---- binary ops on one element type ----

// Runs y = op(a, b) (broadcast) with op(T, T) -> T for the element type of a (numeric types;
// float16 through float32).
template <class Op>
void run_binary_numeric(KernelContext& kc, Op op) {
  const Tensor& a = kc.in(0);
  const Tensor& b = kc.in(1);
  Tensor& y = kc.out(0);
  if (a.dtype() == DType::F16) {
    const Tensor a32 = widen_half(a), b32 = widen_half(b);
    Tensor y32(DType::F32, y.shape());
    binary_map(a32.data<float>(), a.shape(), b32.data<float>(), b.shape(), y32.data<float>(),
               y.shape(), [&](float p, float q) { return float(op(p, q)); });
    narrow_to_half(y32, y);
    return;
  }
  dispatch_numeric(a.dtype(), [&](auto tag) {
    using T = decltype(tag);
    binary_map(a.data<T>(), a.shape(), b.data<T>(), b.shape(), y.data<T>(), y.shape(),
               [&](T p, T q) { return T(op(p, q)); });
  });
}

// Integer division / modulo by zero would crash the process: check the divisor first.
void check_no_integer_zero(const Tensor& b, const char* op) {
  if (!dtype_is_integer(b.dtype())) return;
  dispatch_numeric(b.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* p = b.data<T>();
    for (int64_t i = 0; i < b.numel(); ++i)
      ENGINE_CHECK(p[i] != T(0), op, ": integer division by zero (divisor element ", i, ")");
  });
}

void add_arith(OpRegistry& r, const char* name, KernelFn kernel) {
  r.add(with_legacy_broadcast(schema(
      name, 2, 2, [](InferContext& ctx) { infer_broadcast(ctx, kNumericTypes, DType::Undefined); },
      std::move(kernel))));
}

template <class T>
T div_op(T p, T q) {
  if constexpr (std::is_integral_v<T>) {
    if constexpr (std::is_signed_v<T>) {
      if (q == T(-1)) return wrap_sub(T(0), p);  // INT_MIN / -1 overflows (and traps on x86)
    }
    return T(p / q);  // truncates toward zero, as C does
  } else {
    return p / q;
  }
}

template <class T>
T mod_op(T p, T q, bool fmod) {
  if constexpr (std::is_integral_v<T>) {
    if constexpr (std::is_signed_v<T>) {
      if (q == T(-1)) return T(0);
      T m = T(p % q);
      if (!fmod && m != 0 && ((m < 0) != (q < 0))) m = T(m + q);  // sign of the divisor
      return m;
    } else {
      (void)fmod;
      return T(p % q);
    }
  } else {
    (void)fmod;
    return T(std::fmod(p, q));
  }
}

// ---- Pow: base and exponent may differ in type; the result has the base type ----

template <class T>
T int_pow(T base, int64_t e) {
  if (e < 0) {  // integer result of 1 / base^|e|
    if (base == T(1)) return T(1);
    if constexpr (std::is_signed_v<T>) {
      if (base == T(-1)) return (e % 2) ? T(-1) : T(1);
    }
    return T(0);
  }
  T result = T(1);
  while (e > 0) {
    if (e & 1) result = wrap_mul(result, base);
    e >>= 1;
    if (e) base = wrap_mul(base, base);
  }
  return result;
}

void pow_kernel(KernelContext& kc) {
  const Tensor& a = kc.in(0);
  const Tensor& b = kc.in(1);
  Tensor& y = kc.out(0);
  // Exponent as double (float types) or int64 (integer types).
  const bool int_exp = dtype_is_integer(b.dtype());
  Tensor e(int_exp ? DType::I64 : DType::F64, b.shape());
  if (b.dtype() == DType::F16) {
    unary_map(half_data(b), e.data<double>(), b.numel(),
              [](uint16_t h) { return double(half_to_float(h)); });
  } else {
    dispatch_numeric(b.dtype(), [&](auto tag) {
      using E = decltype(tag);
      if (int_exp)
        unary_map(b.data<E>(), e.data<int64_t>(), b.numel(), [](E v) { return int64_t(v); });
      else
        unary_map(b.data<E>(), e.data<double>(), b.numel(), [](E v) { return double(v); });
    });
  }
  const bool square = e.numel() == 1 && e.get_as_double(0) == 2.0;
  auto run = [&](auto tag, const Tensor& base, Tensor& out) {
    using T = decltype(tag);
    const T* x = base.data<T>();
    T* o = out.data<T>();
    if constexpr (std::is_floating_point_v<T>) {
      if (square) {
        unary_map(x, o, base.numel(), [](T v) { return v * v; });
      } else if (int_exp) {
        binary_map(x, base.shape(), e.data<int64_t>(), e.shape(), o, out.shape(),
                   [](T p, int64_t q) { return T(std::pow(double(p), double(q))); });
      } else {
        binary_map(x, base.shape(), e.data<double>(), e.shape(), o, out.shape(),
                   [](T p, double q) { return T(std::pow(double(p), q)); });
      }
    } else {
      if (int_exp) {
        binary_map(x, base.shape(), e.data<int64_t>(), e.shape(), o, out.shape(),
                   [](T p, int64_t q) { return int_pow(p, q); });
      } else {
        binary_map(x, base.shape(), e.data<double>(), e.shape(), o, out.shape(),
                   [](T p, double q) { return saturate_cast<T>(std::pow(double(p), q)); });
      }
    }
  };
  if (a.dtype() == DType::F16) {
    const Tensor a32 = widen_half(a);
    Tensor y32(DType::F32, y.shape());
    run(float{}, a32, y32);
    narrow_to_half(y32, y);
    return;
  }
  dispatch_numeric(a.dtype(), [&](auto tag) { run(tag, a, y); });
}

void pow_infer(InferContext& ctx) {
  check_type(ctx.dtype(0), kNumericTypes, "base (input 0)");
  check_type(ctx.dtype(1), kNumericTypes, "exponent (input 1)");
  ctx.set_output(0, ctx.dtype(0), broadcast_shape(ctx.shape(0), ctx.shape(1)));
}

// ---- comparisons and logic: bool output ----

// y = op(a, b) with a bool result, for any element type of a (float16 through float32).
template <class Op>
void run_compare(KernelContext& kc, Op op) {
  const Tensor& a = kc.in(0);
  const Tensor& b = kc.in(1);
  Tensor& y = kc.out(0);
  if (a.dtype() == DType::F16) {
    const Tensor a32 = widen_half(a), b32 = widen_half(b);
    binary_map(a32.data<float>(), a.shape(), b32.data<float>(), b.shape(), y.data<bool>(),
               y.shape(), [&](float p, float q) { return bool(op(p, q)); });
    return;
  }
  dispatch_dtype(a.dtype(), [&](auto tag) {
    using T = decltype(tag);
    binary_map(a.data<T>(), a.shape(), b.data<T>(), b.shape(), y.data<bool>(), y.shape(),
               [&](T p, T q) { return bool(op(p, q)); });
  });
}

template <class Op>
void add_compare(OpRegistry& r, const char* name, TypeSet types, Op op) {
  r.add(with_legacy_broadcast(schema(
      name, 2, 2, [types](InferContext& ctx) { infer_broadcast(ctx, types, DType::Bool); },
      [op](KernelContext& kc) { run_compare(kc, op); })));
}

// ---- variadic Max / Min / Sum / Mean ----

// y = op(...op(op(x0, x1), x2)...), broadcast; then post(y) if given.
template <class Op>
void run_variadic(KernelContext& kc, Op op, bool mean) {
  Tensor& y = kc.out(0);
  const int n = int(kc.inputs.size());
  auto run = [&](auto tag, const std::vector<const Tensor*>& ins, Tensor& out) {
    using T = decltype(tag);
    T* o = out.data<T>();
    broadcast_copy(ins[0]->data<T>(), ins[0]->shape(), o, out.shape());
    for (int i = 1; i < n; ++i)
      binary_map(static_cast<const T*>(o), out.shape(), ins[size_t(i)]->data<T>(),
                 ins[size_t(i)]->shape(), o, out.shape(), [&](T p, T q) { return T(op(p, q)); });
    if (mean) unary_map(static_cast<const T*>(o), o, out.numel(), [&](T v) { return T(v / T(n)); });
  };
  std::vector<const Tensor*> ins;
  for (int i = 0; i < n; ++i) ins.push_back(&kc.in(i));
  if (ins[0]->dtype() == DType::F16) {
    std::vector<Tensor> wide;
    for (const Tensor* t : ins) wide.push_back(widen_half(*t));
    std::vector<const Tensor*> wp;
    for (const Tensor& t : wide) wp.push_back(&t);
    Tensor y32(DType::F32, y.shape());
    run(float{}, wp, y32);
    narrow_to_half(y32, y);
    return;
  }
  dispatch_numeric(y.dtype(), [&](auto tag) { run(tag, ins, y); });
}

template <class Op>
void add_variadic(OpRegistry& r, const char* name, TypeSet types, bool mean, Op op) {
  r.add(schema(
      name, 1, kManyInputs,
      [types](InferContext& ctx) { infer_broadcast(ctx, types, DType::Undefined); },
      [op, mean](KernelContext& kc) { run_variadic(kc, op, mean); }));
}

// NaN-propagating max / min (as numpy.maximum / minimum).
template <class T>
T max_op(T p, T q) {
  if constexpr (std::is_floating_point_v<T>) {
    if (std::isnan(p)) return p;
    if (std::isnan(q)) return q;
  }
  return p < q ? q : p;
}
template <class T>
T min_op(T p, T q) {
  if constexpr (std::is_floating_point_v<T>) {
    if (std::isnan(p)) return p;
    if (std::isnan(q)) return q;
  }
  return q < p ? q : p;
}

// ---- Where ----

void where_infer(InferContext& ctx) {
  ENGINE_CHECK(ctx.dtype(0) == DType::Bool, "condition (input 0) must be bool, got ",
               dtype_name(ctx.dtype(0)));
  check_type(ctx.dtype(1), kAllTypes, "input 1 (X)");
  ENGINE_CHECK(ctx.dtype(1) == ctx.dtype(2),
               "X and Y must have the same type: ", dtype_name(ctx.dtype(1)), " vs ",
               dtype_name(ctx.dtype(2)));
  ctx.set_output(0, ctx.dtype(1), broadcast_shapes({ctx.shape(0), ctx.shape(1), ctx.shape(2)}));
}

template <class U>
void where_typed(const Tensor& c, const Tensor& x, const Tensor& yv, Tensor& out) {
  const bool* pc = c.data<bool>();
  const U* px = static_cast<const U*>(x.raw());
  const U* py = static_cast<const U*>(yv.raw());
  U* po = static_cast<U*>(out.raw());
  const Indexer ix(out.shape(), {c.shape(), x.shape(), yv.shape()});
  const int64_t sc = ix.inner_stride(0), sx = ix.inner_stride(1), sy = ix.inner_stride(2);
  parallel_segments(ix, [&](int64_t o, const int64_t* in, int64_t n) {
    const bool* qc = pc + in[0];
    const U* qx = px + in[1];
    const U* qy = py + in[2];
    for (int64_t i = 0; i < n; ++i) po[o + i] = qc[i * sc] ? qx[i * sx] : qy[i * sy];
  });
}

void where_kernel(KernelContext& kc) {
  const Tensor& x = kc.in(1);
  // Only the bytes are moved: dispatch on the element size.
  switch (dtype_size(x.dtype())) {
    case 1:
      where_typed<uint8_t>(kc.in(0), x, kc.in(2), kc.out(0));
      break;
    case 2:
      where_typed<uint16_t>(kc.in(0), x, kc.in(2), kc.out(0));
      break;
    case 4:
      where_typed<uint32_t>(kc.in(0), x, kc.in(2), kc.out(0));
      break;
    case 8:
      where_typed<uint64_t>(kc.in(0), x, kc.in(2), kc.out(0));
      break;
    default:
      fail("Where: unsupported element type ", dtype_name(x.dtype()));
  }
}

// ---- unary math ----

// y = f(x) for float types; f is called with float or double (float16 through float).
template <class F>
void run_unary_float(KernelContext& kc, F f) {
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
}

// y = f(x) for numeric types (float16 through float); f is called with the element type.
template <class F>
void run_unary_numeric(KernelContext& kc, F f) {
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
}

void float_to_bool_infer(InferContext& ctx) {
  check_type(ctx.dtype(0), kFloatTypes, "input 0");
  ctx.set_output(0, DType::Bool, ctx.shape(0));
}

// y = pred(x) (bool) for float types.
template <class F>
void run_float_predicate(KernelContext& kc, F pred) {
  const Tensor x = widen_half(kc.in(0));
  bool* y = kc.out(0).data<bool>();
  dispatch_float(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    unary_map(x.data<T>(), y, x.numel(), [&](T v) { return bool(pred(v)); });
  });
}

InferFn same_as_input(TypeSet types) {
  return [types](InferContext& ctx) {
    check_type(ctx.dtype(0), types, "input 0");
    ctx.set_output(0, ctx.dtype(0), ctx.shape(0));
  };
}

template <class F>
void add_unary_float(OpRegistry& r, const char* name, F f) {
  r.add(schema(name, 1, 1, same_as_input(kFloatTypes),
               [f](KernelContext& kc) { run_unary_float(kc, f); }));
}

template <class F>
void add_unary_numeric(OpRegistry& r, const char* name, TypeSet types, F f) {
  r.add(schema(name, 1, 1, same_as_input(types),
               [f](KernelContext& kc) { run_unary_numeric(kc, f); }));
}

// ---- Cast ----

// double -> float16 with a single rounding: round to odd at float precision first (float has
// 13 more mantissa bits than half, so the final round-to-nearest-even is then exact).
uint16_t double_to_half(double d) {
  float f = float(d);
  if (std::isfinite(f) && double(f) != d) {
    if (std::abs(double(f)) > std::abs(d)) f = std::nextafter(f, 0.0f);  // truncate
    uint32_t bits;
    std::memcpy(&bits, &f, 4);
    bits |= 1u;  // sticky
    std::memcpy(&f, &bits, 4);
  }
  return float_to_half(f);
}

template <class D, class S>
D convert(S v) {
  if constexpr (std::is_same_v<D, bool>) {
    return v != S(0);
  } else if constexpr (std::is_same_v<S, bool>) {
    return D(v ? 1 : 0);
  } else {
    return saturate_cast<D>(v);
  }
}

void cast_tensor(const Tensor& x, Tensor& y) {
  const DType from = x.dtype(), to = y.dtype();
  const int64_t n = x.numel();
  if (from == to) {
    if (x.nbytes()) std::memcpy(y.raw(), x.raw(), x.nbytes());
    return;
  }
  if (from == DType::F16) {
    if (to == DType::F32) {
      unary_map(half_data(x), y.data<float>(), n, [](uint16_t h) { return half_to_float(h); });
      return;
    }
    const Tensor f = widen_half(x);
    cast_tensor(f, y);
    return;
  }
  if (to == DType::F16) {
    uint16_t* o = half_data(y);
    if (from == DType::F64) {
      unary_map(x.data<double>(), o, n, [](double v) { return double_to_half(v); });
      return;
    }
    dispatch_dtype(from, [&](auto tag) {
      using S = decltype(tag);
      unary_map(x.data<S>(), o, n, [](S v) { return float_to_half(convert<float>(v)); });
    });
    return;
  }
  dispatch_dtype(from, [&](auto stag) {
    using S = decltype(stag);
    dispatch_dtype(to, [&](auto dtag) {
      using D = decltype(dtag);
      unary_map(x.data<S>(), y.data<D>(), n, [](S v) { return convert<D>(v); });
    });
  });
}

void check_cast_target(DType to, int64_t onnx_to) {
  if (onnx_to == 8 || to == DType::String)
    fail("Cast to string is not supported (tensors hold numbers and bools only)");
  if (onnx_to == 16) fail("Cast to bfloat16 is not supported");
  ENGINE_CHECK(to != DType::Undefined, "Cast: unsupported target type 'to' = ", onnx_to,
               " (supported: float16/32/64, int8/16/32/64, uint8/16/32/64, bool)");
}

void check_cast_source(DType from) {
  if (from == DType::String) fail("Cast from string is not supported");
  check_type(from, kAllTypes, "input 0");
}

void cast_validate(const Node& n) {
  const int64_t to = n.attrs.get_int("to");
  check_cast_target(dtype_from_onnx(int(to)), to);
}

void cast_infer(InferContext& ctx) {
  check_cast_source(ctx.dtype(0));
  const int64_t to = ctx.attrs().get_int("to");
  const DType t = dtype_from_onnx(int(to));
  check_cast_target(t, to);
  ctx.set_output(0, t, ctx.shape(0));
}

void castlike_infer(InferContext& ctx) {
  check_cast_source(ctx.dtype(0));
  check_cast_source(ctx.dtype(1));
  ctx.set_output(0, ctx.dtype(1), ctx.shape(0));
}

}  // namespace

void register_elementwise_ops(OpRegistry& r) {
  // Binary arithmetic.
  add_arith(r, "Add", [](KernelContext& kc) {
    run_binary_numeric(kc, [](auto p, auto q) { return wrap_add(p, q); });
  });
  add_arith(r, "Sub", [](KernelContext& kc) {
    run_binary_numeric(kc, [](auto p, auto q) { return wrap_sub(p, q); });
  });
  add_arith(r, "Mul", [](KernelContext& kc) {
    run_binary_numeric(kc, [](auto p, auto q) { return wrap_mul(p, q); });
  });
  add_arith(r, "Div", [](KernelContext& kc) {
    check_no_integer_zero(kc.in(1), "Div");
    run_binary_numeric(kc, [](auto p, auto q) { return div_op(p, q); });
  });
  r.add(schema(
      "Mod", 2, 2,
      [](InferContext& ctx) {
        const DType t = infer_broadcast(ctx, kNumericTypes, DType::Undefined);
        ENGINE_CHECK(!dtype_is_float(t) || ctx.attrs().get_int("fmod", 0) == 1,
                     "Mod on floating-point inputs requires fmod = 1");
      },
      [](KernelContext& kc) {
        check_no_integer_zero(kc.in(1), "Mod");
        const bool fm = kc.attrs().get_int("fmod", 0) != 0;
        run_binary_numeric(kc, [fm](auto p, auto q) { return mod_op(p, q, fm); });
      },
      [](const Node& n) {
        const int64_t f = n.attrs.get_int("fmod", 0);
        ENGINE_CHECK(f == 0 || f == 1, "attribute 'fmod' must be 0 or 1, got ", f);
      }));
  r.add(with_legacy_broadcast(schema("Pow", 2, 2, pow_infer, pow_kernel)));

  // Comparisons and logic.
  add_compare(r, "Equal", kAllTypes, [](auto p, auto q) { return p == q; });
  add_compare(r, "Less", kNumericTypes, [](auto p, auto q) { return p < q; });
  add_compare(r, "Greater", kNumericTypes, [](auto p, auto q) { return p > q; });
  add_compare(r, "LessOrEqual", kNumericTypes, [](auto p, auto q) { return p <= q; });
  add_compare(r, "GreaterOrEqual", kNumericTypes, [](auto p, auto q) { return p >= q; });
  add_compare(r, "And", kBoolType, [](auto p, auto q) { return bool(p) && bool(q); });
  add_compare(r, "Or", kBoolType, [](auto p, auto q) { return bool(p) || bool(q); });
  add_compare(r, "Xor", kBoolType, [](auto p, auto q) { return bool(p) != bool(q); });
  r.add(schema("Not", 1, 1, same_as_input(kBoolType), [](KernelContext& kc) {
    const Tensor& x = kc.in(0);
    unary_map(x.data<bool>(), kc.out(0).data<bool>(), x.numel(), [](bool v) { return !v; });
  }));

  // Variadic.
  add_variadic(r, "Max", kNumericTypes, false, [](auto p, auto q) { return max_op(p, q); });
  add_variadic(r, "Min", kNumericTypes, false, [](auto p, auto q) { return min_op(p, q); });
  add_variadic(r, "Sum", kNumericTypes, false, [](auto p, auto q) { return wrap_add(p, q); });
  add_variadic(r, "Mean", kFloatTypes, true, [](auto p, auto q) { return p + q; });

  r.add(schema("Where", 3, 3, where_infer, where_kernel));

  // Unary math.
  add_unary_float(r, "Sqrt", [](auto v) { return std::sqrt(v); });
  add_unary_float(r, "Exp", [](auto v) { return std::exp(v); });
  add_unary_float(r, "Log", [](auto v) { return std::log(v); });
  add_unary_float(r, "Reciprocal", [](auto v) { return decltype(v)(1) / v; });
  add_unary_float(r, "Floor", [](auto v) { return std::floor(v); });
  add_unary_float(r, "Ceil", [](auto v) { return std::ceil(v); });
  add_unary_float(r, "Round", [](auto v) { return std::nearbyint(v); });  // half to even
  add_unary_float(r, "Sin", [](auto v) { return std::sin(v); });
  add_unary_float(r, "Cos", [](auto v) { return std::cos(v); });
  add_unary_float(r, "Tan", [](auto v) { return std::tan(v); });
  add_unary_float(r, "Asin", [](auto v) { return std::asin(v); });
  add_unary_float(r, "Acos", [](auto v) { return std::acos(v); });
  add_unary_float(r, "Atan", [](auto v) { return std::atan(v); });
  add_unary_float(r, "Sinh", [](auto v) { return std::sinh(v); });
  add_unary_float(r, "Cosh", [](auto v) { return std::cosh(v); });
  add_unary_float(r, "Asinh", [](auto v) { return std::asinh(v); });
  add_unary_float(r, "Acosh", [](auto v) { return std::acosh(v); });
  add_unary_float(r, "Atanh", [](auto v) { return std::atanh(v); });
  r.add(schema("IsNaN", 1, 1, float_to_bool_infer, [](KernelContext& kc) {
    run_float_predicate(kc, [](auto v) { return std::isnan(v); });
  }));
  r.add(schema("IsInf", 1, 1, float_to_bool_infer, [](KernelContext& kc) {
    const bool neg = kc.attrs().get_int("detect_negative", 1) != 0;
    const bool pos = kc.attrs().get_int("detect_positive", 1) != 0;
    run_float_predicate(kc, [neg, pos](auto v) { return std::isinf(v) && (v > 0 ? pos : neg); });
  }));
  r.add(schema(
      "BitShift", 2, 2,
      [](InferContext& ctx) { infer_broadcast(ctx, kUnsignedIntTypes, DType::Undefined); },
      [](KernelContext& kc) {
        const bool left = kc.attrs().get_string("direction") == "LEFT";
        run_binary_numeric(kc, [left](auto p, auto q) {
          using T = decltype(p);
          if constexpr (std::is_unsigned_v<T>) {
            if (q >= T(sizeof(T) * 8)) return T(0);  // shifting by the width is undefined in C++
            return left ? T(p << q) : T(p >> q);
          } else {
            return p;  // not reached: inference admits unsigned types only
          }
        });
      },
      [](const Node& n) {
        const std::string d = n.attrs.get_string("direction");
        ENGINE_CHECK(d == "LEFT" || d == "RIGHT",
                     "attribute 'direction' must be LEFT or RIGHT, got '", d, "'");
      }));
  add_unary_numeric(r, "Neg", kFloatTypes | kSignedIntTypes, [](auto v) {
    using T = decltype(v);
    if constexpr (std::is_integral_v<T>)
      return wrap_sub(T(0), v);
    else
      return -v;
  });
  add_unary_numeric(r, "Abs", kNumericTypes, [](auto v) {
    using T = decltype(v);
    if constexpr (std::is_unsigned_v<T>)
      return v;
    else if constexpr (std::is_integral_v<T>)
      return v < 0 ? wrap_sub(T(0), v) : v;
    else
      return std::abs(v);
  });
  add_unary_numeric(r, "Sign", kNumericTypes, [](auto v) {
    using T = decltype(v);
    if constexpr (std::is_unsigned_v<T>) {
      return v > T(0) ? T(1) : T(0);
    } else {
      if constexpr (std::is_floating_point_v<T>) {
        if (std::isnan(v)) return v;
      }
      return v > T(0) ? T(1) : (v < T(0) ? T(-1) : T(0));
    }
  });

  // Cast.
  OpSchema cast = schema(
      "Cast", 1, 1, cast_infer, [](KernelContext& kc) { cast_tensor(kc.in(0), kc.out(0)); },
      cast_validate);
  r.add(cast);
  r.add(schema("CastLike", 2, 2, castlike_infer,
               [](KernelContext& kc) { cast_tensor(kc.in(0), kc.out(0)); }));
}

}  // namespace engine
