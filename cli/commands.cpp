#include "cli/commands.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <random>

#include <nlohmann/json.hpp>
#include "cli/bench.h"
#include "cli/debug.h"
#include "cli/inputs.h"
#include "engine/engine.h"
#include "engine/inspect.h"
#include "frontend/dataset.h"
#include "frontend/npy.h"
#include "frontend/onnx_writer.h"
#include "frontend/tensor_proto.h"

namespace engine::cli {

namespace {

using Clock = std::chrono::steady_clock;
double ms_since(Clock::time_point t) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
}

}  // namespace

void PreprocessFlags::add(CLI::App* cmd) {
  cmd->add_option("--resize", resize, "Resize the shorter image side to S pixels (bilinear)")
      ->check(CLI::NonNegativeNumber)
      ->group("Preprocessing");
  cmd->add_option("--crop", crop, "Centre crop to SxS")
      ->check(CLI::NonNegativeNumber)
      ->group("Preprocessing");
  cmd->add_option("--pad", pad, "Zero-pad P pixels on every side (raw pixels, before scaling)")
      ->check(CLI::NonNegativeNumber)
      ->group("Preprocessing");
  cmd->add_option("--channels", channels, "1 = gray, 3 = RGB (gray replicated); default: model")
      ->check(CLI::IsMember({0, 1, 3}))
      ->group("Preprocessing");
  cmd->add_flag("--bgr", bgr, "Channel order B,G,R (Caffe models)")->group("Preprocessing");
  cmd->add_option("--scale", scale, "Multiply pixels by F, e.g. 1/255 or 0.0039")
      ->group("Preprocessing");
  cmd->add_option("--mean", mean, "Subtract per channel, e.g. 0.485,0.456,0.406 or 104,117,123")
      ->group("Preprocessing");
  cmd->add_option("--std", std, "Divide per channel after subtracting the mean")
      ->group("Preprocessing");
}

void ModelFlags::add(CLI::App* cmd) {
  cmd->add_option("model", model, "ONNX model file")->required();
  cmd->add_option("--threads", threads, "Threads (default: all cores)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--fuse", fuse,
                  "Fusion preset: none (no fusion), blocks (BatchNorm folding + activations), "
                  "all (also residual adds, Pad folding, reshape merging)")
      ->check(CLI::IsMember({"none", "blocks", "all"}));
  cmd->add_option("--backend", backend,
                  "Float kernels: onednn (2-D convs and pools on oneDNN, channels-last) or "
                  "reference (every node on the reference kernels)")
      ->check(CLI::IsMember({"onednn", "reference"}));
  cmd->add_option("--disable-pass", disable_passes,
                  "Switch off a graph pass by name (repeatable); see `engine inspect --passes`");
  cmd->add_option("--model-limit", limits,
                  "Raise or lower a model-file limit, KEY=N (repeatable): file-bytes (4 GiB), "
                  "nodes (1048576), depth (65536), attribute-elements (16777216)");
  cmd->add_flag("--int8", int8,
                "Quantize to INT8 after loading (needs --calib, --calib-noise or --stats-in; "
                "models saved by `engine quantize` or QDQ models run in INT8 without it)");
}

