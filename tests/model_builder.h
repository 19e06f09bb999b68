// Builds small ONNX models in memory for loader, executor and error-path tests.
#pragma once

#include <onnx/onnx_pb.h>

#include <random>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "frontend/tensor_proto.h"

namespace engine::test {

// Float32 tensor of N(0, scale^2) values, seeded.
inline Tensor random_tensor(Dims d, uint64_t seed, float scale = 1.0f) {
  Tensor t(DType::F32, d);
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> nd(0.0f, scale);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = nd(rng);
  return t;
}

class ModelBuilder {
 public:
  explicit ModelBuilder(int opset = 13, int64_t ir_version = 8) {
    m_.set_ir_version(ir_version);
    m_.set_producer_name("engine-tests");
    auto* o = m_.add_opset_import();
    o->set_domain("");
    o->set_version(opset);
    m_.mutable_graph()->set_name("g");
  }
  // dims < 0 become symbolic ("N").
  ModelBuilder& input(const std::string& name, const Dims& dims, int elem = 1) {
    add_vi(m_.mutable_graph()->add_input(), name, dims, elem);
    return *this;
  }
  ModelBuilder& output(const std::string& name, const Dims& dims = {}, int elem = 1) {
    add_vi(m_.mutable_graph()->add_output(), name, dims, elem);
    return *this;
  }
  ModelBuilder& init(const std::string& name, const Tensor& t) {
    tensor_to_proto(t, name, m_.mutable_graph()->add_initializer());
    return *this;
  }
  onnx::NodeProto& node(const std::string& op, const std::vector<std::string>& in,
                        const std::vector<std::string>& out, const std::string& name = "") {
    auto* n = m_.mutable_graph()->add_node();
    n->set_op_type(op);
    n->set_name(name.empty() ? op + std::to_string(m_.graph().node_size()) : name);
    for (auto& s : in) n->add_input(s);
    for (auto& s : out) n->add_output(s);
    return *n;
  }
  static void attr_int(onnx::NodeProto& n, const std::string& name, int64_t v) {
    auto* a = n.add_attribute();
    a->set_name(name);
    a->set_type(onnx::AttributeProto::INT);
    a->set_i(v);
  }
  static void attr_ints(onnx::NodeProto& n, const std::string& name,
                        const std::vector<int64_t>& v) {
    auto* a = n.add_attribute();
    a->set_name(name);
    a->set_type(onnx::AttributeProto::INTS);
    for (auto x : v) a->add_ints(x);
  }
  static void attr_float(onnx::NodeProto& n, const std::string& name, float v) {
    auto* a = n.add_attribute();
    a->set_name(name);
    a->set_type(onnx::AttributeProto::FLOAT);
    a->set_f(v);
  }
  static void attr_string(onnx::NodeProto& n, const std::string& name, const std::string& v) {
    auto* a = n.add_attribute();
    a->set_name(name);
    a->set_type(onnx::AttributeProto::STRING);
    a->set_s(v);
  }
  onnx::ModelProto& proto() { return m_; }
  std::string bytes() const { return m_.SerializeAsString(); }

 private:
  static void add_vi(onnx::ValueInfoProto* vi, const std::string& name, const Dims& dims,
                     int elem) {
    vi->set_name(name);
    auto* tt = vi->mutable_type()->mutable_tensor_type();
    tt->set_elem_type(elem);
    auto* sh = tt->mutable_shape();
    for (int64_t d : dims) {
      auto* dim = sh->add_dim();
      if (d < 0)
        dim->set_dim_param("N");
      else
        dim->set_dim_value(d);
    }
  }
  onnx::ModelProto m_;
};

}  // namespace engine::test
