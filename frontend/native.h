// The engine's native model file: the IR after every pass (fusion, folding, quantization), so
// loading runs no pass and parses no protobuf, and constants are read in place from a memory
// mapping of the file. See docs/NATIVE_FORMAT.md for the layout and the versioning rules.
//
//   offset 0   "ENGINEIR"            8-byte magic
//          8   uint32 version        kNativeVersion; other versions are refused with a message
//         12   uint32 flags          0
//         16   uint64 header_bytes   the JSON header that follows at offset 40
//         24   uint64 data_offset    multiple of 64, >= 40 + header_bytes
//         32   uint64 data_bytes     tensor data; every tensor starts 64-byte aligned
//         40   JSON header           values, nodes, inputs, outputs, model info
//   data_offset tensor data           little endian, row major
#pragma once

#include <cstdint>
#include <string>

#include "core/graph.h"
#include "core/op_registry.h"
#include "frontend/onnx_loader.h"

namespace engine {

constexpr uint32_t kNativeVersion = 1;
constexpr char kNativeMagic[9] = "ENGINEIR";

// True if the file (or bytes) starts with the native magic.
bool is_native_file(const std::string& path);
bool is_native_bytes(const std::string& bytes);

// Written atomically (temporary file + rename).
void save_native(const Graph& g, const ModelInfo& info, const std::string& path);
std::string save_native_bytes(const Graph& g, const ModelInfo& info);

// Memory-maps the file (copy-on-write: the file is never modified); constants point into the
// mapping, which lives as long as any of them. Every offset, size, id and op is checked; errors
// name the file.
Graph load_native(const std::string& path, const OpRegistry& reg, const LoadOptions& opt = {},
                  ModelInfo* info = nullptr);
// From bytes in memory (copied once into an aligned buffer).
Graph load_native_bytes(const std::string& bytes, const OpRegistry& reg,
                        const LoadOptions& opt = {}, ModelInfo* info = nullptr,
                        const std::string& what = "model");

}  // namespace engine
