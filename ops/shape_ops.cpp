// Shape and data-movement operators: Flatten, Reshape, Transpose, Concat, Split, Slice, Squeeze,
// Unsqueeze, Shape, Size, Gather, Constant, ConstantOfShape, Expand, Tile, Range, DepthToSpace,
// SpaceToDepth.
//
// Every kernel here moves bytes and never looks at the element values (Range and the index inputs
// aside), so it works for any element type, F16 included: elements are copied by dtype_size.
// Most kernels are expressed as one strided copy (an N-d view of the input with arbitrary element
// strides, written densely to the output), see strided_copy below.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <optional>
#include <sstream>
#include <string>
#include <type_traits>

#include "ops/ops.h"

namespace engine {
namespace {

// ---------------------------------------------------------------------------------------------
// Helpers

// Normalizes an axis in [-rank, rank-1] to [0, rank-1].
int64_t norm_axis(int64_t axis, int64_t rank, const char* what) {
  ENGINE_CHECK(axis >= -rank && axis < rank, what, " ", axis, " is out of range for rank ", rank,
               " (expected [", -rank, ", ", rank - 1, "])");
  return axis < 0 ? axis + rank : axis;
}

int64_t prod(const Dims& d, size_t begin, size_t end) {
  int64_t p = 1;
  for (size_t i = begin; i < end; ++i) p *= d[i];
  return p;
}

std::vector<int64_t> dense_strides(const Dims& d) {
  std::vector<int64_t> s(d.size(), 1);
  for (size_t i = d.size(); i-- > 1;) s[i - 1] = s[i] * d[i];
  return s;
}

std::string ints_str(const std::vector<int64_t>& v) {
  std::ostringstream os;  // (string += on temporaries trips a GCC 12 -Wrestrict false positive)
  os << "[";
  for (size_t i = 0; i < v.size(); ++i) os << (i ? "," : "") << v[i];
  os << "]";
  return os.str();
}

// Copies n bytes unless source and destination are the same buffer (in-place planning).
void copy_bytes(void* dst, const void* src, size_t n) {
  if (n && dst != src) std::memmove(dst, src, n);
}

// Reads an integer 1-D (or scalar) tensor such as a shape, axes or repeats input.
std::vector<int64_t> int_values(const Tensor& t, const char* what) {
  ENGINE_CHECK(dtype_is_integer(t.dtype()), what, " must be an integer tensor, got ",
               dtype_name(t.dtype()));
  ENGINE_CHECK(t.rank() <= 1, what, " must be a 1-D tensor, got shape ", dims_str(t.shape()));
  return t.to_int_vector();
}

template <size_t E>
void copy_row(char* dst, const char* src, int64_t n, int64_t src_stride_bytes) {
  for (int64_t i = 0; i < n; ++i) std::memcpy(dst + i * int64_t(E), src + i * src_stride_bytes, E);
}

// Writes densely into `dst` (shape `shape`) the elements src[offset + sum_i idx_i * strides_i].
// Offsets and strides are in elements and may be zero (broadcast) or negative (reversed).
void strided_copy(const void* src_v, int64_t offset, Dims shape, std::vector<int64_t> strides,
                  void* dst_v, size_t esize) {
  const int64_t total = checked_numel(shape);
  if (total == 0) return;
  // Drop size-1 dims and merge dims that are contiguous with each other in the source.
  Dims d;
  std::vector<int64_t> s;
  for (size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] == 1) continue;
    if (!d.empty() && s.back() == strides[i] * shape[i]) {
      d.back() *= shape[i];
      s.back() = strides[i];
    } else {
      d.push_back(shape[i]);
      s.push_back(strides[i]);
    }
  }
  const char* src = static_cast<const char*>(src_v) + offset * int64_t(esize);
  char* dst = static_cast<char*>(dst_v);
  if (d.empty()) {
    std::memcpy(dst, src, esize);
    return;
  }
  const int64_t inner = d.back();
  const int64_t inner_stride = s.back() * int64_t(esize);
  const int64_t rows = total / inner;
  const int outer_rank = int(d.size()) - 1;
  const int64_t row_bytes = inner * int64_t(esize);
#pragma omp parallel for schedule(static) if (total * int64_t(esize) > (1 << 16))
  for (int64_t r = 0; r < rows; ++r) {
    int64_t off = 0, rem = r;
    for (int k = outer_rank - 1; k >= 0; --k) {
      off += (rem % d[size_t(k)]) * s[size_t(k)];
      rem /= d[size_t(k)];
    }
    const char* sp = src + off * int64_t(esize);
    char* dp = dst + r * row_bytes;
    if (inner_stride == int64_t(esize)) {
      std::memcpy(dp, sp, size_t(row_bytes));
      continue;
    }
    switch (esize) {
      case 1:
        copy_row<1>(dp, sp, inner, inner_stride);
        break;
      case 2:
        copy_row<2>(dp, sp, inner, inner_stride);
        break;
      case 4:
        copy_row<4>(dp, sp, inner, inner_stride);
        break;
      case 8:
        copy_row<8>(dp, sp, inner, inner_stride);
        break;
      default:
        for (int64_t i = 0; i < inner; ++i)
          std::memcpy(dp + i * int64_t(esize), sp + i * inner_stride, esize);
    }
  }
}

// Optional input i whose value must be known at plan time (nullptr when omitted).
const Tensor* known_optional(const InferContext& ctx, int i) {
  return ctx.has_input(i) ? &ctx.value(i) : nullptr;
}
const Tensor* optional_in(const KernelContext& kc, int i) {
  return kc.has_input(i) ? &kc.in(i) : nullptr;
}

void check_input_count(const InferContext& ctx, int min_present, const char* what) {
  for (int i = 0; i < min_present; ++i)
    ENGINE_CHECK(ctx.has_input(i), "required input ", i, " (", what, ") is missing");
}

// ---------------------------------------------------------------------------------------------
// Flatten

Dims flatten_shape(const Dims& in, int64_t axis) {
  const int64_t r = int64_t(in.size());
  ENGINE_CHECK(axis >= -r && axis <= r, "Flatten: attribute axis=", axis,
               " is out of range for rank ", r, " (expected [", -r, ", ", r, "])");
  if (axis < 0) axis += r;
  return {prod(in, 0, size_t(axis)), prod(in, size_t(axis), in.size())};
}

void add_flatten(OpRegistry& reg) {
  OpSchema s;
  s.op_type = "Flatten";
  s.infer = [](InferContext& ctx) {
    ctx.set_output(0, ctx.dtype(0), flatten_shape(ctx.shape(0), ctx.attrs().get_int("axis", 1)));
  };
  s.kernel = [](KernelContext& kc) {
    copy_bytes(kc.out(0).raw(), kc.in(0).raw(), kc.in(0).nbytes());
  };
  reg.add(std::move(s));
}

