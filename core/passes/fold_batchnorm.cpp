// Folds inference-mode BatchNormalization into a neighbouring Conv / Gemm with constant weights.
// BN is per channel y = a[c] * x + b[c] with a = scale / sqrt(var + eps), b = B - mean * a.
//   Conv -> BN:  W'[m] = a[m] W[m],  B'[m] = a[m] B[m] + b[m]
//   Gemm -> BN (2-D, channels = columns n):  op(B)'[:, n] = a[n] op(B)[:, n],
//                C'[., n] = a[n] beta C[., n] + b[n], beta' = 1
//   BN -> Conv (no padding: padding would insert zeros where BN would have given b):
//                W'[m, c] = W[m, c] a[c],  B'[m] = B[m] + sum over (c, taps) of W[m, c, taps] b[c]
//                (c runs over the input channels of m's group)
// Folded constants are computed in double and rounded once.
#include <cmath>

#include "core/pass.h"
#include "core/passes/fusion_util.h"

namespace engine {
namespace {

using namespace fusion;

struct BnAffine {
  std::vector<double> a, b;
};

// The per-channel affine map of an inference-mode BN with constant float32 parameters.
std::optional<BnAffine> bn_affine(const Graph& g, const Node& n) {
  if (!is_op(n, "BatchNormalization") || n.inputs.size() != 5 || n.outputs.size() != 1 ||
      n.inputs[0] < 0 || n.attrs.get_int("training_mode", 0) != 0)
    return std::nullopt;
  if (n.opset < 9 && n.attrs.get_int("spatial", 1) != 1) return std::nullopt;
  const Tensor* p[4];
  for (int i = 0; i < 4; ++i) {
    p[i] = f32_constant(g, n.inputs[size_t(i + 1)]);
    if (!p[i] || p[i]->rank() != 1 || p[i]->numel() != p[0]->numel()) return std::nullopt;
  }
  const double eps = n.attrs.get_float("epsilon", 1e-5f);
  const int64_t C = p[0]->numel();
  BnAffine r;
  for (int64_t c = 0; c < C; ++c) {
    const double a =
        double(p[0]->data<float>()[c]) / std::sqrt(double(p[3]->data<float>()[c]) + eps);
    r.a.push_back(a);
    r.b.push_back(double(p[1]->data<float>()[c]) - double(p[2]->data<float>()[c]) * a);
  }
  return r;
}

// Conv/FusedConv (no activation, no Sum) with constant W [C, ...] and optional constant B [C].
bool foldable_conv_weights(const Graph& g, const Node& c, int64_t C) {
  if (!is_conv_like(c) || has_activation(c) || has_sum(c) || c.inputs.size() < 2) return false;
  const Tensor* w = f32_constant(g, c.inputs[1]);
  if (!w || w->rank() < 3 || w->dim(0) != C) return false;
  if (c.inputs.size() > 2 && c.inputs[2] >= 0) {
    const Tensor* b = f32_constant(g, c.inputs[2]);
    if (!b || b->rank() != 1 || b->numel() != C) return false;
  }
  return true;
}

// Conv -> BN: scale each output channel.
void fold_after_conv(Graph& g, Node& c, const BnAffine& bn) {
  const Tensor& w = *g.value(c.inputs[1]).constant;
  const bool has_b = c.inputs.size() > 2 && c.inputs[2] >= 0;
  const int64_t M = w.dim(0), per = w.numel() / std::max<int64_t>(M, 1);
  Tensor w2(DType::F32, w.shape()), b2(DType::F32, {M});
  for (int64_t m = 0; m < M; ++m) {
    for (int64_t i = 0; i < per; ++i)
      w2.data<float>()[m * per + i] = float(double(w.data<float>()[m * per + i]) * bn.a[size_t(m)]);
    const double b0 = has_b ? double(g.value(c.inputs[2]).constant->data<float>()[m]) : 0.0;
    b2.data<float>()[m] = float(b0 * bn.a[size_t(m)] + bn.b[size_t(m)]);
  }
  const std::string name = c.name;
  const int wid = add_constant(g, name + "_W_bnfold", std::move(w2));
  const int bid = add_constant(g, name + "_B_bnfold", std::move(b2));
  if (c.inputs.size() < 3) c.inputs.resize(3, kNoValue);
  c.inputs[1] = wid;
  c.inputs[2] = bid;
}

// Gemm -> BN on its 2-D output: scale the columns of op(B) and fold into C.
bool fold_after_gemm(Graph& g, Node& n, const BnAffine& bn) {
  if (!is_gemm_like(n) || has_activation(n) || n.inputs.size() < 2) return false;
  const Tensor* B = f32_constant(g, n.inputs[1]);
  if (!B || B->rank() != 2) return false;
  const bool tb = n.attrs.get_int("transB", 0) != 0;
  const int64_t N = tb ? B->dim(0) : B->dim(1), K = tb ? B->dim(1) : B->dim(0);
  if (N != int64_t(bn.a.size())) return false;
  const Tensor* C = nullptr;
  if (n.inputs.size() > 2 && n.inputs[2] >= 0) {
    C = f32_constant(g, n.inputs[2]);
    if (!C || C->rank() > 2) return false;
    const int64_t cn = C->rank() >= 1 ? C->dim(-1) : 1;
    if (cn != N && cn != 1) return false;
  }
  const double beta = C ? n.attrs.get_float("beta", 1.0f) : 0.0;
  Tensor b2(DType::F32, B->shape());
  for (int64_t k = 0; k < K; ++k)
    for (int64_t j = 0; j < N; ++j) {
      const int64_t i = tb ? j * K + k : k * N + j;
      b2.data<float>()[i] = float(double(B->data<float>()[i]) * bn.a[size_t(j)]);
    }
  // C' has C's rows (1 when C is absent or a row vector) and N columns.
  const int64_t cm = C && C->rank() == 2 ? C->dim(0) : 1;
  const int64_t cn = C && C->rank() >= 1 ? C->dim(-1) : 1;
  Tensor c2(DType::F32, cm == 1 ? Dims{N} : Dims{cm, N});
  for (int64_t r = 0; r < cm; ++r)
    for (int64_t j = 0; j < N; ++j) {
      const double c0 = C ? double(C->data<float>()[r * cn + (cn == 1 ? 0 : j)]) : 0.0;
      c2.data<float>()[r * N + j] = float(bn.a[size_t(j)] * beta * c0 + bn.b[size_t(j)]);
    }
  const std::string name = n.name;
  const int bid = add_constant(g, name + "_B_bnfold", std::move(b2));
  const int cid = add_constant(g, name + "_C_bnfold", std::move(c2));
  if (n.inputs.size() < 3) n.inputs.resize(3, kNoValue);
  n.inputs[1] = bid;
  n.inputs[2] = cid;
  n.attrs.set("beta", 1.0f);
  return true;
}

// BN -> Conv without padding: fold into the input channels.
bool fold_before_conv(Graph& g, Node& c, const BnAffine& bn) {
  if (!is_conv_like(c) || c.inputs.size() < 2) return false;
  const std::string ap = c.attrs.get_string("auto_pad", "NOTSET");
  if (ap != "NOTSET" && ap != "VALID" && !ap.empty()) return false;
  if (ap != "VALID")
    for (int64_t p : c.attrs.get_ints("pads", {}))
      if (p != 0) return false;
  const Tensor* w = f32_constant(g, c.inputs[1]);
  if (!w || w->rank() < 3) return false;
  const int64_t M = w->dim(0), Cg = w->dim(1), G = c.attrs.get_int("group", 1);
  if (G < 1 || M % G != 0 || Cg * G != int64_t(bn.a.size())) return false;
  const bool has_b = c.inputs.size() > 2 && c.inputs[2] >= 0;
  const Tensor* b = has_b ? f32_constant(g, c.inputs[2]) : nullptr;
  if (has_b && (!b || b->numel() != M)) return false;
  const int64_t taps = w->numel() / std::max<int64_t>(M * Cg, 1), Mg = M / G;
  Tensor w2(DType::F32, w->shape()), b2(DType::F32, {M});
  for (int64_t m = 0; m < M; ++m) {
    double acc = b ? double(b->data<float>()[m]) : 0.0;
    for (int64_t cl = 0; cl < Cg; ++cl) {
      const size_t ch = size_t((m / Mg) * Cg + cl);  // input channel
      for (int64_t t = 0; t < taps; ++t) {
        const int64_t i = (m * Cg + cl) * taps + t;
        const double wv = double(w->data<float>()[i]);
        w2.data<float>()[i] = float(wv * bn.a[ch]);
        acc += wv * bn.b[ch];
      }
    }
    b2.data<float>()[m] = float(acc);
  }
  const std::string name = c.name;
  const int wid = add_constant(g, name + "_W_bnfold", std::move(w2));
  const int bid = add_constant(g, name + "_B_bnfold", std::move(b2));
  if (c.inputs.size() < 3) c.inputs.resize(3, kNoValue);
  c.inputs[1] = wid;
  c.inputs[2] = bid;
  return true;
}

class FoldBatchNormPass : public Pass {
 public:
  std::string name() const override { return "fold-batchnorm"; }
  std::string description() const override {
    return "fold inference BatchNormalization into the Conv/Gemm before it (or the unpadded Conv "
           "after it)";
  }
  int fuse_level() const override { return 1; }
  bool run(Graph& g, const PassContext&) const override {
    return rewrite_nodes(g, [&](GraphIndex& idx, int i) {
      const std::optional<BnAffine> bn = bn_affine(g, g.nodes[size_t(i)]);
      if (!bn) return false;
      const int x = g.nodes[size_t(i)].inputs[0], y = g.nodes[size_t(i)].outputs[0];
      const int64_t C = int64_t(bn->a.size());
      // BN after a conv / gemm whose output only the BN reads.
      const int p = idx.producer(x);
      if (p >= 0 && idx.only_read_by(x, i)) {
        Node& prod = g.nodes[size_t(p)];
        bool done = false;
        if (foldable_conv_weights(g, prod, C)) {
          fold_after_conv(g, prod, *bn);
          done = true;
        } else {
          done = fold_after_gemm(g, prod, *bn);
        }
        if (done) {
          prod.outputs[0] = y;  // the conv now writes the BN's output (it stays before its readers)
          idx.kill(i);
          return true;
        }
      }
      // BN before a conv that is its only reader (as X).
      const std::vector<int>& readers = idx.consumers(y);
      if (readers.size() != 1 || idx.is_graph_output(y)) return false;
      Node& c = g.nodes[size_t(readers[0])];
      if (c.inputs.empty() || c.inputs[0] != y || !fold_before_conv(g, c, *bn)) return false;
      c.inputs[0] = x;
      idx.kill(i);
      return true;
    });
  }
};

}  // namespace

std::unique_ptr<Pass> make_fold_batchnorm_pass() {
  return std::make_unique<FoldBatchNormPass>();
}

}  // namespace engine
