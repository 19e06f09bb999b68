// Input decoding: .npy, IDX, images, preprocessing and datasets.
#include <doctest/doctest.h>
#include <stb/stb_image_write.h>  // implementation in libstb
#include <unistd.h>
#include <zlib.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <sstream>
#include <string>
#include <vector>

#include "frontend/dataset.h"
#include "frontend/idx.h"
#include "frontend/image.h"
#include "frontend/npy.h"
#include "frontend/preprocess.h"
#include "tests/test_data.h"

namespace fs = std::filesystem;
using engine::DType;
using engine::Tensor;

namespace {

// A fresh directory under /tmp, removed with everything in it at the end of the test.
struct TempDir {
  fs::path path;
  TempDir() {
    static int counter = 0;
    path = fs::temp_directory_path() /
           ("engine_io_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  std::string operator/(const std::string& name) const { return (path / name).string(); }
};

void write_file(const std::string& path, const std::string& bytes) {
  std::ofstream f(path, std::ios::binary);
  f.write(bytes.data(), std::streamsize(bytes.size()));
  REQUIRE(f.good());
}

std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

void write_gz(const std::string& path, const std::string& bytes) {
  gzFile f = gzopen(path.c_str(), "wb");
  REQUIRE(f != nullptr);
  REQUIRE(gzwrite(f, bytes.data(), unsigned(bytes.size())) == int(bytes.size()));
  REQUIRE(gzclose(f) == Z_OK);
}

std::string bytes(std::initializer_list<int> b) {
  std::string s;
  for (int v : b) s += char(v);
  return s;
}

std::string be32(uint32_t v) {
  return bytes({int(v >> 24), int((v >> 16) & 255), int((v >> 8) & 255), int(v & 255)});
}

// IDX header: 00 00 <type> <ndims> then big-endian dims.
std::string idx_header(int type, std::initializer_list<uint32_t> dims) {
  std::string s = bytes({0, 0, type, int(dims.size())});
  for (uint32_t d : dims) s += be32(d);
  return s;
}

// A .npy file with the given header dict text (no padding needed by readers) and data.
std::string npy_bytes(const std::string& dict, const std::string& data, int major = 1) {
  std::string s = "\x93NUMPY";
  s += char(major);
  s += char(0);
  const uint32_t len = uint32_t(dict.size());
  s += char(len & 255);
  s += char((len >> 8) & 255);
  if (major >= 2) {
    s += char((len >> 16) & 255);
    s += char(len >> 24);
  }
  return s + dict + data;
}

template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const engine::Error& e) {
    return e.what();
  }
  return "<no engine::Error thrown>";
}

// Checks that `expr` throws engine::Error whose message contains every given string.
#define CHECK_ERROR(expr, ...)                                                                \
  do {                                                                                        \
    const std::string msg_ = error_of([&] { (void)(expr); });                                 \
    for (const char* part_ : {__VA_ARGS__}) {                                                 \
      CHECK_MESSAGE(msg_.find(part_) != std::string::npos, "expected \"", std::string(part_), \
                    "\" in error: ", msg_);                                                   \
    }                                                                                         \
  } while (0)

const std::string kFashion = "/usr/share/datasets/fashion-mnist";

// Fashion-MNIST is a required test dependency (Debian package dataset-fashion-mnist).
std::string fashion(const std::string& name) {
  const std::string p = kFashion + "/" + name;
  if (!fs::exists(p)) FAIL(p << " missing: apt-get install dataset-fashion-mnist");
  return p;
}

engine::PreprocessOptions fashion_preprocess() {
  engine::PreprocessOptions o;
  o.pad = 2;
  o.channels = 3;
  engine::parse_scale("1/255", o);
  o.mean = engine::parse_float_list("0.2860405969887955", "--mean");
  o.std = engine::parse_float_list("0.35302424451492254", "--std");
  return o;
}

Tensor u8_image(engine::Dims shape, const std::vector<uint8_t>& v) {
  return Tensor::from_vector<uint8_t>(std::move(shape), v);
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// .npy

TEST_CASE("npy: write then read back every dtype, header laid out as numpy does") {
  TempDir dir;
  const std::string p = dir / "a.npy";
  const Tensor f = Tensor::from_vector<float>({2, 3}, {1.5f, -2, 0, 3.25f, 1e-30f, -7});
  engine::write_npy(p, f);
  const std::string raw = read_file(p);
  // 10-byte preamble + 118-byte header = 128: data starts 64-byte aligned.
  REQUIRE(raw.size() == 128 + 24);
  CHECK(raw.substr(0, 10) == std::string("\x93NUMPY\x01\x00\x76\x00", 10));
  const std::string dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";
  CHECK(raw.substr(10, dict.size()) == dict);
  CHECK(raw[127] == '\n');
  CHECK(raw[126] == ' ');
  const Tensor g = engine::read_npy(p);
  CHECK(g.dtype() == DType::F32);
  CHECK(g.shape() == engine::Dims{2, 3});
  CHECK(g.to_float_vector() == f.to_float_vector());
  // No temporary file left behind.
  int files = 0;
  for (auto& e : fs::directory_iterator(dir.path)) files += e.is_regular_file();
  CHECK(files == 1);

  // 1-D shapes are written "(n,)", scalars "()".
  engine::write_npy(p, Tensor::from_vector<int64_t>({4}, {-1, 0, int64_t(1) << 40, 7}));
  CHECK(read_file(p).find("'shape': (4,), }") != std::string::npos);
  Tensor i64 = engine::read_npy(p);
  CHECK(i64.dtype() == DType::I64);
  CHECK(i64.to_int_vector() == std::vector<int64_t>{-1, 0, int64_t(1) << 40, 7});

  engine::write_npy(p, Tensor::scalar<bool>(true));
  CHECK(read_file(p).find("'descr': '|b1', 'fortran_order': False, 'shape': ()") !=
        std::string::npos);
  Tensor b = engine::read_npy(p);
  CHECK(b.dtype() == DType::Bool);
  CHECK(b.rank() == 0);
  CHECK(b.data<bool>()[0] == true);

  engine::write_npy(p, Tensor(DType::U8, {0, 5}));
  Tensor e = engine::read_npy(p);
  CHECK(e.dtype() == DType::U8);
  CHECK(e.shape() == engine::Dims{0, 5});
}

TEST_CASE("npy: more dtypes round trip") {
  TempDir dir;
  const std::string p = dir / "b.npy";
  engine::write_npy(p, Tensor::from_vector<double>({1, 1, 2}, {3.141592653589793, -0.5}));
  Tensor d = engine::read_npy(p);
  CHECK(d.dtype() == DType::F64);
  CHECK(d.shape() == engine::Dims{1, 1, 2});
  CHECK(d.data<double>()[0] == 3.141592653589793);
  CHECK(d.data<double>()[1] == -0.5);
  engine::write_npy(p, Tensor::from_vector<int8_t>({3}, {-128, 0, 127}));
  CHECK(engine::read_npy(p).to_int_vector() == std::vector<int64_t>{-128, 0, 127});
  engine::write_npy(p, Tensor::from_vector<uint16_t>({2}, {65535, 1}));
  CHECK(engine::read_npy(p).to_int_vector() == std::vector<int64_t>{65535, 1});
  engine::write_npy(p, Tensor::from_vector<int32_t>({2}, {-2147483647 - 1, 5}));
  CHECK(engine::read_npy(p).to_int_vector() == std::vector<int64_t>{-2147483648LL, 5});
  // Overwriting an existing file works.
  engine::write_npy(p, Tensor::from_vector<int16_t>({1}, {-300}));
  Tensor s = engine::read_npy(p);
  CHECK(s.dtype() == DType::I16);
  CHECK(s.to_int_vector() == std::vector<int64_t>{-300});
}

TEST_CASE("npy: hand-made files of versions 1, 2, 3, big-endian, Python 2 longs") {
  TempDir dir;
  const std::string p = dir / "h.npy";
  write_file(p, npy_bytes("{'descr': '<i2', 'fortran_order': False, 'shape': (3,), }",
                          bytes({1, 0, 0xff, 0xff, 0, 0x80})));
  CHECK(engine::read_npy(p).to_int_vector() == std::vector<int64_t>{1, -1, -32768});

  write_file(p, npy_bytes("{'descr': '>i4', 'fortran_order': False, 'shape': (2,), }",
                          bytes({0, 0, 1, 2, 0xff, 0xff, 0xff, 0xfe})));
  CHECK(engine::read_npy(p).to_int_vector() == std::vector<int64_t>{258, -2});

  // Version 2.0: 4-byte header length; a float64 scalar 1.5 = 0x3FF8000000000000.
  write_file(p, npy_bytes("{'descr': '<f8', 'fortran_order': False, 'shape': (), }",
                          bytes({0, 0, 0, 0, 0, 0, 0xf8, 0x3f}), 2));
  Tensor s = engine::read_npy(p);
  CHECK(s.rank() == 0);
  CHECK(s.get_as_double(0) == 1.5);

  // Version 3.0 (utf-8 header); float16 1.0 = 0x3C00, -2.0 = 0xC000, kept as F16.
  write_file(p, npy_bytes("{\"descr\": \"<f2\", \"fortran_order\": False, \"shape\": (2,)}",
                          bytes({0, 0x3c, 0, 0xc0}), 3));
  Tensor h = engine::read_npy(p);
  CHECK(h.dtype() == DType::F16);
  CHECK(h.get_as_double(0) == 1.0);
  CHECK(h.get_as_double(1) == -2.0);

  // Bool bytes other than 0/1 are normalized.
  write_file(
      p, npy_bytes("{'descr': '|b1', 'fortran_order': False, 'shape': (3,), }", bytes({0, 1, 5})));
  CHECK(engine::read_npy(p).to_int_vector() == std::vector<int64_t>{0, 1, 1});

  write_file(p, npy_bytes("{'descr': '|u1', 'fortran_order': False, 'shape': (2L, 1L), }",
                          bytes({200, 7})));
  Tensor u = engine::read_npy(p);
  CHECK(u.shape() == engine::Dims{2, 1});
  CHECK(u.to_int_vector() == std::vector<int64_t>{200, 7});
  CHECK(engine::is_npy_file(p));
  CHECK_FALSE(engine::is_npy_file(dir / "missing.npy"));
}

TEST_CASE("npy: bad and hostile files give errors naming the file") {
  TempDir dir;
  const std::string p = dir / "x.npy";
  const std::string f4 = "{'descr': '<f4', 'fortran_order': False, 'shape': ";
  write_file(p, npy_bytes(f4 + "(3,), }", std::string(8, '\0')));
  CHECK_ERROR(engine::read_npy(p), "x.npy", "header declares shape [3]", "holds 8 bytes");
  write_file(p, npy_bytes(f4 + "(1,), }", std::string(8, '\0')));
  CHECK_ERROR(engine::read_npy(p), "x.npy", "header declares shape [1]", "holds 8 bytes");
  // Absurd dims: refused before any allocation.
  write_file(p, npy_bytes(f4 + "(100000, 100000, 100000), }", std::string(4, '\0')));
  CHECK_ERROR(engine::read_npy(p), "x.npy", "[100000,100000,100000]", "holds 4 bytes");
  write_file(p, npy_bytes(f4 + "(4000000000000, 4000000000000), }", std::string(4, '\0')));
  CHECK_ERROR(engine::read_npy(p), "x.npy", "invalid shape");
  write_file(p, npy_bytes(f4 + "(99999999999999999999,), }", ""));
  CHECK_ERROR(engine::read_npy(p), "x.npy", "dimension too large");
  write_file(p, npy_bytes(f4 + "(-1,), }", ""));
  CHECK_ERROR(engine::read_npy(p), "x.npy", "malformed .npy header");

  write_file(p, npy_bytes("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }",
                          std::string(16, '\0')));
  CHECK_ERROR(engine::read_npy(p), "x.npy", "fortran_order=True");
  write_file(p, npy_bytes("{'descr': '<c8', 'fortran_order': False, 'shape': (1,), }",
                          std::string(8, '\0')));
  CHECK_ERROR(engine::read_npy(p), "x.npy", "unsupported .npy dtype '<c8'");
  write_file(p, npy_bytes("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,), }",
                          std::string(4, '\0')));
  CHECK_ERROR(engine::read_npy(p), "x.npy", "structured");
  write_file(p, npy_bytes("{'descr': '<f4', 'fortran_order': False, }", ""));
  CHECK_ERROR(engine::read_npy(p), "x.npy", "lacks 'shape'");
  write_file(p, npy_bytes("{'descr': '<f4', 'fortran_order': Maybe, 'shape': (1,), }", ""));
  CHECK_ERROR(engine::read_npy(p), "x.npy", "expected True or False");
  write_file(p, npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (1,)", ""));
  CHECK_ERROR(engine::read_npy(p), "x.npy", "malformed");
  write_file(p, npy_bytes(f4 + "(1,), }", std::string(4, '\0'), 4));
  CHECK_ERROR(engine::read_npy(p), "x.npy", "version 4.0");
  // Header length pointing past the end of the file.
  write_file(p, std::string("\x93NUMPY\x01\x00\xff\xff{}", 12));
  CHECK_ERROR(engine::read_npy(p), "x.npy", "header length 65535");
  write_file(p, "PK\x03\x04 this is a zip, not npy");
  CHECK_ERROR(engine::read_npy(p), "x.npy", "not a .npy file");
  write_file(p, "\x93NUM");
  CHECK_ERROR(engine::read_npy(p), "x.npy", "not a .npy file");
  CHECK_ERROR(engine::read_npy(dir / "nope.npy"), "nope.npy", "cannot read");
  CHECK_ERROR(engine::read_npy(dir.path.string()), "cannot read");
}

TEST_CASE("npy: write errors") {
  TempDir dir;
  CHECK_ERROR(engine::write_npy(dir / "no/such/dir/a.npy", Tensor::scalar<float>(1)),
              "no/such/dir/a.npy");
  CHECK_ERROR(engine::write_npy(dir / "u.npy", Tensor()), "u.npy", "undefined");
  CHECK_FALSE(fs::exists(dir / "u.npy"));
}

TEST_CASE("npy: the shared reference inputs read as float32 [16,3,32,32]") {
  const std::string data = engine::test::test_data_dir();
  if (data.empty()) return;
  const Tensor t = engine::read_npy(data + "/models/fashion/reference/resnet18_fp32.input16.npy");
  CHECK(t.dtype() == DType::F32);
  CHECK(t.shape() == engine::Dims{16, 3, 32, 32});
}

// ---------------------------------------------------------------------------------------------
// IDX

TEST_CASE("idx: every element type, big-endian, plain and gzip") {
  TempDir dir;
  struct Case {
    std::string name;
    std::string file;
    DType dtype;
    engine::Dims shape;
    std::vector<double> values;
  };
  std::string u8data;
  for (int i = 0; i < 12; ++i) u8data += char(i);
  const std::vector<Case> cases = {
      {"u8",
       idx_header(0x08, {2, 2, 3}) + u8data,
       DType::U8,
       {2, 2, 3},
       {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}},
      {"i8", idx_header(0x09, {2}) + bytes({0x80, 0x7f}), DType::I8, {2}, {-128, 127}},
      {"i16",
       idx_header(0x0B, {3}) + bytes({0, 1, 0xff, 0xfe, 0x80, 0}),
       DType::I16,
       {3},
       {1, -2, -32768}},
      {"i32",
       idx_header(0x0C, {2}) + bytes({0, 1, 0, 0, 0xff, 0xff, 0xff, 0xff}),
       DType::I32,
       {2},
       {65536, -1}},
      {"f32",
       idx_header(0x0D, {1, 2}) + bytes({0x3f, 0x80, 0, 0, 0xc0, 0x40, 0, 0}),
       DType::F32,
       {1, 2},
       {1.0, -3.0}},
      {"f64",
       idx_header(0x0E, {1}) + bytes({0x40, 0x09, 0x21, 0xfb, 0x54, 0x44, 0x2d, 0x18}),
       DType::F64,
       {1},
       {3.141592653589793}},
  };
  for (const Case& c : cases) {
    for (bool gz : {false, true}) {
      CAPTURE(c.name);
      CAPTURE(gz);
      const std::string p = dir / (c.name + (gz ? ".gz" : ""));
      if (gz)
        write_gz(p, c.file);
      else
        write_file(p, c.file);
      CHECK(engine::is_idx_file(p));
      const Tensor t = engine::read_idx(p);
      CHECK(t.dtype() == c.dtype);
      CHECK(t.shape() == c.shape);
      for (size_t i = 0; i < c.values.size(); ++i)
        CHECK(t.get_as_double(int64_t(i)) == c.values[i]);
      engine::IdxReader r(p);
      CHECK(r.compressed() == gz);
      CHECK(r.size() == c.shape[0]);
    }
  }
}

TEST_CASE("idx: streaming reader reads ranges forwards and backwards") {
  TempDir dir;
  std::string data;
  for (int i = 0; i < 16; ++i) data += char(i);
  for (bool gz : {false, true}) {
    CAPTURE(gz);
    const std::string p = dir / (gz ? "r.gz" : "r.idx");
    const std::string file = idx_header(0x08, {4, 2, 2}) + data;
    if (gz)
      write_gz(p, file);
    else
      write_file(p, file);
    engine::IdxReader r(p);
    CHECK(r.shape() == engine::Dims{4, 2, 2});
    CHECK(r.item_shape() == engine::Dims{2, 2});
    Tensor a = r.read(1, 2);
    CHECK(a.shape() == engine::Dims{2, 2, 2});
    CHECK(a.to_int_vector() == std::vector<int64_t>{4, 5, 6, 7, 8, 9, 10, 11});
    CHECK(r.read(0, 1).to_int_vector() == std::vector<int64_t>{0, 1, 2, 3});
    CHECK(r.read(3, 1).to_int_vector() == std::vector<int64_t>{12, 13, 14, 15});
    CHECK(r.read(4, 0).shape() == engine::Dims{0, 2, 2});
    CHECK_ERROR(r.read(3, 2), "item range [3, 5)", "4 items");
    CHECK_ERROR(r.read(-1, 1), "outside");
    r.check_no_trailing_data();
  }
}

TEST_CASE("idx: corrupt and hostile files give errors naming the file") {
  TempDir dir;
  const std::string p = dir / "bad.idx";
  write_file(p, idx_header(0x08, {60000, 28, 28}) + std::string(10, '\0'));
  CHECK_ERROR(engine::read_idx(p), "bad.idx", "header declares shape [60000,28,28]",
              "47040000 bytes", "holds 10 bytes");
  write_file(p, idx_header(0x08, {0xffffffffu, 0xffffffffu, 0xffffffffu}) + "x");
  CHECK_ERROR(engine::read_idx(p), "bad.idx", "impossible shape");
  write_file(p, idx_header(0x08, {2}) + "abc");
  CHECK_ERROR(engine::read_idx(p), "bad.idx", "header declares shape [2]", "holds 3 bytes");
  write_file(p, "hello world, not idx");
  CHECK_ERROR(engine::read_idx(p), "bad.idx", "not an IDX file", "68 65 6c 6c");
  write_file(p, bytes({0, 0, 0x0A, 1, 0, 0, 0, 1, 5}));
  CHECK_ERROR(engine::read_idx(p), "bad.idx", "not an IDX file");
  write_file(p, bytes({0, 0, 8, 0}));
  CHECK_ERROR(engine::read_idx(p), "bad.idx", "not an IDX file");
  write_file(p, bytes({0, 0, 8}));
  CHECK_ERROR(engine::read_idx(p), "bad.idx", "shorter than the 4-byte magic");
  write_file(p, bytes({0, 0, 8, 3, 0, 0}));
  CHECK_ERROR(engine::read_idx(p), "bad.idx", "truncated IDX header");
  CHECK_ERROR(engine::read_idx(dir / "none.gz"), "none.gz", "cannot read");

  const std::string g = dir / "bad.gz";
  // 100 GB declared in a tiny gzip: rejected from the header, before reading.
  write_gz(g, idx_header(0x08, {100000, 1000, 1000}) + std::string(100, '\0'));
  CHECK_ERROR(engine::read_idx(g), "bad.gz", "[100000,1000,1000]", "cannot decompress");
  // Declared size plausible for the ratio, but the data ends early.
  write_gz(g, idx_header(0x08, {1000}) + std::string(10, '\0'));
  CHECK_ERROR(engine::read_idx(g), "bad.gz", "data ends at byte 18", "[1000]");
  write_gz(g, idx_header(0x08, {2}) + "abc");
  CHECK_ERROR(engine::read_idx(g), "bad.gz", "more data than its header declares");
  // A real gzip stream cut in half.
  std::string big = idx_header(0x08, {5000});
  for (int i = 0; i < 5000; ++i) big += char((i * 7919) % 251);
  write_gz(g, big);
  const std::string z = read_file(g);
  write_file(g, z.substr(0, z.size() / 2));
  CHECK_ERROR(engine::read_idx(g), "bad.gz");
  // Garbled deflate data.
  std::string garbled = z;
  for (size_t i = 30; i < garbled.size() - 8; i += 3) garbled[i] = char(garbled[i] ^ 0x5a);
  write_file(g, garbled);
  CHECK_ERROR(engine::read_idx(g), "bad.gz");
  // First deflate block header (byte 10, after the 10-byte gzip header) set to the reserved
  // block type 11.
  std::string early = z;
  early[10] = char(0xff);
  write_file(g, early);
  CHECK_ERROR(engine::read_idx(g), "bad.gz", "corrupt gzip data");
  CHECK_FALSE(engine::is_idx_file(dir / "none"));
}

TEST_CASE("idx: Fashion-MNIST test set") {
  const Tensor images = engine::read_idx(fashion("t10k-images-idx3-ubyte.gz"));
  CHECK(images.dtype() == DType::U8);
  CHECK(images.shape() == engine::Dims{10000, 28, 28});
  const Tensor labels = engine::read_idx(fashion("t10k-labels-idx1-ubyte.gz"));
  CHECK(labels.shape() == engine::Dims{10000});
  // The first test labels: ankle boot, pullover, trouser, trouser, shirt, trouser, coat, ...
  const std::vector<int64_t> first{9, 2, 1, 1, 6, 1, 4, 6, 5, 7};
  for (int i = 0; i < 10; ++i) CHECK(labels.get_as_int(i) == first[size_t(i)]);

  engine::IdxReader r(fashion("t10k-images-idx3-ubyte.gz"));
  CHECK(r.compressed());
  const Tensor last = r.read(9998, 2);
  CHECK(std::memcmp(last.data<uint8_t>(), images.data<uint8_t>() + 9998 * 784, 2 * 784) == 0);
  const Tensor again = r.read(0, 1);  // backwards: restarts decompression
  CHECK(std::memcmp(again.data<uint8_t>(), images.data<uint8_t>(), 784) == 0);
}

// ---------------------------------------------------------------------------------------------
// Images

TEST_CASE("image: PNM, BMP and PNG decode to HWC uint8 with RGB order") {
  TempDir dir;
  write_file(dir / "g.pgm", std::string("P5\n3 2\n255\n") + bytes({0, 10, 20, 30, 40, 255}));
  Tensor g = engine::load_image(dir / "g.pgm");
  CHECK(g.shape() == engine::Dims{2, 3, 1});
  CHECK(g.to_int_vector() == std::vector<int64_t>{0, 10, 20, 30, 40, 255});

  write_file(dir / "c.ppm", std::string("P6\n2 1\n255\n") + bytes({1, 2, 3, 4, 5, 6}));
  Tensor c = engine::load_image(dir / "c.ppm");
  CHECK(c.shape() == engine::Dims{1, 2, 3});
  CHECK(c.to_int_vector() == std::vector<int64_t>{1, 2, 3, 4, 5, 6});

  // 2x1 24-bit BMP: pixels stored B,G,R, rows padded to 4 bytes.
  std::string bmp = "BM" + bytes({62, 0, 0, 0, 0, 0, 0, 0, 54, 0, 0, 0});
  bmp += bytes({40, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 1, 0, 24, 0, 0, 0, 0, 0, 8, 0, 0, 0});
  bmp += bytes({0x13, 0x0b, 0, 0, 0x13, 0x0b, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0});
  bmp += bytes({30, 20, 10, 50, 100, 200, 0, 0});
  write_file(dir / "b.bmp", bmp);
  Tensor b = engine::load_image(dir / "b.bmp");
  CHECK(b.shape() == engine::Dims{1, 2, 3});
  CHECK(b.to_int_vector() == std::vector<int64_t>{10, 20, 30, 200, 100, 50});

  // RGBA -> RGB (alpha dropped), gray+alpha -> gray.
  const unsigned char rgba[] = {10, 20, 30, 0, 40, 50, 60, 255};
  REQUIRE(stbi_write_png((dir / "a.png").c_str(), 2, 1, 4, rgba, 8));
  Tensor a = engine::load_image(dir / "a.png");
  CHECK(a.shape() == engine::Dims{1, 2, 3});
  CHECK(a.to_int_vector() == std::vector<int64_t>{10, 20, 30, 40, 50, 60});
  const unsigned char ga[] = {7, 0, 9, 128};
  REQUIRE(stbi_write_png((dir / "ga.png").c_str(), 1, 2, 2, ga, 2));
  Tensor gat = engine::load_image(dir / "ga.png");
  CHECK(gat.shape() == engine::Dims{2, 1, 1});
  CHECK(gat.to_int_vector() == std::vector<int64_t>{7, 9});

  // Uncompressed 2x2 TGA, rows stored bottom-up, pixels B,G,R.
  write_file(dir / "t.tga", bytes({0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 2, 0, 24, 0}) +
                                bytes({1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}));
  Tensor tga = engine::load_image(dir / "t.tga");
  CHECK(tga.shape() == engine::Dims{2, 2, 3});
  CHECK(tga.to_int_vector() == std::vector<int64_t>{9, 8, 7, 12, 11, 10, 3, 2, 1, 6, 5, 4});

  const std::string mem = read_file(dir / "c.ppm");
  Tensor m = engine::decode_image(mem.data(), mem.size(), "memory.ppm");
  CHECK(m.to_int_vector() == std::vector<int64_t>{1, 2, 3, 4, 5, 6});
}

TEST_CASE("image: shared PNG and JPEG files") {
  const std::string data = engine::test::test_data_dir();
  if (data.empty()) return;
  const Tensor png = engine::load_image(data + "/demo/images/0_t-shirt-top.png");
  CHECK(png.dtype() == DType::U8);
  CHECK(png.shape() == engine::Dims{28, 28, 1});
  const Tensor jpg = engine::load_image(data + "/imagenet/images/n01440764_tench.JPEG");
  CHECK(jpg.shape() == engine::Dims{256, 256, 3});
}

TEST_CASE("image: corrupt files and limits give errors naming the file") {
  const std::string data = engine::test::test_data_dir();
  TempDir dir;
  write_file(dir / "empty.png", "");
  CHECK_ERROR(engine::load_image(dir / "empty.png"), "empty.png", "not a valid");
  write_file(dir / "text.png", "this is not an image at all");
  CHECK_ERROR(engine::load_image(dir / "text.png"), "text.png", "not a valid", "stb:");
  CHECK_ERROR(engine::load_image(dir / "missing.jpg"), "missing.jpg", "cannot read");
  // PNM with absurd dimensions: refused from the header.
  write_file(dir / "huge.pgm", "P5\n100000 100000\n255\n" + std::string(16, '\0'));
  CHECK_ERROR(engine::load_image(dir / "huge.pgm"), "huge.pgm", "100000x100000");
  // Header fine, pixels missing (stb_image itself would return uninitialized pixels).
  write_file(dir / "short.pgm", "P5\n30 30\n255\n" + std::string(16, '\0'));
  CHECK_ERROR(engine::load_image(dir / "short.pgm"), "short.pgm", "truncated PNM", "900 bytes",
              "has 16");
  write_file(dir / "short16.ppm", "P6 # comment\n2 2 65535\n" + std::string(23, '\0'));
  CHECK_ERROR(engine::load_image(dir / "short16.ppm"), "short16.ppm", "16-bit", "24 bytes",
              "has 23");
  const std::string tga_header = bytes({0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 2, 0, 24, 0});
  write_file(dir / "short.tga", tga_header + bytes({1, 2, 3}));
  CHECK_ERROR(engine::load_image(dir / "short.tga"), "short.tga", "truncated TGA", "12 bytes");
  write_file(dir / "x.hdr",
             "#?RADIANCE\nFORMAT=32-bit_rle_rgbe\n\n-Y 1 +X 1\n" + bytes({1, 2, 3, 4}));
  CHECK_ERROR(engine::load_image(dir / "x.hdr"), "x.hdr", "HDR");
  if (data.empty()) return;
  const std::string jpeg = read_file(data + "/imagenet/images/n01440764_tench.JPEG");
  REQUIRE(jpeg.size() > 1000);
  std::string bad = jpeg;
  bad[0] = 'X';  // SOI marker destroyed
  write_file(dir / "garbled.jpg", bad);
  CHECK_ERROR(engine::load_image(dir / "garbled.jpg"), "garbled.jpg", "not a valid", "stb:");
  write_file(dir / "truncated.jpg", jpeg.substr(0, 100));
  CHECK_ERROR(engine::load_image(dir / "truncated.jpg"), "truncated.jpg");
  engine::ImageLimits small;
  small.max_width = small.max_height = 100;
  CHECK_ERROR(engine::load_image(data + "/imagenet/images/n01440764_tench.JPEG", small),
              "n01440764_tench.JPEG", "256x256", "100x100");
  engine::ImageLimits tiny_file;
  tiny_file.max_file_bytes = 1000;
  CHECK_ERROR(engine::load_image(data + "/imagenet/images/n01440764_tench.JPEG", tiny_file),
              "n01440764_tench.JPEG", "1000-byte limit");
}

TEST_CASE("image: extensions") {
  CHECK(engine::has_image_extension("a/b.JPEG"));
  CHECK(engine::has_image_extension("x.png"));
  CHECK(engine::has_image_extension("x.Bmp"));
  CHECK_FALSE(engine::has_image_extension("list.txt"));
  CHECK_FALSE(engine::has_image_extension("noext"));
  CHECK_FALSE(engine::has_image_extension("dir.jpg/file"));
}

// ---------------------------------------------------------------------------------------------
// Preprocessing

TEST_CASE("preprocess: Fashion-MNIST check values") {
  const Tensor images = engine::read_idx(fashion("t10k-images-idx3-ubyte.gz"));
  const engine::PreprocessOptions o = fashion_preprocess();
  const Tensor img0 =
      Tensor::view(DType::U8, {28, 28}, const_cast<uint8_t*>(images.data<uint8_t>()));
  const Tensor x = engine::preprocess_image(img0, o);
  REQUIRE(x.shape() == engine::Dims{3, 32, 32});
  const float* p = x.data<float>();
  double sum = 0;
  for (int c = 0; c < 3; ++c) {
    CAPTURE(c);
    CHECK(std::fabs(p[c * 1024 + 0] - -0.81025767) < 1e-6);
    CHECK(std::fabs(p[c * 1024 + 16 * 32 + 16] - 0.41167697) < 1e-6);
  }
  for (int64_t i = 0; i < x.numel(); ++i) sum += p[i];
  // preprocessing.json: test0_sum_all_float64.
  CHECK(std::fabs(sum - -1374.1739538051188) < 1e-3);
}

TEST_CASE("preprocess: matches the shared reference inputs bit for bit") {
  const std::string data = engine::test::test_data_dir();
  if (data.empty()) return;
  const Tensor ref = engine::read_npy(data + "/models/fashion/reference/resnet18_fp32.input16.npy");
  engine::Dataset ds =
      engine::Dataset::from_idx(fashion("t10k-images-idx3-ubyte.gz"),
                                fashion("t10k-labels-idx1-ubyte.gz"), fashion_preprocess());
  const engine::Batch b = engine::make_batch(ds, 0, 16);
  REQUIRE(b.images.shape() == ref.shape());
  int64_t differ = 0;
  for (int64_t i = 0; i < ref.numel(); ++i)
    differ += b.images.data<float>()[i] != ref.data<float>()[i];
  CHECK(differ == 0);
  CHECK(b.labels == std::vector<int>{9, 2, 1, 1, 6, 1, 4, 6, 5, 7, 4, 5, 7, 3, 4, 1});
}

TEST_CASE("preprocess: channel conversion uses PIL's luma weights") {
  const Tensor rgb = u8_image({1, 4, 3}, {255, 0, 0, 0, 255, 0, 0, 0, 255, 255, 255, 255});
  // L = (19595 R + 38470 G + 7471 B + 32768) >> 16: red 76, green 150, blue 29, white 255.
  CHECK(engine::convert_channels(rgb, 1).to_int_vector() == std::vector<int64_t>{76, 150, 29, 255});
  const Tensor gray = u8_image({1, 2}, {5, 9});
  const Tensor g3 = engine::convert_channels(gray, 3);
  CHECK(g3.shape() == engine::Dims{1, 2, 3});
  CHECK(g3.to_int_vector() == std::vector<int64_t>{5, 5, 5, 9, 9, 9});
  CHECK_ERROR(engine::convert_channels(gray, 2), "channels must be 1 or 3");
}

TEST_CASE("preprocess: centre crop follows torchvision's rounding and padding") {
  std::vector<uint8_t> v(20);
  for (int i = 0; i < 20; ++i) v[size_t(i)] = uint8_t(i);
  const Tensor img = u8_image({5, 4, 1}, v);  // rows 0..4, cols 0..3, value 4*y+x
  // top = round(1.5) = 2 (half to even), left = round(1.0) = 1.
  CHECK(engine::center_crop(img, 2).to_int_vector() == std::vector<int64_t>{9, 10, 13, 14});
  const Tensor three = u8_image({3, 3}, {1, 2, 3, 4, 5, 6, 7, 8, 9});
  // top = left = round(0.5) = 0.
  CHECK(engine::center_crop(three, 2).to_int_vector() == std::vector<int64_t>{1, 2, 4, 5});
  // Larger than the image: zero-padded (left/top by (4-2)//2 = 1).
  const Tensor two = u8_image({2, 2}, {1, 2, 3, 4});
  CHECK(engine::center_crop(two, 4).to_int_vector() ==
        std::vector<int64_t>{0, 0, 0, 0, 0, 1, 2, 0, 0, 3, 4, 0, 0, 0, 0, 0});
  // 3 -> 4: pad (4-3)//2 = 0 before, 1 after.
  CHECK(engine::center_crop(three, 4).to_int_vector() ==
        std::vector<int64_t>{1, 2, 3, 0, 4, 5, 6, 0, 7, 8, 9, 0, 0, 0, 0, 0});
}

TEST_CASE("preprocess: pad and resize") {
  const Tensor one = u8_image({1, 1, 3}, {7, 8, 9});
  const Tensor p = engine::pad_image(one, 1);
  CHECK(p.shape() == engine::Dims{3, 3, 3});
  std::vector<int64_t> want(27, 0);
  want[12] = 7;
  want[13] = 8;
  want[14] = 9;
  CHECK(p.to_int_vector() == want);

  // Shorter side -> size, longer side int(size * long / short).
  CHECK(engine::resize_shorter_side(Tensor(DType::U8, {3, 6, 1}), 2).shape() ==
        engine::Dims{2, 4, 1});
  CHECK(engine::resize_shorter_side(Tensor(DType::U8, {6, 3, 3}), 2).shape() ==
        engine::Dims{4, 2, 3});
  CHECK(engine::resize_shorter_side(Tensor(DType::U8, {3, 5}), 2).shape() == engine::Dims{2, 3, 1});
  // A constant image stays constant.
  const Tensor c = engine::resize_shorter_side(u8_image({2, 4}, std::vector<uint8_t>(8, 100)), 5);
  CHECK(c.shape() == engine::Dims{5, 10, 1});
  for (int64_t v : c.to_int_vector()) CHECK(v == 100);
  // Bilinear 2 -> 4 with pixel centres at (x + 0.5) / 2 - 0.5 = -0.25, 0.25, 0.75, 1.25, edges
  // clamped: 0, 255/4, 3*255/4, 255 -> 0, 64 (63.75), 191 (191.25), 255.
  const Tensor up = engine::resize_shorter_side(u8_image({2, 2}, {0, 255, 0, 255}), 4);
  CHECK(up.shape() == engine::Dims{4, 4, 1});
  for (int y = 0; y < 4; ++y) {
    CAPTURE(y);
    CHECK(up.data<uint8_t>()[y * 4 + 0] == 0);
    CHECK(up.data<uint8_t>()[y * 4 + 1] == 64);
    CHECK(up.data<uint8_t>()[y * 4 + 2] == 191);
    CHECK(up.data<uint8_t>()[y * 4 + 3] == 255);
  }
  // Shrinking 4 -> 2 averages every covered pixel: scale 2, taps for output 0 at centre 1 are
  // x = 0, 1, 2 with tri(-0.25), tri(0.25), tri(0.75) = 3/7, 3/7, 1/7 -> 500/7 = 71.4 -> 71;
  // output 1 (centre 3): x = 1, 2, 3 with 1/7, 3/7, 3/7 -> (100 + 600 + 765) / 7 = 209.3 -> 209.
  const Tensor down =
      engine::resize_shorter_side(u8_image({2, 4}, {0, 100, 200, 255, 0, 100, 200, 255}), 1);
  CHECK(down.shape() == engine::Dims{1, 2, 1});
  CHECK(down.to_int_vector() == std::vector<int64_t>{71, 209});
  // Sizes on which stb_image_resize 0.97 aborts (nothings/stb#1449): fine here, constant stays.
  const Tensor big =
      engine::resize_image(u8_image({2000, 3}, std::vector<uint8_t>(6000, 77)), 1304, 2);
  CHECK(big.shape() == engine::Dims{1304, 2, 1});
  CHECK(big.data<uint8_t>()[0] == 77);
  CHECK(big.data<uint8_t>()[1304 * 2 - 1] == 77);
  // Already the right size: unchanged.
  CHECK(engine::resize_shorter_side(u8_image({2, 3}, {1, 2, 3, 4, 5, 6}), 2).to_int_vector() ==
        std::vector<int64_t>{1, 2, 3, 4, 5, 6});
  // Extreme aspect ratio: refused, not a multi-GB allocation.
  CHECK_ERROR(engine::resize_shorter_side(Tensor(DType::U8, {1, 100000, 1}), 10000), "resize",
              "pixels");
}

TEST_CASE("preprocess: normalization order, BGR, mean/std per channel") {
  engine::PreprocessOptions o;
  o.bgr = true;
  o.mean = {1, 2, 3};
  o.std = {2, 4, 8};
  // Output channels B, G, R: (30-1)/2, (20-2)/4, (10-3)/8.
  const Tensor x = engine::preprocess_image(u8_image({1, 1, 3}, {10, 20, 30}), o);
  CHECK(x.shape() == engine::Dims{3, 1, 1});
  CHECK(x.to_float_vector() == std::vector<float>{14.5f, 4.5f, 0.875f});

  // Caffe style: BGR, minus mean B=104, G=117, R=123.
  engine::PreprocessOptions caffe;
  caffe.bgr = true;
  caffe.mean = engine::parse_float_list("104,117,123", "--mean");
  CHECK(engine::preprocess_image(u8_image({1, 1, 3}, {200, 100, 50}), caffe).to_float_vector() ==
        std::vector<float>{-54, -17, 77});

  // scale then mean then std: ((255 * 0.5) - 1) / 2 = 63.25.
  engine::PreprocessOptions s;
  s.scale = 0.5f;
  s.mean = {1};
  s.std = {2};
  CHECK(engine::preprocess_image(u8_image({1, 1}, {255}), s).to_float_vector() ==
        std::vector<float>{63.25f});

  // Gray source, 3 channels: replicated; RGB source, 1 channel: luma.
  engine::PreprocessOptions g3;
  g3.channels = 3;
  g3.mean = {0, 1, 2};
  CHECK(engine::preprocess_image(u8_image({1, 1}, {10}), g3).to_float_vector() ==
        std::vector<float>{10, 9, 8});
  engine::PreprocessOptions g1;
  g1.channels = 1;
  CHECK(engine::preprocess_image(u8_image({1, 1, 3}, {255, 0, 0}), g1).to_float_vector() ==
        std::vector<float>{76});

  // x/255 (divisor), not x * (1/255): 3/255 = 0.0117647061 in float32, 3 * (1/255) rounds up.
  engine::PreprocessOptions d;
  engine::parse_scale("1/255", d);
  CHECK(engine::preprocess_image(u8_image({1, 1}, {3}), d).data<float>()[0] == 3.0f / 255.0f);

  // Full pipeline shape: resize 256 (short side), crop 224, pad 1, gray source -> 3 channels.
  engine::PreprocessOptions full;
  full.resize = 256;
  full.crop = 224;
  full.pad = 1;
  full.channels = 3;
  const Tensor big = engine::preprocess_image(Tensor(DType::U8, {300, 400, 1}), full);
  CHECK(big.shape() == engine::Dims{3, 226, 226});
  CHECK(engine::preprocessed_shape({300, 400, 1}, full) == big.shape());
  engine::PreprocessOptions r;
  r.resize = 10;
  CHECK(engine::preprocessed_shape({20, 50, 3}, r) == engine::Dims{3, 10, 25});
  CHECK(engine::preprocess_image(Tensor(DType::U8, {20, 50, 3}), r).shape() ==
        engine::Dims{3, 10, 25});
}

TEST_CASE("preprocess: option parsing and errors") {
  engine::PreprocessOptions o;
  engine::parse_scale("1/255", o);
  CHECK(o.scale_divisor == 255.0f);
  CHECK(o.scale == 1.0f / 255.0f);
  engine::parse_scale("0.5", o);
  CHECK(o.scale == 0.5f);
  CHECK(o.scale_divisor == 0.0f);
  engine::parse_scale(" 2/8 ", o);
  CHECK(o.scale == 0.25f);
  CHECK(o.scale_divisor == 0.0f);
  CHECK_ERROR(engine::parse_scale("abc", o), "--scale", "abc");
  CHECK_ERROR(engine::parse_scale("1/0", o), "--scale", "1/0");
  CHECK_ERROR(engine::parse_scale("1/", o), "--scale");
  CHECK_ERROR(engine::parse_scale("", o), "--scale");
  CHECK(engine::parse_float_list("0.485,0.456,0.406", "--mean") ==
        std::vector<float>{0.485f, 0.456f, 0.406f});
  CHECK(engine::parse_float_list(" 1 , -2.5e1 ", "--std") == std::vector<float>{1.0f, -25.0f});
  CHECK_ERROR(engine::parse_float_list("1,,2", "--mean"), "--mean", "1,,2");
  CHECK_ERROR(engine::parse_float_list("0.4a", "--std"), "--std", "0.4a");
  CHECK_ERROR(engine::parse_float_list("", "--mean"), "--mean");
  CHECK_ERROR(engine::parse_float_list("1e99", "--mean"), "--mean");

  const Tensor rgb(DType::U8, {2, 2, 3});
  engine::PreprocessOptions m;
  m.mean = {1, 2};
  CHECK_ERROR(engine::preprocess_image(rgb, m), "2 mean values", "3-channel");
  engine::PreprocessOptions z;
  z.std = {1, 0, 1};
  CHECK_ERROR(engine::preprocess_image(rgb, z), "std", "nonzero");
  engine::PreprocessOptions c2;
  c2.channels = 2;
  CHECK_ERROR(engine::preprocess_image(rgb, c2), "channels must be 0");
  engine::PreprocessOptions neg;
  neg.pad = -1;
  CHECK_ERROR(engine::preprocess_image(rgb, neg), "pad");
  CHECK_ERROR(engine::preprocess_image(Tensor(DType::F32, {2, 2, 3}), {}), "uint8");
  CHECK_ERROR(engine::preprocess_image(Tensor(DType::U8, {1, 2, 2, 3}), {}), "[1,2,2,3]");
  CHECK_ERROR(engine::preprocess_image(Tensor(DType::U8, {2, 2, 4}), {}), "1 or 3 channels");
  CHECK_ERROR(engine::preprocess_image(Tensor(DType::U8, {0, 2, 3}), {}), "empty");
  engine::PreprocessOptions f = fashion_preprocess();
  f.resize = 256;
  f.crop = 224;
  CHECK(engine::describe(f).find("x/255") != std::string::npos);
  CHECK(engine::describe(f).find("crop 224") != std::string::npos);
}

// ---------------------------------------------------------------------------------------------
// Datasets

TEST_CASE("dataset: IDX images and labels") {
  engine::Dataset ds =
      engine::Dataset::from_idx(fashion("t10k-images-idx3-ubyte.gz"),
                                fashion("t10k-labels-idx1-ubyte.gz"), fashion_preprocess());
  CHECK(ds.size() == 10000);
  CHECK(ds.labeled());
  CHECK(ds.label(0) == 9);
  CHECK(ds.label(9) == 7);
  CHECK(ds.item_name(3).find("t10k-images-idx3-ubyte.gz[3]") != std::string::npos);
  const engine::Sample s = ds.get(0);
  CHECK(s.label == 9);
  CHECK(s.image.shape() == engine::Dims{3, 32, 32});
  CHECK(std::fabs(s.image.data<float>()[16 * 32 + 16] - 0.41167697) < 1e-6);
  CHECK(ds.raw_image(0).shape() == engine::Dims{28, 28});
  CHECK_ERROR(ds.image(10000), "item 10000 out of range");
  CHECK_ERROR(engine::make_batch(ds, 9990, 11), "batch [9990, 10001)");
  const engine::Batch last = engine::make_batch(ds, 9990, 10);
  CHECK(last.images.shape() == engine::Dims{10, 3, 32, 32});

  // Unlabeled (calibration): first images of the training file.
  engine::Dataset cal =
      engine::Dataset::from_idx(fashion("train-images-idx3-ubyte.gz"), "", fashion_preprocess());
  CHECK(cal.size() == 60000);
  CHECK_FALSE(cal.labeled());
  CHECK(cal.label(0) == -1);
  CHECK(engine::make_batch(cal, 0, 256).labels == std::vector<int>(256, -1));

  TempDir dir;
  write_file(dir / "five.idx", idx_header(0x08, {5}) + bytes({0, 1, 2, 3, 4}));
  CHECK_ERROR(engine::Dataset::from_idx(fashion("t10k-images-idx3-ubyte.gz"), dir / "five.idx",
                                        fashion_preprocess()),
              "five.idx", "5 labels", "10000 images");
  CHECK_ERROR(
      engine::Dataset::from_idx(fashion("t10k-labels-idx1-ubyte.gz"), "", fashion_preprocess()),
      "t10k-labels-idx1-ubyte.gz", "expected uint8 images");
  write_file(dir / "neg.npy", npy_bytes("{'descr': '<i8', 'fortran_order': False, 'shape': (1,), }",
                                        std::string(8, '\xff')));
  write_file(dir / "img1.idx", idx_header(0x08, {1, 2, 2}) + bytes({1, 2, 3, 4}));
  CHECK_ERROR(engine::Dataset::from_idx(dir / "img1.idx", dir / "neg.npy", {}), "neg.npy",
              "label 0 is -1");
  CHECK_ERROR(engine::Dataset::from_idx(dir / "img1.idx", dir / "missing", {}), "missing",
              "not found");
}

TEST_CASE("dataset: list file") {
  TempDir dir;
  const unsigned char px[] = {1, 2, 3, 4};
  fs::create_directories(dir.path / "imgs");
  REQUIRE(stbi_write_png((dir / "imgs/a.png").c_str(), 2, 2, 1, px, 2));
  REQUIRE(stbi_write_png((dir / "imgs/b c.png").c_str(), 2, 2, 1, px, 2));
  write_file(dir / "list.txt",
             "# comment\n\nimgs/a.png 3\r\n  imgs/b c.png\t7  \n" + (dir / "imgs/a.png") + " 0\n");
  engine::Dataset ds = engine::Dataset::from_list(dir / "list.txt", {});
  REQUIRE(ds.size() == 3);
  CHECK(ds.label(0) == 3);
  CHECK(ds.label(1) == 7);
  CHECK(ds.label(2) == 0);
  CHECK(ds.item_name(1) == dir / "imgs/b c.png");
  CHECK(ds.image(1).to_float_vector() == std::vector<float>{1, 2, 3, 4});
  CHECK(ds.class_names().empty());

  write_file(dir / "bad.txt", "imgs/a.png 1\n\nimgs/a.png x\n");
  CHECK_ERROR(engine::Dataset::from_list(dir / "bad.txt", {}), "bad.txt:3", "imgs/a.png x");
  write_file(dir / "bad.txt", "imgs/a.png\n");
  CHECK_ERROR(engine::Dataset::from_list(dir / "bad.txt", {}), "bad.txt:1", "<label>");
  write_file(dir / "bad.txt", "imgs/a.png -1\n");
  CHECK_ERROR(engine::Dataset::from_list(dir / "bad.txt", {}), "bad.txt:1");
  write_file(dir / "bad.txt", "# nothing\nimgs/a.png 1\nimgs/zzz.png 2\n");
  CHECK_ERROR(engine::Dataset::from_list(dir / "bad.txt", {}), "bad.txt:3", "imgs/zzz.png",
              "not found");
  write_file(dir / "bad.txt", "# only comments\n");
  CHECK_ERROR(engine::Dataset::from_list(dir / "bad.txt", {}), "bad.txt", "no images");
  CHECK_ERROR(engine::Dataset::from_list(dir / "nope.txt", {}), "nope.txt", "cannot open");
  // open(): a broken gzip file is reported by the IDX reader, not parsed as a list.
  write_file(dir / "broken.gz", bytes({0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 0xff, 0xff, 0xff}));
  CHECK_ERROR(engine::Dataset::open(dir / "broken.gz", "", {}), "broken.gz", "gzip");

  // A corrupt image is reported when loaded, by path.
  write_file(dir / "imgs/broken.png", "garbage");
  write_file(dir / "l2.txt", "imgs/a.png 0\nimgs/broken.png 1\n");
  engine::Dataset l2 = engine::Dataset::from_list(dir / "l2.txt", {});
  CHECK_ERROR(engine::make_batch(l2, 0, 2), "broken.png", "not a valid");
}

TEST_CASE("dataset: shared ImageNet list") {
  const std::string data = engine::test::test_data_dir();
  if (data.empty()) return;
  engine::PreprocessOptions o;
  o.resize = 256;
  o.crop = 224;
  engine::parse_scale("1/255", o);
  o.mean = engine::parse_float_list("0.485,0.456,0.406", "--mean");
  o.std = engine::parse_float_list("0.229,0.224,0.225", "--std");
  engine::Dataset ds = engine::Dataset::open(data + "/imagenet/val_list.txt", "", o);
  CHECK(ds.size() == 1000);
  CHECK(ds.label(0) == 0);
  CHECK(ds.label(999) == 999);
  const engine::Batch b = engine::make_batch(ds, 0, 4);
  CHECK(b.images.shape() == engine::Dims{4, 3, 224, 224});
  CHECK(b.labels == std::vector<int>{0, 1, 2, 3});
  // Same pixels as decoding and preprocessing item 2 alone.
  const Tensor two = ds.image(2);
  CHECK(std::memcmp(two.data<float>(), b.images.data<float>() + 2 * 3 * 224 * 224, two.nbytes()) ==
        0);
}

TEST_CASE("dataset: image folders") {
  TempDir dir;
  const unsigned char g[] = {10, 20, 30, 40};
  const unsigned char rgb[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
  fs::create_directories(dir.path / "root/b_cls/sub");
  fs::create_directories(dir.path / "root/a_cls");
  fs::create_directories(dir.path / "root/.hidden");
  fs::create_directories(dir.path / "root/c_empty");
  REQUIRE(stbi_write_png((dir / "root/b_cls/2.png").c_str(), 2, 2, 1, g, 2));
  REQUIRE(stbi_write_png((dir / "root/b_cls/sub/1.png").c_str(), 2, 2, 3, rgb, 6));
  REQUIRE(stbi_write_png((dir / "root/a_cls/x.PNG").c_str(), 2, 2, 1, g, 2));
  REQUIRE(stbi_write_png((dir / "root/.hidden/h.png").c_str(), 2, 2, 1, g, 2));
  write_file(dir / "root/a_cls/notes.txt", "not an image");
  write_file(dir / "root/a_cls/.x.png", "hidden");
  engine::PreprocessOptions o;
  o.channels = 3;
  engine::Dataset ds = engine::Dataset::from_folder(dir / "root", o);
  CHECK(ds.class_names() == std::vector<std::string>{"a_cls", "b_cls", "c_empty"});
  REQUIRE(ds.size() == 3);
  CHECK(ds.item_name(0) == dir / "root/a_cls/x.PNG");
  CHECK(ds.item_name(1) == dir / "root/b_cls/2.png");
  CHECK(ds.item_name(2) == dir / "root/b_cls/sub/1.png");
  CHECK(ds.label(0) == 0);
  CHECK(ds.label(1) == 1);
  CHECK(ds.label(2) == 1);
  const engine::Batch b = engine::make_batch(ds, 0, 3);
  CHECK(b.images.shape() == engine::Dims{3, 3, 2, 2});
  CHECK(b.labels == std::vector<int>{0, 1, 1});
  // Item 2 is RGB: channel planes R, G, B.
  const float* p = b.images.data<float>() + 2 * 12;
  CHECK(std::vector<float>(p, p + 12) == std::vector<float>{1, 4, 7, 10, 2, 5, 8, 11, 3, 6, 9, 12});
  CHECK(engine::Dataset::open(dir / "root", "", o).size() == 3);
  CHECK_ERROR(engine::Dataset::open(dir / "root", dir / "labels.idx", o), "only goes with IDX");

  // Flat folder: unlabeled.
  fs::create_directories(dir.path / "flat");
  REQUIRE(stbi_write_png((dir / "flat/1.png").c_str(), 2, 2, 1, g, 2));
  REQUIRE(stbi_write_png((dir / "flat/0.png").c_str(), 2, 2, 1, g, 2));
  engine::Dataset flat = engine::Dataset::from_folder(dir / "flat", {});
  CHECK(flat.size() == 2);
  CHECK_FALSE(flat.labeled());
  CHECK(flat.item_name(0) == dir / "flat/0.png");
  CHECK(flat.class_names().empty());

  // Mixed sizes in one batch: the error names the first odd item and suggests resize/crop.
  REQUIRE(stbi_write_png((dir / "flat/2.png").c_str(), 1, 1, 1, g, 1));
  engine::Dataset mixed = engine::Dataset::from_folder(dir / "flat", {});
  CHECK_ERROR(engine::make_batch(mixed, 0, 3), "2.png", "[1,1,1]", "[1,2,2]", "resize/crop");
  engine::PreprocessOptions crop;
  crop.crop = 2;
  mixed.set_preprocess(crop);
  CHECK(engine::make_batch(mixed, 0, 3).images.shape() == engine::Dims{3, 1, 2, 2});

  fs::create_directories(dir.path / "empty");
  CHECK_ERROR(engine::Dataset::from_folder(dir / "empty", {}), "empty", "no images");
  CHECK_ERROR(engine::Dataset::from_folder(dir / "nope", {}), "nope", "not a directory");
  CHECK_ERROR(engine::Dataset::open(dir / "nope", "", {}), "nope", "no such file");
}

TEST_CASE("dataset: shared demo images, .npy data and single images via open()") {
  const std::string data = engine::test::test_data_dir();
  if (data.empty()) return;
  engine::PreprocessOptions o = fashion_preprocess();
  engine::Dataset demo = engine::Dataset::open(data + "/demo/images", "", o);
  CHECK(demo.size() == 10);
  CHECK_FALSE(demo.labeled());
  CHECK(engine::make_batch(demo, 0, 10).images.shape() == engine::Dims{10, 3, 32, 32});
  engine::Dataset one = engine::Dataset::open(data + "/demo/images/3_dress.png", "", o);
  CHECK(one.size() == 1);
  CHECK(one.image(0).shape() == engine::Dims{3, 32, 32});

  TempDir dir;
  const std::string ref = data + "/models/fashion/reference/resnet18_fp32.input16.npy";
  write_file(dir / "labels.npy",
             npy_bytes("{'descr': '|u1', 'fortran_order': False, 'shape': (16,), }",
                       bytes({9, 2, 1, 1, 6, 1, 4, 6, 5, 7, 4, 5, 7, 3, 4, 1})));
  engine::Dataset npy = engine::Dataset::open(ref, dir / "labels.npy", o);
  CHECK(npy.size() == 16);
  CHECK(npy.label(15) == 1);
  const Tensor ref_t = engine::read_npy(ref);
  CHECK(std::memcmp(npy.image(5).data<float>(), ref_t.data<float>() + 5 * 3072, 3072 * 4) == 0);
  CHECK_ERROR(npy.raw_image(0), "preprocessed float32");
  CHECK_ERROR(engine::Dataset::open(ref, fashion("t10k-labels-idx1-ubyte.gz"), o), "10000 labels",
              "16 images");

  // uint8 [N,H,W] .npy images are preprocessed like IDX items.
  const Tensor idx = engine::read_idx(fashion("t10k-images-idx3-ubyte.gz"));
  Tensor first2(DType::U8, {2, 28, 28});
  std::memcpy(first2.raw(), idx.raw(), 2 * 784);
  engine::write_npy(dir / "u8.npy", first2);
  engine::Dataset u8 = engine::Dataset::from_npy(dir / "u8.npy", "", o);
  CHECK(std::memcmp(u8.image(1).data<float>(), ref_t.data<float>() + 3072, 3072 * 4) == 0);
  engine::write_npy(dir / "bad.npy", Tensor(DType::F64, {2, 3}));
  CHECK_ERROR(engine::Dataset::from_npy(dir / "bad.npy", "", o), "bad.npy", "float64 [2,3]");
}