// ---------------------------------------------------------------------------------------------
// Reshape

Dims reshape_shape(const Dims& in, const std::vector<int64_t>& target, bool allowzero) {
  const int64_t numel = checked_numel(in);
  Dims out(target.size());
  int infer_at = -1;
  bool has_zero = false;
  for (size_t i = 0; i < target.size(); ++i) {
    const int64_t v = target[i];
    if (v == -1) {
      ENGINE_CHECK(infer_at < 0, "Reshape: shape ", ints_str(target),
                   " has more than one -1 dimension");
      infer_at = int(i);
      out[i] = 1;
    } else if (v == 0) {
      has_zero = true;
      if (allowzero) {
        out[i] = 0;
      } else {
        ENGINE_CHECK(i < in.size(), "Reshape: shape ", ints_str(target), " has 0 at index ", i,
                     " (copy the input dimension) but the input ", dims_str(in), " has rank ",
                     in.size());
        out[i] = in[i];
      }
    } else {
      ENGINE_CHECK(v > 0, "Reshape: shape ", ints_str(target), " has invalid dimension ", v);
      out[i] = v;
    }
  }
  ENGINE_CHECK(!(allowzero && has_zero && infer_at >= 0), "Reshape: shape ", ints_str(target),
               " has both 0 and -1, which is invalid with allowzero=1");
  if (infer_at >= 0) {
    const int64_t known = checked_numel(out);
    ENGINE_CHECK(known != 0, "Reshape: cannot infer the -1 dimension of shape ", ints_str(target),
                 " for input ", dims_str(in), ": the other dimensions have product 0");
    ENGINE_CHECK(numel % known == 0, "Reshape: cannot reshape input ", dims_str(in), " (", numel,
                 " elements) to ", ints_str(target), ": ", numel, " is not divisible by ", known);
    out[size_t(infer_at)] = numel / known;
  }
  ENGINE_CHECK(checked_numel(out) == numel, "Reshape: cannot reshape input ", dims_str(in), " (",
               numel, " elements) to shape ", ints_str(target), " = ", dims_str(out), " (",
               checked_numel(out), " elements)");
  return out;
}

void add_reshape(OpRegistry& reg) {
  OpSchema s;
  s.op_type = "Reshape";
  s.max_inputs = 2;
  s.infer = [](InferContext& ctx) {
    std::vector<int64_t> target;
    if (ctx.opset() < 5 && !ctx.has_input(1)) {
      target = ctx.attrs().get_ints("shape");
    } else {
      check_input_count(ctx, 2, "shape");
      target = int_values(ctx.value(1), "Reshape: input 'shape'");
    }
    const bool allowzero = ctx.opset() >= 14 && ctx.attrs().get_int("allowzero", 0) != 0;
    ctx.set_output(0, ctx.dtype(0), reshape_shape(ctx.shape(0), target, allowzero));
  };
  s.kernel = [](KernelContext& kc) {
    copy_bytes(kc.out(0).raw(), kc.in(0).raw(), kc.in(0).nbytes());
  };
  reg.add(std::move(s));
}

// ---------------------------------------------------------------------------------------------
// Transpose

std::vector<int64_t> transpose_perm(const Attributes& a, int64_t r) {
  std::vector<int64_t> perm;
  if (a.has("perm")) {
    perm = a.get_ints("perm");
  } else {
    for (int64_t i = r - 1; i >= 0; --i) perm.push_back(i);
  }
  ENGINE_CHECK(int64_t(perm.size()) == r, "Transpose: attribute perm ", ints_str(perm), " has ",
               perm.size(), " entries for an input of rank ", r);
  std::vector<bool> seen(size_t(r), false);
  for (int64_t p : perm) {
    ENGINE_CHECK(p >= 0 && p < r && !seen[size_t(p)], "Transpose: attribute perm ", ints_str(perm),
                 " is not a permutation of 0..", r - 1);
    seen[size_t(p)] = true;
  }
  return perm;
}

// Columns [c0, c1) of a transpose with kR (1..4) rows: y[c][r] = x[r][c]. Rows are a compile-time
// constant, so each output pixel is kR loads and stores with no inner loop (NCHW -> NHWC of an
// RGB image).
template <class T, int kR>
void transpose_few_rows(const T* x, T* y, int64_t C, int64_t c0, int64_t c1) {
  for (int64_t c = c0; c < c1; ++c)
    for (int r = 0; r < kR; ++r) y[c * kR + r] = x[r * C + c];
}

// Batched 2-D transpose y[b][c][r] = x[b][r][c], OpenMP over (batch, block): with 1-4 rows, blocks
// of columns (one image's RGB planes are a single tile row); else cache tiles, blocks of rows.
template <class T>
void transpose_2d(const T* x, T* y, int64_t B, int64_t R, int64_t C) {
  constexpr int64_t kTile = 32;
  if (R >= 1 && R <= 4) {
    using FewRows = void (*)(const T*, T*, int64_t, int64_t, int64_t);
    constexpr FewRows few_rows[4] = {transpose_few_rows<T, 1>, transpose_few_rows<T, 2>,
                                     transpose_few_rows<T, 3>, transpose_few_rows<T, 4>};
    constexpr int64_t kCols = 4096;
    const int64_t blocks = (C + kCols - 1) / kCols;
#pragma omp parallel for collapse(2) schedule(static) if (B * R * C > 32768)
    for (int64_t b = 0; b < B; ++b)
      for (int64_t cb = 0; cb < blocks; ++cb)
        few_rows[R - 1](x + b * R * C, y + b * R * C, C, cb * kCols, std::min(C, (cb + 1) * kCols));
    return;
  }
  const int64_t tiles_r = (R + kTile - 1) / kTile;
#pragma omp parallel for collapse(2) schedule(static) if (B * R * C > 32768)
  for (int64_t b = 0; b < B; ++b)
    for (int64_t tr = 0; tr < tiles_r; ++tr) {
      const T* xb = x + b * R * C;
      T* yb = y + b * R * C;
      const int64_t r0 = tr * kTile, r1 = std::min(R, r0 + kTile);
      for (int64_t c0 = 0; c0 < C; c0 += kTile) {
        const int64_t c1 = std::min(C, c0 + kTile);
        for (int64_t c = c0; c < c1; ++c)
          for (int64_t r = r0; r < r1; ++r) yb[c * R + r] = xb[r * C + c];
      }
    }
}

