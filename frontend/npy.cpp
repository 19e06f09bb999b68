#include "frontend/npy.h"

#include <bit>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>

#include "frontend/tensor_proto.h"

namespace engine {

static_assert(std::endian::native == std::endian::little, "npy I/O assumes a little-endian host");

namespace {

constexpr char kMagic[] = "\x93NUMPY";
constexpr size_t kMagicLen = 6;
// numpy itself refuses headers above 10000 bytes by default; 1 MiB leaves room for odd writers
// while keeping a hostile header_len from driving a huge allocation.
constexpr uint32_t kMaxHeaderLen = 1u << 20;
constexpr int kMaxRank = 64;  // numpy's NPY_MAXDIMS

struct FileCloser {
  void operator()(FILE* f) const { std::fclose(f); }
};
using FilePtr = std::unique_ptr<FILE, FileCloser>;

// Parser for the header, a Python dict literal such as
//   {'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }
struct HeaderParser {
  const std::string& path;
  const std::string& s;
  size_t pos = 0;

  [[noreturn]] void error(const std::string& what) const {
    fail(path, ": malformed .npy header (", what, " at offset ", pos, "): ", s);
  }
  void skip_ws() {
    while (pos < s.size() && (s[pos] == ' ' || s[pos] == '\t' || s[pos] == '\n' || s[pos] == '\r'))
      ++pos;
  }
  bool accept(char c) {
    skip_ws();
    if (pos < s.size() && s[pos] == c) {
      ++pos;
      return true;
    }
    return false;
  }
  void expect(char c) {
    if (!accept(c)) error(std::string("expected '") + c + "'");
  }
  std::string parse_string() {
    skip_ws();
    if (pos >= s.size() || (s[pos] != '\'' && s[pos] != '"')) error("expected a quoted string");
    const char q = s[pos++];
    const size_t end = s.find(q, pos);
    if (end == std::string::npos) error("unterminated string");
    std::string out = s.substr(pos, end - pos);
    pos = end + 1;
    return out;
  }
  bool parse_bool() {
    skip_ws();
    if (s.compare(pos, 4, "True") == 0) {
      pos += 4;
      return true;
    }
    if (s.compare(pos, 5, "False") == 0) {
      pos += 5;
      return false;
    }
    error("expected True or False");
  }
  int64_t parse_dim() {
    skip_ws();
    if (pos >= s.size() || s[pos] < '0' || s[pos] > '9') error("expected a non-negative integer");
    int64_t v = 0;
    while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9') {
      const int d = s[pos++] - '0';
      if (v > (INT64_MAX - d) / 10) error("dimension too large");
      v = v * 10 + d;
    }
    if (pos < s.size() && s[pos] == 'L') ++pos;  // Python 2 long suffix
    return v;
  }
  Dims parse_shape() {
    expect('(');
    Dims dims;
    while (!accept(')')) {
      if (int(dims.size()) >= kMaxRank) error("more than 64 dimensions");
      dims.push_back(parse_dim());
      if (!accept(',')) {
        expect(')');
        break;
      }
    }
    return dims;
  }
};

struct NpyHeader {
  DType dtype = DType::Undefined;
  bool swap = false;  // data is big-endian
  Dims shape;
  size_t data_offset = 0;
};

DType dtype_from_descr(const std::string& path, const std::string& descr, bool* swap) {
  if (descr.size() < 3) fail(path, ": unsupported .npy dtype '", descr, "'");
  const char order = descr[0];
  const std::string code = descr.substr(1);
  DType t = DType::Undefined;
  if (code == "f2")
    t = DType::F16;
  else if (code == "f4")
    t = DType::F32;
  else if (code == "f8")
    t = DType::F64;
  else if (code == "i1")
    t = DType::I8;
  else if (code == "i2")
    t = DType::I16;
  else if (code == "i4")
    t = DType::I32;
  else if (code == "i8")
    t = DType::I64;
  else if (code == "u1")
    t = DType::U8;
  else if (code == "u2")
    t = DType::U16;
  else if (code == "u4")
    t = DType::U32;
  else if (code == "u8")
    t = DType::U64;
  else if (code == "b1")
    t = DType::Bool;
  if (t == DType::Undefined || (order != '<' && order != '>' && order != '|' && order != '='))
    fail(path, ": unsupported .npy dtype '", descr,
         "' (supported: f2 f4 f8 i1 i2 i4 i8 u1 u2 u4 u8 b1)");
  *swap = order == '>' && dtype_size(t) > 1;
  return t;
}

NpyHeader read_header(const std::string& path, FILE* f, uint64_t file_size) {
  unsigned char pre[kMagicLen + 2];
  if (file_size < sizeof(pre) || std::fread(pre, 1, sizeof(pre), f) != sizeof(pre) ||
      std::memcmp(pre, kMagic, kMagicLen) != 0)
    fail(path, ": not a .npy file (missing \\x93NUMPY magic)");
  const int major = pre[kMagicLen], minor = pre[kMagicLen + 1];
  if (major < 1 || major > 3)
    fail(path, ": unsupported .npy format version ", major, ".", minor, " (1.x to 3.x supported)");
  uint32_t header_len = 0;
  unsigned char len_bytes[4] = {0, 0, 0, 0};
  const size_t len_size = major == 1 ? 2 : 4;
  if (std::fread(len_bytes, 1, len_size, f) != len_size)
    fail(path, ": truncated .npy preamble (", file_size, " bytes)");
  for (size_t i = len_size; i-- > 0;) header_len = (header_len << 8) | len_bytes[i];
  const uint64_t prefix = sizeof(pre) + len_size;
  if (header_len > kMaxHeaderLen || prefix + header_len > file_size)
    fail(path, ": .npy header length ", header_len, " is larger than the file (", file_size,
         " bytes) or the 1 MiB limit");
  std::string text(header_len, '\0');
  if (header_len && std::fread(text.data(), 1, header_len, f) != header_len)
    fail(path, ": could not read the .npy header: ", std::strerror(errno));

  NpyHeader h;
  h.data_offset = size_t(prefix + header_len);
  HeaderParser p{path, text};
  bool have_descr = false, have_order = false, have_shape = false, fortran = false;
  p.expect('{');
  while (!p.accept('}')) {
    const std::string key = p.parse_string();
    p.expect(':');
    if (key == "descr") {
      p.skip_ws();
      if (p.pos < text.size() && text[p.pos] == '[')
        fail(path, ": structured .npy dtypes are not supported (descr is a list)");
      h.dtype = dtype_from_descr(path, p.parse_string(), &h.swap);
      have_descr = true;
    } else if (key == "fortran_order") {
      fortran = p.parse_bool();
      have_order = true;
    } else if (key == "shape") {
      h.shape = p.parse_shape();
      have_shape = true;
    } else {
      p.error("unexpected key '" + key + "'");
    }
    if (!p.accept(',')) {
      p.expect('}');
      break;
    }
  }
  if (!have_descr || !have_order || !have_shape)
    fail(path, ": .npy header lacks ",
         !have_descr   ? "'descr'"
         : !have_order ? "'fortran_order'"
                       : "'shape'",
         ": ", text);
  if (fortran)
    fail(path, ": fortran_order=True arrays are not supported; save a C-order array ",
         "(numpy.ascontiguousarray) instead");
  return h;
}

void byteswap(void* data, size_t n, size_t esize) {
  auto* p = static_cast<unsigned char*>(data);
  for (size_t i = 0; i < n; ++i, p += esize)
    for (size_t a = 0, b = esize - 1; a < b; ++a, --b) std::swap(p[a], p[b]);
}

const char* descr_for(DType t) {
  switch (t) {
    case DType::F16:
      return "<f2";
    case DType::F32:
      return "<f4";
    case DType::F64:
      return "<f8";
    case DType::I8:
      return "|i1";
    case DType::I16:
      return "<i2";
    case DType::I32:
      return "<i4";
    case DType::I64:
      return "<i8";
    case DType::U8:
      return "|u1";
    case DType::U16:
      return "<u2";
    case DType::U32:
      return "<u4";
    case DType::U64:
      return "<u8";
    case DType::Bool:
      return "|b1";
    default:
      return nullptr;
  }
}

}  // namespace