Commands::Commands(CLI::App& app) {
  run_cmd_ = app.add_subcommand("run", "Run a model on images, .npy/.pb tensors or random data");
  model_.add(run_cmd_);
  pre_.add(run_cmd_);
  run_cmd_->add_option("-i,--input", inputs_,
                       "Input files: images (JPEG/PNG/BMP...), .npy, .pb (TensorProto) or IDX; "
                       "several images form a batch; NAME=FILE for multi-input models");
  run_cmd_->add_flag("--random", random_, "Use Gaussian random input (seeded)");
  run_cmd_->add_option("--seed", seed_, "Seed for --random");
  run_cmd_->add_option("--batch", batch_, "Batch size for --random, or items read from IDX")
      ->check(CLI::PositiveNumber);
  run_cmd_->add_option("--topk", topk_, "Classes to print per image (0: none)")
      ->check(CLI::NonNegativeNumber);
  run_cmd_->add_option("--labels", labels_, "Class names, one per line");
  run_cmd_->add_option("-o,--output", out_npy_, "Write the first output to this .npy file");
  run_cmd_->add_option("--output-dir", out_dir_, "Write every output as DIR/<name>.npy");
  run_cmd_->add_option("--repeat", repeat_, "Run N times and report the median time")
      ->check(CLI::PositiveNumber);
  quant_.add(run_cmd_);

  eval_cmd_ = app.add_subcommand("eval", "Accuracy, loss and speed over a labeled data set");
  model_.add(eval_cmd_);
  pre_.add(eval_cmd_);
  eval_cmd_
      ->add_option("--data", data_,
                   "Image folder (one sub-folder per class), a 'path label' list file, "
                   "or an IDX image file (with --labels)")
      ->required();
  eval_cmd_->add_option("--labels", eval_labels_, "IDX label file (with an IDX --data)");
  eval_cmd_->add_option("--limit", limit_, "Evaluate only the first N items")
      ->check(CLI::NonNegativeNumber);
  eval_cmd_->add_option("--batch", eval_batch_, "Batch size (models with a fixed batch use it)")
      ->check(CLI::PositiveNumber);
  eval_cmd_->add_flag("--json", json_, "Print one JSON object on stdout");
  eval_cmd_->add_option("--save-preds", save_preds_,
                        "Write the predicted class of every item, one byte each");
  eval_cmd_->add_flag("--compare-fp32", compare_fp32_,
                      "With --int8: also run the FP32 model and count agreeing predictions");
  quant_.add(eval_cmd_);

  quantize_cmd_ = app.add_subcommand(
      "quantize", "Calibrate and save an INT8 model (later runs skip calibration)");
  model_.add(quantize_cmd_);
  pre_.add(quantize_cmd_);
  quant_.add(quantize_cmd_);
  quantize_cmd_
      ->add_option("-o,--output", quant_out_, "Output model (.onnx; .eng for --format native)")
      ->required();
  quantize_cmd_
      ->add_option("--format", quant_format_,
                   "engine: ONNX with the engine's integer ops (reloads exactly, any requant "
                   "mode); qdq: standard QDQ ONNX (opset 13) that ONNX Runtime and others load; "
                   "native: the engine's own file (loads without parsing or passes, weights "
                   "memory-mapped; docs/NATIVE_FORMAT.md)")
      ->check(CLI::IsMember({"engine", "qdq", "native"}));

  compile_cmd_ = app.add_subcommand(
      "compile",
      "Save the model after every pass (FP32, or INT8 with --int8) as a native .eng file that "
      "loads without parsing or passes (docs/NATIVE_FORMAT.md)");
  model_.add(compile_cmd_);
  pre_.add(compile_cmd_);
  quant_.add(compile_cmd_);
  compile_cmd_->add_option("-o,--output", compile_out_, "Output file (.eng)")->required();

  inspect_cmd_ =
      app.add_subcommand("inspect", "Print the graph, shapes, parameters, FLOPs, memory");
  model_.add(inspect_cmd_);
  inspect_cmd_->get_option("model")->required(false);  // --passes / --kernels need none
  inspect_cmd_->add_option("--after", after_, "Show the graph after this pass");
  inspect_cmd_->add_option("--batch", batch_, "Batch size for shapes and memory")
      ->check(CLI::PositiveNumber);
  inspect_cmd_->add_flag("--passes", list_passes_, "List the graph passes and exit");
  inspect_cmd_->add_flag(
      "--kernels", list_kernels_,
      "Print which kernels this CPU uses (integer GEMM path, oneDNN ISA) and exit");
  pre_.add(inspect_cmd_);
  quant_.add(inspect_cmd_);

  bench_ = std::make_shared<BenchCommand>(app);
  debug_ = std::make_shared<DebugCommand>(app);
}

int Commands::run() {
  if (*run_cmd_) return run_run();
  if (*quantize_cmd_) return run_quantize();
  if (*compile_cmd_) return run_compile();
  if (*eval_cmd_) return run_eval();
  if (*inspect_cmd_) return run_inspect();
  if (bench_->selected()) return bench_->run();
  if (debug_->selected()) return debug_->run();
  return 2;
}

ModelOptions model_options(const ModelFlags& f) {
  ModelOptions o;
  o.threads = f.threads;
  o.passes.disabled.insert(f.disable_passes.begin(), f.disable_passes.end());
  o.passes.fuse = f.fuse;
  o.backend = f.backend;
  for (const std::string& kv : f.limits) {
    const size_t eq = kv.find('=');
    const std::string key = kv.substr(0, eq);
    size_t* field = key == "file-bytes"           ? &o.load.max_file_bytes
                    : key == "nodes"              ? &o.load.max_nodes
                    : key == "depth"              ? &o.load.max_depth
                    : key == "attribute-elements" ? &o.load.max_attribute_elements
                                                  : nullptr;
    ENGINE_CHECK(eq != std::string::npos && field, "--model-limit ", kv,
                 ": expected KEY=N with KEY one of file-bytes, nodes, depth, attribute-elements");
    *field = size_t(parse_int64(kv.substr(eq + 1), "--model-limit " + key, 1));
  }
  return o;
}

