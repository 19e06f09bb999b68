// Subcommands of the `engine` executable and the options they share.
#pragma once

#include <CLI/CLI.hpp>

#include <memory>
#include <string>
#include <vector>

#include "cli/quant_flags.h"

namespace engine::cli {

class BenchCommand;  // cli/bench.h
class DebugCommand;  // cli/debug.h

// Preprocessing flags shared by every command that reads images.
struct PreprocessFlags {
  int resize = 0, crop = 0, pad = 0, channels = 0;
  bool bgr = false;
  std::string scale, mean, std;
  void add(CLI::App* cmd);
};
// Model flags shared by every command.
struct ModelFlags {
  std::string model;
  int threads = 0;
  std::vector<std::string> disable_passes;
  std::vector<std::string> limits;  // --model-limit KEY=N
  std::string fuse = "all";
  std::string backend = "onednn";
  bool int8 = false;
  void add(CLI::App* cmd);
};
// The model options the flags ask for.
ModelOptions model_options(const ModelFlags& f);

class Commands {
 public:
  explicit Commands(CLI::App& app);
  int run();  // runs the parsed subcommand

 private:
  int run_run();
  int run_eval();
  int run_inspect();
  int run_quantize();
  int run_compile();
  // Loads the model; with --int8, quantizes it per the quantization flags.
  Model load_model(bool quiet = false);

  CLI::App* run_cmd_ = nullptr;
  CLI::App* eval_cmd_ = nullptr;
  CLI::App* inspect_cmd_ = nullptr;
  CLI::App* quantize_cmd_ = nullptr;
  CLI::App* compile_cmd_ = nullptr;
  std::shared_ptr<BenchCommand> bench_;  // `engine bench` (cli/bench.cpp)
  std::shared_ptr<DebugCommand> debug_;  // `engine debug` (cli/debug.cpp)
  ModelFlags model_;
  PreprocessFlags pre_;
  QuantFlags quant_;

  // run
  std::vector<std::string> inputs_;
  bool random_ = false;
  int64_t batch_ = 0;
  int topk_ = 5;
  std::string labels_;
  std::string out_npy_;
  std::string out_dir_;
  int repeat_ = 1;
  uint64_t seed_ = 0;

  // eval
  std::string data_;
  std::string eval_labels_;
  int64_t limit_ = 0;
  int64_t eval_batch_ = 32;
  bool json_ = false;
  std::string save_preds_;
  bool compare_fp32_ = false;

  // quantize
  std::string quant_out_, quant_format_ = "engine";

  // compile
  std::string compile_out_;

  // inspect
  std::string after_;
  bool list_passes_ = false;
  bool list_kernels_ = false;
};

}  // namespace engine::cli
