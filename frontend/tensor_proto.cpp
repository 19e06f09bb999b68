#include "frontend/tensor_proto.h"

#include <fcntl.h>
#include <onnx/onnx_pb.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>

namespace engine {

namespace fs = std::filesystem;

std::string read_file_bytes(const std::string& path, size_t max_bytes) {
  std::error_code ec;
  ENGINE_CHECK(fs::exists(path, ec), path, ": no such file");
  ENGINE_CHECK(!fs::is_directory(path, ec), path, ": is a directory, expected a file");
  const auto size = fs::file_size(path, ec);
  ENGINE_CHECK(!ec, path, ": cannot read its size (", ec.message(), ")");
  ENGINE_CHECK(size <= max_bytes, path, ": file is ", size, " bytes, more than the limit of ",
               max_bytes);
  std::ifstream f(path, std::ios::binary);
  ENGINE_CHECK(f, path, ": cannot open for reading");
  std::string bytes(size, '\0');
  f.read(bytes.data(), std::streamsize(size));
  ENGINE_CHECK(f.gcount() == std::streamsize(size), path, ": short read");
  return bytes;
}

void write_file_atomic(const std::string& path, const std::string& bytes) {
  write_file_atomic(
      path, [&](std::ostream& os) { os.write(bytes.data(), std::streamsize(bytes.size())); });
}

void write_file_atomic(const std::string& path, const std::function<void(std::ostream&)>& write) {
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  auto give_up = [&](const std::string& why) {
    std::error_code ec;
    fs::remove(tmp, ec);
    fail(path, ": ", why);
  };
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    if (!f) fail(path, ": cannot open ", tmp, " for writing: ", std::strerror(errno));
    try {
      write(f);
    } catch (...) {
      f.close();
      std::error_code ec;
      fs::remove(tmp, ec);
      throw;
    }
    f.close();
    if (!f) give_up("writing " + tmp + " failed");
  }
  // On disk before the rename, so a crash leaves the old file or the whole new one.
  const int fd = ::open(tmp.c_str(), O_RDONLY | O_CLOEXEC);
  const bool synced = fd >= 0 && ::fsync(fd) == 0;
  if (fd >= 0) ::close(fd);
  if (!synced) give_up("cannot flush " + tmp + " to disk: " + std::strerror(errno));
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) give_up("cannot move the finished file into place: " + ec.message());
}

namespace {

// Reads the external-data bytes of a tensor, only from inside the model's folder.
std::string read_external(const onnx::TensorProto& p, const TensorProtoOptions& opt,
                          size_t expect_bytes) {
  std::string location;
  int64_t offset = 0, length = -1;
  for (const auto& kv : p.external_data()) {
    if (kv.key() == "location")
      location = kv.value();
    else if (kv.key() == "offset")
      offset = parse_int64(kv.value(), opt.what + ": external data offset", 0);
    else if (kv.key() == "length")
      length = parse_int64(kv.value(), opt.what + ": external data length", 0);
  }
  ENGINE_CHECK(!location.empty(), opt.what, ": external data without a location");
  ENGINE_CHECK(!opt.base_dir.empty(), opt.what, ": external data '", location,
               "' cannot be resolved (model loaded from memory)");
  const fs::path rel(location);
  ENGINE_CHECK(!rel.is_absolute(), opt.what, ": external data path '", location,
               "' is absolute; only files inside the model's folder are read");
  for (const auto& part : rel)
    ENGINE_CHECK(part != "..", opt.what, ": external data path '", location,
                 "' leaves the model's folder ('..' is refused)");
  std::error_code ec;
  const fs::path base = fs::weakly_canonical(fs::path(opt.base_dir), ec);
  const fs::path full = fs::weakly_canonical(base / rel, ec);
  const std::string b = base.string(), f = full.string();
  ENGINE_CHECK(f.compare(0, b.size(), b) == 0, opt.what, ": external data path '", location,
               "' resolves outside the model's folder");
  ENGINE_CHECK(offset >= 0, opt.what, ": negative external data offset");
  ENGINE_CHECK(fs::exists(full, ec), opt.what, ": external data file '", f, "' does not exist");
  const auto fsize = fs::file_size(full, ec);
  ENGINE_CHECK(!ec && uint64_t(offset) <= fsize && fsize - uint64_t(offset) >= expect_bytes,
               opt.what, ": external data file '", f, "' is too short for ", expect_bytes,
               " bytes at offset ", offset);
  ENGINE_CHECK(length < 0 || size_t(length) == expect_bytes, opt.what, ": external data length ",
               length, " does not match the tensor's ", expect_bytes, " bytes");
  std::ifstream in(full, std::ios::binary);
  in.seekg(offset);
  std::string bytes(expect_bytes, '\0');
  in.read(bytes.data(), std::streamsize(expect_bytes));
  ENGINE_CHECK(in.gcount() == std::streamsize(expect_bytes), opt.what, ": short read of '", f, "'");
  return bytes;
}

template <class Field>
void check_count(const Field& f, int64_t n, const TensorProtoOptions& opt, const char* field) {
  ENGINE_CHECK(int64_t(f.size()) == n, opt.what, ": ", field, " holds ", f.size(),
               " values but the shape needs ", n);
}

}  // namespace

