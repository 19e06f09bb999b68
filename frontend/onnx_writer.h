// Graph IR -> ONNX. Engine-domain ops (FusedConv, QConv, ...) are written in domain "engine",
// which this engine's loader reads back; other runtimes see them as custom ops.
#pragma once

#include <string>

#include "core/graph.h"

namespace engine {

struct SaveOptions {
  std::string producer = "engine";
  std::string doc;  // free text stored in the model (e.g. the quantization settings)
};

std::string save_onnx_bytes(const Graph& g, const SaveOptions& opt = {});
// Written atomically (temporary file + rename); never overwrites `path` on failure.
void save_onnx(const Graph& g, const std::string& path, const SaveOptions& opt = {});

}  // namespace engine
