#include "engine/inspect.h"

#include <iomanip>
#include <set>
#include <sstream>

#include "ops/conv_geom.h"

namespace engine {

namespace {

std::string describe(const Graph& g, const Plan& p, int id) {
  if (id < 0) return "<none>";
  const ValueInfo& vi = p.info[size_t(id)];
  std::string s = g.value(id).name + " " + dims_str(vi.shape) + " " + dtype_name(vi.dtype);
  if (g.is_constant(id)) s += " (const)";
  return s;
}

int64_t node_flops(const Node& n, const Plan& p) {
  auto shape = [&](int i) -> const Dims& { return p.info[size_t(n.inputs[size_t(i)])].shape; };
  const Dims& out = p.info[size_t(n.outputs[0])].shape;
  const bool conv = n.op_type == "Conv" || n.op_type == "FusedConv" || n.op_type == "ConvInteger" ||
                    n.op_type == "NhwcConv";
  const bool qconv = n.op_type == "QConv" || n.op_type == "QLinearConv" || n.op_type == "NhwcQConv";
  if ((conv && n.inputs.size() >= 2) || (qconv && n.inputs.size() >= 4)) {
    const Dims& w = shape(qconv ? 3 : 1);  // [OC, IC/groups, k...]
    int64_t per_out = 1;
    for (size_t i = 1; i < w.size(); ++i) per_out *= w[i];
    return 2 * checked_numel(out) * per_out;
  }
  if (n.op_type == "NhwcStem" && n.inputs.size() >= 2) {  // the conv; the max pool adds no FLOPs
    const Dims& x = shape(0);
    const Dims& w = shape(1);  // [M, C, kh, kw]
    const ConvGeom c =
        conv_geometry(n, n.attrs.get_int("nchw", 0) ? x : Dims{x[0], x[3], x[1], x[2]}, w);
    return 2 * c.N * c.M * c.out_size() * w[1] * w[2] * w[3];
  }
  if (n.op_type == "NhwcMBConv" && n.inputs.size() >= 6) {  // expansion, depthwise, projection
    const Dims& x = shape(0);                               // [N,H,W,Cin]
    const int64_t cexp = shape(3)[0], cout = out[3], out_px = checked_numel(out) / cout;
    const int64_t expand = n.inputs[1] >= 0 ? 2 * checked_numel(x) * cexp : 0;
    return expand + 2 * out_px * cexp * 9 + 2 * out_px * cexp * cout;
  }
  if (n.op_type == "ConvTranspose" && n.inputs.size() >= 2) {
    const Dims& x = shape(0);
    const Dims& w = shape(1);  // [IC, OC/groups, k...]
    int64_t per_in = 1;
    for (size_t i = 1; i < w.size(); ++i) per_in *= w[i];
    return 2 * checked_numel(x) * per_in;
  }
  const bool gemm = n.op_type == "Gemm" || n.op_type == "FusedGemm" || n.op_type == "QGemm" ||
                    n.op_type == "DnnlGemm";
  if ((gemm || n.op_type == "MatMul" || n.op_type == "QLinearMatMul" ||
       n.op_type == "MatMulInteger") &&
      n.inputs.size() >= 2) {
    const Dims& a = shape(0);
    int64_t k = a.empty() ? 1 : a.back();
    if (gemm && n.attrs.get_int("transA", 0) && a.size() == 2) k = a[0];
    return 2 * checked_numel(out) * k;
  }
  return 0;
}

}  // namespace

ModelReport inspect_model(const Model& m, int64_t batch) {
  const Graph& g = m.graph();
  auto plan = m.plan(m.concrete_input_shapes(batch));
  ModelReport r;
  r.batch = batch;
  std::set<int> steps(plan->steps.begin(), plan->steps.end()), unused;
  for (size_t st = 0; st < plan->steps.size(); ++st)
    if (plan->unused[st]) unused.insert(plan->steps[st]);
  std::set<int> counted;
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    const Node& n = g.nodes[i];
    NodeReport nr;
    nr.name = n.name;
    nr.op_type = n.op_type;
    nr.folded = !steps.count(int(i));
    nr.unused = unused.count(int(i)) > 0;
    for (int v : n.inputs) {
      nr.inputs.push_back(describe(g, *plan, v));
      if (g.is_constant(v) && counted.insert(v).second) {
        r.parameters += g.value(v).constant->numel();
        r.parameter_bytes += int64_t(g.value(v).constant->nbytes());
      }
    }
    for (int v : n.outputs) nr.outputs.push_back(describe(g, *plan, v));
    if (!nr.folded && !nr.unused) nr.flops = node_flops(n, *plan);
    r.flops += nr.flops;
    r.nodes.push_back(std::move(nr));
  }
  const std::vector<int> producer = g.producers();
  for (const Node& n : g.nodes) {
    if (n.domain.empty() && n.op_type == "QuantizeLinear") ++r.quantize_nodes;
    if (n.domain.empty() && n.op_type == "DequantizeLinear") {
      ++r.dequantize_nodes;
      continue;
    }
    for (int v : n.inputs) {
      const int p = v >= 0 ? producer[size_t(v)] : -1;
      if (p >= 0 && g.nodes[size_t(p)].domain.empty() &&
          g.nodes[size_t(p)].op_type == "DequantizeLinear") {
        r.float_after_dequantize.push_back(n.label());
        break;
      }
    }
  }
  r.arena_bytes = plan->memory.arena_bytes;
  r.unplanned_bytes = plan->memory.sum_bytes;
  return r;
}

