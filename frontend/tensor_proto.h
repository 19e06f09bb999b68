// ONNX TensorProto <-> Tensor, and .pb tensor files (the ONNX test-data format).
#pragma once

#include <functional>
#include <ostream>
#include <string>

#include "core/tensor.h"

namespace onnx {
class TensorProto;
}

namespace engine {

struct TensorProtoOptions {
  // Folder that external-data locations are resolved in; external data is refused when empty.
  std::string base_dir;
  bool upcast_f16 = false;  // float16 -> float32 (initializers)
  std::string what;         // for messages, e.g. "initializer 'conv1.weight'"
};

Tensor tensor_from_proto(const onnx::TensorProto& p, const TensorProtoOptions& opt);
void tensor_to_proto(const Tensor& t, const std::string& name, onnx::TensorProto* p);

// Reads a serialized TensorProto file (test_data_set_N/input_0.pb); name set to the proto's name.
Tensor read_tensor_pb(const std::string& path, std::string* name = nullptr);
void write_tensor_pb(const Tensor& t, const std::string& name, const std::string& path);

// Reads a whole file; throws naming the path (missing, unreadable, larger than max_bytes).
std::string read_file_bytes(const std::string& path, size_t max_bytes);
// Writes atomically: a temporary file in the same folder, then rename.
void write_file_atomic(const std::string& path, const std::string& bytes);
// The same, with the contents streamed by `write` (large files need no copy in memory).
void write_file_atomic(const std::string& path, const std::function<void(std::ostream&)>& write);

}  // namespace engine
