#include "frontend/native.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "core/pass.h"
#include "frontend/tensor_proto.h"

namespace engine {

namespace {

using json = nlohmann::json;

constexpr size_t kHeaderFixed = 40;
constexpr uint64_t kAlign = 64;

uint64_t align_up(uint64_t x) {
  return (x + kAlign - 1) / kAlign * kAlign;
}

// Floats: numbers when finite (JSON round-trips them exactly), else "inf", "-inf", "nan".
json float_json(float f) {
  if (std::isfinite(f)) return f;
  return std::isnan(f) ? "nan" : (f > 0 ? "inf" : "-inf");
}
float json_float(const json& j) {
  if (j.is_number()) return j.get<float>();
  const std::string s = j.get<std::string>();
  if (s == "inf") return std::numeric_limits<float>::infinity();
  if (s == "-inf") return -std::numeric_limits<float>::infinity();
  ENGINE_CHECK(s == "nan", "'", s, "' is not a number");
  return std::numeric_limits<float>::quiet_NaN();
}
json floats_json(const std::vector<float>& v) {
  json a = json::array();
  for (float f : v) a.push_back(float_json(f));
  return a;
}
std::vector<float> json_floats(const json& j) {
  std::vector<float> v;
  for (const json& e : j) v.push_back(json_float(e));
  return v;
}

// Collects the tensors to write and hands out their offsets in the data section.
struct DataWriter {
  std::vector<const Tensor*> tensors;
  uint64_t size = 0;
  json add(const Tensor& t) {
    const uint64_t offset = size;
    tensors.push_back(&t);
    size = align_up(size + t.nbytes());
    return {
        {"dtype", int(t.dtype())}, {"shape", t.shape()}, {"offset", offset}, {"bytes", t.nbytes()}};
  }
};

json attr_json(const AttrValue& v, DataWriter& data) {
  return std::visit(
      [&](const auto& x) -> json {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, int64_t>) return {{"i", x}};
        if constexpr (std::is_same_v<T, float>) return {{"f", float_json(x)}};
        if constexpr (std::is_same_v<T, std::string>) return {{"s", x}};
        if constexpr (std::is_same_v<T, std::vector<int64_t>>) return {{"ints", x}};
        if constexpr (std::is_same_v<T, std::vector<float>>) return {{"floats", floats_json(x)}};
        if constexpr (std::is_same_v<T, std::vector<std::string>>) return {{"strings", x}};
        if constexpr (std::is_same_v<T, Tensor>) return {{"t", data.add(x)}};
      },
      v);
}

std::string header_json(const Graph& g, const ModelInfo& info, DataWriter& data) {
  json values = json::array();
  for (const Value& v : g.values) {
    json jv = {{"name", v.name}, {"dtype", int(v.dtype)}, {"has_shape", v.has_shape}};
    if (v.has_shape) jv["shape"] = v.shape;
    if (v.constant) jv["const"] = data.add(*v.constant);
    if (!v.quant.empty())
      jv["quant"] = {{"scale", floats_json(v.quant.scale)},
                     {"zero_point", v.quant.zero_point},
                     {"axis", v.quant.axis},
                     {"bits", v.quant.bits}};
    values.push_back(std::move(jv));
  }
  json nodes = json::array();
  for (const Node& n : g.nodes) {
    json attrs = json::object();
    for (const auto& [k, a] : n.attrs.all()) attrs[k] = attr_json(a, data);
    nodes.push_back({{"name", n.name},
                     {"op", n.op_type},
                     {"domain", n.domain},
                     {"opset", n.opset},
                     {"in", n.inputs},
                     {"out", n.outputs},
                     {"attrs", std::move(attrs)}});
  }
  json h = {{"format", "engine native model"},
            {"version", kNativeVersion},
            {"model",
             {{"ir_version", info.ir_version}, {"opset", info.opset}, {"producer", info.producer}}},
            {"opset", g.opset},
            {"values", std::move(values)},
            {"nodes", std::move(nodes)},
            {"inputs", g.inputs},
            {"outputs", g.outputs}};
  try {
    return h.dump();
  } catch (const json::exception&) {
    fail("a name or string attribute is not valid UTF-8, which the native format cannot store");
  }
}

void put_u32(char* p, uint32_t v) {
  std::memcpy(p, &v, 4);
}
void put_u64(char* p, uint64_t v) {
  std::memcpy(p, &v, 8);
}
uint32_t get_u32(const char* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}
uint64_t get_u64(const char* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}

void write_native(std::ostream& os, const Graph& g, const ModelInfo& info) {
  DataWriter data;
  const std::string header = header_json(g, info, data);
  const uint64_t data_offset = align_up(kHeaderFixed + header.size());
  char fixed[kHeaderFixed] = {};
  std::memcpy(fixed, kNativeMagic, 8);
  put_u32(fixed + 8, kNativeVersion);
  put_u32(fixed + 12, 0);
  put_u64(fixed + 16, header.size());
  put_u64(fixed + 24, data_offset);
  put_u64(fixed + 32, data.size);
  os.write(fixed, kHeaderFixed);
  os.write(header.data(), std::streamsize(header.size()));
  const char zeros[kAlign] = {};
  os.write(zeros, std::streamsize(data_offset - kHeaderFixed - header.size()));
  for (const Tensor* t : data.tensors) {
    os.write(static_cast<const char*>(t->raw()), std::streamsize(t->nbytes()));
    os.write(zeros, std::streamsize(align_up(t->nbytes()) - t->nbytes()));
  }
}

// Reads the graph from a whole file image at `base` (64-byte aligned), kept alive by `owner`.
class Reader {
 public:
  Reader(const char* base, uint64_t size, std::shared_ptr<void> owner, const LoadOptions& opt,
         const OpRegistry& reg)
      : base_(base), size_(size), owner_(std::move(owner)), opt_(opt), reg_(reg) {}