// If the permutation, after merging input dims that stay adjacent, is a batched 2-D transpose
// ([B, R, C] -> [B, C, R], e.g. NCHW <-> NHWC), runs the tiled kernel and returns true.
bool transpose_fast(const Tensor& x, const std::vector<int64_t>& perm, Tensor& y) {
  const size_t es = dtype_size(x.dtype());
  if (es != 4 && es != 1) return false;
  // Groups of output positions whose input dims are consecutive.
  std::vector<std::pair<int64_t, int64_t>> groups;  // (first input dim, size product)
  for (size_t i = 0; i < perm.size(); ++i) {
    if (i > 0 && perm[i] == perm[i - 1] + 1)
      groups.back().second *= x.shape()[size_t(perm[i])];
    else
      groups.push_back({perm[i], x.shape()[size_t(perm[i])]});
  }
  int64_t B = 1, R = 0, C = 0;
  if (groups.size() == 2 && groups[0].first > groups[1].first) {
    R = groups[1].second;  // output [C', R'] reads input [R', C']: input order is groups 1, 0
    C = groups[0].second;
  } else if (groups.size() == 3 && groups[0].first == 0 && groups[1].first > groups[2].first) {
    B = groups[0].second;
    R = groups[2].second;
    C = groups[1].second;
  } else {
    return false;
  }
  if (es == 4)
    transpose_2d(static_cast<const uint32_t*>(x.raw()), static_cast<uint32_t*>(y.raw()), B, R, C);
  else
    transpose_2d(static_cast<const uint8_t*>(x.raw()), static_cast<uint8_t*>(y.raw()), B, R, C);
  return true;
}

void add_transpose(OpRegistry& reg) {
  OpSchema s;
  s.op_type = "Transpose";
  s.infer = [](InferContext& ctx) {
    const Dims& in = ctx.shape(0);
    auto perm = transpose_perm(ctx.attrs(), int64_t(in.size()));
    Dims out;
    for (int64_t p : perm) out.push_back(in[size_t(p)]);
    ctx.set_output(0, ctx.dtype(0), out);
  };
  s.kernel = [](KernelContext& kc) {
    const Tensor& x = kc.in(0);
    auto perm = transpose_perm(kc.attrs(), x.rank());
    if (transpose_fast(x, perm, kc.out(0))) return;
    auto st = dense_strides(x.shape());
    Dims shape;
    std::vector<int64_t> strides;
    for (int64_t p : perm) {
      shape.push_back(x.shape()[size_t(p)]);
      strides.push_back(st[size_t(p)]);
    }
    strided_copy(x.raw(), 0, shape, strides, kc.out(0).raw(), dtype_size(x.dtype()));
  };
  reg.add(std::move(s));
}

// ---------------------------------------------------------------------------------------------
// Concat

int64_t concat_axis(const Attributes& a, int opset, int64_t rank) {
  const int64_t axis = opset < 4 ? a.get_int("axis", 1) : a.get_int("axis");
  return norm_axis(axis, rank, "Concat: attribute axis");
}

void add_concat(OpRegistry& reg) {
  OpSchema s;
  s.op_type = "Concat";
  s.max_inputs = 1 << 20;
  s.infer = [](InferContext& ctx) {
    ENGINE_CHECK(ctx.num_inputs() >= 1, "Concat: needs at least one input");
    for (int i = 0; i < ctx.num_inputs(); ++i)
      ENGINE_CHECK(ctx.has_input(i), "Concat: input ", i, " is missing");
    const Dims& first = ctx.shape(0);
    const int64_t r = int64_t(first.size());
    ENGINE_CHECK(r >= 1, "Concat: inputs must have rank >= 1, got a scalar");
    const int64_t axis = concat_axis(ctx.attrs(), ctx.opset(), r);
    Dims out = first;
    out[size_t(axis)] = 0;
    for (int i = 0; i < ctx.num_inputs(); ++i) {
      const Dims& d = ctx.shape(i);
      ENGINE_CHECK(ctx.dtype(i) == ctx.dtype(0), "Concat: input ", i, " has type ",
                   dtype_name(ctx.dtype(i)), " but input 0 has type ", dtype_name(ctx.dtype(0)));
      ENGINE_CHECK(int64_t(d.size()) == r, "Concat: input ", i, " has shape ", dims_str(d),
                   " (rank ", d.size(), ") but input 0 has shape ", dims_str(first), " (rank ", r,
                   ")");
      for (int64_t k = 0; k < r; ++k)
        ENGINE_CHECK(k == axis || d[size_t(k)] == first[size_t(k)], "Concat: input ", i,
                     " has shape ", dims_str(d), " which differs from input 0 ", dims_str(first),
                     " in dimension ", k, " (only axis ", axis, " may differ)");
      out[size_t(axis)] += d[size_t(axis)];
    }
    ctx.set_output(0, ctx.dtype(0), out);
  };
  s.kernel = [](KernelContext& kc) {
    Tensor& y = kc.out(0);
    const int64_t axis = concat_axis(kc.attrs(), kc.node.opset, y.rank());
    const size_t es = dtype_size(y.dtype());
    const int64_t outer = prod(y.shape(), 0, size_t(axis));
    const int64_t inner = prod(y.shape(), size_t(axis) + 1, y.shape().size()) * int64_t(es);
    const int64_t out_row = y.shape()[size_t(axis)] * inner;
    const int n = int(kc.inputs.size());
    std::vector<int64_t> in_row(static_cast<size_t>(n)), col(static_cast<size_t>(n) + 1, 0);
    for (int i = 0; i < n; ++i) {
      in_row[size_t(i)] = kc.in(i).dim(int(axis)) * inner;
      col[size_t(i) + 1] = col[size_t(i)] + in_row[size_t(i)];
    }
    char* dst = static_cast<char*>(y.raw());
#pragma omp parallel for schedule(static) if (outer * out_row > (1 << 16))
    for (int64_t o = 0; o < outer; ++o)
      for (int i = 0; i < n; ++i)
        if (in_row[size_t(i)])
          std::memcpy(dst + o * out_row + col[size_t(i)],
                      static_cast<const char*>(kc.inputs[size_t(i)]->raw()) + o * in_row[size_t(i)],
                      size_t(in_row[size_t(i)]));
  };
  reg.add(std::move(s));
}

// ---------------------------------------------------------------------------------------------
// Split

