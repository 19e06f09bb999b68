// Scalar activation math shared by the fused epilogues (FusedConv, FusedGemm) and anything else
// that needs "the activation a fused node carries" (e.g. lookup tables for integer kernels).
//
// A fused node describes its activation with three attributes:
//   activation  "" (none) | Relu | Clip | LeakyRelu | Sigmoid | HardSigmoid | HardSwish | SiLU
//   act_alpha   Clip: min (default lowest float); LeakyRelu: alpha (0.01); HardSigmoid: alpha (0.2)
//   act_beta    Clip: max (default largest float); HardSigmoid: beta (0.5)
// The formulas match the standalone float32 ops in ops/activation.cpp exactly (same expressions,
// evaluated in float), so a fused graph gives the same numbers as the unfused one; SiLU is
// Mul(x, Sigmoid(x)).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>

#include "core/attributes.h"
#include "core/error.h"

namespace engine {

enum class ActKind { None, Relu, Clip, LeakyRelu, Sigmoid, HardSigmoid, HardSwish, SiLU };

inline const char* activation_name(ActKind k) {
  switch (k) {
    case ActKind::None:
      return "";
    case ActKind::Relu:
      return "Relu";
    case ActKind::Clip:
      return "Clip";
    case ActKind::LeakyRelu:
      return "LeakyRelu";
    case ActKind::Sigmoid:
      return "Sigmoid";
    case ActKind::HardSigmoid:
      return "HardSigmoid";
    case ActKind::HardSwish:
      return "HardSwish";
    case ActKind::SiLU:
      return "SiLU";
  }
  return "";
}

// Returns false for an unknown name.
inline bool parse_activation_kind(const std::string& name, ActKind& out) {
  for (ActKind k : {ActKind::None, ActKind::Relu, ActKind::Clip, ActKind::LeakyRelu,
                    ActKind::Sigmoid, ActKind::HardSigmoid, ActKind::HardSwish, ActKind::SiLU})
    if (name == activation_name(k)) {
      out = k;
      return true;
    }
  return false;
}

inline float sigmoid_f(float v) {
  if (v >= 0) return 1.0f / (1.0f + std::exp(-v));
  const float e = std::exp(v);
  return e / (1.0f + e);
}

struct Activation {
  ActKind kind = ActKind::None;
  float alpha = 0.0f;
  float beta = 0.0f;

  float operator()(float v) const {
    switch (kind) {
      case ActKind::None:
        return v;
      case ActKind::Relu:
        return v < 0.0f ? 0.0f : v;
      case ActKind::Clip:
        v = v < alpha ? alpha : v;
        return v > beta ? beta : v;
      case ActKind::LeakyRelu:
        return v < 0.0f ? alpha * v : v;
      case ActKind::Sigmoid:
        return sigmoid_f(v);
      case ActKind::HardSigmoid:
        return std::max(0.0f, std::min(1.0f, alpha * v + beta));
      case ActKind::HardSwish:
        return v * std::max(0.0f, std::min(1.0f, v / 6.0f + 0.5f));
      case ActKind::SiLU:
        return v * sigmoid_f(v);
    }
    return v;
  }
};

// Reads activation / act_alpha / act_beta (with the per-kind defaults above); throws for an
// unknown activation name.
inline Activation activation_from_attrs(const Attributes& a) {
  Activation act;
  const std::string name = a.get_string("activation", "");
  ENGINE_CHECK(parse_activation_kind(name, act.kind), "attribute activation='", name,
               "' is not one of \"\" (none), Relu, Clip, LeakyRelu, Sigmoid, HardSigmoid, "
               "HardSwish, SiLU");
  float da = 0.0f, db = 0.0f;
  switch (act.kind) {
    case ActKind::Clip:
      da = std::numeric_limits<float>::lowest();
      db = std::numeric_limits<float>::max();
      break;
    case ActKind::LeakyRelu:
      da = 0.01f;
      break;
    case ActKind::HardSigmoid:
      da = 0.2f;
      db = 0.5f;
      break;
    default:
      break;
  }
  act.alpha = a.get_float("act_alpha", da);
  act.beta = a.get_float("act_beta", db);
  return act;
}

// y[i] = act(y[i] + sum[i]) (sum may be null). One loop per kind so each loop body is simple.
inline void apply_epilogue(float* y, const float* sum, int64_t n, const Activation& act) {
  auto run = [&](auto f) {
    if (sum) {
#pragma omp parallel for schedule(static) if (n > 65536)
      for (int64_t i = 0; i < n; ++i) y[i] = f(y[i] + sum[i]);
    } else {
#pragma omp parallel for schedule(static) if (n > 65536)
      for (int64_t i = 0; i < n; ++i) y[i] = f(y[i]);
    }
  };
  Activation a = act;
  switch (act.kind) {
    case ActKind::None:
      if (sum) run([](float v) { return v; });
      break;
    case ActKind::Relu:
      run([](float v) { return v < 0.0f ? 0.0f : v; });
      break;
    case ActKind::Clip:
      run([lo = a.alpha, hi = a.beta](float v) {
        v = v < lo ? lo : v;
        return v > hi ? hi : v;
      });
      break;
    default:
      run([a](float v) { return a(v); });
      break;
  }
}

}  // namespace engine