  Graph read(ModelInfo* info) {
    ENGINE_CHECK(size_ >= kHeaderFixed && std::memcmp(base_, kNativeMagic, 8) == 0,
                 "not an engine native model (no ENGINEIR header)");
    const uint32_t version = get_u32(base_ + 8);
    ENGINE_CHECK(version == kNativeVersion, "native model format version ", version,
                 "; this engine reads version ", kNativeVersion,
                 " only: re-create the file from the ONNX model with this engine");
    const uint64_t header_bytes = get_u64(base_ + 16);
    data_offset_ = get_u64(base_ + 24);
    data_bytes_ = get_u64(base_ + 32);
    ENGINE_CHECK(header_bytes <= size_ - kHeaderFixed, "header of ", header_bytes,
                 " bytes runs past the end of the file (", size_, " bytes)");
    ENGINE_CHECK(data_offset_ % kAlign == 0 && data_offset_ >= kHeaderFixed + header_bytes &&
                     data_offset_ <= size_ && data_bytes_ <= size_ - data_offset_,
                 "data section (offset ", data_offset_, ", ", data_bytes_,
                 " bytes) does not fit the file (", size_, " bytes)");
    json h;
    try {
      h = json::parse(base_ + kHeaderFixed, base_ + kHeaderFixed + header_bytes);
      return build(h, info);
    } catch (const json::exception& e) {
      fail("malformed header: ", e.what());
    }
  }

 private:
  Tensor tensor(const json& j, const std::string& what) const {
    const int dt = j.at("dtype").get<int>();
    const DType dtype = dtype_from_onnx(dt);
    ENGINE_CHECK(dtype != DType::Undefined && dtype != DType::String, what,
                 ": unknown element type ", dt);
    Dims shape = j.at("shape").get<Dims>();
    int64_t numel = 0;
    try {
      numel = checked_numel(shape);
    } catch (const Error& e) {
      fail(what, ": ", e.what());
    }
    const uint64_t offset = j.at("offset").get<uint64_t>(), bytes = j.at("bytes").get<uint64_t>();
    ENGINE_CHECK(uint64_t(numel) <= std::numeric_limits<uint64_t>::max() / dtype_size(dtype) &&
                     bytes == uint64_t(numel) * dtype_size(dtype),
                 what, ": ", bytes, " bytes for shape ", dims_str(shape));
    ENGINE_CHECK(offset % kAlign == 0 && offset <= data_bytes_ && bytes <= data_bytes_ - offset,
                 what, ": data at offset ", offset, " (", bytes,
                 " bytes) is outside the data section");
    auto* p = const_cast<char*>(base_ + data_offset_ + offset);  // copy-on-write mapping
    return Tensor::view(dtype, std::move(shape), p, owner_);
  }

