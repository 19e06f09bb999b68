#include "quant/equalize.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "core/passes/fusion_util.h"

namespace engine::quant {

namespace {

// Float32 constant 4-D weights of a conv, or nullptr.
Tensor* weights(Graph& g, const Node& n) {
  if (n.inputs.size() < 2 || n.inputs[1] < 0) return nullptr;
  Value& v = g.value(n.inputs[1]);
  if (!v.constant || v.constant->dtype() != DType::F32 || v.constant->rank() != 4) return nullptr;
  return &*v.constant;
}

// Activation of A that commutes with a positive per-channel scale; Clip(0, b) counts (it is
// replaced by Relu). Returns false for anything else.
bool scalable_activation(const Node& a, bool& clip) {
  clip = false;
  const std::string act = a.attrs.get_string("activation", "");
  if (act.empty() || act == "Relu" || act == "LeakyRelu") return true;
  if (act == "Clip" && a.attrs.get_float("act_alpha", -1.0f) == 0.0f) {
    clip = true;
    return true;
  }
  return false;
}

}  // namespace

EqualizeReport equalize_graph(Graph& g, int max_rounds) {
  EqualizeReport rep;
  const fusion::GraphIndex idx(g);
  // Constants read by one node only (shared ones stay as they are).
  auto owned = [&](int v) { return idx.consumers(v).size() == 1 && !idx.is_graph_output(v); };

  // The pairs: A's single output read only by B's input 0.
  struct Pair {
    int a, b;
  };
  std::vector<Pair> pairs;
  for (size_t bi = 0; bi < g.nodes.size(); ++bi) {
    const Node& b = g.nodes[bi];
    if (!fusion::is_conv_like(b) || b.inputs.empty() || b.inputs[0] < 0) continue;
    const int x = b.inputs[0];
    const int ai = idx.producer(x);
    if (ai < 0 || !idx.only_read_by(x, int(bi))) continue;
    const Node& a = g.nodes[size_t(ai)];
    bool clip = false;
    if (!fusion::is_conv_like(a) || a.outputs.size() != 1 || !scalable_activation(a, clip))
      continue;
    if (fusion::has_sum(a)) continue;  // a residual sum is not scaled with it
    if (a.inputs.size() > 2 && a.inputs[2] >= 0 &&
        (!g.is_constant(a.inputs[2]) || !owned(a.inputs[2])))
      continue;
    Tensor* wa = weights(g, a);
    Tensor* wb = weights(g, b);
    if (!wa || !wb || !owned(a.inputs[1]) || !owned(b.inputs[1])) continue;
    const int64_t gb = b.attrs.get_int("group", 1);
    if (gb <= 0 || wa->dim(0) != wb->dim(1) * gb) continue;  // channel counts must match
    pairs.push_back({ai, int(bi)});
  }

  for (const Pair& p : pairs) {
    Node& a = g.nodes[size_t(p.a)];
    // Tensors share their buffers when a graph is copied: own the ones about to change.
    for (int v :
         {a.inputs[1], g.nodes[size_t(p.b)].inputs[1], a.inputs.size() > 2 ? a.inputs[2] : -1})
      if (v >= 0) g.value(v).constant = g.value(v).constant->clone();
    bool clip = false;
    scalable_activation(a, clip);
    if (clip) {
      a.attrs.set("activation", std::string("Relu"));
      a.attrs.erase("act_alpha");
      a.attrs.erase("act_beta");
      ++rep.relu6_replaced;
    }
    rep.pair_names.push_back(a.name + " -> " + g.nodes[size_t(p.b)].name);
  }
  rep.pairs = int(pairs.size());

  for (int round = 0; round < max_rounds && !pairs.empty(); ++round) {
    double change = 0;
    for (const Pair& p : pairs) {
      const Node& a = g.nodes[size_t(p.a)];
      const Node& b = g.nodes[size_t(p.b)];
      Tensor& wa = *weights(g, a);
      Tensor& wb = *weights(g, b);
      const int64_t C = wa.dim(0), per_a = wa.numel() / C;
      const int64_t gb = b.attrs.get_int("group", 1), cin_g = wb.dim(1);
      const int64_t cout_g = wb.dim(0) / gb, khw = wb.dim(2) * wb.dim(3);
      // Ranges.
      std::vector<double> r1(size_t(C), 0.0), r2(size_t(C), 0.0);
      const float* pa = wa.data<float>();
      for (int64_t c = 0; c < C; ++c)
        for (int64_t k = 0; k < per_a; ++k)
          r1[size_t(c)] = std::max(r1[size_t(c)], double(std::abs(pa[c * per_a + k])));
      float* pb = wb.data<float>();
      auto for_b = [&](auto&& f) {  // f(input channel of A's output, index in wb)
        for (int64_t o = 0; o < wb.dim(0); ++o) {
          const int64_t grp = o / cout_g;
          for (int64_t j = 0; j < cin_g; ++j)
            for (int64_t k = 0; k < khw; ++k) f(grp * cin_g + j, (o * cin_g + j) * khw + k);
        }
      };
      for_b([&](int64_t c, int64_t i) {
        r2[size_t(c)] = std::max(r2[size_t(c)], double(std::abs(pb[i])));
      });
      std::vector<double> s(size_t(C), 1.0);
      for (int64_t c = 0; c < C; ++c)
        if (r1[size_t(c)] > 0 && r2[size_t(c)] > 0) {
          s[size_t(c)] = std::sqrt(r1[size_t(c)] / r2[size_t(c)]);
          change = std::max(change, std::abs(std::log(s[size_t(c)])));
        }
      float* wa_mut = wa.data<float>();
      for (int64_t c = 0; c < C; ++c)
        for (int64_t k = 0; k < per_a; ++k)
          wa_mut[c * per_a + k] = float(pa[c * per_a + k] / s[size_t(c)]);
      if (a.inputs.size() > 2 && a.inputs[2] >= 0) {
        Tensor& bias = *g.value(a.inputs[2]).constant;
        for (int64_t c = 0; c < C && c < bias.numel(); ++c)
          bias.data<float>()[c] = float(bias.data<float>()[c] / s[size_t(c)]);
      }
      for_b([&](int64_t c, int64_t i) { pb[i] = float(pb[i] * s[size_t(c)]); });
    }
    rep.rounds = round + 1;
    if (change < 1e-4) break;
  }
  return rep;
}

}  // namespace engine::quant