// Rows of a classifier output: [N, C] or [N, C, 1, 1].
static bool as_rows(const Tensor& t, int64_t& rows, int64_t& cols) {
  if (t.dtype() != DType::F32 || t.rank() < 1) return false;
  rows = t.rank() == 1 ? 1 : t.dim(0);
  cols = t.rank() == 1 ? t.dim(0) : t.dim(1);
  for (int i = 2; i < t.rank(); ++i)
    if (t.dim(i) != 1) return false;
  return cols > 1;
}

// Softmax unless the row already is a probability distribution (e.g. SqueezeNet's output).
static std::vector<double> probabilities(const float* x, int64_t n) {
  double sum = 0;
  bool probs = true;
  for (int64_t i = 0; i < n; ++i) {
    probs = probs && x[i] >= 0 && x[i] <= 1;
    sum += x[i];
  }
  std::vector<double> p(size_t(n), 0.0);
  if (probs && std::abs(sum - 1.0) < 1e-3) {
    for (int64_t i = 0; i < n; ++i) p[size_t(i)] = x[i];
    return p;
  }
  const double mx = *std::max_element(x, x + n);
  double s = 0;
  for (int64_t i = 0; i < n; ++i) s += p[size_t(i)] = std::exp(double(x[i]) - mx);
  for (auto& v : p) v /= s;
  return p;
}

Model Commands::load_model(bool quiet) {
  Model m = Model::load(model_.model, model_options(model_));
  if (!model_.int8) return m;
  return quantize_with_flags(m, quant_, pre_, quiet);
}

int Commands::run_quantize() {
  ENGINE_CHECK(quant_out_ != model_.model, "-o ", quant_out_,
               " would overwrite the input model; choose another file");
  Model fp32 = Model::load(model_.model, model_options(model_));
  Model m = quantize_with_flags(fp32, quant_, pre_);
  if (quant_format_ == "qdq")
    m.save_qdq(quant_out_);
  else if (quant_format_ == "native")
    m.save_native(quant_out_);
  else
    m.save(quant_out_);
  std::cout << "wrote " << quant_out_ << " (" << std::filesystem::file_size(quant_out_)
            << " bytes; FP32 model " << fp32.info().file_bytes << " bytes)\n";
  return 0;
}

int Commands::run_compile() {
  ENGINE_CHECK(compile_out_ != model_.model, "-o ", compile_out_,
               " would overwrite the input model; choose another file");
  const Model m = load_model();
  m.save_native(compile_out_);
  std::cout << "wrote " << compile_out_ << " (" << std::filesystem::file_size(compile_out_)
            << " bytes, " << (m.is_quantized() ? "INT8" : "FP32") << ", " << m.ir().nodes.size()
            << " nodes; source " << m.info().file_bytes << " bytes)\n";
  return 0;
}

