#include "frontend/dataset.h"

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "frontend/idx.h"
#include "frontend/npy.h"

namespace fs = std::filesystem;

namespace engine {

namespace {

bool is_hidden(const fs::path& p) {
  const std::string n = p.filename().string();
  return !n.empty() && n[0] == '.';
}

// All image files under `dir` (recursively, following symlinks, skipping hidden entries),
// sorted by path so the order does not depend on the file system.
std::vector<std::string> find_images(const fs::path& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  fs::recursive_directory_iterator it(dir, fs::directory_options::follow_directory_symlink, ec),
      end;
  if (ec) fail(dir.string(), ": cannot list directory: ", ec.message());
  for (; it != end; it.increment(ec)) {
    if (ec) fail(dir.string(), ": cannot list directory: ", ec.message());
    if (is_hidden(it->path())) {
      if (it->is_directory(ec)) it.disable_recursion_pending();
      continue;
    }
    if (it->is_regular_file(ec) && has_image_extension(it->path().string()))
      out.push_back(it->path().string());
  }
  if (ec) fail(dir.string(), ": cannot list directory: ", ec.message());
  std::sort(out.begin(), out.end());
  return out;
}

bool is_gzip(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  char m[2] = {0, 0};
  return f.read(m, 2) && m[0] == '\x1f' && m[1] == '\x8b';
}

std::string trim(const std::string& s) {
  const size_t a = s.find_first_not_of(" \t\r\n");
  if (a == std::string::npos) return "";
  const size_t b = s.find_last_not_of(" \t\r\n");
  return s.substr(a, b - a + 1);
}

// A non-negative decimal integer that fits an int, or -1.
int parse_label(const std::string& s) {
  if (s.empty() || s.size() > 10) return -1;
  int64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return -1;
    v = v * 10 + (c - '0');
  }
  return v > INT_MAX ? -1 : int(v);
}

std::vector<int> read_labels(const std::string& path) {
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) fail(path, ": label file not found");
  Tensor t;
  if (is_npy_file(path))
    t = read_npy(path);
  else if (is_idx_file(path))
    t = read_idx(path);
  else
    fail(path, ": not a label file (expected IDX, plain or gzip, or .npy)");
  ENGINE_CHECK(t.rank() == 1 && dtype_is_integer(t.dtype()), path,
               ": labels must be a 1-D integer array, got ", dtype_name(t.dtype()), " ",
               dims_str(t.shape()));
  std::vector<int> out(size_t(t.numel()));
  for (int64_t i = 0; i < t.numel(); ++i) {
    const int64_t v = t.get_as_int(i);
    ENGINE_CHECK(v >= 0 && v <= INT_MAX, path, ": label ", i, " is ", v,
                 ", expected a non-negative class index");
    out[size_t(i)] = int(v);
  }
  return out;
}

}  // namespace

Dataset Dataset::from_folder(const std::string& dir, const PreprocessOptions& pre,
                             const ImageLimits& limits) {
  validate_preprocess(pre);
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) fail(dir, ": not a directory");
  Dataset ds;
  ds.source_ = dir;
  ds.pre_ = pre;
  ds.limits_ = limits;
  std::vector<std::string> classes;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec))
    if (!is_hidden(it->path()) && it->is_directory(ec))
      classes.push_back(it->path().filename().string());
  if (ec) fail(dir, ": cannot list directory: ", ec.message());
  std::sort(classes.begin(), classes.end());
  if (classes.empty()) {
    ds.paths_ = find_images(dir);  // flat folder: unlabeled images
  } else {
    for (size_t c = 0; c < classes.size(); ++c) {
      for (std::string& p : find_images(fs::path(dir) / classes[c])) {
        ds.paths_.push_back(std::move(p));
        ds.labels_.push_back(int(c));
      }
    }
    ds.class_names_ = classes;
  }
  ENGINE_CHECK(!ds.paths_.empty(), dir, ": no images found (looked for .jpg .jpeg .png .bmp .gif ",
               ".tga .psd .pgm .ppm .pnm files", classes.empty() ? "" : " in class sub-folders",
               ")");
  ds.size_ = int64_t(ds.paths_.size());
  return ds;
}

