// 16-bit float conversions: IEEE half (safetensors F16, FLOAT16 tensors on the
// wire) and bfloat16 (safetensors BF16). Exact for every input; NaN stays NaN.
#ifndef ATTNSERVE_COMMON_HALF_H_
#define ATTNSERVE_COMMON_HALF_H_

#include <cstdint>

namespace attnserve {

float HalfToFloat(uint16_t h);
float BFloat16ToFloat(uint16_t b);
// Rounds to nearest, ties to even; overflow gives ±inf, NaN the quiet NaN.
uint16_t FloatToHalf(float f);

}  // namespace attnserve

#endif  // ATTNSERVE_COMMON_HALF_H_
