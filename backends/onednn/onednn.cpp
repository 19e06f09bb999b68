#include "backends/onednn/onednn.h"

#include <cstring>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "core/error.h"
#include "ops/activation_fn.h"

namespace engine::onednn {

dnnl::engine& cpu_engine() {
  static dnnl::engine eng(dnnl::engine::kind::cpu, 0);
  return eng;
}

dnnl::primitive_attr base_attr() {
  dnnl::primitive_attr a;
  a.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  return a;
}

void execute(const dnnl::primitive& p, std::unordered_map<int, dnnl::memory> args,
             const dnnl::memory::desc& scratchpad_md) {
  thread_local dnnl::stream stream(cpu_engine());
  thread_local std::vector<char> scratch;
  const size_t bytes = scratchpad_md.get_size();
  if (bytes > 0) {
    if (scratch.size() < bytes + 64) scratch.resize(bytes + 64);
    // oneDNN wants 64-byte aligned scratchpads.
    char* base = scratch.data();
    base += (64 - reinterpret_cast<uintptr_t>(base) % 64) % 64;
    args.emplace(DNNL_ARG_SCRATCHPAD, dnnl::memory(scratchpad_md, cpu_engine(), base));
  }
  p.execute(stream, args);
  stream.wait();
}

dnnl::memory wrap(const dnnl::memory::desc& md, const Tensor& t) {
  return dnnl::memory(md, cpu_engine(), const_cast<void*>(t.raw()));
}

dnnl::memory::dims nchw_dims_of_nhwc(const Dims& d, const char* what) {
  ENGINE_CHECK(d.size() == 4, what, " must have rank 4 (N, H, W, C), got shape ", dims_str(d));
  return {d[0], d[3], d[1], d[2]};
}

Dims nchw_to_nhwc(const Dims& d) {
  return {d[0], d[2], d[3], d[1]};
}

Dims nhwc_to_nchw(const Dims& d) {
  return {d[0], d[3], d[1], d[2]};
}

void append_activation(dnnl::post_ops& po, const Activation& a) {
  using alg = dnnl::algorithm;
  switch (a.kind) {
    case ActKind::None:
      return;
    case ActKind::Relu:
      return po.append_eltwise(1.0f, alg::eltwise_relu, 0.0f, 0.0f);
    case ActKind::LeakyRelu:
      return po.append_eltwise(1.0f, alg::eltwise_relu, a.alpha, 0.0f);
    case ActKind::Clip:
      return po.append_eltwise(1.0f, alg::eltwise_clip, a.alpha, a.beta);
    case ActKind::Sigmoid:
      return po.append_eltwise(1.0f, alg::eltwise_logistic, 0.0f, 0.0f);
    case ActKind::HardSigmoid:  // max(0, min(1, alpha * x + beta))
      po.append_eltwise(1.0f, alg::eltwise_linear, a.alpha, a.beta);
      return po.append_eltwise(1.0f, alg::eltwise_clip, 0.0f, 1.0f);
    case ActKind::HardSwish:  // x * relu6(x + 3) / 6, as ONNX HardSwish
      return po.append_eltwise(1.0f, alg::eltwise_hardswish, 0.0f, 0.0f);
    case ActKind::SiLU:  // x * sigmoid(1 * x)
      return po.append_eltwise(1.0f, alg::eltwise_swish, 1.0f, 0.0f);
  }
}

void WeightedPrimitive::run(const Tensor& src, Tensor& dst) const {
  execute(prim,
          {{DNNL_ARG_SRC, wrap(src_md, src)},
           {DNNL_ARG_WEIGHTS, *weights},
           {DNNL_ARG_BIAS, bias},
           {DNNL_ARG_DST, wrap(dst_md, dst)}},
          scratch_md);
}

dnnl::memory constant_bias(const InferContext& ctx, int input, int64_t n, const char* op) {
  dnnl::memory m(dnnl::memory::desc({n}, dnnl::memory::data_type::f32, dnnl::memory::format_tag::x),
                 cpu_engine());
  float* b = static_cast<float*>(m.get_data_handle());
  if (const Tensor* t = ctx.value_or_null(input)) {
    ENGINE_CHECK(t->dtype() == DType::F32 && t->numel() == n, op, ": bias must be ", n,
                 " float32 values");
    std::memcpy(b, t->raw(), size_t(n) * sizeof(float));
  } else {
    ENGINE_CHECK(!ctx.has_input(input), op, ": bias must be a constant");
    std::memset(b, 0, size_t(n) * sizeof(float));
  }
  return m;
}

std::shared_ptr<const dnnl::memory> shared_weights(const Tensor& w,
                                                   const dnnl::memory::desc& user_md,
                                                   const dnnl::memory::desc& md) {
  static std::mutex mu;
  static std::map<std::pair<const void*, std::string>, std::weak_ptr<const dnnl::memory>> cache;
  std::string key(reinterpret_cast<const char*>(&md.data), sizeof(md.data));
  key.append(reinterpret_cast<const char*>(&user_md.data), sizeof(user_md.data));
  std::lock_guard<std::mutex> lock(mu);
  auto& slot = cache[{w.raw(), key}];
  if (auto hit = slot.lock()) return hit;
  for (auto it = cache.begin(); it != cache.end();)  // drop entries whose plans are gone
    it = it->second.expired() && &it->second != &slot ? cache.erase(it) : std::next(it);
  auto to = std::make_shared<dnnl::memory>(md, cpu_engine());
  dnnl::memory from = wrap(user_md, w);
  dnnl::stream s(cpu_engine());
  dnnl::reorder(from, *to).execute(s, from, *to);
  s.wait();
  slot = to;
  return to;
}

}  // namespace engine::onednn
