// `engine bench`: latency percentiles, throughput and peak memory per batch size and precision,
// the CPU counterpart of trtexec; --profile adds the time per node.
#pragma once

#include <CLI/CLI.hpp>

#include <string>
#include <vector>

#include "cli/commands.h"
#include "cli/quant_flags.h"

namespace engine::cli {

class BenchCommand {
 public:
  explicit BenchCommand(CLI::App& app);  // adds the `bench` subcommand to `app`
  bool selected() const { return static_cast<bool>(*cmd_); }
  int run();

 private:
  CLI::App* cmd_ = nullptr;
  ModelFlags model_;
  PreprocessFlags pre_;  // only for --calib images
  QuantFlags quant_;
  std::vector<int64_t> batches_;
  std::vector<std::string> precisions_;
  std::vector<std::string> inputs_;
  int64_t iters_ = 0;
  double seconds_ = 2.0;
  int warmup_ = 2;
  uint64_t seed_ = 0;
  bool json_ = false;
  bool profile_ = false;
  int profile_top_ = 0;
};

}  // namespace engine::cli
