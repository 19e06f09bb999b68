#include "cli/bench.h"

#include <omp.h>
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <iomanip>
#include <iostream>
#include <random>
#include <sstream>
#include <unordered_map>

#include <nlohmann/json.hpp>
#include "cli/inputs.h"
#include "engine/engine.h"

namespace engine::cli {

namespace {

using Clock = std::chrono::steady_clock;
double ms_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

// Nearest-rank percentile of sorted values: the smallest value with at least p % of the values
// at or below it. Using it for the median too keeps median <= p90 <= p99.
double percentile(const std::vector<double>& sorted, double p) {
  const auto n = double(sorted.size());
  const auto rank = std::max<size_t>(1, size_t(std::ceil(p / 100.0 * n)));
  return sorted[std::min(rank, sorted.size()) - 1];
}

// Peak resident set size of this process so far (Linux reports ru_maxrss in KiB).
double peak_rss_mb() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return double(u.ru_maxrss) / 1024.0;
}

// CPU time (user + system, all threads) of this process so far, in ms.
double cpu_ms() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return (double(u.ru_utime.tv_sec + u.ru_stime.tv_sec) * 1e3 +
          double(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e3);
}

struct NodeTime {
  std::string op_type, name;
  double ms = 0;
};

struct Result {
  int64_t batch = 0;
  std::string precision;
  size_t runs = 0;
  double median = 0, p90 = 0, p99 = 0, min = 0, mean = 0, images_per_s = 0, rss_mb = 0;
  double cpu_share = 0;           // CPU time / (wall time * threads) over the timed runs
  std::vector<NodeTime> profile;  // sorted by time, descending
  double profile_total = 0;
};

// Gaussian inputs of the model's input shapes at `batch`; fixed batch dims must equal it.
std::vector<Tensor> random_inputs(const Model& m, int64_t batch, uint64_t seed) {
  const auto& ins = m.inputs();
  for (const IoInfo& in : ins)
    ENGINE_CHECK(in.shape.empty() || in.shape[0] <= 0 || in.shape[0] == batch, "input '", in.name,
                 "' has a fixed batch of ", in.shape[0], " (shape ", dims_str(in.shape),
                 "): --batch ", batch, " is not possible, use --batch ", in.shape[0]);
  const auto shapes = m.concrete_input_shapes(batch);
  std::mt19937_64 rng(seed + uint64_t(batch));
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::vector<Tensor> result;
  for (size_t i = 0; i < ins.size(); ++i) {
    ENGINE_CHECK(ins[i].dtype == DType::F32, "input '", ins[i].name, "' is ",
                 dtype_name(ins[i].dtype), "; bench makes float32 random inputs only");
    Tensor t(DType::F32, shapes[i]);
    for (int64_t k = 0; k < t.numel(); ++k) t.data<float>()[k] = nd(rng);
    result.push_back(std::move(t));
  }
  return result;
}

std::string fixed(double v, int digits) {
  std::ostringstream s;
  s << std::fixed << std::setprecision(digits) << v;
  return s.str();
}

}  // namespace

BenchCommand::BenchCommand(CLI::App& app) {
  cmd_ = app.add_subcommand(
      "bench", "Latency (median, p90, p99), throughput and peak memory per batch size");
  model_.add(cmd_);
  cmd_->add_option("--batch", batches_, "Batch sizes, comma separated, e.g. 1,32,128 (default 1)")
      ->delimiter(',')
      ->check(CLI::Validator(
          [](std::string& v) {
            try {
              parse_int64(v, "--batch", 1);
            } catch (const Error&) {
              return "'" + v + "' is not a positive integer (expected e.g. --batch 1,32,128)";
            }
            return std::string();
          },
          "N,N,..."));
  cmd_->add_option("--precision", precisions_,
                   "fp32, int8 or fp32,int8 (default: int8 for QDQ/QLinear models, else fp32); "
                   "int8 without calibration flags calibrates on 8 Gaussian-noise inputs")
      ->delimiter(',')
      ->check(CLI::IsMember({"fp32", "int8"}));
  cmd_->add_option("--iters", iters_, "Timed runs per batch size (0: run for --seconds)")
      ->check(CLI::NonNegativeNumber);
  cmd_->add_option("--seconds", seconds_, "Timed seconds per batch size when --iters is 0")
      ->check(CLI::PositiveNumber);
  cmd_->add_option("--warmup", warmup_, "Untimed runs first (the first one builds the plan)")
      ->check(CLI::NonNegativeNumber);
  cmd_->add_option("--seed", seed_, "Seed of the Gaussian inputs (plus the batch size)");
  cmd_->add_option("-i,--input", inputs_,
                   "Time these inputs (.npy, .pb, images; as in `engine run`) instead of random "
                   "ones; the batch is theirs");
  cmd_->add_flag("--json", json_, "Print one JSON object on stdout");
  cmd_->add_flag("--profile", profile_, "Time every node (summed over the timed runs)");
  cmd_->add_option("--profile-top", profile_top_, "Print only the N slowest nodes (0: all)")
      ->check(CLI::NonNegativeNumber);
  pre_.add(cmd_);
  quant_.add(cmd_);
}

