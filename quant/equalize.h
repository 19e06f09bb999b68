// Cross-layer equalization (Nagel et al., "Data-Free Quantization Through Weight Equalization
// and Bias Correction", ICCV 2019), on the fused FP32 graph before calibration.
//
// For two convolutions A -> B where A's output is read only by B (through nothing but an
// activation fused into A that commutes with positive scaling: none, Relu, LeakyRelu), output
// channel i of A is divided by s_i and input channel i of B multiplied by it, with
// s_i = sqrt(r1_i / r2_i) (r1_i: max |W_A| of channel i, r2_i: max |W_B| over the weights that
// read channel i). Both ranges become sqrt(r1_i r2_i): depthwise convs stop having a few
// channels that set a per-tensor weight scale for all. Repeated over all pairs until the scales
// settle. The function is unchanged, except that ReLU6 (Clip(0, 6), not scale-invariant)
// between a pair becomes ReLU, as in the paper; the report counts those.
#pragma once

#include <string>
#include <vector>

#include "core/graph.h"

namespace engine::quant {

struct EqualizeReport {
  int pairs = 0;                        // conv pairs equalized
  int relu6_replaced = 0;               // Clip(0, b) activations turned into Relu
  int rounds = 0;                       // sweeps until the scales settled
  std::vector<std::string> pair_names;  // "A -> B"
};

EqualizeReport equalize_graph(Graph& g, int max_rounds = 20);

}  // namespace engine::quant
