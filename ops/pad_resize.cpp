// Pad, Resize and Upsample.
//
// Pad (opset 2: pads/value attributes; opset 11+: pads input, optional constant_value input;
// opset 18+: optional axes input). Modes constant, reflect, edge and wrap. Negative pads crop:
// the input is first cropped, then the remaining positive pads are applied to the cropped data
// (so reflect/edge/wrap see the cropped tensor), as in the ONNX reference implementation.
//
// Resize (opset 10: X, scales; opset 11+: X, roi, scales, sizes; an empty tensor counts as
// omitted) and Upsample (opset 7: scales attribute; opset 9: scales input). Modes nearest, linear
// (n-linear) and cubic; every coordinate_transformation_mode including tf_crop_and_resize
// (extrapolation_value); opset 18 axes and keep_aspect_ratio_policy. antialias=1 is rejected.
// Resize-10 and Upsample use asymmetric coordinates and the legacy nearest rounding (floor when
// upsampling an axis, ceil when downsampling it), like onnxruntime.
// Following the ONNX reference, the "resized length" in align_corners / tf_crop_and_resize is
// scale * input_length (equal to the output length when sizes is given); linear and cubic clamp
// source taps to the input edge. Integer tensors interpolated with linear/cubic are rounded to
// nearest and saturated.
#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "ops/ops.h"