int Commands::run_run() {
  auto t0 = Clock::now();
  Model m = load_model();
  const double load_ms = ms_since(t0);
  std::vector<std::string> names;
  std::vector<Tensor> inputs = load_run_inputs(m, inputs_, pre_, random_, batch_, seed_, &names);
  std::cout << "model " << model_.model << ": loaded in " << std::fixed << std::setprecision(1)
            << load_ms << " ms\n";
  for (size_t i = 0; i < inputs.size(); ++i)
    std::cout << "input  " << m.inputs()[i].name << " " << dims_str(inputs[i].shape()) << " "
              << dtype_name(inputs[i].dtype()) << "\n";
  std::vector<double> times;
  std::vector<Tensor> outs;
  for (int r = 0; r < repeat_; ++r) {
    auto t = Clock::now();
    outs = m.run(inputs);
    times.push_back(ms_since(t));
  }
  const double first = times[0];
  std::sort(times.begin(), times.end());
  const auto out_info = m.outputs();
  for (size_t i = 0; i < outs.size(); ++i)
    std::cout << "output " << out_info[i].name << " " << dims_str(outs[i].shape()) << " "
              << dtype_name(outs[i].dtype()) << "\n";
  std::cout << "time: first run " << std::setprecision(2) << first << " ms";
  if (repeat_ > 1)
    std::cout << ", median of " << repeat_ << " " << times[times.size() / 2] << " ms";
  std::cout << "\n";

  std::vector<std::string> labels;
  if (!labels_.empty()) labels = read_label_names(labels_);
  int64_t rows = 0, cols = 0;
  if (topk_ > 0 && !outs.empty() && as_rows(outs[0], rows, cols)) {
    const float* d = outs[0].data<float>();
    for (int64_t r = 0; r < rows; ++r) {
      std::vector<double> p = probabilities(d + r * cols, cols);
      std::vector<int64_t> idx(static_cast<size_t>(cols));
      for (int64_t c = 0; c < cols; ++c) idx[size_t(c)] = c;
      const int64_t k = std::min<int64_t>(topk_, cols);
      std::partial_sort(idx.begin(), idx.begin() + k, idx.end(),
                        [&](int64_t a, int64_t b) { return d[r * cols + a] > d[r * cols + b]; });
      std::cout << "item " << r;
      if (size_t(r) < names.size()) std::cout << " (" << names[size_t(r)] << ")";
      std::cout << ":\n";
      for (int64_t j = 0; j < k; ++j) {
        const int64_t c = idx[size_t(j)];
        std::cout << "  " << j + 1 << ". class " << c;
        if (size_t(c) < labels.size()) std::cout << " " << labels[size_t(c)];
        std::cout << std::setprecision(4) << "  score " << d[r * cols + c] << "  p=" << p[size_t(c)]
                  << "\n";
      }
    }
  }
  if (!out_npy_.empty()) {
    write_npy(out_npy_, outs.at(0));
    std::cout << "wrote " << out_npy_ << "\n";
  }
  if (!out_dir_.empty()) {
    std::filesystem::create_directories(out_dir_);
    for (size_t i = 0; i < outs.size(); ++i) {
      const std::string path =
          (std::filesystem::path(out_dir_) / (npy_file_stem(out_info[i].name) + ".npy")).string();
      write_npy(path, outs[i]);
      std::cout << "wrote " << path << "\n";
    }
  }
  return 0;
}