// Sizes of the outputs along the split axis.
std::vector<int64_t> split_sizes(const Attributes& a, int opset, const Tensor* split_input,
                                 int64_t dim, int num_outputs) {
  std::vector<int64_t> sizes;
  if (opset < 13 && a.has("split")) {
    sizes = a.get_ints("split");
  } else if (opset >= 13 && split_input) {
    sizes = int_values(*split_input, "Split: input 'split'");
  }
  if (a.has("num_outputs")) {
    ENGINE_CHECK(opset >= 18, "Split: attribute num_outputs needs opset 18, node has opset ",
                 opset);
    ENGINE_CHECK(sizes.empty(), "Split: give either the split input or num_outputs, not both");
    ENGINE_CHECK(a.get_int("num_outputs") == num_outputs,
                 "Split: attribute num_outputs=", a.get_int("num_outputs"), " but the node has ",
                 num_outputs, " outputs");
  }
  if (!sizes.empty()) {
    ENGINE_CHECK(int(sizes.size()) == num_outputs, "Split: split ", ints_str(sizes), " has ",
                 sizes.size(), " entries but the node has ", num_outputs, " outputs");
    int64_t sum = 0;
    for (int64_t v : sizes) {
      ENGINE_CHECK(v >= 0, "Split: split ", ints_str(sizes), " has a negative size");
      sum += v;
    }
    ENGINE_CHECK(sum == dim, "Split: split ", ints_str(sizes), " sums to ", sum,
                 " but the split axis has size ", dim);
    return sizes;
  }
  // Equal parts; if the size is not divisible, every chunk has ceil(dim / n) elements except the
  // last, which is smaller (the rule written down in opset 18, and what the reference does).
  ENGINE_CHECK(num_outputs >= 1, "Split: node has no outputs");
  const int64_t n = num_outputs;
  const int64_t chunk = (dim + n - 1) / n;
  const int64_t last = dim - chunk * (n - 1);
  ENGINE_CHECK(last >= 0 && (dim % n == 0 || last > 0), "Split: cannot split a dimension of size ",
               dim, " into ", n, " parts of size ", chunk, " with a smaller last part");
  sizes.assign(size_t(n), chunk);
  sizes.back() = last;
  return sizes;
}

void add_split(OpRegistry& reg) {
  OpSchema s;
  s.op_type = "Split";
  s.max_inputs = 2;
  s.max_outputs = 1 << 16;
  s.infer = [](InferContext& ctx) {
    const Dims& in = ctx.shape(0);
    ENGINE_CHECK(!in.empty(), "Split: input must have rank >= 1, got a scalar");
    const int64_t axis =
        norm_axis(ctx.attrs().get_int("axis", 0), int64_t(in.size()), "Split: attribute axis");
    const Tensor* split = ctx.opset() >= 13 ? known_optional(ctx, 1) : nullptr;
    auto sizes = split_sizes(ctx.attrs(), ctx.opset(), split, in[size_t(axis)], ctx.num_outputs());
    for (int i = 0; i < ctx.num_outputs(); ++i) {
      Dims d = in;
      d[size_t(axis)] = sizes[size_t(i)];
      ctx.set_output(i, ctx.dtype(0), d);
    }
  };
  s.kernel = [](KernelContext& kc) {
    const Tensor& x = kc.in(0);
    const int64_t axis = norm_axis(kc.attrs().get_int("axis", 0), x.rank(), "Split: axis");
    const size_t es = dtype_size(x.dtype());
    const int nout = int(kc.outputs.size());
    std::vector<int64_t> sizes(static_cast<size_t>(nout));
    for (int i = 0; i < nout; ++i) sizes[size_t(i)] = kc.out(i).dim(int(axis));
    const int64_t outer = prod(x.shape(), 0, size_t(axis));
    const int64_t inner = prod(x.shape(), size_t(axis) + 1, x.shape().size()) * int64_t(es);
    const int64_t in_row = x.dim(int(axis)) * inner;
    const char* src = static_cast<const char*>(x.raw());
    int64_t col = 0;
    for (int i = 0; i < nout; ++i) {
      const int64_t row = sizes[size_t(i)] * inner;
      ENGINE_CHECK(col + row <= in_row, "Split: output shapes exceed the input");
      char* dst = static_cast<char*>(kc.out(i).raw());
      if (row) {
#pragma omp parallel for schedule(static) if (outer * row > (1 << 16))
        for (int64_t o = 0; o < outer; ++o)
          std::memcpy(dst + o * row, src + o * in_row + col, size_t(row));
      }
      col += row;
    }
  };
  reg.add(std::move(s));
}

// ---------------------------------------------------------------------------------------------
// Slice

struct SliceParams {
  Dims out;                          // output shape
  std::vector<int64_t> start, step;  // per input dim
};

SliceParams slice_params(const Dims& in, const std::vector<int64_t>& starts,
                         const std::vector<int64_t>& ends, const std::vector<int64_t>* axes_in,
                         const std::vector<int64_t>* steps_in) {
  const int64_t r = int64_t(in.size());
  const size_t n = starts.size();
  ENGINE_CHECK(ends.size() == n, "Slice: starts ", ints_str(starts), " and ends ", ints_str(ends),
               " have different lengths");
  std::vector<int64_t> axes, steps;
  if (axes_in) {
    axes = *axes_in;
    ENGINE_CHECK(axes.size() == n, "Slice: axes ", ints_str(axes), " has ", axes.size(),
                 " entries, starts has ", n);
  } else {
    ENGINE_CHECK(int64_t(n) <= r, "Slice: starts has ", n, " entries for an input of rank ", r);
    for (size_t i = 0; i < n; ++i) axes.push_back(int64_t(i));
  }
  if (steps_in) {
    steps = *steps_in;
    ENGINE_CHECK(steps.size() == n, "Slice: steps ", ints_str(steps), " has ", steps.size(),
                 " entries, starts has ", n);
  } else {
    steps.assign(n, 1);
  }
  SliceParams p;
  p.out = in;
  p.start.assign(size_t(r), 0);
  p.step.assign(size_t(r), 1);
  std::vector<bool> seen(size_t(r), false);
  for (size_t i = 0; i < n; ++i) {
    const int64_t ax = norm_axis(axes[i], r, "Slice: axis");
    ENGINE_CHECK(!seen[size_t(ax)], "Slice: axes ", ints_str(axes), " repeats axis ", ax);
    seen[size_t(ax)] = true;
    const int64_t dim = in[size_t(ax)];
    const int64_t step = steps[i];
    ENGINE_CHECK(step != 0, "Slice: steps ", ints_str(steps), " contains 0");
    int64_t b = starts[i], e = ends[i];
    if (b < 0) b += dim;
    if (e < 0) e += dim;
    int64_t len;
    if (step > 0) {
      b = std::clamp<int64_t>(b, 0, dim);
      e = std::clamp<int64_t>(e, 0, dim);
      len = e > b ? (e - b - 1) / step + 1 : 0;
    } else {
      b = std::clamp<int64_t>(b, 0, dim - 1);
      e = std::clamp<int64_t>(e, -1, dim - 1);
      len = (dim > 0 && b > e) ? (b - e - 1) / (-step) + 1 : 0;
    }
    p.out[size_t(ax)] = len;
    p.start[size_t(ax)] = len > 0 ? b : 0;
    p.step[size_t(ax)] = step;
  }
  return p;
}