Tensor read_npy(const std::string& path) {
  std::error_code ec;
  const uint64_t file_size = std::filesystem::file_size(path, ec);
  if (ec) fail(path, ": cannot read .npy file: ", ec.message());
  FilePtr f(std::fopen(path.c_str(), "rb"));
  if (!f) fail(path, ": cannot open .npy file: ", std::strerror(errno));
  const NpyHeader h = read_header(path, f.get(), file_size);

  const int64_t numel = [&] {
    try {
      return checked_numel(h.shape);
    } catch (const Error& e) {
      fail(path, ": .npy header declares an invalid shape: ", e.what());
    }
  }();
  const size_t esize = dtype_size(h.dtype);
  const uint64_t have = file_size - h.data_offset;
  if (uint64_t(numel) > have / esize || uint64_t(numel) * esize != have)
    fail(path, ": header declares shape ", dims_str(h.shape), " (", dtype_name(h.dtype), ", ",
         uint64_t(numel) <= UINT64_MAX / esize ? std::to_string(uint64_t(numel) * esize)
                                               : std::string("too many"),
         " bytes) but the file holds ", have, " bytes of data");

  Tensor t(h.dtype, h.shape);
  if (t.nbytes() && std::fread(t.raw(), 1, t.nbytes(), f.get()) != t.nbytes())
    fail(path, ": could not read ", t.nbytes(), " bytes of .npy data: ",
         std::ferror(f.get()) ? std::strerror(errno) : "unexpected end of file");
  if (h.swap) byteswap(t.raw(), size_t(numel), esize);
  if (h.dtype == DType::Bool) {
    // Only 0/1 are valid bool bytes in C++; normalize whatever the file holds.
    auto* b = static_cast<unsigned char*>(t.raw());
    for (int64_t i = 0; i < numel; ++i) b[i] = b[i] != 0;
  }
  return t;
}

