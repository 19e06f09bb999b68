// `engine debug`: where INT8 drifts from FP32, layer by layer (include/engine/debug.h), which
// layers to keep in FP32 (--max-drop), tensor dumps.
#pragma once

#include <CLI/CLI.hpp>

#include <string>
#include <vector>

#include "cli/commands.h"
#include "cli/quant_flags.h"

namespace engine::cli {

class DebugCommand {
 public:
  explicit DebugCommand(CLI::App& app);  // adds the `debug` subcommand to `app`
  bool selected() const { return static_cast<bool>(*cmd_); }
  int run();

 private:
  CLI::App* cmd_ = nullptr;
  ModelFlags model_;
  PreprocessFlags pre_;
  QuantFlags quant_;
  std::string data_, labels_;
  int64_t samples_ = 128, batch_ = 32, eval_limit_ = 0;
  bool json_ = false, no_isolated_ = false;
  std::string dump_dir_;
  std::vector<std::string> dump_layers_;
  double max_drop_ = -1;
  std::string config_out_ = "fp32_layers.yaml";
  int top_ = 0;
  std::string report_;
};

}  // namespace engine::cli
