#include "frontend/onnx_loader.h"

#include <google/protobuf/io/coded_stream.h>
#include <onnx/onnx_pb.h>

#include <algorithm>
#include <climits>
#include <filesystem>
#include <map>

#include "core/pass.h"
#include "frontend/tensor_proto.h"

namespace engine {

namespace {

constexpr int kMinOpset = 1;
constexpr int kMaxOpset = 18;
constexpr int64_t kMinIr = 3;
constexpr int64_t kMaxIr = 9;

AttrValue convert_attribute(const onnx::AttributeProto& a, const TensorProtoOptions& topt,
                            const std::string& where, size_t max_elements) {
  using A = onnx::AttributeProto;
  size_t elements = size_t(a.ints_size()) + size_t(a.floats_size()) + a.s().size();
  for (const auto& s : a.strings()) elements += s.size() + 1;
  ENGINE_CHECK(elements <= max_elements, where, ": attribute '", a.name(), "' holds ", elements,
               " elements or bytes, more than the limit of ", max_elements);
  ENGINE_CHECK(a.ref_attr_name().empty(), where, ": attribute '", a.name(),
               "' refers to a function attribute, which is not supported");
  switch (a.type()) {
    case A::INT:
      return int64_t(a.i());
    case A::FLOAT:
      return a.f();
    case A::STRING:
      return a.s();
    case A::INTS:
      return std::vector<int64_t>(a.ints().begin(), a.ints().end());
    case A::FLOATS:
      return std::vector<float>(a.floats().begin(), a.floats().end());
    case A::STRINGS:
      return std::vector<std::string>(a.strings().begin(), a.strings().end());
    case A::TENSOR: {
      TensorProtoOptions o = topt;
      o.what = where + " attribute '" + a.name() + "'";
      return tensor_from_proto(a.t(), o);
    }
    case A::GRAPH:
    case A::GRAPHS:
      fail(where, ": attribute '", a.name(),
           "' holds a subgraph; control flow (If/Loop/Scan) is not supported");
    default:
      fail(where, ": attribute '", a.name(), "' has unsupported type ", int(a.type()));
  }
}

void read_value_info(const onnx::ValueInfoProto& vi, Value& v, const char* kind) {
  if (!vi.has_type()) return;
  ENGINE_CHECK(vi.type().has_tensor_type(), kind, " '", vi.name(),
               "' is not a tensor (sequences and maps are not supported)");
  const auto& tt = vi.type().tensor_type();
  const DType dt = dtype_from_onnx(tt.elem_type());
  ENGINE_CHECK(dt != DType::Undefined && dt != DType::String, kind, " '", vi.name(),
               "' has unsupported element type ", tt.elem_type());
  v.dtype = dt;
  if (!tt.has_shape()) return;
  v.has_shape = true;
  v.shape.clear();
  for (const auto& d : tt.shape().dim()) {
    if (d.has_dim_value()) {
      ENGINE_CHECK(d.dim_value() >= 0, kind, " '", vi.name(), "' has negative dimension ",
                   d.dim_value());
      v.shape.push_back(d.dim_value());
    } else {
      v.shape.push_back(-1);  // symbolic (dim_param) or unknown
    }
  }
}

}  // namespace

namespace {

Graph load_unchecked(const std::string& bytes, const OpRegistry& reg, const LoadOptions& opt,
                     ModelInfo* info, const std::string& base_dir, const std::string& what) {
  onnx::ModelProto model;
  {
    google::protobuf::io::CodedInputStream in(reinterpret_cast<const uint8_t*>(bytes.data()),
                                              int(std::min<size_t>(bytes.size(), INT_MAX)));
    in.SetTotalBytesLimit(INT_MAX);
    in.SetRecursionLimit(64);
    ENGINE_CHECK(bytes.size() < size_t(INT_MAX) && model.ParseFromCodedStream(&in) &&
                     in.ConsumedEntireMessage(),
                 what,
                 ": not a valid ONNX model (protobuf parsing failed: truncated, corrupt, or "
                 "messages nested deeper than 64 levels)");
  }
  ENGINE_CHECK(model.has_graph(), what, ": the model has no graph");
  ENGINE_CHECK(model.ir_version() >= kMinIr && model.ir_version() <= kMaxIr, what,
               ": ONNX IR version ", model.ir_version(), " is not supported (supported: ", kMinIr,
               "..", kMaxIr, ")");
  Graph g;
  std::map<std::string, int> opsets;
  for (const auto& o : model.opset_import()) {
    std::string d = o.domain() == "ai.onnx" ? "" : o.domain();
    opsets[d] = int(o.version());
  }
  // A model without the default domain can only use other domains' ops (checked per node).
  g.opset = opsets.count("") ? opsets[""] : 0;
  ENGINE_CHECK(!opsets.count("") || (g.opset >= kMinOpset && g.opset <= kMaxOpset), what,
               ": opset ", g.opset, " is not supported (supported: ", kMinOpset, "..", kMaxOpset,
               ")");
  if (info) {
    info->ir_version = model.ir_version();
    info->opset = g.opset;
    info->producer = model.producer_name() + " " + model.producer_version();
    info->file_bytes = bytes.size();
  }

  const onnx::GraphProto& gp = model.graph();
  ENGINE_CHECK(size_t(gp.node_size()) <= opt.max_nodes, what, ": ", gp.node_size(),
               " nodes exceed the limit of ", opt.max_nodes);
  ENGINE_CHECK(gp.sparse_initializer_size() == 0, what, ": sparse initializers are not supported");
  // Unsupported operators first, all of them in one message, before anything else is read.
  {
    std::map<std::string, std::pair<int, std::string>> unsupported;  // op -> count, first node
    int i = 0;
    for (const auto& np : gp.node()) {
      const std::string domain = np.domain() == "ai.onnx" ? "" : np.domain();
      if (!reg.find(domain, np.op_type())) {
        auto& e = unsupported[(domain.empty() ? "" : domain + ".") + np.op_type()];
        if (e.first++ == 0)
          e.second = np.name().empty() ? np.op_type() + "_" + std::to_string(i) : np.name();
      }
      ++i;
    }
    if (!unsupported.empty()) {
      std::string list;
      for (auto& [op, e] : unsupported)
        list += str_cat("\n  ", op, " (", e.first, " node", e.first > 1 ? "s" : "", ", first '",
                        e.second, "')");
      fail(what, ": the model uses ", unsupported.size(), " unsupported operator",
           unsupported.size() > 1 ? "s" : "", ":", list);
    }
  }
  TensorProtoOptions topt;
  topt.base_dir = base_dir;
  topt.upcast_f16 = opt.upcast_f16_initializers;
  for (const auto& init : gp.initializer()) {
    ENGINE_CHECK(!init.name().empty(), what, ": an initializer has no name");
    ENGINE_CHECK(g.find_value(init.name()) < 0, what, ": initializer '", init.name(),
                 "' is defined twice");
    topt.what = what + ": initializer '" + init.name() + "'";
    Tensor t = tensor_from_proto(init, topt);
    Value& v = g.value(g.add_value(init.name()));
    v.dtype = t.dtype();
    v.shape = t.shape();
    v.has_shape = true;
    v.constant = std::move(t);
  }
  for (const auto& in : gp.input()) {
    ENGINE_CHECK(!in.name().empty(), what, ": a graph input has no name");
    const int id = g.add_value(in.name());
    if (g.is_constant(id)) continue;  // an initializer with a default value: a constant
    for (int other : g.inputs)
      ENGINE_CHECK(other != id, what, ": graph input '", in.name(), "' is listed twice");
    read_value_info(in, g.value(id), "graph input");
    ENGINE_CHECK(g.value(id).dtype != DType::Undefined, what, ": graph input '", in.name(),
                 "' has no element type");
    g.inputs.push_back(id);
  }
  int unnamed = 0;
  for (const auto& np : gp.node()) {
    Node n;
    n.op_type = np.op_type();
    n.domain = np.domain() == "ai.onnx" ? "" : np.domain();
    n.name = np.name().empty() ? n.op_type + "_" + std::to_string(unnamed++) : np.name();
    ENGINE_CHECK(opsets.count(n.domain), what, ": node ", n.label(), " uses domain '", n.domain,
                 "' which the model does not import");
    n.opset = opsets[n.domain];
    const std::string where = what + ": node " + n.label();
    for (const auto& in : np.input()) n.inputs.push_back(in.empty() ? kNoValue : g.add_value(in));
    // Trailing omitted outputs ("") are not outputs at all (e.g. BatchNormalization's stats).
    int num_outputs = np.output_size();
    while (num_outputs > 1 && np.output(num_outputs - 1).empty()) --num_outputs;
    for (int o = 0; o < num_outputs; ++o) {
      std::string name = np.output(o);
      if (name.empty()) name = n.name + ":unused_output_" + std::to_string(o);
      n.outputs.push_back(g.add_value(name));
    }
    ENGINE_CHECK(!n.outputs.empty(), where, ": the node has no outputs");
    const OpSchema& s = *reg.find(n.domain, n.op_type);  // unsupported ops were rejected above
    for (const auto& a : np.attribute()) {
      ENGINE_CHECK(!n.attrs.has(a.name()), where, ": attribute '", a.name(), "' is given twice");
      n.attrs.set(a.name(), convert_attribute(a, topt, where, opt.max_attribute_elements));
    }
    check_node(s, n, where);
    g.nodes.push_back(std::move(n));
  }
  for (const auto& out : gp.output()) {
    const int id = g.find_value(out.name());
    ENGINE_CHECK(id >= 0, what, ": graph output '", out.name(), "' is not produced by any node");
    Value& v = g.value(id);
    if (!v.constant) {
      Value declared;
      read_value_info(out, declared, "graph output");
      if (v.dtype == DType::Undefined) v.dtype = declared.dtype;
      if (!v.has_shape) {
        v.shape = declared.shape;
        v.has_shape = declared.has_shape;
      }
    }
    g.outputs.push_back(id);
  }
  ENGINE_CHECK(!g.outputs.empty(), what, ": the graph has no outputs");
  try {
    topological_sort(g);
  } catch (const Error& e) {
    fail(what, ": ", e.what());
  }
  check_graph_depth(g, opt.max_depth, what);
  return g;
}

}  // namespace

void check_node(const OpSchema& s, const Node& n, const std::string& where) {
  const int ni = int(n.inputs.size()), no = int(n.outputs.size());
  ENGINE_CHECK(ni >= s.min_inputs && ni <= s.max_inputs, where, ": has ", ni, " inputs, expected ",
               s.min_inputs, "..", s.max_inputs);
  ENGINE_CHECK(no >= s.min_outputs && no <= s.max_outputs, where, ": has ", no,
               " outputs, expected ", s.min_outputs, "..", s.max_outputs);
  for (int i = 0; i < s.min_inputs; ++i)
    ENGINE_CHECK(n.inputs[size_t(i)] >= 0, where, ": required input ", i, " is empty");
  if (s.validate) {
    try {
      s.validate(n);
    } catch (const Error& e) {
      fail(where, ": ", e.what());
    }
  }
}

void check_graph_depth(const Graph& g, size_t max_depth, const std::string& what) {
  std::vector<size_t> depth(g.values.size(), 0);
  for (const Node& n : g.nodes) {
    size_t d = 0;
    for (int in : n.inputs)
      if (in >= 0) d = std::max(d, depth[size_t(in)]);
    ENGINE_CHECK(d + 1 <= max_depth, what, ": node ", n.label(), " is ", d + 1,
                 " nodes deep, more than the limit of ", max_depth);
    for (int out : n.outputs) depth[size_t(out)] = d + 1;
  }
}

Graph load_onnx_bytes(const std::string& bytes, const OpRegistry& reg, const LoadOptions& opt,
                      ModelInfo* info, const std::string& base_dir, const std::string& what) {
  try {
    return load_unchecked(bytes, reg, opt, info, base_dir, what);
  } catch (const Error& e) {  // every message names the file
    const std::string m = e.what();
    if (m.rfind(what + ":", 0) == 0) throw;
    fail(what, ": ", m);
  }
}

Graph load_onnx(const std::string& path, const OpRegistry& reg, const LoadOptions& opt,
                ModelInfo* info) {
  const std::string bytes = read_file_bytes(path, opt.max_file_bytes);
  std::string dir = std::filesystem::path(path).parent_path().string();
  if (dir.empty()) dir = ".";
  return load_onnx_bytes(bytes, reg, opt, info, dir, path);
}

}  // namespace engine
