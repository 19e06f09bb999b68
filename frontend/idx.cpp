#include "frontend/idx.h"

#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <vector>

namespace engine {

namespace {

// Deflate cannot expand data by more than about 1032:1, so a gzip file of n bytes cannot hold an
// IDX payload larger than this; a header declaring more is lying, and we say so before reading.
constexpr uint64_t kMaxDeflateRatio = 1032;

DType idx_dtype(int code) {
  switch (code) {
    case 0x08:
      return DType::U8;
    case 0x09:
      return DType::I8;
    case 0x0B:
      return DType::I16;
    case 0x0C:
      return DType::I32;
    case 0x0D:
      return DType::F32;
    case 0x0E:
      return DType::F64;
    default:
      return DType::Undefined;
  }
}

gzFile gz(void* p) {
  return static_cast<gzFile>(p);
}

std::string hex_bytes(const unsigned char* b, size_t n) {
  static const char* digits = "0123456789abcdef";
  std::string s;
  for (size_t i = 0; i < n; ++i) {
    if (i) s += ' ';
    s += digits[b[i] >> 4];
    s += digits[b[i] & 15];
  }
  return s;
}

void byteswap(void* data, size_t n, size_t esize) {
  auto* p = static_cast<unsigned char*>(data);
  for (size_t i = 0; i < n; ++i, p += esize)
    for (size_t a = 0, b = esize - 1; a < b; ++a, --b) std::swap(p[a], p[b]);
}

}  // namespace

IdxReader::IdxReader(const std::string& path) : path_(path) {
  std::error_code ec;
  const uint64_t file_size = std::filesystem::file_size(path, ec);
  if (ec) fail(path, ": cannot read IDX file: ", ec.message());
  gz_ = gzopen(path.c_str(), "rb");
  if (!gz_) fail(path, ": cannot open IDX file: ", std::strerror(errno));
  try {
    gzbuffer(gz(gz_), 1 << 17);
    compressed_ = gzdirect(gz(gz_)) == 0;
    unsigned char magic[4];
    const int got = gzread(gz(gz_), magic, 4);
    if (got < 0) {
      int errnum = 0;
      const char* msg = gzerror(gz(gz_), &errnum);
      fail(path, ": corrupt gzip data: ", errnum == Z_ERRNO ? std::strerror(errno) : msg);
    }
    if (got != 4)
      fail(path, ": not an IDX file (", compressed_ ? "decompressed data" : "file",
           " is shorter than the 4-byte magic)");
    dtype_ = idx_dtype(magic[2]);
    if (magic[0] != 0 || magic[1] != 0 || dtype_ == DType::Undefined || magic[3] == 0)
      fail(path, ": not an IDX file (first bytes ", hex_bytes(magic, 4),
           ", expected 00 00 <type 08/09/0b/0c/0d/0e> <ndims >= 1>)");
    const int ndims = magic[3];
    std::vector<unsigned char> dim_bytes(size_t(ndims) * 4);
    if (gzread(gz(gz_), dim_bytes.data(), unsigned(dim_bytes.size())) != int(dim_bytes.size()))
      fail(path, ": truncated IDX header (", ndims, " dimensions declared)");
    for (int i = 0; i < ndims; ++i) {
      const unsigned char* b = &dim_bytes[size_t(i) * 4];
      shape_.push_back(int64_t(uint32_t(b[0]) << 24 | uint32_t(b[1]) << 16 | uint32_t(b[2]) << 8 |
                               uint32_t(b[3])));
    }
    header_bytes_ = 4 + dim_bytes.size();
    pos_ = int64_t(header_bytes_);

    const size_t esize = dtype_size(dtype_);
    int64_t numel = 0;
    try {
      numel = checked_numel(shape_);
    } catch (const Error& e) {
      fail(path, ": IDX header declares an impossible shape: ", e.what());
    }
    if (uint64_t(numel) > uint64_t(INT64_MAX) / esize)
      fail(path, ": IDX header declares shape ", dims_str(shape_), " of ", dtype_name(dtype_),
           ", more bytes than can be addressed");
    const uint64_t total = uint64_t(numel) * esize;
    if (!compressed_ && header_bytes_ + total != file_size)
      fail(path, ": header declares shape ", dims_str(shape_), " (", dtype_name(dtype_), ", ",
           total, " bytes after the ", header_bytes_, "-byte header) but the file holds ",
           file_size < header_bytes_ ? 0 : file_size - header_bytes_, " bytes of data");
    if (compressed_ && total > file_size * kMaxDeflateRatio + 4096)
      fail(path, ": header declares shape ", dims_str(shape_), " (", dtype_name(dtype_), ", ",
           total, " bytes) but a ", file_size,
           "-byte gzip file cannot decompress to that much; the file is corrupt");
    // With zero items nothing is ever read, so the item size does not matter.
    item_bytes_ = shape_[0] > 0 ? size_t(total / uint64_t(shape_[0])) : 0;
  } catch (...) {
    gzclose(gz(gz_));
    throw;
  }
}

IdxReader::~IdxReader() {
  if (gz_) gzclose(gz(gz_));
}

void IdxReader::read_bytes(void* dst, size_t n, const char* what) {
  auto* p = static_cast<unsigned char*>(dst);
  size_t done = 0;
  while (done < n) {
    const unsigned chunk = unsigned(std::min<size_t>(n - done, size_t(1) << 30));
    const int got = gzread(gz(gz_), p + done, chunk);
    if (got < 0) {
      int errnum = 0;
      const char* msg = gzerror(gz(gz_), &errnum);
      fail(path_, ": ", compressed_ ? "gzip decompression" : "read", " failed while reading ", what,
           " at byte ", pos_ + int64_t(done), ": ", errnum == Z_ERRNO ? std::strerror(errno) : msg);
    }
    if (got == 0) {
      int errnum = 0;
      const char* msg = gzerror(gz(gz_), &errnum);
      fail(path_, ": data ends at byte ", pos_ + int64_t(done), " while reading ", what,
           " but the header declares shape ", dims_str(shape_), " (", dtype_name(dtype_), ")",
           errnum != Z_OK ? std::string(" (") + msg + ")" : std::string());
    }
    done += size_t(got);
  }
  pos_ += int64_t(n);
}

Tensor IdxReader::read(int64_t start, int64_t count) {
  ENGINE_CHECK(start >= 0 && count >= 0 && start <= size() && count <= size() - start, path_,
               ": item range [", start, ", ", start + count, ") is outside the file's ", size(),
               " items");
  const int64_t offset = int64_t(header_bytes_) + start * int64_t(item_bytes_);
  if (offset != pos_) {
    if (gzseek(gz(gz_), z_off_t(offset), SEEK_SET) != z_off_t(offset)) {
      int errnum = 0;
      const char* msg = gzerror(gz(gz_), &errnum);
      fail(path_, ": cannot seek to item ", start, " (byte ", offset, "): ", msg);
    }
    pos_ = offset;
  }
  Dims shape = item_shape();
  shape.insert(shape.begin(), count);
  const size_t bytes = size_t(count) * item_bytes_;
  const std::string what = str_cat("items [", start, ", ", start + count, ")");
  Tensor t;
  if (!compressed_) {
    // The file size was checked against the header, so this allocation is backed by real data.
    t = Tensor(dtype_, shape);
    read_bytes(t.raw(), bytes, what.c_str());
  } else {
    // A gzip header can still lie within the deflate ratio; grow the buffer with the data
    // actually decompressed instead of trusting the declared size.
    std::vector<unsigned char> buf;
    buf.reserve(std::min<size_t>(bytes, size_t(64) << 20));
    constexpr size_t kChunk = size_t(16) << 20;
    while (buf.size() < bytes) {
      const size_t old = buf.size();
      const size_t n = std::min(kChunk, bytes - old);
      buf.resize(old + n);
      read_bytes(buf.data() + old, n, what.c_str());
    }
    t = Tensor(dtype_, shape);
    if (bytes) std::memcpy(t.raw(), buf.data(), bytes);
  }
  const size_t esize = dtype_size(dtype_);
  if (esize > 1) byteswap(t.raw(), size_t(t.numel()), esize);
  return t;
}

void IdxReader::check_no_trailing_data() {
  const int64_t end = int64_t(header_bytes_) + size() * int64_t(item_bytes_);
  if (pos_ != end) {
    if (gzseek(gz(gz_), z_off_t(end), SEEK_SET) != z_off_t(end))
      fail(path_, ": data ends before byte ", end, " but the header declares shape ",
           dims_str(shape_), " (", dtype_name(dtype_), ")");
    pos_ = end;
  }
  unsigned char extra;
  const int got = gzread(gz(gz_), &extra, 1);
  if (got > 0)
    fail(path_, ": holds more data than its header declares (shape ", dims_str(shape_), ", ",
         dtype_name(dtype_), ", data should end at byte ", end, ")");
  if (got < 0) {
    int errnum = 0;
    const char* msg = gzerror(gz(gz_), &errnum);
    fail(path_, ": corrupt data after byte ", end, ": ", msg);
  }
}

Tensor read_idx(const std::string& path) {
  IdxReader r(path);
  Tensor t = r.read(0, r.size());
  r.check_no_trailing_data();
  return t;
}

bool is_idx_file(const std::string& path) {
  gzFile f = gzopen(path.c_str(), "rb");
  if (!f) return false;
  unsigned char m[4];
  const bool ok = gzread(f, m, 4) == 4 && m[0] == 0 && m[1] == 0 &&
                  idx_dtype(m[2]) != DType::Undefined && m[3] != 0;
  gzclose(f);
  return ok;
}

}  // namespace engine
