// Pad (constant mode, pad value 0, constant non-negative pads on spatial axes only) whose output
// only a Conv/FusedConv with auto_pad NOTSET reads (as X) -> the conv's pads grow by the pad
// amounts and the conv reads the Pad's input.
#include "core/pass.h"
#include "core/passes/fusion_util.h"

namespace engine {
namespace {

using namespace fusion;

// The pads of a foldable Pad node ([x1_begin, x2_begin, ..., x1_end, ...]), or nullopt.
std::optional<std::vector<int64_t>> foldable_pads(const Graph& g, const Node& n) {
  if (!is_op(n, "Pad") || n.inputs.empty() || n.inputs[0] < 0 || n.outputs.size() != 1)
    return std::nullopt;
  if (n.attrs.get_string("mode", "constant") != "constant") return std::nullopt;
  std::vector<int64_t> pads;
  if (n.opset < 11) {
    if (!n.attrs.has("pads") || n.attrs.get_float("value", 0.0f) != 0.0f) return std::nullopt;
    pads = n.attrs.get_ints("pads");
  } else {
    if (n.inputs.size() < 2 || !g.is_constant(n.inputs[1])) return std::nullopt;
    if (n.inputs.size() > 3 && n.inputs[3] >= 0) return std::nullopt;  // axes (opset 18)
    const Tensor& p = *g.value(n.inputs[1]).constant;
    if (p.dtype() != DType::I64) return std::nullopt;
    pads = p.to_int_vector();
    if (n.inputs.size() > 2 && n.inputs[2] >= 0) {
      if (!g.is_constant(n.inputs[2])) return std::nullopt;
      const Tensor& v = *g.value(n.inputs[2]).constant;
      if (v.numel() != 1 || v.get_as_double(0) != 0.0) return std::nullopt;
    }
  }
  const size_t r = pads.size() / 2;
  if (pads.size() % 2 != 0 || r < 3 || r > 5) return std::nullopt;
  for (int64_t p : pads)
    if (p < 0) return std::nullopt;
  if (pads[0] || pads[1] || pads[r] || pads[r + 1]) return std::nullopt;  // N and C untouched
  return pads;
}

class FoldPadIntoConvPass : public Pass {
 public:
  std::string name() const override { return "fold-pad-into-conv"; }
  std::string description() const override {
    return "fold a zero constant Pad on spatial axes into the following Conv's pads";
  }
  int fuse_level() const override { return 2; }
  bool run(Graph& g, const PassContext&) const override {
    return rewrite_nodes(g, [&](GraphIndex& idx, int i) {
      const std::optional<std::vector<int64_t>> pads = foldable_pads(g, g.nodes[size_t(i)]);
      if (!pads) return false;
      const int y = g.nodes[size_t(i)].outputs[0];
      const std::vector<int>& readers = idx.consumers(y);
      if (readers.size() != 1 || idx.is_graph_output(y)) return false;
      Node& conv = g.nodes[size_t(readers[0])];
      if (!is_conv_like(conv) || conv.inputs.empty() || conv.inputs[0] != y) return false;
      const std::string ap = conv.attrs.get_string("auto_pad", "NOTSET");
      if (ap != "NOTSET" && !ap.empty()) return false;
      const size_t r = pads->size() / 2, nsp = r - 2;
      std::vector<int64_t> cp = conv.attrs.get_ints("pads", std::vector<int64_t>(2 * nsp, 0));
      if (cp.size() != 2 * nsp) return false;
      for (size_t d = 0; d < nsp; ++d) {
        cp[d] += (*pads)[2 + d];
        cp[nsp + d] += (*pads)[r + 2 + d];
      }
      conv.attrs.set("pads", cp);
      conv.inputs[0] = g.nodes[size_t(i)].inputs[0];
      idx.kill(i);
      return true;
    });
  }
};

}  // namespace

std::unique_ptr<Pass> make_fold_pad_into_conv_pass() {
  return std::make_unique<FoldPadIntoConvPass>();
}

}  // namespace engine
