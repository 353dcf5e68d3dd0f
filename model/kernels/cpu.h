// What oneDNN runs on this machine, and the precision that pays off there.
//
// The build machines change CPU between sessions (AMD Zen 4; Intel Xeon with
// AVX-512 BF16 but no AMX; Intel Xeon with AMX). On oneDNN 2.6.3 bf16
// matmuls are ~6× faster than fp32 with AMX tiles, but *slower* than fp32 on
// an Intel CPU with AVX-512 BF16 and no AMX. ONEDNN_MAX_CPU_ISA caps the ISA.
#ifndef ATTNSERVE_MODEL_KERNELS_CPU_H_
#define ATTNSERVE_MODEL_KERNELS_CPU_H_

#include <string>

#include "absl/status/status.h"
#include "model/types.h"

namespace attnserve {

// The ISA oneDNN dispatches to: "avx512_core_amx", "avx512_core_bf16",
// "avx512_core_vnni", "avx512_core", "avx2_vnni", "avx2", … (after any
// ONEDNN_MAX_CPU_ISA cap).
std::string EffectiveCpuIsa();

// True where oneDNN dispatches to AMX tiles (after any ONEDNN_MAX_CPU_ISA cap).
bool OneDnnUsesAmx();

// int8 weights' largest code. u8·s8 products are summed in pairs: VNNI
// (and AMX) accumulate them in int32, but without VNNI oneDNN uses
// vpmaddubsw, whose 16-bit pair sums saturate (255·127·2 > 32767); there
// weights keep 7 bits (±63) so no pair overflows (255·63·2 = 32130).
// Measured without VNNI at 8 bits (ONEDNN_MAX_CPU_ISA=AVX512_CORE): hidden
// states' cosine to fp32 fell to 0.93.
int Int8WeightMax();

// OK when oneDNN can run `precision` here; FailedPrecondition naming the ISA
// otherwise (bf16 matmuls need AVX-512: oneDNN 2.6 has none on AVX2).
absl::Status CheckPrecisionSupported(Precision precision);

// --precision=auto: bf16 where oneDNN runs AMX, fp32 elsewhere (exact
// attention maps are the default promise; bf16 is chosen only where it is
// several times faster). `why` says which ISA decided it.
Precision AutoPrecision(std::string* why);

}  // namespace attnserve

#endif  // ATTNSERVE_MODEL_KERNELS_CPU_H_
