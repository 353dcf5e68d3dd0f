#include "server/convert.h"

#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"

namespace attnserve {
namespace {

constexpr bool kLittleEndian = __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__;

uint32_t Bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof(u));
  return u;
}

float FromBits(uint32_t u) {
  float f;
  std::memcpy(&f, &u, sizeof(f));
  return f;
}

// Appends `n` values of T to `out` as little-endian bytes.
template <typename T>
void PutLittleEndian(const T* values, size_t n, char* out) {
  if constexpr (kLittleEndian) {
    std::memcpy(out, values, n * sizeof(T));
  } else {
    for (size_t i = 0; i < n; ++i) {
      typename std::conditional<sizeof(T) == 4, uint32_t, uint16_t>::type u;
      std::memcpy(&u, &values[i], sizeof(T));
      for (size_t b = 0; b < sizeof(T); ++b) {
        out[i * sizeof(T) + b] = static_cast<char>((u >> (8 * b)) & 0xff);
      }
    }
  }
}

void SetFloat32Tensor(const std::vector<float>& values,
                      std::initializer_list<int64_t> shape, v1::Tensor* t) {
  t->set_dtype(v1::FLOAT32);
  for (int64_t d : shape) t->add_shape(d);
  std::string* data = t->mutable_data();
  data->resize(values.size() * sizeof(float));
  PutLittleEndian(values.data(), values.size(), data->data());
}

}  // namespace

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

absl::Status ToSequenceResult(const OutputSpec& spec, const ModelConfig& config,
                              int64_t num_tokens, SequenceOutput& output,
                              v1::SequenceResult* result) {
  const int64_t t = num_tokens;
  const int64_t hidden = config.hidden_size;
  const int64_t heads = config.num_heads;
  auto size_error = [](const char* what, size_t got, int64_t want) {
    return absl::InternalError(absl::StrCat("model returned ", got, " ", what,
                                            " values, expected ", want));
  };

  if (spec.hidden_states) {
    if (static_cast<int64_t>(output.hidden.size()) != t * hidden) {
      return size_error("hidden", output.hidden.size(), t * hidden);
    }
    SetFloat32Tensor(output.hidden, {t, hidden},
                     result->mutable_hidden_states());
    std::vector<float>().swap(output.hidden);
  }
  if (spec.embedding) {
    if (static_cast<int64_t>(output.embedding.size()) != hidden) {
      return size_error("embedding", output.embedding.size(), hidden);
    }
    SetFloat32Tensor(output.embedding, {hidden}, result->mutable_embedding());
  }
  if (spec.attention) {
    // output.attention: (model layers asked, heads, T, T), layers ascending.
    const int64_t map = t * t;
    const int64_t model_layers = spec.layer_slots.size();
    if (static_cast<int64_t>(output.attention.size()) !=
        model_layers * heads * map) {
      return size_error("attention", output.attention.size(),
                        model_layers * heads * map);
    }
    const int64_t out_layers = spec.attention_layers.size();
    const int64_t out_heads = spec.attention_heads.size();
    v1::Tensor* tensor = result->mutable_attention();
    tensor->set_dtype(spec.attention_dtype);
    for (int64_t d : {out_layers, out_heads, t, t}) tensor->add_shape(d);
    const bool half = spec.attention_dtype == v1::FLOAT16;
    const size_t elem = half ? sizeof(uint16_t) : sizeof(float);
    std::string* data = tensor->mutable_data();
    data->resize(out_layers * out_heads * map * elem);
    char* dst = data->data();
    std::vector<uint16_t> halves(half ? map : 0);
    for (int64_t l = 0; l < out_layers; ++l) {
      for (int64_t h = 0; h < out_heads; ++h) {
        // (T, T) map of model layer attention_layers[l], head
        // attention_heads[h]
        const float* src =
            output.attention.data() +
            (spec.layer_slots[l] * heads + spec.attention_heads[h]) * map;
        if (half) {
          for (int64_t i = 0; i < map; ++i) halves[i] = FloatToHalf(src[i]);
          PutLittleEndian(halves.data(), map, dst);
        } else {
          PutLittleEndian(src, map, dst);
        }
        dst += map * elem;
      }
    }
    std::vector<float>().swap(output.attention);
  }
  return absl::OkStatus();
}

}  // namespace attnserve