namespace engine {
namespace {

// ============================== Pad ==============================

struct PadSpec {
  std::vector<int64_t> begin, end;  // per axis of the input, may be negative
  std::string mode;
};

std::vector<int64_t> normalize_axes(const std::vector<int64_t>& axes, int rank, const char* what) {
  std::vector<int64_t> out;
  std::vector<bool> seen(size_t(rank), false);
  for (int64_t a : axes) {
    ENGINE_CHECK(a >= -rank && a < rank, what, " value ", a, " is out of range for rank ", rank);
    if (a < 0) a += rank;
    ENGINE_CHECK(!seen[size_t(a)], what, " contains axis ", a, " twice");
    seen[size_t(a)] = true;
    out.push_back(a);
  }
  return out;
}

void validate_pad(const Node& node) {
  const std::string mode = node.attrs.get_string("mode", "constant");
  ENGINE_CHECK(mode == "constant" || mode == "reflect" || mode == "edge" || mode == "wrap",
               "attribute mode='", mode,
               "' is not supported (expected constant, reflect, edge or "
               "wrap)");
  if (node.opset < 11) ENGINE_CHECK(node.attrs.has("pads"), "required attribute 'pads' is missing");
}

// pads_t / axes_t: the pads and axes inputs (opset >= 11), nullptr if omitted.
PadSpec pad_spec(const Node& node, const Dims& x, const Tensor* pads_t, const Tensor* axes_t) {
  const int rank = int(x.size());
  PadSpec p;
  p.mode = node.attrs.get_string("mode", "constant");
  std::vector<int64_t> pads;
  std::vector<int64_t> axes;
  if (node.opset < 11) {
    pads = node.attrs.get_ints("pads");
  } else {
    ENGINE_CHECK(pads_t, "input 'pads' is required");
    ENGINE_CHECK(pads_t->dtype() == DType::I64 || pads_t->dtype() == DType::I32,
                 "input 'pads' must be int64, got ", dtype_name(pads_t->dtype()));
    ENGINE_CHECK(pads_t->rank() <= 1, "input 'pads' must be 1-D, got shape ",
                 dims_str(pads_t->shape()));
    pads = pads_t->to_int_vector();
    if (axes_t && axes_t->numel() > 0) {
      ENGINE_CHECK(axes_t->dtype() == DType::I64 || axes_t->dtype() == DType::I32,
                   "input 'axes' must be int32 or int64, got ", dtype_name(axes_t->dtype()));
      axes = normalize_axes(axes_t->to_int_vector(), rank, "input 'axes'");
    }
  }
  if (axes.empty())
    for (int i = 0; i < rank; ++i) axes.push_back(i);
  const size_t na = axes.size();
  ENGINE_CHECK(pads.size() == 2 * na, "pads has ", pads.size(), " values, expected ", 2 * na,
               " (2 * number of padded axes) for input shape ", dims_str(x));
  p.begin.assign(size_t(rank), 0);
  p.end.assign(size_t(rank), 0);
  constexpr int64_t kLim = int64_t(1) << 40;
  for (size_t i = 0; i < na; ++i) {
    const int64_t b = pads[i], e = pads[i + na];
    ENGINE_CHECK(b > -kLim && b < kLim && e > -kLim && e < kLim, "pad values ", b, ", ", e,
                 " for axis ", axes[i], " are out of range");
    p.begin[size_t(axes[i])] = b;
    p.end[size_t(axes[i])] = e;
  }
  for (int i = 0; i < rank; ++i) {
    const int64_t n = x[size_t(i)], b = p.begin[size_t(i)], e = p.end[size_t(i)];
    const int64_t kept = n - std::max<int64_t>(0, -b) - std::max<int64_t>(0, -e);
    ENGINE_CHECK(kept >= 0, "negative pads ", b, ", ", e, " crop more than the size ", n,
                 " of axis ", i);
    if (p.mode != "constant" && kept == 0 && (b > 0 || e > 0))
      fail("mode '", p.mode, "' cannot pad axis ", i, " which is empty (size ", n,
           " after cropping ", std::max<int64_t>(0, -b) + std::max<int64_t>(0, -e), ")");
  }
  return p;
}

// Source index along one axis for each output position (-1: constant value).
std::vector<int64_t> pad_axis_map(int64_t n, int64_t b, int64_t e, const std::string& mode) {
  const int64_t cb = std::max<int64_t>(0, -b), ce = std::max<int64_t>(0, -e);
  const int64_t m = n - cb - ce;  // cropped length
  const int64_t pb = std::max<int64_t>(0, b), pe = std::max<int64_t>(0, e);
  std::vector<int64_t> map(size_t(m + pb + pe));
  for (int64_t o = 0; o < int64_t(map.size()); ++o) {
    int64_t i = o - pb;
    if (i < 0 || i >= m) {
      if (mode == "constant") {
        i = -1;
      } else if (mode == "edge") {
        i = std::clamp<int64_t>(i, 0, m - 1);
      } else if (mode == "wrap") {
        i = ((i % m) + m) % m;
      } else {  // reflect
        if (m == 1) {
          i = 0;
        } else {
          const int64_t period = 2 * (m - 1);
          i = ((i % period) + period) % period;
          if (i >= m) i = period - i;
        }
      }
    }
    map[size_t(o)] = i < 0 ? -1 : i + cb;
  }
  return map;
}

template <class T>
void pad_kernel(const Tensor& x, Tensor& y, const PadSpec& p, T value) {
  const int rank = x.rank();
  const Dims& in = x.shape();
  const Dims& out = y.shape();
  T* yp = y.data<T>();
  const T* xp = x.data<T>();
  if (rank == 0) {
    if (y.numel() == 1) yp[0] = xp[0];
    return;
  }
  std::vector<std::vector<int64_t>> maps(static_cast<size_t>(rank));
  for (int i = 0; i < rank; ++i)
    maps[size_t(i)] = pad_axis_map(in[size_t(i)], p.begin[size_t(i)], p.end[size_t(i)], p.mode);
  std::vector<int64_t> in_stride(size_t(rank), 1);
  for (int i = rank - 2; i >= 0; --i)
    in_stride[size_t(i)] = in_stride[size_t(i) + 1] * in[size_t(i) + 1];
  const int64_t inner = out[size_t(rank - 1)];
  if (inner == 0 || y.numel() == 0) return;
  const int64_t rows = y.numel() / inner;
  const std::vector<int64_t>& last = maps[size_t(rank - 1)];
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; ++r) {
    int64_t rem = r, off = 0;
    bool constant_row = false;
    for (int i = rank - 2; i >= 0; --i) {
      const int64_t o = rem % out[size_t(i)];
      rem /= out[size_t(i)];
      const int64_t s = maps[size_t(i)][size_t(o)];
      if (s < 0)
        constant_row = true;
      else
        off += s * in_stride[size_t(i)];
    }
    T* yr = yp + r * inner;
    if (constant_row) {
      std::fill(yr, yr + inner, value);
      continue;
    }
    const T* xr = xp + off;
    for (int64_t o = 0; o < inner; ++o) {
      const int64_t s = last[size_t(o)];
      yr[o] = s < 0 ? value : xr[s];
    }
  }
}

const Tensor* nonempty(const Tensor* t) {
  return t && t->numel() > 0 ? t : nullptr;
}

void add_pad(OpRegistry& r) {
  OpSchema s;
  s.op_type = "Pad";
  s.min_inputs = 1;
  s.max_inputs = 4;
  s.validate = validate_pad;
  s.infer = [](InferContext& ctx) {
    const Dims& x = ctx.shape(0);
    const Tensor* pads = nullptr;
    const Tensor* axes = nullptr;
    if (ctx.opset() >= 11) {
      ENGINE_CHECK(ctx.has_input(1), "input 'pads' is required");
      pads = &ctx.value(1);
      if (ctx.has_input(3)) axes = &ctx.value(3);
      if (ctx.has_input(2)) {
        ENGINE_CHECK(ctx.dtype(2) == ctx.dtype(0), "input 'constant_value' has type ",
                     dtype_name(ctx.dtype(2)), " but data has type ", dtype_name(ctx.dtype(0)));
        int64_t n = 1;
        for (int64_t d : ctx.shape(2)) n *= d;
        ENGINE_CHECK(n <= 1, "input 'constant_value' must be a scalar, got shape ",
                     dims_str(ctx.shape(2)));
      }
    }
    const PadSpec p = pad_spec(ctx.node(), x, pads, axes);
    Dims out = x;
    for (size_t i = 0; i < out.size(); ++i) out[i] += p.begin[i] + p.end[i];
    ctx.set_output(0, ctx.dtype(0), out);
  };
  s.kernel = [](KernelContext& kc) {
    const Tensor& x = kc.in(0);
    const Tensor* pads = kc.has_input(1) ? &kc.in(1) : nullptr;
    const Tensor* axes = kc.has_input(3) ? &kc.in(3) : nullptr;
    const PadSpec p = pad_spec(kc.node, x.shape(), pads, axes);
    const Tensor* cv = kc.node.opset >= 11 && kc.has_input(2) ? nonempty(&kc.in(2)) : nullptr;
    const double attr_value = kc.node.opset < 11 ? kc.attrs().get_float("value", 0.f) : 0.0;
    Tensor& y = kc.out(0);
    auto run = [&](auto tag) {
      using T = decltype(tag);
      T value = cv ? cv->data<T>()[0] : T(attr_value);
      pad_kernel<T>(x, y, p, value);
    };
    if (x.dtype() == DType::F16) {
      // Copy the half bits as uint16; only the attribute constant needs converting.
      const uint16_t v =
          cv ? *static_cast<const uint16_t*>(cv->raw()) : float_to_half(float(attr_value));
      const Tensor xv = Tensor::view(DType::U16, x.shape(), const_cast<void*>(x.raw()));
      Tensor yv = Tensor::view(DType::U16, y.shape(), y.raw());
      pad_kernel<uint16_t>(xv, yv, p, v);
      return;
    }
    dispatch_dtype(x.dtype(), run);
  };
  r.add(std::move(s));
}

// ============================== Resize / Upsample ==============================

enum class Interp { Nearest, Linear, Cubic };
enum class Ctm {
  HalfPixel,
  HalfPixelSym,
  PytorchHalfPixel,
  AlignCorners,
  Asymmetric,
  TfHalfPixelNN,
  TfCrop
};
enum class NearestRound { PreferFloor, PreferCeil, Floor, Ceil, Legacy };

struct ResizeAttrs {
  Interp mode = Interp::Nearest;
  Ctm ctm = Ctm::HalfPixel;
  NearestRound nearest = NearestRound::PreferFloor;
  double cubic_a = -0.75;
  bool exclude_outside = false;
  double extrapolation = 0.0;
  std::vector<int64_t> axes;  // raw attribute, normalized later
  std::string policy = "stretch";
};

bool is_upsample(const Node& n) {
  return n.op_type == "Upsample";
}
bool legacy_resize(const Node& n) {
  return is_upsample(n) || n.opset < 11;
}

Interp parse_mode(const std::string& m) {
  if (m == "nearest") return Interp::Nearest;
  if (m == "linear" || m == "bilinear") return Interp::Linear;
  if (m == "cubic") return Interp::Cubic;
  fail("attribute mode='", m, "' is not supported (expected nearest, linear or cubic)");
}

ResizeAttrs resize_attrs(const Node& node) {
  const Attributes& a = node.attrs;
  ResizeAttrs r;
  const std::string mode = a.get_string("mode", "nearest");
  r.mode = parse_mode(mode);
  if (legacy_resize(node)) {
    ENGINE_CHECK(mode != "cubic", node.op_type, "-", node.opset, " does not have mode 'cubic'");
    ENGINE_CHECK(mode != "bilinear" || is_upsample(node),
                 "attribute mode='bilinear' is not valid for Resize (use 'linear')");
    r.ctm = Ctm::Asymmetric;
    r.nearest = NearestRound::Legacy;
    return r;
  }
  ENGINE_CHECK(mode != "bilinear",
               "attribute mode='bilinear' is not valid for Resize (use "
               "'linear')");
  const std::string ctm = a.get_string("coordinate_transformation_mode", "half_pixel");
  if (ctm == "half_pixel")
    r.ctm = Ctm::HalfPixel;
  else if (ctm == "half_pixel_symmetric")
    r.ctm = Ctm::HalfPixelSym;
  else if (ctm == "pytorch_half_pixel")
    r.ctm = Ctm::PytorchHalfPixel;
  else if (ctm == "align_corners")
    r.ctm = Ctm::AlignCorners;
  else if (ctm == "asymmetric")
    r.ctm = Ctm::Asymmetric;
  else if (ctm == "tf_half_pixel_for_nearest" || ctm == "tf_half_pixel_for_nn")
    r.ctm = Ctm::TfHalfPixelNN;  // "_nn": the spelling of ONNX's own 1.12 backend test data
  else if (ctm == "tf_crop_and_resize")
    r.ctm = Ctm::TfCrop;
  else
    fail("attribute coordinate_transformation_mode='", ctm,
         "' is not supported (expected "
         "half_pixel, half_pixel_symmetric, pytorch_half_pixel, align_corners, asymmetric, "
         "tf_half_pixel_for_nearest or tf_crop_and_resize)");
  const std::string nm = a.get_string("nearest_mode", "round_prefer_floor");
  if (nm == "round_prefer_floor")
    r.nearest = NearestRound::PreferFloor;
  else if (nm == "round_prefer_ceil")
    r.nearest = NearestRound::PreferCeil;
  else if (nm == "floor")
    r.nearest = NearestRound::Floor;
  else if (nm == "ceil")
    r.nearest = NearestRound::Ceil;
  else
    fail("attribute nearest_mode='", nm,
         "' is not supported (expected round_prefer_floor, "
         "round_prefer_ceil, floor or ceil)");
  r.cubic_a = a.get_float("cubic_coeff_a", -0.75f);
  const int64_t eo = a.get_int("exclude_outside", 0);
  ENGINE_CHECK(eo == 0 || eo == 1, "attribute exclude_outside=", eo, " must be 0 or 1");
  r.exclude_outside = eo != 0;
  r.extrapolation = a.get_float("extrapolation_value", 0.f);
  const int64_t aa = a.get_int("antialias", 0);
  ENGINE_CHECK(aa == 0, "attribute antialias=", aa, " is not supported (only 0)");
  r.axes = a.get_ints("axes", {});
  r.policy = a.get_string("keep_aspect_ratio_policy", "stretch");
  ENGINE_CHECK(r.policy == "stretch" || r.policy == "not_larger" || r.policy == "not_smaller",
               "attribute keep_aspect_ratio_policy='", r.policy,
               "' is not supported (expected stretch, not_larger or not_smaller)");
  return r;
}

struct ResizePlan {
  Dims out;
  std::vector<double> scale;  // per axis
  std::vector<bool> resized;  // false: axis not in `axes` (copied as is)
};

// scales / sizes: the inputs, nullptr when omitted or empty. attr_scales: Upsample-7.
ResizePlan resize_plan(const ResizeAttrs& ra, const Dims& x, const Tensor* scales,
                       const Tensor* sizes, const std::vector<float>* attr_scales) {
  const int rank = int(x.size());
  ResizePlan p;
  p.out = x;
  p.scale.assign(size_t(rank), 1.0);
  p.resized.assign(size_t(rank), true);
  std::vector<int64_t> axes;
  if (!ra.axes.empty()) {
    axes = normalize_axes(ra.axes, rank, "attribute 'axes'");
    std::fill(p.resized.begin(), p.resized.end(), false);
    for (int64_t a : axes) p.resized[size_t(a)] = true;
  } else {
    for (int i = 0; i < rank; ++i) axes.push_back(i);
  }
  const size_t na = axes.size();
  ENGINE_CHECK(!(scales && sizes),
               "only one of 'scales' and 'sizes' may be given (the other must "
               "be omitted or empty)");
  std::vector<double> sv;
  if (attr_scales) {
    for (float f : *attr_scales) sv.push_back(f);
  } else if (scales) {
    ENGINE_CHECK(scales->dtype() == DType::F32 || scales->dtype() == DType::F64,
                 "input 'scales' must be float, got ", dtype_name(scales->dtype()));
    for (int64_t i = 0; i < scales->numel(); ++i) sv.push_back(scales->get_as_double(i));
  }
  if (attr_scales || scales) {
    ENGINE_CHECK(sv.size() == na, "scales has ", sv.size(), " values, expected ", na,
                 " for input shape ", dims_str(x));
    for (size_t i = 0; i < na; ++i) {
      const double s = sv[i];
      ENGINE_CHECK(std::isfinite(s) && s > 0, "scales value ", s, " must be a positive number");
      const size_t a = size_t(axes[i]);
      const double o = std::floor(double(x[a]) * s);
      ENGINE_CHECK(o < 1e15, "scales value ", s, " gives a too large output");
      p.scale[a] = s;
      p.out[a] = int64_t(o);
    }
    return p;
  }
  ENGINE_CHECK(sizes, "one of 'scales' or 'sizes' must be given");
  ENGINE_CHECK(sizes->dtype() == DType::I64, "input 'sizes' must be int64, got ",
               dtype_name(sizes->dtype()));
  const std::vector<int64_t> sz = sizes->to_int_vector();
  ENGINE_CHECK(sz.size() == na, "sizes has ", sz.size(), " values, expected ", na,
               " for input shape ", dims_str(x));
  for (size_t i = 0; i < na; ++i) {
    const size_t a = size_t(axes[i]);
    ENGINE_CHECK(sz[i] >= 1 && sz[i] < (int64_t(1) << 40), "sizes value ", sz[i], " for axis ", a,
                 " must be >= 1");
    ENGINE_CHECK(x[a] >= 1, "cannot resize axis ", a, " of size 0 to size ", sz[i]);
    p.scale[a] = double(sz[i]) / double(x[a]);
    p.out[a] = sz[i];
  }
  if (ra.policy != "stretch") {
    double s = p.scale[size_t(axes[0])];
    for (int64_t a : axes)
      s = ra.policy == "not_larger" ? std::min(s, p.scale[size_t(a)])
                                    : std::max(s, p.scale[size_t(a)]);
    for (int64_t a : axes) {
      p.scale[size_t(a)] = s;
      p.out[size_t(a)] = int64_t(std::floor(s * double(x[size_t(a)]) + 0.5));
    }
  }
  return p;
}

// Taps of all output positions along one axis (CSR).
struct AxisTaps {
  std::vector<int64_t> begin;  // size out + 1
  std::vector<int64_t> idx;
  std::vector<double> w;
  std::vector<uint8_t> outside;  // tf_crop_and_resize: position gets extrapolation_value
};

double source_coord(Ctm ctm, double xo, double scale, int64_t out_len, int64_t in_len,
                    double roi_start, double roi_end) {
  const double len_in = double(in_len);
  const double len_out = scale * len_in;  // "resized length" as in the ONNX reference
  switch (ctm) {
    case Ctm::HalfPixel:
      return (xo + 0.5) / scale - 0.5;
    case Ctm::HalfPixelSym: {
      const double adjustment = double(out_len) / len_out;
      const double center = len_in / 2;
      return center * (1 - adjustment) + (xo + 0.5) / scale - 0.5;
    }
    case Ctm::PytorchHalfPixel:
      return out_len > 1 ? (xo + 0.5) / scale - 0.5 : 0.0;
    case Ctm::AlignCorners:
      return len_out == 1 ? 0.0 : xo * (len_in - 1) / (len_out - 1);
    case Ctm::Asymmetric:
      return xo / scale;
    case Ctm::TfHalfPixelNN:
      return (xo + 0.5) / scale;
    case Ctm::TfCrop:
      if (len_out == 1) return 0.5 * (roi_start + roi_end) * (len_in - 1);
      return roi_start * (len_in - 1) + xo * (roi_end - roi_start) * (len_in - 1) / (len_out - 1);
  }
  return 0;
}

int64_t nearest_index(NearestRound m, double x, double scale) {
  const double f = std::floor(x);
  const double r = x - f;
  double v = f;
  switch (m) {
    case NearestRound::PreferFloor:
      v = r > 0.5 ? f + 1 : f;
      break;
    case NearestRound::PreferCeil:
      v = r >= 0.5 ? f + 1 : f;
      break;
    case NearestRound::Floor:
      v = f;
      break;
    case NearestRound::Ceil:
      v = std::ceil(x);
      break;
    case NearestRound::Legacy:
      v = scale < 1 ? std::ceil(x) : f;
      break;
  }
  if (!(v > -1e15 && v < 1e15)) return v > 0 ? std::numeric_limits<int64_t>::max() : -1;
  return int64_t(v);
}

double cubic_weight(double s, double A) {
  s = std::abs(s);
  if (s <= 1) return ((A + 2) * s - (A + 3)) * s * s + 1;
  if (s < 2) return ((A * s - 5 * A) * s + 8 * A) * s - 4 * A;
  return 0;
}

AxisTaps axis_taps(const ResizeAttrs& ra, bool resized, int64_t in, int64_t out, double scale,
                   double roi_start, double roi_end) {
  AxisTaps t;
  t.begin.reserve(size_t(out) + 1);
  t.outside.assign(size_t(out), 0);
  auto clampi = [in](int64_t i) { return std::clamp<int64_t>(i, 0, in - 1); };
  for (int64_t o = 0; o < out; ++o) {
    t.begin.push_back(int64_t(t.idx.size()));
    if (!resized) {
      t.idx.push_back(o);
      t.w.push_back(1.0);
      continue;
    }
    const double x = source_coord(ra.ctm, double(o), scale, out, in, roi_start, roi_end);
    if (ra.ctm == Ctm::TfCrop && (x < 0 || x > double(in - 1))) {
      t.outside[size_t(o)] = 1;
      continue;
    }
    if (ra.mode == Interp::Nearest) {
      const int64_t i = nearest_index(ra.nearest, x, scale);
      t.idx.push_back(std::clamp<int64_t>(i, 0, in - 1));
      t.w.push_back(1.0);
      continue;
    }
    const double xc = ra.mode == Interp::Linear ? std::clamp(x, 0.0, double(in - 1)) : x;
    const double f = std::floor(xc);
    ENGINE_CHECK(f > -1e15 && f < 1e15, "resize source coordinate ", x, " is out of range");
    const int64_t i0 = int64_t(f);
    const double r = xc - f;
    if (ra.mode == Interp::Linear) {
      if (r == 0) {
        t.idx.push_back(clampi(i0));
        t.w.push_back(1.0);
      } else {
        t.idx.push_back(clampi(i0));
        t.w.push_back(1 - r);
        t.idx.push_back(clampi(i0 + 1));
        t.w.push_back(r);
      }
      continue;
    }
    // Cubic: taps i0-1 .. i0+2.
    double w[4], sum = 0;
    for (int k = 0; k < 4; ++k) {
      const int64_t i = i0 - 1 + k;
      w[k] = cubic_weight(r - double(k - 1), ra.cubic_a);
      if (ra.exclude_outside && (i < 0 || i >= in)) w[k] = 0;
      sum += w[k];
    }
    for (int k = 0; k < 4; ++k) {
      if (w[k] == 0) continue;
      t.idx.push_back(clampi(i0 - 1 + k));
      t.w.push_back(ra.exclude_outside && sum != 0 ? w[k] / sum : w[k]);
    }
  }
  t.begin.push_back(int64_t(t.idx.size()));
  return t;
}

template <class T>
T convert_out(double v) {
  if constexpr (std::is_floating_point_v<T>) {
    return T(v);
  } else if constexpr (std::is_same_v<T, bool>) {
    return v != 0;
  } else {
    if (std::isnan(v)) return T(0);
    const double r = std::nearbyint(v);
    if (r <= double(std::numeric_limits<T>::lowest())) return std::numeric_limits<T>::lowest();
    if (r >= double(std::numeric_limits<T>::max())) return std::numeric_limits<T>::max();
    return T(r);
  }
}

template <class T>
void resize_kernel(const Tensor& x, Tensor& y, const std::vector<AxisTaps>& taps, bool nearest,
                   double extrapolation) {
  const int rank = x.rank();
  const Dims& in = x.shape();
  const Dims& out = y.shape();
  const T* xp = x.data<T>();
  T* yp = y.data<T>();
  if (y.numel() == 0) return;
  if (rank == 0) {
    yp[0] = xp[0];
    return;
  }
  std::vector<int64_t> in_stride(size_t(rank), 1);
  for (int i = rank - 2; i >= 0; --i)
    in_stride[size_t(i)] = in_stride[size_t(i) + 1] * in[size_t(i) + 1];
  const int64_t inner = out[size_t(rank - 1)];
  const int64_t rows = y.numel() / inner;
  const AxisTaps& lt = taps[size_t(rank - 1)];
  const T extra = convert_out<T>(extrapolation);
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; ++r) {
    // Offsets and weights of the combined taps of the outer axes.
    std::vector<int64_t> offs{0};
    std::vector<double> ws{1.0};
    int64_t rem = r;
    bool outside = false;
    std::vector<int64_t> coord(size_t(rank > 1 ? rank - 1 : 0));
    for (int i = rank - 2; i >= 0; --i) {
      coord[size_t(i)] = rem % out[size_t(i)];
      rem /= out[size_t(i)];
    }
    for (int i = 0; i < rank - 1 && !outside; ++i) {
      const AxisTaps& t = taps[size_t(i)];
      const int64_t o = coord[size_t(i)];
      if (t.outside[size_t(o)]) {
        outside = true;
        break;
      }
      std::vector<int64_t> no;
      std::vector<double> nw;
      for (size_t c = 0; c < offs.size(); ++c)
        for (int64_t k = t.begin[size_t(o)]; k < t.begin[size_t(o) + 1]; ++k) {
          no.push_back(offs[c] + t.idx[size_t(k)] * in_stride[size_t(i)]);
          nw.push_back(ws[c] * t.w[size_t(k)]);
        }
      offs.swap(no);
      ws.swap(nw);
    }
    T* yr = yp + r * inner;
    if (outside) {
      std::fill(yr, yr + inner, extra);
      continue;
    }
    for (int64_t o = 0; o < inner; ++o) {
      if (lt.outside[size_t(o)]) {
        yr[o] = extra;
        continue;
      }
      const int64_t kb = lt.begin[size_t(o)], ke = lt.begin[size_t(o) + 1];
      if (nearest) {
        yr[o] = xp[offs[0] + lt.idx[size_t(kb)]];
        continue;
      }
      double acc = 0;
      for (size_t c = 0; c < offs.size(); ++c)
        for (int64_t k = kb; k < ke; ++k)
          acc += ws[c] * lt.w[size_t(k)] * double(xp[offs[c] + lt.idx[size_t(k)]]);
      yr[o] = convert_out<T>(acc);
    }
  }
}

