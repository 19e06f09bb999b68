#include "core/tensor.h"

#include <cstdlib>
#include <cstring>
#include <limits>

namespace engine {

int64_t checked_numel(const Dims& dims) {
  int64_t n = 1;
  for (int64_t d : dims) {
    ENGINE_CHECK(d >= 0, "negative dimension ", d, " in shape ", dims_str(dims));
    if (d != 0 && n > std::numeric_limits<int64_t>::max() / d)
      fail("shape ", dims_str(dims), " has more elements than int64 can count");
    n *= d;
  }
  return n;
}

std::string dims_str(const Dims& dims) {
  std::string s = "[";
  for (size_t i = 0; i < dims.size(); ++i) {
    if (i) s += ",";
    s += dims[i] < 0 ? std::string("?") : std::to_string(dims[i]);
  }
  return s + "]";
}

// Largest single tensor we agree to allocate (16 GiB); hostile shapes fail here, not in malloc.
static constexpr size_t kMaxTensorBytes = size_t(1) << 34;

Tensor::Tensor(DType dtype, Dims shape) : dtype_(dtype), shape_(std::move(shape)) {
  numel_ = checked_numel(shape_);
  const size_t esize = dtype_size(dtype);
  ENGINE_CHECK(esize > 0, "cannot allocate a tensor of type ", dtype_name(dtype));
  ENGINE_CHECK(size_t(numel_) <= kMaxTensorBytes / esize, "tensor of shape ", dims_str(shape_),
               " (", dtype_name(dtype), ") exceeds the 16 GiB tensor limit");
  size_t bytes = size_t(numel_) * esize;
  size_t alloc = (bytes + 63) / 64 * 64;
  if (alloc == 0) alloc = 64;
  void* p = std::aligned_alloc(64, alloc);
  if (!p) fail("out of memory allocating ", bytes, " bytes for shape ", dims_str(shape_));
  std::memset(p, 0, alloc);
  storage_ = std::shared_ptr<void>(p, [](void* q) { std::free(q); });
  ptr_ = p;
}

Tensor Tensor::view(DType dtype, Dims shape, void* data) {
  Tensor t;
  t.dtype_ = dtype;
  t.shape_ = std::move(shape);
  t.numel_ = checked_numel(t.shape_);
  t.ptr_ = data;
  return t;
}

Tensor Tensor::view(DType dtype, Dims shape, void* data, std::shared_ptr<void> owner) {
  Tensor t = view(dtype, std::move(shape), data);
  t.storage_ = std::move(owner);
  return t;
}

Tensor Tensor::reshaped(Dims shape) const {
  Tensor t = *this;
  t.shape_ = std::move(shape);
  t.numel_ = checked_numel(t.shape_);
  ENGINE_CHECK(t.numel_ == numel_, "cannot reshape ", dims_str(shape_), " to ", dims_str(t.shape_));
  return t;
}

Tensor Tensor::clone() const {
  Tensor t(dtype_, shape_);
  if (nbytes()) std::memcpy(t.ptr_, ptr_, nbytes());
  return t;
}

double Tensor::get_as_double(int64_t i) const {
  ENGINE_CHECK(i >= 0 && i < numel_, "element ", i, " out of range for ", dims_str(shape_));
  if (dtype_ == DType::F16) return half_to_float(static_cast<const uint16_t*>(ptr_)[i]);
  return dispatch_dtype(dtype_, [&](auto t) {
    using T = decltype(t);
    return double(static_cast<const T*>(ptr_)[i]);
  });
}

int64_t Tensor::get_as_int(int64_t i) const {
  ENGINE_CHECK(i >= 0 && i < numel_, "element ", i, " out of range for ", dims_str(shape_));
  if (dtype_ == DType::F16 || dtype_ == DType::F32 || dtype_ == DType::F64)
    return int64_t(get_as_double(i));
  return dispatch_dtype(dtype_, [&](auto t) {
    using T = decltype(t);
    return int64_t(static_cast<const T*>(ptr_)[i]);
  });
}

std::vector<int64_t> Tensor::to_int_vector() const {
  std::vector<int64_t> v(static_cast<size_t>(numel_));
  for (int64_t i = 0; i < numel_; ++i) v[size_t(i)] = get_as_int(i);
  return v;
}

std::vector<float> Tensor::to_float_vector() const {
  std::vector<float> v(static_cast<size_t>(numel_));
  for (int64_t i = 0; i < numel_; ++i) v[size_t(i)] = float(get_as_double(i));
  return v;
}

}  // namespace engine
