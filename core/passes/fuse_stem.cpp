// fuse-stem: a network's first convolution (float32, at most 4 input channels: RGB images), as
// lowered by lower-onednn, becomes one NhwcStem (backends/x86/nhwc_stem.cpp) together with
// - the Transpose NCHW -> NHWC that feeds it (NhwcStem then reads the NCHW tensor itself), and
// - the NhwcMaxPool that reads its output (the resnets' 3x3 stride-2 pool: the conv output never
//   goes to memory).
//
// Conditions: NhwcConv with a constant [M, C, kh, kw] weight, C <= 4, kh <= 16, one group, no
// dilation, no Sum, activation none / Relu / Clip; the Transpose (perm 0,2,3,1) and the conv
// output are read only by the next node and are not graph outputs; the pool has no dilation, no
// ceil_mode, explicit pads each below its kernel side, kernel height <= 16. At least one of the
// two must fuse: a lone conv stays on oneDNN. The registered kernel must be available (AVX-512F,
// ENGINE_ISA not lowered). Runs after lower-onednn, at fusion level "all".
#include "core/pass.h"
#include "core/passes/fusion_util.h"

namespace engine {
namespace {

using namespace fusion;

constexpr int64_t kMaxChannels = 4, kMaxKernel = 16;

bool stem_conv(const Graph& g, const Node& n) {
  if (!is_engine_op(n, "NhwcConv") || n.outputs.size() != 1 || n.inputs.size() < 2 ||
      has_input(n, 3) || !bounds_of(n))
    return false;
  const Tensor* w = f32_constant(g, n.inputs[1]);
  if (!w || w->rank() != 4 || w->dim(1) < 1 || w->dim(1) > kMaxChannels || w->dim(2) > kMaxKernel)
    return false;
  if (has_input(n, 2) && !f32_constant(g, n.inputs[2])) return false;
  return n.attrs.get_int("group", 1) == 1 && all_equal(n.attrs.get_ints("dilations", {1, 1}), 1);
}

bool is_nchw_to_nhwc(const Node& n) {
  return is_op(n, "Transpose") && n.inputs.size() == 1 && n.outputs.size() == 1 &&
         n.attrs.get_ints("perm", {}) == std::vector<int64_t>{0, 2, 3, 1};
}

bool fusable_pool(const Node& n) {
  if (!is_engine_op(n, "NhwcMaxPool") || n.outputs.size() != 1 ||
      n.attrs.get_int("ceil_mode", 0) != 0 ||
      !all_equal(n.attrs.get_ints("dilations", {1, 1}), 1) ||
      n.attrs.get_string("auto_pad", "NOTSET") != "NOTSET")
    return false;
  const std::vector<int64_t> k = n.attrs.get_ints("kernel_shape", {});
  const std::vector<int64_t> pads = n.attrs.get_ints("pads", {0, 0, 0, 0});
  if (k.size() != 2 || pads.size() != 4 || k[0] > kMaxKernel) return false;
  for (size_t i = 0; i < 4; ++i)
    if (pads[i] < 0 || pads[i] >= k[i % 2]) return false;
  return true;
}

class FuseStemPass : public Pass {
 public:
  bool backend() const override { return true; }
  std::string name() const override { return "fuse-stem"; }
  std::string description() const override {
    return "float NhwcConv on <= 4 input channels (a network's first conv) + the Transpose before "
           "it and/or the NhwcMaxPool after it -> one NhwcStem (runs after lower-onednn)";
  }
  int fuse_level() const override { return 2; }
  bool run(Graph& g, const PassContext& ctx) const override {
    const OpSchema* op = ctx.registry.find("engine", "NhwcStem");
    if (!op || (op->available && !op->available())) return false;
    return rewrite_nodes(g, [&](GraphIndex& idx, int ci) {
      const Node& c = g.nodes[size_t(ci)];
      if (!stem_conv(g, c)) return false;
      const int x = c.inputs[0];
      int ti = idx.producer(x);
      if (ti >= 0 && !(is_nchw_to_nhwc(g.nodes[size_t(ti)]) && idx.only_read_by(x, ci))) ti = -1;
      const int y = c.outputs[0];
      int qi = -1;
      if (idx.uses(y) == 1 && !idx.is_graph_output(y)) {
        qi = idx.consumers(y)[0];
        if (!fusable_pool(g.nodes[size_t(qi)])) qi = -1;
      }
      if (ti < 0 && qi < 0) return false;
      Node f;
      f.name = c.name;
      f.op_type = "NhwcStem";
      f.domain = kEngineDomain;
      f.opset = 1;
      f.inputs = {ti >= 0 ? g.nodes[size_t(ti)].inputs[0] : x, c.inputs[1],
                  has_input(c, 2) ? c.inputs[2] : kNoValue};
      f.outputs = {qi >= 0 ? g.nodes[size_t(qi)].outputs[0] : y};
      for (const char* a : {"kernel_shape", "strides", "pads", "dilations"})
        if (c.attrs.has(a)) f.attrs.set(a, c.attrs.get_ints(a));
      if (c.attrs.has("auto_pad")) f.attrs.set("auto_pad", c.attrs.get_string("auto_pad", ""));
      set_bounds(f, "conv", *bounds_of(c));
      f.attrs.set("nchw", int64_t(ti >= 0 ? 1 : 0));
      if (qi >= 0) {
        const Node& q = g.nodes[size_t(qi)];
        for (const char* a : {"kernel_shape", "strides", "pads"})
          if (q.attrs.has(a)) f.attrs.set(std::string("pool_") + a, q.attrs.get_ints(a));
      }
      std::vector<int> pattern = {ci};
      if (ti >= 0) pattern.insert(pattern.begin(), ti);
      if (qi >= 0) pattern.push_back(qi);
      place_fused(g, idx, pattern, std::move(f));
      return true;
    });
  }
};

}  // namespace

std::unique_ptr<Pass> make_fuse_stem_pass() {
  return std::make_unique<FuseStemPass>();
}

}  // namespace engine
