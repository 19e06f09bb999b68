// Element types of tensors. Values follow ONNX TensorProto.DataType where one exists.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "core/error.h"

namespace engine {

enum class DType : int {
  Undefined = 0,
  F32 = 1,
  U8 = 2,
  I8 = 3,
  U16 = 4,
  I16 = 5,
  I32 = 6,
  I64 = 7,
  String = 8,  // never stored in a Tensor; listed so errors can name it
  Bool = 9,
  F16 = 10,
  F64 = 11,
  U32 = 12,
  U64 = 13,
};

size_t dtype_size(DType t);  // 0 for Undefined/String
const char* dtype_name(DType t);
// Maps an ONNX TensorProto.DataType number; Undefined for unknown or unsupported ones.
DType dtype_from_onnx(int onnx_type);
bool dtype_is_float(DType t);
bool dtype_is_integer(DType t);

template <class T>
struct DTypeOf;
template <>
struct DTypeOf<float> {
  static constexpr DType value = DType::F32;
};
template <>
struct DTypeOf<double> {
  static constexpr DType value = DType::F64;
};
template <>
struct DTypeOf<uint8_t> {
  static constexpr DType value = DType::U8;
};
template <>
struct DTypeOf<int8_t> {
  static constexpr DType value = DType::I8;
};
template <>
struct DTypeOf<uint16_t> {
  static constexpr DType value = DType::U16;
};
template <>
struct DTypeOf<int16_t> {
  static constexpr DType value = DType::I16;
};
template <>
struct DTypeOf<int32_t> {
  static constexpr DType value = DType::I32;
};
template <>
struct DTypeOf<int64_t> {
  static constexpr DType value = DType::I64;
};
template <>
struct DTypeOf<uint32_t> {
  static constexpr DType value = DType::U32;
};
template <>
struct DTypeOf<uint64_t> {
  static constexpr DType value = DType::U64;
};
template <>
struct DTypeOf<bool> {
  static constexpr DType value = DType::Bool;
};

// IEEE half <-> float conversion (round to nearest even), used by the loader and Cast.
float half_to_float(uint16_t h);
uint16_t float_to_half(float f);

// Calls f(T{}) with T the C++ type of `t` (F16 is stored as uint16_t bits and is not dispatched).
template <class F>
auto dispatch_dtype(DType t, F&& f) {
  switch (t) {
    case DType::F32:
      return f(float{});
    case DType::F64:
      return f(double{});
    case DType::U8:
      return f(uint8_t{});
    case DType::I8:
      return f(int8_t{});
    case DType::U16:
      return f(uint16_t{});
    case DType::I16:
      return f(int16_t{});
    case DType::I32:
      return f(int32_t{});
    case DType::I64:
      return f(int64_t{});
    case DType::U32:
      return f(uint32_t{});
    case DType::U64:
      return f(uint64_t{});
    case DType::Bool:
      return f(bool{});
    default:
      break;
  }
  fail("unsupported element type ", dtype_name(t));
}

}  // namespace engine
