// fuse-qconv-qadd: NhwcQConv -> QAdd / QLinearAdd (float requantization) becomes one NhwcQConv
// that adds the other operand after requantizing (inputs 12, 13: add_y_scale, add_y_zp;
// attributes add_out_min / add_out_max; backends/x86/nhwc_qconv.cpp). The integers are those of
// the two nodes: the conv output is still rounded to its own scale before the add, as a QDQ graph
// says (a Q on the conv output, then the add), but it is added while still in cache instead of
// going to memory and being read back by a separate node.
//
// Runs after lower-onednn (it matches the lowered op), at fusion level "all". Conditions: the conv
// has group 1 and no sum; its output is read only by the add and is not a graph output; the add
// reads it with the conv's own scale and zero point; both operands and the output have one shape
// and type; every scale and zero point is a constant.
#include <cstring>
#include <memory>
#include <optional>

#include "core/pass.h"
#include "core/passes/fusion_util.h"

namespace engine {
namespace {

using namespace fusion;

// The single value of a constant scalar input, as float (scales) or as an integer (zero points;
// 0 when the input is absent).
std::optional<double> scalar(const Graph& g, const Node& n, size_t i, bool absent_is_zero) {
  if (!has_input(n, i)) return absent_is_zero ? std::optional<double>(0.0) : std::nullopt;
  const int v = n.inputs[i];
  if (!g.is_constant(v) || g.value(v).constant->numel() != 1) return std::nullopt;
  const Tensor& t = *g.value(v).constant;
  if (t.dtype() == DType::F32) return double(t.data<float>()[0]);
  return double(t.get_as_int(0));
}

bool float_add(const Node& n) {
  if (is_ms_op(n, "QLinearAdd")) return true;
  return is_engine_op(n, "QAdd") && n.attrs.get_string("requant", "fixed") == "float";
}

class FuseQconvQaddPass : public Pass {
 public:
  bool backend() const override { return true; }
  std::string name() const override { return "fuse-qconv-qadd"; }
  std::string description() const override {
    return "integer NhwcQConv -> float QAdd: the add runs on each block of conv output while it "
           "is in cache (same integers; runs after lower-onednn)";
  }
  int fuse_level() const override { return 2; }
  bool run(Graph& g, const PassContext& ctx) const override {
    const std::optional<ShapeInfo> shapes = ShapeInfo::infer(g, ctx.registry);
    if (!shapes) return false;
    const ShapeInfo& s = *shapes;
    return rewrite_nodes(g, [&](GraphIndex& idx, int i) {
      const Node& add = g.nodes[size_t(i)];
      if (!float_add(add) || add.inputs.size() < 7 || add.outputs.empty()) return false;
      for (int side = 0; side < 2; ++side) {
        const size_t a = side == 0 ? 0 : 3, b = side == 0 ? 3 : 0;
        const int y = add.inputs[a];
        const int ci = idx.producer(y);
        if (ci < 0 || !idx.only_read_by(y, i) || add.inputs[b] == y) continue;
        const Node& conv = g.nodes[size_t(ci)];
        if (!is_engine_op(conv, "NhwcQConv") || has_input(conv, 9) || conv.inputs.size() < 8 ||
            conv.attrs.get_int("group", 1) != 1)
          continue;
        const int out = add.outputs[0], other = add.inputs[b];
        if (!s.same_shape(y, other) || !s.same_shape(y, out)) continue;  // shapes and types
        // The add reads the conv output with the conv's scale and zero point.
        const auto ys = scalar(g, conv, 6, false), yz = scalar(g, conv, 7, false);
        const auto as = scalar(g, add, a + 1, false), az = scalar(g, add, a + 2, true);
        const auto bs = scalar(g, add, b + 1, false), bz = scalar(g, add, b + 2, true);
        const auto os = scalar(g, add, 6, false), oz = scalar(g, add, 7, true);
        if (!ys || !yz || !as || !az || !bs || !bz || !os || !oz || *ys != *as || *yz != *az)
          continue;
        Node f = conv;
        f.inputs.resize(14, kNoValue);
        f.inputs[9] = other;
        f.inputs[10] = add.inputs[b + 1];
        f.inputs[11] = has_input(add, b + 2) ? add.inputs[b + 2] : kNoValue;
        f.inputs[12] = add.inputs[6];
        if (has_input(add, 7)) {
          f.inputs[13] = add.inputs[7];
        } else {
          Tensor zp(s.dtype(out), {});
          std::memset(zp.raw(), 0, 1);
          f.inputs[13] = add_constant(g, add.name + "_y_zero_point", std::move(zp));
        }
        if (add.attrs.has("out_min")) f.attrs.set("add_out_min", add.attrs.get_int("out_min"));
        if (add.attrs.has("out_max")) f.attrs.set("add_out_max", add.attrs.get_int("out_max"));
        f.outputs = {out};
        place_fused(g, idx, {ci, i}, std::move(f));
        return true;
      }
      return false;
    });
  }
};

}  // namespace

std::unique_ptr<Pass> make_fuse_qconv_qadd_pass() {
  return std::make_unique<FuseQconvQaddPass>();
}

}  // namespace engine
