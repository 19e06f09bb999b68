// Writes the hostile-model corpus of tests/hostile/ (small ONNX files that must each give a clean
// error, exit code 1, and no sanitizer report):  make_hostile_models OUT_DIR
// The files are checked in; rerun this after changing it.
#include <cstdint>
#include <fstream>
#include <functional>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "model_builder.h"

using engine::Dims;
using engine::DType;
using engine::Tensor;
using engine::test::ModelBuilder;

namespace {

// x[1,4] -> Relu -> y: the base every case breaks in one way.
ModelBuilder base() {
  ModelBuilder m;
  m.input("x", {1, 4});
  m.output("y", {1, 4});
  return m;
}

onnx::TensorProto* raw_initializer(ModelBuilder& m, const std::string& name,
                                   const std::vector<int64_t>& dims, int elem,
                                   const std::string& raw) {
  auto* t = m.proto().mutable_graph()->add_initializer();
  t->set_name(name);
  t->set_data_type(elem);
  for (int64_t d : dims) t->add_dims(d);
  t->set_raw_data(raw);
  return t;
}

std::string numbered(const char* prefix, int i) {
  std::ostringstream o;
  o << prefix << i;
  return o.str();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: make_hostile_models OUT_DIR\n";
    return 2;
  }
  const std::string dir = argv[1];
  std::vector<std::pair<std::string, std::function<ModelBuilder()>>> cases = {
      {"cycle",
       [] {
         ModelBuilder m = base();
         m.node("Add", {"x", "b"}, {"a"});
         m.node("Relu", {"a"}, {"b"});
         m.node("Identity", {"b"}, {"y"});
         return m;
       }},
      {"dangling_input",
       [] {
         ModelBuilder m = base();
         m.node("Add", {"x", "nobody_makes_this"}, {"y"});
         return m;
       }},
      {"duplicate_output_names",
       [] {
         ModelBuilder m = base();
         m.node("Relu", {"x"}, {"y"});
         m.node("Sigmoid", {"x"}, {"y"});
         return m;
       }},
      {"duplicate_initializer_input",
       [] {
         ModelBuilder m = base();
         m.init("x", Tensor::from_vector<float>({1, 4}, {1, 2, 3, 4}));
         m.init("x", Tensor::from_vector<float>({1, 4}, {5, 6, 7, 8}));
         m.node("Relu", {"x"}, {"y"});
         return m;
       }},
      {"zero_dim_weight",
       [] {  // conv weights [4, 0, 3, 3] for a 4-channel input
         ModelBuilder m;
         m.input("x", {1, 4, 8, 8});
         m.output("y");
         raw_initializer(m, "w", {4, 0, 3, 3}, 1, "");
         m.node("Conv", {"x", "w"}, {"y"});
         return m;
       }},
      {"negative_dim_initializer",
       [] {
         ModelBuilder m = base();
         raw_initializer(m, "w", {-4}, 1, std::string(16, '\0'));
         m.node("Add", {"x", "w"}, {"y"});
         return m;
       }},
      {"dims_overflow_int64",
       [] {
         ModelBuilder m = base();
         raw_initializer(m, "w", {int64_t(1) << 40, int64_t(1) << 40}, 1, std::string(16, '\0'));
         m.node("Add", {"x", "w"}, {"y"});
         return m;
       }},
      {"data_shorter_than_shape",
       [] {
         ModelBuilder m = base();
         raw_initializer(m, "w", {1000}, 1, std::string(16, '\0'));  // 4 floats for 1000
         m.node("Add", {"x", "w"}, {"y"});
         return m;
       }},
      {"huge_tensor_tiny_file",
       [] {  // 2^40 floats declared, no data
         ModelBuilder m = base();
         raw_initializer(m, "w", {int64_t(1) << 20, int64_t(1) << 20}, 1, "");
         m.node("Add", {"x", "w"}, {"y"});
         return m;
       }},
      {"huge_input_shape",
       [] {  // runs on --random: 2^50 elements must not be allocated
         ModelBuilder m;
         m.input("x", {int64_t(1) << 25, int64_t(1) << 25});
         m.output("y");
         m.node("Relu", {"x"}, {"y"});
         return m;
       }},
      {"external_data_escapes",
       [] {
         ModelBuilder m = base();
         auto* t = raw_initializer(m, "w", {1, 4}, 1, "");
         t->clear_raw_data();
         t->set_data_location(onnx::TensorProto::EXTERNAL);
         auto* e = t->add_external_data();
         e->set_key("location");
         e->set_value("../../../../etc/passwd");
         m.node("Add", {"x", "w"}, {"y"});
         return m;
       }},
      {"unknown_dtype",
       [] {
         ModelBuilder m;
         m.input("x", {1, 4}, 99);
         m.output("y");
         m.node("Relu", {"x"}, {"y"});
         return m;
       }},
      {"opset_99",
       [] {
         ModelBuilder m(99);
         m.input("x", {1, 4});
         m.output("y");
         m.node("Relu", {"x"}, {"y"});
         return m;
       }},
      {"unsupported_op",
       [] {
         ModelBuilder m = base();
         m.node("NoSuchOperator", {"x"}, {"y"});
         return m;
       }},
      {"deep_subgraphs",
       [] {  // If nodes nested 200 deep through then_branch / else_branch
         ModelBuilder m = base();
         m.init("c", Tensor::from_vector<uint8_t>({}, {1}));
         onnx::GraphProto inner;
         inner.set_name("leaf");
         auto* out = inner.add_output();
         out->set_name("x");
         for (int level = 0; level < 200; ++level) {
           onnx::GraphProto g;
           g.set_name(numbered("level", level));
           auto* n = g.add_node();
           n->set_op_type("If");
           n->add_input("c");
           n->add_output(numbered("o", level));
           for (const char* branch : {"then_branch", "else_branch"}) {  // deep, and a leaf
             auto* a = n->add_attribute();
             a->set_name(branch);
             a->set_type(onnx::AttributeProto::GRAPH);
             *a->mutable_g() = branch[0] == 't' ? inner : onnx::GraphProto();
           }
           g.add_output()->set_name(numbered("o", level));
           inner = g;
         }
         auto* n = m.proto().mutable_graph()->add_node();
         n->set_op_type("If");
         n->add_input("c");
         n->add_output("y");
         for (const char* branch : {"then_branch", "else_branch"}) {
           auto* a = n->add_attribute();
           a->set_name(branch);
           a->set_type(onnx::AttributeProto::GRAPH);
           *a->mutable_g() = inner;
         }
         return m;
       }},
      {"truncated_file",
       [] {
         ModelBuilder m = base();
         m.node("Relu", {"x"}, {"y"});
         return m;  // written cut in half below
       }},
  };
  for (auto& [name, make] : cases) {
    std::string bytes = make().bytes();
    if (name == "truncated_file") bytes.resize(bytes.size() / 2);
    const std::string path = dir + "/" + name + ".onnx";
    std::ofstream(path, std::ios::binary) << bytes;
    std::cout << path << " " << bytes.size() << " bytes\n";
  }
  return 0;
}