int BenchCommand::run() {
  const Model fp32 = Model::load(model_.model, model_options(model_));
  const bool prequantized = fp32.is_quantized();

  std::vector<std::string> precs;
  for (const auto& p : precisions_)
    if (std::find(precs.begin(), precs.end(), p) == precs.end()) precs.push_back(p);
  if (precs.empty()) precs = {model_.int8 || prequantized ? "int8" : "fp32"};
  const bool has_int8 = std::find(precs.begin(), precs.end(), "int8") != precs.end();
  ENGINE_CHECK(!prequantized || !has_int8 || precs.size() == 1, model_.model,
               " is already quantized (QDQ/QLinear ops): it runs in INT8 only, use --precision "
               "int8");
  ENGINE_CHECK(!prequantized || has_int8, model_.model,
               " is already quantized (QDQ/QLinear ops): it cannot run in FP32, use --precision "
               "int8");
  QuantFlags q = quant_;
  if (has_int8 && !prequantized && q.calib.empty() && q.calib_noise == 0 && q.stats_in.empty()) {
    q.calib_noise = 8;
    std::cerr << "note: no calibration source given; calibrating INT8 on 8 Gaussian-noise inputs "
                 "(fine for speed, not for accuracy; --calib/--calib-noise/--stats-in to change)\n";
  }
  const int threads = model_.threads > 0 ? model_.threads : omp_get_max_threads();

  // Inputs per batch size: from files (their batch) or Gaussian noise.
  std::vector<std::pair<int64_t, std::vector<Tensor>>> feeds;
  if (!inputs_.empty()) {
    std::vector<Tensor> in = load_run_inputs(fp32, inputs_, pre_, false, 0, seed_, nullptr);
    const int64_t b = in.at(0).rank() > 0 ? in[0].dim(0) : 1;
    ENGINE_CHECK(batches_.empty() || (batches_.size() == 1 && batches_[0] == b),
                 "--input gives batch ", b, "; do not ask for other --batch sizes");
    feeds.emplace_back(b, std::move(in));
  } else {
    std::vector<int64_t> bs = batches_;
    if (bs.empty()) {  // a fixed-batch model runs its own batch by default
      const Dims& s = fp32.inputs().at(0).shape;
      bs = {!s.empty() && s[0] > 0 ? s[0] : 1};
    }
    for (int64_t b : bs) feeds.emplace_back(b, random_inputs(fp32, b, seed_));
  }

  std::vector<Result> results;
  for (const std::string& prec : precs) {
    const Model m = prec == "int8" ? quantize_with_flags(fp32, q, pre_) : fp32;
    for (const auto& [batch, in] : feeds) {
      // Per-node times: the gap between consecutive after_node calls (the first node's gap
      // starts when run() is called, so it includes the plan lookup and arena allocation).
      std::vector<NodeTime> nodes;
      std::unordered_map<const Node*, size_t> index;
      Clock::time_point last;
      RunOptions ro;
      ro.threads = threads;
      ro.run_unused = false;  // profile what a plain run executes
      if (profile_) {
        ro.after_node = [&](const Node& n, const std::vector<Tensor*>&) {
          const auto now = Clock::now();
          auto [it, added] = index.try_emplace(&n, nodes.size());
          if (added) nodes.push_back({n.op_type, n.name, 0});
          nodes[it->second].ms += ms_between(last, now);
          last = now;
        };
      }
      // The warm-up runs as the timed runs do (with after_node, the batch is not split, so it
      // needs its own plan): no plan is built inside the timed runs.
      for (int w = 0; w < warmup_; ++w) {
        last = Clock::now();
        m.run(in, ro);
      }
      nodes.clear();
      index.clear();
      std::vector<double> lat;
      const auto start = Clock::now();
      const double cpu0 = cpu_ms();
      for (;;) {
        const auto t = Clock::now();
        last = t;
        m.run(in, ro);
        const auto end = Clock::now();
        lat.push_back(ms_between(t, end));
        if (iters_ > 0 ? int64_t(lat.size()) >= iters_ : ms_between(start, end) >= seconds_ * 1e3)
          break;
      }
      Result r;
      // Below ~0.9, other processes took cores from us: the times are not trustworthy.
      r.cpu_share = (cpu_ms() - cpu0) / (ms_between(start, Clock::now()) * threads);
      r.batch = batch;
      r.precision = prec;
      r.runs = lat.size();
      for (double v : lat) r.mean += v / double(lat.size());
      std::sort(lat.begin(), lat.end());
      r.min = lat.front();
      r.median = percentile(lat, 50);
      r.p90 = percentile(lat, 90);
      r.p99 = percentile(lat, 99);
      r.images_per_s = double(batch) * 1e3 / r.median;
      r.rss_mb = peak_rss_mb();
      std::stable_sort(nodes.begin(), nodes.end(),
                       [](const NodeTime& a, const NodeTime& b) { return a.ms > b.ms; });
      for (const auto& n : nodes) r.profile_total += n.ms;
      r.profile = std::move(nodes);
      results.push_back(std::move(r));
    }
  }

  // Speed-up of every other precision over the first one, per batch size (ratio of medians).
  nlohmann::json ratios = nlohmann::json::array();
  for (const Result& r : results) {
    if (r.precision == precs[0]) continue;
    for (const Result& base : results)
      if (base.precision == precs[0] && base.batch == r.batch)
        ratios.push_back({{"batch", r.batch},
                          {"precision", r.precision},
                          {"baseline", base.precision},
                          {"speedup", base.median / r.median}});
  }
  const size_t top = profile_top_ > 0 ? size_t(profile_top_) : SIZE_MAX;

  if (json_) {
    nlohmann::json j;
    j["model"] = model_.model;
    j["threads"] = threads;
    j["warmup"] = warmup_;
    if (iters_ > 0)
      j["iters"] = iters_;
    else
      j["seconds"] = seconds_;
    j["peak_rss_note"] = "process peak so far (getrusage ru_maxrss), not per batch size";
    j["results"] = nlohmann::json::array();
    for (const Result& r : results) {
      nlohmann::json e = {{"batch", r.batch},        {"precision", r.precision},
                          {"threads", threads},      {"runs", r.runs},
                          {"median_ms", r.median},   {"p90_ms", r.p90},
                          {"p99_ms", r.p99},         {"min_ms", r.min},
                          {"mean_ms", r.mean},       {"images_per_s", r.images_per_s},
                          {"peak_rss_mb", r.rss_mb}, {"cpu_share", r.cpu_share}};
      if (profile_) {
        e["profile"] = nlohmann::json::array();
        for (size_t k = 0; k < r.profile.size() && k < top; ++k)
          e["profile"].push_back({{"op_type", r.profile[k].op_type},
                                  {"name", r.profile[k].name},
                                  {"ms", r.profile[k].ms},
                                  {"percent", 100.0 * r.profile[k].ms / r.profile_total}});
      }
      j["results"].push_back(std::move(e));
    }
    j["ratios"] = ratios;
    std::cout << j.dump() << "\n";
    return 0;
  }

  std::cout << "model " << model_.model << ", " << threads << " threads, " << warmup_
            << " warm-up runs, "
            << (iters_ > 0 ? str_cat(iters_, " timed runs") : str_cat(seconds_, " s"))
            << " per batch size\n"
            << std::left << std::setw(10) << "precision" << std::right << std::setw(7) << "batch"
            << std::setw(7) << "runs" << std::setw(11) << "median ms" << std::setw(10) << "p90 ms"
            << std::setw(10) << "p99 ms" << std::setw(12) << "images/s" << std::setw(14)
            << "peak RSS MB" << std::setw(7) << "CPU"
            << "\n";
  for (const Result& r : results)
    std::cout << std::left << std::setw(10) << r.precision << std::right << std::setw(7) << r.batch
              << std::setw(7) << r.runs << std::setw(11) << fixed(r.median, 3) << std::setw(10)
              << fixed(r.p90, 3) << std::setw(10) << fixed(r.p99, 3) << std::setw(12)
              << fixed(r.images_per_s, 1) << std::setw(14) << fixed(r.rss_mb, 1) << std::setw(6)
              << fixed(100 * r.cpu_share, 0) << "%\n";
  std::cout << "(percentiles: nearest rank; peak RSS: process peak so far; CPU: CPU time / "
               "(wall time x threads), well below 100% means other processes took cores)\n";
  for (const auto& x : ratios)
    std::cout << "batch " << x["batch"].get<int64_t>() << ": " << x["precision"].get<std::string>()
              << " speed-up over " << x["baseline"].get<std::string>() << " "
              << fixed(x["speedup"].get<double>(), 2) << "x (" << x["baseline"].get<std::string>()
              << " median / " << x["precision"].get<std::string>() << " median)\n";
  if (!profile_) return 0;
  for (const Result& r : results) {
    std::cout << "\nprofile: " << r.precision << ", batch " << r.batch << ", summed over " << r.runs
              << " runs: " << fixed(r.profile_total, 2) << " ms in " << r.profile.size()
              << " nodes\n"
              << std::left << std::setw(22) << "op type" << std::setw(40) << "node" << std::right
              << std::setw(12) << "ms" << std::setw(8) << "%"
              << "\n";
    for (size_t k = 0; k < r.profile.size() && k < top; ++k) {
      const NodeTime& n = r.profile[k];
      std::cout << std::left << std::setw(22) << n.op_type << std::setw(40)
                << (n.name.empty() ? "(unnamed)" : n.name) << std::right << std::setw(12)
                << fixed(n.ms, 3) << std::setw(8) << fixed(100.0 * n.ms / r.profile_total, 1)
                << "\n";
    }
  }
  return 0;
}

}  // namespace engine::cli
