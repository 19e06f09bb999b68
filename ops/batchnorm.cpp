// BatchNormalization (inference mode, opsets 7..17) and InstanceNormalization.
#include <cmath>
#include <string>
#include <vector>

#include "ops/ops.h"

namespace engine {
namespace {

const char* const kBnParamNames[] = {"X", "scale", "B", "mean", "var"};

void batchnorm_validate(const Node& n) {
  if (n.opset < 9 && n.attrs.has("spatial"))
    ENGINE_CHECK(n.attrs.get_int("spatial") == 1,
                 "BatchNormalization: attribute spatial=", n.attrs.get_int("spatial"),
                 " is not supported (only spatial=1: one scale/B/mean/var value per channel)");
  ENGINE_CHECK(n.attrs.get_int("training_mode", 0) == 0,
               "BatchNormalization: training_mode=1 is not supported (inference only: the node "
               "must normalize with the given mean and var)");
  ENGINE_CHECK(n.outputs.size() == 1, "BatchNormalization: the node declares ", n.outputs.size(),
               " outputs; only inference mode with the single output Y is supported (the "
               "mean/var/saved statistics outputs exist only in training mode)");
}

void check_norm_input(const InferContext& ctx, const char* op) {
  const DType t = ctx.dtype(0);
  ENGINE_CHECK(t == DType::F32 || t == DType::F64, op, ": X must be float32 or float64, got ",
               dtype_name(t));
  ENGINE_CHECK(ctx.rank(0) >= 2, op, ": X must have rank >= 2 (N, C, ...), got shape ",
               dims_str(ctx.shape(0)));
}

// Checks that input i is a 1-D tensor of C values of X's type.
void check_channel_param(const InferContext& ctx, int i, const char* op, const char* name) {
  const int64_t C = ctx.shape(0)[1];
  ENGINE_CHECK(ctx.dtype(i) == ctx.dtype(0), op, ": input ", name, " must be ",
               dtype_name(ctx.dtype(0)), " like X, got ", dtype_name(ctx.dtype(i)));
  ENGINE_CHECK(ctx.rank(i) == 1 && ctx.shape(i)[0] == C, op, ": input ", name, " must have shape [",
               C, "] (one value per channel of X ", dims_str(ctx.shape(0)), "), got ",
               dims_str(ctx.shape(i)));
}

template <class T>
void batchnorm_run(KernelContext& kc) {
  const Tensor& X = kc.in(0);
  const T* x = X.data<T>();
  const T* scale = kc.in(1).data<T>();
  const T* bias = kc.in(2).data<T>();
  const T* mean = kc.in(3).data<T>();
  const T* var = kc.in(4).data<T>();
  T* y = kc.out(0).data<T>();
  const double eps = kc.attrs().get_float("epsilon", 1e-5f);
  const int64_t N = X.dim(0), C = X.dim(1);
  const int64_t inner = C == 0 || N == 0 ? 0 : X.numel() / (N * C);
  // y = (x - mean) / sqrt(var + eps) * scale + B  ==  x * a + b
  std::vector<T> a(static_cast<size_t>(C)), b(static_cast<size_t>(C));
  for (int64_t c = 0; c < C; ++c) {
    const double ac = double(scale[c]) / std::sqrt(double(var[c]) + eps);
    a[size_t(c)] = T(ac);
    b[size_t(c)] = T(double(bias[c]) - double(mean[c]) * ac);
  }
#pragma omp parallel for schedule(static) if (X.numel() > 32768)
  for (int64_t nc = 0; nc < N * C; ++nc) {
    const T ac = a[size_t(nc % C)], bc = b[size_t(nc % C)];
    const T* xp = x + nc * inner;
    T* yp = y + nc * inner;
    for (int64_t i = 0; i < inner; ++i) yp[i] = xp[i] * ac + bc;
  }
}

template <class T>
void instancenorm_run(KernelContext& kc) {
  const Tensor& X = kc.in(0);
  const T* x = X.data<T>();
  const T* scale = kc.in(1).data<T>();
  const T* bias = kc.in(2).data<T>();
  T* y = kc.out(0).data<T>();
  const double eps = kc.attrs().get_float("epsilon", 1e-5f);
  const int64_t N = X.dim(0), C = X.dim(1);
  const int64_t inner = C == 0 || N == 0 ? 0 : X.numel() / (N * C);
  if (inner == 0) return;
#pragma omp parallel for schedule(static) if (X.numel() > 32768)
  for (int64_t nc = 0; nc < N * C; ++nc) {
    const int64_t c = nc % C;
    const T* xp = x + nc * inner;
    T* yp = y + nc * inner;
    double sum = 0;
    for (int64_t i = 0; i < inner; ++i) sum += double(xp[i]);
    const double mean = sum / double(inner);
    double sq = 0;
    for (int64_t i = 0; i < inner; ++i) sq += (double(xp[i]) - mean) * (double(xp[i]) - mean);
    const double var = sq / double(inner);
    const double a = double(scale[c]) / std::sqrt(var + eps);
    const double b = double(bias[c]) - mean * a;
    for (int64_t i = 0; i < inner; ++i) yp[i] = T(double(xp[i]) * a + b);
  }
}

}  // namespace

void register_norm_ops(OpRegistry& r) {
  OpSchema bn;
  bn.op_type = "BatchNormalization";
  bn.min_inputs = 5;
  bn.max_inputs = 5;
  bn.max_outputs = 5;  // accepted by the loader so validate can explain the rejection
  bn.validate = batchnorm_validate;
  bn.infer = [](InferContext& ctx) {
    check_norm_input(ctx, "BatchNormalization");
    for (int i = 1; i < 5; ++i) check_channel_param(ctx, i, "BatchNormalization", kBnParamNames[i]);
    ctx.set_output(0, ctx.dtype(0), ctx.shape(0));
  };
  bn.kernel = [](KernelContext& kc) {
    if (kc.in(0).dtype() == DType::F64)
      batchnorm_run<double>(kc);
    else
      batchnorm_run<float>(kc);
  };
  r.add(std::move(bn));

  OpSchema in;
  in.op_type = "InstanceNormalization";
  in.min_inputs = 3;
  in.max_inputs = 3;
  in.infer = [](InferContext& ctx) {
    check_norm_input(ctx, "InstanceNormalization");
    check_channel_param(ctx, 1, "InstanceNormalization", "scale");
    check_channel_param(ctx, 2, "InstanceNormalization", "B");
    ctx.set_output(0, ctx.dtype(0), ctx.shape(0));
  };
  in.kernel = [](KernelContext& kc) {
    if (kc.in(0).dtype() == DType::F64)
      instancenorm_run<double>(kc);
    else
      instancenorm_run<float>(kc);
  };
  r.add(std::move(in));
}

}  // namespace engine
