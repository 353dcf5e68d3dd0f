// LayerNorm (oneDNN layer_normalization, in place) against naive::LayerNorm,
// the two-pass double twin in tests/naive.h, on random shapes: one row, width
// one, BERT's widths, BERT's eps (1e-12) and an eps that dominates the
// variance, unit values, large values and a large mean over a small spread.
#include "model/kernels/layer_norm.h"

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <ostream>
#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/naive.h"

namespace attnserve {
namespace {

// How a case's inputs are drawn: x = mean + spread · N(0, 1).
struct Values {
  const char* name;
  float mean, spread;
};

constexpr Values kUnit{"unit", 0.f, 1.f};
constexpr Values kLarge{"large", 0.f, 1e4f};  // |x| up to ~5e4
// A mean 1000 times the spread: x resolves its deviation only to
// ulp(1000) = 6e-5, and a one-pass E[x²] − E[x]² in float (ulp(1e6) = 0.06)
// would lose most of the unit variance.
constexpr Values kOffset{"offset", 1e3f, 1.f};
// Variance 1e-4 with eps 1e-3: eps dominates √(var + eps).
constexpr Values kSmall{"small", 0.f, 1e-2f};
// Every element 3.7: the variance is 0 and the output is β. oneDNN's float
// mean is off by an ulp or two, and γ/√eps multiplies that: ~2.4e-4 at
// eps 1e-5, but up to ~0.4 at BERT's 1e-12, where float32 cannot resolve a
// zero-variance row (PyTorch's fp32 LayerNorm has the same limit), so this
// case runs at 1e-5 only.
constexpr Values kConstant{"constant", 3.7f, 0.f};

struct Case {
  int64_t rows, width;
  float eps;
  Values values;
  // Bound on max |oneDNN − twin|: about 10× the largest error measured in
  // its group below (oneDNN 2.6.3 on an AVX-512 CPU), rounded up. Float sums
  // in another order pass; each wrong formula tried in the twin (eps outside
  // the root, the unbiased variance, γ and β swapped) failed some case by
  // ≥ 2e-3.
  double tol;
};

// "rows7_width33_unit_eps1e-12" with '-' and '.' spelled out for gtest:
// "rows7_width33_unit_eps1em12", "rows3_width64_small_eps0p001".
std::string CaseName(const Case& c) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%g", c.eps);
  std::string eps = buf;
  for (char& ch : eps) {
    if (ch == '-') ch = 'm';
    if (ch == '.' || ch == '+') ch = 'p';
  }
  return "rows" + std::to_string(c.rows) + "_width" + std::to_string(c.width) +
         "_" + c.values.name + "_eps" + eps;
}

void PrintTo(const Case& c, std::ostream* os) { *os << CaseName(c); }

std::vector<float> Draw(size_t n, float mean, float spread, std::mt19937* rng) {
  std::normal_distribution<float> normal(0.f, 1.f);
  std::vector<float> v(n);
  for (float& x : v) x = mean + spread * normal(*rng);
  return v;
}

class LayerNormTest : public ::testing::TestWithParam<Case> {};

TEST_P(LayerNormTest, MatchesNaiveTwin) {
  const Case c = GetParam();
  std::mt19937 rng(static_cast<uint32_t>(c.rows * 7919 + c.width));
  const std::vector<float> gamma = Draw(c.width, 1.f, 0.2f, &rng);  // (width)
  const std::vector<float> beta = Draw(c.width, 0.f, 0.5f, &rng);   // (width)
  std::vector<float> x = Draw(c.rows * c.width, c.values.mean, c.values.spread,
                              &rng);  // (rows, width)
  const std::vector<float> want = naive::LayerNorm(
      c.rows, c.width, x.data(), gamma.data(), beta.data(), c.eps);
  DnnlContext ctx;
  LayerNorm layer_norm(&ctx, c.width, c.eps);
  ASSERT_TRUE(layer_norm.Run(c.rows, x.data(), gamma, beta).ok());
  ctx.stream.wait();
  char error[32];
  std::snprintf(error, sizeof(error), "%.3g", naive::MaxAbsError(x, want));
  RecordProperty("max_abs_error", error);
  EXPECT_TRUE(naive::AllNear(x, want, c.tol));
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, LayerNormTest,
    ::testing::Values(
        // Width 1: each row is its own mean, so the output is exactly β
        // (measured error 0; any error fails).
        Case{1, 1, 1e-12f, kUnit, 0.0}, Case{7, 1, 1e-5f, kLarge, 0.0},
        // Measured ≤ 1e-6 (a few float ulps of outputs up to ~5).
        Case{1, 2, 1e-12f, kUnit, 1e-5}, Case{1, 768, 1e-12f, kUnit, 1e-5},
        Case{5, 33, 1e-12f, kUnit, 1e-5}, Case{16, 128, 1e-12f, kUnit, 1e-5},
        Case{128, 768, 1e-12f, kUnit, 1e-5},  // BERT-base rows
        Case{17, 1024, 1e-12f, kUnit, 1e-5},  // BERT-large rows
        Case{9, 768, 1e-12f, kLarge, 1e-5}, Case{3, 64, 1e-3f, kSmall, 1e-5},
        Case{3, 64, 1.f, kUnit, 1e-5},
        // Measured 1.4e-4: the float mean of values near 1000 is off by
        // ~ulp(1000) = 6e-5, a tenth of a per-mille of the unit spread.
        Case{9, 768, 1e-5f, kOffset, 2e-3},
        // Measured 2.4e-4 (see kConstant).
        Case{4, 768, 1e-5f, kConstant, 3e-3}),
    [](const ::testing::TestParamInfo<Case>& info) {
      return CaseName(info.param);
    });

// One LayerNorm serves every layer (the primitive does not depend on γ and
// β) and every row count: interleaved calls with two γ/β pairs and three
// row counts each match the twin.
TEST(LayerNormTest, OneKernelServesManyGammasAndRowCounts) {
  const int64_t width = 48;
  const float eps = 1e-12f;
  std::mt19937 rng(5);
  const std::vector<std::vector<float>> gammas = {Draw(width, 1.f, 0.2f, &rng),
                                                  Draw(width, 2.f, 0.5f, &rng)};
  const std::vector<std::vector<float>> betas = {Draw(width, 0.f, 0.5f, &rng),
                                                 Draw(width, -1.f, 0.5f, &rng)};
  DnnlContext ctx;
  LayerNorm layer_norm(&ctx, width, eps);
  int call = 0;
  for (int64_t rows : {3, 16, 3, 1, 16}) {
    for (int p = 0; p < 2; ++p, ++call) {
      std::vector<float> x = Draw(rows * width, 0.f, 1.f, &rng);
      const std::vector<float> want = naive::LayerNorm(
          rows, width, x.data(), gammas[p].data(), betas[p].data(), eps);
      ASSERT_TRUE(layer_norm.Run(rows, x.data(), gammas[p], betas[p]).ok());
      ctx.stream.wait();
      EXPECT_TRUE(naive::AllNear(x, want, 1e-5))
          << "call " << call << ": rows " << rows << ", gamma/beta " << p;
    }
  }
}

// Run(rows, ...) normalizes exactly `rows` rows: rows past them in the same
// buffer (the encoder's bucket scratch) are left as they were, bit for bit.
TEST(LayerNormTest, TouchesOnlyTheGivenRows) {
  const int64_t width = 32, rows = 5, extra = 3;
  std::mt19937 rng(9);
  const std::vector<float> gamma = Draw(width, 1.f, 0.2f, &rng);
  const std::vector<float> beta = Draw(width, 0.f, 0.5f, &rng);
  std::vector<float> x =
      Draw((rows + extra) * width, 0.f, 3.f, &rng);  // (rows + extra, width)
  const std::vector<float> before = x;
  DnnlContext ctx;
  LayerNorm layer_norm(&ctx, width, 1e-12f);
  ASSERT_TRUE(layer_norm.Run(rows, x.data(), gamma, beta).ok());
  ctx.stream.wait();
  const std::vector<float> head(x.begin(), x.begin() + rows * width);
  const std::vector<float> tail(x.begin() + rows * width, x.end());
  EXPECT_TRUE(
      naive::AllNear(head,
                     naive::LayerNorm(rows, width, before.data(), gamma.data(),
                                      beta.data(), 1e-12f),
                     1e-5));
  EXPECT_TRUE(naive::AllNear(
      tail, std::vector<float>(before.begin() + rows * width, before.end()),
      0.0));
}

// The comparison the differential tests rely on can fail: on NaN, on
// infinity, on a size mismatch, and just past the tolerance.
TEST(AllNearTest, FailsOnNanInfinitySizeAndError) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  EXPECT_TRUE(naive::AllNear({1.f, 2.f}, {1.f, 2.f + 1e-6f}, 1e-5));
  EXPECT_FALSE(naive::AllNear({1.f, 2.f}, {1.f, 2.1f}, 1e-5));
  EXPECT_FALSE(naive::AllNear({nan, 2.f}, {1.f, 2.f}, 1e-5));
  EXPECT_FALSE(naive::AllNear({1.f, nan}, {1.f, 2.f}, 1e9));
  EXPECT_FALSE(naive::AllNear({1.f, 2.f}, {1.f, nan}, 1e9));
  EXPECT_FALSE(naive::AllNear({inf}, {inf}, 1e9));
  EXPECT_FALSE(naive::AllNear({inf}, {1.f}, 1e9));
  EXPECT_FALSE(naive::AllNear({1.f}, {1.f, 2.f}, 1e9));
  EXPECT_FALSE(naive::AllNear({}, {1.f}, 1e9));
  EXPECT_FALSE(naive::AllNear({}, {}, 0.0));  // nothing compared is no match
  EXPECT_TRUE(std::isnan(naive::MaxAbsError({0.f, nan, 5.f}, {0.f, 0.f, 0.f})));
  EXPECT_EQ(naive::MaxAbsError({1.f}, {}), INFINITY);
  EXPECT_EQ(naive::MaxAbsError({1.f, -3.f}, {1.5f, 0.f}), 3.0);
}

}  // namespace
}  // namespace attnserve