static std::string human_bytes(double b) {
  const char* units[] = {"B", "KiB", "MiB", "GiB"};
  int u = 0;
  while (b >= 1024 && u < 3) {
    b /= 1024;
    ++u;
  }
  std::ostringstream os;
  os << std::fixed << std::setprecision(u ? 2 : 0) << b << " " << units[u];
  return os.str();
}

std::string format_report(const Model& m, const ModelReport& r) {
  std::ostringstream os;
  const ModelInfo& info = m.info();
  os << "model: IR " << info.ir_version << ", opset " << info.opset << ", producer '"
     << info.producer << "', " << human_bytes(double(info.file_bytes)) << "\n";
  for (const IoInfo& i : m.inputs())
    os << "input  " << i.name << " " << dims_str(i.shape) << " " << dtype_name(i.dtype) << "\n";
  for (const IoInfo& o : m.outputs())
    os << "output " << o.name << " " << dims_str(o.shape) << " " << dtype_name(o.dtype) << "\n";
  os << "\nnodes (shapes at batch " << r.batch << "):\n";
  for (size_t i = 0; i < r.nodes.size(); ++i) {
    const NodeReport& n = r.nodes[i];
    os << std::setw(4) << i << "  " << n.op_type << " '" << n.name << "'";
    if (n.folded) os << "  [folded at plan time]";
    if (n.unused) os << "  [not run: only shapes of its outputs are read]";
    if (n.flops)
      os << "  " << std::fixed << std::setprecision(2) << double(n.flops) / 1e6 << " MFLOP";
    os << "\n";
    for (const auto& s : n.inputs) os << "        in  " << s << "\n";
    for (const auto& s : n.outputs) os << "        out " << s << "\n";
  }
  os << "\nnodes: " << r.nodes.size() << "\n";
  os << "parameters: " << r.parameters << " (" << human_bytes(double(r.parameter_bytes)) << ")\n";
  os << "FLOPs (or integer ops) of Conv/Gemm/MatMul, batch " << r.batch << "): " << std::fixed
     << std::setprecision(3) << double(r.flops) / 1e9 << " G\n";
  if (m.is_quantized()) {
    os << "quantized graph: " << r.quantize_nodes << " QuantizeLinear, " << r.dequantize_nodes
       << " DequantizeLinear";
    if (!r.float_after_dequantize.empty()) {
      os << "; in float after DequantizeLinear:";
      for (const std::string& s : r.float_after_dequantize) os << " " << s;
    }
    os << "\n";
  }
  os << "planned activation memory (batch " << r.batch
     << "): " << human_bytes(double(r.arena_bytes)) << " peak, "
     << human_bytes(double(r.unplanned_bytes)) << " without buffer reuse\n";
  return os.str();
}

}  // namespace engine
