#include "model/kernels/quantize.h"

#include <algorithm>
#include <cmath>

namespace attnserve {

namespace {

// Adding 1.5·2^23 to a float of magnitude < 2^22 leaves no fraction bits,
// so the add rounds to the nearest integer, ties to even: nearbyint in the
// default rounding mode, which the compiler (without -ffast-math) may not
// fold away, and which vectorizes where a call to nearbyint does not.
constexpr float kRoundMagic = 12582912.f;

// One row: 16 partial maxima (max is exact in any order, so the compiler
// may vectorize them without reassociating anything), then the codes.
// Inlined into one function per vector ISA below.
inline __attribute__((always_inline)) void QuantizeRowBody(const float* in,
                                                           int64_t k,
                                                           uint8_t* out,
                                                           float* scale) {
  float lanes[16] = {};  // (16) partial max |x|
  int64_t c = 0;
  for (; c + 16 <= k; c += 16) {
    for (int j = 0; j < 16; ++j) {
      lanes[j] = std::max(lanes[j], std::fabs(in[c + j]));
    }
  }
  float max = 0;
  for (; c < k; ++c) max = std::max(max, std::fabs(in[c]));
  for (float lane : lanes) max = std::max(max, lane);
  const float s = max > 0 ? max / 127.f : 1.f;
  *scale = s;
  for (c = 0; c < k; ++c) {
    // |in / s| ≤ 127 (plus rounding): well inside the magic's range.
    float v = (in[c] / s + kRoundMagic) - kRoundMagic;
    v = std::min(255.f, std::max(0.f, v + float{kInt8ZeroPoint}));
    out[c] = static_cast<uint8_t>(static_cast<int32_t>(v));
  }
}

// Chosen by a function pointer, not GCC's target_clones: its ifunc resolver
// runs before the sanitizer runtimes start and crashed the TSan build.
using RowFn = void (*)(const float*, int64_t, uint8_t*, float*);

__attribute__((target("avx512f"))) void QuantizeRowAvx512(const float* in,
                                                          int64_t k,
                                                          uint8_t* out,
                                                          float* scale) {
  QuantizeRowBody(in, k, out, scale);
}

__attribute__((target("avx2"))) void QuantizeRowAvx2(const float* in, int64_t k,
                                                     uint8_t* out,
                                                     float* scale) {
  QuantizeRowBody(in, k, out, scale);
}

void QuantizeRowBaseline(const float* in, int64_t k, uint8_t* out,
                         float* scale) {
  QuantizeRowBody(in, k, out, scale);
}

RowFn RowFor(VectorIsa isa) {
  switch (isa) {
    case VectorIsa::kAvx512:
      return QuantizeRowAvx512;
    case VectorIsa::kAvx2:
      return QuantizeRowAvx2;
    case VectorIsa::kBaseline:
      break;
  }
  return QuantizeRowBaseline;
}

}  // namespace

VectorIsa BestVectorIsa() {
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f")) return VectorIsa::kAvx512;
  if (__builtin_cpu_supports("avx2")) return VectorIsa::kAvx2;
  return VectorIsa::kBaseline;
}

bool VectorIsaSupported(VectorIsa isa) {
  return static_cast<int>(isa) <= static_cast<int>(BestVectorIsa());
}

void QuantizeRows(const float* x, int64_t m, int64_t rows, int64_t k,
                  uint8_t* q, float* scale) {
  static const VectorIsa best = BestVectorIsa();
  QuantizeRows(x, m, rows, k, q, scale, best);
}

void QuantizeRows(const float* x, int64_t m, int64_t rows, int64_t k,
                  uint8_t* q, float* scale, VectorIsa isa) {
  const RowFn quantize_row = RowFor(isa);
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; ++r) {
    uint8_t* out = q + r * k;  // (K)
    if (r >= m) {
      std::fill(out, out + k, static_cast<uint8_t>(kInt8ZeroPoint));
      scale[r] = 1.f;
      continue;
    }
    quantize_row(x + r * k, k, out, &scale[r]);
  }
}

}  // namespace attnserve
