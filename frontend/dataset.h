// Labeled image datasets for `engine eval` and quantization calibration: item i is a preprocessed
// float32 [C,H,W] image and an integer label (-1 when the source has no labels).
//
// Sources:
//   - an image folder with one sub-folder per class (classes = sorted sub-folder names, label =
//     index; images found recursively, as torchvision's ImageFolder), or a folder of images
//     without sub-folders (unlabeled);
//   - a list file with lines "<image path> <label>", paths relative to the list file's folder;
//   - IDX images ([N,H,W] or [N,H,W,C] uint8, plain or gzip) + IDX labels ([N], integer),
//     decompressed once into memory;
//   - .npy: uint8 [N,H,W] / [N,H,W,C] images (preprocessed like any image), or float32 [N,C,H,W]
//     already-preprocessed inputs (used as they are; the preprocessing options are ignored),
//     with labels from a 1-D integer .npy or IDX file;
//   - explicit image files (unlabeled).
// Whether a label fits the model's classes is the caller's check. Reading items is thread-safe.
#pragma once

#include <string>
#include <vector>

#include "core/tensor.h"
#include "frontend/image.h"
#include "frontend/preprocess.h"

namespace engine {

struct Sample {
  Tensor image;    // float32 [C,H,W]
  int label = -1;  // -1: unlabeled
};

class Dataset {
 public:
  static Dataset from_folder(const std::string& dir, const PreprocessOptions& pre,
                             const ImageLimits& limits = {});
  static Dataset from_list(const std::string& list_file, const PreprocessOptions& pre,
                           const ImageLimits& limits = {});
  // `labels` may be empty (unlabeled, e.g. calibration images).
  static Dataset from_idx(const std::string& images, const std::string& labels,
                          const PreprocessOptions& pre);
  static Dataset from_npy(const std::string& data, const std::string& labels,
                          const PreprocessOptions& pre);
  static Dataset from_images(const std::vector<std::string>& paths, const PreprocessOptions& pre,
                             const ImageLimits& limits = {});
  // Chooses from what `path` is: a directory, a .npy file, an IDX file (plain or gzip), an image
  // file, or else a list file. `labels` (an IDX or .npy label file) only goes with IDX and .npy
  // data; folders and list files carry their own labels.
  static Dataset open(const std::string& path, const std::string& labels,
                      const PreprocessOptions& pre, const ImageLimits& limits = {});

  int64_t size() const { return size_; }
  bool labeled() const { return !labels_.empty(); }
  int label(int64_t i) const;
  Tensor image(int64_t i) const;  // preprocessed float32 [C,H,W]
  Sample get(int64_t i) const { return {image(i), label(i)}; }
  // The decoded uint8 [H,W,C] image before preprocessing (not for float .npy data).
  Tensor raw_image(int64_t i) const;
  // "dir/cat/1.jpg" or "t10k-images-idx3-ubyte.gz[17]", for messages and per-item reports.
  std::string item_name(int64_t i) const;
  const std::vector<std::string>& class_names() const { return class_names_; }  // folders only
  const std::string& source() const { return source_; }
  const PreprocessOptions& preprocess() const { return pre_; }
  void set_preprocess(const PreprocessOptions& pre);

 private:
  Dataset() = default;
  void check_index(int64_t i) const;
  Tensor raw_view(int64_t i) const;  // like raw_image, but array items are borrowed, not copied
  void set_labels(const std::string& labels_path);

  std::string source_;
  PreprocessOptions pre_;
  ImageLimits limits_;
  int64_t size_ = 0;
  std::vector<std::string> paths_;  // image files, or
  Tensor array_;                    // uint8 [N,H,W(,C)] images or float32 [N,C,H,W] inputs
  std::vector<int> labels_;         // empty = unlabeled
  std::vector<std::string> class_names_;
};

struct Batch {
  Tensor images;            // float32 [N,C,H,W]
  std::vector<int> labels;  // N labels (-1 when unlabeled)
};

// Items [start, start + count) as one batch, loaded in parallel (OpenMP). All items must
// preprocess to the same [C,H,W]; otherwise the error names the first odd item.
Batch make_batch(const Dataset& ds, int64_t start, int64_t count);
// b with zero items (label -1) appended up to n items, for models with a fixed batch size.
Batch pad_batch(Batch b, int64_t n);

}  // namespace engine