// The (starts, ends, axes, steps) of a Slice node; tensors come from inputs 1..4 from opset 10.
template <class GetInput>
SliceParams slice_from_node(const Attributes& a, int opset, const Dims& in, GetInput&& get) {
  if (opset < 10) {
    std::vector<int64_t> axes;
    const bool has_axes = a.has("axes");
    if (has_axes) axes = a.get_ints("axes");
    return slice_params(in, a.get_ints("starts"), a.get_ints("ends"), has_axes ? &axes : nullptr,
                        nullptr);
  }
  const Tensor* st = get(1);
  const Tensor* en = get(2);
  ENGINE_CHECK(st && en, "Slice: inputs 'starts' and 'ends' are required from opset 10");
  auto starts = int_values(*st, "Slice: input 'starts'");
  auto ends = int_values(*en, "Slice: input 'ends'");
  std::vector<int64_t> axes, steps;
  const Tensor* ax = get(3);
  const Tensor* sp = get(4);
  if (ax) axes = int_values(*ax, "Slice: input 'axes'");
  if (sp) steps = int_values(*sp, "Slice: input 'steps'");
  return slice_params(in, starts, ends, ax ? &axes : nullptr, sp ? &steps : nullptr);
}

void add_slice(OpRegistry& reg) {
  OpSchema s;
  s.op_type = "Slice";
  s.max_inputs = 5;
  s.infer = [](InferContext& ctx) {
    ENGINE_CHECK(ctx.rank(0) >= 1, "Slice: input must have rank >= 1, got a scalar");
    auto p = slice_from_node(ctx.attrs(), ctx.opset(), ctx.shape(0),
                             [&](int i) { return known_optional(ctx, i); });
    ctx.set_output(0, ctx.dtype(0), p.out);
  };
  s.kernel = [](KernelContext& kc) {
    const Tensor& x = kc.in(0);
    auto p = slice_from_node(kc.attrs(), kc.node.opset, x.shape(),
                             [&](int i) { return optional_in(kc, i); });
    ENGINE_CHECK(p.out == kc.out(0).shape(), "Slice: output shape ", dims_str(kc.out(0).shape()),
                 " does not match the computed ", dims_str(p.out));
    auto st = dense_strides(x.shape());
    int64_t offset = 0;
    std::vector<int64_t> strides(st.size());
    for (size_t i = 0; i < st.size(); ++i) {
      offset += p.start[i] * st[i];
      strides[i] = st[i] * p.step[i];
    }
    strided_copy(x.raw(), offset, p.out, strides, kc.out(0).raw(), dtype_size(x.dtype()));
  };
  reg.add(std::move(s));
}

// ---------------------------------------------------------------------------------------------
// Squeeze / Unsqueeze

// Axes from the attribute (opset < 13) or the optional input 1 (opset >= 13); nullopt if absent.
template <class GetInput>
std::optional<std::vector<int64_t>> axes_arg(const char* op, const Attributes& a, int opset,
                                             GetInput&& get) {
  if (opset < 13) {
    if (a.has("axes")) return a.get_ints("axes");
    return std::nullopt;
  }
  ENGINE_CHECK(!a.has("axes"), op, ": from opset 13 axes is an input, not an attribute");
  if (const Tensor* t = get(1)) return int_values(*t, (std::string(op) + ": input 'axes'").c_str());
  return std::nullopt;
}

Dims squeeze_shape(const Dims& in, const std::optional<std::vector<int64_t>>& axes) {
  const int64_t r = int64_t(in.size());
  std::vector<bool> drop(size_t(r), false);
  if (!axes) {
    for (int64_t i = 0; i < r; ++i) drop[size_t(i)] = in[size_t(i)] == 1;
  } else {
    for (int64_t a : *axes) {
      const int64_t ax = norm_axis(a, r, "Squeeze: axis");
      ENGINE_CHECK(in[size_t(ax)] == 1, "Squeeze: cannot squeeze axis ", ax, " of shape ",
                   dims_str(in), ": its size is ", in[size_t(ax)], ", not 1");
      drop[size_t(ax)] = true;
    }
  }
  Dims out;
  for (int64_t i = 0; i < r; ++i)
    if (!drop[size_t(i)]) out.push_back(in[size_t(i)]);
  return out;
}

Dims unsqueeze_shape(const Dims& in, const std::optional<std::vector<int64_t>>& axes) {
  ENGINE_CHECK(axes.has_value(), "Unsqueeze: axes are required");
  const int64_t r = int64_t(in.size()) + int64_t(axes->size());
  std::vector<bool> add(size_t(r), false);
  for (int64_t a : *axes) {
    const int64_t ax = norm_axis(a, r, "Unsqueeze: axis");
    ENGINE_CHECK(!add[size_t(ax)], "Unsqueeze: axes ", ints_str(*axes), " repeat axis ", ax);
    add[size_t(ax)] = true;
  }
  Dims out;
  size_t k = 0;
  for (int64_t i = 0; i < r; ++i) out.push_back(add[size_t(i)] ? 1 : in[k++]);
  return out;
}

void add_squeeze_unsqueeze(OpRegistry& reg) {
  for (bool squeeze : {true, false}) {
    OpSchema s;
    s.op_type = squeeze ? "Squeeze" : "Unsqueeze";
    s.max_inputs = 2;
    s.infer = [squeeze](InferContext& ctx) {
      const char* op = squeeze ? "Squeeze" : "Unsqueeze";
      auto axes =
          axes_arg(op, ctx.attrs(), ctx.opset(), [&](int i) { return known_optional(ctx, i); });
      ctx.set_output(
          0, ctx.dtype(0),
          squeeze ? squeeze_shape(ctx.shape(0), axes) : unsqueeze_shape(ctx.shape(0), axes));
    };
    s.kernel = [](KernelContext& kc) {
      copy_bytes(kc.out(0).raw(), kc.in(0).raw(), kc.in(0).nbytes());
    };
    reg.add(std::move(s));
  }
}

// ---------------------------------------------------------------------------------------------
// Shape, Size

