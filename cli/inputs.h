// Turning command-line input arguments into model input tensors.
#pragma once

#include <string>
#include <vector>

#include "cli/commands.h"
#include "engine/engine.h"
#include "frontend/preprocess.h"

namespace engine::cli {

PreprocessOptions make_preprocess(const PreprocessFlags& f, const Model& m);
// One tensor per model input. `names` receives a display name per batch item.
std::vector<Tensor> load_run_inputs(const Model& m, const std::vector<std::string>& args,
                                    const PreprocessFlags& pre, bool random, int64_t batch,
                                    uint64_t seed, std::vector<std::string>* names);
std::vector<std::string> read_label_names(const std::string& path);

}  // namespace engine::cli