Tensor tensor_from_proto(const onnx::TensorProto& p, const TensorProtoOptions& opt) {
  const DType dt = dtype_from_onnx(p.data_type());
  ENGINE_CHECK(dt != DType::Undefined, opt.what, ": unsupported data type ", p.data_type());
  ENGINE_CHECK(dt != DType::String, opt.what, ": string tensors are not supported");
  ENGINE_CHECK(!p.has_segment(), opt.what, ": segmented tensors are not supported");
  Dims dims(p.dims().begin(), p.dims().end());
  for (int64_t d : dims)
    ENGINE_CHECK(d >= 0, opt.what, ": negative dimension in shape ", dims_str(dims));
  const int64_t n = checked_numel(dims);
  const size_t esize = dtype_size(dt);
  ENGINE_CHECK(uint64_t(n) <= (uint64_t(1) << 62) / esize, opt.what, ": shape ", dims_str(dims),
               " is too large");
  const size_t nbytes = size_t(n) * esize;

  const bool external = p.data_location() == onnx::TensorProto::EXTERNAL;
  std::string ext;
  const std::string* raw = nullptr;
  if (external) {
    ext = read_external(p, opt, nbytes);
    raw = &ext;
  } else if (p.has_raw_data()) {
    raw = &p.raw_data();
    ENGINE_CHECK(raw->size() == nbytes, opt.what, ": raw_data holds ", raw->size(),
                 " bytes but shape ", dims_str(dims), " of ", dtype_name(dt), " needs ", nbytes);
  }
  // Allocate only after the data was checked to exist: a shape alone cannot make us allocate.
  if (!raw) {
    int64_t have = 0;
    switch (dt) {
      case DType::F32:
        have = p.float_data_size();
        break;
      case DType::F64:
        have = p.double_data_size();
        break;
      case DType::I64:
        have = p.int64_data_size();
        break;
      case DType::U32:
      case DType::U64:
        have = p.uint64_data_size();
        break;
      default:
        have = p.int32_data_size();
        break;
    }
    ENGINE_CHECK(have == n, opt.what, ": holds ", have, " values but shape ", dims_str(dims),
                 " needs ", n);
  }
  Tensor t(dt, dims);
  if (raw) {
    if (nbytes) std::memcpy(t.raw(), raw->data(), nbytes);  // ONNX raw data is little-endian
  } else {
    switch (dt) {
      case DType::F32:
        check_count(p.float_data(), n, opt, "float_data");
        std::copy(p.float_data().begin(), p.float_data().end(), t.data<float>());
        break;
      case DType::F64:
        check_count(p.double_data(), n, opt, "double_data");
        std::copy(p.double_data().begin(), p.double_data().end(), t.data<double>());
        break;
      case DType::I64:
        check_count(p.int64_data(), n, opt, "int64_data");
        std::copy(p.int64_data().begin(), p.int64_data().end(), t.data<int64_t>());
        break;
      case DType::U32:
        for (int64_t i = 0; i < n; ++i) t.data<uint32_t>()[i] = uint32_t(p.uint64_data(int(i)));
        break;
      case DType::U64:
        std::copy(p.uint64_data().begin(), p.uint64_data().end(), t.data<uint64_t>());
        break;
      case DType::F16: {
        auto* d = static_cast<uint16_t*>(t.raw());
        for (int64_t i = 0; i < n; ++i) d[i] = uint16_t(p.int32_data(int(i)));
        break;
      }
      default:
        dispatch_dtype(dt, [&](auto z) {
          using T = decltype(z);
          T* d = t.data<T>();
          for (int64_t i = 0; i < n; ++i) d[i] = T(p.int32_data(int(i)));
        });
    }
  }
  if (dt == DType::F16 && opt.upcast_f16) {
    Tensor f(DType::F32, dims);
    const auto* s = static_cast<const uint16_t*>(t.raw());
    float* d = f.data<float>();
    for (int64_t i = 0; i < n; ++i) d[i] = half_to_float(s[i]);
    return f;
  }
  return t;
}

void tensor_to_proto(const Tensor& t, const std::string& name, onnx::TensorProto* p) {
  p->Clear();
  p->set_name(name);
  p->set_data_type(int(t.dtype()));
  for (int64_t d : t.shape()) p->add_dims(d);
  p->set_raw_data(std::string(static_cast<const char*>(t.raw()), t.nbytes()));
}

Tensor read_tensor_pb(const std::string& path, std::string* name) {
  const std::string bytes = read_file_bytes(path, size_t(1) << 31);
  onnx::TensorProto p;
  ENGINE_CHECK(p.ParseFromString(bytes), path, ": not a valid TensorProto file");
  TensorProtoOptions opt;
  opt.what = path;
  if (name) *name = p.name();
  return tensor_from_proto(p, opt);
}

void write_tensor_pb(const Tensor& t, const std::string& name, const std::string& path) {
  onnx::TensorProto p;
  tensor_to_proto(t, name, &p);
  write_file_atomic(path, p.SerializeAsString());
}

}  // namespace engine
