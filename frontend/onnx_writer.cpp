#include "frontend/onnx_writer.h"

#include <map>
#include <set>

#include <onnx/onnx_pb.h>
#include "core/error.h"
#include "frontend/tensor_proto.h"

namespace engine {
namespace {

void set_attribute(const std::string& name, const AttrValue& v, onnx::AttributeProto* a) {
  using A = onnx::AttributeProto;
  a->set_name(name);
  std::visit(
      [&](const auto& x) {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, int64_t>) {
          a->set_type(A::INT);
          a->set_i(x);
        } else if constexpr (std::is_same_v<T, float>) {
          a->set_type(A::FLOAT);
          a->set_f(x);
        } else if constexpr (std::is_same_v<T, std::string>) {
          a->set_type(A::STRING);
          a->set_s(x);
        } else if constexpr (std::is_same_v<T, std::vector<int64_t>>) {
          a->set_type(A::INTS);
          for (int64_t i : x) a->add_ints(i);
        } else if constexpr (std::is_same_v<T, std::vector<float>>) {
          a->set_type(A::FLOATS);
          for (float f : x) a->add_floats(f);
        } else if constexpr (std::is_same_v<T, std::vector<std::string>>) {
          a->set_type(A::STRINGS);
          for (const auto& s : x) a->add_strings(s);
        } else {
          a->set_type(A::TENSOR);
          tensor_to_proto(x, "", a->mutable_t());
        }
      },
      v);
}

void set_value_info(const Value& v, onnx::ValueInfoProto* vi) {
  vi->set_name(v.name);
  auto* tt = vi->mutable_type()->mutable_tensor_type();
  tt->set_elem_type(int(v.dtype));
  if (!v.has_shape) return;
  auto* sh = tt->mutable_shape();
  for (size_t i = 0; i < v.shape.size(); ++i) {
    auto* d = sh->add_dim();
    if (v.shape[i] >= 0)
      d->set_dim_value(v.shape[i]);
    else
      d->set_dim_param(i == 0 ? "batch" : str_cat("d", i));
  }
}

}  // namespace

std::string save_onnx_bytes(const Graph& g, const SaveOptions& opt) {
  onnx::ModelProto m;
  m.set_ir_version(8);
  m.set_producer_name(opt.producer);
  if (!opt.doc.empty()) m.set_doc_string(opt.doc);
  std::map<std::string, int> opsets{{"", std::max(g.opset, 13)}};
  onnx::GraphProto* gp = m.mutable_graph();
  gp->set_name("engine");
  std::vector<int> uses(g.values.size(), 0);
  for (const Node& n : g.nodes)
    for (int v : n.inputs)
      if (v >= 0) uses[size_t(v)]++;
  for (int v : g.outputs) uses[size_t(v)]++;
  for (size_t i = 0; i < g.values.size(); ++i) {
    const Value& v = g.values[i];
    if (v.constant && uses[i]) tensor_to_proto(*v.constant, v.name, gp->add_initializer());
  }
  for (int v : g.inputs) set_value_info(g.value(v), gp->add_input());
  for (int v : g.outputs) set_value_info(g.value(v), gp->add_output());
  for (const Node& n : g.nodes) {
    onnx::NodeProto* np = gp->add_node();
    np->set_name(n.name);
    np->set_op_type(n.op_type);
    if (!n.domain.empty()) {
      np->set_domain(n.domain);
      opsets[n.domain] = std::max(opsets[n.domain], std::max(n.opset, 1));
    }
    for (int v : n.inputs) np->add_input(v >= 0 ? g.value(v).name : "");
    for (int v : n.outputs) np->add_output(v >= 0 ? g.value(v).name : "");
    for (const auto& [k, a] : n.attrs.all()) set_attribute(k, a, np->add_attribute());
  }
  for (const auto& [domain, version] : opsets) {
    auto* o = m.add_opset_import();
    o->set_domain(domain);
    o->set_version(version);
  }
  std::string bytes;
  ENGINE_CHECK(m.SerializeToString(&bytes), "cannot serialize the model (larger than 2 GiB?)");
  return bytes;
}

void save_onnx(const Graph& g, const std::string& path, const SaveOptions& opt) {
  write_file_atomic(path, save_onnx_bytes(g, opt));
}

}  // namespace engine
