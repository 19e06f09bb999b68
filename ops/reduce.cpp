// Reductions: ReduceSum, ReduceMean, ReduceMax, ReduceMin, ReduceProd, ReduceL1, ReduceL2,
// ReduceSumSquare, ReduceLogSum, ReduceLogSumExp.
//
// Axes come from the 'axes' attribute (ReduceSum before opset 13, the others before opset 18)
// or from the optional second input (later opsets); either form is accepted at any opset, both
// together are rejected. Empty axes reduce everything unless noop_with_empty_axes = 1, in which
// case nothing is reduced (the per-element transform, e.g. the square of ReduceSumSquare, still
// applies, as in the ONNX reference implementation). float16 is computed in float32.
#include <algorithm>
#include <cmath>
#include <limits>
#include <type_traits>

#include "ops/broadcast.h"
#include "ops/ops.h"

namespace engine {
namespace {

using namespace bcast;

enum class Kind { Sum, Mean, Max, Min, Prod, L1, L2, SumSquare, LogSum, LogSumExp };

// Which dims are reduced; empty axes -> all (or none with noop_with_empty_axes).
std::vector<char> reduce_mask(const Node& node, const Dims& shape, const Tensor* axes_input) {
  const int r = int(shape.size());
  std::vector<int64_t> axes;
  const bool has_attr = node.attrs.has("axes");
  if (axes_input) {
    ENGINE_CHECK(!has_attr, "axes are given both as attribute and as input 1");
    ENGINE_CHECK(axes_input->dtype() == DType::I64 || axes_input->dtype() == DType::I32,
                 "axes (input 1) must be int64, got ", dtype_name(axes_input->dtype()));
    ENGINE_CHECK(axes_input->rank() <= 1, "axes (input 1) must be 1-D, got shape ",
                 dims_str(axes_input->shape()));
    axes = axes_input->to_int_vector();
  } else if (has_attr) {
    axes = node.attrs.get_ints("axes");
  }
  const bool noop = node.attrs.get_int("noop_with_empty_axes", 0) != 0;
  std::vector<char> mask(size_t(r), axes.empty() && !noop ? 1 : 0);
  for (int64_t a : axes) {
    ENGINE_CHECK(a >= -r && a < r, "axis ", a, " is out of range for an input of rank ", r);
    const size_t d = size_t(a < 0 ? a + r : a);
    ENGINE_CHECK(!mask[d], "axis ", a, " is given twice");
    mask[d] = 1;
  }
  return mask;
}

Dims reduced_shape(const Dims& shape, const std::vector<char>& mask, bool keepdims) {
  Dims out;
  for (size_t d = 0; d < shape.size(); ++d) {
    if (!mask[d])
      out.push_back(shape[d]);
    else if (keepdims)
      out.push_back(1);
  }
  return out;
}

// The input seen as groups of adjacent dims that are all reduced or all kept.
struct Layout {
  int64_t out_numel = 1;
  int64_t count = 1;  // elements reduced into each output
  // At most one reduced group: input = [outer, R, inner], output = [outer, inner].
  bool simple = true;
  int64_t outer = 1, R = 1, inner = 1;
  // Otherwise: kept groups (sizes, input strides) and the offsets of one reduction window.
  Dims kept_sizes;
  std::vector<int64_t> kept_strides;
  std::vector<int64_t> red_offsets;
};

Layout make_layout(const Dims& shape, const std::vector<char>& mask) {
  struct Group {
    int64_t size, stride;
    bool red;
  };
  std::vector<Group> groups;
  int64_t stride = 1;
  for (size_t d = shape.size(); d-- > 0;) {  // innermost first
    const int64_t n = shape[d];
    if (n != 1) {
      if (!groups.empty() && groups.back().red == bool(mask[d]))
        groups.back().size *= n;
      else
        groups.push_back({n, stride, bool(mask[d])});
    }
    stride *= n;
  }
  std::reverse(groups.begin(), groups.end());
  Layout l;
  int nred = 0;
  for (const Group& g : groups) {
    if (g.red) {
      l.count *= g.size;
      ++nred;
    } else {
      l.out_numel *= g.size;
    }
  }
  if (nred <= 1) {
    bool after = false;
    for (const Group& g : groups) {
      if (g.red) {
        l.R = g.size;
        after = true;
      } else {
        (after ? l.inner : l.outer) *= g.size;
      }
    }
    return l;
  }
  l.simple = false;
  std::vector<Group> red;
  for (const Group& g : groups) {
    if (g.red) {
      red.push_back(g);
    } else {
      l.kept_sizes.push_back(g.size);
      l.kept_strides.push_back(g.stride);
    }
  }
  if (l.count == 0) return l;
  l.red_offsets.reserve(size_t(l.count));
  std::vector<int64_t> idx(red.size(), 0);
  int64_t off = 0;
  for (int64_t i = 0; i < l.count; ++i) {
    l.red_offsets.push_back(off);
    for (size_t d = red.size(); d-- > 0;) {
      off += red[d].stride;
      if (++idx[d] < red[d].size) break;
      off -= red[d].size * red[d].stride;
      idx[d] = 0;
    }
  }
  return l;
}

// Calls step(out_index, in_offset) for every input element, each output's elements in input
// order. Work is parallel over outputs; one output is never split between threads.
template <class Step>
void reduce_core(const Layout& l, Step step) {
  if (l.simple) {
    constexpr int64_t kChunk = 64;
    const int64_t chunks = (l.inner + kChunk - 1) / kChunk;
    parallel_tasks(l.outer * chunks, l.R * std::min(l.inner, kChunk), [&](int64_t task) {
      const int64_t o = task / chunks, j0 = (task % chunks) * kChunk;
      const int64_t j1 = std::min(l.inner, j0 + kChunk);
      for (int64_t r = 0; r < l.R; ++r) {
        const int64_t base = (o * l.R + r) * l.inner;
        for (int64_t j = j0; j < j1; ++j) step(o * l.inner + j, base + j);
      }
    });
    return;
  }
  const int64_t nr = int64_t(l.red_offsets.size());
  parallel_tasks(l.out_numel, nr, [&](int64_t o) {
    int64_t base = 0, rest = o;
    for (size_t d = l.kept_sizes.size(); d-- > 0;) {
      base += (rest % l.kept_sizes[d]) * l.kept_strides[d];
      rest /= l.kept_sizes[d];
    }
    for (int64_t i = 0; i < nr; ++i) step(o, base + l.red_offsets[size_t(i)]);
  });
}

template <class T, Kind K>
void reduce_typed(const T* x, T* y, const Layout& l) {
  constexpr bool kFloatAcc =
      std::is_floating_point_v<T> || K == Kind::L2 || K == Kind::LogSum || K == Kind::LogSumExp;
  using A = std::conditional_t<kFloatAcc, double,
                               std::conditional_t<std::is_signed_v<T>, int64_t, uint64_t>>;
  A init = A(0);
  if constexpr (K == Kind::Prod) init = A(1);
  if constexpr (K == Kind::Max) {
    if constexpr (std::is_floating_point_v<A>)
      init = -std::numeric_limits<A>::infinity();
    else
      init = A(std::numeric_limits<T>::lowest());
  }
  if constexpr (K == Kind::Min) {
    if constexpr (std::is_floating_point_v<A>)
      init = std::numeric_limits<A>::infinity();
    else
      init = A(std::numeric_limits<T>::max());
  }
  std::vector<A> acc(size_t(l.out_numel), init);
  std::vector<double> mx;  // LogSumExp: per-output maximum
  if constexpr (K == Kind::LogSumExp) {
    mx.assign(size_t(l.out_numel), -std::numeric_limits<double>::infinity());
    reduce_core(l, [&](int64_t o, int64_t i) {
      const double v = double(x[i]);
      if (v > mx[size_t(o)] || std::isnan(v)) mx[size_t(o)] = v;
    });
  }
  reduce_core(l, [&](int64_t o, int64_t i) {
    A& a = acc[size_t(o)];
    const A v = A(x[i]);
    if constexpr (K == Kind::Sum || K == Kind::Mean || K == Kind::LogSum) {
      a = wrap_add(a, v);
    } else if constexpr (K == Kind::Max || K == Kind::Min) {
      if (K == Kind::Max ? v > a : v < a) a = v;
      if constexpr (std::is_floating_point_v<A>) {
        if (std::isnan(v)) a = v;  // NaN propagates
      }
    } else if constexpr (K == Kind::Prod) {
      a = wrap_mul(a, v);
    } else if constexpr (K == Kind::L1) {
      if constexpr (std::is_signed_v<A>)
        a = wrap_add(a, v < 0 ? wrap_sub(A(0), v) : v);
      else
        a = wrap_add(a, v);
    } else if constexpr (K == Kind::L2 || K == Kind::SumSquare) {
      a = wrap_add(a, wrap_mul(v, v));
    } else if constexpr (K == Kind::LogSumExp) {
      a += std::exp(v - mx[size_t(o)]);
    }
  });
  const int64_t count = l.count;
  parallel_chunks(l.out_numel, [&](int64_t b, int64_t e) {
    for (int64_t o = b; o < e; ++o) {
      const A a = acc[size_t(o)];
      if constexpr (K == Kind::Mean) {
        if constexpr (std::is_floating_point_v<A>)
          y[o] = T(a / A(count));
        else
          y[o] = count ? T(a / A(count)) : T(0);
      } else if constexpr (K == Kind::L2) {
        y[o] = saturate_cast<T>(std::sqrt(a));
      } else if constexpr (K == Kind::LogSum) {
        y[o] = saturate_cast<T>(std::log(a));
      } else if constexpr (K == Kind::LogSumExp) {
        const double m = mx[size_t(o)];
        y[o] = saturate_cast<T>(std::isfinite(m) ? m + std::log(a) : m);
      } else {
        y[o] = T(a);
      }
    }
  });
}

template <Kind K>
void reduce_kernel(KernelContext& kc) {
  const Tensor& x = kc.in(0);
  Tensor& y = kc.out(0);
  const std::vector<char> mask =
      reduce_mask(kc.node, x.shape(), kc.has_input(1) ? &kc.in(1) : nullptr);
  const Layout l = make_layout(x.shape(), mask);
  if (x.dtype() == DType::F16) {
    const Tensor x32 = widen_half(x);
    Tensor y32(DType::F32, y.shape());
    reduce_typed<float, K>(x32.data<float>(), y32.data<float>(), l);
    narrow_to_half(y32, y);
    return;
  }
  dispatch_numeric(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    reduce_typed<T, K>(x.data<T>(), y.data<T>(), l);
  });
}

void reduce_infer(InferContext& ctx) {
  check_type(ctx.dtype(0), kNumericTypes, "input 0");
  const Tensor* axes = nullptr;
  if (ctx.has_input(1)) axes = &ctx.value(1);  // the output shape depends on the axes
  const std::vector<char> mask = reduce_mask(ctx.node(), ctx.shape(0), axes);
  ctx.set_output(0, ctx.dtype(0),
                 reduced_shape(ctx.shape(0), mask, ctx.attrs().get_int("keepdims", 1) != 0));
}

void reduce_validate(const Node& n) {
  const int64_t keep = n.attrs.get_int("keepdims", 1);
  ENGINE_CHECK(keep == 0 || keep == 1, "attribute 'keepdims' must be 0 or 1, got ", keep);
  const int64_t noop = n.attrs.get_int("noop_with_empty_axes", 0);
  ENGINE_CHECK(noop == 0 || noop == 1, "attribute 'noop_with_empty_axes' must be 0 or 1, got ",
               noop);
}

template <Kind K>
void add_reduce(OpRegistry& r, const char* name) {
  OpSchema s;
  s.op_type = name;
  s.min_inputs = 1;
  s.max_inputs = 2;
  s.infer = reduce_infer;
  s.kernel = reduce_kernel<K>;
  s.validate = reduce_validate;
  r.add(std::move(s));
}

}  // namespace

void register_reduce_ops(OpRegistry& r) {
  add_reduce<Kind::Sum>(r, "ReduceSum");
  add_reduce<Kind::Mean>(r, "ReduceMean");
  add_reduce<Kind::Max>(r, "ReduceMax");
  add_reduce<Kind::Min>(r, "ReduceMin");
  add_reduce<Kind::Prod>(r, "ReduceProd");
  add_reduce<Kind::L1>(r, "ReduceL1");
  add_reduce<Kind::L2>(r, "ReduceL2");
  add_reduce<Kind::SumSquare>(r, "ReduceSumSquare");
  add_reduce<Kind::LogSum>(r, "ReduceLogSum");
  add_reduce<Kind::LogSumExp>(r, "ReduceLogSumExp");
}

}  // namespace engine