int Commands::run_eval() {
  ENGINE_CHECK(!compare_fp32_ || model_.int8, "--compare-fp32 compares an --int8 run with FP32");
  const Model fp32 = Model::load(model_.model, model_options(model_));
  // --equalize without --int8: the equalized FP32 model (what equalization alone changes).
  const Model m = model_.int8       ? quantize_with_flags(fp32, quant_, pre_, json_)
                  : quant_.equalize ? fp32.equalize()
                                    : fp32;
  ENGINE_CHECK(m.inputs().size() == 1, model_.model, ": eval needs a single-input model, it has ",
               m.inputs().size());
  const PreprocessOptions pre = make_preprocess(pre_, m);
  Dataset ds = Dataset::open(data_, eval_labels_, pre);
  ENGINE_CHECK(ds.labeled(), data_,
               ": eval needs labels (an image folder with class sub-folders, "
               "a 'path label' list file, or IDX images with --labels)");
  const int64_t n = limit_ > 0 ? std::min(limit_, ds.size()) : ds.size();
  ENGINE_CHECK(n > 0, data_, ": the data set is empty");
  // A model with a fixed batch dimension (e.g. [1,3,224,224]) is fed that many images at a time.
  const Dims in_shape = m.inputs()[0].shape;
  int64_t batch = eval_batch_;
  if (!in_shape.empty() && in_shape[0] > 0) batch = in_shape[0];
  const bool progress = !json_ && isatty(STDERR_FILENO);

  int64_t correct = 0, correct5 = 0, seen = 0, agree = 0, fp32_correct = 0;
  double loss_sum = 0, run_seconds = 0;
  std::string preds;
  auto t_all = Clock::now();
  for (int64_t start = 0; start < n; start += batch) {
    const int64_t count = std::min(batch, n - start);
    Batch b = make_batch(ds, start, count);
    if (!in_shape.empty() && in_shape[0] > 0) b = pad_batch(std::move(b), batch);  // fixed size
    const Tensor& x = b.images;
    auto t = Clock::now();
    std::vector<Tensor> outs = m.run(std::vector<Tensor>{x});
    run_seconds += ms_since(t) / 1000.0;
    std::vector<Tensor> ref;
    if (compare_fp32_) ref = fp32.run(std::vector<Tensor>{x});
    int64_t rows = 0, cols = 0;
    ENGINE_CHECK(as_rows(outs.at(0), rows, cols), model_.model, ": output ",
                 dims_str(outs[0].shape()), " is not a [N, classes] classifier output");
    const float* d = outs[0].data<float>();
    for (int64_t r = 0; r < count; ++r) {
      const int label = b.labels[size_t(r)];
      ENGINE_CHECK(label >= 0 && label < cols, ds.item_name(start + r), ": label ", label,
                   " is outside the model's ", cols, " classes");
      const float* row = d + r * cols;
      // How many classes rank before the label. Ties go to the lower class index, as argmax
      // does: coarse (e.g. 4-bit) logits tie often, and counting a tie as a hit would inflate
      // top-1 above the argmax accuracy.
      int64_t rank = 0;
      for (int64_t c = 0; c < cols; ++c)
        rank += row[c] > row[label] || (row[c] == row[label] && c < label);
      correct += rank == 0;
      correct5 += rank < 5;
      const std::vector<double> p = probabilities(row, cols);
      loss_sum += -std::log(std::max(p[size_t(label)], 1e-30));
      preds.push_back(char(std::max_element(row, row + cols) - row));
      if (compare_fp32_) {
        const float* fr = ref.at(0).data<float>() + r * cols;
        agree += std::max_element(fr, fr + cols) - fr == std::max_element(row, row + cols) - row;
        fp32_correct += std::max_element(fr, fr + cols) - fr == label;
      }
    }
    seen += count;
    if (progress) {
      const int width = 40, filled = int(width * seen / n);
      std::cerr << "\r[" << std::string(size_t(filled), '=')
                << std::string(size_t(width - filled), ' ') << "] " << seen << "/" << n
                << std::flush;
    }
  }
  if (progress) std::cerr << "\n";
  const double total_s = ms_since(t_all) / 1000.0;
  if (!save_preds_.empty()) write_file_atomic(save_preds_, preds);
  nlohmann::json j;
  j["model"] = model_.model;
  j["images"] = seen;
  j["correct"] = correct;
  j["top1"] = 100.0 * double(correct) / double(seen);
  j["top5"] = 100.0 * double(correct5) / double(seen);
  j["loss"] = loss_sum / double(seen);
  j["images_per_s"] = double(seen) / run_seconds;
  j["images_per_s_with_loading"] = double(seen) / total_s;
  j["model_bytes"] = m.info().file_bytes;
  j["precision"] = m.is_quantized() ? "int8" : "fp32";
  if (model_.int8) j["int8_model_bytes"] = save_onnx_bytes(m.ir()).size();
  if (compare_fp32_) {
    j["agree_with_fp32"] = agree;
    j["fp32_correct"] = fp32_correct;
    j["fp32_top1"] = 100.0 * double(fp32_correct) / double(seen);
  }
  j["batch"] = batch;
  j["preprocessing"] = describe(pre);
  if (json_) {
    std::cout << j.dump() << "\n";
  } else {
    std::cout << std::fixed << std::setprecision(2) << "images: " << seen << "\n"
              << "top-1: " << j["top1"].get<double>() << " % (" << correct << " correct)\n"
              << "top-5: " << j["top5"].get<double>() << " %\n"
              << std::setprecision(4) << "loss (mean cross-entropy): " << j["loss"].get<double>()
              << "\n"
              << std::setprecision(1) << "speed: " << j["images_per_s"].get<double>()
              << " images/s inference, " << j["images_per_s_with_loading"].get<double>()
              << " images/s with loading\n"
              << "model size: " << m.info().file_bytes << " bytes";
    if (model_.int8) std::cout << " (INT8: " << j["int8_model_bytes"].get<size_t>() << " bytes)";
    std::cout << "\n";
    if (compare_fp32_)
      std::cout << "agreement with FP32: " << agree << "/" << seen << " predictions; FP32 top-1 "
                << std::setprecision(2) << j["fp32_top1"].get<double>() << " %\n";
  }
  return 0;
}

int Commands::run_inspect() {
  if (list_kernels_) {
    const auto rows = kernel_selection();
    size_t width = 0;
    for (const auto& row : rows) width = std::max(width, row.first.size() + 2);
    for (const auto& [what, choice] : rows)
      std::cout << std::left << std::setw(int(width)) << what << choice << "\n";
    return 0;
  }
  if (list_passes_) {
    for (const auto& p : all_passes())
      std::cout << std::left << std::setw(22) << p->name() << (p->required() ? "(required) " : "")
                << p->description() << "\n";
    return 0;
  }
  ENGINE_CHECK(!model_.model.empty(),
               "inspect: a model file is required (only --passes and --kernels need none)");
  ModelOptions o = model_options(model_);
  o.passes.stop_after = after_;
  Model m = Model::load(model_.model, o);
  if (model_.int8) m = quantize_with_flags(m, quant_, pre_);
  ModelReport r = inspect_model(m, batch_ > 0 ? batch_ : 1);
  std::cout << format_report(m, r);
  return 0;
}

}  // namespace engine::cli
