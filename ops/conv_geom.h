// Conv / ConvTranspose geometry shared by the float, fused and integer convolution kernels.
// Geometry is canonicalized to 3 spatial dims (missing leading dims have size 1, kernel 1,
// stride 1, no padding), so one implementation serves 1-D, 2-D and 3-D.
#pragma once

#include <array>
#include <cstdint>

#include "core/graph.h"

namespace engine {

constexpr int kMaxSpatial = 3;
using Arr3 = std::array<int64_t, kMaxSpatial>;

// a >= 0, b > 0
inline int64_t ceil_div_pos(int64_t a, int64_t b) {
  return (a + b - 1) / b;
}

// Resolved geometry of one Conv / ConvTranspose node for given input shapes.
struct ConvGeom {
  int nsp = 0;  // real spatial rank (1..3)
  int64_t N = 0, C = 0, M = 0, group = 1;
  Arr3 in{1, 1, 1}, k{1, 1, 1}, out{1, 1, 1}, s{1, 1, 1}, d{1, 1, 1}, pb{0, 0, 0}, pe{0, 0, 0};
  int64_t in_size() const { return in[0] * in[1] * in[2]; }
  int64_t out_size() const { return out[0] * out[1] * out[2]; }
  int64_t k_size() const { return k[0] * k[1] * k[2]; }
  Dims out_shape() const {
    Dims y{N, M};
    for (int i = kMaxSpatial - nsp; i < kMaxSpatial; ++i) y.push_back(out[size_t(i)]);
    return y;
  }
};

// Attribute checks common to Conv and ConvTranspose (auto_pad, group, strides, pads, ...).
void conv_validate_attrs(const Node& n);
// Geometry of a Conv with input shape x and weight shape w; throws on inconsistent shapes.
ConvGeom conv_geometry(const Node& n, const Dims& x, const Dims& w);
ConvGeom conv_transpose_geometry(const Node& n, const Dims& x, const Dims& w);
// Valid output index range [lo, hi) of positions o with 0 <= o * s + off < size.
void valid_range(int64_t off, int64_t s, int64_t size, int64_t count, int64_t& lo, int64_t& hi);

}  // namespace engine
