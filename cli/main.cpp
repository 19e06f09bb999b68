// The `engine` command line: run, eval, inspect. Exit codes: 0 ok, 1 error, 2 usage.
#include <CLI/CLI.hpp>

#include <iostream>

#include "cli/commands.h"
#include "core/error.h"

int main(int argc, char** argv) {
  CLI::App app{"engine: ONNX inference for convolutional networks on x86 CPUs (FP32, INT8)"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "engine 0.1.0");
  engine::cli::Commands cmds(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? 0 : 2;
  }
  try {
    return cmds.run();
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
}
