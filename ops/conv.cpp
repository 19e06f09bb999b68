// Conv and ConvTranspose (ONNX opsets 1..17), float32, 1-D / 2-D / 3-D, and FusedConv (engine
// domain: Conv + Sum + activation, made by the fusion passes).
//
// Geometry is canonicalized to 3 spatial dims (missing leading dims have size 1, kernel 1, stride
// 1, no padding), so one implementation serves 1-D, 2-D and 3-D.
//
// Conv, per group:   Y_g[Mg, out] = W_g[Mg, Cg*k] x col[Cg*k, out]   (one sgemm)
//   - large outputs: one image at a time (images in parallel when N > 1), col built by im2col in
//     chunks of output rows (bounded memory, cache friendly); 1x1 / stride 1 / no padding convs
//     use the input planes as col directly;
//   - small outputs (< 256 positions, N > 1): the col matrices of several images are placed side
//     by side so one GEMM serves them all (weights read once), then the result is scattered to Y;
//   - depthwise (one input channel per group): direct loops, no im2col.
// ConvTranspose, per image and group:  col[Mg*k, in] = W_g^T x X_g, then col2im scatters col
// into Y (summing overlaps).
#include <algorithm>
#include <array>
#include <cstring>
#include <string>
#include <vector>

#include "ops/activation_fn.h"
#include "ops/conv_geom.h"
#include "ops/ops.h"
#include "ops/sgemm.h"