Tensor shape_value(const Attributes& a, const Dims& in) {
  const int64_t r = int64_t(in.size());
  int64_t start = a.get_int("start", 0), end = a.get_int("end", r);
  if (start < 0) start += r;
  if (end < 0) end += r;
  start = std::clamp<int64_t>(start, 0, r);
  end = std::clamp<int64_t>(end, 0, r);
  std::vector<int64_t> v;
  for (int64_t i = start; i < end; ++i) v.push_back(in[size_t(i)]);
  return Tensor::from_vector<int64_t>({int64_t(v.size())}, v);
}

void add_shape_size(OpRegistry& reg) {
  OpSchema s;
  s.op_type = "Shape";
  s.infer = [](InferContext& ctx) {
    ctx.set_output_value(0, shape_value(ctx.attrs(), ctx.shape(0)));
  };
  s.kernel = [](KernelContext& kc) {
    Tensor v = shape_value(kc.attrs(), kc.in(0).shape());
    ENGINE_CHECK(kc.out(0).nbytes() == v.nbytes(), "Shape: output has the wrong size");
    copy_bytes(kc.out(0).raw(), v.raw(), v.nbytes());
  };
  reg.add(std::move(s));

  OpSchema z;
  z.op_type = "Size";
  z.infer = [](InferContext& ctx) {
    ctx.set_output_value(0, Tensor::scalar<int64_t>(checked_numel(ctx.shape(0))));
  };
  z.kernel = [](KernelContext& kc) { kc.out(0).data<int64_t>()[0] = kc.in(0).numel(); };
  reg.add(std::move(z));
}

// ---------------------------------------------------------------------------------------------
// Gather

// Indices normalized to [0, n); throws on any index outside [-n, n-1].
std::vector<int64_t> gather_indices(const Tensor& idx, int64_t n) {
  ENGINE_CHECK(idx.dtype() == DType::I64 || idx.dtype() == DType::I32,
               "Gather: indices must be int32 or int64, got ", dtype_name(idx.dtype()));
  std::vector<int64_t> v = idx.to_int_vector();
  for (int64_t& i : v) {
    ENGINE_CHECK(i >= -n && i < n, "Gather: index ", i, " is out of range for a dimension of size ",
                 n, " (expected [", -n, ", ", n - 1, "])");
    if (i < 0) i += n;
  }
  return v;
}

void add_gather(OpRegistry& reg) {
  OpSchema s;
  s.op_type = "Gather";
  s.max_inputs = 2;
  s.min_inputs = 2;
  s.infer = [](InferContext& ctx) {
    check_input_count(ctx, 2, "indices");
    const Dims& d = ctx.shape(0);
    ENGINE_CHECK(!d.empty(), "Gather: data must have rank >= 1, got a scalar");
    ENGINE_CHECK(ctx.dtype(1) == DType::I64 || ctx.dtype(1) == DType::I32,
                 "Gather: indices must be int32 or int64, got ", dtype_name(ctx.dtype(1)));
    const int64_t axis =
        norm_axis(ctx.attrs().get_int("axis", 0), int64_t(d.size()), "Gather: attribute axis");
    if (const Tensor* idx = ctx.value_or_null(1)) gather_indices(*idx, d[size_t(axis)]);
    Dims out(d.begin(), d.begin() + axis);
    for (int64_t v : ctx.shape(1)) out.push_back(v);
    out.insert(out.end(), d.begin() + axis + 1, d.end());
    ctx.set_output(0, ctx.dtype(0), out);
  };
  s.kernel = [](KernelContext& kc) {
    const Tensor& x = kc.in(0);
    const int64_t axis = norm_axis(kc.attrs().get_int("axis", 0), x.rank(), "Gather: axis");
    const int64_t n = x.dim(int(axis));
    const std::vector<int64_t> idx = gather_indices(kc.in(1), n);  // validated before copying
    const int64_t nidx = int64_t(idx.size());
    const int64_t outer = prod(x.shape(), 0, size_t(axis));
    const int64_t inner =
        prod(x.shape(), size_t(axis) + 1, x.shape().size()) * int64_t(dtype_size(x.dtype()));
    ENGINE_CHECK(kc.out(0).nbytes() == size_t(outer * nidx * inner),
                 "Gather: output has the wrong size");
    const char* src = static_cast<const char*>(x.raw());
    char* dst = static_cast<char*>(kc.out(0).raw());
    if (inner == 0) return;
#pragma omp parallel for schedule(static) if (outer * nidx * inner > (1 << 16))
    for (int64_t k = 0; k < outer * nidx; ++k) {
      const int64_t o = k / nidx, j = k % nidx;
      std::memcpy(dst + k * inner, src + (o * n + idx[size_t(j)]) * inner, size_t(inner));
    }
  };
  reg.add(std::move(s));
}

// ---------------------------------------------------------------------------------------------
// Constant, ConstantOfShape

Tensor constant_value(const Attributes& a) {
  int count = 0;
  for (const char* k : {"value", "value_float", "value_floats", "value_int", "value_ints"})
    count += a.has(k);
  for (const char* k : {"sparse_value", "value_string", "value_strings"})
    ENGINE_CHECK(!a.has(k), "Constant: attribute '", k,
                 "' is not supported (only numeric dense tensors)");
  ENGINE_CHECK(count == 1,
               "Constant: exactly one of value, value_float, value_floats, value_int, "
               "value_ints must be given, got ",
               count);
  if (a.has("value")) {
    const Tensor& t = a.get_tensor("value");
    ENGINE_CHECK(t.defined() && dtype_size(t.dtype()) > 0,
                 "Constant: attribute 'value' holds an unsupported tensor type");
    return t;
  }
  if (a.has("value_float")) return Tensor::scalar<float>(a.get_float("value_float"));
  if (a.has("value_int")) return Tensor::scalar<int64_t>(a.get_int("value_int"));
  if (a.has("value_floats")) {
    auto v = a.get_floats("value_floats");
    return Tensor::from_vector<float>({int64_t(v.size())}, v);
  }
  auto v = a.get_ints("value_ints");
  return Tensor::from_vector<int64_t>({int64_t(v.size())}, v);
}

