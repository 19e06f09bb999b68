// fuse-mbconv: the float32 inverted-residual block of MobileNetV2 (and its relatives), as lowered
// by lower-onednn: NhwcConv 1x1 (expansion) -> NhwcConv depthwise 3x3 -> NhwcConv 1x1
// (projection, optionally with a residual Sum) becomes one NhwcMBConv (backends/x86/
// nhwc_mbconv.cpp) that never writes the expanded tensor to memory. Without the expansion conv
// (the first block of mobilenet_v2), depthwise -> projection fuses the same way.
//
// Conditions: the expansion and depthwise outputs are read only by the next conv and are not graph
// outputs; the 1x1 convs have stride 1, no padding, group 1; the depthwise conv is 3x3, stride 1
// or 2 in both axes, padding 1 on every side, no dilation; the expansion and depthwise convs have
// no Sum; every activation is none, Relu or Clip; the expanded channels are a multiple of 16; the
// registered kernel is available (AVX-512F, and ENGINE_ISA does not force a lower level). And the
// expanded tensor of one sample is at least kMinBytes: on smaller maps it stays in cache anyway,
// and oneDNN's separate convs (larger GEMMs) are faster. Runs after lower-onednn, at fusion level
// "all".
#include <optional>

#include "core/pass.h"
#include "core/passes/fusion_util.h"

namespace engine {
namespace {

using namespace fusion;

// Measured on mobilenet_v2 (bench/RESULTS.md): fusing pays on maps of 56 x 56 and larger.
constexpr int64_t kMinBytes = 1 << 20;

// A lowered NhwcConv with a constant [M, C/group, k, k] weight, the given stride in both axes,
// padding `pad` on every side, no dilation, explicit padding and the given group (0: depthwise,
// group == M); returns the weight shape.
std::optional<Dims> conv_of(const Graph& g, const Node& n, int64_t k, int64_t stride, int64_t pad,
                            int64_t group) {
  if (!is_engine_op(n, "NhwcConv") || n.outputs.size() != 1 || n.inputs.size() < 2) return {};
  const Tensor* w = f32_constant(g, n.inputs[1]);
  if (!w || w->rank() != 4 || w->dim(2) != k || w->dim(3) != k) return {};
  const Dims d = w->shape();
  const int64_t grp = n.attrs.get_int("group", 1);
  if (grp != (group == 0 ? d[0] : group) || (group == 0 && d[1] != 1)) return {};
  const std::string ap = n.attrs.get_string("auto_pad", "NOTSET");
  if (ap != "NOTSET" && !(pad == 0 && ap == "VALID")) return {};
  if (!all_equal(n.attrs.get_ints("strides", {1, 1}), stride) ||
      !all_equal(n.attrs.get_ints("dilations", {1, 1}), 1) ||
      !all_equal(n.attrs.get_ints("pads", {0, 0, 0, 0}), pad))
    return {};
  if (!bounds_of(n)) return {};
  return d;
}

int input_or_none(const Node& n, size_t i) {
  return has_input(n, i) ? n.inputs[i] : kNoValue;
}

class FuseMbconvPass : public Pass {
 public:
  bool backend() const override { return true; }
  std::string name() const override { return "fuse-mbconv"; }
  std::string description() const override {
    return "float NhwcConv 1x1 -> depthwise 3x3 -> 1x1 (inverted residual) on large maps -> one "
           "NhwcMBConv working row by row (runs after lower-onednn)";
  }
  int fuse_level() const override { return 2; }
  bool run(Graph& g, const PassContext& ctx) const override {
    // The backend says whether its kernel runs here (AVX-512F, ENGINE_ISA not lowered).
    const OpSchema* op = ctx.registry.find("engine", "NhwcMBConv");
    if (!op || (op->available && !op->available())) return false;
    bool any = false;
    for (const Node& n : g.nodes) any = any || is_engine_op(n, "NhwcConv");
    if (!any) return false;
    const std::optional<ShapeInfo> shapes = ShapeInfo::infer(g, ctx.registry);
    if (!shapes) return false;
    const ShapeInfo& s = *shapes;
    return rewrite_nodes(g, [&](GraphIndex& idx, int pi) {
      const Node& p = g.nodes[size_t(pi)];
      const std::optional<Dims> wp = conv_of(g, p, 1, 1, 0, 1);
      if (!wp) return false;
      const int dv = p.inputs[0];
      const int di = idx.producer(dv);
      if (di < 0 || !idx.only_read_by(dv, pi)) return false;
      const Node& d = g.nodes[size_t(di)];
      std::optional<Dims> wd;
      int64_t stride = 1;
      for (int64_t st : {1, 2})
        if (!wd && (wd = conv_of(g, d, 3, st, 1, 0))) stride = st;
      if (!wd || has_input(d, 3)) return false;
      const int64_t cexp = (*wd)[0];
      if (cexp % 16 != 0 || (*wp)[1] != cexp) return false;
      const int ev = d.inputs[0];
      const std::optional<Dims> shape = s.shape_with_one_dynamic_dim(ev);
      if (!shape || shape->size() != 4 || (*shape)[1] <= 0 || (*shape)[2] <= 0 ||
          (*shape)[1] * (*shape)[2] * cexp * 4 < kMinBytes)
        return false;
      const int ei = idx.producer(ev);
      const Node* e = nullptr;
      if (ei >= 0 && idx.only_read_by(ev, di)) {
        const std::optional<Dims> we = conv_of(g, g.nodes[size_t(ei)], 1, 1, 0, 1);
        if (we && (*we)[0] == cexp && !has_input(g.nodes[size_t(ei)], 3)) e = &g.nodes[size_t(ei)];
      }
      Node f;
      f.name = e ? e->name : d.name;
      f.op_type = "NhwcMBConv";
      f.domain = kEngineDomain;
      f.opset = 1;
      f.inputs = {
          e ? e->inputs[0] : ev, e ? e->inputs[1] : kNoValue, e ? input_or_none(*e, 2) : kNoValue,
          d.inputs[1],           input_or_none(d, 2),         p.inputs[1],
          input_or_none(p, 2),   input_or_none(p, 3)};
      f.outputs = {p.outputs[0]};
      f.attrs.set("stride", stride);
      if (e) set_bounds(f, "exp", *bounds_of(*e));
      set_bounds(f, "dw", *bounds_of(d));
      set_bounds(f, "proj", *bounds_of(p));
      std::vector<int> pattern = {di, pi};
      if (e) pattern.insert(pattern.begin(), ei);
      place_fused(g, idx, pattern, std::move(f));
      return true;
    });
  }
};

}  // namespace

std::unique_ptr<Pass> make_fuse_mbconv_pass() {
  return std::make_unique<FuseMbconvPass>();
}

}  // namespace engine
