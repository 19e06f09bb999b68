// Export of an integer (quantized) graph as a standard ONNX QDQ graph that other runtimes (ONNX
// Runtime) load: each engine integer op becomes DequantizeLinear on its inputs, the float op, and
// QuantizeLinear on its output (see qdq_export.cpp for the op list).
#pragma once

#include "core/graph.h"

namespace engine {

// The QDQ form of `g` (opset >= 13: per-axis DequantizeLinear). Throws naming the node for an
// engine op that has no QDQ form.
Graph to_qdq(const Graph& g);

}  // namespace engine
