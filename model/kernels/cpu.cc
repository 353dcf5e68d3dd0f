#include "model/kernels/cpu.h"

#include "absl/strings/str_cat.h"
#include "oneapi/dnnl/dnnl.hpp"

namespace attnserve {

std::string EffectiveCpuIsa() {
  switch (dnnl::get_effective_cpu_isa()) {
    case dnnl::cpu_isa::sse41:
      return "sse41";
    case dnnl::cpu_isa::avx:
      return "avx";
    case dnnl::cpu_isa::avx2:
      return "avx2";
    case dnnl::cpu_isa::avx2_vnni:
      return "avx2_vnni";
    case dnnl::cpu_isa::avx512_mic:
      return "avx512_mic";
    case dnnl::cpu_isa::avx512_mic_4ops:
      return "avx512_mic_4ops";
    case dnnl::cpu_isa::avx512_core:
      return "avx512_core";
    case dnnl::cpu_isa::avx512_core_vnni:
      return "avx512_core_vnni";
    case dnnl::cpu_isa::avx512_core_bf16:
      return "avx512_core_bf16";
    case dnnl::cpu_isa::avx512_core_amx:
      return "avx512_core_amx";
    case dnnl::cpu_isa::all:
      return "all";
  }
  return "unknown";
}

int Int8WeightMax() {
  switch (dnnl::get_effective_cpu_isa()) {
    case dnnl::cpu_isa::avx2_vnni:
    case dnnl::cpu_isa::avx512_core_vnni:
    case dnnl::cpu_isa::avx512_core_bf16:
    case dnnl::cpu_isa::avx512_core_amx:
    case dnnl::cpu_isa::all:
      return 127;
    default:
      return 63;
  }
}

absl::Status CheckPrecisionSupported(Precision precision) {
  if (precision != Precision::kBFloat16) return absl::OkStatus();
  switch (dnnl::get_effective_cpu_isa()) {
    case dnnl::cpu_isa::avx512_core:
    case dnnl::cpu_isa::avx512_core_vnni:
    case dnnl::cpu_isa::avx512_core_bf16:
    case dnnl::cpu_isa::avx512_core_amx:
    case dnnl::cpu_isa::all:
      return absl::OkStatus();
    default:
      return absl::FailedPreconditionError(absl::StrCat(
          "--precision=bf16 needs a CPU with AVX-512: oneDNN runs ",
          EffectiveCpuIsa(),
          " here, which has no bf16 matmul; use fp32 or int8 (or "
          "--precision=auto)"));
  }
}

bool OneDnnUsesAmx() {
  return dnnl::get_effective_cpu_isa() == dnnl::cpu_isa::avx512_core_amx;
}

Precision AutoPrecision(std::string* why) {
  const std::string isa = EffectiveCpuIsa();
  if (OneDnnUsesAmx()) {
    *why = absl::StrCat("oneDNN runs ", isa,
                        ": AMX tiles make bf16 matmuls "
                        "several times faster than fp32");
    return Precision::kBFloat16;
  }
  *why = absl::StrCat("oneDNN runs ", isa,
                      ", no AMX: bf16 is not reliably faster than fp32 here");
  return Precision::kFloat32;
}

}  // namespace attnserve
