// Integer matrix products on one code path (reference kernels):
//   QGemm (domain "engine"): a [M,K], a_scale, a_zp, b ([K,N], or [N,K] with transB=1), b_scale
//     (scalar or [N]), b_zp (scalar or [N]), y_scale, y_zp, [bias int32 [N]]; attrs transB,
//     requant (fixed|float), scale_bits, out_min, out_max.
//   QLinearMatMul (ONNX): a, a_scale, a_zp, b, b_scale, b_zp, y_scale, y_zp with numpy MatMul
//     shapes (N-D, broadcast batch dims); float requantization, full output range.
//   MatMulInteger (ONNX): A, B, [a_zp], [b_zp] -> int32, numpy MatMul shapes.
// acc[m, n] = sum_k (a[m,k] - a_zp) * (b[k,n] - b_zp[n]) + bias[n]   (int32), requantized per
// column n (per-column b scales / zero points; a and y are per tensor).
#include <algorithm>
#include <cstdint>
#include <memory>
#include <vector>

#include "ops/ops.h"
#include "ops/qgemm_core.h"

namespace engine {
namespace {

using namespace qops;

enum class Kind { QGemm, QLinearMatMul, MatMulInteger };

const char* kind_name(Kind k) {
  return k == Kind::QGemm ? "QGemm" : k == Kind::QLinearMatMul ? "QLinearMatMul" : "MatMulInteger";
}

struct Slots {
  int a = 0, a_scale = -1, a_zp = -1, b = -1, b_scale = -1, b_zp = -1, y_scale = -1, y_zp = -1,
      bias = -1;
};
Slots slots(Kind k) {
  if (k == Kind::MatMulInteger) return Slots{0, -1, 2, 1, -1, 3, -1, -1, -1};
  return Slots{0, 1, 2, 3, 4, 5, 6, 7, k == Kind::QGemm ? 8 : -1};
}

// Shapes of one product: `nb` matrix products [M,K] x [K,N]; A / B matrix of batch i start at
// a_off[i] / b_off[i] elements. B is stored [N,K] when trans_b.
struct Plan {
  int64_t M = 1, N = 1, K = 1;
  bool trans_b = false;
  std::vector<int64_t> a_off, b_off;
  Dims out;
};

Plan gemm_plan(const Node& node, const Dims& a, const Dims& b) {
  Plan p;
  p.trans_b = node.attrs.get_int("transB", 0) != 0;
  ENGINE_CHECK(a.size() == 2 && b.size() == 2, "QGemm: a and b must be 2-D, got a ", dims_str(a),
               " and b ", dims_str(b));
  p.M = a[0];
  p.K = a[1];
  p.N = p.trans_b ? b[0] : b[1];
  const int64_t bk = p.trans_b ? b[1] : b[0];
  ENGINE_CHECK(bk == p.K, "QGemm: inner dimensions do not match: a ", dims_str(a), " has K=", p.K,
               " but b ", dims_str(b), (p.trans_b ? " (transB=1)" : ""), " has K=", bk);
  p.a_off = {0};
  p.b_off = {0};
  p.out = {p.M, p.N};
  return p;
}

// numpy matmul: 1-D a is a row [1,K], 1-D b a column [K,1] (the added dims are dropped); batch
// dims broadcast.
Plan matmul_plan(const char* op, const Dims& a, const Dims& b) {
  ENGINE_CHECK(!a.empty() && !b.empty(), op, ": inputs must have rank >= 1, got a ", dims_str(a),
               " and b ", dims_str(b));
  Plan p;
  const Dims am = a.size() == 1 ? Dims{1, a[0]} : a;
  const Dims bm = b.size() == 1 ? Dims{b[0], 1} : b;
  p.M = am[am.size() - 2];
  p.K = am.back();
  p.N = bm.back();
  ENGINE_CHECK(bm[bm.size() - 2] == p.K, op, ": inner dimensions do not match: a ", dims_str(a),
               " has K=", p.K, " but b ", dims_str(b), " has K=", bm[bm.size() - 2]);
  const size_t ra = am.size() - 2, rb = bm.size() - 2, rn = std::max(ra, rb);
  Dims batch(rn), astr(rn, 0), bstr(rn, 0);
  int64_t sa = p.M * p.K, sb = p.K * p.N;
  for (size_t i = rn; i-- > 0;) {  // i indexes the output batch dims, aligned at the right
    const bool ha = i + ra >= rn, hb = i + rb >= rn;
    const int64_t da = ha ? am[i + ra - rn] : 1, db = hb ? bm[i + rb - rn] : 1;
    ENGINE_CHECK(da == db || da == 1 || db == 1, op, ": batch dimensions of a ", dims_str(a),
                 " and b ", dims_str(b), " cannot be broadcast together");
    batch[i] = da == 1 ? db : da;
    if (ha) {
      astr[i] = da == 1 ? 0 : sa;
      sa *= da;
    }
    if (hb) {
      bstr[i] = db == 1 ? 0 : sb;
      sb *= db;
    }
  }
  const int64_t nb = checked_numel(batch);
  for (int64_t bi = 0; bi < nb; ++bi) {
    int64_t rem = bi, ao = 0, bo = 0;
    for (size_t i = rn; i-- > 0;) {
      const int64_t idx = rem % batch[i];
      rem /= batch[i];
      ao += idx * astr[i];
      bo += idx * bstr[i];
    }
    p.a_off.push_back(ao);
    p.b_off.push_back(bo);
  }
  p.out = batch;
  if (a.size() > 1) p.out.push_back(p.M);
  if (b.size() > 1) p.out.push_back(p.N);
  return p;
}

Plan plan_of(Kind kind, const Node& node, const Dims& a, const Dims& b) {
  if (kind == Kind::QGemm) return gemm_plan(node, a, b);
  return matmul_plan(kind_name(kind), a, b);
}

void qgemm_infer(InferContext& ctx, Kind kind) {
  const char* op = kind_name(kind);
  const Slots s = slots(kind);
  const DType at = ctx.dtype(s.a), bt = ctx.dtype(s.b);
  ENGINE_CHECK(is_q8(at), op, ": a must be uint8 or int8, got ", dtype_name(at));
  ENGINE_CHECK(is_q8(bt), op, ": b must be uint8 or int8, got ", dtype_name(bt));
  if (kind == Kind::QGemm)
    ENGINE_CHECK(ctx.attrs().get_int("transA", 0) == 0, op, ": transA=1 is not supported");
  const Plan p = plan_of(kind, ctx.node(), ctx.shape(s.a), ctx.shape(s.b));
  const bool integer = kind == Kind::MatMulInteger;
  // Omitted zero points are 0 (MatMulInteger; tolerated for the others too).
  check_qparam(ctx, s.a_zp, op, "a_zero_point", at,
               str_cat("the dtype of a (", dtype_name(at), ")"), -1, "", true);
  check_qparam(ctx, s.b_zp, op, "b_zero_point", bt,
               str_cat("the dtype of b (", dtype_name(bt), ")"), p.N, "output column", true);
  DType out = DType::I32;
  if (!integer) {
    check_scale_input(ctx, s.a_scale, op, "a_scale");
    check_scale_input(ctx, s.b_scale, op, "b_scale", p.N, "output column");
    check_scale_input(ctx, s.y_scale, op, "y_scale");
    ENGINE_CHECK(ctx.has_input(s.y_zp), op, ": input y_zero_point (", s.y_zp, ") is required");
    out = ctx.dtype(s.y_zp);
    ENGINE_CHECK(is_q8(out), op, ": y_zero_point must be uint8 or int8 (it gives the output type)",
                 ", got ", dtype_name(out));
    check_qparam(ctx, s.y_zp, op, "y_zero_point", out, "type uint8 or int8");
    if (s.bias >= 0 && ctx.has_input(s.bias))
      ENGINE_CHECK(
          ctx.dtype(s.bias) == DType::I32 && ctx.rank(s.bias) == 1 && ctx.shape(s.bias)[0] == p.N,
          op, ": bias must be int32 with shape [", p.N, "] (one per output column), got ",
          dtype_name(ctx.dtype(s.bias)), " ", dims_str(ctx.shape(s.bias)));
    requant_attrs(ctx.node(), out, kind == Kind::QLinearMatMul);  // checks out_min / out_max
  }
  ctx.set_output(0, out, p.out);
}

// b - b_zp[n] as int16 in [K, N] layout (transposed when stored [N, K]), for every matrix of B.
std::vector<int16_t> b_minus_zp(const Tensor& B, const Plan& p, const std::vector<int32_t>& bzp) {
  const int64_t K = p.K, N = p.N;
  std::vector<int16_t> b16(size_t(B.numel()));
  dispatch_q8(B.dtype(), [&](auto tb) {
    const auto* b = B.data<decltype(tb)>();
    for (int64_t mat = 0; mat < B.numel() / std::max<int64_t>(1, K * N); ++mat)
      for (int64_t k = 0; k < K; ++k)
        for (int64_t n = 0; n < N; ++n) {
          const int64_t src = mat * K * N + (p.trans_b ? n * K + k : k * N + n);
          b16[size_t(mat * K * N + k * N + n)] = int16_t(b[src] - bzp[size_t(n)]);
        }
  });
  return b16;
}

// Built once per plan when B and its zero points are constants (weights): b - b_zp, converted
// and transposed once instead of at every run.
std::shared_ptr<const void> qgemm_prepare(const InferContext& ctx, Kind kind) {
  const Slots s = slots(kind);
  const Tensor* B = ctx.value_or_null(s.b);
  if (!B || (ctx.has_input(s.b_zp) && !ctx.value_or_null(s.b_zp))) return nullptr;
  const Plan p = plan_of(kind, ctx.node(), ctx.shape(s.a), B->shape());
  const Tensor* zp = ctx.has_input(s.b_zp) ? ctx.value_or_null(s.b_zp) : nullptr;
  return std::make_shared<const std::vector<int16_t>>(
      b_minus_zp(*B, p, zero_points_of(zp, p.N, kind_name(kind), "b_zero_point")));
}

void qgemm_kernel(KernelContext& kc, Kind kind) {
  const char* op = kind_name(kind);
  const Slots s = slots(kind);
  const Tensor& A = kc.in(s.a);
  const Tensor& B = kc.in(s.b);
  Tensor& Y = kc.out(0);
  const Plan p = plan_of(kind, kc.node, A.shape(), B.shape());
  const int64_t M = p.M, N = p.N, K = p.K, nb = int64_t(p.a_off.size());
  if (Y.numel() == 0) return;

  const auto opt = [&](int i) { return kc.has_input(i) ? &kc.in(i) : nullptr; };
  const int32_t azp = zero_points_of(opt(s.a_zp), 1, op, "a_zero_point")[0];
  const std::vector<int32_t> bzp = zero_points_of(opt(s.b_zp), N, op, "b_zero_point");
  // a - a_zp, and b - b_zp[n] in [K, N] layout (prepared once when B is a constant).
  std::vector<int16_t> a16(size_t(A.numel()));
  dispatch_q8(A.dtype(), [&](auto ta) {
    const auto* a = A.data<decltype(ta)>();
    for (int64_t i = 0; i < A.numel(); ++i) a16[size_t(i)] = int16_t(a[i] - azp);
  });
  const auto* prepared = static_cast<const std::vector<int16_t>*>(kc.state);
  std::vector<int16_t> own;
  if (!prepared) own = b_minus_zp(B, p, bzp);
  const std::vector<int16_t>& b16 = prepared ? *prepared : own;
  ENGINE_CHECK(int64_t(b16.size()) == B.numel(), op, ": weights do not match the prepared plan");

  OutputWriter out;
  out.y = &Y;
  if (kind != Kind::MatMulInteger) {
    const float as = scales_of(kc.in(s.a_scale), 1, op, "a_scale", false)[0];
    const float ys = scales_of(kc.in(s.y_scale), 1, op, "y_scale", true)[0];
    const std::vector<float> bs = scales_of(kc.in(s.b_scale), N, op, "b_scale", false);
    const int32_t yzp = zero_points_of(&kc.in(s.y_zp), 1, op, "y_zero_point")[0];
    out.rq = ChannelRequant(requant_attrs(kc.node, Y.dtype(), kind == Kind::QLinearMatMul), as, bs,
                            ys, yzp);
    if (s.bias >= 0 && kc.has_input(s.bias)) {
      ENGINE_CHECK(kc.in(s.bias).numel() == N, op, ": bias must have ", N, " values");
      out.bias = kc.in(s.bias).data<int32_t>();
    }
  }
  // Batches sharing B with consecutive A matrices form one taller product.
  bool stack = true;
  for (int64_t bi = 0; bi < nb; ++bi)
    stack = stack && p.b_off[size_t(bi)] == 0 && p.a_off[size_t(bi)] == bi * M * K;
  const int64_t rows = stack ? nb * M : M, products = stack ? 1 : nb;
  std::vector<int32_t> acc(size_t(rows * N));
  for (int64_t bi = 0; bi < products; ++bi) {
    igemm_s16(rows, N, K, a16.data() + p.a_off[size_t(bi)], K, b16.data() + p.b_off[size_t(bi)], N,
              acc.data(), N, kc.num_threads);
    // Column n of the output uses channel n: write one column at a time (stride N).
    for (int64_t n = 0; n < N; ++n)
      for (int64_t m = 0; m < rows; ++m)
        out.write(n, (bi * rows + m) * N + n, acc.data() + m * N + n, 1);
  }
}

void add_qgemm(OpRegistry& r, Kind kind, const char* domain) {
  OpSchema s;
  s.op_type = kind_name(kind);
  s.domain = domain;
  s.min_inputs = kind == Kind::MatMulInteger ? 2 : 8;
  s.max_inputs = kind == Kind::MatMulInteger ? 4 : kind == Kind::QGemm ? 9 : 8;
  if (kind == Kind::QGemm) s.validate = validate_requant_attrs;
  s.infer = [kind](InferContext& ctx) { qgemm_infer(ctx, kind); };
  s.kernel = [kind](KernelContext& kc) { qgemm_kernel(kc, kind); };
  s.prepare = [kind](const InferContext& ctx) { return qgemm_prepare(ctx, kind); };
  r.add(std::move(s));
}

}  // namespace

void register_qgemm_ops(OpRegistry& r) {
  add_qgemm(r, Kind::QGemm, "engine");
  add_qgemm(r, Kind::QLinearMatMul, "");
  add_qgemm(r, Kind::MatMulInteger, "");
}

}  // namespace engine
