// bf16 values as the encoder's bf16 buffers hold them: the upper 16 bits of
// an IEEE f32, the layout oneDNN's dt::bf16 reads and writes.
#ifndef ATTNSERVE_MODEL_KERNELS_BF16_H_
#define ATTNSERVE_MODEL_KERNELS_BF16_H_

#include <cstdint>
#include <cstring>

namespace attnserve {

using bf16_t = uint16_t;

// Round to nearest even, as oneDNN's f32 → bf16 conversion does (NaN kept a
// NaN). For tests and host-side glue; kernels convert inside oneDNN.
inline bf16_t ToBf16(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, sizeof(bits));
  if ((bits & 0x7fffffffu) > 0x7f800000u) return bf16_t(bits >> 16 | 0x40);
  bits += 0x7fffu + ((bits >> 16) & 1u);
  return bf16_t(bits >> 16);
}

inline float FromBf16(bf16_t b) {
  const uint32_t bits = uint32_t{b} << 16;
  float f;
  std::memcpy(&f, &bits, sizeof(f));
  return f;
}

}  // namespace attnserve

#endif  // ATTNSERVE_MODEL_KERNELS_BF16_H_