  AttrValue attr(const json& j, const std::string& what) const {
    ENGINE_CHECK(j.is_object() && j.size() == 1, what, ": malformed attribute");
    const std::string k = j.begin().key();
    const json& v = j.begin().value();
    const size_t elements = v.is_array()    ? v.size()
                            : v.is_string() ? v.get_ref<const std::string&>().size()
                                            : 1;
    ENGINE_CHECK(elements <= opt_.max_attribute_elements, what, ": holds ", elements,
                 " elements, more than the limit of ", opt_.max_attribute_elements);
    if (k == "i") return v.get<int64_t>();
    if (k == "f") return json_float(v);
    if (k == "s") return v.get<std::string>();
    if (k == "ints") return v.get<std::vector<int64_t>>();
    if (k == "floats") return json_floats(v);
    if (k == "strings") return v.get<std::vector<std::string>>();
    if (k == "t") return tensor(v, what);
    fail(what, ": unknown attribute kind '", k, "'");
  }

  Graph build(const json& h, ModelInfo* info) {
    Graph g;
    g.opset = h.at("opset").get<int>();
    const json& values = h.at("values");
    const json& nodes = h.at("nodes");
    ENGINE_CHECK(nodes.size() <= opt_.max_nodes, nodes.size(), " nodes exceed the limit of ",
                 opt_.max_nodes);
    const int64_t nv = int64_t(values.size());
    std::set<std::string> names;
    for (const json& jv : values) {
      Value v;
      v.name = jv.at("name").get<std::string>();
      ENGINE_CHECK(names.insert(v.name).second, "value '", v.name, "' is defined twice");
      const std::string what = "value '" + v.name + "'";
      const int dt = jv.at("dtype").get<int>();
      v.dtype = dtype_from_onnx(dt);
      ENGINE_CHECK(dt == 0 || (v.dtype != DType::Undefined && v.dtype != DType::String), what,
                   ": unknown element type ", dt);
      v.has_shape = jv.at("has_shape").get<bool>();
      if (v.has_shape) {
        v.shape = jv.at("shape").get<Dims>();
        for (int64_t d : v.shape) ENGINE_CHECK(d >= -1, what, ": dimension ", d);
      }
      if (jv.contains("const")) v.constant = tensor(jv["const"], what);
      if (jv.contains("quant")) {
        const json& q = jv["quant"];
        v.quant.scale = json_floats(q.at("scale"));
        v.quant.zero_point = q.at("zero_point").get<std::vector<int32_t>>();
        v.quant.axis = q.at("axis").get<int>();
        v.quant.bits = q.at("bits").get<int>();
        ENGINE_CHECK(!v.quant.scale.empty() && v.quant.bits >= 1 && v.quant.bits <= 32, what,
                     ": malformed quantization parameters");
      }
      g.values.push_back(std::move(v));
    }
    g.reindex();
    auto value_id = [&](const json& j, bool optional, const std::string& what) {
      const int64_t id = j.get<int64_t>();
      ENGINE_CHECK((optional && id == kNoValue) || (id >= 0 && id < nv), what, ": value id ", id,
                   " out of range (", nv, " values)");
      return int(id);
    };
    for (const json& jn : nodes) {
      Node n;
      n.name = jn.at("name").get<std::string>();
      n.op_type = jn.at("op").get<std::string>();
      n.domain = jn.at("domain").get<std::string>();
      n.opset = jn.at("opset").get<int>();
      const std::string where = "node " + n.label();
      const OpSchema* s = reg_.find(n.domain, n.op_type);
      ENGINE_CHECK(s, where, ": operator ", n.domain.empty() ? "" : n.domain + ".", n.op_type,
                   " is not supported by this engine");
      for (const json& i : jn.at("in")) n.inputs.push_back(value_id(i, true, where));
      for (const json& o : jn.at("out")) n.outputs.push_back(value_id(o, false, where));
      const json& attrs = jn.at("attrs");
      ENGINE_CHECK(attrs.is_object(), where, ": malformed attributes");
      for (auto it = attrs.begin(); it != attrs.end(); ++it)
        n.attrs.set(it.key(), attr(it.value(), where + " attribute '" + it.key() + "'"));
      check_node(*s, n, where);
      g.nodes.push_back(std::move(n));
    }
    for (const json& i : h.at("inputs")) g.inputs.push_back(value_id(i, false, "graph input"));
    for (const json& o : h.at("outputs")) g.outputs.push_back(value_id(o, false, "graph output"));
    ENGINE_CHECK(!g.outputs.empty(), "the graph has no outputs");
    for (int i : g.inputs)
      ENGINE_CHECK(!g.is_constant(i), "graph input '", g.value(i).name, "' is a constant");
    topological_sort(g);
    check_graph_depth(g, opt_.max_depth, "graph");
    if (info) {
      const json& m = h.at("model");
      info->ir_version = m.at("ir_version").get<int64_t>();
      info->opset = m.at("opset").get<int>();
      info->producer = m.at("producer").get<std::string>();
      info->file_bytes = size_;
    }
    return g;
  }

