// numpy-style (multidirectional) broadcasting, plus small helpers shared by the elementwise,
// activation and reduction kernels (parallel loops, float16 staging, type dispatch).
//
// Broadcasting rule (ONNX "multidirectional broadcasting" == numpy): shapes are aligned at their
// trailing dimensions; each pair of dimensions must be equal or one of them must be 1; the
// output dimension is the larger one (a 0 paired with 1 gives 0).
//
// Iteration: Indexer collapses the output shape into as few dimensions as possible (adjacent
// dimensions merge when every input is broadcast in both or in neither of them; size-1 output
// dims vanish), so same-shape inputs become one flat run and a scalar input gets stride 0. The
// caller receives contiguous "segments" of the output; within a segment input k advances by
// inner_stride(k), which is 0 (broadcast) or 1 (contiguous), so inner loops vectorize.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>
#include <vector>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "core/dtype.h"
#include "core/error.h"
#include "core/tensor.h"

namespace engine::bcast {

// Loops over fewer elements than this run on one thread (thread start-up would dominate).
constexpr int64_t kParallelMin = int64_t(1) << 15;

// Output shape of broadcasting a with b. Throws naming both shapes and the offending dimension.
inline Dims broadcast_shape(const Dims& a, const Dims& b) {
  const size_t r = std::max(a.size(), b.size());
  Dims out(r);
  for (size_t i = 0; i < r; ++i) {  // i counts from the last dimension
    const int64_t x = i < a.size() ? a[a.size() - 1 - i] : 1;
    const int64_t y = i < b.size() ? b[b.size() - 1 - i] : 1;
    ENGINE_CHECK(x >= 0 && y >= 0, "negative dimension in shapes ", dims_str(a), " and ",
                 dims_str(b));
    if (x != y && x != 1 && y != 1)
      fail("input shapes ", dims_str(a), " and ", dims_str(b),
           " are not broadcastable (dimension -", i + 1, ": ", x, " vs ", y, ")");
    out[r - 1 - i] = x == 1 ? y : x;
  }
  return out;
}

// Output shape of broadcasting all shapes together (at least one shape).
inline Dims broadcast_shapes(const std::vector<Dims>& shapes) {
  ENGINE_CHECK(!shapes.empty(), "broadcast of zero shapes");
  Dims out = shapes[0];
  for (size_t i = 1; i < shapes.size(); ++i) out = broadcast_shape(out, shapes[i]);
  return out;
}

// Unidirectional broadcasting (PRelu slope, Expand-like): can `from` be broadcast to exactly
// `to` without changing `to`?
inline bool broadcastable_to(const Dims& from, const Dims& to) {
  if (from.size() > to.size()) return false;
  for (size_t i = 0; i < from.size(); ++i) {
    const int64_t f = from[from.size() - 1 - i], t = to[to.size() - 1 - i];
    if (f != t && f != 1) return false;
  }
  return true;
}

// Walks the output of a broadcast in contiguous segments, tracking each input's offset.
class Indexer {
 public:
  // Every input shape must broadcast (unidirectionally) to `out`.
  Indexer(const Dims& out, const std::vector<Dims>& ins) : nin_(int(ins.size())) {
    numel_ = checked_numel(out);
    const size_t r = out.size();
    std::vector<std::vector<char>> full(ins.size());  // full[k][d]: input k not broadcast in d
    for (size_t k = 0; k < ins.size(); ++k) {
      ENGINE_CHECK(broadcastable_to(ins[k], out), "input shape ", dims_str(ins[k]),
                   " does not broadcast to ", dims_str(out));
      full[k].assign(r, 0);
      const size_t off = r - ins[k].size();
      for (size_t d = 0; d < ins[k].size(); ++d) full[k][off + d] = ins[k][d] == out[off + d];
    }
    // Collapse: drop size-1 output dims, merge neighbours with identical broadcast patterns.
    std::vector<std::vector<char>> gflags;  // per group: flags per input
    for (size_t d = 0; d < r; ++d) {
      if (out[d] == 1) continue;
      std::vector<char> f(ins.size());
      for (size_t k = 0; k < ins.size(); ++k) f[k] = full[k][d];
      if (!dims_.empty() && gflags.back() == f) {
        dims_.back() *= out[d];
      } else {
        dims_.push_back(out[d]);
        gflags.push_back(std::move(f));
      }
    }
    if (dims_.empty()) {  // every dim is 1 (or rank 0): a single element
      dims_.push_back(1);
      gflags.push_back(std::vector<char>(ins.size(), 1));
    }
    const size_t nd = dims_.size();
    strides_.assign(size_t(nin_) * nd, 0);
    for (int k = 0; k < nin_; ++k) {
      int64_t acc = 1;
      for (size_t g = nd; g-- > 0;) {
        if (gflags[g][size_t(k)]) {
          strides_[size_t(k) * nd + g] = acc;
          acc *= dims_[g];
        }
      }
    }
  }

