// Gemm, FusedGemm (engine domain: Gemm + activation, float32) and MatMul. float32 runs on the
// blocked sgemm; float64 and 32/64-bit integers use a plain loop (they only appear in shape
// computations and tests).
#include <algorithm>
#include <cstring>
#include <string>
#include <type_traits>
#include <vector>

#include "ops/activation_fn.h"
#include "ops/ops.h"
#include "ops/sgemm.h"

namespace engine {
namespace {

bool matmul_dtype_ok(DType t) {
  return t == DType::F32 || t == DType::F64 || t == DType::I32 || t == DType::I64 ||
         t == DType::U32 || t == DType::U64;
}

// C[M,N] = alpha * op(A) op(B) + beta * C for non-float32 types (beta == 0: C not read).
template <class T>
void gemm_generic(bool ta, bool tb, int64_t M, int64_t N, int64_t K, double alpha, const T* A,
                  int64_t lda, const T* B, int64_t ldb, double beta, T* C, int64_t ldc) {
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j) {
      T s = T(0);
      for (int64_t k = 0; k < K; ++k)
        s += (ta ? A[k * lda + i] : A[i * lda + k]) * (tb ? B[j * ldb + k] : B[k * ldb + j]);
      T& c = C[i * ldc + j];
      if (alpha == 1.0 && beta == 0.0)
        c = s;
      else if (alpha == 1.0 && beta == 1.0)
        c = T(c + s);
      else
        c = T(alpha * double(s) + (beta == 0.0 ? 0.0 : beta * double(c)));
    }
}

void gemm_any(DType t, bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha,
              const void* A, int64_t lda, const void* B, int64_t ldb, float beta, void* C,
              int64_t ldc, int threads) {
  if (t == DType::F32) {
    sgemm(ta, tb, M, N, K, alpha, static_cast<const float*>(A), lda, static_cast<const float*>(B),
          ldb, beta, static_cast<float*>(C), ldc, threads);
    return;
  }
  dispatch_dtype(t, [&](auto zero) {
    using T = decltype(zero);
    if constexpr (std::is_same_v<T, double> || std::is_same_v<T, int32_t> ||
                  std::is_same_v<T, int64_t> || std::is_same_v<T, uint32_t> ||
                  std::is_same_v<T, uint64_t>) {
      gemm_generic<T>(ta, tb, M, N, K, alpha, static_cast<const T*>(A), lda,
                      static_cast<const T*>(B), ldb, beta, static_cast<T*>(C), ldc);
    } else {
      fail("unsupported element type ", dtype_name(t));
    }
  });
}

// ---------------------------------------------------------------- Gemm

struct GemmDims {
  int64_t M, N, K;
};

GemmDims gemm_dims(const Node& n, const Dims& a, const Dims& b) {
  ENGINE_CHECK(a.size() == 2, "Gemm: input A must be 2-D, got shape ", dims_str(a));
  ENGINE_CHECK(b.size() == 2, "Gemm: input B must be 2-D, got shape ", dims_str(b));
  const bool ta = n.attrs.get_int("transA", 0) != 0, tb = n.attrs.get_int("transB", 0) != 0;
  const int64_t M = ta ? a[1] : a[0], K = ta ? a[0] : a[1];
  const int64_t Kb = tb ? b[1] : b[0], N = tb ? b[0] : b[1];
  ENGINE_CHECK(K == Kb, "Gemm: inner dimensions do not match: op(A) is ", M, "x", K, " (A shape ",
               dims_str(a), ", transA=", int(ta), ") but op(B) is ", Kb, "x", N, " (B shape ",
               dims_str(b), ", transB=", int(tb), ")");
  return {M, N, K};
}

void gemm_infer(InferContext& ctx) {
  const DType t = ctx.dtype(0);
  ENGINE_CHECK(matmul_dtype_ok(t), "Gemm: unsupported element type ", dtype_name(t),
               " (supported: float32, float64, int32, int64, uint32, uint64)");
  ENGINE_CHECK(ctx.dtype(1) == t, "Gemm: A is ", dtype_name(t), " but B is ",
               dtype_name(ctx.dtype(1)));
  const GemmDims d = gemm_dims(ctx.node(), ctx.shape(0), ctx.shape(1));
  if (ctx.has_input(2)) {
    ENGINE_CHECK(ctx.dtype(2) == t, "Gemm: A is ", dtype_name(t), " but C is ",
                 dtype_name(ctx.dtype(2)));
    const Dims& c = ctx.shape(2);
    const Dims target{d.M, d.N};
    bool ok = c.size() <= 2;
    for (size_t i = 0; ok && i < c.size(); ++i) {
      const int64_t want = target[2 - c.size() + i];
      ok = c[i] == want || c[i] == 1;
    }
    ENGINE_CHECK(ok, "Gemm: C of shape ", dims_str(c),
                 " cannot be broadcast (unidirectionally) to the output shape [", d.M, ",", d.N,
                 "]");
  }
  ctx.set_output(0, t, {d.M, d.N});
}

void gemm_kernel(KernelContext& kc) {
  const Tensor& A = kc.in(0);
  const Tensor& B = kc.in(1);
  Tensor& Y = kc.out(0);
  const GemmDims d = gemm_dims(kc.node, A.shape(), B.shape());
  const bool ta = kc.attrs().get_int("transA", 0) != 0, tb = kc.attrs().get_int("transB", 0) != 0;
  const float alpha = kc.attrs().get_float("alpha", 1.0f);
  float beta = kc.attrs().get_float("beta", 1.0f);
  if (!kc.has_input(2)) beta = 0.0f;
  if (beta != 0.0f) {
    // Y = broadcast(C), then sgemm accumulates alpha * A B + beta * Y.
    const Tensor& C = kc.in(2);
    const int64_t cm = C.rank() == 2 ? C.dim(0) : 1;
    const int64_t cn = C.rank() >= 1 ? C.dim(-1) : 1;
    const size_t es = dtype_size(Y.dtype());
    const char* c = static_cast<const char*>(C.raw());
    char* y = static_cast<char*>(Y.raw());
    for (int64_t i = 0; i < d.M; ++i)
      for (int64_t j = 0; j < d.N; ++j) {
        const int64_t src = (cm == 1 ? 0 : i) * cn + (cn == 1 ? 0 : j);
        std::memcpy(y + size_t(i * d.N + j) * es, c + size_t(src) * es, es);
      }
  }
  gemm_any(Y.dtype(), ta, tb, d.M, d.N, d.K, alpha, A.raw(), A.dim(1), B.raw(), B.dim(1), beta,
           Y.raw(), d.N, kc.num_threads);
}

// ---------------------------------------------------------------- FusedGemm
// y = act(alpha * op(A) op(B) + beta * C): the Gemm kernel, then the activation in place.

void fused_gemm_infer(InferContext& ctx) {
  ENGINE_CHECK(ctx.dtype(0) == DType::F32, "FusedGemm: only float32 is supported, A is ",
               dtype_name(ctx.dtype(0)));
  activation_from_attrs(ctx.attrs());
  gemm_infer(ctx);
}

void fused_gemm_kernel(KernelContext& kc) {
  const Activation act = activation_from_attrs(kc.attrs());
  gemm_kernel(kc);
  Tensor& Y = kc.out(0);
  apply_epilogue(Y.data<float>(), nullptr, Y.numel(), act);
}

// ---------------------------------------------------------------- MatMul

struct MatMulPlan {
  int64_t M = 1, N = 1, K = 1;
  Dims batch;           // broadcast batch shape of the output
  Dims a_bstr, b_bstr;  // element strides of A/B per batch dim (0 where broadcast)
  Dims out_shape;
};

MatMulPlan matmul_plan(const Dims& a, const Dims& b) {
  ENGINE_CHECK(!a.empty() && !b.empty(), "MatMul: inputs must have rank >= 1, got A ", dims_str(a),
               " and B ", dims_str(b));
  MatMulPlan p;
  // numpy: a 1-D A is a row [1, K], a 1-D B a column [K, 1]; the added dim is dropped after.
  const Dims am = a.size() == 1 ? Dims{1, a[0]} : a;
  const Dims bm = b.size() == 1 ? Dims{b[0], 1} : b;
  p.M = am[am.size() - 2];
  p.K = am.back();
  p.N = bm.back();
  ENGINE_CHECK(bm[bm.size() - 2] == p.K, "MatMul: inner dimensions do not match: A ", dims_str(a),
               " has K=", p.K, " but B ", dims_str(b), " has K=", bm[bm.size() - 2]);
  const size_t ra = am.size() - 2, rb = bm.size() - 2, rn = std::max(ra, rb);
  // Strides of the batch dims of A and B (contiguous matrices).
  Dims astr(ra), bstr(rb);
  int64_t s = p.M * p.K;
  for (size_t i = ra; i-- > 0;) astr[i] = s, s *= am[i];
  s = p.K * p.N;
  for (size_t i = rb; i-- > 0;) bstr[i] = s, s *= bm[i];
  for (size_t i = 0; i < rn; ++i) {
    const bool ha = i + ra >= rn, hb = i + rb >= rn;
    const int64_t da = ha ? am[i + ra - rn] : 1, db = hb ? bm[i + rb - rn] : 1;
    ENGINE_CHECK(da == db || da == 1 || db == 1, "MatMul: batch dimensions of A ", dims_str(a),
                 " and B ", dims_str(b), " cannot be broadcast together");
    const int64_t dn = da == 1 ? db : da;
    p.batch.push_back(dn);
    p.a_bstr.push_back(ha && da != 1 ? astr[i + ra - rn] : 0);
    p.b_bstr.push_back(hb && db != 1 ? bstr[i + rb - rn] : 0);
  }
  p.out_shape = p.batch;
  if (a.size() > 1) p.out_shape.push_back(p.M);
  if (b.size() > 1) p.out_shape.push_back(p.N);
  return p;
}

void matmul_infer(InferContext& ctx) {
  const DType t = ctx.dtype(0);
  ENGINE_CHECK(matmul_dtype_ok(t), "MatMul: unsupported element type ", dtype_name(t),
               " (supported: float32, float64, int32, int64, uint32, uint64)");
  ENGINE_CHECK(ctx.dtype(1) == t, "MatMul: A is ", dtype_name(t), " but B is ",
               dtype_name(ctx.dtype(1)));
  ctx.set_output(0, t, matmul_plan(ctx.shape(0), ctx.shape(1)).out_shape);
}

void matmul_kernel(KernelContext& kc) {
  const Tensor& A = kc.in(0);
  const Tensor& B = kc.in(1);
  Tensor& Y = kc.out(0);
  const MatMulPlan p = matmul_plan(A.shape(), B.shape());
  const DType t = Y.dtype();
  const size_t es = dtype_size(t);
  const char* a = static_cast<const char*>(A.raw());
  const char* b = static_cast<const char*>(B.raw());
  char* y = static_cast<char*>(Y.raw());
  int64_t nb = 1;
  for (int64_t d : p.batch) nb *= d;
  if (nb == 0 || p.M == 0 || p.N == 0) return;

  // B shared by every batch and A not broadcast: one GEMM with the batches stacked along M.
  bool b_shared = true, a_full = true;
  for (size_t i = 0; i < p.batch.size(); ++i) {
    b_shared = b_shared && p.b_bstr[i] == 0;
    a_full = a_full && (p.a_bstr[i] != 0 || p.batch[i] == 1);
  }
  if (b_shared && a_full) {
    gemm_any(t, false, false, nb * p.M, p.N, p.K, 1.0f, a, p.K, b, p.N, 0.0f, y, p.N,
             kc.num_threads);
    return;
  }
  const double flops = double(p.M) * double(p.N) * double(p.K);
  // Small matrices: run batches in parallel (sgemm then stays on its calling thread).
#pragma omp parallel for schedule(static) if (nb > 1 && flops < 1e6)
  for (int64_t bi = 0; bi < nb; ++bi) {
    int64_t rem = bi, ao = 0, bo = 0;
    for (size_t i = p.batch.size(); i-- > 0;) {
      const int64_t idx = rem % p.batch[i];
      rem /= p.batch[i];
      ao += idx * p.a_bstr[i];
      bo += idx * p.b_bstr[i];
    }
    gemm_any(t, false, false, p.M, p.N, p.K, 1.0f, a + size_t(ao) * es, p.K, b + size_t(bo) * es,
             p.N, 0.0f, y + size_t(bi * p.M * p.N) * es, p.N, kc.num_threads);
  }
}

}  // namespace

void register_gemm_ops(OpRegistry& r) {
  OpSchema gemm;
  gemm.op_type = "Gemm";
  gemm.min_inputs = 2;
  gemm.max_inputs = 3;
  gemm.infer = gemm_infer;
  gemm.kernel = gemm_kernel;
  r.add(std::move(gemm));

  OpSchema fused;
  fused.op_type = "FusedGemm";
  fused.domain = "engine";
  fused.min_inputs = 2;
  fused.max_inputs = 3;
  fused.validate = [](const Node& n) { activation_from_attrs(n.attrs); };
  fused.infer = fused_gemm_infer;
  fused.kernel = fused_gemm_kernel;
  r.add(std::move(fused));

  OpSchema mm;
  mm.op_type = "MatMul";
  mm.min_inputs = 2;
  mm.max_inputs = 2;
  mm.infer = matmul_infer;
  mm.kernel = matmul_kernel;
  r.add(std::move(mm));
}

}  // namespace engine