namespace engine {
namespace {

void check_float_inputs(const InferContext& ctx, const char* op) {
  ENGINE_CHECK(ctx.dtype(0) == DType::F32, op,
               ": only float32 is supported by the reference kernel, X is ",
               dtype_name(ctx.dtype(0)));
  ENGINE_CHECK(ctx.dtype(1) == DType::F32, op, ": weight W must be float32 like X, got ",
               dtype_name(ctx.dtype(1)));
}

void check_bias(const InferContext& ctx, int64_t M, const char* op) {
  if (!ctx.has_input(2)) return;
  ENGINE_CHECK(ctx.dtype(2) == DType::F32, op, ": bias B must be float32, got ",
               dtype_name(ctx.dtype(2)));
  ENGINE_CHECK(ctx.rank(2) == 1 && ctx.shape(2)[0] == M, op, ": bias B must have shape [", M,
               "] (one value per output channel), got ", dims_str(ctx.shape(2)));
}

// One row of the im2col matrix: for input channel plane xc and kernel tap kidx, the input value
// under that tap for output rows [r0, r1) (a row is one (z, y) pair of OW positions), 0 in the
// padding. dst receives (r1 - r0) * OW values.
void im2col_row(const ConvGeom& g, const float* xc, int64_t kidx, int64_t r0, int64_t r1,
                float* dst) {
  const int64_t ID = g.in[0], IH = g.in[1], IW = g.in[2];
  const int64_t OH = g.out[1], OW = g.out[2];
  const int64_t KH = g.k[1], KW = g.k[2];
  const int64_t kz = kidx / (KH * KW), ky = (kidx / KW) % KH, kx = kidx % KW;
  const int64_t sx = g.s[2];
  const int64_t ix0 = kx * g.d[2] - g.pb[2];
  int64_t lo, hi;
  valid_range(ix0, sx, IW, OW, lo, hi);
  for (int64_t r = r0; r < r1; ++r) {
    const int64_t oz = r / OH, oy = r % OH;
    const int64_t iz = oz * g.s[0] - g.pb[0] + kz * g.d[0];
    const int64_t iy = oy * g.s[1] - g.pb[1] + ky * g.d[1];
    float* d = dst + (r - r0) * OW;
    if (iz < 0 || iz >= ID || iy < 0 || iy >= IH) {
      std::fill(d, d + OW, 0.0f);
      continue;
    }
    const float* xrow = xc + (iz * IH + iy) * IW;
    std::fill(d, d + lo, 0.0f);
    if (sx == 1) {
      if (hi > lo) std::memcpy(d + lo, xrow + lo + ix0, sizeof(float) * size_t(hi - lo));
    } else {
      for (int64_t ox = lo; ox < hi; ++ox) d[ox] = xrow[ox * sx + ix0];
    }
    std::fill(d + hi, d + OW, 0.0f);
  }
}

// One input channel per group: y[n, m] = sum over the kernel window of x[n, m / Mg] * w[m].
void depthwise_conv(const ConvGeom& g, const float* x, const float* w, const float* b, float* y) {
  const int64_t Mg = g.M / g.group;
  const int64_t ID = g.in[0], IH = g.in[1], IW = g.in[2];
  const int64_t OD = g.out[0], OH = g.out[1], OW = g.out[2];
  const int64_t KD = g.k[0], KH = g.k[1], KW = g.k[2];
  const int64_t in_sz = g.in_size(), out_sz = g.out_size(), ksz = g.k_size();
  const int64_t sx = g.s[2];
#pragma omp parallel for schedule(static)
  for (int64_t nm = 0; nm < g.N * g.M; ++nm) {
    const int64_t n = nm / g.M, m = nm % g.M, c = m / Mg;
    const float* xc = x + (n * g.C + c) * in_sz;
    const float* wm = w + m * ksz;
    float* yp = y + nm * out_sz;
    std::fill(yp, yp + out_sz, b ? b[m] : 0.0f);
    for (int64_t kz = 0; kz < KD; ++kz)
      for (int64_t ky = 0; ky < KH; ++ky)
        for (int64_t kx = 0; kx < KW; ++kx) {
          const float wv = wm[(kz * KH + ky) * KW + kx];
          const int64_t ix0 = kx * g.d[2] - g.pb[2];
          int64_t lo, hi;
          valid_range(ix0, sx, IW, OW, lo, hi);
          for (int64_t oz = 0; oz < OD; ++oz) {
            const int64_t iz = oz * g.s[0] - g.pb[0] + kz * g.d[0];
            if (iz < 0 || iz >= ID) continue;
            for (int64_t oy = 0; oy < OH; ++oy) {
              const int64_t iy = oy * g.s[1] - g.pb[1] + ky * g.d[1];
              if (iy < 0 || iy >= IH) continue;
              const float* xrow = xc + (iz * IH + iy) * IW;
              float* yrow = yp + (oz * OH + oy) * OW;
              if (sx == 1) {
                for (int64_t ox = lo; ox < hi; ++ox) yrow[ox] += wv * xrow[ox + ix0];
              } else {
                for (int64_t ox = lo; ox < hi; ++ox) yrow[ox] += wv * xrow[ox * sx + ix0];
              }
            }
          }
        }
  }
}

void conv_kernel(KernelContext& kc) {
  const Tensor& X = kc.in(0);
  const Tensor& W = kc.in(1);
  const ConvGeom g = conv_geometry(kc.node, X.shape(), W.shape());
  const float* x = X.data<float>();
  const float* w = W.data<float>();
  const float* b = kc.has_input(2) ? kc.in(2).data<float>() : nullptr;
  float* y = kc.out(0).data<float>();
  const int64_t Cg = g.C / g.group, Mg = g.M / g.group;
  const int64_t in_sz = g.in_size(), out_sz = g.out_size(), ksz = g.k_size();
  const int64_t Kg = Cg * ksz;
  if (g.N == 0 || g.M == 0 || out_sz == 0) return;

  if (Cg == 1 && g.group > 1) {
    depthwise_conv(g, x, w, b, y);
    return;
  }
  bool pointwise = true;
  for (int i = 0; i < kMaxSpatial; ++i)
    pointwise = pointwise && g.k[size_t(i)] == 1 && g.s[size_t(i)] == 1 && g.pb[size_t(i)] == 0 &&
                g.pe[size_t(i)] == 0;

  // im2col matrices hold about 4 MB, but at least 256 columns so the GEMM stays efficient.
  const int64_t budget = (int64_t(4) << 20) / int64_t(sizeof(float));
  const int64_t target_cols = std::max<int64_t>(256, budget / std::max<int64_t>(1, Kg));
  const int64_t OW = g.out[2], R = g.out[0] * g.out[1];

  if (g.N > 1 && out_sz < 256) {
    // Small outputs (late layers, small images): im2col of several images side by side, one GEMM
    // per group for all of them (weights are read once per chunk), then scatter into Y.
    const int64_t images_per_chunk =
        std::clamp<int64_t>(std::min<int64_t>(target_cols, 2048) / out_sz, 1, g.N);
    const int64_t ncol_max = images_per_chunk * out_sz;
    std::vector<float> col(size_t(Kg * ncol_max)), tmp(size_t(Mg * ncol_max));
    for (int64_t n0 = 0; n0 < g.N; n0 += images_per_chunk) {
      const int64_t nb = std::min(images_per_chunk, g.N - n0), ncol = nb * out_sz;
      for (int64_t gi = 0; gi < g.group; ++gi) {
#pragma omp parallel for schedule(static) if (Kg * ncol > 32768)
        for (int64_t jr = 0; jr < nb * Kg; ++jr) {
          const int64_t j = jr / Kg, row = jr % Kg;
          const float* xc = x + ((n0 + j) * g.C + gi * Cg + row / ksz) * in_sz;
          im2col_row(g, xc, row % ksz, 0, R, col.data() + row * ncol + j * out_sz);
        }
        sgemm(false, false, Mg, ncol, Kg, 1.0f, w + gi * Mg * Kg, Kg, col.data(), ncol, 0.0f,
              tmp.data(), ncol, kc.num_threads);
#pragma omp parallel for schedule(static) if (Mg * ncol > 32768)
        for (int64_t jm = 0; jm < nb * Mg; ++jm) {
          const int64_t j = jm / Mg, m = jm % Mg, oc = gi * Mg + m;
          const float* src = tmp.data() + m * ncol + j * out_sz;
          float* dst = y + ((n0 + j) * g.M + oc) * out_sz;
          const float bias = b ? b[oc] : 0.0f;
          for (int64_t i = 0; i < out_sz; ++i) dst[i] = src[i] + bias;
        }
      }
    }
    return;
  }

  // Large outputs: one image at a time; im2col in chunks of output rows. `threads` > 1 lets the
  // image use several threads (single image); otherwise images run in parallel, one per thread.
  const int64_t rows_per_chunk = std::clamp<int64_t>(ceil_div_pos(target_cols, OW), 1, R);
  const size_t col_size = pointwise ? 0 : size_t(Kg * rows_per_chunk * OW);
  auto run_image = [&](int64_t n, float* col, int threads) {
    float* yn = y + n * g.M * out_sz;
    if (b) {
#pragma omp parallel for schedule(static) if (threads > 1 && g.M * out_sz > 65536)
      for (int64_t m = 0; m < g.M; ++m) std::fill(yn + m * out_sz, yn + (m + 1) * out_sz, b[m]);
    }
    const float beta = b ? 1.0f : 0.0f;
    for (int64_t gi = 0; gi < g.group; ++gi) {
      const float* xg = x + (n * g.C + gi * Cg) * in_sz;
      const float* wg = w + gi * Mg * Kg;
      float* yg = yn + gi * Mg * out_sz;
      if (pointwise) {  // the input planes are the im2col matrix
        sgemm(false, false, Mg, out_sz, Kg, 1.0f, wg, Kg, xg, in_sz, beta, yg, out_sz, threads);
        continue;
      }
      for (int64_t r0 = 0; r0 < R; r0 += rows_per_chunk) {
        const int64_t r1 = std::min(R, r0 + rows_per_chunk);
        const int64_t ncol = (r1 - r0) * OW;
#pragma omp parallel for schedule(static) if (threads > 1 && Kg * ncol > 32768)
        for (int64_t row = 0; row < Kg; ++row)
          im2col_row(g, xg + (row / ksz) * in_sz, row % ksz, r0, r1, col + row * ncol);
        sgemm(false, false, Mg, ncol, Kg, 1.0f, wg, Kg, col, ncol, beta, yg + r0 * OW, out_sz,
              threads);
      }
    }
  };
  if (g.N == 1) {
    std::vector<float> col(col_size);
    run_image(0, col.data(), kc.num_threads);
    return;
  }
#pragma omp parallel num_threads(std::max(1, kc.num_threads))
  {
    std::vector<float> col(col_size);
#pragma omp for schedule(dynamic)
    for (int64_t n = 0; n < g.N; ++n) run_image(n, col.data(), 1);
  }
}

void conv_transpose_kernel(KernelContext& kc) {
  const Tensor& X = kc.in(0);
  const Tensor& W = kc.in(1);
  const ConvGeom g = conv_transpose_geometry(kc.node, X.shape(), W.shape());
  const float* x = X.data<float>();
  const float* w = W.data<float>();
  const float* b = kc.has_input(2) ? kc.in(2).data<float>() : nullptr;
  float* y = kc.out(0).data<float>();
  const int64_t Cg = g.C / g.group, Mg = g.M / g.group;
  const int64_t in_sz = g.in_size(), out_sz = g.out_size(), ksz = g.k_size();
  const int64_t ID = g.in[0], IH = g.in[1], IW = g.in[2];
  const int64_t OD = g.out[0], OH = g.out[1], OW = g.out[2];
  const int64_t KH = g.k[1], KW = g.k[2];
  if (g.N == 0 || g.M == 0 || out_sz == 0) return;
  std::vector<float> col(size_t(Mg * ksz * in_sz));
  for (int64_t n = 0; n < g.N; ++n) {
    for (int64_t gi = 0; gi < g.group; ++gi) {
      // col[Mg * ksz, in_sz] = W_g^T x X_g, with W_g stored [Cg, Mg * ksz].
      const float* xg = x + (n * g.C + gi * Cg) * in_sz;
      const float* wg = w + gi * Cg * Mg * ksz;
      sgemm(true, false, Mg * ksz, in_sz, Cg, 1.0f, wg, Mg * ksz, xg, in_sz, 0.0f, col.data(),
            in_sz, kc.num_threads);
      // col2im: each output channel only receives its own rows, so channels run in parallel.
#pragma omp parallel for schedule(static)
      for (int64_t m = 0; m < Mg; ++m) {
        const int64_t oc = gi * Mg + m;
        float* yp = y + (n * g.M + oc) * out_sz;
        std::fill(yp, yp + out_sz, b ? b[oc] : 0.0f);
        for (int64_t kidx = 0; kidx < ksz; ++kidx) {
          const int64_t kz = kidx / (KH * KW), ky = (kidx / KW) % KH, kx = kidx % KW;
          const float* src = col.data() + (m * ksz + kidx) * in_sz;
          // ox = ix * sx + ox0 must lie in [0, OW).
          const int64_t ox0 = kx * g.d[2] - g.pb[2];
          int64_t lo, hi;
          valid_range(ox0, g.s[2], OW, IW, lo, hi);
          for (int64_t iz = 0; iz < ID; ++iz) {
            const int64_t oz = iz * g.s[0] - g.pb[0] + kz * g.d[0];
            if (oz < 0 || oz >= OD) continue;
            for (int64_t iy = 0; iy < IH; ++iy) {
              const int64_t oy = iy * g.s[1] - g.pb[1] + ky * g.d[1];
              if (oy < 0 || oy >= OH) continue;
              const float* srow = src + (iz * IH + iy) * IW;
              float* yrow = yp + (oz * OH + oy) * OW;
              for (int64_t ix = lo; ix < hi; ++ix) yrow[ix * g.s[2] + ox0] += srow[ix];
            }
          }
        }
      }
    }
  }
}

// FusedConv (domain "engine", made by the fusion passes): y = act(conv(X, W) + B + Sum).
// The plain Conv kernel computes conv + B into Y, then one elementwise epilogue adds Sum and
// applies the activation. (Sum never shares Y's buffer: the memory planner keeps the buffers of
// a step's inputs and outputs apart.)
void fused_conv_validate(const Node& n) {
  conv_validate_attrs(n);
  activation_from_attrs(n.attrs);
}

void fused_conv_infer(InferContext& ctx) {
  check_float_inputs(ctx, "FusedConv");
  activation_from_attrs(ctx.attrs());
  const ConvGeom g = conv_geometry(ctx.node(), ctx.shape(0), ctx.shape(1));
  check_bias(ctx, g.M, "FusedConv");
  const Dims y = g.out_shape();
  if (ctx.has_input(3)) {
    ENGINE_CHECK(ctx.dtype(3) == DType::F32, "FusedConv: Sum (input 3) must be float32, got ",
                 dtype_name(ctx.dtype(3)));
    ENGINE_CHECK(ctx.shape(3) == y, "FusedConv: Sum (input 3) must have exactly the output shape ",
                 dims_str(y), " (no broadcasting), got ", dims_str(ctx.shape(3)));
  }
  ctx.set_output(0, DType::F32, y);
}

void fused_conv_kernel(KernelContext& kc) {
  const Activation act = activation_from_attrs(kc.attrs());
  conv_kernel(kc);
  Tensor& Y = kc.out(0);
  const float* sum = kc.has_input(3) ? kc.in(3).data<float>() : nullptr;
  apply_epilogue(Y.data<float>(), sum, Y.numel(), act);
}

}  // namespace

void register_conv_ops(OpRegistry& r) {
  OpSchema fused;
  fused.op_type = "FusedConv";
  fused.domain = "engine";
  fused.min_inputs = 2;
  fused.max_inputs = 4;
  fused.validate = fused_conv_validate;
  fused.infer = fused_conv_infer;
  fused.kernel = fused_conv_kernel;
  r.add(std::move(fused));

  OpSchema conv;
  conv.op_type = "Conv";
  conv.min_inputs = 2;
  conv.max_inputs = 3;
  conv.validate = conv_validate_attrs;
  conv.infer = [](InferContext& ctx) {
    check_float_inputs(ctx, "Conv");
    const ConvGeom g = conv_geometry(ctx.node(), ctx.shape(0), ctx.shape(1));
    check_bias(ctx, g.M, "Conv");
    ctx.set_output(0, DType::F32, g.out_shape());
  };
  conv.kernel = conv_kernel;
  r.add(std::move(conv));

  OpSchema convt;
  convt.op_type = "ConvTranspose";
  convt.min_inputs = 2;
  convt.max_inputs = 3;
  convt.validate = [](const Node& n) {
    conv_validate_attrs(n);
    if (n.attrs.has("output_padding"))
      for (int64_t v : n.attrs.get_ints("output_padding"))
        ENGINE_CHECK(v >= 0,
                     "attribute output_padding=", dims_str(n.attrs.get_ints("output_padding")),
                     " must have values >= 0");
  };
  convt.infer = [](InferContext& ctx) {
    check_float_inputs(ctx, "ConvTranspose");
    const ConvGeom g = conv_transpose_geometry(ctx.node(), ctx.shape(0), ctx.shape(1));
    check_bias(ctx, g.M, "ConvTranspose");
    ctx.set_output(0, DType::F32, g.out_shape());
  };
  convt.kernel = conv_transpose_kernel;
  r.add(std::move(convt));
}

}  // namespace engine