  int num_inputs() const { return nin_; }
  int64_t numel() const { return numel_; }
  // Length of the innermost collapsed dimension (the longest possible segment).
  int64_t inner() const { return dims_.back(); }
  // 0 if input k is broadcast along the innermost dimension, else 1.
  int64_t inner_stride(int k) const {
    return strides_[size_t(k) * dims_.size() + dims_.size() - 1];
  }
  // Collapsed output dims (for diagnostics and tests).
  const Dims& collapsed_dims() const { return dims_; }

  // Calls f(out_offset, in_offsets, n) for consecutive segments covering output elements
  // [begin, end). in_offsets[k] is the offset of input k at out_offset; within the segment the
  // offset of input k at out_offset + i is in_offsets[k] + i * inner_stride(k).
  template <class F>
  void for_segments(int64_t begin, int64_t end, F&& f) const {
    if (begin >= end) return;
    const size_t nd = dims_.size();
    const int64_t inner_len = dims_.back();
    std::vector<int64_t> idx(nd, 0), off(size_t(nin_), 0);
    int64_t j0 = begin % inner_len;
    int64_t rest = begin / inner_len;
    for (size_t d = nd - 1; d-- > 0;) {
      idx[d] = rest % dims_[d];
      rest /= dims_[d];
    }
    for (int k = 0; k < nin_; ++k) {
      int64_t o = 0;
      for (size_t d = 0; d + 1 < nd; ++d) o += idx[d] * strides_[size_t(k) * nd + d];
      off[size_t(k)] = o + j0 * strides_[size_t(k) * nd + nd - 1];
    }
    int64_t pos = begin;
    while (pos < end) {
      const int64_t n = std::min(inner_len - j0, end - pos);
      f(pos, static_cast<const int64_t*>(off.data()), n);
      pos += n;
      if (pos >= end) break;
      // Next run: rewind the inner position, then advance the odometer of the outer dims.
      for (int k = 0; k < nin_; ++k) off[size_t(k)] -= j0 * strides_[size_t(k) * nd + nd - 1];
      j0 = 0;
      for (size_t d = nd - 1; d-- > 0;) {
        ++idx[d];
        for (int k = 0; k < nin_; ++k) off[size_t(k)] += strides_[size_t(k) * nd + d];
        if (idx[d] < dims_[d]) break;
        for (int k = 0; k < nin_; ++k) off[size_t(k)] -= dims_[d] * strides_[size_t(k) * nd + d];
        idx[d] = 0;
      }
    }
  }

