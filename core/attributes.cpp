#include "core/attributes.h"

namespace engine {

template <class T>
const T* Attributes::find(const std::string& name) const {
  auto it = values_.find(name);
  if (it == values_.end()) return nullptr;
  const T* v = std::get_if<T>(&it->second);
  ENGINE_CHECK(v, "attribute '", name, "' has the wrong type");
  return v;
}

#define ENGINE_ATTR_GETTERS(T, getter, what)                                \
  T Attributes::getter(const std::string& name, T def) const {              \
    const T* v = find<T>(name);                                             \
    return v ? *v : def;                                                    \
  }                                                                         \
  T Attributes::getter(const std::string& name) const {                     \
    const T* v = find<T>(name);                                             \
    ENGINE_CHECK(v, "required " what " attribute '", name, "' is missing"); \
    return *v;                                                              \
  }

ENGINE_ATTR_GETTERS(int64_t, get_int, "integer")
ENGINE_ATTR_GETTERS(float, get_float, "float")
ENGINE_ATTR_GETTERS(std::string, get_string, "string")
ENGINE_ATTR_GETTERS(std::vector<int64_t>, get_ints, "integer list")
ENGINE_ATTR_GETTERS(std::vector<float>, get_floats, "float list")
#undef ENGINE_ATTR_GETTERS

const Tensor& Attributes::get_tensor(const std::string& name) const {
  const Tensor* v = find<Tensor>(name);
  ENGINE_CHECK(v, "required tensor attribute '", name, "' is missing");
  return *v;
}

}  // namespace engine
