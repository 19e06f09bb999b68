#include "cli/inputs.h"

#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>

#include "frontend/idx.h"
#include "frontend/image.h"
#include "frontend/npy.h"
#include "frontend/tensor_proto.h"

namespace engine::cli {

namespace fs = std::filesystem;

PreprocessOptions make_preprocess(const PreprocessFlags& f, const Model& m) {
  PreprocessOptions o;
  o.resize = f.resize;
  o.crop = f.crop;
  o.pad = f.pad;
  o.channels = f.channels;
  o.bgr = f.bgr;
  if (!f.scale.empty()) parse_scale(f.scale, o);
  if (!f.mean.empty()) o.mean = parse_float_list(f.mean, "--mean");
  if (!f.std.empty()) o.std = parse_float_list(f.std, "--std");
  // Default channel count: what the model's first input wants ([N,C,H,W]).
  if (o.channels == 0 && !m.inputs().empty()) {
    const Dims& s = m.inputs()[0].shape;
    if (s.size() == 4 && (s[1] == 1 || s[1] == 3)) o.channels = int(s[1]);
  }
  validate_preprocess(o);
  return o;
}

std::vector<std::string> read_label_names(const std::string& path) {
  std::ifstream f(path);
  ENGINE_CHECK(f, path, ": cannot open the label file");
  std::vector<std::string> v;
  std::string line;
  while (std::getline(f, line)) {
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
    v.push_back(line);
  }
  return v;
}

namespace {

// Stacks [C,H,W] items into [N,C,H,W]; all items must have the same shape.
Tensor stack(const std::vector<Tensor>& items, const std::vector<std::string>& names) {
  const Dims& s = items.at(0).shape();
  for (size_t i = 1; i < items.size(); ++i)
    ENGINE_CHECK(items[i].shape() == s, names[i], ": preprocessed to ", dims_str(items[i].shape()),
                 " but ", names[0], " gave ", dims_str(s),
                 "; use --resize/--crop so all images have one size");
  Dims out{int64_t(items.size())};
  out.insert(out.end(), s.begin(), s.end());
  Tensor t(items[0].dtype(), out);
  char* dst = static_cast<char*>(t.raw());
  for (const Tensor& it : items) {
    std::memcpy(dst, it.raw(), it.nbytes());
    dst += it.nbytes();
  }
  return t;
}

// Adds a batch dim when a tensor has one dim fewer than the model input.
Tensor fit_rank(Tensor t, const IoInfo& in, const std::string& path) {
  if (!in.shape.empty() && t.rank() + 1 == int(in.shape.size())) {
    Dims d{1};
    d.insert(d.end(), t.shape().begin(), t.shape().end());
    t = t.reshaped(d);
  }
  ENGINE_CHECK(t.dtype() == in.dtype, path, ": holds ", dtype_name(t.dtype()), " but input '",
               in.name, "' needs ", dtype_name(in.dtype));
  return t;
}

// Reads one input argument: a tensor file, or images (possibly several items from IDX).
Tensor load_arg(const std::vector<std::string>& paths, const IoInfo& in,
                const PreprocessOptions& pre, int64_t batch, std::vector<std::string>* names) {
  std::vector<Tensor> items;
  std::vector<std::string> item_names;
  std::vector<Tensor> tensors;
  for (const std::string& p : paths) {
    ENGINE_CHECK(fs::exists(p), p, ": no such file");
    const std::string ext = fs::path(p).extension().string();
    if (ext == ".npy") {
      tensors.push_back(fit_rank(read_npy(p), in, p));
    } else if (ext == ".pb") {
      tensors.push_back(fit_rank(read_tensor_pb(p), in, p));
    } else if (has_image_extension(p)) {
      items.push_back(preprocess_image(load_image(p), pre));
      item_names.push_back(p);
    } else if (is_idx_file(p)) {
      IdxReader r(p);
      ENGINE_CHECK(r.dtype() == DType::U8 && (r.shape().size() == 3 || r.shape().size() == 4), p,
                   ": IDX input must hold uint8 images [N,H,W] or [N,H,W,C], got ",
                   dtype_name(r.dtype()), " ", dims_str(r.shape()));
      const int64_t n = std::min<int64_t>(batch > 0 ? batch : 1, r.size());
      Tensor all = r.read(0, n);
      Dims item = r.item_shape();
      const int64_t per = checked_numel(item);
      for (int64_t i = 0; i < n; ++i) {
        Tensor img = Tensor::view(DType::U8, item, all.data<uint8_t>() + i * per);
        items.push_back(preprocess_image(img, pre));
        item_names.push_back(p + "[" + std::to_string(i) + "]");
      }
    } else {
      fail(p, ": unknown input type (expected an image, .npy, .pb or IDX file)");
    }
  }
  ENGINE_CHECK(items.empty() || tensors.empty(), "do not mix image and tensor inputs for '",
               in.name, "'");
  if (!items.empty()) {
    if (names) *names = item_names;
    return fit_rank(stack(items, item_names), in, item_names[0]);
  }
  if (tensors.size() == 1) return tensors[0];
  // Several tensors: concatenate along the batch dim.
  std::vector<std::string> tn(paths.begin(), paths.end());
  std::vector<Tensor> squeezed;
  for (const Tensor& t : tensors) {
    ENGINE_CHECK(t.rank() >= 1 && t.dim(0) == 1, "several tensor files for '", in.name,
                 "' must each hold one item (batch 1)");
    squeezed.push_back(t.reshaped(Dims(t.shape().begin() + 1, t.shape().end())));
  }
  return stack(squeezed, tn);
}

}  // namespace

std::vector<Tensor> load_run_inputs(const Model& m, const std::vector<std::string>& args,
                                    const PreprocessFlags& pref, bool random, int64_t batch,
                                    uint64_t seed, std::vector<std::string>* names) {
  const std::vector<IoInfo> ins = m.inputs();
  std::vector<Tensor> result(ins.size());
  if (random) {
    ENGINE_CHECK(args.empty(), "give either --input or --random, not both");
    std::mt19937_64 rng(seed);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    const auto shapes = m.concrete_input_shapes(batch > 0 ? batch : 1);
    for (size_t i = 0; i < ins.size(); ++i) {
      ENGINE_CHECK(ins[i].dtype == DType::F32, "--random: input '", ins[i].name, "' is ",
                   dtype_name(ins[i].dtype), "; only float32 inputs can be random");
      Tensor t;
      try {
        t = Tensor(DType::F32, shapes[i]);
      } catch (const Error& e) {
        fail("--random: input '", ins[i].name, "': ", e.what());
      }
      for (int64_t k = 0; k < t.numel(); ++k) t.data<float>()[k] = nd(rng);
      result[i] = t;
    }
    return result;
  }
  ENGINE_CHECK(!args.empty(), "no input: give --input FILE (image, .npy, .pb, IDX) or --random");
  const PreprocessOptions pre = make_preprocess(pref, m);
  std::vector<std::vector<std::string>> per_input(ins.size());
  for (const std::string& a : args) {
    auto eq = a.find('=');
    if (eq != std::string::npos && !fs::exists(a)) {
      const std::string name = a.substr(0, eq);
      size_t k = 0;
      while (k < ins.size() && ins[k].name != name) ++k;
      ENGINE_CHECK(k < ins.size(), "--input ", a, ": the model has no input named '", name, "'");
      per_input[k].push_back(a.substr(eq + 1));
    } else {
      ENGINE_CHECK(ins.size() == 1, "the model has ", ins.size(),
                   " inputs: give each as --input NAME=FILE");
      per_input[0].push_back(a);
    }
  }
  for (size_t i = 0; i < ins.size(); ++i) {
    ENGINE_CHECK(!per_input[i].empty(), "no file given for input '", ins[i].name, "'");
    result[i] = load_arg(per_input[i], ins[i], pre, batch, i == 0 ? names : nullptr);
  }
  return result;
}

}  // namespace engine::cli