 private:
  int nin_ = 0;
  int64_t numel_ = 0;
  Dims dims_;                     // collapsed output dims
  std::vector<int64_t> strides_;  // [k * ndims + d], element strides (0 = broadcast)
};

// Splits [0, n) into one contiguous chunk per thread and calls f(begin, end) for each (serially
// for small n). f must not throw.
template <class F>
void parallel_chunks(int64_t n, F&& f) {
  if (n <= 0) return;
#ifdef _OPENMP
  if (n >= kParallelMin && omp_get_max_threads() > 1 && !omp_in_parallel()) {
#pragma omp parallel
    {
      const int64_t nt = omp_get_num_threads(), t = omp_get_thread_num();
      const int64_t b = n / nt * t + std::min<int64_t>(t, n % nt);
      const int64_t e = b + n / nt + (t < n % nt ? 1 : 0);
      f(b, e);
    }
    return;
  }
#endif
  f(int64_t(0), n);
}

// Like parallel_chunks, for tasks that each cost about `work_per_task` elements.
template <class F>
void parallel_tasks(int64_t ntasks, int64_t work_per_task, F&& f) {
  if (ntasks <= 0) return;
#ifdef _OPENMP
  if (ntasks > 1 && ntasks * std::max<int64_t>(work_per_task, 1) >= kParallelMin &&
      omp_get_max_threads() > 1 && !omp_in_parallel()) {
#pragma omp parallel for schedule(static)
    for (int64_t t = 0; t < ntasks; ++t) f(t);
    return;
  }
#endif
  for (int64_t t = 0; t < ntasks; ++t) f(t);
}

// Runs f(out_offset, in_offsets, n) over all segments of ix, split among threads.
template <class F>
void parallel_segments(const Indexer& ix, F&& f) {
  parallel_chunks(ix.numel(), [&](int64_t b, int64_t e) { ix.for_segments(b, e, f); });
}

// out[i] = op(a[ia], b[ib]) with numpy broadcasting; out has shape broadcast(as, bs) == os.
// The same-shape and scalar cases collapse to one flat loop.
template <class A, class B, class R, class Op>
void binary_map(const A* a, const Dims& as, const B* b, const Dims& bs, R* out, const Dims& os,
                Op op) {
  const Indexer ix(os, {as, bs});
  const int64_t sa = ix.inner_stride(0), sb = ix.inner_stride(1);
  parallel_segments(ix, [&](int64_t o, const int64_t* in, int64_t n) {
    const A* pa = a + in[0];
    const B* pb = b + in[1];
    R* po = out + o;
    if (sa && sb) {
      for (int64_t i = 0; i < n; ++i) po[i] = op(pa[i], pb[i]);
    } else if (sa) {
      const B vb = *pb;
      for (int64_t i = 0; i < n; ++i) po[i] = op(pa[i], vb);
    } else if (sb) {
      const A va = *pa;
      for (int64_t i = 0; i < n; ++i) po[i] = op(va, pb[i]);
    } else {
      const R v = op(*pa, *pb);
      for (int64_t i = 0; i < n; ++i) po[i] = v;
    }
  });
}

// Copies x (shape xs) broadcast into y (shape ys), e.g. for Expand.
template <class T>
void broadcast_copy(const T* x, const Dims& xs, T* y, const Dims& ys) {
  const Indexer ix(ys, {xs});
  const int64_t s = ix.inner_stride(0);
  parallel_segments(ix, [&](int64_t o, const int64_t* in, int64_t n) {
    if (s) {
      std::memcpy(y + o, x + in[0], size_t(n) * sizeof(T));
    } else {
      for (int64_t i = 0; i < n; ++i) y[o + i] = x[in[0]];
    }
  });
}

// out[i] = op(x[i]) over n elements, in parallel for large n.
template <class T, class R, class Op>
void unary_map(const T* x, R* out, int64_t n, Op op) {
  parallel_chunks(n, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) out[i] = op(x[i]);
  });
}

// ---- float16 staging: kernels compute float16 tensors in float32 ----

inline const uint16_t* half_data(const Tensor& t) {
  ENGINE_CHECK(t.dtype() == DType::F16, "expected a float16 tensor, got ", dtype_name(t.dtype()));
  return static_cast<const uint16_t*>(t.raw());
}
inline uint16_t* half_data(Tensor& t) {
  ENGINE_CHECK(t.dtype() == DType::F16, "expected a float16 tensor, got ", dtype_name(t.dtype()));
  return static_cast<uint16_t*>(t.raw());
}

// A float32 copy of a float16 tensor (other tensors are returned as is, sharing storage).
inline Tensor widen_half(const Tensor& t) {
  if (t.dtype() != DType::F16) return t;
  Tensor f(DType::F32, t.shape());
  unary_map(half_data(t), f.data<float>(), t.numel(), [](uint16_t h) { return half_to_float(h); });
  return f;
}

// Writes float32 `src` into float16 `dst` of the same element count.
inline void narrow_to_half(const Tensor& src, Tensor& dst) {
  ENGINE_CHECK(src.numel() == dst.numel(), "float16 store: size mismatch");
  unary_map(src.data<float>(), half_data(dst), src.numel(),
            [](float f) { return float_to_half(f); });
}

// ---- type sets and dispatch ----