Dataset Dataset::from_list(const std::string& list_file, const PreprocessOptions& pre,
                           const ImageLimits& limits) {
  validate_preprocess(pre);
  std::ifstream in(list_file);
  if (!in) fail(list_file, ": cannot open list file: ", std::strerror(errno));
  Dataset ds;
  ds.source_ = list_file;
  ds.pre_ = pre;
  ds.limits_ = limits;
  const fs::path base = fs::path(list_file).parent_path();
  std::string line;
  for (int lineno = 1; std::getline(in, line); ++lineno) {
    const std::string t = trim(line);
    if (t.empty() || t[0] == '#') continue;
    const size_t sp = t.find_last_of(" \t");
    const int label = sp == std::string::npos ? -1 : parse_label(t.substr(sp + 1));
    if (label < 0)
      fail(list_file, ":", lineno,
           ": expected '<image path> <label>' with a non-negative integer label, got '",
           t.size() > 200 ? t.substr(0, 200) + "..." : t, "'");
    const fs::path rel = trim(t.substr(0, sp));
    const fs::path p = rel.is_absolute() ? rel : base / rel;
    std::error_code ec;
    if (!fs::is_regular_file(p, ec))
      fail(list_file, ":", lineno, ": image '", rel.string(), "' not found (looked for ",
           p.string(), ")");
    ds.paths_.push_back(p.string());
    ds.labels_.push_back(label);
  }
  if (in.bad()) fail(list_file, ": read error");
  ENGINE_CHECK(!ds.paths_.empty(), list_file, ": list file names no images");
  ds.size_ = int64_t(ds.paths_.size());
  return ds;
}

void Dataset::set_labels(const std::string& labels_path) {
  if (labels_path.empty()) return;
  labels_ = read_labels(labels_path);
  ENGINE_CHECK(int64_t(labels_.size()) == size_, labels_path, ": holds ", labels_.size(),
               " labels but ", source_, " holds ", size_, " images");
}

Dataset Dataset::from_idx(const std::string& images, const std::string& labels,
                          const PreprocessOptions& pre) {
  validate_preprocess(pre);
  Dataset ds;
  ds.source_ = images;
  ds.pre_ = pre;
  ds.array_ = read_idx(images);
  const Tensor& a = ds.array_;
  ENGINE_CHECK(a.dtype() == DType::U8 &&
                   (a.rank() == 3 || (a.rank() == 4 && (a.dim(3) == 1 || a.dim(3) == 3))),
               images, ": expected uint8 images [N,H,W] or [N,H,W,C] with C 1 or 3, got ",
               dtype_name(a.dtype()), " ", dims_str(a.shape()));
  ENGINE_CHECK(a.dim(0) > 0 && a.dim(1) > 0 && a.dim(2) > 0, images, ": holds no images (shape ",
               dims_str(a.shape()), ")");
  ds.size_ = a.dim(0);
  ds.set_labels(labels);
  return ds;
}

Dataset Dataset::from_npy(const std::string& data, const std::string& labels,
                          const PreprocessOptions& pre) {
  validate_preprocess(pre);
  Dataset ds;
  ds.source_ = data;
  ds.pre_ = pre;
  ds.array_ = read_npy(data);
  const Tensor& a = ds.array_;
  const bool images = a.dtype() == DType::U8 &&
                      (a.rank() == 3 || (a.rank() == 4 && (a.dim(3) == 1 || a.dim(3) == 3)));
  const bool inputs = a.dtype() == DType::F32 && a.rank() == 4;
  ENGINE_CHECK(images || inputs, data,
               ": expected uint8 images [N,H,W] / [N,H,W,C] (C 1 or 3) or preprocessed float32 "
               "inputs [N,C,H,W], got ",
               dtype_name(a.dtype()), " ", dims_str(a.shape()));
  ENGINE_CHECK(a.numel() > 0, data, ": holds no data (shape ", dims_str(a.shape()), ")");
  ds.size_ = a.dim(0);
  ds.set_labels(labels);
  return ds;
}

Dataset Dataset::from_images(const std::vector<std::string>& paths, const PreprocessOptions& pre,
                             const ImageLimits& limits) {
  validate_preprocess(pre);
  ENGINE_CHECK(!paths.empty(), "no image files given");
  for (const std::string& p : paths) {
    std::error_code ec;
    if (!fs::is_regular_file(p, ec)) fail(p, ": image file not found");
  }
  Dataset ds;
  ds.source_ = paths.size() == 1 ? paths[0] : str_cat(paths.size(), " image files");
  ds.pre_ = pre;
  ds.limits_ = limits;
  ds.paths_ = paths;
  ds.size_ = int64_t(paths.size());
  return ds;
}

