// Channels-last pools (domain "engine", made by the lower-onednn pass) on oneDNN:
// NhwcMaxPool / NhwcAveragePool (ONNX attributes; no ceil_mode, no dilation, one output) and
// NhwcGlobalAveragePool / NhwcGlobalMaxPool. X [N,H,W,C] -> Y [N,OH,OW,C]. Float32; the max
// pools also uint8 / int8.
#include "backends/onednn/onednn.h"
#include "backends/registry.h"
#include "ops/pool_geom.h"

namespace engine::onednn {
namespace {

using tag = dnnl::memory::format_tag;
using dt = dnnl::memory::data_type;

enum class Kind { Max, Avg, GlobalMax, GlobalAvg };

struct PoolState {
  dnnl::pooling_forward prim;
  dnnl::memory::desc src_md, dst_md, scratch_md;
};

struct Geom {
  Dims out;  // NHWC
  dnnl::memory::dims kernel, strides, pl, pr;
};

Geom geometry(const Node& n, Kind kind, const Dims& x) {
  nchw_dims_of_nhwc(x, (n.op_type + ": input X").c_str());
  Geom g;
  if (kind == Kind::GlobalMax || kind == Kind::GlobalAvg) {
    g.out = {x[0], 1, 1, x[3]};
    g.kernel = {x[1], x[2]};
    g.strides = {1, 1};
    g.pl = g.pr = {0, 0};
    return g;
  }
  ENGINE_CHECK(n.attrs.get_int("ceil_mode", 0) == 0, n.op_type, ": ceil_mode is not supported");
  const pool::PoolGeom p = pool::pool_geometry(n, nhwc_to_nchw(x));
  for (int64_t d : p.dil) ENGINE_CHECK(d == 1, n.op_type, ": dilations are not supported");
  g.out = {x[0], p.out[0], p.out[1], x[3]};
  g.kernel = {p.kernel[0], p.kernel[1]};
  g.strides = {p.stride[0], p.stride[1]};
  g.pl = {p.pad_begin[0], p.pad_begin[1]};
  // oneDNN wants out = (in + pl + pr - k) / s + 1 exactly; the right padding no window reaches
  // changes nothing.
  g.pr = {(p.out[0] - 1) * p.stride[0] + p.kernel[0] - x[1] - p.pad_begin[0],
          (p.out[1] - 1) * p.stride[1] + p.kernel[1] - x[2] - p.pad_begin[1]};
  for (int64_t& v : g.pr) v = std::max<int64_t>(v, 0);
  return g;
}

// Max pools also take uint8 / int8 (the maximum is exact); average pools only float32.
template <Kind K>
void infer(InferContext& ctx) {
  const DType t = ctx.dtype(0);
  const bool max = K == Kind::Max || K == Kind::GlobalMax;
  ENGINE_CHECK(t == DType::F32 || (max && (t == DType::U8 || t == DType::I8)), ctx.node().op_type,
               ": X must be float32", max ? ", uint8 or int8" : "", ", got ", dtype_name(t));
  ctx.set_output(0, t, geometry(ctx.node(), K, ctx.shape(0)).out);
}

dt dnnl_type(DType t) {
  return t == DType::U8 ? dt::u8 : t == DType::I8 ? dt::s8 : dt::f32;
}

template <Kind K>
std::shared_ptr<const void> prepare(const InferContext& ctx) {
  const Dims& x = ctx.shape(0);
  const Geom g = geometry(ctx.node(), K, x);
  auto st = std::make_shared<PoolState>();
  const dt t = dnnl_type(ctx.dtype(0));
  st->src_md = dnnl::memory::desc(nchw_dims_of_nhwc(x, "X"), t, tag::nhwc);
  st->dst_md = dnnl::memory::desc(nchw_dims_of_nhwc(g.out, "Y"), t, tag::nhwc);
  dnnl::algorithm alg = dnnl::algorithm::pooling_max;
  if (K == Kind::Avg)
    alg = ctx.attrs().get_int("count_include_pad", 0)
              ? dnnl::algorithm::pooling_avg_include_padding
              : dnnl::algorithm::pooling_avg_exclude_padding;
  if (K == Kind::GlobalAvg) alg = dnnl::algorithm::pooling_avg_exclude_padding;
  const dnnl::pooling_forward::desc d(dnnl::prop_kind::forward_inference, alg, st->src_md,
                                      st->dst_md, g.strides, g.kernel, g.pl, g.pr);
  const dnnl::pooling_forward::primitive_desc pd(d, base_attr(), cpu_engine());
  st->prim = dnnl::pooling_forward(pd);
  st->scratch_md = pd.scratchpad_desc();
  return st;
}

void kernel(KernelContext& kc) {
  const auto* st = static_cast<const PoolState*>(kc.state);
  ENGINE_CHECK(st, kc.node.op_type, ": not prepared");
  execute(st->prim,
          {{DNNL_ARG_SRC, wrap(st->src_md, kc.in(0))}, {DNNL_ARG_DST, wrap(st->dst_md, kc.out(0))}},
          st->scratch_md);
}

template <Kind K>
void add(OpRegistry& r, const char* name) {
  OpSchema s;
  s.op_type = name;
  s.domain = "engine";
  if (K == Kind::Max || K == Kind::Avg)
    s.validate = [](const Node& n) {
      pool::validate_pool_attrs(n, K == Kind::Max ? pool::PoolKind::Max : pool::PoolKind::Avg);
    };
  s.infer = infer<K>;
  s.prepare = prepare<K>;
  s.kernel = kernel;
  r.add(std::move(s));
}

}  // namespace

void register_onednn_pool(OpRegistry& r) {
  add<Kind::Max>(r, "NhwcMaxPool");
  add<Kind::Avg>(r, "NhwcAveragePool");
  add<Kind::GlobalMax>(r, "NhwcGlobalMaxPool");
  add<Kind::GlobalAvg>(r, "NhwcGlobalAveragePool");
}

}  // namespace engine::onednn