using TypeSet = uint32_t;
constexpr TypeSet type_bit(DType t) {
  return TypeSet(1) << unsigned(int(t));
}
constexpr TypeSet kFloatTypes = type_bit(DType::F16) | type_bit(DType::F32) | type_bit(DType::F64);
constexpr TypeSet kSignedIntTypes =
    type_bit(DType::I8) | type_bit(DType::I16) | type_bit(DType::I32) | type_bit(DType::I64);
constexpr TypeSet kUnsignedIntTypes =
    type_bit(DType::U8) | type_bit(DType::U16) | type_bit(DType::U32) | type_bit(DType::U64);
constexpr TypeSet kIntTypes = kSignedIntTypes | kUnsignedIntTypes;
constexpr TypeSet kNumericTypes = kFloatTypes | kIntTypes;
constexpr TypeSet kBoolType = type_bit(DType::Bool);
constexpr TypeSet kAllTypes = kNumericTypes | kBoolType;

inline bool in_set(DType t, TypeSet s) {
  return int(t) >= 0 && int(t) < 32 && (s & type_bit(t)) != 0;
}

inline std::string type_set_str(TypeSet s) {
  std::string r;
  for (int i = 1; i < 32; ++i)
    if (s & (TypeSet(1) << unsigned(i)))
      r += (r.empty() ? "" : ", ") + std::string(dtype_name(DType(i)));
  return r;
}

// Throws "<what> has type X; supported: ..." unless t is in s.
inline void check_type(DType t, TypeSet s, const char* what) {
  if (!in_set(t, s)) fail(what, " has type ", dtype_name(t), "; supported: ", type_set_str(s));
}

// Calls f(T{}) for the C++ type of a numeric dtype (no bool, no float16).
template <class F>
auto dispatch_numeric(DType t, F&& f) {
  switch (t) {
    case DType::F32:
      return f(float{});
    case DType::F64:
      return f(double{});
    case DType::U8:
      return f(uint8_t{});
    case DType::I8:
      return f(int8_t{});
    case DType::U16:
      return f(uint16_t{});
    case DType::I16:
      return f(int16_t{});
    case DType::I32:
      return f(int32_t{});
    case DType::I64:
      return f(int64_t{});
    case DType::U32:
      return f(uint32_t{});
    case DType::U64:
      return f(uint64_t{});
    default:
      break;
  }
  fail("unsupported element type ", dtype_name(t));
}

// Calls f(T{}) for float32 / float64.
template <class F>
auto dispatch_float(DType t, F&& f) {
  switch (t) {
    case DType::F32:
      return f(float{});
    case DType::F64:
      return f(double{});
    default:
      break;
  }
  fail("unsupported element type ", dtype_name(t), " (expected float32 or float64)");
}

// Wrapping integer arithmetic (signed overflow is undefined in C++; ONNX runtimes wrap).
template <class T>
T wrap_add(T a, T b) {
  if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>) {
    using U = std::make_unsigned_t<T>;
    return T(U(U(a) + U(b)));
  } else {
    return a + b;
  }
}
template <class T>
T wrap_sub(T a, T b) {
  if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>) {
    using U = std::make_unsigned_t<T>;
    return T(U(U(a) - U(b)));
  } else {
    return a - b;
  }
}
template <class T>
T wrap_mul(T a, T b) {
  if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>) {
    using U = std::make_unsigned_t<T>;
    using W = std::conditional_t<(sizeof(U) < sizeof(unsigned)), unsigned, U>;  // no promotion UB
    return T(U(W(U(a)) * W(U(b))));
  } else {
    return a * b;
  }
}

// Converts a floating value to integer type T: NaN -> 0, out-of-range values saturate
// (C++ leaves these undefined; ONNX leaves them unspecified).
template <class T, class F>
T saturate_cast(F v) {
  if constexpr (std::is_floating_point_v<F> && std::is_integral_v<T> && !std::is_same_v<T, bool>) {
    if (std::isnan(v)) return T(0);
    if (v <= F(std::numeric_limits<T>::lowest())) return std::numeric_limits<T>::lowest();
    // max() may round up when converted to F (e.g. int64 max -> 2^63); compare with >=.
    if (v >= F(std::numeric_limits<T>::max())) return std::numeric_limits<T>::max();
    return T(v);
  } else {
    return T(v);
  }
}

}  // namespace engine::bcast
