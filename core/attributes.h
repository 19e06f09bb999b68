// Typed node attributes (converted from ONNX AttributeProto by the frontend).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <variant>
#include <vector>

#include "core/tensor.h"

namespace engine {

using AttrValue = std::variant<int64_t, float, std::string, std::vector<int64_t>,
                               std::vector<float>, std::vector<std::string>, Tensor>;

class Attributes {
 public:
  bool has(const std::string& name) const { return values_.count(name) != 0; }
  void set(const std::string& name, AttrValue v) { values_[name] = std::move(v); }
  void erase(const std::string& name) { values_.erase(name); }
  const std::map<std::string, AttrValue>& all() const { return values_; }

  // Getters with a default, and required getters that throw naming the attribute.
  int64_t get_int(const std::string& name, int64_t def) const;
  int64_t get_int(const std::string& name) const;
  float get_float(const std::string& name, float def) const;
  float get_float(const std::string& name) const;
  std::string get_string(const std::string& name, std::string def) const;
  std::string get_string(const std::string& name) const;
  std::vector<int64_t> get_ints(const std::string& name, std::vector<int64_t> def) const;
  std::vector<int64_t> get_ints(const std::string& name) const;
  std::vector<float> get_floats(const std::string& name, std::vector<float> def) const;
  std::vector<float> get_floats(const std::string& name) const;
  const Tensor& get_tensor(const std::string& name) const;

 private:
  template <class T>
  const T* find(const std::string& name) const;
  std::map<std::string, AttrValue> values_;
};

}  // namespace engine
