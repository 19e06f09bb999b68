// IDX files, the format of MNIST and Fashion-MNIST, plain or gzip-compressed.
//
// Layout: bytes 0x00 0x00 <type> <ndims>, then ndims big-endian uint32 dims, then the elements in
// C order, big-endian. Types: 0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32, 0x0D float32,
// 0x0E float64. Gzip files (magic 0x1f 0x8b) are decompressed on the fly with zlib.
#pragma once

#include <string>

#include "core/tensor.h"

namespace engine {

// Reads the whole file: a tensor of the declared type and shape (e.g. uint8 [10000,28,28]).
// The declared size is checked against the data before memory is committed to it.
Tensor read_idx(const std::string& path);

// True when the file starts with an IDX magic, directly or after gzip decompression.
bool is_idx_file(const std::string& path);

// Reads ranges of items (slices along dim 0) without holding the whole file. Reading forward is
// cheap; reading backwards in a gzip file restarts decompression from the beginning. Not
// thread-safe: use one reader per thread.
class IdxReader {
 public:
  explicit IdxReader(const std::string& path);
  ~IdxReader();
  IdxReader(const IdxReader&) = delete;
  IdxReader& operator=(const IdxReader&) = delete;

  const std::string& path() const { return path_; }
  DType dtype() const { return dtype_; }
  const Dims& shape() const { return shape_; }  // full shape; dim 0 counts items
  int64_t size() const { return shape_[0]; }    // number of items
  Dims item_shape() const { return Dims(shape_.begin() + 1, shape_.end()); }
  bool compressed() const { return compressed_; }

  // Items [start, start + count) as a tensor of shape [count, item_shape...].
  Tensor read(int64_t start, int64_t count);
  // Throws if the file holds more data after the last declared item.
  void check_no_trailing_data();

 private:
  void read_bytes(void* dst, size_t n, const char* what);
  std::string path_;
  void* gz_ = nullptr;  // gzFile (zlib reads plain files through the same interface)
  bool compressed_ = false;
  DType dtype_ = DType::Undefined;
  Dims shape_;
  size_t header_bytes_ = 0;
  size_t item_bytes_ = 0;
  int64_t pos_ = 0;  // uncompressed byte offset of the stream
};

}  // namespace engine
