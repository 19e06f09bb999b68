// NumPy .npy files (format versions 1.0, 2.0 and 3.0): read into a Tensor, write a Tensor.
//
// Supported element types: f2 f4 f8, i1 i2 i4 i8, u1 u2 u4 u8, b1; little-endian ('<'), byte ('|')
// or native ('=', this engine only runs on little-endian hosts); big-endian ('>') files are
// byte-swapped on read. Only C-order arrays: fortran_order=True and structured dtypes are rejected.
// float16 data stays float16 (DType::F16, raw IEEE half bits).
#pragma once

#include <string>

#include "core/tensor.h"

namespace engine {

// Reads a whole .npy file. Throws engine::Error naming the file when it is missing, not .npy,
// uses an unsupported dtype or order, or when the header's shape does not match the data size
// (checked before anything is allocated).
Tensor read_npy(const std::string& path);

// Writes `t` as a version 1.0 .npy file (2.0 if the header would not fit), atomically: the data
// goes to "<path>.tmp.<pid>", which is renamed over `path` only once fully written and flushed.
void write_npy(const std::string& path, const Tensor& t);
// A tensor name as a file name (without extension): '/', '\\' and ':' become '_'.
std::string npy_file_stem(std::string tensor_name);

// True when the file starts with the .npy magic "\x93NUMPY" (false if it cannot be read).
bool is_npy_file(const std::string& path);

}  // namespace engine