void add_constants(OpRegistry& reg) {
  OpSchema s;
  s.op_type = "Constant";
  s.min_inputs = 0;
  s.max_inputs = 0;
  s.validate = [](const Node& n) { constant_value(n.attrs); };
  s.infer = [](InferContext& ctx) { ctx.set_output_value(0, constant_value(ctx.attrs()).clone()); };
  s.kernel = [](KernelContext& kc) {
    Tensor v = constant_value(kc.attrs());
    ENGINE_CHECK(kc.out(0).nbytes() == v.nbytes(), "Constant: output has the wrong size");
    copy_bytes(kc.out(0).raw(), v.raw(), v.nbytes());
  };
  reg.add(std::move(s));

  OpSchema c;
  c.op_type = "ConstantOfShape";
  auto fill_value = [](const Attributes& a) {
    if (!a.has("value")) return Tensor::scalar<float>(0.f);
    const Tensor& t = a.get_tensor("value");
    ENGINE_CHECK(t.defined() && dtype_size(t.dtype()) > 0,
                 "ConstantOfShape: attribute 'value' holds an unsupported tensor type");
    ENGINE_CHECK(t.numel() == 1, "ConstantOfShape: attribute 'value' must have one element, got ",
                 t.numel());
    return t;
  };
  c.validate = [fill_value](const Node& n) { fill_value(n.attrs); };
  c.infer = [fill_value](InferContext& ctx) {
    auto dims = int_values(ctx.value(0), "ConstantOfShape: input 'shape'");
    for (int64_t d : dims)
      ENGINE_CHECK(d >= 0, "ConstantOfShape: shape ", ints_str(dims), " has a negative dimension");
    ctx.set_output(0, fill_value(ctx.attrs()).dtype(), dims);
  };
  c.kernel = [fill_value](KernelContext& kc) {
    const Tensor v = fill_value(kc.attrs());
    Tensor& y = kc.out(0);
    ENGINE_CHECK(y.dtype() == v.dtype(), "ConstantOfShape: output type mismatch");
    const size_t es = dtype_size(v.dtype());
    char* dst = static_cast<char*>(y.raw());
    for (int64_t i = 0; i < y.numel(); ++i) std::memcpy(dst + size_t(i) * es, v.raw(), es);
  };
  reg.add(std::move(c));
}

// ---------------------------------------------------------------------------------------------
// Expand, Tile

Dims expand_shape(const Dims& in, const std::vector<int64_t>& shape) {
  const size_t r = std::max(in.size(), shape.size());
  Dims out(r);
  for (size_t i = 0; i < r; ++i) {
    const int64_t a = i + in.size() >= r ? in[i + in.size() - r] : 1;
    const int64_t b = i + shape.size() >= r ? shape[i + shape.size() - r] : 1;
    ENGINE_CHECK(b >= 0, "Expand: shape ", ints_str(shape), " has a negative dimension");
    ENGINE_CHECK(a == b || a == 1 || b == 1, "Expand: input shape ", dims_str(in),
                 " cannot be broadcast to shape ", ints_str(shape));
    out[i] = a == 1 ? b : a;
  }
  return out;
}

void add_expand_tile(OpRegistry& reg) {
  OpSchema s;
  s.op_type = "Expand";
  s.min_inputs = 2;
  s.max_inputs = 2;
  s.infer = [](InferContext& ctx) {
    check_input_count(ctx, 2, "shape");
    ctx.set_output(0, ctx.dtype(0),
                   expand_shape(ctx.shape(0), int_values(ctx.value(1), "Expand: input 'shape'")));
  };
  s.kernel = [](KernelContext& kc) {
    const Tensor& x = kc.in(0);
    const Dims& out = kc.out(0).shape();
    const size_t r = out.size();
    ENGINE_CHECK(size_t(x.rank()) <= r, "Expand: output rank is smaller than the input rank");
    auto st = dense_strides(x.shape());
    std::vector<int64_t> strides(r, 0);
    for (size_t i = 0; i < size_t(x.rank()); ++i) {
      const size_t o = i + r - size_t(x.rank());
      ENGINE_CHECK(x.shape()[i] == out[o] || x.shape()[i] == 1, "Expand: output shape ",
                   dims_str(out), " does not match input ", dims_str(x.shape()));
      strides[o] = x.shape()[i] == 1 ? 0 : st[i];
    }
    strided_copy(x.raw(), 0, out, strides, kc.out(0).raw(), dtype_size(x.dtype()));
  };
  reg.add(std::move(s));

  OpSchema t;
  t.op_type = "Tile";
  t.min_inputs = 2;
  t.max_inputs = 2;
  auto repeats_of = [](const Tensor& rep, const Dims& in) {
    auto r = int_values(rep, "Tile: input 'repeats'");
    ENGINE_CHECK(r.size() == in.size(), "Tile: repeats ", ints_str(r), " has ", r.size(),
                 " entries for an input of rank ", in.size());
    for (int64_t v : r)
      ENGINE_CHECK(v >= 0, "Tile: repeats ", ints_str(r), " has a negative entry");
    return r;
  };
  t.infer = [repeats_of](InferContext& ctx) {
    check_input_count(ctx, 2, "repeats");
    const Dims& in = ctx.shape(0);
    auto rep = repeats_of(ctx.value(1), in);
    Dims out(in.size());
    for (size_t i = 0; i < in.size(); ++i) out[i] = in[i] * rep[i];
    ctx.set_output(0, ctx.dtype(0), out);
  };
  t.kernel = [repeats_of](KernelContext& kc) {
    const Tensor& x = kc.in(0);
    auto rep = repeats_of(kc.in(1), x.shape());
    // The output [r0*d0, r1*d1, ...] is laid out as [r0, d0, r1, d1, ...] with the repeat dims
    // having stride 0 in the input.
    auto st = dense_strides(x.shape());
    Dims shape;
    std::vector<int64_t> strides;
    for (size_t i = 0; i < rep.size(); ++i) {
      shape.insert(shape.end(), {rep[i], x.shape()[i]});
      strides.insert(strides.end(), {0, st[i]});
    }
    ENGINE_CHECK(checked_numel(shape) == kc.out(0).numel(), "Tile: output has the wrong size");
    strided_copy(x.raw(), 0, shape, strides, kc.out(0).raw(), dtype_size(x.dtype()));
  };
  reg.add(std::move(t));
}

// ---------------------------------------------------------------------------------------------
// Range

int64_t range_count(const Tensor& start, const Tensor& limit, const Tensor& delta) {
  for (const Tensor* t : {&start, &limit, &delta})
    ENGINE_CHECK(t->numel() == 1, "Range: start, limit and delta must be scalars, got shape ",
                 dims_str(t->shape()));
  ENGINE_CHECK(start.dtype() == limit.dtype() && start.dtype() == delta.dtype(),
               "Range: start, limit and delta must have the same type");
  const DType t = start.dtype();
  ENGINE_CHECK(
      t == DType::F32 || t == DType::F64 || t == DType::I16 || t == DType::I32 || t == DType::I64,
      "Range: unsupported type ", dtype_name(t),
      " (expected float, double, int16, int32 or int64)");
  if (dtype_is_float(t)) {
    const double s = start.get_as_double(0), l = limit.get_as_double(0), d = delta.get_as_double(0);
    ENGINE_CHECK(d != 0 && std::isfinite(s) && std::isfinite(l) && std::isfinite(d),
                 "Range: delta must be non-zero and all inputs finite");
    const double n = std::ceil((l - s) / d);
    ENGINE_CHECK(n < 9.0e15, "Range: too many elements");
    return n > 0 ? int64_t(n) : 0;
  }
  const int64_t s = start.get_as_int(0), l = limit.get_as_int(0), d = delta.get_as_int(0);
  ENGINE_CHECK(d != 0, "Range: delta must be non-zero");
  // Values fit in int64 with room to spare (they come from int16/32/64 inputs); use 128-bit
  // arithmetic so int64 extremes cannot overflow.
  const __int128 diff = __int128(l) - s;
  __int128 n = d > 0 ? (diff + d - 1) / d : (diff + d + 1) / d;
  if ((d > 0 && diff <= 0) || (d < 0 && diff >= 0)) n = 0;
  return int64_t(n);
}

