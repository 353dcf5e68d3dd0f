// Per-head statistics, head divergence, rollout and query selection against
// values worked out by hand on small handmade maps, and against independent
// formulas (JS as an entropy difference, rollout by the other association).
#include "model/encoder/head_stats.h"

#include <cmath>
#include <random>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/golden.h"

namespace attnserve {
namespace {

using ::testing::HasSubstr;

constexpr double kTol = 1e-12;  // double sums of a few float inputs
const double kLn2 = std::log(2.0);

// (heads, t, t) with head h's row i given by `row(h, i, j)`.
template <typename F>
std::vector<float> Maps(int64_t heads, int64_t t, F row) {
  std::vector<float> p(heads * t * t);
  for (int64_t h = 0; h < heads; ++h) {
    for (int64_t i = 0; i < t; ++i) {
      for (int64_t j = 0; j < t; ++j) p[(h * t + i) * t + j] = row(h, i, j);
    }
  }
  return p;
}

// (n, t, t) random softmax rows; some peaked, some flat.
std::vector<float> RandomMaps(int64_t n, int64_t t, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<double> z(0.0, 2.0);
  std::vector<float> p(n * t * t);
  for (int64_t r = 0; r < n * t; ++r) {
    std::vector<double> e(t);
    double sum = 0;
    for (int64_t j = 0; j < t; ++j) sum += e[j] = std::exp(z(rng));
    for (int64_t j = 0; j < t; ++j) p[r * t + j] = e[j] / sum;
  }
  return p;
}

HeadStats OneHead(const std::vector<float>& p, int64_t t,
                  std::vector<int64_t> seps = {}) {
  auto s = ComputeHeadStats(p, 1, t, seps, /*layer=*/0);
  EXPECT_TRUE(s.ok()) << s.status();
  return s.ok() ? (*s)[0] : HeadStats{};
}

// ---------------------------------------------------------------- HeadStats

TEST(HeadStatsTest, UniformRows) {
  const int64_t t = 4;
  const auto p = Maps(1, t, [&](auto, auto, auto) { return 1.f / t; });
  const HeadStats s = OneHead(p, t, {3});
  EXPECT_NEAR(s.entropy, std::log(4.0), kTol);
  EXPECT_NEAR(s.max_weight, 0.25, kTol);
  // Σ_j |i − j| = 6, 4, 4, 6 for i = 0..3, each weighted 1/4, mean over 4 rows.
  EXPECT_NEAR(s.mean_distance, 20.0 / 16.0, kTol);
  EXPECT_NEAR(s.cls_weight, 0.25, kTol);
  EXPECT_NEAR(s.sep_weight, 0.25, kTol);
  EXPECT_NEAR(s.self_weight, 0.25, kTol);
  EXPECT_NEAR(s.prev_weight, 0.25, kTol);
  EXPECT_NEAR(s.next_weight, 0.25, kTol);
  EXPECT_NEAR(OneHead(p, t, {2, 3}).sep_weight, 0.5, kTol);
  EXPECT_NEAR(OneHead(p, t, {3, 2, 3}).sep_weight, 0.5, kTol);  // once each
  EXPECT_EQ(OneHead(p, t, {}).sep_weight, 0.0);
}

TEST(HeadStatsTest, Identity) {
  const int64_t t = 5;
  const auto p =
      Maps(1, t, [](auto, auto i, auto j) { return i == j ? 1.f : 0.f; });
  const HeadStats s = OneHead(p, t, {4});
  EXPECT_EQ(s.entropy, 0.0);  // 0·ln 0 = 0, 1·ln 1 = 0
  EXPECT_NEAR(s.max_weight, 1.0, kTol);
  EXPECT_EQ(s.mean_distance, 0.0);
  EXPECT_NEAR(s.cls_weight, 1.0 / t, kTol);  // only row 0 looks at [CLS]
  EXPECT_NEAR(s.sep_weight, 1.0 / t, kTol);  // only row 4 looks at key 4
  EXPECT_NEAR(s.self_weight, 1.0, kTol);
  EXPECT_EQ(s.prev_weight, 0.0);
  EXPECT_EQ(s.next_weight, 0.0);
}

TEST(HeadStatsTest, ShiftedDiagonal) {
  // Every row i ≥ 1 puts all its weight on i − 1; row 0 on itself.
  const int64_t t = 6;
  const auto p = Maps(1, t, [](auto, int64_t i, int64_t j) {
    return j == std::max<int64_t>(i - 1, 0) ? 1.f : 0.f;
  });
  const HeadStats s = OneHead(p, t);
  EXPECT_EQ(s.entropy, 0.0);
  EXPECT_NEAR(s.prev_weight, 1.0, kTol);
  EXPECT_EQ(s.next_weight, 0.0);
  EXPECT_NEAR(s.mean_distance, 5.0 / 6.0, kTol);  // 0 for row 0, 1 for 5 rows
  EXPECT_NEAR(s.self_weight, 1.0 / 6.0, kTol);    // row 0
  EXPECT_NEAR(s.cls_weight, 2.0 / 6.0, kTol);     // rows 0 and 1
  // The other direction: next 1 over rows i < T − 1.
  const auto q = Maps(1, t, [&](auto, int64_t i, int64_t j) {
    return j == std::min<int64_t>(i + 1, t - 1) ? 1.f : 0.f;
  });
  const HeadStats n = OneHead(q, t);
  EXPECT_NEAR(n.next_weight, 1.0, kTol);
  EXPECT_EQ(n.prev_weight, 0.0);
  EXPECT_NEAR(n.mean_distance, 5.0 / 6.0, kTol);
}

TEST(HeadStatsTest, TwoByTwoByHand) {
  // rows: [0.25, 0.75], [0.6, 0.4] (exact in float except 0.6/0.4).
  const std::vector<float> p = {0.25f, 0.75f, 0.6f, 0.4f};
  const double a = 0.6f, b = 0.4f;  // the float values really stored
  const HeadStats s = OneHead(p, 2, {1});
  const double h0 = -(0.25 * std::log(0.25) + 0.75 * std::log(0.75));
  const double h1 = -(a * std::log(a) + b * std::log(b));
  EXPECT_NEAR(s.entropy, (h0 + h1) / 2, kTol);
  EXPECT_NEAR(s.max_weight, (0.75 + a) / 2, kTol);
  EXPECT_NEAR(s.mean_distance, (0.75 + a) / 2, kTol);  // off-diagonal weight
  EXPECT_NEAR(s.cls_weight, (0.25 + a) / 2, kTol);
  EXPECT_NEAR(s.sep_weight, (0.75 + b) / 2, kTol);
  EXPECT_NEAR(s.self_weight, (0.25 + b) / 2, kTol);
  EXPECT_NEAR(s.prev_weight, a, kTol);     // only row 1 has a previous key
  EXPECT_NEAR(s.next_weight, 0.75, kTol);  // only row 0 has a next key
}

TEST(HeadStatsTest, OneToken) {
  const HeadStats s = OneHead({1.f}, 1, {0});
  EXPECT_EQ(s.entropy, 0.0);
  EXPECT_EQ(s.max_weight, 1.0);
  EXPECT_EQ(s.mean_distance, 0.0);
  EXPECT_EQ(s.cls_weight, 1.0);
  EXPECT_EQ(s.sep_weight, 1.0);
  EXPECT_EQ(s.self_weight, 1.0);
  EXPECT_EQ(s.prev_weight, 0.0);  // no row has a previous or next key
  EXPECT_EQ(s.next_weight, 0.0);
}

TEST(HeadStatsTest, HeadsAreIndependentAndLabelled) {
  // Head 0 uniform, head 1 identity, head 2 all on [CLS].
  const int64_t t = 3;
  const auto p = Maps(3, t, [&](int64_t h, int64_t i, int64_t j) {
    if (h == 0) return 1.f / t;
    if (h == 1) return i == j ? 1.f : 0.f;
    return j == 0 ? 1.f : 0.f;
  });
  auto s = ComputeHeadStats(p, 3, t, {}, /*layer=*/7);
  ASSERT_TRUE(s.ok()) << s.status();
  ASSERT_EQ(s->size(), 3u);
  for (int h = 0; h < 3; ++h) {
    EXPECT_EQ((*s)[h].layer, 7);
    EXPECT_EQ((*s)[h].head, h);
  }
  EXPECT_NEAR((*s)[0].entropy, std::log(3.0), 1e-7);  // 1/3 is not exact
  EXPECT_EQ((*s)[1].entropy, 0.0);
  EXPECT_NEAR((*s)[1].self_weight, 1.0, kTol);
  EXPECT_NEAR((*s)[2].cls_weight, 1.0, kTol);
  EXPECT_NEAR((*s)[2].mean_distance, (0 + 1 + 2) / 3.0, kTol);
}

TEST(HeadStatsTest, RefusesBadShapes) {
  const std::vector<float> p(2 * 3 * 3, 1.f / 3);
  EXPECT_TRUE(ComputeHeadStats(p, 2, 3, {}).ok());
  auto wrong = ComputeHeadStats(p, 2, 4, {});
  EXPECT_EQ(wrong.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(wrong.status().message(), HasSubstr("18 values"));
  EXPECT_FALSE(ComputeHeadStats(p, 0, 3, {}).ok());
  EXPECT_FALSE(ComputeHeadStats({}, 1, 1, {}).ok());
  auto sep = ComputeHeadStats(p, 2, 3, {3});
  EXPECT_EQ(sep.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(sep.status().message(),
              HasSubstr("position 3 is outside [0, 3)"));
  EXPECT_FALSE(ComputeHeadStats(p, 2, 3, {-1}).ok());
  EXPECT_FALSE(ComputeLayerStats(p, 3, 3).ok());
}

TEST(HeadStatsTest, TokenPositions) {
  const std::vector<int32_t> ids = {2, 10, 3, 11, 12, 3};
  EXPECT_EQ(TokenPositions(ids, 3), (std::vector<int64_t>{2, 5}));
  EXPECT_TRUE(TokenPositions(ids, 4).empty());
}

// ---------------------------------------------------------------- divergence

// JS(p, q) = H(m) − (H(p) + H(q))/2: another formula for the same number.
double JsByEntropies(const float* p, const float* q, int64_t n) {
  auto h = [](double x) { return x > 0 ? -x * std::log(x) : 0.0; };
  double hm = 0, hp = 0, hq = 0;
  for (int64_t j = 0; j < n; ++j) {
    hm += h(0.5 * (double{p[j]} + q[j]));
    hp += h(p[j]);
    hq += h(q[j]);
  }
  return hm - 0.5 * (hp + hq);
}

TEST(JensenShannonTest, ByHand) {
  const float p[] = {1.f, 0.f}, q[] = {0.5f, 0.5f};
  // m = (0.75, 0.25): ½ ln(4/3) + ½ (½ ln(2/3) + ½ ln 2).
  const double expected = 0.5 * std::log(4.0 / 3.0) +
                          0.25 * std::log(2.0 / 3.0) + 0.25 * std::log(2.0);
  EXPECT_NEAR(JensenShannon(p, q, 2), expected, kTol);
  EXPECT_NEAR(JensenShannon(q, p, 2), expected, kTol);
  EXPECT_EQ(JensenShannon(p, p, 2), 0.0);
  const float r[] = {0.f, 1.f};
  EXPECT_NEAR(JensenShannon(p, r, 2), kLn2, kTol);
}

TEST(LayerStatsTest, IdenticalHeadsHaveZeroDivergence) {
  const int64_t t = 6;
  const std::vector<float> one = RandomMaps(1, t, 1);
  std::vector<float> p;
  for (int h = 0; h < 3; ++h) p.insert(p.end(), one.begin(), one.end());
  auto s = ComputeLayerStats(p, 3, t, /*layer=*/2);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->layer, 2);
  EXPECT_EQ(s->heads, 3);
  ASSERT_EQ(s->js_divergence.size(), 9u);
  for (double v : s->js_divergence) EXPECT_NEAR(v, 0.0, 1e-15);
  EXPECT_NEAR(s->diversity, 0.0, 1e-15);
}

TEST(LayerStatsTest, DisjointOneHotRowsGiveLn2) {
  // Heads 0 and 1: identity; head 2: every row on key (i + 1) mod T.
  const int64_t t = 5;
  const auto p = Maps(3, t, [&](int64_t h, int64_t i, int64_t j) {
    return j == (h < 2 ? i : (i + 1) % t) ? 1.f : 0.f;
  });
  auto s = ComputeLayerStats(p, 3, t);
  ASSERT_TRUE(s.ok()) << s.status();
  const auto& js = s->js_divergence;  // (3, 3)
  EXPECT_EQ(js[0 * 3 + 1], 0.0);
  EXPECT_NEAR(js[0 * 3 + 2], kLn2, kTol);
  EXPECT_NEAR(js[1 * 3 + 2], kLn2, kTol);
  EXPECT_NEAR(js[2 * 3 + 0], kLn2, kTol);
  EXPECT_NEAR(s->diversity, 2 * kLn2 / 3, kTol);  // pairs: 0, ln 2, ln 2
}

TEST(LayerStatsTest, SymmetricAndEqualToEntropyForm) {
  const int64_t heads = 4, t = 9;
  const std::vector<float> p = RandomMaps(heads, t, 7);
  auto s = ComputeLayerStats(p, heads, t);
  ASSERT_TRUE(s.ok()) << s.status();
  double pair_sum = 0;
  for (int64_t a = 0; a < heads; ++a) {
    EXPECT_EQ(s->js_divergence[a * heads + a], 0.0);
    for (int64_t b = 0; b < heads; ++b) {
      const double v = s->js_divergence[a * heads + b];
      EXPECT_EQ(v, s->js_divergence[b * heads + a]);
      EXPECT_GE(v, 0.0);
      EXPECT_LE(v, kLn2);
      if (a == b) continue;
      double expected = 0;
      for (int64_t i = 0; i < t; ++i) {
        expected += JsByEntropies(&p[(a * t + i) * t], &p[(b * t + i) * t], t);
      }
      EXPECT_NEAR(v, expected / t, 1e-12) << a << "," << b;
      if (a < b) pair_sum += v;
    }
  }
  EXPECT_GT(s->diversity, 0.0);
  EXPECT_NEAR(s->diversity, pair_sum / 6, kTol);
}

TEST(LayerStatsTest, OneHeadHasNoDiversity) {
  auto s = ComputeLayerStats(RandomMaps(1, 4, 3), 1, 4);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->js_divergence, std::vector<double>{0.0});
  EXPECT_EQ(s->diversity, 0.0);
}

TEST(SequenceStatsTest, LabelsLayersAndMatchesPerLayerCalls) {
  const int64_t heads = 3, t = 7;
  const std::vector<int> layers = {1, 3};
  const std::vector<float> att = RandomMaps(2 * heads, t, 11);  // (2, 3, t, t)
  const std::vector<int64_t> seps = {3, 6};
  auto s = ComputeSequenceStats(att, layers, heads, t, seps);
  ASSERT_TRUE(s.ok()) << s.status();
  ASSERT_EQ(s->heads.size(), 6u);
  ASSERT_EQ(s->layers.size(), 2u);
  for (int l = 0; l < 2; ++l) {
    const absl::Span<const float> block =
        absl::MakeConstSpan(att).subspan(l * heads * t * t, heads * t * t);
    auto hs = ComputeHeadStats(block, heads, t, seps, layers[l]);
    auto ls = ComputeLayerStats(block, heads, t, layers[l]);
    ASSERT_TRUE(hs.ok() && ls.ok());
    EXPECT_EQ(s->layers[l].layer, layers[l]);
    EXPECT_EQ(s->layers[l].js_divergence, ls->js_divergence);
    for (int h = 0; h < heads; ++h) {
      const HeadStats& got = s->heads[l * heads + h];
      EXPECT_EQ(got.layer, layers[l]);
      EXPECT_EQ(got.head, h);
      EXPECT_EQ(got.entropy, (*hs)[h].entropy);
      EXPECT_EQ(got.sep_weight, (*hs)[h].sep_weight);
    }
  }
  EXPECT_FALSE(ComputeSequenceStats(att, {1}, heads, t, seps).ok());
  auto none = ComputeSequenceStats({}, {}, heads, t, seps);
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->heads.empty());
}

// Real maps from the PyTorch goldens of one checkpoint per family: every
// statistic within its range. (RoBERTa's separator is </s> = 2.)
struct StatsFixture {
  const char* dir;
  int64_t layers, heads;
  int32_t sep_id;
};

TEST(SequenceStatsTest, GoldenMapsStayInRange) {
  for (const StatsFixture& f : {StatsFixture{"tiny_bert", 2, 4, 3},
                                StatsFixture{"tiny_roberta", 2, 3, 2},
                                StatsFixture{"tiny_distilbert", 3, 5, 3}}) {
  SCOPED_TRACE(f.dir);
  const auto golden = ::attnserve::testing::ReadGolden(
      std::string(ATTNSERVE_TEST_DATA) + "/" + f.dir + "/golden.json");
  ASSERT_FALSE(golden.empty());
  const int64_t heads = f.heads;
  std::vector<int> layer_ids;
  for (int l = 0; l < f.layers; ++l) layer_ids.push_back(l);
  for (const auto& g : golden) {
    SCOPED_TRACE(g.name);
    const int64_t t = g.length();
    auto s = ComputeSequenceStats(g.attention, layer_ids, heads, t,
                                  TokenPositions(g.token_ids, f.sep_id));
    ASSERT_TRUE(s.ok()) << s.status();
    for (const HeadStats& h : s->heads) {
      EXPECT_GE(h.entropy, 0.0);
      EXPECT_LE(h.entropy, std::log(double(t)) + 1e-6);
      EXPECT_GE(h.max_weight, 1.0 / t - 1e-6);
      EXPECT_LE(h.max_weight, 1.0 + 1e-6);
      EXPECT_LE(h.mean_distance, t - 1.0);
      for (double w : {h.cls_weight, h.sep_weight, h.self_weight, h.prev_weight,
                       h.next_weight}) {
        EXPECT_GE(w, 0.0);
        EXPECT_LE(w, 1.0 + 1e-6);
      }
    }
    for (const LayerStats& l : s->layers) {
      EXPECT_GE(l.diversity, 0.0);
      EXPECT_LE(l.diversity, kLn2);
      if (t > 1) {
        EXPECT_GT(l.diversity, 0.0);
      }
    }
    auto r = AttentionRollout(g.attention, f.layers, heads, t);
    ASSERT_TRUE(r.ok()) << r.status();
    for (int64_t i = 0; i < t; ++i) {
      double sum = 0;
      for (int64_t j = 0; j < t; ++j) sum += (*r)[i * t + j];
      EXPECT_NEAR(sum, 1.0, 1e-9);
    }
  }
  }
}

// ---------------------------------------------------------------- rollout

TEST(RolloutTest, TwoTokensByHand) {
  // Layer 0: P = [[0.2, 0.8], [0.6, 0.4]] → A0 = [[0.6, 0.4], [0.3, 0.7]].
  // Layer 1: P = [[1, 0], [1, 0]] → A1 = [[1, 0], [0.5, 0.5]].
  // R = A1·A0 = [[0.6, 0.4], [0.45, 0.55]]  (A0·A1 would be [[0.8, 0.2], ...]).
  const std::vector<float> att = {0.2f, 0.8f, 0.6f, 0.4f, 1.f, 0.f, 1.f, 0.f};
  auto one = AttentionRollout(absl::MakeConstSpan(att).subspan(0, 4), 1, 1, 2);
  ASSERT_TRUE(one.ok()) << one.status();
  EXPECT_THAT(*one,
              ::testing::Pointwise(::testing::DoubleNear(1e-7),
                                   std::vector<double>{0.6, 0.4, 0.3, 0.7}));
  auto two = AttentionRollout(att, 2, 1, 2);
  ASSERT_TRUE(two.ok()) << two.status();
  EXPECT_THAT(*two,
              ::testing::Pointwise(::testing::DoubleNear(1e-7),
                                   std::vector<double>{0.6, 0.4, 0.45, 0.55}));
}

TEST(RolloutTest, MeansHeadsAndRenormalizesRows) {
  // Two heads [[1, 0], [0, 1]] and [[0, 1], [1, 0]] average to all 0.5:
  // A = [[0.75, 0.25], [0.25, 0.75]].
  const std::vector<float> heads = {1, 0, 0, 1, 0, 1, 1, 0};
  auto r = AttentionRollout(heads, 1, 2, 2);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_THAT(
      *r, ::testing::Pointwise(::testing::DoubleNear(kTol),
                               std::vector<double>{0.75, 0.25, 0.25, 0.75}));
  // Rows that do not sum to 1 (e.g. a map already cut down) are renormalized:
  // row [0.25, 0.25] → [0.625, 0.125] / 0.75.
  const std::vector<float> partial = {0.25f, 0.25f, 0.f, 1.f};
  auto q = AttentionRollout(partial, 1, 1, 2);
  ASSERT_TRUE(q.ok()) << q.status();
  EXPECT_THAT(
      *q, ::testing::Pointwise(::testing::DoubleNear(kTol),
                               std::vector<double>{5 / 6.0, 1 / 6.0, 0, 1}));
}

TEST(RolloutTest, MatchesStraightforwardProduct) {
  // Independent computation: build every A_l, then multiply from the top
  // down, (A_{L−1}·(… ·A_1))·A_0, the other association of the same product.
  for (int64_t t : {1, 2, 7, 16}) {
    SCOPED_TRACE(t);
    const int64_t layers = 4, heads = 3;
    const std::vector<float> att = RandomMaps(layers * heads, t, 100 + t);
    std::vector<std::vector<double>> a(layers, std::vector<double>(t * t));
    for (int64_t l = 0; l < layers; ++l) {
      for (int64_t i = 0; i < t; ++i) {
        for (int64_t j = 0; j < t; ++j) {
          double mean = 0;
          for (int64_t h = 0; h < heads; ++h) {
            mean += att[((l * heads + h) * t + i) * t + j];
          }
          a[l][i * t + j] = 0.5 * mean / heads + (i == j ? 0.5 : 0.0);
        }
        double sum = 0;
        for (int64_t j = 0; j < t; ++j) sum += a[l][i * t + j];
        for (int64_t j = 0; j < t; ++j) a[l][i * t + j] /= sum;
      }
    }
    auto matmul = [t](const std::vector<double>& x,
                      const std::vector<double>& y) {
      std::vector<double> z(t * t, 0.0);
      for (int64_t i = 0; i < t; ++i)
        for (int64_t j = 0; j < t; ++j)
          for (int64_t k = 0; k < t; ++k)
            z[i * t + j] += x[i * t + k] * y[k * t + j];
      return z;
    };
    std::vector<double> top = a[layers - 1];
    for (int64_t l = layers - 2; l >= 0; --l) top = matmul(top, a[l]);
    auto r = AttentionRollout(att, layers, heads, t);
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_THAT(*r, ::testing::Pointwise(::testing::DoubleNear(1e-12), top));
  }
}

TEST(RolloutTest, RefusesBadShapes) {
  const std::vector<float> att(2 * 3 * 4 * 4, 0.25f);
  EXPECT_TRUE(AttentionRollout(att, 2, 3, 4).ok());
  auto r = AttentionRollout(att, 3, 3, 4);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(r.status().message(),
              HasSubstr("96 values do not form (3, 3, 4, 4)"));
  EXPECT_FALSE(AttentionRollout({}, 0, 3, 4).ok());
}

// ---------------------------------------------------------------- query rows

TEST(SelectQueryRowsTest, PicksRowsInOrder) {
  const int64_t layers = 2, heads = 3, t = 4;
  std::vector<float> att(layers * heads * t * t);  // value = its flat index
  for (size_t k = 0; k < att.size(); ++k) att[k] = k;
  const std::vector<int64_t> q = {3, 0, 3};
  auto out = SelectQueryRows(att, layers, heads, t, q);
  ASSERT_TRUE(out.ok()) << out.status();
  ASSERT_EQ(out->size(), size_t(layers * heads * 3 * t));  // (2, 3, 3, 4)
  for (int64_t l = 0; l < layers; ++l)
    for (int64_t h = 0; h < heads; ++h)
      for (int64_t r = 0; r < 3; ++r)
        for (int64_t j = 0; j < t; ++j) {
          const float want = att[((l * heads + h) * t + q[r]) * t + j];
          EXPECT_EQ((*out)[((l * heads + h) * 3 + r) * t + j], want);
        }
  auto empty = SelectQueryRows(att, layers, heads, t, {});
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->empty());
}

TEST(SelectQueryRowsTest, RefusesOutOfRangePositions) {
  const std::vector<float> att(2 * 2 * 3 * 3, 0.f);
  auto bad = SelectQueryRows(att, 2, 2, 3, {0, 3});
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(bad.status().message(),
              HasSubstr("query_positions[1] = 3 is outside [0, 3)"));
  EXPECT_FALSE(SelectQueryRows(att, 2, 2, 3, {-1}).ok());
  EXPECT_FALSE(SelectQueryRows(att, 2, 2, 4, {0}).ok());
}

}  // namespace
}  // namespace attnserve
