// int8 activations: per-row (per-token) symmetric quantization to u8, what
// the int8 linear layers feed oneDNN's u8·s8 matmul at every call.
#ifndef ATTNSERVE_MODEL_KERNELS_QUANTIZE_H_
#define ATTNSERVE_MODEL_KERNELS_QUANTIZE_H_

#include <cstdint>

namespace attnserve {

// u8 = round(x / scale) + 128: VNNI multiplies u8·s8, and the static zero
// point makes the code symmetric.
constexpr int32_t kInt8ZeroPoint = 128;

// x (m, k) into q (rows, k) and scale (rows): row r gets
// scale[r] = max |x[r, :]| / 127 (1 for a row of zeros) and
// q[r, c] = nearbyint(x[r, c] / scale[r]) + 128, so a token quantizes the
// same whatever it is batched with. Rows m..rows-1 (bucket padding) become
// zero codes (128) with scale 1. Rows are split over the OpenMP threads.
// Vectorized for AVX-512, AVX2 or the x86-64 baseline, the widest this CPU
// has; each bit-identical to the scalar formula (tests/quantize_test.cc).
void QuantizeRows(const float* x, int64_t m, int64_t rows, int64_t k,
                  uint8_t* q, float* scale);

// The vector ISAs QuantizeRows is compiled for, narrowest first.
enum class VectorIsa { kBaseline, kAvx2, kAvx512 };
VectorIsa BestVectorIsa();
bool VectorIsaSupported(VectorIsa isa);
// QuantizeRows with a given ISA's code (which this CPU must support).
void QuantizeRows(const float* x, int64_t m, int64_t rows, int64_t k,
                  uint8_t* q, float* scale, VectorIsa isa);

}  // namespace attnserve

#endif  // ATTNSERVE_MODEL_KERNELS_QUANTIZE_H_