void add_range(OpRegistry& reg) {
  OpSchema s;
  s.op_type = "Range";
  s.min_inputs = 3;
  s.max_inputs = 3;
  s.infer = [](InferContext& ctx) {
    check_input_count(ctx, 3, "start, limit, delta");
    const int64_t n = range_count(ctx.value(0), ctx.value(1), ctx.value(2));
    ctx.set_output(0, ctx.dtype(0), {n});
  };
  s.kernel = [](KernelContext& kc) {
    const Tensor &st = kc.in(0), &dl = kc.in(2);
    Tensor& y = kc.out(0);
    const int64_t n = range_count(st, kc.in(1), dl);
    ENGINE_CHECK(y.numel() == n, "Range: output has the wrong size");
    dispatch_dtype(y.dtype(), [&](auto z) {
      using T = decltype(z);
      if constexpr (std::is_floating_point_v<T>) {
        const T s = st.data<T>()[0], d = dl.data<T>()[0];
        for (int64_t i = 0; i < n; ++i) y.data<T>()[i] = T(s + T(i) * d);
      } else {
        const int64_t s = st.get_as_int(0), d = dl.get_as_int(0);
        for (int64_t i = 0; i < n; ++i) y.data<T>()[i] = T(s + i * d);
      }
    });
  };
  reg.add(std::move(s));
}

// ---------------------------------------------------------------------------------------------
// DepthToSpace, SpaceToDepth

void add_depth_space(OpRegistry& reg) {
  auto blocksize = [](const Attributes& a, const char* op) {
    const int64_t b = a.get_int("blocksize");
    ENGINE_CHECK(b >= 1, op, ": attribute blocksize must be >= 1, got ", b);
    return b;
  };
  auto d2s_mode = [](const Node& n) {
    const std::string m = n.attrs.get_string("mode", "DCR");
    ENGINE_CHECK(m == "DCR" || m == "CRD", "DepthToSpace: attribute mode='", m,
                 "' is not supported (expected DCR or CRD)");
    return m;
  };
  OpSchema s;
  s.op_type = "DepthToSpace";
  s.validate = [=](const Node& n) {
    blocksize(n.attrs, "DepthToSpace");
    d2s_mode(n);
  };
  s.infer = [=](InferContext& ctx) {
    const int64_t b = blocksize(ctx.attrs(), "DepthToSpace");
    const Dims& d = ctx.shape(0);
    ENGINE_CHECK(d.size() == 4, "DepthToSpace: input must be 4-D [N,C,H,W], got ", dims_str(d));
    ENGINE_CHECK(d[1] % (b * b) == 0, "DepthToSpace: channels ", d[1],
                 " are not divisible by blocksize^2 = ", b * b);
    ctx.set_output(0, ctx.dtype(0), {d[0], d[1] / (b * b), d[2] * b, d[3] * b});
  };
  s.kernel = [=](KernelContext& kc) {
    const Tensor& x = kc.in(0);
    const int64_t b = blocksize(kc.attrs(), "DepthToSpace");
    const int64_t N = x.dim(0), C = x.dim(1), H = x.dim(2), W = x.dim(3), C2 = C / (b * b);
    const int64_t sN = C * H * W, sH = W, sW = 1;
    int64_t sC2, sB1, sB2;
    if (d2s_mode(kc.node) == "DCR") {  // channel = (b1 * b + b2) * C2 + c
      sB1 = b * C2 * H * W, sB2 = C2 * H * W, sC2 = H * W;
    } else {  // CRD: channel = c * b * b + b1 * b + b2
      sC2 = b * b * H * W, sB1 = b * H * W, sB2 = H * W;
    }
    // Output [N, C2, H, b1, W, b2].
    strided_copy(x.raw(), 0, {N, C2, H, b, W, b}, {sN, sC2, sH, sB1, sW, sB2}, kc.out(0).raw(),
                 dtype_size(x.dtype()));
  };
  reg.add(std::move(s));

  OpSchema t;
  t.op_type = "SpaceToDepth";
  t.validate = [=](const Node& n) { blocksize(n.attrs, "SpaceToDepth"); };
  t.infer = [=](InferContext& ctx) {
    const int64_t b = blocksize(ctx.attrs(), "SpaceToDepth");
    const Dims& d = ctx.shape(0);
    ENGINE_CHECK(d.size() == 4, "SpaceToDepth: input must be 4-D [N,C,H,W], got ", dims_str(d));
    ENGINE_CHECK(d[2] % b == 0 && d[3] % b == 0, "SpaceToDepth: spatial size ", d[2], "x", d[3],
                 " is not divisible by blocksize ", b);
    ctx.set_output(0, ctx.dtype(0), {d[0], d[1] * b * b, d[2] / b, d[3] / b});
  };
  t.kernel = [=](KernelContext& kc) {
    const Tensor& x = kc.in(0);
    const int64_t b = blocksize(kc.attrs(), "SpaceToDepth");
    const int64_t N = x.dim(0), C = x.dim(1), H = x.dim(2), W = x.dim(3);
    // Input viewed as [N, C, H/b, b1, W/b, b2]; output [N, b1, b2, C, H/b, W/b].
    strided_copy(x.raw(), 0, {N, b, b, C, H / b, W / b}, {C * H * W, W, 1, H * W, b * W, b},
                 kc.out(0).raw(), dtype_size(x.dtype()));
  };
  reg.add(std::move(t));
}

}  // namespace

void register_shape_ops(OpRegistry& r) {
  add_flatten(r);
  add_reshape(r);
  add_transpose(r);
  add_concat(r);
  add_split(r);
  add_slice(r);
  add_squeeze_unsqueeze(r);
  add_shape_size(r);
  add_gather(r);
  add_constants(r);
  add_expand_tile(r);
  add_range(r);
  add_depth_space(r);
}

}  // namespace engine
