#include "backends/kernels.h"

#include <oneapi/dnnl/dnnl.hpp>

#include <string>

#include "backends/registry.h"
#include "backends/x86/f32_gemm.h"
#include "ops/igemm.h"

namespace engine {

namespace {

const char* onednn_isa_name(dnnl::cpu_isa isa) {
  switch (isa) {
    case dnnl::cpu_isa::sse41:
      return "sse41";
    case dnnl::cpu_isa::avx:
      return "avx";
    case dnnl::cpu_isa::avx2:
      return "avx2";
    case dnnl::cpu_isa::avx2_vnni:
      return "avx2_vnni";
    case dnnl::cpu_isa::avx512_core:
      return "avx512_core";
    case dnnl::cpu_isa::avx512_core_vnni:
      return "avx512_core_vnni";
    case dnnl::cpu_isa::avx512_core_bf16:
      return "avx512_core_bf16";
    case dnnl::cpu_isa::avx512_core_amx:
      return "avx512_core_amx";
    default:
      return "other";
  }
}

const char* u8s8_path(IgemmIsa isa) {
  switch (isa) {
    case IgemmIsa::Avx512Vnni:
      return "u8 x s8 GEMM, VPDPBUSD zmm, register tile 6 pixels x 64 channels; depthwise: avx512 "
             "loops over channels";
    case IgemmIsa::AvxVnni:
      return "u8 x s8 GEMM, VPDPBUSD ymm (VEX), tile 6 x 16; depthwise: avx2 loops";
    case IgemmIsa::Avx2:
      return "no VNNI: u8 / s8 widened to int16, VPMADDWD (exact; VPMADDUBSW would saturate "
             "int16), "
             "tile 4 x 16; depthwise: avx2 loops";
    default:
      return "reference loops";
  }
}

const char* yes(bool b) {
  return b ? "yes" : "no";
}

}  // namespace

std::vector<std::pair<std::string, std::string>> kernel_selection() {
  std::vector<std::pair<std::string, std::string>> rows;
  __builtin_cpu_init();
  rows.push_back({"CPU features", std::string("avx2 ") + yes(__builtin_cpu_supports("avx2")) +
                                      ", avx512f " + yes(__builtin_cpu_supports("avx512f")) +
                                      ", avx512bw " + yes(__builtin_cpu_supports("avx512bw")) +
                                      ", avx512vl " + yes(__builtin_cpu_supports("avx512vl")) +
                                      ", avx512_vnni " + yes(__builtin_cpu_supports("avx512vnni")) +
                                      ", avx512_vbmi " + yes(__builtin_cpu_supports("avx512vbmi")) +
                                      ", avx_vnni " + yes(cpu_has_avx_vnni())});
  const IgemmIsa best = igemm_best_isa(), used = igemm_isa();
  std::string gemm = igemm_isa_name(used);
  if (used != best)
    gemm += std::string(" (lowered by ENGINE_ISA; best here: ") + igemm_isa_name(best) + ")";
  rows.push_back({"integer GEMM (QConv, QGemm, ...)",
                  gemm + "; ENGINE_ISA=reference|avx2|avx_vnni|avx512_vnni"});
  rows.push_back({"INT8 conv, channels-last (NhwcQConv)", u8s8_path(used)});
  rows.push_back(
      {"requantization",
       used == IgemmIsa::Reference ? "reference loops"
       : used == IgemmIsa::Avx512Vnni
           ? std::string("avx512 SIMD (channels-last tiles; fixed mode "
                         "lean when multipliers < 1/2 and zp >= 0") +
                 (__builtin_cpu_supports("avx512vbmi") ? ", residual-sum terms by VPERMI2B table"
                                                       : "") +
                 "), avx2 SIMD (rows)"
           : "avx2 SIMD"});
  const bool own_float = x86::f32_kernels_available();
  rows.push_back({"float inverted residual (NhwcMBConv)",
                  own_float
                      ? "avx512f register tiles, row by row (fuse-mbconv: expanded maps "
                        ">= 1 MiB per sample)"
                      : "off: separate oneDNN convs (needs avx512f, ENGINE_ISA not lowered)"});
  rows.push_back({"float 1x1 conv with a Sum or a stride (NhwcConv)",
                  own_float ? "avx512f register-tile GEMM, Sum prefetched, strided pixels gathered "
                              "(with a Sum and stride 1: >= 256 output pixels; smaller maps and "
                              "other convs: oneDNN)"
                            : "off: oneDNN with a sum post-op (needs avx512f, ENGINE_ISA not "
                              "lowered)"});
  rows.push_back({"float conv on small maps (NhwcConv)",
                  own_float ? "avx512f implicit GEMM, k-blocked, each weight read once (kernels > "
                              "1x1, one group, <= 64 output pixels in the batch)"
                            : "off: oneDNN (needs avx512f, ENGINE_ISA not lowered)"});
  rows.push_back({"float first conv + max pool (NhwcStem)",
                  own_float ? "avx512f register tiles over the padded NCHW input, pooled row by "
                              "row (fuse-stem: <= 4 input channels)"
                            : "off: oneDNN conv and pool (needs avx512f, ENGINE_ISA not lowered)"});
  const dnnl_version_t* v = dnnl_version();
  rows.push_back({"float conv / pool / inner product",
                  "oneDNN " + std::to_string(v->major) + "." + std::to_string(v->minor) + "." +
                      std::to_string(v->patch) + ", " +
                      onednn_isa_name(dnnl::get_effective_cpu_isa()) +
                      " (ONEDNN_MAX_CPU_ISA lowers it; --backend reference avoids it)"});
  return rows;
}

}  // namespace engine
