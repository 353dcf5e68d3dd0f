#include "common/half.h"

#include <cstring>

namespace attnserve {
namespace {

uint32_t Bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

float FromBits(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

}  // namespace

float HalfToFloat(uint16_t h) {
  const uint32_t sign = (h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1f;
  uint32_t mant = h & 0x3ffu;
  if (exp == 0x1f) return FromBits(sign | 0x7f800000u | (mant << 13));
  if (exp != 0) return FromBits(sign | ((exp + 112) << 23) | (mant << 13));
  if (mant == 0) return FromBits(sign);
  // Subnormal: shift the mantissa up to an implicit 1, lowering the exponent.
  exp = 113;
  while ((mant & 0x400u) == 0) {
    mant <<= 1;
    --exp;
  }
  return FromBits(sign | (exp << 23) | ((mant & 0x3ffu) << 13));
}

float BFloat16ToFloat(uint16_t b) { return FromBits(uint32_t{b} << 16); }

uint16_t FloatToHalf(float f) {
  // After F. Giesen, "float_to_half_fast3_rtne": the subnormal case lets the
  // FPU's round-to-nearest-even do the rounding by adding a magic number whose
  // ulp is the half subnormal step; the normal case adds the rounding bias
  // (0xfff + lowest kept bit) to the bits before truncating 13 of them.
  constexpr uint32_t kF32Infinity = 255u << 23;
  constexpr uint32_t kF16Overflow = (127u + 16) << 23;  // 65536.0f
  constexpr uint32_t kDenormMagic = ((127u - 15) + (23 - 10) + 1) << 23;
  uint32_t u = Bits(f);
  const uint32_t sign = u & 0x80000000u;
  u ^= sign;
  uint16_t h;
  if (u >= kF16Overflow) {
    // Inf stays inf, NaN becomes the quiet NaN; 65520 ≤ |f| rounds to inf in
    // the normal branch below, values ≥ 65536 land here.
    h = u > kF32Infinity ? 0x7e00 : 0x7c00;
  } else if (u < (113u << 23)) {  // |f| < 2^-14: half subnormal or zero
    const float sum = FromBits(u) + FromBits(kDenormMagic);
    h = static_cast<uint16_t>(Bits(sum) - kDenormMagic);
  } else {
    const uint32_t mant_odd = (u >> 13) & 1;
    u += (static_cast<uint32_t>(15 - 127) << 23) + 0xfff;  // rebias, round
    u += mant_odd;                                         // ties to even
    h = static_cast<uint16_t>(u >> 13);
  }
  return static_cast<uint16_t>(h | (sign >> 16));
}

}  // namespace attnserve
