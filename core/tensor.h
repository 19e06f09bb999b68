// Tensor: an element type, a shape and a (shared or borrowed) buffer, always dense row-major.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "core/error.h"

namespace engine {

using Dims = std::vector<int64_t>;

// Product of dims; throws on negative dims or int64 overflow (hostile shapes).
int64_t checked_numel(const Dims& dims);
std::string dims_str(const Dims& dims);

class Tensor {
 public:
  Tensor() = default;
  // Owned, zero-initialized, 64-byte aligned storage.
  Tensor(DType dtype, Dims shape);
  // Borrowed storage: the caller keeps `data` alive while the tensor is used.
  static Tensor view(DType dtype, Dims shape, void* data);
  // Borrowed storage kept alive by `owner` (e.g. a memory-mapped file).
  static Tensor view(DType dtype, Dims shape, void* data, std::shared_ptr<void> owner);

  template <class T>
  static Tensor from_vector(Dims shape, const std::vector<T>& v) {
    Tensor t(DTypeOf<T>::value, std::move(shape));
    ENGINE_CHECK(size_t(t.numel()) == v.size(), "from_vector: ", v.size(), " values for shape ",
                 dims_str(t.shape()));
    for (size_t i = 0; i < v.size(); ++i) t.data<T>()[i] = v[i];
    return t;
  }
  template <class T>
  static Tensor scalar(T v) {
    return from_vector<T>({}, {v});
  }

  bool defined() const { return dtype_ != DType::Undefined; }
  DType dtype() const { return dtype_; }
  const Dims& shape() const { return shape_; }
  int rank() const { return int(shape_.size()); }
  int64_t dim(int i) const { return shape_.at(size_t(i < 0 ? i + rank() : i)); }
  int64_t numel() const { return numel_; }
  size_t nbytes() const { return size_t(numel_) * dtype_size(dtype_); }

  void* raw() { return ptr_; }
  const void* raw() const { return ptr_; }
  template <class T>
  T* data() {
    check_type(DTypeOf<T>::value);
    return static_cast<T*>(ptr_);
  }
  template <class T>
  const T* data() const {
    check_type(DTypeOf<T>::value);
    return static_cast<const T*>(ptr_);
  }

  // Same storage, new shape with the same element count.
  Tensor reshaped(Dims shape) const;
  // Deep copy into owned storage.
  Tensor clone() const;
  // Reads element i converted to double / int64 (slow; for attributes, shape tensors, tests).
  double get_as_double(int64_t i) const;
  int64_t get_as_int(int64_t i) const;
  std::vector<int64_t> to_int_vector() const;
  std::vector<float> to_float_vector() const;

 private:
  void check_type(DType want) const {
    if (want != dtype_)
      fail("tensor holds ", dtype_name(dtype_), ", accessed as ", dtype_name(want));
  }
  DType dtype_ = DType::Undefined;
  Dims shape_;
  int64_t numel_ = 0;
  std::shared_ptr<void> storage_;
  void* ptr_ = nullptr;
};

}  // namespace engine
