// QuantizeRows (vectorized, chosen per CPU) against the scalar formula it
// replaced, bit for bit, with each vector ISA this CPU runs: the int8 path's
// codes and scales must not change with the CPU or the vector width.
#include "model/kernels/quantize.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace attnserve {
namespace {

// The twin: one row at a time, std::nearbyint, no vector tricks.
void NaiveQuantizeRows(const std::vector<float>& x, int64_t m, int64_t rows,
                       int64_t k, std::vector<uint8_t>* q,
                       std::vector<float>* scale) {
  q->assign(rows * k, 0);
  scale->assign(rows, 0);
  for (int64_t r = 0; r < rows; ++r) {
    if (r >= m) {
      std::fill_n(q->begin() + r * k, k, uint8_t{128});
      (*scale)[r] = 1.f;
      continue;
    }
    float max = 0;
    for (int64_t c = 0; c < k; ++c)
      max = std::max(max, std::fabs(x[r * k + c]));
    const float s = max > 0 ? max / 127.f : 1.f;
    (*scale)[r] = s;
    for (int64_t c = 0; c < k; ++c) {
      const float v = std::nearbyint(x[r * k + c] / s) + 128;
      (*q)[r * k + c] = static_cast<uint8_t>(std::min(255.f, std::max(0.f, v)));
    }
  }
}

TEST(QuantizeTest, MatchesScalarFormulaBitForBit) {
  std::mt19937 rng(11);
  std::normal_distribution<float> normal(0.f, 3.f);
  for (int64_t k : {1, 15, 16, 17, 64, 768, 3072}) {
    for (int64_t m : {1, 5, 37}) {
      SCOPED_TRACE("k=" + std::to_string(k) + " m=" + std::to_string(m));
      const int64_t rows = m + 3;      // three padding rows
      std::vector<float> x(rows * k);  // (rows, k)
      for (float& v : x) v = normal(rng);
      // Row 0 holds exact ties: max 127 makes the scale 1, so x.5 values
      // land halfway and must round to even both ways.
      if (m > 1 && k >= 4) {
        x[0] = 127.f;
        x[1] = 2.5f;
        x[2] = -3.5f;
        x[3] = 0.5f;
      }
      if (m > 2) std::fill_n(&x[2 * k], k, 0.f);  // a row of zeros
      std::vector<uint8_t> want_q;
      std::vector<float> want_scale;
      NaiveQuantizeRows(x, m, rows, k, &want_q, &want_scale);
      std::vector<uint8_t> q(rows * k);
      std::vector<float> scale(rows);
      QuantizeRows(x.data(), m, rows, k, q.data(), scale.data());
      ASSERT_EQ(scale, want_scale);
      ASSERT_EQ(q, want_q);
      for (VectorIsa isa :
           {VectorIsa::kBaseline, VectorIsa::kAvx2, VectorIsa::kAvx512}) {
        if (!VectorIsaSupported(isa)) continue;
        SCOPED_TRACE("isa " + std::to_string(static_cast<int>(isa)));
        std::fill(q.begin(), q.end(), 0);
        QuantizeRows(x.data(), m, rows, k, q.data(), scale.data(), isa);
        ASSERT_EQ(scale, want_scale);
        ASSERT_EQ(q, want_q);
      }
      if (m > 1 && k >= 4) {
        EXPECT_EQ(q[1], 128 + 2);  // 2.5 → 2
        EXPECT_EQ(q[2], 128 - 4);  // -3.5 → -4
        EXPECT_EQ(q[3], 128);      // 0.5 → 0
        EXPECT_EQ(q[0], 255);
      }
    }
  }
}

}  // namespace
}  // namespace attnserve