void write_npy(const std::string& path, const Tensor& t) {
  const char* descr = descr_for(t.dtype());
  if (!descr) fail(path, ": cannot write a tensor of type ", dtype_name(t.dtype()), " as .npy");
  std::string shape = "(";
  for (size_t i = 0; i < t.shape().size(); ++i) {
    if (i) shape += ", ";
    shape += std::to_string(t.shape()[i]);
  }
  if (t.shape().size() == 1) shape += ",";
  shape += ")";
  std::string header =
      std::string("{'descr': '") + descr + "', 'fortran_order': False, 'shape': " + shape + ", }";
  // Pad with spaces and a final '\n' so the data starts on a 64-byte boundary, as numpy does.
  const bool v2 = header.size() + 64 > 65535;  // 64: room for the padding below
  const size_t prefix = v2 ? 12 : 10;
  header.append(63 - (prefix + header.size()) % 64, ' ');
  header += '\n';

  std::string pre(kMagic, kMagicLen);
  pre += char(v2 ? 2 : 1);
  pre += char(0);
  const uint32_t len = uint32_t(header.size());
  for (size_t i = 0; i < (v2 ? 4u : 2u); ++i) pre += char((len >> (8 * i)) & 0xff);

  write_file_atomic(path, [&](std::ostream& os) {
    os.write(pre.data(), std::streamsize(pre.size()));
    os.write(header.data(), std::streamsize(header.size()));
    os.write(static_cast<const char*>(t.raw()), std::streamsize(t.nbytes()));
  });
}

bool is_npy_file(const std::string& path) {
  FilePtr f(std::fopen(path.c_str(), "rb"));
  char buf[kMagicLen];
  return f && std::fread(buf, 1, kMagicLen, f.get()) == kMagicLen &&
         std::memcmp(buf, kMagic, kMagicLen) == 0;
}

std::string npy_file_stem(std::string tensor_name) {
  for (char& c : tensor_name)
    if (c == '/' || c == '\\' || c == ':') c = '_';
  return tensor_name;
}

}  // namespace engine