// Inputs of Resize/Upsample by opset.
struct ResizeInputs {
  int roi = -1, scales = -1, sizes = -1;
};
ResizeInputs resize_inputs(const Node& node) {
  if (is_upsample(node)) return node.opset >= 9 ? ResizeInputs{-1, 1, -1} : ResizeInputs{};
  if (node.opset < 11) return ResizeInputs{-1, 1, -1};
  return ResizeInputs{1, 2, 3};
}

void validate_resize(const Node& node) {
  const ResizeAttrs ra = resize_attrs(node);
  (void)ra;
  if (is_upsample(node) && node.opset < 9)
    ENGINE_CHECK(node.attrs.has("scales"), "required attribute 'scales' is missing");
}

void check_resize_dtype(DType t, Interp mode, const std::string& op) {
  if (mode == Interp::Nearest) {
    ENGINE_CHECK(t != DType::String && t != DType::Undefined, op, ": unsupported input type ",
                 dtype_name(t));
    return;
  }
  ENGINE_CHECK(t != DType::Bool && t != DType::F16 && t != DType::String && t != DType::Undefined,
               op, ": linear/cubic interpolation does not support input type ", dtype_name(t));
}

std::vector<double> roi_values(const Tensor* roi, int rank, const std::vector<int64_t>& axes_attr) {
  // Returns [start_0..start_{r-1}, end_0..end_{r-1}] for all axes.
  std::vector<double> v(size_t(2 * rank), 0.0);
  for (int i = 0; i < rank; ++i) v[size_t(rank + i)] = 1.0;
  ENGINE_CHECK(roi, "input 'roi' is required by coordinate_transformation_mode=tf_crop_and_resize");
  std::vector<int64_t> axes;
  if (axes_attr.empty())
    for (int i = 0; i < rank; ++i) axes.push_back(i);
  else
    axes = normalize_axes(axes_attr, rank, "attribute 'axes'");
  const size_t na = axes.size();
  ENGINE_CHECK(size_t(roi->numel()) == 2 * na, "input 'roi' has ", roi->numel(),
               " values, expected ", 2 * na);
  ENGINE_CHECK(dtype_is_float(roi->dtype()), "input 'roi' must be float, got ",
               dtype_name(roi->dtype()));
  for (size_t i = 0; i < na; ++i) {
    v[size_t(axes[i])] = roi->get_as_double(int64_t(i));
    v[size_t(rank + axes[i])] = roi->get_as_double(int64_t(na + i));
  }
  return v;
}