Dataset Dataset::open(const std::string& path, const std::string& labels,
                      const PreprocessOptions& pre, const ImageLimits& limits) {
  std::error_code ec;
  if (!fs::exists(path, ec)) fail(path, ": no such file or directory");
  const bool dir = fs::is_directory(path, ec);
  if (!dir && is_npy_file(path)) return from_npy(path, labels, pre);
  // A gzip file that is not a readable IDX file still goes to the IDX reader for its message.
  if (!dir && (is_idx_file(path) || is_gzip(path))) return from_idx(path, labels, pre);
  ENGINE_CHECK(labels.empty(), path, ": a separate label file (", labels,
               ") only goes with IDX or .npy data; folders and list files carry their labels");
  if (dir) return from_folder(path, pre, limits);
  if (has_image_extension(path)) return from_images({path}, pre, limits);
  return from_list(path, pre, limits);
}

void Dataset::check_index(int64_t i) const {
  ENGINE_CHECK(i >= 0 && i < size_, source_, ": item ", i, " out of range (", size_, " items)");
}

int Dataset::label(int64_t i) const {
  check_index(i);
  return labels_.empty() ? -1 : labels_[size_t(i)];
}

std::string Dataset::item_name(int64_t i) const {
  check_index(i);
  if (!paths_.empty()) return paths_[size_t(i)];
  return str_cat(source_, "[", i, "]");
}

Tensor Dataset::raw_view(int64_t i) const {
  check_index(i);
  if (!paths_.empty()) return load_image(paths_[size_t(i)], limits_);
  ENGINE_CHECK(array_.dtype() == DType::U8, source_,
               ": holds preprocessed float32 inputs, not raw images");
  Dims item(array_.shape().begin() + 1, array_.shape().end());
  const size_t bytes = size_t(checked_numel(item));
  // Borrowed slice of the shared array, only ever read (raw_image hands out a copy).
  return Tensor::view(DType::U8, item,
                      const_cast<uint8_t*>(array_.data<uint8_t>()) + size_t(i) * bytes);
}

Tensor Dataset::raw_image(int64_t i) const {
  Tensor t = raw_view(i);
  return paths_.empty() ? t.clone() : t;
}

Tensor Dataset::image(int64_t i) const {
  check_index(i);
  if (array_.defined() && array_.dtype() == DType::F32) {
    Dims item(array_.shape().begin() + 1, array_.shape().end());
    const size_t n = size_t(checked_numel(item));
    Tensor t(DType::F32, item);
    std::memcpy(t.raw(), array_.data<float>() + size_t(i) * n, n * sizeof(float));
    return t;
  }
  const Tensor raw = raw_view(i);
  try {
    return preprocess_image(raw, pre_);
  } catch (const Error& e) {
    fail(item_name(i), ": ", e.what());
  }
}

void Dataset::set_preprocess(const PreprocessOptions& pre) {
  validate_preprocess(pre);
  pre_ = pre;
}

Batch make_batch(const Dataset& ds, int64_t start, int64_t count) {
  ENGINE_CHECK(start >= 0 && count > 0 && start < ds.size() && count <= ds.size() - start,
               ds.source(), ": batch [", start, ", ", start + count, ") is outside the ", ds.size(),
               " items");
  Batch b;
  b.labels.resize(size_t(count));
  const Tensor first = ds.image(start);
  Dims shape = first.shape();
  shape.insert(shape.begin(), count);
  b.images = Tensor(DType::F32, shape);
  const size_t n = size_t(first.numel());
  float* dst = b.images.data<float>();
  std::memcpy(dst, first.data<float>(), n * sizeof(float));
  b.labels[0] = ds.label(start);

  // Exceptions must not leave the OpenMP region: keep the failure of the lowest index, so the
  // message does not depend on thread timing.
  std::string error;
  int64_t error_at = count;
#pragma omp parallel for schedule(dynamic)
  for (int64_t k = 1; k < count; ++k) {
    try {
      const Tensor t = ds.image(start + k);
      if (t.shape() != first.shape())
        fail(ds.item_name(start + k), ": preprocessed to ", dims_str(t.shape()), " but ",
             ds.item_name(start), " gave ", dims_str(first.shape()),
             "; set resize/crop so that all images get the same size");
      std::memcpy(dst + size_t(k) * n, t.data<float>(), n * sizeof(float));
      b.labels[size_t(k)] = ds.label(start + k);
    } catch (const std::exception& e) {
#pragma omp critical(engine_make_batch_error)
      if (k < error_at) {
        error_at = k;
        error = e.what();
      }
    }
  }
  if (error_at < count) throw Error(error);
  return b;
}

Batch pad_batch(Batch b, int64_t n) {
  if (b.images.rank() == 0 || b.images.dim(0) >= n) return b;
  Dims d = b.images.shape();
  d[0] = n;
  Tensor padded(DType::F32, d);  // zero-filled
  std::memcpy(padded.raw(), b.images.raw(), b.images.nbytes());
  b.images = padded;
  b.labels.resize(size_t(n), -1);
  return b;
}

}  // namespace engine