  const char* base_;
  uint64_t size_;
  std::shared_ptr<void> owner_;
  const LoadOptions& opt_;
  const OpRegistry& reg_;
  uint64_t data_offset_ = 0, data_bytes_ = 0;
};

Graph read_named(const char* base, uint64_t size, std::shared_ptr<void> owner,
                 const OpRegistry& reg, const LoadOptions& opt, ModelInfo* info,
                 const std::string& what) {
  try {
    return Reader(base, size, std::move(owner), opt, reg).read(info);
  } catch (const Error& e) {
    fail(what, ": ", e.what());
  }
}

}  // namespace

bool is_native_bytes(const std::string& bytes) {
  return bytes.size() >= 8 && std::memcmp(bytes.data(), kNativeMagic, 8) == 0;
}

bool is_native_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  char magic[8] = {};
  return f.read(magic, 8) && std::memcmp(magic, kNativeMagic, 8) == 0;
}

std::string save_native_bytes(const Graph& g, const ModelInfo& info) {
  std::ostringstream os;
  write_native(os, g, info);
  return os.str();
}

void save_native(const Graph& g, const ModelInfo& info, const std::string& path) {
  write_file_atomic(path, [&](std::ostream& os) { write_native(os, g, info); });
}

Graph load_native(const std::string& path, const OpRegistry& reg, const LoadOptions& opt,
                  ModelInfo* info) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  ENGINE_CHECK(fd >= 0, path, ": cannot open: ", std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    fail(path, ": not a regular file");
  }
  const uint64_t size = uint64_t(st.st_size);
  if (size < kHeaderFixed || size > opt.max_file_bytes) {
    ::close(fd);
    fail(path, ": ", size, " bytes is not a native model size (40 bytes .. the ",
         opt.max_file_bytes, "-byte limit)");
  }
  // Private and writable: copy-on-write pages, so nothing a kernel does reaches the file.
  void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
  ::close(fd);
  ENGINE_CHECK(p != MAP_FAILED, path, ": cannot map: ", std::strerror(errno));
  std::shared_ptr<void> owner(p, [size](void* q) { ::munmap(q, size); });
  return read_named(static_cast<const char*>(p), size, std::move(owner), reg, opt, info, path);
}

Graph load_native_bytes(const std::string& bytes, const OpRegistry& reg, const LoadOptions& opt,
                        ModelInfo* info, const std::string& what) {
  ENGINE_CHECK(bytes.size() <= opt.max_file_bytes, what, ": ", bytes.size(),
               " bytes exceed the limit of ", opt.max_file_bytes);
  std::shared_ptr<void> owner(std::aligned_alloc(kAlign, align_up(bytes.size() + 1)), std::free);
  ENGINE_CHECK(owner, what, ": out of memory");
  std::memcpy(owner.get(), bytes.data(), bytes.size());
  return read_named(static_cast<const char*>(owner.get()), bytes.size(), owner, reg, opt, info,
                    what);
}

}  // namespace engine