void add_resize(OpRegistry& reg, const std::string& op) {
  OpSchema s;
  s.op_type = op;
  s.min_inputs = 1;
  s.max_inputs = op == "Upsample" ? 2 : 4;
  s.validate = validate_resize;
  s.infer = [](InferContext& ctx) {
    const Node& node = ctx.node();
    const ResizeAttrs ra = resize_attrs(node);
    check_resize_dtype(ctx.dtype(0), ra.mode, node.op_type);
    const ResizeInputs ri = resize_inputs(node);
    const Tensor* scales = nullptr;
    const Tensor* sizes = nullptr;
    std::vector<float> attr_scales;
    if (ri.scales < 0) {
      attr_scales = node.attrs.get_floats("scales");
    } else {
      if (legacy_resize(node)) ENGINE_CHECK(ctx.has_input(ri.scales), "input 'scales' is required");
      if (ctx.has_input(ri.scales)) scales = nonempty(&ctx.value(ri.scales));
    }
    if (ri.sizes >= 0 && ctx.has_input(ri.sizes)) sizes = nonempty(&ctx.value(ri.sizes));
    if (ra.ctm == Ctm::TfCrop) {
      const Tensor* roi = ri.roi >= 0 ? nonempty(ctx.value_or_null(ri.roi)) : nullptr;
      if (roi)
        roi_values(roi, ctx.rank(0), ra.axes);  // validate early when known
      else
        ENGINE_CHECK(ri.roi >= 0 && ctx.has_input(ri.roi),
                     "input 'roi' is required by "
                     "coordinate_transformation_mode=tf_crop_and_resize");
    }
    const ResizePlan p =
        resize_plan(ra, ctx.shape(0), scales, sizes, ri.scales < 0 ? &attr_scales : nullptr);
    ctx.set_output(0, ctx.dtype(0), p.out);
  };
  s.kernel = [](KernelContext& kc) {
    const Node& node = kc.node;
    const ResizeAttrs ra = resize_attrs(node);
    const ResizeInputs ri = resize_inputs(node);
    const Tensor& x = kc.in(0);
    const int rank = x.rank();
    std::vector<float> attr_scales;
    const Tensor* scales = nullptr;
    const Tensor* sizes = nullptr;
    if (ri.scales < 0)
      attr_scales = node.attrs.get_floats("scales");
    else if (kc.has_input(ri.scales))
      scales = nonempty(&kc.in(ri.scales));
    if (ri.sizes >= 0 && kc.has_input(ri.sizes)) sizes = nonempty(&kc.in(ri.sizes));
    const ResizePlan p =
        resize_plan(ra, x.shape(), scales, sizes, ri.scales < 0 ? &attr_scales : nullptr);
    Tensor& y = kc.out(0);
    ENGINE_CHECK(y.shape() == p.out, "output shape ", dims_str(y.shape()),
                 " does not match the computed ", dims_str(p.out));
    std::vector<double> roi;
    if (ra.ctm == Ctm::TfCrop) {
      const Tensor* rt = ri.roi >= 0 && kc.has_input(ri.roi) ? nonempty(&kc.in(ri.roi)) : nullptr;
      roi = roi_values(rt, rank, ra.axes);
    }
    std::vector<AxisTaps> taps;
    for (int i = 0; i < rank; ++i) {
      const double rs = roi.empty() ? 0.0 : roi[size_t(i)];
      const double re = roi.empty() ? 1.0 : roi[size_t(rank + i)];
      taps.push_back(axis_taps(ra, p.resized[size_t(i)], x.dim(i), p.out[size_t(i)],
                               p.scale[size_t(i)], rs, re));
    }
    const bool nearest = ra.mode == Interp::Nearest;
    if (x.dtype() == DType::F16) {
      ENGINE_CHECK(nearest, "linear/cubic interpolation does not support float16");
      ENGINE_CHECK(ra.ctm != Ctm::TfCrop, "tf_crop_and_resize does not support float16");
      const Tensor xv = Tensor::view(DType::U16, x.shape(), const_cast<void*>(x.raw()));
      Tensor yv = Tensor::view(DType::U16, y.shape(), y.raw());
      resize_kernel<uint16_t>(xv, yv, taps, true, 0.0);
      return;
    }
    dispatch_dtype(x.dtype(), [&](auto tag) {
      using T = decltype(tag);
      resize_kernel<T>(x, y, taps, nearest, ra.extrapolation);
    });
  };
  reg.add(std::move(s));
}

}  // namespace

void register_pad_resize_ops(OpRegistry& r) {
  add_pad(r);
  add_resize(r, "Resize");
  add_resize(r, "Upsample");
}

}  // namespace engine
