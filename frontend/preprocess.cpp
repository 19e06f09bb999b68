#include "frontend/preprocess.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <sstream>

namespace engine {

namespace {

// Largest image any step may produce (256 Mpixel): a resize of an extreme aspect ratio or an
// absurd pad fails here with a clear message instead of in the allocator.
constexpr int64_t kMaxPixels = int64_t(1) << 28;

struct Hwc {
  int64_t h, w, c;
};

Hwc image_dims(const Tensor& img, const char* op) {
  ENGINE_CHECK(img.dtype() == DType::U8, op, ": expected a uint8 image, got ",
               dtype_name(img.dtype()));
  ENGINE_CHECK(img.rank() == 2 || img.rank() == 3, op,
               ": expected an image of shape [H,W] or [H,W,C], got ", dims_str(img.shape()));
  const Hwc d{img.dim(0), img.dim(1), img.rank() == 3 ? img.dim(2) : 1};
  ENGINE_CHECK(d.c == 1 || d.c == 3, op, ": expected 1 or 3 channels, got shape ",
               dims_str(img.shape()));
  ENGINE_CHECK(d.h > 0 && d.w > 0, op, ": empty image of shape ", dims_str(img.shape()));
  return d;
}

void check_pixels(int64_t h, int64_t w, const char* op) {
  ENGINE_CHECK(h > 0 && w > 0 && h <= kMaxPixels / w, op, ": result of ", h, "x", w,
               " pixels is outside the allowed 1 to ", kMaxPixels, " pixels");
}

// Bilinear resampling as PIL's Image.resize(BILINEAR) (libImaging/Resample.c), which is what
// torchvision's Resize does on PIL images: for output pixel i along an axis of in -> out pixels,
// scale = in / out, f = max(scale, 1), centre = (i + 0.5) * scale; the input pixels x in
// [int(centre - f + 0.5), int(centre + f + 0.5)) clipped to the image get the weights
// tri((x - centre + 0.5) / f) with tri(t) = max(0, 1 - |t|), normalized to sum 1 and rounded to
// 22-bit fixed point. So enlarging is plain bilinear with clamped edges, and shrinking averages
// every covered pixel (antialiased). Each pass rounds to uint8: horizontal first, then vertical.
constexpr int kPrecisionBits = 22;

struct Taps {
  int64_t ksize = 0;           // taps stored per output pixel
  std::vector<int64_t> first;  // first input pixel per output pixel
  std::vector<int64_t> count;  // taps used per output pixel
  std::vector<int32_t> k;      // fixed-point weights, ksize per output pixel
};

Taps bilinear_taps(int64_t in, int64_t out) {
  const double scale = double(in) / double(out);
  const double filterscale = std::max(scale, 1.0);
  const double support = filterscale;  // the triangle filter's support is 1
  const double inv = 1.0 / filterscale;
  Taps t;
  t.ksize = int64_t(std::ceil(support)) * 2 + 1;
  t.first.resize(size_t(out));
  t.count.resize(size_t(out));
  t.k.assign(size_t(out * t.ksize), 0);
  std::vector<double> w(size_t(t.ksize));
  for (int64_t i = 0; i < out; ++i) {
    const double center = (double(i) + 0.5) * scale;
    const int64_t lo = std::max<int64_t>(0, int64_t(center - support + 0.5));
    const int64_t hi = std::min<int64_t>(in, int64_t(center + support + 0.5));
    double sum = 0;
    for (int64_t x = 0; x < hi - lo; ++x) {
      const double a = std::fabs((double(x + lo) - center + 0.5) * inv);
      w[size_t(x)] = a < 1.0 ? 1.0 - a : 0.0;
      sum += w[size_t(x)];
    }
    for (int64_t x = 0; x < hi - lo; ++x) {
      const double v = (sum != 0.0 ? w[size_t(x)] / sum : w[size_t(x)]) * (1 << kPrecisionBits);
      t.k[size_t(i * t.ksize + x)] = int32_t(v < 0 ? v - 0.5 : v + 0.5);
    }
    t.first[size_t(i)] = lo;
    t.count[size_t(i)] = hi - lo;
  }
  return t;
}

uint8_t clip8(int64_t acc) {
  const int64_t v = acc >> kPrecisionBits;  // floor, like PIL's arithmetic shift
  return uint8_t(v < 0 ? 0 : v > 255 ? 255 : v);
}

// torchvision's crop_top/crop_left: int(round((n - crop) / 2.0)) with Python's half-to-even
// rounding; an image smaller than the crop is first padded by (crop - n) // 2 before.
int64_t crop_start(int64_t n, int64_t crop) {
  if (crop > n) return -((crop - n) / 2);
  const int64_t d = n - crop, q = d / 2;
  return (d % 2 == 0 || q % 2 == 0) ? q : q + 1;
}

std::string trim(const std::string& s) {
  const size_t a = s.find_first_not_of(" \t\r\n");
  if (a == std::string::npos) return "";
  const size_t b = s.find_last_not_of(" \t\r\n");
  return s.substr(a, b - a + 1);
}

// Parses a whole string as a finite number, or returns false.
bool parse_double(const std::string& s, double* out) {
  const std::string t = trim(s);
  if (t.empty()) return false;
  char* end = nullptr;
  errno = 0;
  const double v = std::strtod(t.c_str(), &end);
  if (end != t.c_str() + t.size() || errno == ERANGE || !std::isfinite(v)) return false;
  *out = v;
  return true;
}

std::string floats_str(const std::vector<float>& v) {
  std::ostringstream os;
  os.precision(9);
  os << "[";
  for (size_t i = 0; i < v.size(); ++i) os << (i ? "," : "") << v[i];
  os << "]";
  return os.str();
}

}  // namespace

void validate_preprocess(const PreprocessOptions& o) {
  ENGINE_CHECK(o.resize >= 0 && o.resize <= 65536, "preprocess: resize must be 0..65536, got ",
               o.resize);
  ENGINE_CHECK(o.crop >= 0 && o.crop <= 65536, "preprocess: crop must be 0..65536, got ", o.crop);
  ENGINE_CHECK(o.pad >= 0 && o.pad <= 65536, "preprocess: pad must be 0..65536, got ", o.pad);
  ENGINE_CHECK(o.channels == 0 || o.channels == 1 || o.channels == 3,
               "preprocess: channels must be 0 (as source), 1 or 3, got ", o.channels);
  ENGINE_CHECK(std::isfinite(o.scale), "preprocess: scale must be finite, got ", o.scale);
  ENGINE_CHECK(std::isfinite(o.scale_divisor) && o.scale_divisor >= 0,
               "preprocess: scale divisor must be finite and >= 0, got ", o.scale_divisor);
  for (float m : o.mean)
    ENGINE_CHECK(std::isfinite(m), "preprocess: mean values must be finite, got ",
                 floats_str(o.mean));
  for (float s : o.std)
    ENGINE_CHECK(std::isfinite(s) && s != 0,
                 "preprocess: std values must be finite and nonzero, got ", floats_str(o.std));
  ENGINE_CHECK(o.mean.size() <= 3 && o.std.size() <= 3,
               "preprocess: mean and std take 1 or 3 values, got ", o.mean.size(), " and ",
               o.std.size());
}

Dims preprocessed_shape(const Dims& shape, const PreprocessOptions& o) {
  validate_preprocess(o);
  ENGINE_CHECK(shape.size() == 2 || shape.size() == 3,
               "preprocess: expected an image of shape [H,W] or [H,W,C], got ", dims_str(shape));
  int64_t h = shape[0], w = shape[1];
  const int64_t c = shape.size() == 3 ? shape[2] : 1;
  ENGINE_CHECK(h > 0 && w > 0 && (c == 1 || c == 3),
               "preprocess: expected a non-empty image with 1 or 3 channels, got ",
               dims_str(shape));
  if (o.resize > 0 && std::min(h, w) != o.resize) {
    if (w <= h) {
      h = o.resize * h / w;
      w = o.resize;
    } else {
      w = o.resize * w / h;
      h = o.resize;
    }
  }
  if (o.crop > 0) h = w = o.crop;
  h += 2 * int64_t(o.pad);
  w += 2 * int64_t(o.pad);
  return {o.channels ? o.channels : c, h, w};
}

Tensor convert_channels(const Tensor& img, int channels) {
  const Hwc d = image_dims(img, "convert_channels");
  ENGINE_CHECK(channels == 1 || channels == 3, "convert_channels: channels must be 1 or 3, got ",
               channels);
  if (d.c == channels) return img.reshaped({d.h, d.w, d.c});
  Tensor out(DType::U8, {d.h, d.w, channels});
  const uint8_t* s = img.data<uint8_t>();
  uint8_t* o = out.data<uint8_t>();
  const int64_t n = d.h * d.w;
  if (channels == 1) {
    for (int64_t i = 0; i < n; ++i)
      o[i] = uint8_t((19595u * s[3 * i] + 38470u * s[3 * i + 1] + 7471u * s[3 * i + 2] + 32768u) >>
                     16);
  } else {
    for (int64_t i = 0; i < n; ++i) o[3 * i] = o[3 * i + 1] = o[3 * i + 2] = s[i];
  }
  return out;
}

Tensor resize_shorter_side(const Tensor& img, int size) {
  const Hwc d = image_dims(img, "resize");
  ENGINE_CHECK(size > 0, "resize: size must be positive, got ", size);
  if (std::min(d.h, d.w) == size) return img.reshaped({d.h, d.w, d.c});
  if (d.w <= d.h) return resize_image(img, int64_t(size) * d.h / d.w, size);
  return resize_image(img, size, int64_t(size) * d.w / d.h);
}

Tensor resize_image(const Tensor& img, int64_t height, int64_t width) {
  const Hwc d = image_dims(img, "resize");
  check_pixels(height, width, "resize");
  Tensor cur = img.reshaped({d.h, d.w, d.c});
  if (width != d.w) {  // horizontal pass first, as PIL
    const Taps t = bilinear_taps(d.w, width);
    Tensor out(DType::U8, {d.h, width, d.c});
    const uint8_t* s = cur.data<uint8_t>();
    uint8_t* o = out.data<uint8_t>();
#pragma omp parallel for if (d.h * width > 65536)
    for (int64_t y = 0; y < d.h; ++y)
      for (int64_t x = 0; x < width; ++x)
        for (int64_t c = 0; c < d.c; ++c) {
          const int32_t* k = &t.k[size_t(x * t.ksize)];
          const uint8_t* row = s + (y * d.w + t.first[size_t(x)]) * d.c + c;
          int64_t acc = int64_t(1) << (kPrecisionBits - 1);
          for (int64_t i = 0; i < t.count[size_t(x)]; ++i) acc += int64_t(row[i * d.c]) * k[i];
          o[(y * width + x) * d.c + c] = clip8(acc);
        }
    cur = out;
  }
  if (height != d.h) {
    const Taps t = bilinear_taps(d.h, height);
    Tensor out(DType::U8, {height, width, d.c});
    const uint8_t* s = cur.data<uint8_t>();
    uint8_t* o = out.data<uint8_t>();
    const int64_t stride = width * d.c;
#pragma omp parallel for if (height * stride > 65536)
    for (int64_t y = 0; y < height; ++y) {
      const int32_t* k = &t.k[size_t(y * t.ksize)];
      const uint8_t* base = s + t.first[size_t(y)] * stride;
      for (int64_t j = 0; j < stride; ++j) {
        int64_t acc = int64_t(1) << (kPrecisionBits - 1);
        for (int64_t i = 0; i < t.count[size_t(y)]; ++i)
          acc += int64_t(base[i * stride + j]) * k[i];
        o[y * stride + j] = clip8(acc);
      }
    }
    cur = out;
  }
  return cur;
}

Tensor center_crop(const Tensor& img, int size) {
  const Hwc d = image_dims(img, "center_crop");
  ENGINE_CHECK(size > 0, "center_crop: size must be positive, got ", size);
  if (d.h == size && d.w == size) return img.reshaped({d.h, d.w, d.c});
  const int64_t top = crop_start(d.h, size), left = crop_start(d.w, size);
  Tensor out(DType::U8, {size, size, d.c});  // zero-initialized: areas outside the image stay 0
  const uint8_t* s = img.data<uint8_t>();
  uint8_t* o = out.data<uint8_t>();
  for (int64_t y = 0; y < size; ++y) {
    const int64_t sy = top + y;
    if (sy < 0 || sy >= d.h) continue;
    const int64_t x0 = std::max<int64_t>(0, -left), x1 = std::min<int64_t>(size, d.w - left);
    if (x1 > x0)
      std::memcpy(o + (y * size + x0) * d.c, s + (sy * d.w + left + x0) * d.c,
                  size_t((x1 - x0) * d.c));
  }
  return out;
}

Tensor pad_image(const Tensor& img, int pad) {
  const Hwc d = image_dims(img, "pad");
  ENGINE_CHECK(pad >= 0, "pad: must be >= 0, got ", pad);
  if (pad == 0) return img.reshaped({d.h, d.w, d.c});
  const int64_t nh = d.h + 2 * int64_t(pad), nw = d.w + 2 * int64_t(pad);
  check_pixels(nh, nw, "pad");
  Tensor out(DType::U8, {nh, nw, d.c});  // zero-initialized border
  const uint8_t* s = img.data<uint8_t>();
  uint8_t* o = out.data<uint8_t>();
  for (int64_t y = 0; y < d.h; ++y)
    std::memcpy(o + ((y + pad) * nw + pad) * d.c, s + y * d.w * d.c, size_t(d.w * d.c));
  return out;
}

Tensor preprocess_image(const Tensor& image, const PreprocessOptions& o) {
  validate_preprocess(o);
  const Hwc src = image_dims(image, "preprocess");
  const int out_c = o.channels ? o.channels : int(src.c);
  ENGINE_CHECK(o.mean.size() <= 1 || int(o.mean.size()) == out_c, "preprocess: ", o.mean.size(),
               " mean values for ", out_c, "-channel output (give 1 or ", out_c, ")");
  ENGINE_CHECK(o.std.size() <= 1 || int(o.std.size()) == out_c, "preprocess: ", o.std.size(),
               " std values for ", out_c, "-channel output (give 1 or ", out_c, ")");

  // Gray conversion first (as loaders do); a gray source that must become RGB stays gray through
  // the geometric steps and is replicated below, which gives the same result for a third of the
  // work.
  Tensor img = out_c == 1 && src.c == 3 ? convert_channels(image, 1) : image;
  if (o.resize > 0) img = resize_shorter_side(img, o.resize);
  if (o.crop > 0) img = center_crop(img, o.crop);
  if (o.pad > 0) img = pad_image(img, o.pad);
  const Hwc d = image_dims(img, "preprocess");

  Tensor out(DType::F32, {out_c, d.h, d.w});
  const uint8_t* s = img.data<uint8_t>();
  float* dst = out.data<float>();
  const int64_t plane = d.h * d.w;
  const bool divide = o.scale_divisor > 0;
  for (int c = 0; c < out_c; ++c) {
    const int64_t sc = d.c == 1 ? 0 : (o.bgr ? 2 - c : c);
    const float mean = o.mean.empty() ? 0.0f : o.mean[o.mean.size() == 1 ? 0 : size_t(c)];
    const float sd = o.std.empty() ? 1.0f : o.std[o.std.size() == 1 ? 0 : size_t(c)];
    float* p = dst + c * plane;
    for (int64_t i = 0; i < plane; ++i) {
      float v = float(s[i * d.c + sc]);
      v = divide ? v / o.scale_divisor : v * o.scale;
      p[i] = (v - mean) / sd;
    }
  }
  return out;
}

void parse_scale(const std::string& text, PreprocessOptions& o) {
  const size_t slash = text.find('/');
  double num = 0, den = 0;
  if (slash == std::string::npos) {
    if (!parse_double(text, &num))
      fail("--scale: '", text, "' is not a number (expected e.g. 1/255 or 0.0039)");
    o.scale = float(num);
    o.scale_divisor = 0;
    return;
  }
  if (!parse_double(text.substr(0, slash), &num) || !parse_double(text.substr(slash + 1), &den) ||
      den == 0)
    fail("--scale: '", text, "' is not a fraction a/b with b != 0 (expected e.g. 1/255)");
  if (num == 1) {
    o.scale_divisor = float(den);
    o.scale = float(1.0 / den);
  } else {
    o.scale = float(num / den);
    o.scale_divisor = 0;
  }
  ENGINE_CHECK(std::isfinite(o.scale) && std::isfinite(o.scale_divisor), "--scale: '", text,
               "' is out of float range");
}

std::vector<float> parse_float_list(const std::string& text, const std::string& what) {
  std::vector<float> out;
  size_t start = 0;
  while (true) {
    const size_t comma = text.find(',', start);
    const std::string item =
        text.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    double v = 0;
    if (!parse_double(item, &v) || !std::isfinite(float(v)))
      fail(what, ": '", trim(item), "' in '", text,
           "' is not a number (expected comma-separated values, e.g. 0.485,0.456,0.406)");
    out.push_back(float(v));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return out;
}

std::string describe(const PreprocessOptions& o) {
  std::ostringstream os;
  os.precision(9);
  if (o.resize) os << "resize " << o.resize << ", ";
  if (o.crop) os << "crop " << o.crop << ", ";
  if (o.pad) os << "pad " << o.pad << ", ";
  os << "channels ";
  if (o.channels == 0)
    os << "as source";
  else
    os << o.channels << (o.channels == 3 ? (o.bgr ? " (BGR)" : " (RGB)") : " (gray)");
  if (o.scale_divisor > 0)
    os << ", x/" << o.scale_divisor;
  else
    os << ", x*" << o.scale;
  os << ", mean " << (o.mean.empty() ? "0" : floats_str(o.mean));
  os << ", std " << (o.std.empty() ? "1" : floats_str(o.std));
  return os.str();
}

}  // namespace engine
