// Conv / ConvTranspose geometry (see conv_geom.h).
#include "ops/conv_geom.h"

#include <algorithm>
#include <string>
#include <vector>

#include "core/error.h"

namespace engine {
namespace {

enum class AutoPad { NotSet, SameUpper, SameLower, Valid };

AutoPad parse_auto_pad(const Node& n) {
  const std::string s = n.attrs.get_string("auto_pad", "NOTSET");
  if (s == "NOTSET" || s.empty()) return AutoPad::NotSet;
  if (s == "SAME_UPPER") return AutoPad::SameUpper;
  if (s == "SAME_LOWER") return AutoPad::SameLower;
  if (s == "VALID") return AutoPad::Valid;
  fail("attribute auto_pad='", s, "' is not one of NOTSET, SAME_UPPER, SAME_LOWER, VALID");
}

// Integer-list attribute with exactly `want` entries (or the default when absent), all >= lo.
std::vector<int64_t> ints_attr(const Node& n, const char* name, size_t want, int64_t def,
                               int64_t lo) {
  if (!n.attrs.has(name)) return std::vector<int64_t>(want, def);
  std::vector<int64_t> v = n.attrs.get_ints(name);
  const bool pads = std::string(name) == "pads";
  ENGINE_CHECK(
      v.size() == want, "attribute ", name, "=", dims_str(v), " has ", v.size(),
      " values, expected ", want,
      pads ? " (begin values then end values of each spatial axis)" : " (one per spatial axis)");
  for (int64_t x : v)
    ENGINE_CHECK(x >= lo, "attribute ", name, "=", dims_str(v), " must have values >= ", lo);
  return v;
}

// Fills nsp, N, C, group, in, k, s, d and checks ranks and kernel_shape.
ConvGeom common_geometry(const Node& n, const Dims& x, const Dims& w, const char* op) {
  ENGINE_CHECK(x.size() >= 3 && x.size() <= 5, op, ": input X must have rank 3, 4 or 5 (N, C, ",
               "then 1 to 3 spatial dims), got shape ", dims_str(x));
  ENGINE_CHECK(w.size() == x.size(), op, ": weight W must have the same rank as X (", x.size(),
               "), got W shape ", dims_str(w), " for X shape ", dims_str(x));
  ConvGeom g;
  g.nsp = int(x.size()) - 2;
  const size_t ns = size_t(g.nsp);
  g.N = x[0];
  g.C = x[1];
  g.group = n.attrs.get_int("group", 1);
  ENGINE_CHECK(g.group >= 1, op, ": attribute group=", g.group, " must be >= 1");
  const std::vector<int64_t> ks = ints_attr(n, "kernel_shape", ns, 1, 1);
  const std::vector<int64_t> st = ints_attr(n, "strides", ns, 1, 1);
  const std::vector<int64_t> dl = ints_attr(n, "dilations", ns, 1, 1);
  const int off = kMaxSpatial - g.nsp;
  for (size_t i = 0; i < ns; ++i) {
    const size_t c = size_t(off) + i;
    g.in[c] = x[2 + i];
    g.k[c] = w[2 + i];
    ENGINE_CHECK(g.k[c] >= 1, op, ": weight W has an empty kernel, shape ", dims_str(w));
    if (n.attrs.has("kernel_shape"))
      ENGINE_CHECK(ks[i] == w[2 + i], op, ": attribute kernel_shape=", dims_str(ks),
                   " does not match the spatial dims of W ", dims_str(w));
    g.s[c] = st[i];
    g.d[c] = dl[i];
  }
  return g;
}

}  // namespace

void conv_validate_attrs(const Node& n) {
  parse_auto_pad(n);
  ENGINE_CHECK(n.attrs.get_int("group", 1) >= 1, "attribute group=", n.attrs.get_int("group", 1),
               " must be >= 1");
  for (const char* name : {"strides", "dilations"})
    if (n.attrs.has(name))
      for (int64_t x : n.attrs.get_ints(name))
        ENGINE_CHECK(x >= 1, "attribute ", name, "=", dims_str(n.attrs.get_ints(name)),
                     " must have values >= 1");
  if (n.attrs.has("pads"))
    for (int64_t x : n.attrs.get_ints("pads"))
      ENGINE_CHECK(x >= 0, "attribute pads=", dims_str(n.attrs.get_ints("pads")),
                   " must have values >= 0");
  if (n.attrs.has("kernel_shape"))
    for (int64_t x : n.attrs.get_ints("kernel_shape"))
      ENGINE_CHECK(x >= 1, "attribute kernel_shape=", dims_str(n.attrs.get_ints("kernel_shape")),
                   " must have values >= 1");
}

ConvGeom conv_geometry(const Node& n, const Dims& x, const Dims& w) {
  ConvGeom g = common_geometry(n, x, w, "Conv");
  g.M = w[0];
  ENGINE_CHECK(w[1] * g.group == g.C, "Conv: input X has ", g.C,
               " channels but W.shape[1] * group = ", w[1], " * ", g.group, " = ", w[1] * g.group,
               " (W shape ", dims_str(w), "); expected W.shape[1] == C / group",
               g.C % g.group == 0 ? str_cat(" = ", g.C / g.group)
                                  : std::string(" and C divisible by group"));
  ENGINE_CHECK(g.M % g.group == 0, "Conv: W.shape[0] = ", g.M,
               " output channels is not divisible by group = ", g.group);
  const size_t ns = size_t(g.nsp);
  const AutoPad ap = parse_auto_pad(n);
  const std::vector<int64_t> pads = ints_attr(n, "pads", 2 * ns, 0, 0);
  const int off = kMaxSpatial - g.nsp;
  for (size_t i = 0; i < ns; ++i) {
    const size_t c = size_t(off) + i;
    const int64_t in = g.in[c], s = g.s[c], ek = (g.k[c] - 1) * g.d[c] + 1;
    if (ap == AutoPad::SameUpper || ap == AutoPad::SameLower) {
      g.out[c] = ceil_div_pos(in, s);
      const int64_t total = std::max<int64_t>(0, (g.out[c] - 1) * s + ek - in);
      g.pb[c] = ap == AutoPad::SameUpper ? total / 2 : total - total / 2;
      g.pe[c] = total - g.pb[c];
    } else {
      if (ap == AutoPad::NotSet) {
        g.pb[c] = pads[i];
        g.pe[c] = pads[i + ns];
      }
      const int64_t padded = in + g.pb[c] + g.pe[c];
      ENGINE_CHECK(padded >= ek, "Conv: spatial axis ", i, " has size ", in, " (", padded,
                   " with padding), smaller than the dilated kernel size ", ek, " (X shape ",
                   dims_str(x), ", W shape ", dims_str(w), ")");
      g.out[c] = (padded - ek) / s + 1;
    }
  }
  return g;
}

ConvGeom conv_transpose_geometry(const Node& n, const Dims& x, const Dims& w) {
  ConvGeom g = common_geometry(n, x, w, "ConvTranspose");
  ENGINE_CHECK(w[0] == g.C, "ConvTranspose: input X has ", g.C, " channels but W.shape[0] = ", w[0],
               " (W shape ", dims_str(w), "); expected W.shape[0] == C = ", g.C);
  ENGINE_CHECK(g.C % g.group == 0, "ConvTranspose: input channels ", g.C,
               " are not divisible by group = ", g.group);
  g.M = w[1] * g.group;
  const size_t ns = size_t(g.nsp);
  const AutoPad ap = parse_auto_pad(n);
  const std::vector<int64_t> pads = ints_attr(n, "pads", 2 * ns, 0, 0);
  const std::vector<int64_t> opad = ints_attr(n, "output_padding", ns, 0, 0);
  std::vector<int64_t> oshape;
  if (n.attrs.has("output_shape")) {
    oshape = n.attrs.get_ints("output_shape");
    if (oshape.size() == ns + 2) oshape.erase(oshape.begin(), oshape.begin() + 2);  // N, C given
    ENGINE_CHECK(oshape.size() == ns, "ConvTranspose: attribute output_shape=",
                 dims_str(n.attrs.get_ints("output_shape")), " must have ", ns,
                 " values (one per spatial axis)");
  }
  const int off = kMaxSpatial - g.nsp;
  for (size_t i = 0; i < ns; ++i) {
    const size_t c = size_t(off) + i;
    const int64_t in = g.in[c], s = g.s[c], ek = (g.k[c] - 1) * g.d[c] + 1;
    const int64_t full = s * (in - 1) + opad[i] + ek;  // output size without padding
    if (!oshape.empty() || ap == AutoPad::SameUpper || ap == AutoPad::SameLower) {
      // Output size given (or in * stride for SAME_*): pads follow from it.
      g.out[c] = oshape.empty() ? in * s : oshape[i];
      ENGINE_CHECK(g.out[c] >= 1, "ConvTranspose: output_shape=", dims_str(oshape),
                   " must be positive");
      const int64_t total = full - g.out[c];
      if (total <= 0) {
        g.pb[c] = 0;  // larger than the natural size: the extra positions (at the end) get bias
      } else {
        g.pb[c] = ap == AutoPad::SameUpper ? total / 2 : total - total / 2;
      }
      g.pe[c] = total - g.pb[c];
    } else {
      if (ap == AutoPad::NotSet) {
        g.pb[c] = pads[i];
        g.pe[c] = pads[i + ns];
      }
      g.out[c] = full - g.pb[c] - g.pe[c];
      ENGINE_CHECK(g.out[c] >= 1, "ConvTranspose: output spatial axis ", i, " would have size ",
                   g.out[c], " (pads ", dims_str(pads), " too large for X shape ", dims_str(x),
                   ", W shape ", dims_str(w), ")");
    }
  }
  return g;
}

void valid_range(int64_t off, int64_t s, int64_t size, int64_t count, int64_t& lo, int64_t& hi) {
  lo = off >= 0 ? 0 : ceil_div_pos(-off, s);
  hi = size - 1 - off < 0 ? 0 : (size - 1 - off) / s + 1;
  lo = std::min(lo, count);
  hi = std::min(hi, count);
  if (hi < lo) hi = lo;
}

}  // namespace engine
